"""Clone cases as data files: cells → the exact clone groups reported, in order. One file per
case in tests/data/clones/ (format: tests/helpers.py::parse_case for the cells, then `== groups`
and one line per group: `kind statements cell:first_line-last_line ...`)."""

from __future__ import annotations

from pathlib import Path

import pytest

from helpers import DATA, parse_case, write_notebook
from nb2pkg.analysis import analyze
from nb2pkg.notebook import read_notebook

CASES = sorted((DATA / "clones").glob("*.txt"))


def describe(group) -> str:
    return " ".join([group.kind, str(group.statements)]
                    + [f"{o.cell}:{o.first_line}-{o.last_line}" for o in group.occurrences])


@pytest.mark.parametrize("case", CASES, ids=[c.stem for c in CASES])
def test_clone_case(case: Path, tmp_path: Path) -> None:
    text = case.read_text()
    assert "\n== groups\n" in text, f"{case.name} has no `== groups` section"
    cells, expected = text.split("\n== groups\n", 1)
    notebook = write_notebook(tmp_path / "case.ipynb", parse_case(cells)["cells"])
    groups = analyze([read_notebook(notebook)]).clones
    assert [describe(g) for g in groups] == [line.strip() for line in expected.splitlines()
                                              if line.strip()]
