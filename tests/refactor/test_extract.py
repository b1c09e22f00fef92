"""Extraction cases as data files: notebook cells → extracted function and rewritten cells,
or the reason the copies were left alone. One file per case in tests/data/extract/."""

from __future__ import annotations

from pathlib import Path

import pytest

from helpers import DATA, parse_case, write_notebook
from nb2pkg.analysis import analyze
from nb2pkg.generate import format_python
from nb2pkg.notebook import read_notebook
from nb2pkg.plan import PlanOptions, plan_package

CASES = sorted((DATA / "extract").glob("*.txt"))


def _plan(path: Path):
    analysis = analyze([read_notebook(path)])
    return plan_package(analysis, PlanOptions(name="case"))


def _code_cells(plan) -> list[str]:
    node = plan.notebooks[0].node
    return [c.source for c in node.cells if c.cell_type == "code"]


@pytest.mark.parametrize("case", CASES, ids=[c.stem for c in CASES])
def test_extraction_case(case: Path, tmp_path: Path) -> None:
    parts = parse_case(case.read_text())
    notebook = write_notebook(tmp_path / "case.ipynb", parts["cells"])
    plan = _plan(notebook)
    if "refused" in parts:
        assert not plan.extractions, "expected the copies to be left alone"
        reasons = [r.reason for r in plan.refusals]
        for expected in parts["refused"][0].splitlines():
            assert any(expected in reason for reason in reasons), reasons
        # Left alone means left alone: every code cell is byte-identical.
        assert _code_cells(plan) == [c for c in parts["cells"] if isinstance(c, str)]
        return
    functions = "\n\n".join(format_python(e.source).strip() for e in plan.extractions)
    assert functions == parts["function"][0].strip()
    if "after" in parts:
        assert _code_cells(plan) == parts["after"]


@pytest.mark.parametrize("case", [c for c in CASES if not c.stem.startswith("refuse_")],
                         ids=lambda c: c.stem)
def test_extraction_is_idempotent(case: Path, tmp_path: Path) -> None:
    """Converting the refactored notebook again extracts nothing new."""
    import nbformat

    parts = parse_case(case.read_text())
    first = _plan(write_notebook(tmp_path / "case.ipynb", parts["cells"]))
    assert first.extractions
    again = tmp_path / "again" / "case.ipynb"
    again.parent.mkdir()
    nbformat.write(first.notebooks[0].node, str(again))
    assert not _plan(again).extractions


def test_a_name_imported_differently_in_two_notebooks_becomes_a_parameter(tmp_path: Path) -> None:
    block = "root = m.sqrt(value)\ndoubled = root * 2\nprint(doubled)"
    one = write_notebook(tmp_path / "one.ipynb", ["import math as m", "value = 4", block])
    two = write_notebook(tmp_path / "two.ipynb", ["import cmath as m", "value = -4", block])
    analysis = analyze([read_notebook(one), read_notebook(two)])
    plan = plan_package(analysis, PlanOptions(name="case"))
    (extraction,) = plan.extractions
    assert extraction.module == "common"
    assert [p.name for p in extraction.parameters] == ["m", "value"]
    same = write_notebook(tmp_path / "same" / "two.ipynb", ["import math as m", "value = 9", block])
    plan = plan_package(analyze([read_notebook(one), read_notebook(same)]), PlanOptions(name="case"))
    assert [p.name for p in plan.extractions[0].parameters] == ["value"]
    assert "import math as m" in plan.modules[0].imports
