"""Runs of statements that differ only in literals and the variables they read, rolled into a
loop over a table of them.

Three or more consecutive statements of one statement list (in the notebook's global scope), of
one shape once their literals and the variables they read are set aside — calls
(``plt.plot(X[y == 2, 0], ..., "g^")``), assignments to an item or attribute
(``ratings[0] = 4``, ``results["SES"] = [fit1.params[p] for p in params] + [fit1.sse]``) —
become one loop::

    for y_value, style, label in [(2, "g^", "Iris virginica"), (1, "bs", "Iris versicolor"), ...]:
        plt.plot(X[y == y_value, 0], X[y == y_value, 1], style, label=label)

A column per distinct sequence of differing values (equal sequences share one); what every
statement has in common stays written out. The function a statement calls by name is part of
its shape (``f(a)``, ``g(b)`` are not one loop's rows). The loop runs the same code on the same
values in the same order, so it behaves the same, with three differences a run must not be able
to notice:

- the loop's variables are new notebook names. They are chosen among names that appear nowhere
  in the notebook's code, and a notebook that reaches its names another way (``globals()``,
  ``vars()``, ``eval``, ``%who``, ``%run``, ``get_ipython()``, ``import __main__``) is left alone;
- a literal becomes a read of a variable holding the same value. Refused where that is not the
  same: inside a lambda or a generator expression (it may run after the loop, reading the last
  value), as an operand of ``is``;
- a variable that differs is read once, when the table is built, before the first statement
  runs, instead of by its own statement. That is the same object as long as nothing in the run
  binds it again and it is bound before the run: refused when a statement of the run binds it
  (``:=``), a function of the notebook declares it ``global``, it is not surely bound by the
  cells before (or the statements before the run), or it is one of IPython's ``_`` names; also
  refused inside a lambda or a generator, as for a literal.

Also left alone: a run ending a cell with a displayed expression (a loop displays nothing), a
run in the ``parameters`` cell (papermill's), a comment or a multi-line string inside the run
(the comment would be lost; re-indenting would change the string), a run sharing a line with
other statements, and a table with more columns than rows or more than ``MAX_COLUMNS`` (by then
the statements differ in data more than they repeat logic), with two columns or more that have
nothing to be named after (``number``, ``number_2``: the lines read better), or a loop that
would not be shorter than the statements, whitespace aside (three settings such as
``rcParams["font.size"] = 20``: the table would only move the literals). ``--no-extract`` turns this off with
extraction; the names file skips a loop by its id (``L1: skip``) or renames its variables
(``L1: {params: {text: heading}}``).
"""

from __future__ import annotations

import ast
import io
import re
import tokenize
from dataclasses import dataclass, replace
from typing import Callable, Collection, Iterable, Mapping, Sequence

from ..analysis.clones import Path, _nested_lists, _statement_lists, displays
from ..analysis.parse import ParsedCell, parse_cell, walk
from ..magics import HELP_MAGICS, NAMESPACE_MAGICS, is_placeholder_name
from ..analysis.scope import block_io
from .naming import Namer, common_stem, identifier, names_in, unnumbered

MAX_COLUMNS = 4

# Names that let code reach the notebook's variables without naming them (a new loop variable
# would show), or that change what a cell displays.
_DYNAMIC_WORDS = re.compile(
    r"\b(?:globals|locals|vars|dir|eval|exec|get_ipython|__main__|__dict__|"
    r"ast_node_interactivity)\b")
_DYNAMIC_MAGICS = NAMESPACE_MAGICS | HELP_MAGICS | {"pdef", "pdoc", "psource", "pfile"}

# Code that may run after the statement (a lambda, a generator): it would read the loop's
# variable then. (A list, set or dict comprehension runs at once and reads globals as is.)
_LATER = (ast.Lambda, ast.GeneratorExp)


class _Numbered:
    """Loops and refused runs are reported together, by the number of their id."""

    id: str

    @property
    def order(self) -> int:
        return int(self.id[1:])


