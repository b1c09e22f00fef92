"""What a sequence of statements reads and writes in the notebook's global namespace, in order.

Notebook code runs at module level, so every name bound at top level (and inside top-level
``if``/``for``/``with``/``try`` bodies) is a global. The scanner walks statements in evaluation
order and records which names are read before the block binds them (its inputs), which it binds
on every path (definite writes) or only on some (conditional writes), and everything that makes
moving the statements into a function unsafe (``global``, escaping ``break``, ``locals()``, ...).

It works on the stdlib ``ast`` so that analysing thousands of cells stays cheap.
"""

from __future__ import annotations

import ast
import contextlib
from contextvars import ContextVar
from dataclasses import dataclass
from typing import Iterator

# Calls that read or write the caller's namespace by name: moving code that uses them changes it.
DYNAMIC_CALLS = frozenset({"locals", "globals", "vars", "exec", "eval", "get_ipython", "dir"})


@dataclass(frozen=True)
class BlockIO:
    """Reads and writes of a statement sequence. Names are global-namespace names."""

    reads: tuple[str, ...]  # read before the block surely binds them, in first-read order
    deferred_reads: frozenset[str]  # read by functions/classes defined here, when they are called
    writes: frozenset[str]  # bound on some path
    definite_writes: frozenset[str]  # bound on every path that completes normally
    deletes: frozenset[str]
    mutated: frozenset[str]  # objects changed in place: x.a = .., x[i] = .., x.method(..)
    declared_global: frozenset[str]  # named in global/nonlocal statements
    escapes: tuple[str, ...]  # "return", "yield", "await", "break", "continue" leaving the block
    dynamic: tuple[str, ...]  # "locals()", "import *", ...: namespace access we cannot follow
    defines: tuple[str, ...]  # names bound by def/class statements, in order
    first_read_line: tuple[tuple[str, int], ...] = ()  # name -> line of its first free read

    @property
    def unsafe_reasons(self) -> tuple[str, ...]:
        reasons = [f"`{kind}` leaves the block" for kind in self.escapes]
        reasons += [f"`global`/`nonlocal` {name}" for name in sorted(self.declared_global)]
        reasons += [f"`del {name}` removes a notebook variable" for name in sorted(self.deletes)]
        reasons += [f"uses {what}" for what in self.dynamic]
        return tuple(reasons)


def block_io(statements: list[ast.stmt], *, range_is_builtin: bool = False) -> BlockIO:
    """Analyse ``statements`` as if they ran at module level, in order.

    A ``for`` loop over a literal that is not empty (``[1, 3, 5]``; with ``range_is_builtin``,
    ``range(1, 31)`` too: the caller knows no notebook rebinds ``range``) runs its body at
    least once, so what the body surely binds, the loop surely binds, unless a ``break`` or
    ``continue`` may cut the body short.
    """
    scanner = _Scanner(range_is_builtin)
    scanner.block(statements)
    return _result(scanner)


def block_io_and_writes(statements: list[ast.stmt]) -> tuple[BlockIO, list[frozenset[str]]]:
    """``block_io(statements)`` and ``block_io([s]).writes`` of each statement, in one scan:
    what a statement binds does not depend on what ran before it."""
    scanner = _Scanner()
    written: set[str] = set()
    each = []
    for statement in statements:
        scanner.written = set()  # only ever added to, never read while scanning
        scanner.stmt(statement)
        each.append(frozenset(scanner.written))
        written |= scanner.written
    scanner.written = written
    return _result(scanner), each


def _result(scanner: _Scanner) -> BlockIO:
    return BlockIO(
        reads=tuple(scanner.reads),
        deferred_reads=frozenset(scanner.deferred),
        writes=frozenset(scanner.written),
        definite_writes=frozenset(scanner.definite),
        deletes=frozenset(scanner.deletes),
        mutated=frozenset(scanner.mutated),
        declared_global=frozenset(scanner.declared),
        escapes=tuple(dict.fromkeys(scanner.escapes)),
        dynamic=tuple(dict.fromkeys(scanner.dynamic)),
        defines=tuple(scanner.defines),
        first_read_line=tuple(scanner.read_lines.items()),
    )


