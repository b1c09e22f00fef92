"""Mask IPython syntax in a notebook code cell into parseable Python, and back.

The analyses of nb2pkg parse code cells with the stdlib :mod:`ast` (and libcst
for rewriting).  IPython syntax (``%magic``, ``%%cell_magic``, ``!shell``,
``x = !cmd``, ``obj?``) is not Python, so :func:`mask` replaces every piece of
it by a *placeholder* -- a call of a unique, generated function name -- and
:func:`unmask` puts the original text back::

    m = mask("%matplotlib inline\\nfiles = !ls\\n")
    m.code  == "__nb2pkg_m0_1a2b3c4d__()\\nfiles = __nb2pkg_m1_1a2b3c4d__()\\n"
    unmask(m.code, m.replacements) == "%matplotlib inline\\nfiles = !ls\\n"

Guarantees
----------
* ``unmask(m.code, m.replacements) == source`` for every ``str``, byte for
  byte (line endings, tabs, trailing whitespace, unicode, lone surrogates).
* A source without IPython syntax comes back unchanged (``m.code is source``
  and no replacements).
* Placeholders keep the *line count*: a placeholder for an original spanning
  several physical lines (backslash continuations, whole cell magics) is
  written ``name(<the same line breaks>)``, so line numbers reported by ``ast``
  on the masked code are line numbers of the original cell.
* Assignment targets stay in the code (``files = __nb2pkg_m0_..__()``), so
  scope analysis sees the binding; ``%%capture out`` becomes
  ``out = __nb2pkg_m0_..__()``.
* ``%time <simple statements>`` keeps its statement analyzable: only the
  ``%time`` word is replaced, by ``__nb2pkg_m0_..__();`` (the statement stays
  after it on the same line), because ``%time df = load()`` is a very common
  way to bind ``df`` in notebooks.

What is IPython syntax
----------------------
The decision mirrors ``IPython.core.inputtransformer2.TransformerManager``
(IPython 7/8), but is made by a small lexer of our own: it is much faster than
re-tokenizing the cell after each transformation (what IPython does), it does
not depend on quirks of the running Python's ``tokenize`` (which changed in
3.12), and it gives exact character offsets, which exact restoration needs.
Like IPython we look at *logical* lines, so ``%`` / ``!`` / ``?`` inside
strings (also triple-quoted ones spanning lines), comments and bracketed
continuation lines are not escapes, and ``a != b``, ``x % y``, ``%=`` are not
escapes either.  IPython's own quirks are kept (``x = y?`` and ``%time x?``
are help about ``y`` / ``x``; ``a = b = !ls`` is not an assignment from a
shell command; an unclosed bracket in a magic extends its logical line up to
a trailing ``?``).  Where tokenize itself gives up, we follow Python 3.11's
(the one IPython runs here; 3.12's C tokenizer stops at the first error): a
one-quote string continued by a backslash and never closed is one token up
to the end of the line where it fails, line break included, so the next
line joins the statement; a triple-quoted string left open, or brackets
left open, at the end of the cell leave IPython's help check reading the
token before the last; spaces after a continuation line, before a character
that starts no token (``?``, ``!``, ``$``, a quote no string follows from),
are a token of their own, so no escape starts there.  Deliberate differences:

* ``\r\n`` counts as a line break like ``\n`` everywhere (Jupyter front ends
  send ``\n``; IPython fed ``\r\n`` misses ``obj?`` and magic continuations).
  Only ``\n``, ``\r\n`` and ``\r`` end lines, as for Python's parser (IPython
  also splits on ``\x0b``, ``\u2028``, ... via ``str.splitlines``).
* A Python statement ending in ``obj?`` plus trailing whitespace is help here
  (IPython leaves it, a syntax error); a magic or shell line ending in ``? ``
  stays what it is, as in IPython.
* Not handled, so such cells do not parse and callers keep them verbatim:
  a first line indented as a whole (IPython dedents the cell), input prompts
  (``>>>``, ``In [1]:``), autocall escapes (``/f x``, ``,f a b``, ``;f a``).
* Magic names end at any whitespace (IPython: at a space), and a few
  differences remain in code IPython cannot run either (unbalanced closing
  brackets), or that only 3.11's tokenize runs: after a never closed,
  backslash-continued one-quote string, it ends a later multi-line
  triple-quoted string at its first line without a final backslash (a stale
  ``needcont`` flag); we do not mirror that.

Nothing here imports IPython: this module only needs :mod:`re` and
:mod:`zlib` at import time (``ast`` is imported lazily for ``%time``).
"""

