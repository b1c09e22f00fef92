"""The extracted function written from the copy's text where it says it all, else with libcst;
both ways give the same code (tests/data/function/cases.yaml, and every extraction case of
tests/data/extract/)."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from helpers import DATA, parse_case, write_notebook
from nb2pkg.analysis import analyze
from nb2pkg.notebook import read_notebook
from nb2pkg.plan import PlanOptions, plan_package
from nb2pkg.refactor import cst_code, function_code

CASES = yaml.safe_load((DATA / "function" / "cases.yaml").read_text(encoding="utf-8"))
EXTRACT_CASES = sorted((DATA / "extract").glob("*.txt"))


def _both_ways(cells: list, folder: Path, monkeypatch: pytest.MonkeyPatch) -> list:
    """Plan a notebook of ``cells``; for each function extracted, what the text path gives
    (None when it hands over to libcst) and what libcst gives."""
    written = []

    def both(*args, **kwargs):
        try:
            text = function_code._on_text(*args, **kwargs)
        except function_code._Unsure:
            text = None
        with_libcst = cst_code.function_source(*args, **kwargs)
        written.append((text, with_libcst))
        return with_libcst

    monkeypatch.setattr(function_code, "function_source", both)
    notebook = write_notebook(folder / "case.ipynb", cells)
    plan_package(analyze([read_notebook(notebook)]), PlanOptions(name="case"))
    return written


@pytest.mark.parametrize("case", CASES, ids=[c["id"] for c in CASES])
def test_each_way_of_writing_the_function_gives_the_expected_code(
        case: dict, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    [(text, with_libcst)] = _both_ways(case["cells"], tmp_path, monkeypatch)
    assert (text is not None) == case.get("text", True)
    if text is not None:
        assert text == case["function"]
    assert with_libcst == case["function"]
    compile(case["function"], "<function>", "exec")


@pytest.mark.parametrize("case", EXTRACT_CASES, ids=[c.stem for c in EXTRACT_CASES])
def test_every_extraction_case_gives_the_same_function_both_ways(
        case: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    for text, with_libcst in _both_ways(parse_case(case.read_text())["cells"], tmp_path,
                                        monkeypatch):
        assert text in (None, with_libcst)
