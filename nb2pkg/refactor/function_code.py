"""The extracted function's code, written from the text of one copy of the block.

The copy's lines go under ``def function(params):`` as libcst would put them there
(``cst_code.py``, which this reproduces byte for byte): each line is moved from the
indentation of the block that owns it to that block's new one, leaves that differ between the
copies become parameters, a ``break``/``continue`` leaving the block becomes ``return True``,
and the docstring and ``return`` are added. No libcst import (~0.12 s) and no libcst parse.

Which block owns a comment or blank line follows libcst: a line belongs to the statement after
it, except at the end of a block, which keeps the lines up to its last comment indented at
least as deep as the block (innermost block first). A line that starts with its block's
indentation moves with the block; any other stays where it is (so does the inside of a
multi-line string). Where the text cannot be sure (a block indented by other than four spaces,
tabs, backslash continuations, comments after the copy's last statement, f-string parts,
lists of constants, a leaf in parentheses of its own, a leaf over several lines), libcst
writes the function. tests/refactor/test_function_code.py checks both ways on every case.
"""

from __future__ import annotations

import ast
import io
import tokenize
from typing import Sequence

from ..analysis.clones import Leaf, Occurrence, statement_list
from .extract import ExtractContext
from .rewrite import Edit, apply_edits, first_line, last_line, span_refusal, text_column

_UNIT = "    "  # libcst's default indentation, which the new function's blocks use
_LOOPS = (ast.For, ast.AsyncFor, ast.While)


def function_source(ctx: ExtractContext, o: Occurrence, leaves: list[Leaf],
                    replacements: dict[int, str], containers: Sequence[tuple[ast.expr, str]],
                    function: str, params: list[str], returned: list[str], doc: str, *,
                    escape: bool, returns_shown: bool) -> str:
    """``def function(params):`` with the docstring, the copy ``o``'s statements (leaves and
    containers replaced by names), and the ``return`` of ``returned``; with ``escape``, leaving
    the notebook's loop returns True (else False); with ``returns_shown``, the last statement's
    value is returned."""
    ctx.check_rewritable((o.notebook, o.cell))  # (a deeply nested cell is refused here)
    try:
        return _on_text(ctx, o, leaves, replacements, containers, function, params, returned,
                        doc, escape=escape, returns_shown=returns_shown)
    except _Unsure:
        from .cst_code import function_source as with_libcst

        return with_libcst(ctx, o, leaves, replacements, containers, function, params,
                           returned, doc, escape=escape, returns_shown=returns_shown)


class _Unsure(Exception):
    """The text cannot say for sure what libcst writes: libcst writes the function."""


def _on_text(ctx: ExtractContext, o: Occurrence, leaves: list[Leaf],
             replacements: dict[int, str], containers: Sequence[tuple[ast.expr, str]],
             function: str, params: list[str], returned: list[str], doc: str, *,
             escape: bool, returns_shown: bool) -> str:
    cell = ctx.cells[(o.notebook, o.cell)]
    code = cell.masked.code
    if cell.tree is None or (escape and returns_shown) or any(
            c in code for c in "\r\f\t"):
        raise _Unsure
    lines = code.split("\n")
    if span_refusal(cell.tree, lines, o.path, o.start, o.stop):
        raise _Unsure  # libcst refuses it, in its own words
    span = statement_list(cell.tree, o.path)[o.start:o.stop]
    first, end = first_line(span[0]), span[-1].end_lineno or span[-1].lineno
    if last_line(lines, span[-1]) != end:
        raise _Unsure  # comments after the last statement: libcst's footers decide
    rows = lines[first - 1:end]
    if any(row.rstrip(" ").endswith("\\") for row in rows):
        raise _Unsure
    owners = _owners(rows)
    edits = _Edits(lines)
    in_fstrings = {id(node) for statement in span for joined in ast.walk(statement)
                   if isinstance(joined, ast.JoinedStr) for node in ast.walk(joined)
                   } if replacements else set()
    inside = {id(node) for container, _ in containers for node in ast.walk(container)}
    for container, name in containers:
        edits.swap(container, name, span)
    for j, name in replacements.items():
        leaf = leaves[j]
        if id(leaf.node) in inside:
            raise _Unsure  # (a list of constants is one parameter)
        if leaf.kind == "fstring":
            edits.fstring_part(leaf, name)
        elif id(leaf.node) in in_fstrings:
            edits.inside_fstring(leaf, name)
        else:
            edits.leaf(leaf, name, span)
    if escape:
        for statement in span:
            edits.escapes(statement)
    if returns_shown:
        shown = span[-1]
        assert isinstance(shown, ast.Expr)
        edits.insert(shown.lineno, shown.col_offset, "return ")
    rows = apply_edits(rows, edits.edits, first)
    base = _indentation(rows[0])
    body = [_UNIT + doc]
    for row, owner in zip(rows, owners):
        if owner is not None and row.startswith(owner):
            depth = (len(owner) - len(base)) // len(_UNIT)
            row = _UNIT * (depth + 1) + row[len(owner):]
        body.append(row)
    if escape:
        body.append(_UNIT + "return False")
    if returned:
        body.append(_UNIT + "return " + ", ".join(returned))
    return f"def {function}({', '.join(params)}):\n" + "\n".join(body) + "\n"