from __future__ import annotations

import bisect
import re
import zlib
from dataclasses import dataclass
from typing import Callable, Iterable

__all__ = [
    "HELP_MAGICS",
    "NAMESPACE_MAGICS",
    "PLACEHOLDER_PREFIX",
    "PYTHON_BODY_CELL_MAGICS",
    "Magic",
    "Masked",
    "is_placeholder_name",
    "lists_packages",
    "mask",
    "unmask",
]

#: Every identifier introduced by a placeholder starts with this.
PLACEHOLDER_PREFIX = "__nb2pkg_"

#: Cell magics whose body is Python executed in the user namespace (or, for
#: ``timeit``, with the user namespace as globals).  For these only the first
#: line is masked so the body stays analyzable Python:
#:
#: * IPython built-ins: ``time``, ``timeit``, ``prun``, ``debug`` run the body
#:   (after IPython's own input transformation) against ``user_ns``;
#:   ``capture`` runs it with ``run_cell``.
#: * Common extensions that do the same: ``memit`` (memory_profiler),
#:   ``snakeviz``, ``pyinstrument``, ``ipytest``.
#:
#: Caveat for callers: ``%%timeit`` executes its body inside a function, so
#: names it assigns are *not* visible to later cells.
#: Deliberately absent: ``%%python``/``%%script`` (a separate process),
#: ``%%px`` (remote engines), ``%%cython`` (not Python), ``%%writefile``
#: (not executed).  Those, and every unknown cell magic, become one opaque
#: placeholder for the whole cell.
PYTHON_BODY_CELL_MAGICS: frozenset[str] = frozenset(
    {
        "time",
        "timeit",
        "capture",
        "prun",
        "debug",
        "memit",
        "snakeviz",
        "pyinstrument",
        "ipytest",
    }
)

#: Line magics reported with ``kind == "help"`` (what ``obj?`` / ``obj??`` /
#: ``pattern*?`` expand to in IPython).
HELP_MAGICS: frozenset[str] = frozenset({"pinfo", "pinfo2", "psearch"})

#: Magics that see or change the user namespace as a whole, not only the names
#: they mention: listing its variables (``%whos``) or the versions of the
#: packages imported into it (``%watermark -iv``), deleting, storing or
#: restoring variables, running a script into it.  With one of these in a
#: notebook, every name it binds (an import nothing else reads) shows.
NAMESPACE_MAGICS: frozenset[str] = frozenset(
    {"who", "whos", "who_ls", "reset", "reset_selective", "store", "xdel", "run",
     "watermark"})


#: ``%watermark -iv`` (``--iversions``, or a prefix argparse accepts) lists the version of the
#: package of every module, function and class in the namespace: a definition moved into the
#: generated package, or a function extracted there, adds that package to the list once it is
#: installed.
_IVERSIONS = re.compile(r"(?<!\S)(?:-iv|--iv\w*)(?!\S)")


def lists_packages(magic: "Magic") -> bool:
    """Does ``magic`` print the packages of what the namespace holds (``%watermark -iv``)?"""
    return magic.name == "watermark" and _IVERSIONS.search(magic.text) is not None


@dataclass(frozen=True)
class Magic:
    """One piece of IPython syntax found in a cell."""

    #: ``"line"`` (``%x``, ``x = %x``), ``"cell"`` (``%%x``), ``"shell"``
    #: (``!x``, ``!!x``, ``x = !x``) or ``"help"`` (``x?``, ``x??``, ``?x``,
    #: ``??x``, ``%pinfo x``).
    kind: str
    #: Magic name (``"matplotlib"``, ``"time"``); for shell commands the first
    #: word of the command (``"pip"``); for help the magic IPython runs
    #: (``"pinfo"``, ``"pinfo2"`` or ``"psearch"``).
    name: str
    #: Original text: the whole logical statement (with continuation lines, no
    #: final line break; for ``x = !ls`` the whole ``x = !ls``), or, for an
    #: opaque cell magic, the cell from its ``%%`` line to the end.
    text: str
    #: 1-based line of the cell where :attr:`text` starts.
    line: int