def _not_empty(iterable: ast.expr, range_is_builtin: bool) -> bool:
    """Does iterating over ``iterable`` surely give at least one item?"""
    if isinstance(iterable, (ast.List, ast.Tuple, ast.Set)):
        return bool(iterable.elts) and not any(isinstance(e, ast.Starred) for e in iterable.elts)
    if isinstance(iterable, ast.Dict):
        return bool(iterable.keys) and None not in iterable.keys  # (None: a ** unpacking)
    if isinstance(iterable, ast.Constant):
        return isinstance(iterable.value, (str, bytes)) and len(iterable.value) > 0
    if (range_is_builtin and isinstance(iterable, ast.Call) and isinstance(iterable.func, ast.Name)
            and iterable.func.id == "range" and not iterable.keywords and 1 <= len(iterable.args) <= 3):
        bounds = [_int_constant(a) for a in iterable.args]
        if all(isinstance(b, int) for b in bounds) and (len(bounds) < 3 or bounds[2] != 0):
            return len(range(*bounds)) > 0  # type: ignore[arg-type]
    return False


def _int_constant(node: ast.expr) -> int | None:
    if isinstance(node, ast.UnaryOp) and isinstance(node.op, ast.USub):
        inner = _int_constant(node.operand)
        return None if inner is None else -inner
    if isinstance(node, ast.Constant) and type(node.value) is int:
        return node.value
    return None


def _cut_short(body: list[ast.stmt]) -> bool:
    """May a ``break`` or ``continue`` of this loop end one round of ``body`` early?"""
    stack: list[ast.AST] = list(body)
    while stack:
        node = stack.pop()
        if isinstance(node, (ast.Break, ast.Continue)):
            return True
        if isinstance(node, (ast.For, ast.AsyncFor, ast.While)):
            stack += node.orelse  # the inner loop's own body breaks out of it, not this one
            continue
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef, ast.Lambda)):
            continue
        stack += ast.iter_child_nodes(node)
    return False


