"""The cells of lifted functions rewritten: each call passes the notebook variables the function
reads, and the definition takes them as parameters (lift.py decides what is lifted).

The edits are insertions and renamings at ``ast`` positions, made on the cell's text: the same
code libcst writes (``lift_cst.py``), without importing libcst (~0.12 s) or parsing the
statements with it. Where the positions cannot say it all (a name libcst would rename that
``ast`` keeps as a plain string, such as an imported or a ``global`` name; names inside
f-strings; a signature with ``/``; a trailing comma where a new ``*`` must go; carriage
returns), libcst does it.
tests/refactor/test_lift_code.py checks both ways on every case.
"""

from __future__ import annotations

import ast
import io
import tokenize
from typing import Sequence

from ..analysis.parse import ParsedCell
from .lift import LiftedParameter
from .rewrite import Edit, apply_edits, text_column

_DEFINITIONS = (ast.FunctionDef, ast.AsyncFunctionDef)


def lifted_code(cell: ParsedCell, tops: set[int], parameters: dict[str, list[LiftedParameter]],
                defined: set[str]) -> str:
    """The cell's masked code with the top-level statements ``tops`` rewritten: calls of the
    functions in ``parameters`` pass their variables; the functions ``defined`` here take them."""
    code = _on_text(cell, tops, parameters, defined)
    if code is None:
        from .lift_cst import lifted_code as with_libcst

        code = with_libcst(cell, tops, parameters, defined)
    return code


class _Unsure(Exception):
    """The text path cannot be sure to write what libcst writes: libcst does it."""


def _on_text(cell: ParsedCell, tops: set[int], parameters: dict[str, list[LiftedParameter]],
             defined: set[str]) -> str | None:
    assert cell.tree is not None
    code = cell.masked.code
    if "\r" in code or "\f" in code:
        return None
    lines = code.split("\n")
    edits: list[Edit] = []
    try:
        for top in sorted(tops):
            _Edits(lines, parameters, defined, edits).statement(cell.tree.body[top])
    except _Unsure:
        return None
    return "\n".join(apply_edits(lines, edits))