@dataclass(frozen=True)
class Masked:
    """The result of :func:`mask`."""

    #: The cell with IPython syntax replaced by placeholders.
    code: str
    #: ``(placeholder text as it appears in code, original text)``, in order.
    replacements: tuple[tuple[str, str], ...]
    #: What was found, in source order (one record per replacement).
    magics: tuple[Magic, ...]

    @property
    def has_magics(self) -> bool:
        """True if the cell contained any IPython syntax that was masked."""
        return bool(self.magics)


# --------------------------------------------------------------------------
# Lexing
# --------------------------------------------------------------------------

# One Python token (close enough for deciding what is an escape).  String
# prefixes need no handling: ``rb'..'`` lexes as a name followed by a string,
# and every prefix ends a string the same way (a backslash always protects the
# next character, even in raw strings).  The string patterns are "unrolled"
# (runs of ordinary characters, then one escape or lone quote at a time), so
# they are fast and backtrack linearly at worst.  The triple-quoted ones cannot
# fail once started (an unterminated one runs to the end, as in tokenize); an
# unterminated single-quoted string fails and its quote becomes an ``other``
# token, exactly like tokenize's ERRORTOKEN.  ``contstr`` is 3.11's error token for a
# one-quote string that a backslash continues and that never closes: it runs to the end of
# the line where it fails, line break included (no NEWLINE, so the next line joins).
_TOKEN_RE = re.compile(
    r"""
      (?P<nl>\r\n|\r|\n)
    | (?P<ws>[ \t\f]+)
    | (?P<comment>\#[^\r\n]*)
    | (?P<cont>\\(?:\r\n|\r|\n))
    | (?P<str>'''[^'\\]*(?:(?:\\[\s\S]?|'(?!''))[^'\\]*)*(?:'''|\Z)
            |\"\"\"[^"\\]*(?:(?:\\[\s\S]?|"(?!""))[^"\\]*)*(?:\"\"\"|\Z)
            |'[^'\\\r\n]*(?:\\(?:\r\n|[\s\S])[^'\\\r\n]*)*'
            |"[^"\\\r\n]*(?:\\(?:\r\n|[\s\S])[^"\\\r\n]*)*")
    | (?P<contstr>'[^'\\\r\n]*(?:\\[^\r\n][^'\\\r\n]*)*\\(?:\r\n|\r|\n)
                [^'\\\r\n]*(?:\\(?:\r\n|[\s\S])[^'\\\r\n]*)*(?:\r\n|\r|\n|\Z)
            |"[^"\\\r\n]*(?:\\[^\r\n][^"\\\r\n]*)*\\(?:\r\n|\r|\n)
                [^"\\\r\n]*(?:\\(?:\r\n|[\s\S])[^"\\\r\n]*)*(?:\r\n|\r|\n|\Z))
    | (?P<name>\w+)
    | (?P<op>\*\*=|//=|>>=|<<=|[-+*/%@&|^<>!=:]=|->)
    | (?P<open>[(\[{])
    | (?P<close>[)\]}])
    | (?P<other>[\s\S])
    """,
    re.VERBOSE,
)
_SKIP = frozenset({"ws", "comment", "cont"})
# What IPython does not count when it looks at the last token of a line: a
# comment *does* count (``x?  # note`` is not help, as in IPython).
_BLANK = frozenset({"ws", "cont", "nl"})

_EOL_RE = re.compile(r"\r\n|\r|\n")
_WS_RE = re.compile(r"[ \t\f]*")
# IPython detects a cell magic on the first non-blank line after removing
# its spaces/tabs indentation (leading_empty_lines + leading_indent).
_CELL_START_RE = re.compile(r"[ \t]*%%")
# ``%%name?`` is help about the cell magic, not a cell magic (as in IPython).
_CELL_HELP_RE = re.compile(r"%%\w+\?")
_WORD_RE = re.compile(r"\S*")
# These three match at every position (the token pattern ends in a catch-all, the other two
# may match nothing): their ``match`` never returns None, which these aliases tell the checker.
_token_at: Callable[..., re.Match[str]] = _TOKEN_RE.match  # type: ignore[assignment]
_spaces_at: Callable[..., re.Match[str]] = _WS_RE.match  # type: ignore[assignment]
_word_at: Callable[..., re.Match[str]] = _WORD_RE.match  # type: ignore[assignment]
# a backslash continuation that is followed by another line
_CONT_RE = re.compile(r"\\(?:\r\n|\r|\n)(?=[\s\S])")

