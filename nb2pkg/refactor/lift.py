"""Notebook functions that read notebook variables: the variables become parameters and every
call passes the notebook's value, so the function can move into the package.

``def to_label(p): return p >= CHURN_THRESHOLD`` reads the notebook's ``CHURN_THRESHOLD`` each
time it runs. Rewritten as ``def to_label(p, churn_threshold=0.5)`` and called as
``to_label(p, churn_threshold=CHURN_THRESHOLD)`` it computes the same thing: the call reads the
variable's *current* value, in the scope of the call, an instant before the body did. The
default is the literal the variable held when the function was defined (none when it was not
a plain literal). This module rewrites the notebook's own cells that way (a notebook-to-notebook
rewrite that changes no output), then the usual hoisting moves the function: it no longer reads
notebook variables.

The instant between the call and the read is what could differ, and what makes a rewrite
unprovable is refused, with the reason:

- something may rebind the variable while the function runs: a ``global`` or ``nonlocal``
  statement naming it anywhere in the notebook, ``exec``/``eval``/``globals()``/``get_ipython()``
  inside any function of the notebook, or ``del`` of it;
- the function reads it later than its call (in a nested function, lambda or generator, or the
  function is itself a generator or coroutine) while the notebook binds it more than once;
- a call cannot be rewritten: the function used as a value (``df.apply(to_label)``: ``partial``
  would fix the value at that moment, while the notebook may rebind it before the call), a call
  with ``**kwargs``, a call where the variable or the function is a local name, a call inside
  IPython syntax or an unparsable cell that names it, a call that may run before the notebook
  binds the variable (the body may have printed something before failing), a recursive call;
- the function is decorated, or its defaults or annotations read a notebook variable (those
  are read once, when it is defined), or it calls a notebook function that stays in the notebook.

Functions that read lifted functions follow: when ``f`` calls ``g`` and both lift, ``f`` gets
``g``'s variables as parameters too and passes them on.
"""

from __future__ import annotations

import ast
import re
from dataclasses import dataclass, replace
from typing import Iterator, Mapping

from ..analysis import Analysis, NotebookAnalysis, combine
from ..analysis.clones import _fingerprint, statement_list
from ..analysis.dataflow import BUILTIN_NAMES, dataflow
from ..analysis.parse import ParsedCell, parse_cell
from ..analysis.scope import block_io
from ..magics import is_placeholder_name, unmask
from ..notebook import Notebook
from ..notebook_format import copy_node
from .hoist import IPYTHON_IMPORTS, Hoisted, ImportTable, Kept
from .naming import Namer, names_in

# Calls that can rebind notebook variables from inside a function while another one runs.
_REBINDING_CALLS = frozenset({"exec", "eval", "globals", "get_ipython"})
# Nodes whose body runs later than the code around them (or in its own namespace).
_LATER = (ast.FunctionDef, ast.AsyncFunctionDef, ast.Lambda, ast.GeneratorExp, ast.ClassDef)
_SCOPES = (*_LATER, ast.ListComp, ast.SetComp, ast.DictComp)
_MAX_DEFAULT = 40  # characters: a longer literal is no help in a signature
# Cells without these words hold nothing _notebook_wide_blockers looks for (a cheap first look).
_BLOCKER_WORDS = re.compile(r"\b(?:global|nonlocal|del|exec|eval|globals|get_ipython)\b")


@dataclass(frozen=True)
class LiftedParameter:
    variable: str  # the notebook variable
    parameter: str  # the parameter that replaces it
    default: str | None  # source of the literal the variable held at the definition, if any


@dataclass(frozen=True)
class Lifted:
    notebook: int
    cell: int
    name: str
    parameters: tuple[LiftedParameter, ...]
    calls: int  # call sites rewritten to pass the variables

    @property
    def note(self) -> str:
        """One line for REPORT.md: what changed in the signature and at the calls."""
        parts = [f"`{p.variable}` became its parameter `{p.parameter}`"
                 + (f" (default `{p.default}`)" if p.default else "") for p in self.parameters]
        calls = "its call passes" if self.calls == 1 else f"its {self.calls} calls pass"
        return "; ".join(parts) + f"; {calls} the notebook's value"


