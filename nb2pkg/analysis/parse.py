"""Parse every code cell exactly once (magics masked) and keep the result for every analysis."""

from __future__ import annotations

import ast
import warnings
from dataclasses import dataclass, field

from ..magics import Masked, mask
from ..notebook import Notebook
from .scope import BlockIO, block_io


@dataclass(frozen=True)
class ParsedCell:
    """A code cell with its masked source, its syntax tree and what it reads and writes.

    ``tree`` is None when the cell does not parse even with magics masked: such a cell is
    opaque, kept verbatim everywhere, and ``error`` says why.
    """

    notebook: int  # position of the notebook in the analysed list
    cell: int  # cell index in its notebook
    source: str
    masked: Masked = field(repr=False)
    tree: ast.Module | None = field(repr=False, compare=False)
    io: BlockIO | None = field(repr=False, compare=False)
    error: str | None = None

    @property
    def opaque(self) -> bool:
        return self.tree is None


def parse_cell(source: str, notebook: int = 0, cell: int = 0) -> ParsedCell:
    masked = mask(source)
    try:
        with warnings.catch_warnings():
            # Invalid escape sequences in user code are the user's business, not a parse failure.
            warnings.simplefilter("ignore")
            tree = ast.parse(masked.code)
    except SyntaxError as exc:
        detail = f"line {exc.lineno}: {exc.msg}" if exc.lineno else str(exc.msg)
        return ParsedCell(notebook, cell, source, masked, None, None, f"syntax error at {detail}")
    except (ValueError, RecursionError, MemoryError) as exc:  # NUL bytes, absurd nesting
        return ParsedCell(notebook, cell, source, masked, None, None, f"cannot parse: {exc}")
    try:
        io = block_io(tree.body)
    except RecursionError:
        # ast parses expressions nested up to ~3000 deep (`a + b + ...` with 1000+ terms, long
        # attribute chains) that the recursive analyses cannot walk: keep such a cell opaque
        # instead of crashing (tests/data/robustness/deeply_nested_expression.ipynb).
        return ParsedCell(notebook, cell, source, masked, None, None,
                          "cannot analyse: an expression is nested too deeply")
    return ParsedCell(notebook, cell, source, masked, tree, io)


def parse_notebook(notebook: Notebook, position: int = 0) -> tuple[ParsedCell, ...]:
    """Parse every code cell of ``notebook``; markdown and raw cells are skipped."""
    return tuple(parse_cell(c.source, position, c.index) for c in notebook.cells if c.is_code)


def walk(node: ast.AST) -> list[ast.AST]:
    """``list(ast.walk(node))``, the same nodes in the same (breadth-first) order, in 60 % of the
    time: the analyses walk every cell several times (a fifth of a 600-cell conversion's work
    was ``ast.walk``'s generators). Eager: for a search that stops early, ``ast.walk`` is
    cheaper."""
    found = [node]
    append = found.append
    node_type = ast.AST
    i = 0
    while i < len(found):
        current = found[i]
        i += 1
        for name in current._fields:
            value = getattr(current, name, None)
            if isinstance(value, list):
                for item in value:
                    if isinstance(item, node_type):
                        append(item)
            elif isinstance(value, node_type):
                append(value)
    return found


def imported_names(tree: ast.AST) -> list[str]:
    """Top-level names of the absolute imports anywhere in ``tree``, in order (with repeats)."""
    names = []
    for node in walk(tree):
        if isinstance(node, ast.Import):
            names += [alias.name.split(".")[0] for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            names.append(node.module.split(".")[0])
    return names


def dotted_name(node: ast.expr) -> str:
    """``a.b.c`` for an attribute chain on a name; the attributes alone on anything else
    (``f().b`` -> ``b``); "" for neither."""
    parts = []
    while isinstance(node, ast.Attribute):
        parts.append(node.attr)
        node = node.value
    if isinstance(node, ast.Name):
        parts.append(node.id)
    return ".".join(reversed(parts))