class _Scanner:
    def __init__(self, range_is_builtin: bool = False) -> None:
        self.range_is_builtin = range_is_builtin
        self.reads: dict[str, None] = {}  # ordered set
        self.read_lines: dict[str, int] = {}
        self.deferred: set[str] = set()
        self.written: set[str] = set()
        self.definite: set[str] = set()
        self.deletes: set[str] = set()
        self.mutated: set[str] = set()
        self.declared: set[str] = set()
        self.escapes: list[str] = []
        self.dynamic: list[str] = []
        self.defines: list[str] = []
        self.loop_depth = 0

    # -- names ---------------------------------------------------------------------------------
    def read(self, name: str, line: int) -> None:
        if name not in self.definite and name not in self.reads:
            self.reads[name] = None
            self.read_lines[name] = line

    def bind(self, name: str) -> None:
        self.written.add(name)
        self.definite.add(name)

    # -- statements ----------------------------------------------------------------------------
    def block(self, statements: list[ast.stmt]) -> None:
        for statement in statements:
            self.stmt(statement)

    def branch(self, statements: list[ast.stmt]) -> set[str]:
        """Run a block that may or may not execute; return what it surely binds."""
        before = set(self.definite)
        self.block(statements)
        bound = set(self.definite)
        self.definite = before
        return bound

    def stmt(self, node: ast.stmt) -> None:
        method = getattr(self, f"stmt_{type(node).__name__}", None)
        if method is not None:
            method(node)
        else:  # expression statements, pass, assert, raise, ...
            for child in ast.iter_child_nodes(node):
                if isinstance(child, ast.expr):
                    self.expr(child)

    def stmt_Expr(self, node: ast.Expr) -> None:
        self.expr(node.value)

    def stmt_Assign(self, node: ast.Assign) -> None:
        self.expr(node.value)
        for target in node.targets:
            self.target(target)

    def stmt_AugAssign(self, node: ast.AugAssign) -> None:
        self.expr(node.value)
        if isinstance(node.target, ast.Name):
            self.read(node.target.id, node.lineno)
            self.bind(node.target.id)
        else:
            self.target(node.target)

    def stmt_AnnAssign(self, node: ast.AnnAssign) -> None:
        if node.value is not None:
            self.expr(node.value)
            self.target(node.target)
        elif not isinstance(node.target, ast.Name):
            self.expr(node.target)
        self.expr(node.annotation)

    def stmt_For(self, node: ast.For | ast.AsyncFor) -> None:
        if isinstance(node, ast.AsyncFor):
            self.escapes.append("await")
        self.expr(node.iter)
        before = set(self.definite)
        self.loop_depth += 1
        self.target(node.target)
        self.block(node.body)
        self.loop_depth -= 1
        if _not_empty(node.iter, self.range_is_builtin) and not _cut_short(node.body):
            self.block(node.orelse)  # no `break`: the else clause runs too
        else:
            self.definite = before
            self.branch(node.orelse)

    stmt_AsyncFor = stmt_For

    def stmt_While(self, node: ast.While) -> None:
        self.expr(node.test)
        self.loop_depth += 1
        self.branch(node.body)
        self.loop_depth -= 1
        self.branch(node.orelse)

    def stmt_If(self, node: ast.If) -> None:
        self.expr(node.test)
        then = self.branch(node.body)
        other = self.branch(node.orelse)
        self.definite |= then & other

    def stmt_With(self, node: ast.With | ast.AsyncWith) -> None:
        if isinstance(node, ast.AsyncWith):
            self.escapes.append("await")
        for item in node.items:
            self.expr(item.context_expr)
            if item.optional_vars is not None:
                self.target(item.optional_vars)
        self.block(node.body)

    stmt_AsyncWith = stmt_With

    def stmt_Try(self, node: ast.Try) -> None:
        self.branch(node.body)
        for handler in node.handlers:
            if handler.type is not None:
                self.expr(handler.type)
            before = set(self.definite)
            if handler.name:
                self.bind(handler.name)
            self.block(handler.body)
            self.definite = before
        self.branch(node.orelse)
        self.block(node.finalbody)

    stmt_TryStar = stmt_Try

    def stmt_Match(self, node: ast.AST) -> None:
        self.expr(node.subject)  # type: ignore[attr-defined]
        for case in node.cases:  # type: ignore[attr-defined]
            before = set(self.definite)
            for sub in ast.walk(case.pattern):
                for attr in ("name", "rest"):
                    value = getattr(sub, attr, None)
                    if isinstance(value, str):
                        self.bind(value)
                if isinstance(sub, ast.expr):
                    self.expr(sub)
            if case.guard is not None:
                self.expr(case.guard)
            self.block(case.body)
            self.definite = before

    def stmt_FunctionDef(self, node: ast.FunctionDef | ast.AsyncFunctionDef) -> None:
        for decorator in node.decorator_list:
            self.expr(decorator)
        self.arguments(node.args)
        if node.returns is not None:
            self.expr(node.returns)
        self.deferred |= _function_free_names(node)
        self.bind(node.name)
        self.defines.append(node.name)

    stmt_AsyncFunctionDef = stmt_FunctionDef

    def stmt_ClassDef(self, node: ast.ClassDef) -> None:
        for decorator in node.decorator_list:
            self.expr(decorator)
        for base in node.bases:
            self.expr(base)
        for keyword in node.keywords:
            self.expr(keyword.value)
        # The class body runs now, in its own namespace; methods run later and skip that namespace.
        body = _Scanner()
        body.block(node.body)
        for name in body.reads:
            self.read(name, body.read_lines.get(name, node.lineno))
        self.deferred |= body.deferred
        self.escapes += [e for e in body.escapes if e == "await"]
        self.dynamic += body.dynamic
        self.bind(node.name)
        self.defines.append(node.name)

    def stmt_Import(self, node: ast.Import) -> None:
        for alias in node.names:
            self.bind(alias.asname or alias.name.split(".")[0])

    def stmt_ImportFrom(self, node: ast.ImportFrom) -> None:
        for alias in node.names:
            if alias.name == "*":
                self.dynamic.append("`import *`")
            else:
                self.bind(alias.asname or alias.name)

    def stmt_Global(self, node: ast.Global | ast.Nonlocal) -> None:
        self.declared.update(node.names)

    stmt_Nonlocal = stmt_Global

    def stmt_Delete(self, node: ast.Delete) -> None:
        for target in node.targets:
            if isinstance(target, ast.Name):
                self.read(target.id, node.lineno)
                self.deletes.add(target.id)
                self.definite.discard(target.id)
            else:
                self.expr(target)
                self._mutates(target)

    def stmt_Return(self, node: ast.Return) -> None:
        self.escapes.append("return")
        if node.value is not None:
            self.expr(node.value)

    def stmt_Break(self, node: ast.stmt) -> None:
        if self.loop_depth == 0:
            self.escapes.append(type(node).__name__.lower())

    stmt_Continue = stmt_Break

    # -- targets and expressions ---------------------------------------------------------------
    def target(self, node: ast.expr) -> None:
        if isinstance(node, ast.Name):
            self.bind(node.id)
        elif isinstance(node, (ast.Tuple, ast.List)):
            for element in node.elts:
                self.target(element)
        elif isinstance(node, ast.Starred):
            self.target(node.value)
        else:  # attribute or subscript: reads the object, changes it in place
            self.expr(node)
            self._mutates(node)

    def _mutates(self, node: ast.expr) -> None:
        base = node
        while isinstance(base, (ast.Attribute, ast.Subscript)):
            base = base.value
        if isinstance(base, ast.Name):
            self.mutated.add(base.id)

    def arguments(self, args: ast.arguments) -> None:
        for default in [*args.defaults, *args.kw_defaults]:
            if default is not None:
                self.expr(default)
        for arg in [*args.posonlyargs, *args.args, *args.kwonlyargs, args.vararg, args.kwarg]:
            if arg is not None and arg.annotation is not None:
                self.expr(arg.annotation)

    def expr(self, node: ast.expr) -> None:
        if isinstance(node, ast.Name):
            if isinstance(node.ctx, ast.Load):
                self.read(node.id, node.lineno)
            else:
                self.bind(node.id)
            return
        if isinstance(node, ast.NamedExpr):
            self.expr(node.value)
            self.bind(node.target.id)
            return
        if isinstance(node, ast.Lambda):
            self.arguments(node.args)
            # Treated as an immediate read: lambdas are usually called at once (df.apply(...)).
            for name in sorted(_lambda_free_names(node)):
                self.read(name, node.lineno)
            return
        if isinstance(node, (ast.ListComp, ast.SetComp, ast.GeneratorExp, ast.DictComp)):
            self.comprehension(node)
            return
        if isinstance(node, (ast.Await, ast.Yield, ast.YieldFrom)):
            self.escapes.append("await" if isinstance(node, ast.Await) else "yield")
        if isinstance(node, ast.Call):
            if isinstance(node.func, ast.Name) and node.func.id in DYNAMIC_CALLS and not (
                    node.func.id in ("vars", "dir") and (node.args or node.keywords)):
                # vars(obj) and dir(obj) look at obj; only the bare forms see the namespace.
                self.dynamic.append(f"`{node.func.id}()`")
            if isinstance(node.func, ast.Attribute):
                # A method call may change its object in place (lst.append, df.drop(inplace=True)).
                self._mutates(node.func.value)
        # ``ast.iter_child_nodes(node)``, inlined: the same children in the same order, without a
        # generator per expression (this is the hottest loop of the analysis).
        for field in node._fields:
            value = getattr(node, field, None)
            for child in value if isinstance(value, list) else (value,):
                if isinstance(child, ast.expr):
                    self.expr(child)
                elif isinstance(child, ast.keyword):
                    self.expr(child.value)
                elif isinstance(child, ast.comprehension):  # pragma: no cover - handled above
                    self.expr(child.iter)

    def comprehension(self, node: ast.expr) -> None:
        generators: list[ast.comprehension] = node.generators  # type: ignore[attr-defined]
        # The first iterable is evaluated in the enclosing scope; the rest in the comprehension's.
        self.expr(generators[0].iter)
        local: set[str] = set()
        inner = _Scanner()
        inner.definite = set(self.definite)
        for index, generator in enumerate(generators):
            if index:
                inner.expr(generator.iter)
            local |= _target_names(generator.target)
            inner.definite |= _target_names(generator.target)
            for condition in generator.ifs:
                inner.expr(condition)
        parts = [node.key, node.value] if isinstance(node, ast.DictComp) else [node.elt]  # type: ignore[attr-defined]
        for part in parts:
            inner.expr(part)
        for name in inner.reads:
            if name not in local:
                self.read(name, inner.read_lines.get(name, node.lineno))
        # Walrus targets inside a comprehension bind in the enclosing scope, on some path.
        for name in inner.written - local:
            self.written.add(name)
        self.escapes += inner.escapes
        self.dynamic += inner.dynamic
        self.mutated |= inner.mutated - local