@dataclass(frozen=True)
class Lifting:
    analysis: Analysis  # of the rewritten notebooks (the same object when nothing was lifted)
    lifted: tuple[Lifted, ...]
    refused: Mapping[tuple[int, str], str]  # (notebook, function) -> why it stays

    def annotate(self, hoisted: list[Hoisted], kept: list[Kept]) -> tuple[list[Hoisted], list[Kept]]:
        """``hoisted`` with what lifting changed, ``kept`` with why lifting was refused."""
        lifted = {(item.notebook, item.name): item for item in self.lifted}
        return ([replace(h, note=item.note, lifted=item) if (item := lifted.get((h.notebook, h.name)))
                 else h for h in hoisted],
                [replace(k, reason=self.refused.get((k.notebook, k.name), k.reason)) for k in kept])


@dataclass
class _Function:
    notebook: int
    cell: ParsedCell
    index: int
    node: ast.FunctionDef | ast.AsyncFunctionDef
    variables: list[str]  # its own notebook variables, in first-read order
    calls: set[str]  # lifting candidates it calls

    @property
    def name(self) -> str:
        return self.node.name


def lift_variables(analysis: Analysis, imports: ImportTable,
                   hoisting: tuple[list[Hoisted], list[Kept]]) -> Lifting:
    """Rewrite the notebooks so that functions reading notebook variables take them as
    parameters (see the module docstring); the analysis of the rewritten notebooks.
    ``hoisting`` is what ``plan_hoisting`` decided for ``analysis``."""
    hoisted, kept = hoisting
    moving = {(h.notebook, h.name) for h in hoisted}
    refused: dict[tuple[int, str], str] = {}
    lifted: list[Lifted] = []
    rewritten = list(analysis.notebooks)
    for nb, result in enumerate(analysis.notebooks):
        candidates = {k.name for k in kept if k.notebook == nb
                      and k.reason.startswith("reads notebook variable")}
        if not candidates:
            continue
        done, why = _lift_notebook(nb, result, candidates, imports, moving)
        refused.update({(nb, name): reason for name, reason in why.items()})
        if done:
            sources, items = done
            rewritten[nb] = _reanalysed(result, sources, nb)
            lifted += items
    if not lifted:
        return Lifting(analysis, (), refused)
    if _same_clones(analysis.clones, rewritten):
        new = replace(analysis, notebooks=tuple(rewritten))
    else:  # a call that now differs from its copies: find the groups again
        new = combine(rewritten, analysis.min_statements, analysis.min_lines)
    return Lifting(new, tuple(lifted), refused)


def _reanalysed(result: NotebookAnalysis, sources: dict[int, str], position: int) -> NotebookAnalysis:
    """The analysis of ``result``'s notebook with some cells' sources replaced (those parsed
    again); its findings stay those of the notebook as written (they are about the user's
    code)."""
    node = copy_node(result.notebook.node)
    for index, source in sources.items():
        node.cells[index].source = source
    cells = tuple(replace(c, source=sources[c.index]) if c.index in sources else c
                  for c in result.notebook.cells)
    notebook: Notebook = replace(result.notebook, cells=cells, node=node)
    parsed = tuple(parse_cell(sources[c.cell], position, c.cell) if c.cell in sources else c
                   for c in result.cells)
    return replace(result, notebook=notebook, cells=parsed, flow=dataflow(parsed))


def _same_clones(groups, rewritten: list[NotebookAnalysis]) -> bool:
    """Are the clone groups still groups of the rewritten cells (every copy's statements of
    one shape)? The rewrite adds the same arguments to every call of a function, so they are,
    unless a copy called a lifted function where another called something else."""
    cells = {(c.notebook, c.cell): c for result in rewritten for c in result.cells}
    for group in groups:
        shapes = set()
        for o in group.occurrences:
            cell = cells[(o.notebook, o.cell)]
            if cell.tree is None:
                return False
            body = statement_list(cell.tree, o.path)[o.start:o.stop]
            shapes.add(tuple(_fingerprint(cell, s)[0] for s in body))
        if len(shapes) > 1:
            return False
    return True


class _Refused(Exception):
    pass