# Cheap superset of everything mask() can find; cells not matching it are
# returned unchanged without lexing.  Alternatives: an escape character first
# on a physical line; ``=`` followed by ``%``/``!`` (assignment from a
# magic/shell command); ``?`` last on a line (help).
_MAYBE_RE = re.compile(
    r"(?:\A|[\r\n])[ \t\f]*[%!?]|=[\s\\]*[%!]|\?[ \t\f\\]*(?:[\r\n]|\Z)"
)

# The object expression IPython accepts before a trailing ``?``/``??``:
# optional ``%``/``%%`` (help on magics), dotted names that may contain ``*``
# (psearch patterns) and literal integer subscripts.
_HELP_END_RE = re.compile(
    r"(%{0,2}(?!\d)[\w*]+(?:\.(?!\d)[\w*]+|\[-?[0-9]+\])*)(\?\??)\Z"
)

# The help target is searched for in at most this many characters before the
# "?": the search is quadratic in the worst case (a long run of word
# characters that fails to match), and real targets are short.
_HELP_WINDOW = 300


def _help_target(src: str, first: int, q_end: int) -> re.Match[str] | None:
    """The match of :data:`_HELP_END_RE` ending at ``q_end`` (leftmost start), or None."""
    return _HELP_END_RE.search(src, max(first, q_end - _HELP_WINDOW), q_end)


_Q_AT_EOL_RE = re.compile(r"\?(?=[\r\n]|\Z)")
_PLACEHOLDER_NAME_RE = re.compile(r"__nb2pkg_m[0-9]+_[0-9a-f]{8}__")


def _next_token(src: str, pos: int, end: int) -> tuple[str, int, int] | None:
    """The next significant token at or after ``pos``: (kind, start, end) or None."""
    while pos < end:
        m = _token_at(src, pos, end)
        kind = m.lastgroup
        if kind not in _SKIP:
            return kind or "other", m.start(), m.end()
        pos = m.end()
    return None


_PREFIX_RE = re.compile(r"(?i:[rbuf]|br|rb|fr|rf)\Z")


def _open_triple(src: str, m: re.Match[str]) -> bool:
    """True if the string token ``m`` is a triple-quoted string left open (tokenize stops)."""
    text = m.group()
    if m.end() != len(src) or not text.startswith(("'''", '"""')):
        return False
    if len(text) < 6 or not text.endswith(text[:3]):
        return True
    # the token pattern stops at the first closing quotes, so an end that is not escaped
    # closes it; an escaped one ("\'''" at the very end) does not
    backslashes = len(text[:-3]) - len(text[:-3].rstrip("\\"))
    return backslashes % 2 == 1


def _cut_short_question(src: str, first: int, stop: int) -> int | None:
    """End of the help text of a logical line that tokenize cut short, if IPython takes it
    for help; the line runs from ``first`` and tokenize stopped at ``stop``.

    IPython's help check takes the last-but-one token of a line's token list, the last being
    its NEWLINE. When tokenize stops inside brackets at the end of the cell, or at a
    triple-quoted string left open (at ``stop``), the list has no NEWLINE: IPython then reads
    the token *before* the last (the NL of a line break inside brackets and comments count),
    and the help text up to the end of that token's physical line. Rare (once per cell at
    most), so the line is lexed again here rather than tracked by the scanners.
    """
    tokens: list[re.Match[str] | None] = []
    pos = first
    while pos < stop:
        m = _token_at(src, pos, stop)
        pos = m.end()
        if m.lastgroup not in ("ws", "cont"):
            tokens.append(m)
    last = tokens[-1] if tokens else None
    if stop < len(src):  # the string's prefix (rb'''...) is part of its token
        if last is not None and last.end() == stop and _PREFIX_RE.match(last.group()):
            tokens.pop()
    elif not src.endswith(("\n", "\r")):
        tokens.append(None)  # the NL of the line break IPython appends to the cell
    q = tokens[-2] if len(tokens) > 2 else None
    if q is None or q.group() != "?":
        return None
    return _extent_of_line(src, q.end())[0]