def _target_names(node: ast.AST) -> set[str]:
    return {n.id for n in ast.walk(node) if isinstance(n, ast.Name)}


def _lambda_free_names(node: ast.Lambda) -> set[str]:
    params = {a.arg for a in _all_args(node.args)}
    inner = _Scanner()
    inner.definite = set(params)
    inner.expr(node.body)
    return set(inner.reads) - params


def _all_args(args: ast.arguments) -> list[ast.arg]:
    return [a for a in [*args.posonlyargs, *args.args, *args.kwonlyargs, args.vararg, args.kwarg] if a]


# The free names of functions already scanned, by the function's identity (the node kept, so
# its id stays its own), while ``remembering_functions``: a conversion scans a cell's functions
# many times (the cell, its stage, hoisting, the liveness of extracted blocks).
_free_names: ContextVar[dict[int, tuple[ast.AST, frozenset[str]]] | None] = \
    ContextVar("nb2pkg_free_names", default=None)


@contextlib.contextmanager
def remembering_functions() -> Iterator[None]:
    """Within: each function body is scanned once (nothing in nb2pkg changes a tree)."""
    token = _free_names.set({})
    try:
        yield
    finally:
        _free_names.reset(token)


def _function_free_names(node: ast.FunctionDef | ast.AsyncFunctionDef) -> frozenset[str]:
    kept = _free_names.get()
    if kept is None:
        return _scan_function(node)
    found = kept.get(id(node))
    if found is None or found[0] is not node:
        found = kept[id(node)] = (node, _scan_function(node))
    return found[1]


def _scan_function(node: ast.FunctionDef | ast.AsyncFunctionDef) -> frozenset[str]:
    """Global names a function body may read when it is called (its free variables)."""
    params = {a.arg for a in _all_args(node.args)}
    inner = _Scanner()
    inner.block(node.body)
    declared = inner.declared
    local = (inner.written | params) - declared
    free = (set(inner.reads) | inner.deferred) - local
    # Names declared global and written inside the function are globals it reads or creates.
    return frozenset(free | (declared & (set(inner.reads) | inner.deferred)))
