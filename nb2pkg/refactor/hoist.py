"""Decide which top-level definitions move from notebooks into package modules.

A function, class or UPPER_CASE constant moves when the module can give it everything it reads:
imports, builtins and other moved definitions. One that reads a notebook variable, declares
`global`, is defined more than once or holds IPython syntax stays in the notebook, with the
reason. A definition identical in several notebooks moves once, into the shared module.
"""

from __future__ import annotations

import ast
import re
from dataclasses import dataclass
from typing import TYPE_CHECKING, Iterable

from ..analysis.dataflow import BUILTIN_NAMES, DataFlow
from ..analysis.parse import ParsedCell
from ..analysis.scope import BlockIO, block_io, block_io_and_writes
from ..magics import is_placeholder_name, lists_packages
from ..notebook import Notebook

if TYPE_CHECKING:  # lift.py imports this module
    from .lift import Lifted

# IPython puts these in every namespace; a module has to import them.
IPYTHON_IMPORTS = {"display": "from IPython.display import display"}


@dataclass(frozen=True)
class Hoisted:
    notebook: int
    cell: int
    index: int  # top-level statement index in the cell
    name: str
    kind: str  # "function", "class" or "constant"
    module: str  # module key (a notebook's module, or "common")
    reads: frozenset[str]  # module-level names it needs (imports, other hoisted names)
    note: str = ""  # what changed on the way (refactor/lift.py: variables became parameters)
    lifted: Lifted | None = None  # the notebook variables it now takes as parameters, if any


@dataclass(frozen=True)
class Kept:
    notebook: int
    cell: int
    name: str
    reason: str


@dataclass(frozen=True)
class ImportTable:
    """Names bound only by identical top-level imports, per notebook: name -> import statement."""

    by_notebook: tuple[dict[str, str], ...]
    # Per notebook, per top-level package: the submodules its imports and magics load (`from
    # a.b import c` loads `a.b`, `%matplotlib` loads `matplotlib.pyplot`). Each is then an
    # attribute of the package, which code may use (`a.b.f()`) after `import a` alone.
    submodules: tuple[dict[str, tuple[str, ...]], ...]

    def statement(self, notebook: int, name: str) -> str | None:
        return self.by_notebook[notebook].get(name)

    def loaded_with(self, notebook: int, statement: str, code: str) -> list[str]:
        """``import a.b`` for each submodule the notebook loads of the package that
        ``statement`` (``import a``, ``import a as x``) imports and ``code`` reaches through
        it (``x.b.f()``); [] for other statements."""
        match = re.fullmatch(r"import (\w+)(?: as (\w+))?", statement)
        if not match:
            return []
        package, bound = match.group(1), match.group(2) or match.group(1)
        return [f"import {name}" for name in self.submodules[notebook].get(package, ())
                if re.search(rf"(?<![\w.]){bound}{re.escape(name[len(package):])}\b", code)]


