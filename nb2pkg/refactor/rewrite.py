"""Apply statement replacements to a cell's source, keeping everything else verbatim.

A replacement (a call where copied code was, an import where a definition was) replaces whole
lines, which ``ast`` positions locate: it is done on the text, without parsing the cell with
libcst (parsing every cell that holds a call site was the largest single cost of planning a big
notebook). The text path gives exactly what libcst gives, comments included; where lines cannot
say it all (carriage returns, overlapping spans, tab indentation, new indented code in a cell
not indented by 4 spaces, a multi-line string or blank line in new code inside a block, a
deletion inside a block), libcst does it. tests/refactor/test_rewrite.py checks both ways on
every case; spans libcst cannot take apart (a shared line, a one-line block, an ``elif``) are
refused the same way by both.
"""

from __future__ import annotations

import ast
import re
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Callable, Sequence

from ..analysis.clones import Path, nested_list, statement_list
from ..magics import Masked, unmask
from .extract import _Refuse

if TYPE_CHECKING:  # imported where the text is not enough (libcst takes ~0.12 s to import)
    import libcst as cst


@dataclass(frozen=True)
class Replacement:
    path: Path  # statement list inside the cell (() = top level)
    start: int  # ast statement indexes [start, stop) in that list
    stop: int
    code: str  # replacement statements (may be "" to delete); comments above the first stay


class RewriteError(Exception):
    """A replacement could not be applied (libcst's reasons, or replacements that overlap)."""


def rewrite_cell(masked: Masked, replacements: list[Replacement], tree: ast.Module | None = None,
                 parse: Callable[[], cst.Module] | None = None) -> str:
    """The cell's original source with ``replacements`` applied (IPython syntax restored).

    ``tree`` is the masked code's ``ast`` (it allows rewriting the text directly); ``parse``
    returns the masked code parsed with libcst, when the caller keeps one.
    """
    if not replacements:
        return unmask(masked.code, masked.replacements)
    _check_disjoint(replacements)
    code = _on_lines(masked.code, tree, replacements) if tree is not None else None
    if code is None:
        code = _with_libcst(parse() if parse is not None else _parse(masked.code), replacements)
    return unmask(code, masked.replacements)


def spans_overlap(a: Any, b: Any) -> bool:
    """Whether two spans (``path``, ``start``, ``stop``: a ``Replacement``, a clone occurrence)
    in one cell share a statement: the same list and overlapping indexes, or one inside a
    statement of the other."""
    for outer, inner in ((a, b), (b, a)):
        depth = len(outer.path)
        if inner.path[:depth] == outer.path and (
                outer.start < inner.stop and inner.start < outer.stop if len(inner.path) == depth
                else outer.start <= inner.path[depth][0] < outer.stop):
            return True
    return False


def _check_disjoint(replacements: list[Replacement]) -> None:
    """Refuse two replacements of the same statement: the second would edit what the first
    already replaced (libcst's indexes would point past the edited list, or an edit inside a
    replaced block would be lost). The planner never makes such a pair; this says so loudly."""
    for i, a in enumerate(replacements):
        for b in replacements[i + 1:]:
            if spans_overlap(a, b):
                raise RewriteError(f"two replacements of the same statements ({a.start}..{a.stop - 1}"
                                   f" and {b.start}..{b.stop - 1} at {a.path or 'the top level'})")


def _parse(code: str) -> cst.Module:
    import libcst as cst

    return cst.parse_module(code)


# What may follow a statement on its last line: a `;` and a comment, nothing else.
_TAIL = re.compile(r"[ \t\f]*;?[ \t\f]*(#.*)?")
_COMMENT = re.compile(r"[ \t\f]*#")


def _indent(line: str) -> str:
    return line[:len(line) - len(line.lstrip(" \t\f"))]


def _blank(line: str) -> bool:
    return not line.strip(" \t\f")


def _blank_run(lines: list[str], index: int, step: int) -> int:
    """How many blank lines from ``lines[index]`` on, going ``step`` at a time."""
    count = 0
    while 0 <= index < len(lines) and _blank(lines[index]):
        count += 1
        index += step
    return count


def text_column(line: str, offset: int) -> int:
    """``ast``'s UTF-8 byte offset on ``line`` as a column of the text."""
    return offset if line.isascii() else len(line.encode()[:offset].decode("utf-8", "replace"))


Edit = tuple[int, int, int, str]  # (line, start column, end column, new text) on one line