def _lift_notebook(nb: int, result: NotebookAnalysis, candidates: set[str], imports: ImportTable,
                   moving: set[tuple[int, str]]):
    """(cell sources, Lifted records) or None, and the reasons of the candidates refused."""
    cells = list(result.cells)
    flow = result.flow
    why: dict[str, str] = {}
    defined_by_def = {name for c in cells if c.io is not None for name in c.io.defines}
    functions: dict[str, _Function] = {}
    for cell in cells:
        if cell.tree is None:
            continue
        for index, statement in enumerate(cell.tree.body):
            if isinstance(statement, (ast.FunctionDef, ast.AsyncFunctionDef)) \
                    and statement.name in candidates:
                functions[statement.name] = _Function(nb, cell, index, statement, [], set())

    def outside(name: str) -> bool:
        """Given to the function by its module: builtins, imports, definitions that move."""
        return ((name in BUILTIN_NAMES and name not in flow.defined_in) or is_placeholder_name(name)
                or imports.statement(nb, name) is not None or (nb, name) in moving
                or name in IPYTHON_IMPORTS)

    for name, f in list(functions.items()):
        try:
            _own_reads(f, outside, functions, defined_by_def, flow.defined_in)
        except _Refused as exc:
            why[name] = str(exc)
            del functions[name]

    wanted = {v for f in functions.values() for v in f.variables}
    bindings = _bindings(cells, wanted)
    notebook_wide = _notebook_wide_blockers(cells)
    every_reference = _references(cells, set(functions))
    as_text = _named_as_text(cells)
    while True:  # refusing one may refuse those that call it
        for name, f in list(functions.items()):
            stuck = sorted(f.calls - set(functions))
            if stuck:
                why[name] = (f"calls `{stuck[0]}`, which stays in the notebook, and reads "
                             f"notebook variables")
                del functions[name]
        variables = _closure(functions)
        references = {name: every_reference.get(name, []) for name in functions}
        failed = {}
        for name, f in functions.items():
            try:
                _check(f, variables, references.get(name, []), functions, bindings,
                       notebook_wide, cells, as_text)
            except _Refused as exc:
                failed[name] = str(exc)
        if not failed:
            break
        why.update(failed)
        for name in failed:
            del functions[name]
    if not functions:
        return None, why
    return _rewrite(nb, cells, functions, variables, references, bindings), why


def _own_reads(f: _Function, outside, functions: dict[str, _Function], defined_by_def: set[str],
               defined_in: Mapping[str, tuple[int, ...]]) -> None:
    node = f.node
    if node.decorator_list:
        raise _Refused("reads notebook variables and is decorated: a decorator may depend on "
                       "its signature")
    io = block_io([node])
    for name in io.reads:  # defaults and annotations, read once, when the function is defined
        if not outside(name):
            raise _Refused(f"its defaults or annotations read notebook variable `{name}` when "
                           "it is defined; move that value into the function to lift it")
    loads = sorted((n for n in ast.walk(node) if isinstance(n, ast.Name)
                    and isinstance(n.ctx, ast.Load)), key=lambda n: (n.lineno, n.col_offset))
    free = io.deferred_reads
    order = {n.id: i for i, n in reversed(list(enumerate(loads)))}
    for name in sorted(free, key=lambda n: order.get(n, len(order))):
        if outside(name):
            continue
        if name == f.name:
            raise _Refused("reads notebook variables and calls itself")
        if name in functions:
            f.calls.add(name)
        elif name in defined_by_def:
            raise _Refused(f"calls `{name}`, which stays in the notebook")
        elif name not in defined_in:
            raise _Refused(f"reads `{name}`, which the notebook never assigns visibly "
                           "(a magic or star import may bind it)")
        else:
            f.variables.append(name)


def _closure(functions: dict[str, _Function]) -> dict[str, list[str]]:
    """Every function's variables, its own then those of the lifted functions it calls."""
    result = {name: list(f.variables) for name, f in functions.items()}
    changed = True
    while changed:
        changed = False
        for name, f in functions.items():
            for other in sorted(f.calls):
                for variable in result.get(other, ()):
                    if variable not in result[name]:
                        result[name].append(variable)
                        changed = True
    return result


@dataclass(frozen=True)
class _Reference:
    cell: int
    top: int  # index of the top-level statement holding it
    node: ast.Name
    call: ast.Call | None  # the call it is the function of, if it is one
    scopes: tuple[ast.AST, ...]  # enclosing function, lambda, class and comprehension nodes


