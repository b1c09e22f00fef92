"""``refactor.tidy``: when a moved definition may be imported in the notebook's import cell."""

from nb2pkg.analysis.parse import parse_cell
from nb2pkg.refactor.tidy import _mentions, can_gather, import_cell


def test_a_mention_is_the_name_as_a_word_not_an_attribute_nor_part_of_a_name() -> None:
    assert _mentions("y = f(x)", "f")
    assert _mentions("print(f)", "f")
    assert not _mentions("y = g.f(x)", "f")
    assert not _mentions("y = ff(x) + f_(x)", "f")
    assert not _mentions("x = 1", "f")


def test_gathering_stops_at_a_mention_between_the_import_and_the_definition() -> None:
    sources = ["import os\nx = 1\n", "y = 2\n", "z = helper(3)\n", "def helper(v):\n    return v\n"]
    cells = {i: parse_cell(s, 0, i) for i, s in enumerate(sources)}
    target = import_cell(list(cells.values()))
    assert target is not None and (target.cell, target.end_line) == (0, 1)
    assert not can_gather(cells, target, 3, 1, "helper")  # cell 2 calls it before it is defined
    cells[2] = parse_cell("z = 3\n", 0, 2)
    assert can_gather(cells, target, 3, 1, "helper")
    assert not can_gather(cells, target, 3, 1, "x")  # read after the import, in its cell


def test_gathering_stops_at_a_magic_that_lists_the_namespace() -> None:
    # Imported in cell 0, `helper` would show in cell 1's listing, where the original had not
    # defined it yet (`%watermark -iv` would show the package it now comes from).
    for listing in ("%whos", "%who", "%watermark -iv"):
        sources = ["import os\n", f"x = 1\n{listing}\n", "def helper(v):\n    return v\n"]
        cells = {i: parse_cell(s, 0, i) for i, s in enumerate(sources)}
        target = import_cell(list(cells.values()))
        assert not can_gather(cells, target, 2, 1, "helper"), listing
    sources = ["%whos\nimport os\n", "x = 1\n", "def helper(v):\n    %who\n    return v\n"]
    cells = {i: parse_cell(s, 0, i) for i, s in enumerate(sources)}
    assert can_gather(cells, import_cell(list(cells.values())), 2, 1, "helper")  # before, inside