def apply_edits(lines: list[str], edits: list[Edit], first: int = 1) -> list[str]:
    """``lines`` (the first being line ``first``) with the edits made. Later edits go first, so
    the columns of earlier ones on the same line stay valid; of two insertions at one place,
    the one listed first ends up first."""
    lines = list(lines)
    order = sorted(range(len(edits)), key=lambda i: (*edits[i][:3], i), reverse=True)
    for line, start, end, text in (edits[i] for i in order):
        old = lines[line - first]
        lines[line - first] = old[:start] + text + old[end:]
    return lines


def first_line(statement: ast.stmt) -> int:
    return min([statement.lineno] + [d.lineno for d in getattr(statement, "decorator_list", ())])


def last_line(lines: list[str], statement: ast.stmt) -> int:
    """The statement's last line, with the comments indented under it after its last inner
    statement (libcst's block footer: they go with the statement)."""
    last = statement.end_lineno or statement.lineno
    if not isinstance(getattr(statement, "body", None), list):
        return last
    depth = len(_indent(lines[statement.lineno - 1]))
    line = last
    while line < len(lines):
        text = lines[line]
        if _COMMENT.match(text) and len(_indent(text)) > depth:
            last = line = line + 1
        elif _blank(text):
            line += 1
        else:
            break
    return last


def _new_lines(code: str) -> tuple[list[str], bool]:
    """The replacement's lines as libcst inserts them, and whether it holds statements: with
    statements, comments and blank lines before the first and after the last (unindented) are
    dropped; with none, every line is a note."""
    lines = code.split("\n")
    statements = [i for i, line in enumerate(lines) if not _blank(line) and not _COMMENT.match(line)]
    if not statements:
        return (lines if code.strip() else []), False
    end = len(lines)
    while end > statements[-1] + 1 and (_blank(lines[end - 1]) or not _indent(lines[end - 1])):
        end -= 1
    return lines[statements[0]:end], True


def _default_indent(lines: list[str], tree: ast.Module) -> str:
    """The cell's indentation unit as libcst sees it (its first indented line of code), which
    libcst uses for the blocks of the code it inserts."""
    indents = [(n.lineno, indent) for n in ast.walk(tree) if isinstance(n, ast.stmt)
               and (indent := _indent(lines[n.lineno - 1]))]
    return min(indents)[1] if indents else "    "


def span_refusal(tree: ast.Module, lines: list[str], path: Path, start: int, stop: int) -> str | None:
    """Why the statements ``[start, stop)`` at ``path`` cannot be replaced (libcst's reasons,
    found from ``ast`` positions), or None. ``lines`` is the masked code split at newlines."""
    body = tree.body
    for index, field in path:
        owner = body[index]
        body = nested_list(owner, field)
        if field == "orelse" and isinstance(owner, ast.If) and len(body) == 1 and isinstance(
                body[0], ast.If) and lines[body[0].lineno - 1].encode()[body[0].col_offset:].startswith(b"elif"):
            return "sits in an `elif` branch, which nb2pkg does not rewrite yet"
        if not _starts_line(lines, body[0]):
            return "sits in a one-line block"
    span = body[start:stop]
    end = span[-1]
    tail = lines[end.end_lineno - 1].encode()[end.end_col_offset:].decode(  # type: ignore[operator]
        "utf-8", "replace")
    if not _starts_line(lines, span[0]) or not _TAIL.fullmatch(tail):
        return "shares a line with other statements (`;`)"
    return None


def _starts_line(lines: list[str], statement: ast.stmt) -> bool:
    """Nothing but indentation before the statement (or its first decorator) on its line."""
    first = first_line(statement)
    head = lines[first - 1]
    indent = _indent(head)
    return len(indent.encode()) == statement.col_offset and (
        first == statement.lineno or head[len(indent):].startswith("@"))


def statement_source(code: str, tree: ast.Module, index: int,
                     parse: Callable[[], cst.Module] | None = None) -> str:
    """Top-level statement ``index`` of the masked ``code`` with the comments above it (those
    after the statement before), without blank lines at the ends: libcst's
    ``Module(body=[statement]).code.strip("\\n")``, which is used where lines cannot say it."""
    lines = code.split("\n")
    if "\r" in code or span_refusal(tree, lines, (), index, index + 1):
        import libcst as cst

        from .cst_code import cst_span, cst_statement_list

        _, statements = cst_statement_list(parse() if parse is not None else _parse(code), ())
        first, last = cst_span(statements, index, index + 1)
        return cst.Module(body=statements[first:last]).code.strip("\n")
    statement = tree.body[index]
    start = last_line(lines, tree.body[index - 1]) if index else first_line(statement) - 1
    return "\n".join(lines[start:last_line(lines, statement)]).strip("\n")


