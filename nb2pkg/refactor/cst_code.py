"""The extracted function's code, written with libcst from one copy of the block, where its
text cannot say it all (``function_code.py`` decides, and writes the same code otherwise).

The copy's statements keep their text (comments, formatting) with the leaves that differ between
the copies swapped for parameters; a `break`/`continue` leaving the block becomes a return; the
docstring and the `return` are added. Also: libcst's view of an ``ast`` statement span. libcst
is imported only when this is needed (it takes ~0.12 s to import).
"""

from __future__ import annotations

import ast
from typing import Mapping, Sequence

import libcst as cst

from ..analysis.clones import Leaf, Occurrence
from .extract import ExtractContext, _Refuse
from .rewrite import first_line, last_line, span_refusal, text_column


def function_source(ctx: ExtractContext, o: Occurrence, leaves: list[Leaf],
                    replacements: dict[int, str], containers: Sequence[tuple[ast.expr, str]],
                    function: str, params: list[str], returned: list[str], doc: str, *,
                    escape: bool, returns_shown: bool) -> str:
    """``def function(params):`` with the docstring, the copy ``o``'s statements (leaves and
    containers replaced by names), and the ``return`` of ``returned``; with ``escape``, leaving
    the notebook's loop returns True (else False); with ``returns_shown``, the last statement's
    value is returned."""
    statements = list(_cst_block(ctx, o, leaves, replacements, containers))
    statements[0] = statements[0].with_changes(leading_lines=())
    if escape:  # leaving the loop: the function says so
        statements = [s.visit(_EscapeToReturn()) for s in statements]  # type: ignore[misc]
        statements.append(cst.SimpleStatementLine([cst.Return(cst.Name("False"))]))
    if returns_shown:  # the displayed value is what the function returns
        last = statements[-1]
        assert isinstance(last, cst.SimpleStatementLine) and isinstance(last.body[-1], cst.Expr)
        statements[-1] = last.with_changes(body=[cst.Return(last.body[-1].value)])
    statements.insert(0, cst.SimpleStatementLine([cst.Expr(cst.SimpleString(doc))]))
    if returned:
        value = cst.Name(returned[0]) if len(returned) == 1 else cst.Tuple(
            [cst.Element(cst.Name(n)) for n in returned], lpar=[], rpar=[])
        statements.append(cst.SimpleStatementLine([cst.Return(value)]))
    definition = cst.FunctionDef(
        name=cst.Name(function),
        params=cst.Parameters([cst.Param(cst.Name(p)) for p in params]),
        body=cst.IndentedBlock(statements),  # type: ignore[arg-type]
    )
    return cst.Module(body=[definition]).code


class _EscapeToReturn(cst.CSTTransformer):
    """`break`/`continue` of the notebook's loop (outside any loop of the block) -> `return True`."""

    def __init__(self) -> None:
        super().__init__()
        self.loops = 0

    def visit_For(self, node: cst.For) -> bool:
        self.loops += 1
        return True

    def leave_For(self, original: cst.For, updated: cst.For) -> cst.For:
        self.loops -= 1
        return updated

    def visit_While(self, node: cst.While) -> bool:
        self.loops += 1
        return True

    def leave_While(self, original: cst.While, updated: cst.While) -> cst.While:
        self.loops -= 1
        return updated

    def visit_FunctionDef(self, node: cst.FunctionDef) -> bool:
        return False  # (none in a copied block: refused earlier)

    def leave_Break(self, original: cst.Break, updated: cst.Break) -> cst.BaseSmallStatement:
        return cst.Return(cst.Name("True")) if not self.loops else updated

    def leave_Continue(self, original: cst.Continue, updated: cst.Continue) -> cst.BaseSmallStatement:
        return cst.Return(cst.Name("True")) if not self.loops else updated