def _logical_line_last(src: str, pos: int) -> tuple[int | None, int]:
    """Lex ``src`` from ``pos`` to the end of that logical line, as IPython does.

    Returns (the end of the help text if IPython takes the line for help, else
    None; start of the next line).  The logical line runs on while brackets
    are open, so for a magic like ``!echo (`` it extends past the magic's own
    physical line: IPython looks for a trailing ``?`` over that whole stretch.
    """
    n = len(src)
    first = pos
    depth = 0
    last = None
    while pos < n:
        m = _token_at(src, pos)
        kind = m.lastgroup
        pos = m.end()
        if kind == "nl":
            if depth <= 0:
                break
        elif kind == "str" and _open_triple(src, m):
            return _cut_short_question(src, first, m.start()), pos
        elif kind not in _BLANK:
            last = m
            if kind == "open":
                depth += 1
            elif kind == "close":
                depth -= 1
    else:
        if depth > 0:
            return _cut_short_question(src, first, n), pos
    return (last.end() if last is not None and last.group() == "?" else None), pos


def _extent(src: str, pos: int) -> tuple[int, int]:
    """End of the physical line at ``pos`` plus its backslash continuation lines.

    Returns (end without the final line break, start of the next line).  This
    is how IPython delimits a magic: by physical lines, whatever quotes or
    brackets the magic's text contains.
    """
    n = len(src)
    while True:
        m = _EOL_RE.search(src, pos)
        if m is None:
            return n, n
        e = m.start()
        if e > 0 and src[e - 1] == "\\":
            pos = m.end()
            continue
        return e, m.end()


def _no_token_at(src: str, pos: int) -> bool:
    """True where tokenize (3.11) starts no token: ``?``, ``!`` but not ``!=``, ``$``, a
    backtick, a quote that no string follows from."""
    c = src[pos]
    if c in "?$`":
        return True
    if c == "!":
        return not src.startswith("!=", pos)
    return c in "'\"" and _token_at(src, pos).lastgroup == "other"


def _help_method(target: str, esc: str) -> str:
    """The magic IPython runs for ``target?`` / ``target??``."""
    if esc == "??":
        return "pinfo2"
    return "psearch" if "*" in target else "pinfo"


def _help_end(src: str, first: int, scan_from: int) -> tuple[int, str, int] | None:
    """Help syntax (``obj?``) for an escape/assignment statement starting at ``first``.

    Strict like IPython: the ``?``/``??`` must be the statement's last token
    and end its line (trailing whitespace makes ``!echo why? `` a shell
    command, not help).  Returns (end of the ``?``, magic name, next
    position) or None.
    """
    q_end, next_pos = _logical_line_last(src, scan_from)
    if q_end is None or (q_end < len(src) and src[q_end] not in "\r\n"):
        return None
    m = _help_target(src, first, q_end)
    if m is None:
        return None
    return q_end, _help_method(m.group(1), m.group(2)), next_pos


def _first_word(text: str, *, skip_space: bool = False) -> str:
    """Leading run of non-whitespace characters (IPython's magic-name rule).

    Continuation lines count as joined by a space, as IPython joins them;
    ``skip_space`` drops leading whitespace first (shell commands: ``! ls``).
    """
    if "\\" in text:
        text = _CONT_RE.sub(" ", text)
    if skip_space:
        text = text.lstrip()
    return _word_at(text).group()


def _capture_target(args: str) -> str | None:
    """The variable ``%%capture [--no-stderr] [--no-stdout] [--no-display] [output]`` binds."""
    import keyword

    positional = [a for a in args.split() if not a.startswith("-")]
    if (
        len(positional) == 1
        and positional[0].isidentifier()
        and not keyword.iskeyword(positional[0])
    ):
        return positional[0]
    return None


def _is_simple_statement_line(code: str) -> bool:
    """True if ``_(); <code>`` parses, i.e. ``code`` is simple statements only."""
    import ast
    import warnings

    try:
        with warnings.catch_warnings():
            # e.g. invalid escape sequences: we only want to know if it parses.
            warnings.simplefilter("ignore")
            compile("_();" + code, "<nb2pkg-magic>", "exec", ast.PyCF_ONLY_AST)
    except Exception:  # SyntaxError, ValueError (NUL), RecursionError, ...
        return False
    return True


# A found region: (start, end, form, kind, name, text_start, text_end) where
# src[start:end] is replaced and src[text_start:text_end] is Magic.text.
# form: "call" -> name(<line breaks>), "stmt" -> "name();" (for %time),
# ("bind", target) -> "target = name()".
_Region = tuple


