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