def _indentation(line: str) -> str:
    return line[:len(line) - len(line.lstrip(" "))]


# -- which block owns each line --------------------------------------------------------------------
def _owners(rows: list[str]) -> list[str | None]:
    """For each row, the indentation of the block that owns it (None inside a multi-line
    string: kept as it is), as libcst assigns them."""
    try:
        tokens = list(tokenize.generate_tokens(io.StringIO("\n".join(rows) + "\n").readline))
    except (tokenize.TokenError, SyntaxError):
        raise _Unsure from None
    base = _indentation(rows[0])
    owners: list[str | None] = [None] * len(rows)
    seen = [False] * len(rows)
    notes: list[int] = []  # comment and blank rows waiting for the next statement
    stack = [""]  # the indentation of the open blocks, innermost last
    depth, current = 0, base
    before: tuple[str, ...] = ()  # the blocks open at the last statement row
    for token in tokens:
        row = token.start[0] - 1
        if token.type == tokenize.INDENT:
            expected = base if len(stack) == 1 and base else stack[-1] + _UNIT
            if token.string != expected:
                raise _Unsure  # libcst re-indents a block not indented by four spaces
            stack.append(token.string)
            continue
        if token.type == tokenize.DEDENT:
            stack.pop()
            continue
        if row >= len(rows) or seen[row]:
            pass
        elif depth == 0 and token.type in (tokenize.NL, tokenize.COMMENT):
            seen[row] = True
            notes.append(row)
        else:
            seen[row] = True
            if depth == 0:  # a statement (or a clause: `else:`) starts here
                current = stack[-1]
                _assign_notes(notes, owners, rows, before, current)
                notes = []
                before = tuple(stack[1:])
            owners[row] = current
        if token.type == tokenize.OP:
            depth += token.string in "([{"
            depth -= token.string in ")]}"
        elif token.type == tokenize.STRING and token.end[0] > token.start[0]:
            for inside in range(token.start[0], token.end[0]):  # rows after the first
                seen[inside] = True
                owners[inside] = None
    if notes:
        raise _Unsure  # (the copy ends with its last statement: cannot happen)
    return owners


def _assign_notes(notes: list[int], owners: list[str | None], rows: list[str],
                  blocks: tuple[str, ...], following: str) -> None:
    """Comment and blank rows before a statement at indentation ``following``: the blocks
    ending there (``blocks`` deeper than it, innermost first) each keep the rows up to their
    last comment indented at least as deep; the statement takes the rest."""
    remaining = list(notes)
    for block in reversed([b for b in blocks if len(b) > len(following)]):
        claimed = [i for i, row in enumerate(remaining) if rows[row].strip(" ").startswith("#")
                   and len(_indentation(rows[row])) >= len(block)]
        if claimed:
            for row in remaining[:claimed[-1] + 1]:
                owners[row] = block
            remaining = remaining[claimed[-1] + 1:]
    for row in remaining:
        owners[row] = following