def cst_statement_list(module: cst.Module, path: tuple[tuple[int, str], ...]) -> tuple[cst.CSTNode, list]:
    """The libcst owner (Module or IndentedBlock) and statement list at an ``ast`` path."""
    owner: cst.CSTNode = module
    statements = list(module.body)
    for index, field_name in path:
        node = _flat_statement(statements, index)
        if node is None:
            raise _Refuse("sits on a line shared with other statements")
        parts = field_name.split(".")
        target: object = node
        if parts[0] == "orelse":
            target = getattr(node, "orelse", None)
            if not isinstance(target, cst.Else):
                raise _Refuse("sits in an `elif` branch, which nb2pkg does not rewrite yet")
            target = target.body
        elif parts[0] == "finalbody":
            target = node.finalbody.body  # type: ignore[attr-defined]
        elif parts[0] in {"handlers", "cases"}:
            target = getattr(node, parts[0])[int(parts[1])].body
        else:
            target = node.body  # type: ignore[attr-defined]
        if not isinstance(target, cst.IndentedBlock):
            raise _Refuse("sits in a one-line block")
        owner, statements = target, list(target.body)  # type: ignore[arg-type]
    return owner, statements


def _flat_statement(statements: list, index: int) -> cst.CSTNode | None:
    position = 0
    for statement in statements:
        count = len(statement.body) if isinstance(statement, cst.SimpleStatementLine) else 1
        if position == index and count == 1:
            return statement
        position += count
        if position > index:
            return None
    return None


def cst_span(statements: list, start: int, stop: int) -> tuple[int, int]:
    """Map ``ast`` statement indexes to libcst ones; refuse a span that splits a `;` line."""
    position, first, last = 0, None, None
    for i, statement in enumerate(statements):
        if position == start:
            first = i
        count = len(statement.body) if isinstance(statement, cst.SimpleStatementLine) else 1
        position += count
        if position == stop:
            last = i + 1
    if first is None or last is None:
        raise _Refuse("shares a line with other statements (`;`)")
    return first, last


def _copy(ctx: ExtractContext, o: Occurrence, positions: bool
          ) -> tuple[list[cst.CSTNode], Mapping[cst.CSTNode, object] | None, int]:
    """The copy's libcst statements, their source positions if asked for, and how many lines
    of the cell come before the positions' line 1. A copy at the top level of its cell is
    parsed from its own lines (parsing the whole cell costs more); one inside a block, or in a
    cell with carriage returns, from the cell's."""
    from libcst.metadata import MetadataWrapper, PositionProvider

    ctx.check_rewritable((o.notebook, o.cell))  # (a deeply nested cell is refused here)
    cell = ctx.cells[(o.notebook, o.cell)]
    code = cell.masked.code
    if o.path or "\r" in code or cell.tree is None:
        if positions:
            module, where = ctx.cst_positions((o.notebook, o.cell))
        else:
            module, where = ctx.cst_module((o.notebook, o.cell)), None
        _, statements = cst_statement_list(module, o.path)
        first, last = cst_span(statements, o.start, o.stop)
        return statements[first:last], where, 0
    lines = code.split("\n")
    refusal = span_refusal(cell.tree, lines, (), o.start, o.stop)
    if refusal:
        raise _Refuse(refusal)
    body = cell.tree.body
    first, last = first_line(body[o.start]), last_line(lines, body[o.stop - 1])
    try:
        module = cst.parse_module("\n".join(lines[first - 1:last]))
        if not positions:
            return list(module.body), None, first - 1
        wrapper = MetadataWrapper(module, unsafe_skip_copy=True)  # parsed here, never changed
        return list(wrapper.module.body), wrapper.resolve(PositionProvider), first - 1
    except RecursionError:  # hundreds of terms in one expression: ast copes, libcst not
        raise _Refuse("an expression is nested too deeply to rewrite") from None