class _Scanner:
    """Single pass over a cell that collects the regions to mask."""

    def __init__(self, src: str) -> None:
        self.src = src
        self.n = len(src)
        self.regions: list[_Region] = []
        # Position of the last "?" that ends a line: escape statements after
        # it cannot be help, which spares lexing to the end of their logical
        # line (quadratic on cells of many magics with unclosed brackets).
        self.last_q = -1
        for m in _Q_AT_EOL_RE.finditer(src):
            self.last_q = m.start()

    def help_end(self, first: int, scan_from: int) -> tuple[int, str, int] | None:
        """:func:`_help_end`, skipped when no line-ending "?" follows."""
        if self.last_q < scan_from:
            return None
        return _help_end(self.src, first, scan_from)

    def add(
        self,
        start: int,
        end: int,
        form,
        kind: str,
        name: str,
        text_start: int,
        text_end: int,
    ) -> None:
        self.regions.append((start, end, form, kind, name, text_start, text_end))

    def run(self) -> list[_Region]:
        src, n = self.src, self.n
        pos = 0
        cell_start = True  # next non-blank line may be a cell magic
        while pos < n:
            first = _spaces_at(src, pos).end()
            if first >= n or src[first] in "\r\n":
                # blank line
                eol = _EOL_RE.match(src, first)
                pos = eol.end() if eol else n
                continue
            if cell_start:
                cell_start = False
                m = _CELL_START_RE.match(src, pos)
                if m is not None and not _CELL_HELP_RE.match(src, m.end() - 2):
                    pos = self.cell_magic(pos, m.end() - 2)
                    if pos < 0:
                        break
                    cell_start = True  # the body is transformed as a cell again
                    continue
            # A line that is only a backslash continuation: the statement's
            # first token (where IPython looks for an escape) is further on.
            tok = line = first
            while src.startswith("\\", tok):
                eol = _EOL_RE.match(src, tok + 1)
                if eol is None:
                    break
                line = eol.end()
                tok = _spaces_at(src, line).end()
            if tok != first and tok < n and src[tok] not in "\r\n\\":
                first = tok
                if tok > line and _no_token_at(src, tok):
                    # tokenize (3.11) makes such spaces a token of their own: the
                    # statement starts there, with no escape ("obj?" help still
                    # replaces it from the spaces on)
                    pos = self.python_line(line)
                    continue
            c = src[first]
            if c == "#":
                _, pos = _extent_of_line(src, first)
                continue
            nxt = src[first + 1 : first + 2]
            # The first token decides (so "!=", "%=", "//", "/=" are not
            # escapes); ",", ";" and "/" are IPython's autocall escapes.
            if (
                (c in "%!" and nxt != "=")
                or c == "?"
                or c in ",;"
                or (c == "/" and nxt not in ("/", "="))
            ):
                pos = self.escape_line(first)
            else:
                pos = self.python_line(first)
        return self.regions

    def cell_magic(self, line_start: int, first: int) -> int:
        """Handle ``%%name`` at ``first``; returns the next position or -1 (cell consumed)."""
        src = self.src
        line_end, next_start = _extent_of_line(src, first)
        header = src[first + 2 : line_end]
        name = _first_word(header)
        if name in PYTHON_BODY_CELL_MAGICS:
            target = _capture_target(header[len(name) :]) if name == "capture" else None
            form = ("bind", target) if target else "call"
            self.add(first, line_end, form, "cell", name, first, line_end)
            return next_start
        # Opaque: everything from the %% line (with its indentation, which
        # IPython strips) to the very end of the cell is one statement.
        self.add(line_start, self.n, "call", "cell", name, line_start, self.n)
        return -1

    def escape_line(self, first: int) -> int:
        """A logical line starting with an escape character at ``first``."""
        src = self.src
        # IPython prefers help (obj?) over the escape at the same position.
        help_ = self.help_end(first, first)
        if help_ is not None:
            q_end, method, next_pos = help_
            self.add(first, q_end, "call", "help", method, first, q_end)
            return next_pos
        end, next_start = _extent(src, first)
        c = src[first]
        if c == "%":
            content = src[first + 1 : end]
            # (up to next_start: a continuation before an empty last line
            # still joins, as in IPython)
            name = _first_word(src[first + 1 : next_start])
            kind = "help" if name in HELP_MAGICS else "line"
            if name == "time" and len(content) > 4 and content[4:].strip():
                # "%time stmt": keep stmt visible when it is plain Python.
                if _is_simple_statement_line(content[4:]):
                    self.add(first, first + 5, "stmt", "line", name, first, end)
                    return next_start
            self.add(first, end, "call", kind, name, first, end)
        elif c == "!":
            content = src[
                first + (2 if src.startswith("!!", first) else 1) : next_start
            ]
            self.add(
                first,
                end,
                "call",
                "shell",
                _first_word(content, skip_space=True),
                first,
                end,
            )
        elif c == "?":
            esc = "??" if src.startswith("??", first) else "?"
            target = src[first + len(esc) : end]
            self.add(first, end, "call", "help", _help_method(target, esc), first, end)
        # else: autocall escape (",f a b", ";f a", "/f a") -- not masked, but
        # its extent is skipped so its text cannot confuse the lexer.
        return next_start

    def python_line(self, first: int) -> int:
        """Lex one Python logical line starting at ``first``; returns the next position."""
        src, n = self.src, self.n
        pos = first
        depth = 0  # bracket depth as tokenize counts it (may go negative)
        assign_depth = 0  # IPython's _find_assign_op count (never negative)
        seen_eq = False
        last = None
        stop = -1  # where tokenize stops, cutting the line short (see _cut_short_question)
        while pos < n:
            m = _token_at(src, pos)
            kind = m.lastgroup
            pos = m.end()
            if kind == "nl":
                if depth <= 0:
                    break
                continue
            if kind in _BLANK:
                continue
            if kind == "comment":
                last = m
                continue
            if kind == "open":
                depth += 1
                assign_depth += 1
            elif kind == "close":
                depth -= 1
                if assign_depth > 0:
                    assign_depth -= 1
            elif kind == "str" and _open_triple(src, m):
                stop = m.start()
                break
            elif (
                kind == "other"
                and not seen_eq
                and assign_depth == 0
                and m.group() == "="
            ):
                # Only the first top-level "=" counts, as in IPython.
                seen_eq = True
                nxt = self.assignment(first, m.start(), pos)
                if nxt is not None:
                    return nxt
            last = m
        else:
            if depth > 0:
                stop = n
        if stop >= 0:
            q_end = _cut_short_question(src, first, stop)
        else:
            q_end = last.end() if last is not None and last.group() == "?" else None
        if q_end is not None:
            target = _help_target(src, first, q_end)
            if target is not None:
                self.add(
                    first,
                    q_end,
                    "call",
                    "help",
                    _help_method(target.group(1), target.group(2)),
                    first,
                    q_end,
                )
                if stop >= 0:
                    # IPython replaces the lines up to the "?" and reads the rest again
                    return _extent_of_line(src, q_end)[1]
        return pos

    def assignment(self, first: int, eq: int, after_eq: int) -> int | None:
        """``lhs = %magic`` / ``lhs = !cmd`` at the top-level ``=`` at ``eq``.

        Returns the next position if the statement was handled, else None.
        """
        src, n = self.src, self.n
        tok = _next_token(src, after_eq, n)
        if tok is None or tok[0] != "other":
            return None
        rhs = tok[1]
        ch = src[rhs]
        if ch == "%":
            name_tok = _next_token(src, tok[2], n)
            if name_tok is None or name_tok[0] != "name" or src[name_tok[1]].isdigit():
                return None
        elif ch == "!":
            # IPython skips it when the "=" starts its physical line.
            line_start = max(src.rfind("\n", 0, eq), src.rfind("\r", 0, eq)) + 1
            if not src[line_start:eq].strip(" \t\f"):
                return None
        else:
            return None
        help_ = self.help_end(first, rhs)
        if help_ is not None:
            q_end, method, next_pos = help_
            self.add(first, q_end, "call", "help", method, first, q_end)
            return next_pos
        end, next_start = _extent(src, rhs)
        if ch == "%":
            name = _first_word(src[rhs + 1 : next_start])
            kind = "help" if name in HELP_MAGICS else "line"
        else:
            name = _first_word(src[rhs + 1 : next_start], skip_space=True)
            kind = "shell"
        self.add(rhs, end, "call", kind, name, first, end)
        return next_start


