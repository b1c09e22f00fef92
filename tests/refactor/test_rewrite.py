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


@pytest.mark.parametrize("second", [Replacement((), 1, 2, "y = g()"),
                                    Replacement(((2, "body"),), 0, 1, "z = h()")],
                         ids=["same statements", "inside a replaced block"])
def test_replacements_of_the_same_statements_are_refused(second: Replacement) -> None:
    """Two replacements of one statement mean the planner went wrong: said, not half done."""
    masked = mask("x = 1\ny = 2\nfor i in range(3):\n    z = i\nw = 4")
    first = Replacement((), 0, 3, "x, y = f()")
    for way in (lambda: rewrite_cell(masked, [first, second], ast.parse(masked.code)),
                lambda: rewrite_cell(masked, [second, first])):
        with pytest.raises(RewriteError, match="two replacements of the same statements"):
            way()
    assert rewrite_cell(masked, [Replacement((), 0, 2, "x, y = f()"),
                                 Replacement(((2, "body"),), 0, 1, "z = h(i)")]) == (
        "x, y = f()\nfor i in range(3):\n    z = h(i)\nw = 4")


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
