"""Replacing statement spans in a cell: on its lines where they say it all, else with libcst;
both ways give the same text (tests/data/rewrite/cases.yaml)."""

from __future__ import annotations

import ast
from pathlib import Path

import libcst as cst
import pytest
import yaml

from nb2pkg.magics import mask
from nb2pkg.refactor import rewrite
from nb2pkg.refactor.cst_code import cst_span, cst_statement_list
from nb2pkg.refactor.rewrite import Replacement, RewriteError, rewrite_cell, statement_source

DATA = Path(__file__).parents[1] / "data" / "rewrite"
CASES = yaml.safe_load((DATA / "cases.yaml").read_text(encoding="utf-8"))
SOURCES = yaml.safe_load((DATA / "sources.yaml").read_text(encoding="utf-8"))


def _replacements(case: dict) -> list[Replacement]:
    return [Replacement(tuple((i, f) for i, f in r["path"]), r["start"], r["stop"], r["code"])
            for r in case["replacements"]]


@pytest.mark.parametrize("case", CASES, ids=[c["id"] for c in CASES])
def test_each_way_of_rewriting_gives_the_expected_cell(case: dict) -> None:
    masked = mask(case["cell"])
    tree = ast.parse(masked.code)
    replacements = _replacements(case)
    if "refused" in case:
        for way in (lambda: rewrite_cell(masked, replacements, tree),
                    lambda: rewrite_cell(masked, replacements)):
            with pytest.raises(RewriteError) as caught:
                way()
            assert str(caught.value) == case["refused"]
        assert rewrite.span_refusal(tree, masked.code.split("\n"), replacements[0].path,
                                    replacements[0].start, replacements[0].stop) == case["refused"]
        return
    on_lines = rewrite._on_lines(masked.code, tree, replacements)
    assert (on_lines is not None) == case.get("text", True)
    if on_lines is not None:
        assert on_lines == case["result"]
    assert rewrite._with_libcst(cst.parse_module(masked.code), replacements) == case["result"]
    assert rewrite_cell(masked, replacements, tree) == case["result"]
    compile(case["result"], "<cell>", "exec")


def test_magics_are_restored_around_the_rewritten_lines() -> None:
    source = "%matplotlib inline\nx = 1\ny = 2\n!ls"
    masked = mask(source)
    new = rewrite_cell(masked, [Replacement((), 1, 3, "x, y = pair()")], ast.parse(masked.code))
    assert new == "%matplotlib inline\nx, y = pair()\n!ls"


@pytest.mark.parametrize("case", SOURCES, ids=[c["id"] for c in SOURCES])
def test_a_statement_moves_with_the_comments_above_it(case: dict) -> None:
    masked = mask(case["cell"])
    tree = ast.parse(masked.code)
    assert statement_source(masked.code, tree, case["index"]) == case["source"]
    _, statements = cst_statement_list(cst.parse_module(masked.code), ())
    first, last = cst_span(statements, case["index"], case["index"] + 1)
    assert cst.Module(body=statements[first:last]).code.strip("\n") == case["source"]