def _extent_of_line(src: str, pos: int) -> tuple[int, int]:
    """(end of the physical line at ``pos`` without its break, start of the next line)."""
    m = _EOL_RE.search(src, pos)
    if m is None:
        return len(src), len(src)
    return m.start(), m.end()


def _salt(src: str) -> str:
    """8 hex digits derived from the cell that do not occur in the cell.

    Deterministic (same cell, same placeholders).  Because the salt occurs
    nowhere in the source and is delimited by non-hex characters in every
    placeholder, no placeholder text can occur in the masked code except where
    it was inserted, so unmask's plain text replacement is exact.
    """
    data = src.encode("utf-8", "surrogatepass")
    seed = 0
    while True:
        salt = format(zlib.crc32(data, seed) & 0xFFFFFFFF, "08x")
        if salt not in src:
            return salt
        seed += 1


def _line_starts(src: str) -> list[int]:
    return [0] + [m.end() for m in _EOL_RE.finditer(src)]


def _mask(source: str) -> Masked:
    """mask() without the safety net (tests call this to see real errors)."""
    if "%" not in source and "!" not in source and "?" not in source:
        return Masked(source, (), ())
    if _MAYBE_RE.search(source) is None:
        return Masked(source, (), ())
    regions = _Scanner(source).run()
    if not regions:
        return Masked(source, (), ())
    salt = _salt(source)
    starts = _line_starts(source)
    parts: list[str] = []
    replacements: list[tuple[str, str]] = []
    magics: list[Magic] = []
    last = 0
    for i, (start, end, form, kind, name, t_start, t_end) in enumerate(regions):
        ident = f"{PLACEHOLDER_PREFIX}m{i}_{salt}__"
        original = source[start:end]
        if form == "stmt":
            placeholder = ident + "();"
        else:
            # Same line breaks inside the call's parentheses: the masked code
            # keeps the line numbers of the cell.
            breaks = _EOL_RE.findall(original)
            if "\r" in breaks:
                # "\r" followed by "\n" would merge into one line break
                breaks = ["\n"] * len(breaks)
            placeholder = ident + "(" + "".join(breaks) + ")"
            if form != "call":
                placeholder = f"{form[1]} = {placeholder}"
        parts.append(source[last:start])
        parts.append(placeholder)
        last = end
        replacements.append((placeholder, original))
        line = bisect.bisect_right(starts, t_start)
        magics.append(Magic(kind, name, source[t_start:t_end], line))
    parts.append(source[last:])
    return Masked("".join(parts), tuple(replacements), tuple(magics))


