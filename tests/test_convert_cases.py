"""Conversion cases as data: tests/cases/<case>/input/*.ipynb → the expected project tree.

Each case's expected/ folder is the exact output of `nb2pkg convert` run in input/ (so paths in
the output are relative). To accept a change on purpose, run with NB2PKG_UPDATE_CASES=1 and
review the diff of expected/ in git. The record of the conversion kept for `nb2pkg update`
(`.nb2pkg/`: a copy of the files and their hashes) is left out of expected/; tests/test_update.py
covers it.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest

from nb2pkg.api import ConvertOptions, convert

CASES = sorted(p for p in (Path(__file__).parent / "cases").iterdir() if (p / "input").is_dir())


def _tree(root: Path) -> dict[str, bytes]:
    return {p.relative_to(root).as_posix(): p.read_bytes() for p in sorted(root.rglob("*"))
            if p.is_file()}


def _convert(case: Path, output: Path, monkeypatch: pytest.MonkeyPatch) -> dict[str, bytes]:
    monkeypatch.chdir(case / "input")
    notebooks = sorted(p.name for p in (case / "input").glob("*.ipynb"))
    convert(notebooks, output, ConvertOptions(name=case.name))
    return _tree(output)


@pytest.mark.parametrize("case", CASES, ids=[c.name for c in CASES])
def test_case_output_matches_expected(case: Path, tmp_path: Path, monkeypatch) -> None:
    inputs_before = _tree(case / "input")
    produced = {k: v for k, v in _convert(case, tmp_path / "out", monkeypatch).items()
                if not k.startswith(".nb2pkg/")}
    expected_dir = case / "expected"
    if os.environ.get("NB2PKG_UPDATE_CASES"):
        shutil.rmtree(expected_dir, ignore_errors=True)
        shutil.copytree(tmp_path / "out", expected_dir, ignore=shutil.ignore_patterns(".nb2pkg"))
    expected = _tree(expected_dir)
    assert sorted(produced) == sorted(expected)
    for name in expected:
        assert produced[name].decode() == expected[name].decode(), name
    assert _tree(case / "input") == inputs_before, "an input notebook was modified"


@pytest.mark.parametrize("case", CASES, ids=[c.name for c in CASES])
def test_converting_twice_is_byte_identical(case: Path, tmp_path: Path, monkeypatch) -> None:
    assert _convert(case, tmp_path / "a", monkeypatch) == _convert(case, tmp_path / "b", monkeypatch)
