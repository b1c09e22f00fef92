"""Three-way merges of one file: git's and nb2pkg's own line merge agree; notebooks per cell."""

from __future__ import annotations

import json

import pytest

from nb2pkg.merge import git_available, merge_lines, merge_notebook, merge_text, merge_with_git

BASE = "a\nb\nc\nd\ne\nf\ng\n"

# (ours, theirs, merged or None for a conflict)
CASES = {
    "ours only": ("a\nB\nc\nd\ne\nf\ng\n", BASE, "a\nB\nc\nd\ne\nf\ng\n"),
    "theirs only": (BASE, "a\nb\nc\nd\ne\nF\ng\n", "a\nb\nc\nd\ne\nF\ng\n"),
    "apart": ("a\nB\nc\nd\ne\nf\ng\n", "a\nb\nc\nd\ne\nF\ng\n", "a\nB\nc\nd\ne\nF\ng\n"),
    "same change": ("a\nX\nc\nd\ne\nf\ng\n", "a\nX\nc\nd\ne\nf\ng\n", "a\nX\nc\nd\ne\nf\ng\n"),
    "added at the end and edited at the top": ("A\nb\nc\nd\ne\nf\ng\n", BASE + "h\ni\n",
                                               "A\nb\nc\nd\ne\nf\ng\nh\ni\n"),
    "deleted and edited apart": ("a\nc\nd\ne\nf\ng\n", "a\nb\nc\nd\ne\nf\nG\n",
                                 "a\nc\nd\ne\nf\nG\n"),
    "conflict": ("a\nb\nOURS\nd\ne\nf\ng\n", "a\nb\nTHEIRS\nd\ne\nf\ng\n", None),
    "deleted here, edited there": ("a\nb\nd\ne\nf\ng\n", "a\nb\nC\nd\ne\nf\ng\n", None),
}


@pytest.mark.parametrize("name", CASES)
def test_python_merge(name: str) -> None:
    ours, theirs, expected = CASES[name]
    merged = merge_lines(BASE, ours, theirs)
    if expected is None:
        assert merged.conflicts == 1
        assert merged.content.count("<<<<<<< project\n") == 1
        assert "||||||| previous conversion\n" in merged.content
        assert merged.content.rstrip("\n").endswith("g")
    else:
        assert (merged.content, merged.conflicts) == (expected, 0)


@pytest.mark.skipif(not git_available(), reason="git is not installed")
@pytest.mark.parametrize("name", CASES)
def test_git_and_python_merges_agree(name: str) -> None:
    ours, theirs, _ = CASES[name]
    assert merge_with_git(BASE, ours, theirs) == merge_lines(BASE, ours, theirs)


def test_text_without_final_line_break_keeps_markers_on_their_own_lines() -> None:
    merged = merge_lines("x\ny", "x\nours", "x\ntheirs")
    assert merged.content == ("x\n<<<<<<< project\nours\n||||||| previous conversion\ny\n"
                              "=======\ntheirs\n>>>>>>> notebook\n")


def test_merge_text_without_git(monkeypatch) -> None:
    monkeypatch.setattr("shutil.which", lambda name: None)
    assert merge_text(BASE, *CASES["apart"][:2]).content == CASES["apart"][2]


def _notebook(*sources: str, meta: str = "x") -> str:
    cells = [{"cell_type": "code", "id": f"c{i}", "metadata": {}, "source": s,
              "outputs": [], "execution_count": None} for i, s in enumerate(sources)]
    return json.dumps({"cells": cells, "metadata": {"m": meta}, "nbformat": 4,
                       "nbformat_minor": 5})


def test_notebook_cells_merge_by_id_and_field() -> None:
    base = _notebook("a = 1", "b = 2")
    ours = json.loads(base)
    ours["cells"][1]["outputs"] = [{"output_type": "stream", "name": "stdout", "text": "2"}]
    theirs = json.loads(_notebook("a = 1", "b = 3", "c = 4"))
    merged = merge_notebook(base, json.dumps(ours), json.dumps(theirs))
    assert merged is not None and merged.conflicts == 0
    cells = json.loads(merged.content)["cells"]
    assert [c["source"] for c in cells] == ["a = 1", "b = 3", "c = 4"]
    assert cells[1]["outputs"][0]["text"] == "2"


def test_a_conflict_inside_a_cell_is_marked_in_its_source() -> None:
    merged = merge_notebook(_notebook("a = 1"), _notebook("a = 2"), _notebook("a = 3"))
    assert merged is not None and merged.conflicts == 1
    source = "".join(json.loads(merged.content)["cells"][0]["source"])
    assert source.startswith("<<<<<<< project\na = 2\n")


def test_notebooks_whose_metadata_conflicts_do_not_merge() -> None:
    assert merge_notebook(_notebook("a", meta="b"), _notebook("a", meta="o"),
                          _notebook("a", meta="t")) is None
    assert merge_notebook("{", "{", "[") is None
