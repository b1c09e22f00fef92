"""Findings cases as data files: cells → the exact findings expected. One file per case in
tests/data/findings/ (format: tests/helpers.py::parse_case for the cells, then `== findings`
and one line per finding: `code cell line text`, where line is `-` for none and text must
appear in the message)."""

from __future__ import annotations

from pathlib import Path

import pytest

from helpers import DATA, parse_case, write_notebook
from nb2pkg.analysis import analyze
from nb2pkg.notebook import read_notebook

CASES = sorted((DATA / "findings").glob("*.txt"))


def expected_findings(text: str) -> list[tuple[str, int, int | None, str]]:
    expected = []
    for line in text.split("\n== findings\n", 1)[1].splitlines():
        if not line.strip():
            continue
        code, cell, at, *message = line.split(maxsplit=3)
        expected.append((code, int(cell), None if at == "-" else int(at),
                         message[0] if message else ""))
    return expected


@pytest.mark.parametrize("case", CASES, ids=[c.stem for c in CASES])
def test_findings_case(case: Path, tmp_path: Path) -> None:
    text = case.read_text()
    assert "\n== findings\n" in text, f"{case.name} has no `== findings` section"
    notebook = write_notebook(tmp_path / "case.ipynb",
                              parse_case(text.split("\n== findings\n", 1)[0])["cells"])
    found = analyze([read_notebook(notebook)]).notebooks[0].findings
    expected = expected_findings(text)
    actual = [(f.code, f.cell, f.line) for f in found]
    assert sorted(actual, key=str) == sorted([e[:3] for e in expected], key=str), \
        [f"{f.code} {f.cell} {f.line} {f.message}" for f in found]
    for code, cell, line, message in expected:
        (finding,) = [f for f in found if (f.code, f.cell, f.line) == (code, cell, line)]
        assert message in finding.message, (message, finding.message)
