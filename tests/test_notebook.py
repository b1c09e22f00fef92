"""Reading notebooks: every kind of bad input is a one-line NotebookError naming the file."""

from __future__ import annotations

import json
import os
from pathlib import Path

import nbformat
import pytest

from helpers import DATA, EXAMPLES, write_notebook
from nb2pkg.errors import NotebookError
from nb2pkg.notebook import MAX_DEPTH, headings, printable, read_notebook, sections

READ = DATA / "read"


@pytest.mark.parametrize("name, message", [
    ("malformed.ipynb", "malformed JSON at line 2"),
    ("r_kernel.ipynb", "kernel 'ir' runs R, not Python"),
    ("schema_error.ipynb", "cell 0: invalid notebook at cells/0/outputs"),
    ("not_a_notebook.ipynb", "not a Jupyter notebook"),
    ("missing.ipynb", "no such file"),
    ("empty.ipynb", "empty file (0 bytes)"),
    ("invalid_utf8.ipynb", "not UTF-8 text (invalid continuation byte at byte"),
    ("source_not_strings.ipynb", "cell 0: invalid notebook at cells/0/source"),
    ("kernelspec_wrong_type.ipynb", "invalid notebook at metadata/kernelspec"),
    # A lone surrogate parses as JSON but cannot be written back as UTF-8: converting failed
    # with a UnicodeEncodeError traceback, analysing printed one (issue 12).
    ("lone_surrogate_cell.ipynb", r"cell 1: text at source holds a lone surrogate \udce9"),
    ("lone_surrogate_heading.ipynb", r"cell 0: text at source holds a lone surrogate \ud83d"),
    ("lone_surrogate_metadata.ipynb", r"text at metadata/authors/0/name holds a lone surrogate"),
])
def test_bad_input_is_a_clear_error(name: str, message: str) -> None:
    with pytest.raises(NotebookError) as error:
        read_notebook(READ / name)
    text = str(error.value)
    assert text.startswith(str(READ / name) + ": "), text
    assert message in text
    assert "\n" not in text


def test_old_nbformat_3_is_upgraded() -> None:
    notebook = read_notebook(READ / "v3.ipynb")
    assert notebook.original_nbformat == 3
    assert [c.kind for c in notebook.cells] == ["markdown", "code"]
    assert notebook.cells[1].source == "x = 1\nprint(x)"
    assert sections(notebook)[0].title == "Old notebook"


@pytest.mark.parametrize("name", ["v3.ipynb", "syntax_error.ipynb"])
def test_cells_without_an_id_get_the_same_one_on_every_reading(name: str) -> None:
    """nbformat invents random ids for them: a converted project then changed on every
    conversion, and an update saw the refactored notebook as regenerated every time."""
    first, second = (read_notebook(READ / name) for _ in range(2))
    ids = [c["id"] for c in first.node.cells]
    assert ids == [c["id"] for c in second.node.cells] == [f"cell-{i}" for i in range(len(ids))]


def test_a_repeated_cell_id_gets_the_same_new_one_on_every_reading(tmp_path: Path) -> None:
    """nbformat corrects a repeated id to a random one when it writes: the same notebook then
    converted to different bytes every time."""
    path = write_notebook(tmp_path / "dup.ipynb", ["x = 1", "y = 2", "z = 3"])
    data = json.loads(path.read_text())
    data["nbformat_minor"] = 5
    for cell, cell_id in zip(data["cells"], ["dup", "other", "dup"]):
        cell["id"] = cell_id
    path.write_text(json.dumps(data))
    first, second = (read_notebook(path) for _ in range(2))
    ids = [c["id"] for c in first.node.cells]
    assert ids == [c["id"] for c in second.node.cells] == ["dup", "other", "cell-2"]
    assert nbformat.writes(first.node) == nbformat.writes(second.node)


def test_reading_never_changes_the_file() -> None:
    path = EXAMPLES / "sales_report.ipynb"
    before = path.read_bytes()
    read_notebook(path)
    assert path.read_bytes() == before


def test_parameters_cell_and_tags(tmp_path: Path) -> None:
    path = write_notebook(tmp_path / "p.ipynb", ["import os", ("code", "n = 1", ["parameters"]),
                                                  ("code", "print(n)", ["report", "slow"])])
    notebook = read_notebook(path)
    assert notebook.parameters_cell.index == 1
    assert notebook.cells[2].tags == ("report", "slow")