def _on_lines(code: str, tree: ast.Module, replacements: list[Replacement]) -> str | None:
    """``code`` with the replacements made on its lines, or None where libcst must do it."""
    if "\r" in code:
        return None
    lines = code.split("\n")
    original = list(lines)
    spans = []
    for item in replacements:
        refusal = span_refusal(tree, lines, item.path, item.start, item.stop)
        if refusal:
            raise RewriteError(refusal)
        spans.append((item, statement_list(tree, item.path)))
    # Statements of the top level deleted so far, for the deletions at the end.
    gone: set[int] = set()
    floor = len(lines) + 1
    for item, body in sorted(spans, key=lambda s: first_line(s[1][s[0].start]), reverse=True):
        span = body[item.start:item.stop]
        first, last = first_line(span[0]), last_line(lines, span[-1])
        if last >= floor:
            return None  # overlaps another replacement
        new, statements = _new_lines(item.code)
        if any(line[:1] in (" ", "\t") for line in new) and _default_indent(original, tree) != "    ":
            return None  # libcst indents the new blocks as the cell does
        indent = _indent(lines[first - 1])
        if indent:
            if "\t" in indent or "\f" in indent or any(_blank(line) for line in new) or (
                    '"""' in item.code or "'''" in item.code or "\\\n" in item.code):
                return None
            new = [indent + line for line in new]
        if not statements:
            if item.path:
                return None
            survivors = [i for i in range(item.stop, len(body)) if i not in gone]
            gone.update(range(item.start, item.stop))
            if not survivors:
                # Deleting the last statements: their comments stay, the blank lines above
                # them go (a cell does not end in blank lines).
                if item.start > 0:
                    after = last_line(lines, body[item.start - 1])
                    kept = [line for line in lines[after:first - 1] if not _blank(line)]
                    removed = first - 1 - after - len(kept)
                    lines[after:first - 1] = kept
                    first, last = first - removed, last - removed
                new = [line for line in new if not _blank(line)]
            elif not new:
                # Deleting before other statements: the blank lines above and below it meet;
                # as many stay as the more of the two (not both: 2 + 2 blank lines around a
                # moved function would leave 4).
                below = _blank_run(lines, last, 1)
                above = min(_blank_run(lines, first - 2, -1), below)
                del lines[first - 1 - above:first - 1]
                first, last = first - above, last - above
        lines[first - 1:last] = new
        floor = first
    return "\n".join(lines)


def _empty_run(lines: Sequence[cst.EmptyLine]) -> int:
    """How many of ``lines`` are blank before the first comment (libcst's ``_blank_run``)."""
    return next((i for i, line in enumerate(lines) if line.comment is not None), len(lines))


def _with_libcst(module: cst.Module, replacements: list[Replacement]) -> str:
    import libcst as cst

    from .cst_code import cst_span, cst_statement_list

    # Later positions first, so earlier indexes stay valid while we edit.
    for item in sorted(replacements, key=lambda r: ([i for i, _ in r.path], r.start), reverse=True):
        try:
            owner, statements = cst_statement_list(module, item.path)
            first, last = cst_span(statements, item.start, item.stop)
        except _Refuse as exc:
            raise RewriteError(str(exc)) from None
        parsed = cst.parse_module(item.code) if item.code.strip() else None
        new = list(parsed.body) if parsed is not None else []
        # A replacement of comments only ("# `f` moved into the package") keeps its lines.
        notes = tuple(parsed.header) + tuple(parsed.footer) if parsed is not None and not new else ()
        leading = (*statements[first].leading_lines, *notes)
        header = module.header
        if new:
            new[0] = new[0].with_changes(leading_lines=(*leading, *new[0].leading_lines))
        elif last < len(statements):
            # Deleting: comments above the removed code stay above what follows; of the blank
            # lines above and below it, as many as the more of the two (as on the lines).
            following = statements[last].leading_lines
            below = _empty_run(following)
            leading = leading[:len(leading) - min(_empty_run(leading[::-1]), below)]
            statements[last] = statements[last].with_changes(
                leading_lines=(*leading, *following))
            if owner is module and first == 0 and not notes:
                # Above the cell's first statement, the lines are the module's header.
                header = header[:len(header) - min(_empty_run(header[::-1]), below)]
        body = statements[:first] + new + statements[last:]
        if owner is module:
            # Deleting the last statements: their comments stay, the blank lines above them go
            # (a cell does not end in blank lines).
            footer = (*[line for line in leading if line.comment is not None], *module.footer) \
                if not new and last == len(statements) else module.footer
            module = module.with_changes(header=header, body=body, footer=footer)
        else:
            module = module.deep_replace(owner, owner.with_changes(body=body))  # type: ignore[arg-type]
    return module.code