# -- edits on the copy's rows ------------------------------------------------------------------------
class _Edits:
    """Replacements on single rows of the cell, at ``ast`` positions."""

    def __init__(self, lines: list[str]) -> None:
        self.lines = lines
        self.edits: list[Edit] = []  # on cell lines

    def _column(self, line: int, offset: int) -> int:
        return text_column(self.lines[line - 1], offset)

    def replace(self, node: ast.AST, text: str) -> None:
        line, end_line = node.lineno, node.end_lineno  # type: ignore[attr-defined]
        if end_line != line:
            raise _Unsure
        start = self._column(line, node.col_offset)  # type: ignore[attr-defined]
        self.edits.append((line, start, self._column(line, node.end_col_offset), text))  # type: ignore[attr-defined]

    def insert(self, line: int, offset: int, text: str) -> None:
        column = self._column(line, offset)
        self.edits.append((line, column, column, text))

    def swap(self, node: ast.AST, name: str, span: list[ast.stmt]) -> None:
        """A differing name, literal or list of constants becomes the parameter ``name``."""
        if self._in_own_parentheses(node, span):
            raise _Unsure  # libcst replaces the parentheses with the name (or refuses)
        self.replace(node, name)

    def leaf(self, leaf: Leaf, name: str | tuple[str, str, str], span: list[ast.stmt]) -> None:
        """A differing name or literal becomes the parameter ``name``, or an f-string of it
        (a derived label: "north: " -> f"{column}: ")."""
        node = leaf.node
        if not isinstance(name, tuple):
            self.swap(node, name, span)
            return
        line = self.lines[node.lineno - 1]  # type: ignore[attr-defined]
        start = self._column(node.lineno, node.col_offset)  # type: ignore[attr-defined]
        end = self._column(node.lineno, node.end_col_offset)  # type: ignore[attr-defined]
        if node.end_lineno != node.lineno or not _one_string(line[start:end]):  # type: ignore[attr-defined]
            raise _Unsure  # libcst refuses a concatenation, in its words
        prefix, parameter, suffix = name
        self.swap(node, f'f"{prefix}{{{parameter}}}{suffix}"', span)

    def inside_fstring(self, leaf: Leaf, name: str | tuple[str, str, str]) -> None:
        """A name in an f-string's expression (where ``ast`` positions are checked against
        the text before they are trusted)."""
        node = leaf.node
        if not isinstance(node, ast.Name) or not isinstance(name, str) or (
                node.lineno != node.end_lineno):
            raise _Unsure
        line = self.lines[node.lineno - 1]
        start = self._column(node.lineno, node.col_offset)
        if line[start:self._column(node.lineno, node.end_col_offset or 0)] != node.id:
            raise _Unsure
        self.replace(node, name)

    def fstring_part(self, leaf: Leaf, name: str | tuple[str, str, str]) -> None:
        """A text part of an f-string becomes ``{parameter}`` (with the text around it kept,
        for a derived label)."""
        node = leaf.node
        if node.lineno != node.end_lineno:  # type: ignore[attr-defined]
            raise _Unsure
        line = self.lines[node.lineno - 1]  # type: ignore[attr-defined]
        start = self._column(node.lineno, node.col_offset)  # type: ignore[attr-defined]
        parts = _fstring_parts(line[start:self._column(node.lineno, node.end_col_offset)],  # type: ignore[attr-defined]
                               node)
        if parts is None or leaf.part >= len(parts) or parts[leaf.part][0] != "text":
            raise _Unsure  # libcst refuses, in its words
        _, begin, end = parts[leaf.part]
        if isinstance(name, tuple):
            prefix, parameter, suffix = name
            text = f"{prefix}{{{parameter}}}{suffix}"
        else:
            text = f"{{{name}}}"
        self.edits.append((node.lineno, start + begin, start + end, text))  # type: ignore[attr-defined]

    def _in_own_parentheses(self, node: ast.AST, span: list[ast.stmt]) -> bool:
        """Whether ``(`` and ``)`` enclose the node alone, other than a call's around its only
        argument (libcst's node then carries them)."""
        line = self.lines[node.lineno - 1]  # type: ignore[attr-defined]
        start = self._column(node.lineno, node.col_offset)  # type: ignore[attr-defined]
        end = self._column(node.end_lineno, node.end_col_offset)  # type: ignore[attr-defined]
        before = line[:start].rstrip(" ")
        after = self.lines[node.end_lineno - 1][end:].lstrip(" ")  # type: ignore[attr-defined]
        if not before:  # first on its line: a statement's start, or after a line break
            starts = {(s.lineno, s.col_offset) for statement in span for s in ast.walk(statement)
                      if isinstance(s, ast.stmt)}
            return (node.lineno, node.col_offset) not in starts and self._opens_above(  # type: ignore[attr-defined]
                node.lineno)  # type: ignore[attr-defined]
        if not after or after.startswith("#"):
            return before.endswith("(")  # a line break before `)` may follow: unsure
        opened = _count_run(before[::-1], "(")
        closed = _count_run(after, ")")
        if not opened or not closed:
            return False
        sole_argument = any(isinstance(parent, ast.Call) and len(parent.args) == 1
                            and not parent.keywords and parent.args[0] is node
                            for statement in span for parent in ast.walk(statement))
        return min(opened, closed) > sole_argument  # one pair is the call's

    def _opens_above(self, line: int) -> bool:
        """The node starts its line: whether the text before it (past comments) may end with
        an opening parenthesis."""
        for above in range(line - 2, -1, -1):
            text = self.lines[above].strip(" ")
            if not text or text.startswith("#"):
                continue
            return "#" in text or text.endswith("(")  # (a comment may hide the parenthesis)
        return False

    def escapes(self, node: ast.AST) -> None:
        """``break``/``continue`` outside the loops inside the block -> ``return True``."""
        if isinstance(node, (ast.Break, ast.Continue)):
            self.replace(node, "return True")
        elif not isinstance(node, _LOOPS):
            for child in ast.iter_child_nodes(node):
                self.escapes(child)