def import_table(parsed: list[tuple[ParsedCell, ...]], flows: list[DataFlow]) -> ImportTable:
    tables = []
    loaded = []
    for cells, flow in zip(parsed, flows):
        submodules: dict[str, list[str]] = {}
        for cell in cells:
            dotted = ["matplotlib.pyplot" for m in cell.masked.magics
                      if m.kind == "line" and m.name == "matplotlib"]
            for statement in cell.tree.body if cell.tree is not None else ():
                if isinstance(statement, ast.Import):
                    dotted += [a.name for a in statement.names]
                elif isinstance(statement, ast.ImportFrom) and statement.module and not statement.level:
                    dotted.append(statement.module)
            for name in dotted:
                if "." in name and name not in submodules.get(name.split(".")[0], ()):
                    submodules.setdefault(name.split(".")[0], []).append(name)
        loaded.append({top: tuple(names) for top, names in submodules.items()})
        found: dict[str, set[str]] = {}
        bound_by_import: dict[str, int] = {}
        importing: dict[str, set[int]] = {}  # name -> the cells importing it (any import)
        for cell in cells:
            if cell.tree is None:
                continue
            for statement in cell.tree.body:
                if isinstance(statement, (ast.Import, ast.ImportFrom)):
                    for alias in statement.names:
                        bound = alias.asname or (alias.name if isinstance(statement, ast.ImportFrom)
                                                 else alias.name.split(".")[0])
                        importing.setdefault(bound, set()).add(cell.cell)
                if isinstance(statement, ast.Import):
                    for alias in statement.names:
                        name = alias.asname or alias.name.split(".")[0]
                        text = f"import {alias.name}" + (f" as {alias.asname}" if alias.asname else "")
                        found.setdefault(name, set()).add(text)
                        bound_by_import[name] = bound_by_import.get(name, 0) + 1
                elif isinstance(statement, ast.ImportFrom) and statement.level == 0:
                    for alias in statement.names:
                        if alias.name == "*":
                            continue
                        name = alias.asname or alias.name
                        text = f"from {statement.module} import {alias.name}" + (
                            f" as {alias.asname}" if alias.asname else "")
                        found.setdefault(name, set()).add(text)
                        bound_by_import[name] = bound_by_import.get(name, 0) + 1
        table = {}
        for name, texts in found.items():
            # Bound elsewhere too (assigned, or imported differently): not a plain import.
            other_bindings = len(flow.defined_in.get(name, ())) > len(importing.get(name, ()))
            if len(texts) == 1 and not other_bindings:
                table[name] = texts.pop()
        tables.append(table)
    return ImportTable(tuple(tables), tuple(loaded))


def _is_constant(statement: ast.stmt) -> str | None:
    if isinstance(statement, ast.Assign) and len(statement.targets) == 1 \
            and isinstance(statement.targets[0], ast.Name):
        name = statement.targets[0].id
        if name.isupper() and len(name) > 1:
            try:
                ast.literal_eval(statement.value)
            except (ValueError, TypeError, SyntaxError, MemoryError, RecursionError):
                return None
            return name
    return None


