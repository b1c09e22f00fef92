"""Lifted cells rewritten on their text where ``ast`` positions say it all, else with libcst;
both ways give the same code (tests/data/lift/cases.yaml)."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from nb2pkg.analysis.parse import parse_cell
from nb2pkg.refactor import lift_code, lift_cst
from nb2pkg.refactor.lift import LiftedParameter

CASES = yaml.safe_load((Path(__file__).parents[1] / "data" / "lift" / "cases.yaml").read_text(
    encoding="utf-8"))


@pytest.mark.parametrize("case", CASES, ids=[c["id"] for c in CASES])
def test_each_way_of_lifting_gives_the_expected_cell(case: dict) -> None:
    cell = parse_cell(case["cell"])
    assert cell.tree is not None
    parameters = {name: [LiftedParameter(*p) for p in params]
                  for name, params in case["lifted"].items()}
    tops = set(range(len(cell.tree.body)))
    defined = set(case.get("defined", ()))
    on_text = lift_code._on_text(cell, tops, parameters, defined)
    assert (on_text is not None) == case.get("text", True)
    if on_text is not None:
        assert on_text == case["result"]
    assert lift_cst.lifted_code(cell, tops, parameters, defined) == case["result"]
    assert lift_code.lifted_code(cell, tops, parameters, defined) == case["result"]
