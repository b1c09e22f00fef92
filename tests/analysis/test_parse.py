"""``parse.walk`` is ``list(ast.walk(...))``, faster: same nodes, same order, on real cells."""

from __future__ import annotations

import ast
import json
from pathlib import Path

import pytest

from nb2pkg.analysis.parse import walk
from nb2pkg.magics import mask

ROOT = Path(__file__).resolve().parents[2]
NOTEBOOKS = sorted((ROOT / "examples" / "notebooks").glob("*.ipynb")) + sorted(
    (ROOT / "tests" / "data" / "robustness").glob("*.ipynb"))


def _trees(path: Path) -> list[ast.Module]:
    try:
        cells = json.loads(path.read_text(encoding="utf-8"))["cells"]
    except (ValueError, KeyError, TypeError):
        return []
    trees = []
    for cell in cells:
        if not isinstance(cell, dict) or cell.get("cell_type") != "code":
            continue
        source = cell.get("source", "")
        try:
            trees.append(ast.parse(mask("".join(source) if isinstance(source, list)
                                        else str(source)).code))
        except (SyntaxError, ValueError, RecursionError, MemoryError):
            continue
    return trees


@pytest.mark.parametrize("path", NOTEBOOKS, ids=[p.name for p in NOTEBOOKS])
def test_walk_visits_what_ast_walk_visits_in_the_same_order(path: Path) -> None:
    for tree in _trees(path):
        assert [id(n) for n in walk(tree)] == [id(n) for n in ast.walk(tree)]


def test_walk_of_every_kind_of_node() -> None:
    code = ("async def f(a, *b, c=1, **d):\n    async with x as y: await z\n"
            "match p:\n    case {'k': [1, *rest], **more} if rest: pass\n"
            "lambda q: (yield)\nr = [s for s in t if s] + {u: v for u, v in w}\n"
            "try:\n    pass\nexcept* E as e:\n    del e\nprint(f'{x!r:>{width}}')\n")
    tree = ast.parse(code)
    assert [id(n) for n in walk(tree)] == [id(n) for n in ast.walk(tree)]
    assert len(walk(tree)) > 80


def test_reparse_shares_a_parse_of_the_same_source_only_inside_the_scope() -> None:
    from nb2pkg.analysis.parse import parse_cell, reparse, reusing_parses

    source = "import os\nx = [y for y in os.listdir('.')]\n%matplotlib inline\n"
    outside = reparse(source, 0, 3)
    assert outside.tree is not reparse(source, 0, 3).tree  # no scope: parsed every time
    with reusing_parses():
        first = reparse(source, 0, 3)
        again = reparse(source, 1, 7)
        assert again.tree is first.tree and again.io is first.io
        assert (again.notebook, again.cell) == (1, 7)
        fresh = parse_cell(source, 1, 7)
        assert ast.dump(again.tree) == ast.dump(fresh.tree)
        assert (again.source, again.masked, again.io, again.error) == \
            (fresh.source, fresh.masked, fresh.io, fresh.error)
        broken = reparse("x = (", 0, 1)
        assert broken.tree is None and broken.error == parse_cell("x = (").error
    assert reparse(source, 0, 3).tree is not first.tree  # the scope ended: nothing kept
    with reusing_parses():  # a new scope starts empty
        assert reparse(source, 0, 3).tree is not first.tree


def test_the_analysis_gives_identical_cells_their_own_trees() -> None:
    # Clone fingerprints tell definitions apart by identity: the analysis's parses must never
    # be shared between cells, even inside ``reusing_parses``.
    from nb2pkg.analysis.parse import parse_notebook, reparse, reusing_parses
    from nb2pkg.notebook import Cell, Notebook

    source = "def f():\n    return 1\n"
    notebook = Notebook(Path("n.ipynb"), (Cell(0, "code", source), Cell(1, "code", source)),
                        "python3", "python", None)
    with reusing_parses():
        one, two = parse_notebook(notebook)
        assert one.tree is not two.tree
        assert reparse(source).tree is one.tree  # later readers share the first


@pytest.mark.parametrize("path", NOTEBOOKS, ids=[p.name for p in NOTEBOOKS])
def test_a_cells_shared_walk_and_imports_are_those_of_its_tree(path: Path) -> None:
    from nb2pkg.analysis.parse import imported_names, parse_cell

    try:
        cells = json.loads(path.read_text(encoding="utf-8"))["cells"]
    except (ValueError, KeyError, TypeError):
        return
    for raw in cells:
        if not isinstance(raw, dict) or raw.get("cell_type") != "code":
            continue
        source = raw.get("source", "")
        cell = parse_cell("".join(source) if isinstance(source, list) else str(source))
        if cell.tree is None:
            assert cell.nodes == [] and cell.imports == ()
            continue
        assert [id(n) for n in cell.nodes] == [id(n) for n in ast.walk(cell.tree)]
        assert cell.nodes is cell.nodes  # walked once
        assert list(cell.imports) == imported_names(cell.tree)