@dataclass(frozen=True)
class Loop(_Numbered):
    """A run of statements replaced by a loop over a table of their differing literals."""

    id: str  # "L1", in notebook and cell order
    notebook: int
    cell: int
    path: Path  # statement list in the cell
    start: int  # statement indexes [start, stop) in that list
    stop: int
    first_line: int
    last_line: int
    variables: tuple[str, ...]  # the loop's variables, one per column of the table
    code: str  # the loop that replaces the statements
    # Set for a loop inside a function nb2pkg extracted ("module.function"); lines are then
    # those of the function's source, and notebook and cell those of its first copy.
    function: str = ""

    @property
    def rows(self) -> int:
        return self.stop - self.start


@dataclass(frozen=True)
class LoopRefusal(_Numbered):
    """A run that could be a loop, left alone, and why."""

    id: str
    notebook: int
    cell: int
    first_line: int
    last_line: int
    rows: int
    reason: str
    function: str = ""  # as in Loop


@dataclass(frozen=True)
class _Run:
    cell: ParsedCell
    path: Path
    start: int
    stop: int
    statements: list[ast.stmt]


class _Refuse(Exception):
    pass


def plan_loops(cells: Sequence[Sequence[ParsedCell]], taken: Iterable[str],
               overrides: Mapping[str, Mapping[str, object]] = {},
               occupied: Callable[[int, int, Path, int, int], bool] = lambda *_: False,
               parameters_cells: Sequence[int | None] = (), min_rows: int = 3,
               ) -> tuple[list[Loop], list[LoopRefusal]]:
    """The loops for every notebook's ``cells`` (parsed code cells, per notebook), and the runs
    left alone with the reason. ``taken``: names the package hands out (functions);
    ``occupied(notebook, cell, path, start, stop)``: is part of that span rewritten already
    (an extraction's call site, a moved definition)."""
    loops: list[Loop] = []
    refusals: list[LoopRefusal] = []
    taken = set(taken)
    number = 0
    for nb, notebook_cells in enumerate(cells):
        # `print(...)` ending a cell displays nothing, unless the notebook made `print` its own.
        quiet_print = not any(cell.io is not None and "print" in cell.io.writes
                              for cell in notebook_cells)
        runs = [r for cell in notebook_cells if cell.tree is not None
                for r in _runs(cell, min_rows, quiet_print)
                if not occupied(nb, cell.cell, r.path, r.start, r.stop)]
        if not runs:
            continue
        blocker = _dynamic_access(notebook_cells)
        words = _names_used(notebook_cells)
        parameters = parameters_cells[nb] if nb < len(parameters_cells) else None
        declared = {name for cell in notebook_cells for node in cell.nodes
                    if isinstance(node, (ast.Global, ast.Nonlocal)) for name in node.names}
        for run in runs:
            number += 1
            why_not = blocker or ("in the parameters cell, which papermill reads as assignments"
                                  if run.cell.cell == parameters else None)
            decided = _decide(run, f"L{number}", words | taken, overrides, why_not,
                              bound=_surely_bound_before(notebook_cells, run), rebound=declared)
            # Loops may reuse each other's variables: none reads them outside its own body.
            if isinstance(decided, Loop):
                loops.append(decided)
            else:
                refusals.append(decided)
    return loops, refusals


def roll_functions(functions: Sequence[tuple[str, str, int, int]], taken: Iterable[str],
                   overrides: Mapping[str, Mapping[str, object]] = {}, first_number: int = 1,
                   min_rows: int = 3) -> tuple[list[str], list[Loop], list[LoopRefusal]]:
    """The runs inside functions nb2pkg extracted, rolled: ``functions`` are (qualified name,
    source, notebook and cell of the first copy); their sources with the loops, the loops and
    the runs left alone. The loop's variables are local to the function, so nothing outside can
    see them; they avoid every name the function mentions (so no global it reads is shadowed)
    and ``taken``."""
    sources: list[str] = []
    loops: list[Loop] = []
    refusals: list[LoopRefusal] = []
    number = first_number - 1
    for name, source, nb, cell_index in functions:
        cell = parse_cell(source, nb, cell_index)
        definition = cell.tree.body[0] if cell.tree is not None and cell.tree.body else None
        if not isinstance(definition, ast.FunctionDef):
            sources.append(source)
            continue
        lists = _function_lists(definition)
        words = _names_used([cell]) | set(taken)
        arguments = {a.arg for a in ast.walk(definition.args) if isinstance(a, ast.arg)}
        lines = source.splitlines(keepends=True)
        edits = []
        for run in _runs(cell, min_rows, True, lists):
            number += 1
            # The function's top-level statement holding the run (path: (0, "body"), ...).
            top = run.path[1][0] if len(run.path) > 1 else run.start
            bound = arguments | block_io(definition.body[:top]).definite_writes
            decided = _decide(run, f"L{number}", words, overrides, function=name, bound=bound)
            if isinstance(decided, LoopRefusal):
                refusals.append(decided)
                continue
            loops.append(decided)
            indent = " " * run.statements[0].col_offset
            code = "".join(indent + line if line.strip() else line
                           for line in decided.code.splitlines(keepends=True))
            edits.append((decided.first_line, decided.last_line, code))
        for first, last, code in sorted(edits, reverse=True):
            lines[first - 1:last] = [code]
        sources.append("".join(lines))
    return sources, loops, refusals