def _references(cells: list[ParsedCell], names: set[str]) -> dict[str, list[_Reference]]:
    found: dict[str, list[_Reference]] = {}
    if not names:
        return found
    mentioned = re.compile(r"\b(?:" + "|".join(map(re.escape, sorted(names))) + r")\b")
    for cell in cells:
        if cell.tree is None or not mentioned.search(cell.masked.code):  # (a cheap first look)
            continue
        for top, statement in enumerate(cell.tree.body):
            for node, parent, scopes in _walk(statement, None, ()):
                if isinstance(node, ast.Name) and node.id in names:
                    call = parent if isinstance(parent, ast.Call) and parent.func is node else None
                    found.setdefault(node.id, []).append(
                        _Reference(cell.cell, top, node, call, scopes))
    return found


def _walk(node: ast.AST, parent: ast.AST | None,
          scopes: tuple[ast.AST, ...]) -> Iterator[tuple[ast.AST, ast.AST | None, tuple]]:
    yield node, parent, scopes
    inner = (*scopes, node) if isinstance(node, _SCOPES) else scopes
    for child in ast.iter_child_nodes(node):
        yield from _walk(child, node, inner)


@dataclass(frozen=True)
class _Binding:
    cell: int
    index: int
    statement: ast.stmt
    definite: bool


def _bindings(cells: list[ParsedCell], names: set[str]) -> dict[str, list[_Binding]]:
    """Top-level statements binding each of ``names``, in notebook order."""
    found: dict[str, list[_Binding]] = {}
    for cell in cells:
        if cell.tree is None or cell.io is None or not (names & (cell.io.writes | cell.io.deletes)):
            continue
        for index, statement in enumerate(cell.tree.body):
            io = block_io([statement])
            for name in io.writes | io.deletes:
                found.setdefault(name, []).append(
                    _Binding(cell.cell, index, statement, name in io.definite_writes))
    return found


def _notebook_wide_blockers(cells: list[ParsedCell]) -> dict[str, str]:
    """Name -> why a function reading it cannot take it as a parameter ("*": any name)."""
    blockers: dict[str, str] = {}
    for cell in cells:
        if cell.tree is None or not _BLOCKER_WORDS.search(cell.masked.code):
            continue
        for node in ast.walk(cell.tree):
            if isinstance(node, (ast.Global, ast.Nonlocal)):
                for name in node.names:
                    blockers.setdefault(name, f"`{name}` is declared `global` in cell {cell.cell}, "
                                              "so a function may change it while this one runs")
            elif isinstance(node, ast.Delete):
                for target in node.targets:
                    if isinstance(target, ast.Name):
                        blockers.setdefault(target.id, f"`{target.id}` is deleted in cell {cell.cell}")
            elif isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.Lambda)):
                for inner in ast.walk(node):
                    if isinstance(inner, ast.Call) and isinstance(inner.func, ast.Name) \
                            and inner.func.id in _REBINDING_CALLS:
                        blockers.setdefault("*", f"a function in cell {cell.cell} calls "
                                                 f"`{inner.func.id}()`, which may change notebook "
                                                 "variables while another function runs")
    return blockers


