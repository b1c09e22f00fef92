"""Minimal cases of failure classes found by the corpus and fuzz runs, as data files.

Each `tests/data/robustness/*.ipynb` (or folder of notebooks, converted together) is one case;
its metadata `robustness` says why it exists and what to expect:

    "expect": {"analyze": 0 | 2, "convert": 0 | 2,   exit status (2: one error line)
               "error": "...",                       a fragment of that line
               "opaque": [cell, ...],                cells analyze reports as opaque
               "same_behaviour": true,               refactored cells compute and print the same
               "bound_after_calls": ["name", ...],   the refactored notebook still assigns these
               "distinct_files_ignoring_case": true} notebook files differ even case-folded

Cases under `open/` are bugs in files outside this suite's remit, still open (docs/robustness.md):
they are not run here. When one is fixed, move its file up one folder and it is checked with the
others.
"""

from __future__ import annotations

import ast
import hashlib
import json
from pathlib import Path

import nbformat
import pytest

from helpers import DATA
from nb2pkg.api import ConvertOptions, convert
from nb2pkg.generate import render
from nb2pkg.magics import mask
from harness import load_package, run_cells, run_cli, unload

CASES_DIR = DATA / "robustness"
CASES = sorted(p for p in CASES_DIR.iterdir() if p.suffix == ".ipynb" or (
    p.is_dir() and p.name != "open"))
OPEN_CASES = sorted((CASES_DIR / "open").iterdir()) if (CASES_DIR / "open").is_dir() else []


def case_notebooks(case: Path) -> list[Path]:
    return [case] if case.is_file() else sorted(case.rglob("*.ipynb"))


def expectation(case: Path) -> dict:
    meta = json.loads(case_notebooks(case)[0].read_text(encoding="utf-8"))["metadata"]
    return meta["robustness"]["expect"]


def code_cells(path: Path) -> list[str]:
    return [c.source for c in nbformat.read(str(path), as_version=4).cells
            if c.cell_type == "code"]


def check_case(case: Path, tmp_path: Path) -> None:
    notebooks = case_notebooks(case)
    expect = expectation(case)
    before = {p: hashlib.sha256(p.read_bytes()).digest() for p in notebooks}
    for command in ("analyze", "convert"):
        if command not in expect:
            continue
        output = tmp_path / "out"
        args = ["analyze", "--json"] if command == "analyze" else ["convert", "-o", str(output),
                                                                   "--json"]
        status, out, err = run_cli(*args, *map(str, notebooks))
        assert status == expect[command], f"{command}: exit {status}\n{err[-3000:]}"
        if status == 2:
            lines = err.strip().splitlines()
            assert len(lines) == 1 and lines[0].startswith("nb2pkg: error: "), lines
            assert expect.get("error", "") in lines[0]
            assert not output.exists()
            continue
        report = json.loads(out)
        if command == "analyze" and "opaque" in expect:
            opaque = [c["cell"] for c in report["notebooks"][0]["code"] if c["opaque"]]
            assert opaque == expect["opaque"]
        if command == "convert":
            written = [f for f in report["files"]
                       if f.startswith(("notebooks/", "tests/originals/"))]
            if expect.get("distinct_files_ignoring_case"):
                assert len({f.casefold() for f in written}) == len(written), written
            if "bound_after_calls" in expect:
                refactored = [c for f in written if f.startswith("notebooks/")
                              for c in code_cells(output / f)]
                bound = {n.id for c in refactored for n in ast.walk(ast.parse(mask(c).code))
                         if isinstance(n, ast.Name) and isinstance(n.ctx, ast.Store)}
                assert set(expect["bound_after_calls"]) <= bound, refactored
    if expect.get("same_behaviour"):
        report = convert(notebooks, tmp_path / "dry", ConvertOptions(dry_run=True))
        files = render(report.plan)
        registered = load_package(report.plan, files)
        try:
            for path, plan in zip(notebooks, report.plan.notebooks):
                original, printed = run_cells(code_cells(path))
                new = [c.source for c in plan.node.cells if c.cell_type == "code"]
                refactored, printed_after = run_cells(new)
                assert printed_after == printed
                common = set(original) & set(refactored)
                assert {k: refactored[k] for k in common} == {k: original[k] for k in common}
        finally:
            unload(registered)
    for path, digest in before.items():
        assert hashlib.sha256(path.read_bytes()).digest() == digest, f"{path.name} changed"


@pytest.mark.parametrize("case", CASES, ids=[c.stem for c in CASES])
def test_case(case: Path, tmp_path: Path) -> None:
    check_case(case, tmp_path)


def test_every_case_says_why_and_what_to_expect() -> None:
    for case in [*CASES, *OPEN_CASES]:
        meta = json.loads(case_notebooks(case)[0].read_text(encoding="utf-8"))["metadata"]
        assert meta["robustness"]["why"] and meta["robustness"]["expect"], case