class _Edits:
    """The edits of one top-level statement, in libcst's terms (``lift_cst._Lift``): a call of
    a lifted function gains ``parameter=VARIABLE`` arguments; a top-level definition of one
    (outside any function or class) gains the parameters and reads them by their new names."""

    def __init__(self, lines: list[str], parameters: dict[str, list[LiftedParameter]],
                 defined: set[str], edits: list[Edit]) -> None:
        self.lines = lines
        self.parameters = parameters
        self.defined = defined
        self.edits = edits

    def statement(self, statement: ast.stmt) -> None:
        self.visit(statement, depth=0, current={})

    def visit(self, node: ast.AST, depth: int, current: dict[str, str]) -> None:
        if isinstance(node, _DEFINITIONS) and depth == 0 and node.name in self.defined:
            current = {p.variable: p.parameter for p in self.parameters[node.name]}
            self._check_renamable(node, current)
            self._signature(node, self.parameters[node.name])
        if isinstance(node, (*_DEFINITIONS, ast.ClassDef)):
            depth += 1
        elif isinstance(node, ast.JoinedStr):
            # Positions inside f-strings are not reliable before Python 3.12.
            if any(isinstance(n, ast.Name) and (n.id in current or n.id in self.parameters)
                   for n in ast.walk(node)):
                raise _Unsure
            return
        elif isinstance(node, ast.Name) and node.id in current:
            self._replace(node.lineno, node.col_offset, len(node.id), current[node.id])
        elif isinstance(node, ast.arg) and node.arg in current:
            self._replace(node.lineno, node.col_offset, len(node.arg), current[node.arg])
        for child in ast.iter_child_nodes(node):
            self.visit(child, depth, current)
        if isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and (
                node.func.id in self.parameters):
            if node.func.id in current:
                raise _Unsure  # libcst looks the renamed function up
            added = ", ".join(f"{p.parameter}={current.get(p.variable, p.variable)}"
                              for p in self.parameters[node.func.id])
            self._call(node, added)

    # -- positions -----------------------------------------------------------------------------
    def _column(self, line: int, offset: int) -> int:
        return text_column(self.lines[line - 1], offset)

    def _replace(self, line: int, offset: int, length: int, text: str) -> None:
        start = self._column(line, offset)
        self.edits.append((line, start, start + length, text))

    def _insert(self, line: int, column: int, text: str) -> None:
        self.edits.append((line, column, column, text))

    # -- calls ---------------------------------------------------------------------------------
    def _call(self, call: ast.Call, added: str) -> None:
        end_line = call.end_lineno or call.lineno
        close = (end_line, self._column(end_line, call.end_col_offset or 0) - 1)
        if self.lines[end_line - 1][close[1]:close[1] + 1] != ")":
            raise _Unsure
        arguments: list[ast.expr | ast.keyword] = [*call.args, *call.keywords]
        ends = [(a.end_lineno or a.lineno, a.end_col_offset or 0) for a in arguments]
        last = None
        if ends:
            line, offset = max(ends)
            last = self._after_closing(line, self._column(line, offset), close)
        self._append(last, close, added)

    def _after_closing(self, line: int, column: int, stop: tuple[int, int]
                       ) -> tuple[int, int, bool]:
        """Where the last argument ends with its own closing parentheses, and whether a comma
        follows it: scanning from the end of its expression to ``stop`` (the call's closing
        parenthesis) over spaces, comments, closing parentheses and a comma."""
        at = (line, column)
        while (line, column) < stop:
            text = self.lines[line - 1]
            if column >= len(text):
                line, column = line + 1, 0
                continue
            char = text[column]
            if char == ")":
                column += 1
                at = (line, column)
            elif char in " \t":
                column += 1
            elif char == "#":
                column = len(text)
            elif char == ",":
                return (*at, True)
            else:  # a backslash, anything unexpected
                raise _Unsure
        return (*at, False)

    def _append(self, last: tuple[int, int, bool] | None, close: tuple[int, int], added: str
                ) -> None:
        """libcst's ``_appended`` on the text: ``last`` is where the list's last item ends (and
        whether a comma follows it), ``close`` its closing parenthesis. After a trailing comma
        the new items come right after the last one (the comma, and the line break after it,
        move to the end); without one, what follows the last item (spaces, a comment, a line
        break) stays with it, and the new items come just before the parenthesis."""
        if last is None:
            self._insert(*close, added)
        elif last[2]:
            self._insert(last[0], last[1], ", " + added)
        else:
            self._insert(last[0], last[1], ", ")
            self._insert(*close, added)

    # -- definitions ---------------------------------------------------------------------------
    def _check_renamable(self, definition: ast.AST, current: dict[str, str]) -> None:
        """libcst renames every ``Name`` node; some of those are plain strings in ``ast``."""
        for node in ast.walk(definition):
            names: list[str] = []
            if isinstance(node, (ast.Global, ast.Nonlocal)):
                names = node.names
            elif isinstance(node, (ast.Import, ast.ImportFrom)):
                names = [part for alias in node.names for part in
                         (*alias.name.split("."), *(alias.asname or "").split("."))]
                names += (getattr(node, "module", None) or "").split(".")
            elif isinstance(node, ast.ExceptHandler):
                names = [node.name or ""]
            elif isinstance(node, (*_DEFINITIONS, ast.ClassDef)) and node is not definition:
                names = [node.name]
            elif isinstance(node, (ast.MatchAs, ast.MatchStar)):
                names = [node.name or ""]
            elif isinstance(node, ast.MatchMapping):
                names = [node.rest or ""]
            elif isinstance(node, ast.MatchClass):
                names = node.kwd_attrs
            if any(name in current for name in names):
                raise _Unsure

    def _signature(self, definition: ast.FunctionDef | ast.AsyncFunctionDef,
                   lifted: list[LiftedParameter]) -> None:
        """``lift_cst._with_parameters`` on the text: the new parameters go after the
        positional ones when the signature allows (no ``*``, and a default wherever one is
        needed), else after the keyword-only ones; ``**kwargs`` stays last."""
        args = definition.args
        if args.posonlyargs:
            raise _Unsure
        new = [f"{p.parameter}={p.default}" if p.default else p.parameter
               for p in sorted(lifted, key=lambda p: p.default is not None)]
        starred = args.vararg is not None or bool(args.kwonlyargs)
        positional = not starred and (not args.defaults or all(p.default for p in lifted))
        header = _Header(self.lines, definition)
        if positional:
            group, defaults = args.args, args.defaults
        else:
            group, defaults = args.kwonlyargs, [d for d in args.kw_defaults if d is not None]
        if group:  # after the group's last parameter (its default included)
            self._append(header.item_end(self._end([group[-1], *defaults[-1:]])), header.close,
                         ", ".join(new))
            return
        if not positional and args.vararg is None:
            new.insert(0, "*")  # the signature has defaults: a bare `*` before the new ones
        if args.kwarg is not None:  # just before `**kwargs`
            self._insert(*header.before_kwarg(args.kwarg, self._column), ", ".join(new) + ", ")
            return
        after = args.vararg if args.vararg is not None else (args.args[-1] if args.args else None)
        if after is None:  # `def f():`
            self._insert(*header.close, ", ".join(new))
            return
        last = header.item_end(self._end([after] if after is args.vararg
                                         else [after, *args.defaults[-1:]]))
        if last[2]:  # a trailing comma stays where it is, before the new ones: libcst
            raise _Unsure
        self._append(last, header.close, ", ".join(new))


    def _end(self, nodes: Sequence[ast.AST]) -> tuple[int, int]:
        """Where the last of ``nodes`` (a parameter and its default) ends: line, column."""
        ends = [(getattr(n, "end_lineno", None) or getattr(n, "lineno"),
                 getattr(n, "end_col_offset", None) or 0) for n in nodes]
        line, offset = max(ends)
        return line, self._column(line, offset)