def _check(f: _Function, variables: dict[str, list[str]], references: list[_Reference],
           functions: dict[str, _Function], bindings: dict[str, list[_Binding]],
           blockers: dict[str, str], cells: list[ParsedCell],
           as_text: dict[str, tuple[int, bool]]) -> None:
    mine = variables[f.name]
    for variable in mine:
        why = blockers.get(variable) or blockers.get("*")
        if why:
            raise _Refused(f"reads notebook variable `{variable}`, but {why}")
    # (a variable of a function it calls bound inside is refused at that call)
    inner = names_in(f.node) & set(f.variables)
    if inner:
        raise _Refused(f"reads notebook variable `{sorted(inner)[0]}` and also binds that name "
                       "inside")
    later = _read_later(f, variables, functions)
    for variable in later:
        places = bindings.get(variable, [])
        if len(places) != 1 or not _plain_assignment(places[0].statement, variable):
            raise _Refused(f"reads notebook variable `{variable}` after it returns (in a nested "
                           "function, lambda or generator), and the notebook binds it more than "
                           "once: passing the value at the call could pass an older one")
    named = as_text.get(f.name) if _WORDS.fullmatch(f.name) else _first_naming(cells, f.name)
    if named is not None:
        cell_index, opaque = named
        if opaque:
            raise _Refused(f"cell {cell_index} cannot be parsed and names `{f.name}`")
        raise _Refused(f"cell {cell_index} names `{f.name}` in IPython syntax, which cannot "
                       "be rewritten to pass its variables")
    for ref in references:
        if ref.call is None:
            raise _Refused(f"reads notebook variable `{mine[0]}` and is used as a value in cell "
                           f"{ref.cell} line {ref.node.lineno} (not called): a value that fixes "
                           f"`{mine[0]}` there could differ from the one read when it runs")
        if any(k.arg is None for k in ref.call.keywords):
            raise _Refused(f"is called with `**` arguments in cell {ref.cell} line "
                           f"{ref.node.lineno}: they could name its new parameters")
        if any(scope is f.node for scope in ref.scopes):
            raise _Refused("reads notebook variables and calls itself")
        for scope in ref.scopes:
            local = names_in(scope) & {f.name, *mine}
            if local:
                raise _Refused(f"is called in cell {ref.cell} line {ref.node.lineno} where "
                               f"`{sorted(local)[0]}` is a local name")
        owner = ref.scopes[0] if ref.scopes else None
        if isinstance(owner, (ast.FunctionDef, ast.AsyncFunctionDef)) and any(
                g.node is owner for g in functions.values()):
            continue  # inside a lifted function: it passes its own parameter
        top = next(c for c in cells if c.cell == ref.cell).tree.body[ref.top]  # type: ignore[union-attr]
        for variable in mine:
            if not (_bound_before(bindings.get(variable, []), ref.cell, ref.top)
                    or _bound_by_loop(top, variable, ref.node)):
                raise _Refused(f"is called in cell {ref.cell} line {ref.node.lineno}, where "
                               f"`{variable}` may not be bound yet")


def _texts(cell: ParsedCell) -> list[str]:
    """What of a cell can name a function only as text: all of an opaque cell, the IPython
    syntax of another."""
    return [cell.source] if cell.tree is None else [t for _, t in cell.masked.replacements]


def _first_naming(cells: list[ParsedCell], name: str) -> tuple[int, bool] | None:
    """The first cell whose text names ``name`` (not as an attribute), and whether it is
    opaque."""
    pattern = re.compile(rf"(?<![\w.]){re.escape(name)}\b")
    for cell in cells:
        if any(pattern.search(text) for text in _texts(cell)):
            return cell.cell, cell.tree is None
    return None


# A run of word characters not preceded by a dot: for a name of word characters, it is what
# `(?<![\w.])name\b` finds, so one pass over the texts answers for every function.
_WORDS = re.compile(r"\w+")
_RUN_NOT_ATTRIBUTE = re.compile(r"(?<![\w.])\w+")


def _named_as_text(cells: list[ParsedCell]) -> dict[str, tuple[int, bool]]:
    """Each name the cells' texts hold (``_texts``) -> ``_first_naming``'s answer for it."""
    found: dict[str, tuple[int, bool]] = {}
    for cell in cells:
        for text in _texts(cell):
            for word in _RUN_NOT_ATTRIBUTE.findall(text):
                found.setdefault(word, (cell.cell, cell.tree is None))
    return found


def _read_later(f: _Function, variables: dict[str, list[str]],
                functions: dict[str, _Function]) -> set[str]:
    """Variables of ``f`` that may be read after ``f`` returns (nested functions, lambdas,
    generators; the whole body of a generator or coroutine)."""
    mine = variables[f.name]
    lazy = isinstance(f.node, ast.AsyncFunctionDef) or any(
        isinstance(n, (ast.Yield, ast.YieldFrom)) for n, _, scopes in _walk(f.node, None, ())
        if not any(s is not f.node for s in scopes))
    found = set()
    for node, parent, scopes in _walk(f.node, None, ()):
        nested = any(isinstance(s, _LATER) and s is not f.node for s in scopes)
        if not (nested or lazy) or not isinstance(node, ast.Name):
            continue
        if node.id in mine:
            found.add(node.id)
        elif node.id in functions and isinstance(parent, ast.Call):
            found |= set(variables[node.id])
    return found