def plan_hoisting(notebooks: list[Notebook], parsed: list[tuple[ParsedCell, ...]],
                  flows: list[DataFlow], imports: ImportTable,
                  modules: list[str]) -> tuple[list[Hoisted], list[Kept]]:
    """What moves to which module, and what stays (with why)."""
    candidates: list[tuple[int, ParsedCell, int, str, str, ast.stmt]] = []
    kept: list[Kept] = []
    ios: dict[int, BlockIO] = {}  # id(statement) -> block_io([statement]), of the candidates
    for nb, (notebook, cells, flow) in enumerate(zip(notebooks, parsed, flows)):
        parameters = notebook.parameters_cell.index if notebook.parameters_cell else None
        listing = package_listing(cells)
        for cell in cells:
            if cell.tree is None:
                continue
            writes: list[frozenset[str]] | None = None  # what each statement of the cell binds
            for index, statement in enumerate(cell.tree.body):
                if isinstance(statement, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
                    kind = "class" if isinstance(statement, ast.ClassDef) else "function"
                    name = statement.name
                else:
                    name = _is_constant(statement) or ""
                    kind = "constant"
                    if not name or cell.cell == parameters:
                        continue
                if writes is None:
                    writes = block_io_and_writes(cell.tree.body)[1]
                io = ios[id(statement)] = block_io([statement])
                reason = _blocker(statement, name, flow, io, writes) or (
                    isinstance(statement, ast.ClassDef) and _default_repr_shown(statement, cells))
                if not reason and kind != "constant" and listing and \
                        (cell.cell, statement.lineno) < listing:
                    reason = (f"cell {listing[0]} runs `%watermark -iv`, which lists the package "
                              "of each function and class the notebook holds: imported from the "
                              "package, it would add the package to that list")
                if reason:
                    kept.append(Kept(nb, cell.cell, name, reason))
                else:
                    candidates.append((nb, cell, index, name, kind, statement))

    # Drop candidates that read notebook variables, until nothing changes (they may read each other).
    alive = {(c[0], c[3]) for c in candidates}
    needs: dict[tuple[int, str], set[str]] = {}
    for nb, cell, index, name, kind, statement in candidates:
        io = ios[id(statement)]
        needs[(nb, name)] = ((set(io.reads) | io.deferred_reads) - {name}) - {
            n for n in BUILTIN_NAMES if n not in flows[nb].defined_in}
    changed = True
    reasons: dict[tuple[int, str], str] = {}
    while changed:
        changed = False
        for (nb, name), wanted in needs.items():
            if (nb, name) not in alive:
                continue
            for other in sorted(wanted):
                if is_placeholder_name(other):
                    continue
                if imports.statement(nb, other) or (nb, other) in alive or other in IPYTHON_IMPORTS:
                    continue
                alive.discard((nb, name))
                reasons[(nb, name)] = (f"reads notebook variable `{other}`; pass it as an argument "
                                       "to move it into the package")
                changed = True
                break

    shared = _shared(candidates, alive, needs, imports)
    hoisted = []
    for nb, cell, index, name, kind, statement in candidates:
        if (nb, name) not in alive:
            kept.append(Kept(nb, cell.cell, name, reasons[(nb, name)]))
            continue
        module = "common" if (nb, name) in shared else modules[nb]
        hoisted.append(Hoisted(nb, cell.cell, index, name, kind, module,
                               frozenset(n for n in needs[(nb, name)] if not is_placeholder_name(n))))
    return hoisted, kept


def package_listing(cells: Iterable[ParsedCell]) -> tuple[int, int] | None:
    """(cell, line) of the notebook's last ``%watermark -iv`` (``magics.lists_packages``), or
    None: a function or class of the package bound before it changes what it prints."""
    return max(((cell.cell, m.line) for cell in cells for m in cell.masked.magics
                if lists_packages(m)), default=None)


def _blocker(statement: ast.stmt, name: str, flow: DataFlow, io: BlockIO,
             cell_writes: list[frozenset[str]]) -> str | None:
    """Why ``statement`` (whose ``block_io`` is ``io``, in a cell whose statements bind
    ``cell_writes``) must stay in the notebook, or None."""
    if len(flow.defined_in.get(name, ())) > 1:
        return "defined in more than one cell; which definition runs depends on the order"
    if sum(1 for written in cell_writes if name in written) > 1:
        return "bound more than once in its cell"
    for node in ast.walk(statement):
        if isinstance(node, (ast.Global, ast.Nonlocal)):
            return "declares `global`, so it changes notebook variables"
        if isinstance(node, ast.Name) and is_placeholder_name(node.id):
            return "contains IPython magics or shell commands"
    if io.dynamic:
        return f"uses {', '.join(io.dynamic)}, which depends on the notebook's namespace"
    namespace = _namespace_use(statement)
    if namespace:
        return (f"uses {namespace}, which sees the namespace of the module that defines it: "
                "moved into the package it would see the package's, not the notebook's")
    return None


def _default_repr_shown(statement: ast.ClassDef, cells: tuple[ParsedCell, ...]) -> str | None:
    """Why the class must stay when the notebook shows one of its instances with Python's own
    repr, which names the module that defines the class (``<__main__.Note object at 0x…>``):
    moved, the output would name the package's module instead (a third-party notebook showed
    exactly this). Shown means a cell's last expression, or an argument of ``print``,
    ``display``, ``repr`` or ``str`` or an f-string field, is a call of the class or a name
    bound to one. A base class, a metaclass or a decorator may give it another repr: those move."""
    if statement.bases or statement.keywords or statement.decorator_list or any(
            isinstance(s, (ast.FunctionDef, ast.AsyncFunctionDef)) and s.name == "__repr__"
            or isinstance(s, ast.Assign) and any(isinstance(t, ast.Name) and t.id == "__repr__"
                                                 for t in s.targets)
            for s in statement.body):
        return None
    name = statement.name
    bound = {target.id for cell in cells if cell.tree is not None for s in cell.tree.body
             if isinstance(s, ast.Assign) and _calls(s.value, name)
             for target in s.targets if isinstance(target, ast.Name)}

    def instance(node: ast.AST) -> bool:
        return _calls(node, name) or isinstance(node, ast.Name) and node.id in bound

    for cell in cells:
        if cell.tree is None or not cell.tree.body:
            continue
        last = cell.tree.body[-1]
        shown = isinstance(last, ast.Expr) and instance(last.value)
        for node in cell.nodes:
            if isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and \
                    node.func.id in ("print", "display", "repr", "str"):
                shown = shown or any(instance(a) for a in node.args)
            elif isinstance(node, ast.FormattedValue):
                shown = shown or instance(node.value)
        if shown:
            return (f"its instances are shown with Python's own repr, which names the module "
                    f"that defines the class (`<__main__.{name} object at 0x…>`): moved, they "
                    "would name the package's; define `__repr__` to move it")
    return None


def _calls(node: ast.AST, name: str) -> bool:
    return isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and node.func.id == name


_FRAME_ATTRIBUTES = {"_getframe", "currentframe", "stack", "getouterframes", "f_globals",
                     "f_locals", "f_back"}


def _namespace_use(statement: ast.stmt) -> str | None:
    """Code whose meaning depends on the module it is defined in, anywhere in ``statement``
    (method and function bodies included, which ``block_io`` does not look into)."""
    for node in ast.walk(statement):
        if isinstance(node, ast.Call) and isinstance(node.func, ast.Name):
            name = node.func.id
            # eval/exec with explicit globals do not look at the defining module.
            if name in ("eval", "exec") and len(node.args) < 2 and not any(
                    k.arg == "globals" for k in node.keywords):
                return f"`{name}()` without an explicit namespace"
            if name in ("globals", "locals", "get_ipython") or (
                    name in ("vars", "dir") and not node.args):
                return f"`{name}()`"
        elif isinstance(node, ast.Attribute) and node.attr in _FRAME_ATTRIBUTES:
            return f"frame inspection (`.{node.attr}`)"
        elif isinstance(node, ast.Name) and node.id in ("__name__", "__builtins__"):
            return f"`{node.id}`"
    return None


def _shared(candidates, alive, needs, imports: ImportTable) -> set[tuple[int, str]]:
    """Definitions that are the same text in several notebooks and need only imports."""
    notebooks_of: dict[str, set[int]] = {}
    for nb, _, _, name, _, _ in candidates:
        notebooks_of.setdefault(name, set()).add(nb)
    by_text: dict[tuple[str, str], list[int]] = {}
    for nb, cell, index, name, kind, statement in candidates:
        # Compared as text only when another notebook defines the name too.
        if (nb, name) in alive and len(notebooks_of[name]) > 1:
            by_text.setdefault((name, ast.dump(statement)), []).append(nb)
    shared: set[tuple[int, str]] = set()
    for (name, _), notebooks in by_text.items():
        if len(set(notebooks)) < 2:
            continue
        statements = {imports.statement(nb, n) or IPYTHON_IMPORTS.get(n)
                      for nb in notebooks for n in needs[(nb, name)]}
        if all(s is not None for s in statements) and all(
                {imports.statement(nb, n) or IPYTHON_IMPORTS.get(n) for n in needs[(nb, name)]}
                == {imports.statement(notebooks[0], n) or IPYTHON_IMPORTS.get(n)
                    for n in needs[(notebooks[0], name)]} for nb in notebooks):
            shared.update((nb, name) for nb in notebooks)
    return shared