def _decide(run: _Run, loop_id: str, taken: set[str],
            overrides: Mapping[str, Mapping[str, object]], why_not: str | None = None,
            function: str = "", bound: Collection[str] = frozenset(),
            rebound: Collection[str] = frozenset()) -> Loop | LoopRefusal:
    """The loop for ``run``, or why it is left alone (``why_not`` says so already). ``bound``:
    the names surely bound when the run starts; ``rebound``: names a function may bind
    (``global``)."""
    override = overrides.get(loop_id, {})
    try:
        if override.get("skip"):
            raise _Refuse("skipped: the names file says so")
        if why_not:
            raise _Refuse(why_not)
        return replace(_roll(run, loop_id, taken, override, bound, rebound), function=function)
    except _Refuse as exc:
        return LoopRefusal(loop_id, run.cell.notebook, run.cell.cell, run.statements[0].lineno,
                           run.statements[-1].end_lineno or 0, len(run.statements), str(exc),
                           function)


def _surely_bound_before(cells: Sequence[ParsedCell], run: _Run) -> set[str]:
    """Names surely bound when ``run`` starts: bound on every path by a cell before it (and not
    deleted by one), or by the statements of its cell before the one holding it."""
    bound: set[str] = set()
    deleted: set[str] = set()
    for cell in cells:
        if cell.cell >= run.cell.cell:
            break
        if cell.io is not None:
            bound |= cell.io.definite_writes
            deleted |= cell.io.deletes
    assert run.cell.tree is not None
    top = run.path[0][0] if run.path else run.start
    before = block_io(run.cell.tree.body[:top])
    return (bound - deleted - before.deletes) | before.definite_writes


def _function_lists(definition: ast.FunctionDef) -> list[tuple[Path, list[ast.stmt]]]:
    """The statement lists of a function's body, nested blocks included (not those of
    functions or classes defined inside it)."""
    found: list[tuple[Path, list[ast.stmt]]] = []
    stack: list[tuple[Path, list[ast.stmt]]] = [(((0, "body"),), definition.body)]
    while stack:
        path, body = stack.pop()
        found.append((path, body))
        for index, statement in enumerate(body):
            for field_name, nested in _nested_lists(statement):
                stack.append(((*path, (index, field_name)), nested))
    return found


# -- finding runs -------------------------------------------------------------------------------
def _runs(cell: ParsedCell, min_rows: int, quiet_print: bool,
          lists: Iterable[tuple[Path, list[ast.stmt]]] | None = None) -> list[_Run]:
    """Maximal runs of at least ``min_rows`` statements of one shape, literals set aside, that
    differ in some literal, in the cell's statement lists of the global scope (or ``lists``); a
    run ending the cell with a displayed expression ends before it."""
    assert cell.tree is not None
    found = []
    for path, body in (_statement_lists(cell.tree) if lists is None else lists):
        if len(body) < min_rows:
            continue
        rollable = [_rollable(s) for s in body]
        # Shapes only where enough rollable statements follow one another (most lists have none).
        near = [False] * len(body)
        i = 0
        while i < len(body):
            j = i
            while j < len(body) and rollable[j]:
                j += 1
            if j - i >= min_rows:
                near[i:j] = [True] * (j - i)
            i = j + 1
        if not any(near):
            continue
        shapes = [_shape(s) if wanted else None for s, wanted in zip(body, near)]
        i = 0
        while i < len(body):
            j = i + 1
            while j < len(body) and shapes[i] is not None and shapes[j] == shapes[i]:
                j += 1
            stop = j
            if path == () and stop == len(body) and (
                    displays(cell, body[-1]) or not quiet_print and isinstance(body[-1], ast.Expr)):
                stop -= 1  # IPython displays the value of a cell's last expression
            chosen = body[i:stop]
            if stop - i >= min_rows and len({ast.dump(s) for s in chosen}) > 1:
                found.append(_Run(cell, path, i, stop, chosen))
            i = j
    return found