def _cst_block(ctx: ExtractContext, o: Occurrence, leaves: list[Leaf],
               replacements: dict[int, str],
               containers: Sequence[tuple[ast.expr, str]] = ()) -> list[cst.CSTNode]:
    """The copy's statements with leaves (by index) and lists/sets/dicts of constants (ast
    nodes of this copy) replaced by names."""
    key = (o.notebook, o.cell)
    chosen, positions, offset = _copy(ctx, o, positions=bool(replacements or containers))
    if positions is None:
        return chosen
    lines = ctx.cells[key].masked.code.split("\n")
    index: dict[tuple[str, int, int], cst.CSTNode] = {}
    for node, where in positions.items():
        start = where.start  # type: ignore[attr-defined]
        if isinstance(node, cst.Name):
            index[("name", start.line, start.column)] = node
        elif isinstance(node, (cst.Integer, cst.Float, cst.Imaginary, cst.SimpleString)):
            index.setdefault(("literal", start.line, start.column), node)
        elif isinstance(node, cst.ConcatenatedString):
            index[("literal", start.line, start.column)] = node  # outermost wins
        elif isinstance(node, cst.FormattedString):
            index[("fstring", start.line, start.column)] = node
        elif isinstance(node, (cst.List, cst.Set, cst.Dict)) and not node.lpar:
            index[("container", start.line, start.column)] = node
    swap: dict[cst.CSTNode, cst.CSTNode] = {}
    for container, name in containers:
        line = container.lineno
        column = text_column(lines[line - 1], container.col_offset)
        target = index.get(("container", line - offset, column))
        if target is None:
            raise _Refuse("could not locate a differing part of the copies in the source")
        swap[target] = cst.Name(name)
    fstring_parts: dict[cst.CSTNode, dict[int, str]] = {}
    for j, name in replacements.items():
        leaf = leaves[j]
        line = leaf.node.lineno  # type: ignore[attr-defined]
        column = text_column(lines[line - 1], leaf.node.col_offset)  # type: ignore[attr-defined]
        kind = "literal" if leaf.kind == "literal" else leaf.kind
        target = index.get((kind, line - offset, column))
        if target is None:
            raise _Refuse("could not locate a differing part of the copies in the source")
        if leaf.kind == "fstring":
            fstring_parts.setdefault(target, {})[leaf.part] = name
        elif isinstance(name, tuple):  # "north: " -> f"{column}: "
            if not isinstance(target, cst.SimpleString):
                raise _Refuse("could not locate a differing part of the copies in the source")
            swap[target] = cst.FormattedString(parts=_fstring_parts(name), start='f"', end='"')
        else:
            swap[target] = cst.Name(name)
    for target, parts in fstring_parts.items():
        assert isinstance(target, cst.FormattedString)
        for i in parts:
            if i >= len(target.parts) or not isinstance(target.parts[i], cst.FormattedStringText):
                raise _Refuse("an f-string whose parts nb2pkg cannot line up")

    class Swap(cst.CSTTransformer):
        def on_leave(self, original: cst.CSTNode, updated: cst.CSTNode):
            if original in fstring_parts:  # text parts become {parameter}; names inside renamed
                new_parts: list = []
                for i, part in enumerate(updated.parts):  # type: ignore[attr-defined]
                    name = fstring_parts[original].get(i)
                    if name is None:
                        new_parts.append(part)
                    elif isinstance(name, tuple):
                        new_parts += _fstring_parts(name)
                    else:
                        new_parts.append(cst.FormattedStringExpression(cst.Name(name)))
                return updated.with_changes(parts=new_parts)
            return swap.get(original, updated)

    return [statement.visit(Swap()) for statement in chosen]  # type: ignore[misc]


def _fstring_parts(derived: tuple[str, str, str]) -> list:
    prefix, name, suffix = derived
    parts: list = [cst.FormattedStringText(prefix)] if prefix else []
    parts.append(cst.FormattedStringExpression(cst.Name(name)))
    return parts + ([cst.FormattedStringText(suffix)] if suffix else [])
