"""Tidy a refactored notebook: the package's imports gathered where the notebook imports, and
imports the refactoring left unused removed, each only when behaviour provably stays the same.

- A moved definition's ``from pkg.module import name`` goes after the last top-level import of
  the notebook's first importing cell (instead of where the definition was) when nothing between
  there and the old place mentions the name or lists the namespace (``%whos``, ``%watermark
  -iv``), and the notebook has imported by then every library the package module imports
  (``ready_at``: importing the package loads them, and an import that prints, a library's
  warning, would print in another cell): binding it earlier then changes nothing.
- An import the original notebook read and the refactored one no longer reads (its uses moved
  into the package) is removed when a package module the notebook imports makes the same import
  from the same or an earlier cell (so the module and its side effects still load no later)
  and no cell reaches names dynamically (``globals()``, ``%who``...).
"""

from __future__ import annotations

import ast
import re
from dataclasses import dataclass
from typing import Iterable, Mapping, Sequence

from ..analysis.parse import ParsedCell, reparse
from ..magics import NAMESPACE_MAGICS


@dataclass(frozen=True)
class ImportCell:
    cell: int  # index of the notebook's first cell with a top-level import
    index: int  # top-level statement index of its last top-level import
    end_line: int  # the line that import ends on


def import_cell(cells: Sequence[ParsedCell]) -> ImportCell | None:
    for cell in cells:
        if cell.tree is None:
            continue
        found = [i for i, s in enumerate(cell.tree.body) if isinstance(s, (ast.Import, ast.ImportFrom))]
        if found:
            last = cell.tree.body[found[-1]]
            return ImportCell(cell.cell, found[-1], last.end_lineno or last.lineno)
    return None


def _mentions(text: str, name: str) -> bool:
    # The substring test first: most cells do not contain the name at all, and it is much
    # cheaper than the regular expression (which can only match where the substring is).
    return name in text and re.search(rf"(?<![\w.]){re.escape(name)}\b", text) is not None


def can_gather(cells: dict[int, ParsedCell], target: ImportCell, cell: int, line: int,
               name: str) -> bool:
    """May ``name``, defined at ``line`` of ``cell``, be imported at ``target`` instead?"""
    if cell < target.cell:
        return False
    for index in range(target.cell, cell + 1):
        parsed = cells.get(index)
        if parsed is None:
            continue
        first = target.end_line if index == target.cell else 0  # lines [first, last) between
        last = line - 1 if index == cell else len(parsed.source.splitlines())
        if last < first:
            return False
        text = "\n".join(parsed.source.splitlines()[first:last])
        # `%whos` or `%watermark -iv` in between would list it where the original did not.
        if _mentions(text, name) or any(m.name in NAMESPACE_MAGICS and first < m.line <= last
                                        for m in parsed.masked.magics):
            return False
    return True


def first_imports(cells: Iterable[ParsedCell]) -> dict[str, tuple[int, int]]:
    """Top-level package -> (cell, line) where the notebook first imports it or one of its
    modules, outside any function."""
    found: dict[str, tuple[int, int]] = {}

    def visit(body: list[ast.stmt], cell: int) -> None:
        for statement in body:
            for module, _, _ in statement_forms(statement):
                found.setdefault(module.split(".")[0], (cell, statement.lineno))
            if not isinstance(statement, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
                for field in ("body", "orelse", "finalbody"):
                    visit(getattr(statement, field, None) or [], cell)
                for handler in getattr(statement, "handlers", None) or []:
                    visit(handler.body, cell)

    for cell in cells:
        if cell.tree is not None:
            visit(cell.tree.body, cell.cell)
    return found


def ready_at(module: str, imports: Mapping[str, Sequence[str]],
             first: Mapping[str, tuple[int, int]]) -> tuple[int, int] | None:
    """Where the original notebook has imported (a module of) every top-level package the
    package module ``module`` imports (its own package's modules followed): importing
    ``module`` there or later loads no library earlier than the original did, so what a
    library prints when imported stays in its cell. None when the notebook never imports one
    of them itself (mesa's pd_grid analysis reaches mesa through its local `model.py`, and
    `mesa.visualization` prints solara's warnings). Packages, not modules: a submodule the
    notebook imports later, of a package it imported before, rarely prints, and waiting for
    each would scatter the package's imports through the notebook; `--verify` sees it if it
    does."""
    latest, seen, todo = (0, 0), {module}, [module]
    while todo:
        for line in imports.get(todo.pop(), ()):
            own = re.match(r"from \.(\w*) import", line)
            if own:
                name = own.group(1)
                if name and name not in seen:
                    seen.add(name)
                    todo.append(name)
                continue
            for imported in import_forms([line]):
                where = first.get(imported[0].split(".")[0])
                if where is None:
                    return None
                latest = max(latest, where)
    return latest


def names_read(sources: Iterable[str]) -> tuple[set[str], bool]:
    """Every name the cells read (function bodies and magics included), and whether a cell
    reaches names dynamically. A cell that does not parse counts as reading every word in it."""
    read: set[str] = set()
    dynamic = False
    for source in sources:
        cell = reparse(source)
        if cell.tree is None or cell.io is None:
            read |= set(re.findall(r"[A-Za-z_]\w*", source))
            continue
        dynamic = dynamic or bool(cell.io.dynamic)
        for node in cell.nodes:
            if isinstance(node, ast.Name) and isinstance(node.ctx, ast.Load):
                read.add(node.id)
        for magic in cell.masked.magics:
            read |= set(re.findall(r"[A-Za-z_]\w*", magic.text))
            if magic.name in NAMESPACE_MAGICS:
                dynamic = True
    return read, dynamic


def import_forms(lines: Iterable[str]) -> set[tuple[str, str, str]]:
    """(module, imported name or "", bound name) of import lines like a package module's."""
    forms: set[tuple[str, str, str]] = set()
    for line in lines:
        try:
            tree = ast.parse(line)
        except SyntaxError:
            continue
        for statement in tree.body:
            forms |= set(statement_forms(statement))
    return forms


def statement_forms(statement: ast.stmt) -> list[tuple[str, str, str]]:
    if isinstance(statement, ast.Import):
        return [(a.name, "", a.asname or a.name.split(".")[0]) for a in statement.names]
    if isinstance(statement, ast.ImportFrom) and statement.level == 0 and statement.module \
            and statement.module != "__future__":
        return [(statement.module, a.name, a.asname or a.name) for a in statement.names
                if a.name != "*"]
    return []


def without_names(statement: ast.stmt, drop: set[str]) -> str:
    """The import statement without the aliases binding ``drop`` ("" when none is left)."""
    assert isinstance(statement, (ast.Import, ast.ImportFrom))
    kept = [a for a in statement.names if (a.asname or (a.name.split(".")[0] if isinstance(
        statement, ast.Import) else a.name)) not in drop]
    if not kept:
        return ""
    names = ", ".join(a.name + (f" as {a.asname}" if a.asname else "") for a in kept)
    if isinstance(statement, ast.Import):
        return f"import {names}"
    return f"from {statement.module} import {names}"