def _one_string(text: str) -> bool:
    """Whether ``text`` is a single string literal (not an implicit concatenation)."""
    try:
        tokens = [t for t in tokenize.generate_tokens(io.StringIO(text).readline)
                  if t.type not in (tokenize.NEWLINE, tokenize.NL, tokenize.ENDMARKER)]
    except (tokenize.TokenError, SyntaxError):
        return False
    return len(tokens) == 1 and tokens[0].type == tokenize.STRING


def _fstring_parts(token: str, node: ast.AST) -> list[tuple[str, int, int]] | None:
    """The parts of a one-token f-string as libcst sees them: ("text", start, end) for each run
    of text, ("field", start, end) for each ``{expression}``, offsets in ``token``; None when
    they do not line up with ``ast``'s (a ``{x=}`` field, a concatenation, anything odd)."""
    if not isinstance(node, ast.JoinedStr) or not _one_string(token):
        return None
    quote_at = next((i for i, c in enumerate(token) if c in "'\""), -1)
    quote = token[quote_at] * 3 if token[quote_at:quote_at + 3] in ('"""', "'''") else token[quote_at]
    content, offset = token[quote_at + len(quote):len(token) - len(quote)], quote_at + len(quote)
    parts: list[tuple[str, int, int]] = []
    text_start, i = None, 0
    while i < len(content):
        if content[i:i + 2] in ("{{", "}}"):
            text_start = i if text_start is None else text_start
            i += 2
        elif content[i] == "{":
            if text_start is not None:
                parts.append(("text", offset + text_start, offset + i))
                text_start = None
            end = _field_end(content, i)
            if end is None:
                return None
            parts.append(("field", offset + i, offset + end))
            i = end
        else:
            text_start = i if text_start is None else text_start
            i += 1
    if text_start is not None:
        parts.append(("text", offset + text_start, offset + len(content)))
    kinds = ["text" if isinstance(v, ast.Constant) else "field" for v in node.values]
    return parts if kinds == [kind for kind, _, _ in parts] else None


def _field_end(content: str, start: int) -> int | None:
    """The offset after the ``}`` closing the field that opens at ``start``."""
    depth, i = 0, start
    while i < len(content):
        char = content[i]
        if char in "'\"":  # a string inside the expression: skip it
            close = content.find(char, i + 1)
            if close < 0:
                return None
            i = close + 1
            continue
        if char in "{[(":
            depth += 1
        elif char in "}])":
            depth -= 1
            if depth == 0:
                return i + 1 if char == "}" else None
        i += 1
    return None


def _count_run(text: str, char: str) -> int:
    """How many ``char`` start ``text``, spaces between them allowed."""
    count = 0
    for c in text:
        if c == char:
            count += 1
        elif c != " ":
            break
    return count
