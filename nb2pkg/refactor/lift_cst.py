"""The cells of lifted functions rewritten with libcst, where the text cannot say it
(``lift_code.py`` says when): each call passes the notebook variables the function reads, and
the definition takes them as parameters. libcst is imported only when this is needed."""

from __future__ import annotations

import libcst as cst

from ..analysis.parse import ParsedCell
from .lift import LiftedParameter
from .rewrite import first_line


def lifted_code(cell: ParsedCell, tops: set[int], parameters: dict[str, list[LiftedParameter]],
                defined: set[str]) -> str:
    """The cell's masked code with the top-level statements ``tops`` rewritten: calls of the
    functions in ``parameters`` pass their variables; the functions ``defined`` here take them."""
    return _rewritten(cell, tops, _Lift(parameters, defined))


def _rewritten(cell: ParsedCell, tops: set[int], transformer: cst.CSTTransformer) -> str:
    """The cell's masked code with the top-level statements ``tops`` transformed. Each is
    parsed with libcst on its own lines (parsing whole cells is the slow part), unless it
    shares a line with another statement; then the whole cell is."""
    assert cell.tree is not None
    body = cell.tree.body
    lines = cell.masked.code.splitlines(keepends=True)
    spans = []
    for top in sorted(tops, reverse=True):
        statement = body[top]
        first = first_line(statement)
        last = statement.end_lineno or statement.lineno
        shared = (top > 0 and (body[top - 1].end_lineno or 0) >= first) or (
            top + 1 < len(body) and body[top + 1].lineno <= last)
        if shared:
            module = cst.parse_module(cell.masked.code)
            return module.visit(transformer).code
        spans.append((first, last))
    for first, last in spans:  # later statements first: earlier line numbers stay valid
        text = "".join(lines[first - 1:last])
        lines[first - 1:last] = [cst.parse_module(text).visit(transformer).code]
    return "".join(lines)


class _Lift(cst.CSTTransformer):
    """One cell: every call of a lifted function ``f(a)`` -> ``f(a, parameter=VARIABLE)`` (on
    the same line), and the definitions of the lifted functions ``defined`` here take the
    variables as parameters, read by their new names inside (attribute names and keywords are
    not variables and stay)."""

    def __init__(self, parameters: dict[str, list[LiftedParameter]], defined: set[str]) -> None:
        super().__init__()
        self.parameters = parameters
        self.defined = defined
        self.depth = 0  # of definitions: only top-level ones are the notebook's functions
        self.current: dict[str, str] = {}  # variable -> parameter inside a lifted definition

    def leave_Call(self, original: cst.Call, updated: cst.Call) -> cst.Call:
        if not (isinstance(updated.func, cst.Name) and updated.func.value in self.parameters):
            return updated
        added = [cst.Arg(value=cst.Name(self.current.get(p.variable, p.variable)),
                         keyword=cst.Name(p.parameter),
                         equal=cst.AssignEqual(cst.SimpleWhitespace(""), cst.SimpleWhitespace("")))
                 for p in self.parameters[updated.func.value]]
        return updated.with_changes(args=_appended(list(updated.args), added))

    def visit_ClassDef(self, node: cst.ClassDef) -> bool:
        self.depth += 1
        return True

    def leave_ClassDef(self, original: cst.ClassDef, updated: cst.ClassDef) -> cst.ClassDef:
        self.depth -= 1
        return updated

    def visit_FunctionDef(self, node: cst.FunctionDef) -> bool:
        if self.depth == 0 and node.name.value in self.defined:
            self.current = {p.variable: p.parameter for p in self.parameters[node.name.value]}
        self.depth += 1
        return True

    def leave_FunctionDef(self, original: cst.FunctionDef,
                          updated: cst.FunctionDef) -> cst.FunctionDef:
        self.depth -= 1
        if self.depth or original.name.value not in self.defined:
            return updated
        self.current = {}
        return updated.with_changes(
            name=original.name,
            params=_with_parameters(updated.params, self.parameters[original.name.value]))

    def leave_Name(self, original: cst.Name, updated: cst.Name) -> cst.Name:
        if updated.value in self.current:
            return updated.with_changes(value=self.current[updated.value])
        return updated

    def leave_Attribute(self, original: cst.Attribute, updated: cst.Attribute) -> cst.Attribute:
        return updated.with_changes(attr=original.attr)

    def leave_Arg(self, original: cst.Arg, updated: cst.Arg) -> cst.Arg:
        return updated.with_changes(keyword=original.keyword)


def _appended(items: list, added: list) -> list:
    """``items`` then ``added`` on the last item's line: a trailing comma (and the line break
    after it) moves to the end, so no line is added and none moves."""
    if items and isinstance(items[-1].comma, cst.Comma):
        added[-1] = added[-1].with_changes(comma=items[-1].comma)
        items[-1] = items[-1].with_changes(
            comma=cst.Comma(whitespace_after=cst.SimpleWhitespace(" ")))
    return items + added


def _with_parameters(params: cst.Parameters, lifted: list[LiftedParameter]) -> cst.Parameters:
    """Positional parameters when the signature allows (no ``*``, and a default wherever one
    is needed), else keyword-only ones."""
    equal = cst.AssignEqual(cst.SimpleWhitespace(""), cst.SimpleWhitespace(""))
    new = [cst.Param(cst.Name(p.parameter),
                     default=cst.parse_expression(p.default) if p.default else None,
                     equal=equal if p.default else cst.MaybeSentinel.DEFAULT)
           for p in sorted(lifted, key=lambda p: p.default is not None)]
    starred = not isinstance(params.star_arg, cst.MaybeSentinel) or params.kwonly_params
    defaults = any(p.default is not None for p in (*params.posonly_params, *params.params))
    if not starred and (not defaults or all(p.default is not None for p in new)):
        return params.with_changes(params=_appended(list(params.params), new))
    star = params.star_arg if not isinstance(params.star_arg, cst.MaybeSentinel) else cst.ParamStar()
    return params.with_changes(star_arg=star, kwonly_params=_appended(list(params.kwonly_params), new))
