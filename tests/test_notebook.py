"""Reading notebooks: every kind of bad input is a one-line NotebookError naming the file."""

from __future__ import annotations

from pathlib import Path

import pytest

from helpers import DATA, EXAMPLES, write_notebook
from nb2pkg.errors import NotebookError
from nb2pkg.notebook import headings, read_notebook, sections

READ = DATA / "read"


@pytest.mark.parametrize("name, message", [
    ("malformed.ipynb", "malformed JSON at line 2"),
    ("r_kernel.ipynb", "kernel 'ir' runs R, not Python"),
    ("schema_error.ipynb", "cell 0: invalid notebook at cells/0/outputs"),
    ("not_a_notebook.ipynb", "not a Jupyter notebook"),
    ("missing.ipynb", "no such file"),
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