def _rollable(statement: ast.stmt) -> bool:
    """A call, or an assignment to an item or an attribute (assigning one name over and over
    in a loop would only keep the last value: not what anybody writes)."""
    if isinstance(statement, ast.Expr):
        return isinstance(statement.value, ast.Call)
    if isinstance(statement, ast.Assign):
        return all(isinstance(t, (ast.Subscript, ast.Attribute)) for t in statement.targets)
    if isinstance(statement, ast.AugAssign):
        return isinstance(statement.target, (ast.Subscript, ast.Attribute))
    return False


def _is_literal(node: ast.AST) -> bool:
    if isinstance(node, ast.Constant):
        return node.value is not Ellipsis
    return (isinstance(node, ast.UnaryOp) and isinstance(node.op, (ast.USub, ast.UAdd))
            and isinstance(node.operand, ast.Constant)
            and type(node.operand.value) in (int, float, complex))


def _shape(node: ast.AST, leaves: list[ast.expr] | None = None) -> str:
    """The statement with every literal and every variable it reads replaced by a mark
    (f-strings compared whole, a function called by name kept); the literal and name nodes, in
    the same order, appended to ``leaves``."""
    if _is_literal(node) or isinstance(node, ast.Name) and isinstance(node.ctx, ast.Load):
        if leaves is not None:
            leaves.append(node)  # type: ignore[arg-type]
        return "$" if isinstance(node, ast.Name) else "#"
    if isinstance(node, ast.JoinedStr):
        return ast.dump(node)
    parts = [type(node).__name__]
    for name, value in ast.iter_fields(node):
        if name == "ctx":
            continue
        if name == "func" and isinstance(value, ast.Name):
            parts.append(value.id)  # `print(a)` and `len(a)` are not one shape
        elif isinstance(value, list):
            parts.append("[" + ",".join(_shape(v, leaves) if isinstance(v, ast.AST) else repr(v)
                                        for v in value) + "]")
        elif isinstance(value, ast.AST):
            parts.append(_shape(value, leaves))
        else:
            parts.append(repr(value))
    return "(" + " ".join(parts) + ")"


