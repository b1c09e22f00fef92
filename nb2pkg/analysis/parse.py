"""Parse every code cell exactly once (magics masked) and keep the result for every analysis."""

from __future__ import annotations

import ast
import contextlib
import re
import warnings
from contextvars import ContextVar
from dataclasses import dataclass, field, replace
from functools import cached_property
from typing import Iterable, Iterator

from ..magics import Masked, mask
from ..notebook import Notebook
from .scope import BlockIO, block_io, remembering_functions


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

    # Several analyses read every node of a cell (its imports twice, its file paths, the
    # findings): they share one walk. Read-only lists; a frozen dataclass can cache them because
    # ``cached_property`` writes the instance's ``__dict__`` directly.
    @cached_property
    def nodes(self) -> list[ast.AST]:
        """``walk(tree)``: every node of the cell, breadth-first, walked once ([] if opaque)."""
        return walk(self.tree) if self.tree is not None else []

    @cached_property
    def imports(self) -> tuple[str, ...]:
        """``imported_names(tree)``, computed once (() if opaque)."""
        return tuple(_imported_names(self.nodes))


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
    cells = tuple(parse_cell(c.source, position, c.index) for c in notebook.cells if c.is_code)
    kept = _parses.get()
    if kept is not None:
        for cell in cells:
            if cell.tree is not None:
                kept.setdefault(cell.source, cell)
    return cells


# Parses kept by source while a conversion is planned (``reusing_parses``): planning parses the
# refactored notebooks again (the pipeline split, the tidying), and most of their cells are the
# original cells unchanged.
_parses: ContextVar[dict[str, ParsedCell] | None] = ContextVar("nb2pkg_parses", default=None)


@contextlib.contextmanager
def reusing_parses() -> Iterator[None]:
    """Within: ``parse_notebook`` and ``reparse`` keep their parses, which ``reparse`` hands out
    again for the same source, and the scope analysis scans each function once. Scoped, so a
    long-running process (the lab) keeps no trees."""
    token = _parses.set({})
    try:
        with remembering_functions():
            yield
    finally:
        _parses.reset(token)


def reparse(source: str, notebook: int = 0, cell: int = 0) -> ParsedCell:
    """``parse_cell(source, notebook, cell)``, sharing the syntax tree of an earlier parse of the
    same source inside ``reusing_parses``.

    For readers only: the tree may be another cell's (ast parsing is deterministic, and nothing
    in nb2pkg changes a tree), so the caller must not change it nor tell statements apart by
    identity (``clones`` does, for definitions: the analysis itself uses ``parse_cell``).
    """
    kept = _parses.get()
    if kept is None:
        return parse_cell(source, notebook, cell)
    found = kept.get(source)
    if found is not None:
        return replace(found, notebook=notebook, cell=cell)
    parsed = parse_cell(source, notebook, cell)
    if parsed.tree is not None:
        kept[source] = parsed
    return parsed


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
    return _imported_names(walk(tree))


def _imported_names(nodes: list[ast.AST]) -> list[str]:
    names = []
    for node in nodes:
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


# `np.sin(x1)` inside a string: formula languages (patsy, formulaic: "y ~ np.log(x)") and
# `DataFrame.eval`/`query` with `@` evaluate such text in the caller's namespace.
_NAME_IN_TEXT = re.compile(r"(?<![\w.])([A-Za-z_]\w*)\s*\.\s*[A-Za-z_]")


def names_in_strings(nodes: Iterable[ast.AST]) -> set[str]:
    """The names that string literals among ``nodes`` use as ``name.attribute``: read when a
    formula in the string is evaluated, so an import binding one of them is needed. A string
    that is a statement of its own (a docstring) is not evaluated."""
    nodes = list(nodes)
    alone = {id(n.value) for n in nodes if isinstance(n, ast.Expr)}
    return {name for node in nodes if isinstance(node, ast.Constant) and isinstance(node.value, str)
            and "." in node.value and id(node) not in alone
            for name in _NAME_IN_TEXT.findall(node.value)}