class _Header:
    """The tokens of a ``def`` line (or lines) from ``def`` to the parameters' ``)``."""

    def __init__(self, lines: list[str], definition: ast.FunctionDef | ast.AsyncFunctionDef
                 ) -> None:
        self.first = definition.lineno
        header = lines[self.first - 1:definition.body[0].lineno - 1]
        # A body on the header's line, or a header continued with backslashes (where libcst
        # keeps whitespace the tokens do not show): libcst.
        if not header or any(line.rstrip(" \t").endswith("\\") for line in header):
            raise _Unsure
        try:
            tokens = [t for t in tokenize.generate_tokens(io.StringIO("\n".join(header) + "\n").readline)
                      if t.type not in (tokenize.NL, tokenize.COMMENT, tokenize.NEWLINE)]
        except (tokenize.TokenError, SyntaxError):
            raise _Unsure from None
        at = next((i for i, t in enumerate(tokens) if t.type == tokenize.NAME and t.string == "def"), -1)
        if at < 0 or tokens[at + 1].string != definition.name or tokens[at + 2].string != "(":
            raise _Unsure
        self.tokens = tokens
        self.commas: list[int] = []  # the parameters' separators
        depth = 0
        for i in range(at + 2, len(tokens)):
            token = tokens[i]
            if token.type != tokenize.OP:
                continue
            if token.string in "([{":
                depth += 1
            elif token.string in ")]}":
                depth -= 1
                if depth == 0:
                    self.close_at = i
                    self.close = self._position(token.start)
                    return
            elif token.string == "," and depth == 1:
                self.commas.append(i)
        raise _Unsure

    def _position(self, point: tuple[int, int]) -> tuple[int, int]:
        return self.first + point[0] - 1, point[1]

    def item_end(self, end: tuple[int, int]) -> tuple[int, int, bool]:
        """Where the parameter whose text ends at ``end`` (cell line, column) ends with its
        closing parentheses, and whether a comma follows it."""
        comma = next((i for i in self.commas if self._position(self.tokens[i].start) >= end),
                     None)
        token = self.tokens[(comma if comma is not None else self.close_at) - 1]
        return (*self._position(token.end), comma is not None)

    def before_kwarg(self, kwarg: ast.arg, column) -> tuple[int, int]:
        """Where the ``**`` of ``**kwargs`` is."""
        name = (kwarg.lineno, column(kwarg.lineno, kwarg.col_offset))
        stars = [t for t in self.tokens[:self.close_at]
                 if t.type == tokenize.OP and t.string == "**" and self._position(t.start) < name]
        if not stars:
            raise _Unsure
        return self._position(stars[-1].start)