# -- rolling a run ------------------------------------------------------------------------------
def _roll(run: _Run, loop_id: str, taken: set[str], override: Mapping[str, object],
          bound: Collection[str], rebound: Collection[str]) -> Loop:
    lines = run.cell.masked.code.splitlines(keepends=True)
    first, last = run.statements[0].lineno, run.statements[-1].end_lineno or 0
    for statement in run.statements:
        if any(is_placeholder_name(n.id) for n in walk(statement) if isinstance(n, ast.Name)):
            raise _Refuse("IPython syntax inside")
    if _has_comment("".join(lines[first - 1:last])):
        raise _Refuse("a comment inside the run would be lost")
    if _shares_lines(run, lines):
        raise _Refuse("shares a line with other statements")

    leaves = []
    for statement in run.statements:
        found: list[ast.expr] = []
        _shape(statement, found)
        leaves.append(found)
    for node in leaves[0]:
        if node.lineno != node.end_lineno:
            raise _Refuse("a string spanning several lines sits inside")
    # A column per distinct sequence of differing values (by type and value: 1 and 1.0 and
    # True differ); the text of each value as the notebook wrote it.
    columns: dict[tuple[str, ...], list[int]] = {}
    for j in range(len(leaves[0])):
        values = tuple(_value_key(row[j]) for row in leaves)
        if len(set(values)) > 1:
            columns.setdefault(values, []).append(j)
    parents = {id(child): node for statement in run.statements[:1] for node in walk(statement)
               for child in ast.iter_child_nodes(node)}
    for values, positions in columns.items():
        for j in positions:
            why = _not_a_plain_read(leaves[0][j], parents)
            if why:
                kind = "variable" if isinstance(leaves[0][j], ast.Name) else "literal"
                raise _Refuse(f"a {kind} that differs sits {why}")
        if isinstance(leaves[0][positions[0]], ast.Name):
            _check_read_early(_variables(leaves, positions[0]), run.statements, bound, rebound)
    if len(columns) > min(MAX_COLUMNS, len(run.statements)):
        raise _Refuse(f"{len(columns)} differing values for {len(run.statements)} statements: "
                      "they differ in data more than they repeat")

    namer = Namer(taken)
    params = override.get("params") or {}
    names = []
    unnamed = 0
    for positions in columns.values():
        # The most telling name of the positions a column fills (a key rather than "text");
        # variables are named after what their names share (fit1, fit2 -> fit) first.
        candidates = [_column_name(leaves[0][j], parents, run.statements[0]) for j in positions]
        if isinstance(leaves[0][positions[0]], ast.Name):
            candidates.insert(0, _shared_name(_variables(leaves, positions[0])) or "value")
        wanted = next((c for c in candidates if c not in _GENERIC), candidates[0])
        unnamed += wanted in _GENERIC
        if wanted == "number" and any(not isinstance(ast.literal_eval(row[positions[0]]), int)
                                      for row in leaves):
            wanted = "value"  # 0, 0.5, 1
        wanted = next((w for w in _ALTERNATIVES.get(wanted, ()) if w not in namer.taken), wanted)
        if wanted in namer.taken and isinstance(leaves[0][positions[0]], ast.Name):
            # `fit_2` would read as the notebook's `fit2`: `this_fit`.
            wanted = f"this_{wanted}"
        if isinstance(params, dict) and isinstance(params.get(wanted), str):
            wanted = str(params[wanted])
        names.append(namer.claim(wanted))
    if unnamed > 1 and not params:
        # `for number, number_2, number_3 in [(0, 255, 0), ...]` reads worse than the lines.
        raise _Refuse(f"{unnamed} of its {len(names)} differing values have nothing to be named "
                      "after: a table of unnamed columns reads worse than the statements")

    rows = [tuple(_text(lines, row[positions[0]]) for positions in columns.values())
            for row in leaves]
    body = _body(lines, run.statements[0],
                 {j: name for name, positions in zip(names, columns.values()) for j in positions},
                 leaves[0])
    code = _loop(names, rows, body)
    written, rolled = _size("".join(lines[first - 1:last])), _size(code)
    if rolled >= written:
        # Three settings (`rcParams["font.size"] = 20`) or a table of bins come out as long as
        # a loop as they were: the table only moves the literals, and the lines read better.
        raise _Refuse(f"the loop would not be shorter than the statements ({rolled} characters "
                      f"against {written}): the table would only move the literals")
    return Loop(loop_id, run.cell.notebook, run.cell.cell, run.path, run.start, run.stop,
                first, last, tuple(names), code)


def _dynamic_access(cells: Sequence[ParsedCell]) -> str | None:
    for cell in cells:
        for magic in cell.masked.magics:
            if magic.kind in ("line", "cell") and magic.name in _DYNAMIC_MAGICS:
                return (f"cell {cell.cell} runs `%{magic.name}`, which can see the notebook's "
                        "variables: a loop's new variable would show")
        match = _DYNAMIC_WORDS.search(cell.masked.code)
        if match:
            return (f"cell {cell.cell} uses `{match.group(0)}`, which can reach the notebook's "
                    "variables by name: a loop's new variable would show")
    return None


def _names_used(cells: Sequence[ParsedCell]) -> set[str]:
    """Every name the notebook's code binds or reads (keywords and attributes are not
    variables), and every word of its magics and of the cells that do not parse."""
    used: set[str] = set()
    for cell in cells:
        if cell.tree is None:
            used |= set(re.findall(r"\w+", cell.source))
            continue
        for magic in cell.masked.magics:
            used |= set(re.findall(r"\w+", magic.text))
        used |= names_in(cell.tree, reads=True)
    return used