def mask(source: str) -> Masked:
    """Replace IPython syntax in a code cell by parseable placeholders.

    Never raises for a ``str``: if something unexpected goes wrong the cell is
    returned unmasked (callers then see it fail ``ast.parse`` and keep it
    verbatim).  The masked code may still not parse when the cell has a real
    syntax error.  Fast when the cell has no ``%``, ``!`` or ``?`` at all.
    """
    if not isinstance(source, str):
        raise TypeError(f"mask() needs a str, not {type(source).__name__}")
    try:
        return _mask(source)
    except Exception:  # defensive: a bug here must not lose or block a cell
        return Masked(source, (), ())


def _loose_pattern(placeholder: str) -> re.Pattern[str]:
    """Regex for a placeholder whose whitespace a formatter may have changed."""
    out = []
    for piece in re.split(r"(\s+)", placeholder):
        if not piece:
            continue
        if piece.isspace():
            out.append(r"\s*")
        else:
            # "name(" may have lost or gained line breaks; "name();" (the
            # %time form) may have been split into two lines.
            out.append(re.escape(piece).replace(r"\(", r"\(\s*").replace(";", ";?"))
    return re.compile("".join(out))


def unmask(code: str, replacements: Iterable[tuple[str, str]]) -> str:
    """Put the original text back for every placeholder in ``code``.

    ``unmask(m.code, m.replacements) == source`` exactly.  ``code`` may also
    be a rewritten version of ``m.code`` (statements moved, re-indented): each
    placeholder text is replaced wherever it occurs; if a formatter changed
    the whitespace inside a placeholder (``name(\\n)`` -> ``name()``) it is
    still found.
    """
    for placeholder, original in replacements:
        if placeholder in code:
            code = code.replace(placeholder, original)
        else:
            code = _loose_pattern(placeholder).sub(lambda _m, o=original: o, code)  # type: ignore[misc]
    return code


def is_placeholder_name(name: str) -> bool:
    """True for identifiers introduced by placeholders (``__nb2pkg_m3_1a2b3c4d__``)."""
    return (
        name.startswith(PLACEHOLDER_PREFIX)
        and _PLACEHOLDER_NAME_RE.fullmatch(name) is not None
    )