def test_headings_skip_code_fences_and_markup() -> None:
    text = "# **Load** data\n```\n# not a heading\n```\nSetext\n------\n    # indented code"
    assert headings(text) == [(1, "Load data"), (2, "Setext")]


def test_sections_keep_duplicate_titles(tmp_path: Path) -> None:
    path = write_notebook(tmp_path / "s.ipynb", [("markdown", "# Plot"), "a = 1",
                                                  ("markdown", "# Plot"), "b = 2"])
    found = sections(read_notebook(path))
    assert [(s.title, s.cells) for s in found] == [("Plot", (1,)), ("Plot", (3,))]


def _one_line_error(path: Path) -> str:
    with pytest.raises(NotebookError) as error:
        read_notebook(path)
    text = str(error.value)
    assert text.startswith(f"{path}: ") and "\n" not in text, text
    return text


def _nested(depth: int) -> str:
    return ('{"nbformat": 4, "nbformat_minor": 5, "cells": [], "metadata": {"deep": '
            + "[" * depth + "]" * depth + "}}")


@pytest.mark.parametrize("depth", [50_000, MAX_DEPTH + 10])
def test_deep_nesting_is_refused_where_it_happens(tmp_path: Path, depth: int) -> None:
    # 50,000 levels made json.loads raise RecursionError (a traceback); a few hundred passed
    # reading and overflowed nbformat or deepcopy later.
    path = tmp_path / "deep.ipynb"
    path.write_text(_nested(depth))
    text = _one_line_error(path)
    assert f"nested more than {MAX_DEPTH} levels deep at " in text
    assert ("line 1, column" if depth > 1000 else "metadata/deep/0/0") in text


def test_nesting_up_to_the_limit_is_read(tmp_path: Path) -> None:
    path = tmp_path / "nested.ipynb"
    path.write_text(_nested(MAX_DEPTH - 2))  # the root and "metadata" are two of the levels
    assert read_notebook(path).cells == ()
    path.write_text(_nested(MAX_DEPTH - 1))
    assert "nested more than" in _one_line_error(path)


@pytest.mark.timeout(30)
def test_a_fifo_is_refused_without_waiting(tmp_path: Path) -> None:
    # Opening a FIFO for reading blocks until a writer comes: `analyze x.ipynb` hung forever.
    path = tmp_path / "pipe.ipynb"
    os.mkfifo(path)
    assert "is a FIFO, not a regular file" in _one_line_error(path)


def test_a_symlink_loop_is_named(tmp_path: Path) -> None:
    (tmp_path / "a.ipynb").symlink_to(tmp_path / "b.ipynb")
    (tmp_path / "b.ipynb").symlink_to(tmp_path / "a.ipynb")
    assert "is a symbolic link loop" in _one_line_error(tmp_path / "a.ipynb")


def test_a_folder_named_like_a_notebook(tmp_path: Path) -> None:
    (tmp_path / "x.ipynb").mkdir()
    assert "is a folder, not a notebook" in _one_line_error(tmp_path / "x.ipynb")


@pytest.mark.skipif(os.name != "posix" or os.geteuid() == 0,
                    reason="root reads any file whatever its permissions")
def test_an_unreadable_file(tmp_path: Path) -> None:
    path = write_notebook(tmp_path / "secret.ipynb", ["x = 1"])
    path.chmod(0)
    assert "cannot read: Permission denied (check the file's permissions)" in _one_line_error(path)


def test_a_huge_single_line_is_read(tmp_path: Path) -> None:
    source = "x = [" + "1, " * 200_000 + "1]"
    path = write_notebook(tmp_path / "wide.ipynb", [source, ("markdown", "# " + "T" * 100_000)])
    notebook = read_notebook(path)
    assert notebook.cells[0].source == source and len(sections(notebook)[0].title) == 100_000


def test_headings_drop_control_characters() -> None:
    # An ESC in a heading went into stage titles and pipeline.yaml, which YAML (and so `nb2pkg
    # run`) refuses: titles keep what a person reads.
    assert headings("# Load \x1b[31mdata\x1b[0m\x07 now\x00\n## A\tB\x7f") == [
        (1, "Load data now"), (2, "A B")]
    assert printable("caf\udce9 \u200dok") == "caf \u200dok"


def test_reading_a_broken_notebook_leaves_it_unchanged() -> None:
    for path in sorted((DATA / "read").glob("*.ipynb")):
        before = path.read_bytes()
        try:
            read_notebook(path)
        except NotebookError:
            pass
        assert path.read_bytes() == before, path