def _has_comment(code: str) -> bool:
    try:
        return any(t.type == tokenize.COMMENT
                   for t in tokenize.generate_tokens(io.StringIO(code).readline))
    except (tokenize.TokenError, IndentationError, SyntaxError):
        return True  # cannot tell: keep it


def _shares_lines(run: _Run, lines: list[str]) -> bool:
    """Does code other than the run's statements sit on their lines (``x = 1; f(1)``)?"""
    first = run.statements[0]
    if lines[first.lineno - 1].encode()[:first.col_offset].strip():
        return True
    for statement, after in zip(run.statements, [*run.statements[1:], None]):
        end_line = statement.end_lineno or statement.lineno
        rest = lines[end_line - 1].encode()[statement.end_col_offset or 0:].strip()
        if rest and not rest.startswith(b"#"):
            return True
        if after is not None and after.lineno == end_line:
            return True
    return False


def _value_key(node: ast.expr) -> str:
    if isinstance(node, ast.Name):
        return f"name:{node.id}"
    value = ast.literal_eval(node)
    return f"{type(value).__name__}:{value!r}"


def _variables(leaves: Sequence[Sequence[ast.expr]], position: int) -> list[str]:
    """The names a column of variables holds, one per statement of the run."""
    return [node.id for row in leaves if isinstance(node := row[position], ast.Name)]


def _check_read_early(names: Sequence[str], statements: Sequence[ast.stmt],
                      bound: Collection[str], rebound: Collection[str]) -> None:
    """Refuse a column of variables unless reading them all before the run is reading them
    where each statement did (see the module's docstring)."""
    binds = set().union(*(names_in(s) for s in statements))
    for name in dict.fromkeys(names):
        if name.startswith("_"):
            raise _Refuse(f"`{name}` differs: IPython rebinds names that start with `_`")
        if name in binds:
            raise _Refuse(f"`{name}` differs and the run binds it")
        if name in rebound:
            raise _Refuse(f"`{name}` differs and a function of the notebook declares it "
                          "`global`")
        if name not in bound:
            raise _Refuse(f"`{name}` differs and is not surely bound before the run (the loop "
                          "would read it before the first statement runs)")


def _not_a_plain_read(node: ast.AST, parents: Mapping[int, ast.AST]) -> str | None:
    parent = parents.get(id(node))
    while parent is not None:
        if isinstance(parent, _LATER):
            return "inside a lambda or a generator (it could read the loop's variable after " \
                   "the loop)"
        if isinstance(node, ast.Name):
            pass  # a variable holds the very object: `is` sees no difference
        elif isinstance(parent, ast.Compare) and any(
                isinstance(op, (ast.Is, ast.IsNot)) for op in parent.ops):
            return "in an `is` comparison (a variable may not be the same object)"
        parent = parents.get(id(parent))
    return None


def _shared_name(names: Sequence[str]) -> str:
    """What the variables of a column have in common (fit1, fit2 -> fit; res_ols, res_wls ->
    res), "" if nothing."""
    stem = unnumbered(names) or common_stem(list(names)) or ""
    return stem if len(stem) > 1 else ""