def _bound_by_loop(statement: ast.stmt, name: str, node: ast.AST) -> bool:
    """Is ``node`` in the body of the loop ``statement``, whose target binds ``name``?"""
    return isinstance(statement, (ast.For, ast.AsyncFor)) and name in {
        n.id for n in ast.walk(statement.target) if isinstance(n, ast.Name)} and any(
        n is node for child in statement.body for n in ast.walk(child))


def _plain_assignment(statement: ast.stmt, name: str) -> bool:
    return (isinstance(statement, ast.Assign) and len(statement.targets) == 1
            and isinstance(statement.targets[0], ast.Name) and statement.targets[0].id == name) or (
        isinstance(statement, ast.AnnAssign) and statement.value is not None
        and isinstance(statement.target, ast.Name) and statement.target.id == name)


def _bound_before(places: list[_Binding], cell: int, top: int) -> bool:
    return any(b.definite and (b.cell, b.index) < (cell, top) for b in places)


def _default(f: _Function, places: list[_Binding], cells: list[ParsedCell], variable: str) -> str | None:
    """The literal ``variable`` held when ``f`` was defined, as written, if it was a small
    immutable literal."""
    before = [b for b in places if (b.cell, b.index) < (f.cell.cell, f.index)]
    if not before or not _plain_assignment(before[-1].statement, variable):
        return None
    statement = before[-1].statement
    assert isinstance(statement, (ast.Assign, ast.AnnAssign)) and statement.value is not None
    value = statement.value
    try:
        literal = ast.literal_eval(value)
    except (ValueError, TypeError, SyntaxError, MemoryError, RecursionError):
        return None
    if not _immutable(literal):
        return None
    cell = next(c for c in cells if c.cell == before[-1].cell)
    # A tuple may be written bare (`rad = 0.05, 1.0`; `rad = 1,`), which as a default would be
    # two parameters or an int: write it as Python writes the value.
    text = repr(literal) if isinstance(value, ast.Tuple) \
        else ast.get_source_segment(cell.masked.code, value)
    if text is None or len(text) > _MAX_DEFAULT or "\n" in text:
        return None
    return text


def _immutable(value: object) -> bool:
    if isinstance(value, tuple):
        return all(_immutable(v) for v in value)
    return value is None or isinstance(value, (bool, int, float, complex, str, bytes))


def _rewrite(nb: int, cells: list[ParsedCell], functions: dict[str, _Function],
             variables: dict[str, list[str]], references: dict[str, list[_Reference]],
             bindings: dict[str, list[_Binding]]):
    parameters: dict[str, list[LiftedParameter]] = {}
    for name, f in functions.items():
        taken = {n.id for n in ast.walk(f.node) if isinstance(n, ast.Name)}
        taken |= {a.arg for a in ast.walk(f.node) if isinstance(a, ast.arg)}
        taken |= {k.arg for ref in references.get(name, []) if ref.call is not None
                  for k in ref.call.keywords if k.arg}
        namer = Namer((taken - set(variables[name])) | {name})
        parameters[name] = [
            LiftedParameter(v, namer.claim(v.lower() if len(v) > 1 and v.isupper() else v),
                            _default(f, bindings.get(v, []), cells, v))
            for v in variables[name]]
    # The top-level statements to rewrite, by cell: those calling a lifted function or
    # defining one (libcst visits only those: visiting whole cells is the slow part).
    touched: dict[int, set[int]] = {}
    for name in functions:
        for ref in references.get(name, []):
            touched.setdefault(ref.cell, set()).add(ref.top)
    for f in functions.values():
        touched.setdefault(f.cell.cell, set()).add(f.index)
    from .lift_code import lifted_code

    sources: dict[int, str] = {}
    for cell in cells:
        if cell.cell not in touched:
            continue
        code = lifted_code(cell, touched[cell.cell], parameters,
                      {f.name for f in functions.values() if f.cell.cell == cell.cell})
        sources[cell.cell] = unmask(code, cell.masked.replacements)
    lifted = tuple(Lifted(nb, f.cell.cell, name, tuple(parameters[name]),
                          sum(1 for r in references.get(name, []) if r.call is not None))
                   for name, f in functions.items())
    return sources, lifted