def _column_name(node: ast.expr, parents: Mapping[int, ast.AST], statement: ast.stmt) -> str:
    """A name from where the literal or variable sits: keyword, the item or attribute it is
    assigned to, the other side of a comparison, the column it selects, the method it is passed
    to; else what it is."""
    parent = parents.get(id(node))
    value = None if isinstance(node, ast.Name) else ast.literal_eval(node)
    if isinstance(parent, ast.keyword) and parent.arg:
        return identifier(parent.arg)
    if isinstance(statement, (ast.Assign, ast.AugAssign)) and statement.value is node:
        target = statement.targets[0] if isinstance(statement, ast.Assign) else statement.target
        if isinstance(target, ast.Attribute):
            return identifier(target.attr)
        if isinstance(target, ast.Subscript) and isinstance(target.value, ast.Name):
            return _singular(identifier(target.value.id))
    if isinstance(parent, ast.Compare):
        other = parent.left if parent.left is not node else parent.comparators[0]
        if isinstance(other, ast.Attribute):
            return identifier(other.attr)
        if isinstance(other, ast.Name):
            return f"{identifier(other.id)}_value"
    if isinstance(parent, ast.Subscript) and parent.slice is node:
        return "index" if isinstance(value, int) and not isinstance(value, bool) else "key"
    if isinstance(parent, ast.List) and isinstance(value, str):
        grand = parents.get(id(parent))
        if isinstance(grand, ast.Subscript) and grand.slice is parent:
            return "column"  # df[["level"]]
    if isinstance(parent, ast.Call) and node in parent.args:
        function = parent.func.attr if isinstance(parent.func, ast.Attribute) else \
            parent.func.id if isinstance(parent.func, ast.Name) else ""
        if function == "plot" and isinstance(value, str):
            return "style"  # matplotlib's format string ("g^", "k--")
        if function in _ARGUMENT_OF:
            return _ARGUMENT_OF[function]
        if len(parent.args) == 1 and function:
            return identifier(function.removeprefix("set_"))
    if isinstance(value, str):
        return "text"
    if isinstance(value, bool):
        return "flag"
    if isinstance(value, int):
        return "number"
    return "value"


_GENERIC = {"text", "flag", "number", "value"}
# Other good names, tried in order when the notebook already uses the first.
_ALTERNATIVES = {"style": ("style", "fmt", "line_style"), "key": ("key", "column", "name"),
                 "index": ("index", "position", "i"), "item": ("item", "element", "entry"),
                 "value": ("value", "level", "amount"), "text": ("text", "message", "label")}
# What the argument of a common call is (not named after the call: `append(item)`, not
# `append(append)`); other one-argument calls name it (`plt.xlabel(xlabel)`, `set_title`).
_ARGUMENT_OF = {**dict.fromkeys(("append", "add", "remove", "discard", "appendleft", "put"), "item"),
                "extend": "items", "pop": "key", "get": "key", "print": "text", "len": "value",
                "drop": "label", "read_csv": "path", "open": "path"}


def _singular(name: str) -> str:
    if name.endswith("ies") and len(name) > 4:
        return name[:-3] + "y"
    # Short words and Latin endings are not plurals: res, analysis, corpus.
    if name.endswith("s") and not name.endswith(("ss", "is", "us")) and len(name) > 3:
        return name[:-1]
    return f"{name}_value"


def _text(lines: list[str], node: ast.expr) -> str:
    # ast columns count UTF-8 bytes.
    line = lines[node.lineno - 1].encode()
    return line[node.col_offset:node.end_col_offset].decode()


def _body(lines: list[str], statement: ast.stmt, names: Mapping[int, str],
          leaves: Sequence[ast.expr]) -> str:
    """The statement's own text with the differing literals replaced by the loop's names."""
    first, last = statement.lineno, statement.end_lineno or statement.lineno
    text = [line.rstrip("\r\n").encode() for line in lines[first - 1:last]]
    text[-1] = text[-1][:statement.end_col_offset]
    edits = sorted(((leaves[j].lineno - first, leaves[j].col_offset, leaves[j].end_col_offset, name)
                    for j, name in names.items()), reverse=True)
    for row, start, end, name in edits:  # from the end, so earlier columns stay valid
        text[row] = text[row][:start] + name.encode() + text[row][end:]
    text[0] = text[0][statement.col_offset:]
    indent = statement.col_offset
    decoded = [text[0].decode()] + [
        (line[indent:] if line[:indent].strip() == b"" else line).decode() for line in text[1:]]
    return "\n".join("    " + line if line.strip() else line for line in decoded)


def _size(code: str) -> int:
    """Characters of ``code``, whitespace aside (indentation and line breaks are the layout's)."""
    return len("".join(code.split()))


def _loop(names: list[str], rows: list[tuple[str, ...]], body: str) -> str:
    items = [row[0] if len(row) == 1 else f"({', '.join(row)})" for row in rows]
    head = f"for {', '.join(names)} in "
    one_line = f"{head}[{', '.join(items)}]:"
    if len(one_line) <= 88:
        return f"{one_line}\n{body}\n"
    table = "".join(f"    {item},\n" for item in items)
    return f"{head}[\n{table}]:\n{body}\n"
