"""The one Jinja environment every generated file is rendered with, and its escaping filters.

Notebooks come from anyone: their file names, headings, cell text, metadata and tags are data,
and must never become code, TOML keys, YAML structure, shell words or Markdown markup in what
nb2pkg writes. So the environment refuses to render a string that did not pass through a filter
that escapes it for the target language (``Escaped``): a template that writes ``{{ name }}``
instead of ``{{ name | yaml }}`` fails when rendered, in every test, rather than shipping an
injection. Numbers and booleans need no escaping.

| filter | for | how |
| --- | --- | --- |
| ``py`` | a Python literal (a list of names) | ``repr`` |
| ``pydoc`` | a docstring | triple quotes when the text holds no quote, backslash or control character, else ``repr`` |
| ``pycomment``, ``yamlcomment`` | text after ``#`` | one line: control and line-break characters become spaces |
| ``toml`` | a TOML basic string | quoted, ``\\`` ``"`` and control characters escaped |
| ``yaml`` | a YAML value in flow style | PyYAML's dumper, one line, double-quoted escapes when needed |
| ``mdmsg`` | a message of nb2pkg's | its `backquoted` parts as ``mdcode``, the rest as ``md`` |
| ``md`` | Markdown text | every ASCII punctuation that Markdown or HTML gives a meaning is backslash-escaped |
| ``mdcode`` | a Markdown code span | a backtick fence longer than any run inside |
| ``mdurl`` | a relative link | percent-encoded |
| ``ident`` | a name nb2pkg made or checked (package, module, function) | refused unless a dotted identifier |
| ``code`` | Python that is meant to be code (moved definitions, extracted functions) | as is |
| ``shell`` | one shell word | ``shlex.quote``, refused with line breaks |
| ``lines`` | where a block is (``first_line``, ``last_line``) | ``line 4`` or ``lines 2-4``, from the two numbers |

This module imports only the standard library at import time: ``nb2pkg run`` renders its report
with it.
"""

from __future__ import annotations

import keyword
import re
import shlex
from functools import lru_cache
from pathlib import Path
from typing import Any, Iterable


class Escaped(str):
    """Text already made safe for the file it is rendered into."""


class TemplateEscapeError(Exception):
    """A template tried to render a string that no escaping filter handled (a bug in nb2pkg)."""


# Line breaks of Python, YAML (1.1 counts NEL and the Unicode separators) and Markdown, and
# every other control character: none of them may survive in one-line contexts.
_UNSAFE_IN_LINE = re.compile(r"[\x00-\x1f\x7f-\x9f\u2028\u2029]")


def one_line(text: Any) -> str:
    """``text`` with control and line-break characters replaced by spaces."""
    return _UNSAFE_IN_LINE.sub(" ", str(text))


def py(value: Any) -> Escaped:
    """A Python literal of ``value`` (strings, numbers, and lists/tuples/dicts of them)."""
    return Escaped(repr(_plain(value)))


def pydoc(text: Any) -> Escaped:
    """A docstring literal: triple-quoted when that is certainly the same text, else ``repr``."""
    text = str(text)
    plain = not (_UNSAFE_IN_LINE.search(text) or "\\" in text or '"' in text
                 or any(0xD800 <= ord(c) <= 0xDFFF for c in text))
    return Escaped(f'"""{text}"""' if plain else repr(text))


def pycomment(text: Any) -> Escaped:
    return Escaped(one_line(text))


def toml(text: Any) -> Escaped:
    """A TOML basic string: ``"..."`` with backslash, quote and control characters escaped."""
    out = ['"']
    for char in str(text):
        code = ord(char)
        if char in '"\\':
            out.append("\\" + char)
        elif code < 0x20 or code == 0x7F or 0xD800 <= code <= 0xDFFF:
            # TOML allows \uXXXX only for scalar values: a lone surrogate cannot be written.
            out.append("\\uFFFD" if 0xD800 <= code <= 0xDFFF else f"\\u{code:04X}")
        else:
            out.append(char)
    out.append('"')
    return Escaped("".join(out))


def yaml(value: Any) -> Escaped:
    """``value`` as one line of flow-style YAML that loads back as the same value."""
    return Escaped(_yaml_flow(_plain(value)))


def yamlcomment(text: Any) -> Escaped:
    return Escaped(one_line(text))


# What gives inline text a meaning in CommonMark, GitHub Markdown (tables, strikethrough, math)
# and HTML; plus the characters that start a block when they open a line.
_MD_SPECIAL = re.compile(r"([\\`*_\[\]<>&|~#!$])")
_MD_LINE_START = re.compile(r"^(\s*)([-+=.>:])")


def md(text: Any) -> Escaped:
    """Markdown inline text that renders as ``text`` (no links, HTML, emphasis or table cells)."""
    text = _MD_SPECIAL.sub(r"\\\1", one_line(text))
    return Escaped(_MD_LINE_START.sub(r"\1\\\2", text) if text[:1] in "-+=.>:" else text)


def mdmsg(text: Any) -> Escaped:
    """A message of nb2pkg's: its `backquoted` parts as code spans, the rest as ``md`` text."""
    parts = re.split(r"`([^`]*)`", one_line(text))
    return Escaped("".join(mdcode(part) if i % 2 else md(part) for i, part in enumerate(parts)))


def mdcode(text: Any, table: bool = False) -> Escaped:
    """A Markdown code span showing ``text``; ``table=True`` also escapes ``|`` (GFM tables)."""
    text = one_line(text)
    longest = max((len(run) for run in re.findall(r"`+", text)), default=0)
    fence = "`" * (longest + 1)
    pad = " " if text.startswith("`") or text.endswith("`") or not text.strip() else ""
    body = f"{fence}{pad}{text}{pad}{fence}"
    return Escaped(body.replace("|", "\\|") if table else body)


def mdurl(path: Any) -> Escaped:
    """A relative link destination: every character outside ``[A-Za-z0-9/._-]`` percent-encoded."""
    from urllib.parse import quote

    return Escaped(quote(str(path), safe="/._-"))


_DOTTED = re.compile(r"\.?[A-Za-z_][A-Za-z0-9_]*(\.[A-Za-z_][A-Za-z0-9_]*)*")


def ident(name: Any) -> Escaped:
    """A (dotted, optionally relative) identifier, checked: names nb2pkg made itself."""
    text = str(name)
    if not _DOTTED.fullmatch(text) or any(keyword.iskeyword(p) for p in text.split(".")):
        raise TemplateEscapeError(f"not an identifier: {text!r}")
    return Escaped(text)


def code(text: Any) -> Escaped:
    """Python source meant to be code (a moved definition, an extracted function)."""
    return Escaped(str(text))


def shell(text: Any) -> Escaped:
    text = str(text)
    if _UNSAFE_IN_LINE.search(text):
        raise TemplateEscapeError(f"a shell word with control characters: {text!r}")
    return Escaped(shlex.quote(text))


def _join(items: Iterable[Any], separator: str = "") -> str:
    items = list(items)
    joined = str(separator).join(str(i) for i in items)
    # Joining escaped pieces with a literal separator keeps them escaped.
    return Escaped(joined) if all(isinstance(i, Escaped) for i in items) else joined


def _finalize(value: Any) -> Any:
    if isinstance(value, str) and not isinstance(value, Escaped):
        raise TemplateEscapeError(
            f"the text {value[:60]!r} reached a template without an escaping filter "
            "(use | py, | toml, | yaml, | md, | mdcode, | ident, | code or | shell)")
    if value is None:
        raise TemplateEscapeError("None reached a template")
    return value


def _plain(value: Any) -> Any:
    """Escaped strings as plain ``str``, tuples as lists, recursively (for repr and YAML)."""
    if isinstance(value, str):
        return str(value)
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    if isinstance(value, dict):
        return {_plain(k): _plain(v) for k, v in value.items()}
    return value


# Strings YAML writes as they are (names, paths, stage names): a letter or `_` first, then
# letters, digits and `_./-`, none of YAML 1.1's words for true, false and null. PyYAML would
# leave each plain too (tests/test_templating.py checks); asking it costs ~0.1 ms a value, and
# importing it ~0.015 s of a conversion.
_PLAIN_YAML = re.compile(r"[A-Za-z_][A-Za-z0-9_./-]*")
_YAML_WORDS = frozenset(w for word in ("yes", "no", "true", "false", "on", "off", "null")
                        for w in (word, word.capitalize(), word.upper()))
# Printable ASCII that PyYAML's analysis (``Emitter.analyze_scalar``) cannot leave plain in a
# flow collection, so writes single-quoted: a flow indicator anywhere (`,?[]{}` or `:`), an
# indicator first (`#&*!|>'"%@``, `- `), ` #`, a space at either end, or a document marker; and
# a decimal like `3.11`, which would read back as a float.
_SINGLE_QUOTED_YAML = re.compile(
    r"[ -~]*(?:[,?\[\]{}:]| #)[ -~]*|[#&*!|>'\"%@`][ -~]*|- [ -~]*|-"
    r"|(?: [ -~]*|[ -~]* )|(?:---|\.\.\.)[ -~]*|[0-9]+\.[0-9]+")
# Printable ASCII PyYAML leaves plain in a flow collection (checked with `` #`` and a final
# space, and without true/false/null's words): a first character no other YAML type starts
# with, no flow indicator.
_FLOW_PLAIN_YAML = re.compile(r"[A-Za-z_/](?:(?![,?\[\]{}:])[ -~])*")
_DECIMAL = re.compile(r"-?[0-9]+\.[0-9]+")


def plain_yaml_scalar(value: Any) -> str | None:
    """``value`` as PyYAML writes it unquoted, in block and flow context alike, when it is a
    name or path, an integer, a decimal float, a boolean or null; None for anything else."""
    if isinstance(value, str):
        return value if _PLAIN_YAML.fullmatch(value) and value not in _YAML_WORDS else None
    if value is None:
        return "null"
    if type(value) is bool:
        return "true" if value else "false"
    if type(value) is int:
        return str(value)
    if type(value) is float and _DECIMAL.fullmatch(repr(value)):
        return repr(value)
    return None


def _yaml_flow(value: Any) -> str:
    if isinstance(value, dict):
        return "{" + ", ".join(f"{_yaml_flow(k)}: {_yaml_flow(v)}" for k, v in value.items()) + "}"
    if isinstance(value, list):
        return "[" + ", ".join(_yaml_flow(v) for v in value) + "]"
    plain = plain_yaml_scalar(value)
    if plain is not None:
        return plain
    if isinstance(value, str):
        if (_FLOW_PLAIN_YAML.fullmatch(value) and " #" not in value and value[-1] != " "
                and value not in _YAML_WORDS):
            return value  # words and spaces, such as a command line
        if not value or _SINGLE_QUOTED_YAML.fullmatch(value):
            return "'" + value.replace("'", "''") + "'"
    import yaml as pyyaml

    # Dumped inside a list, so that the scalar is quoted as a flow context needs (`a, b`).
    text = pyyaml.safe_dump([value], default_flow_style=True, width=float("inf"),
                            allow_unicode=True).strip()
    text = text[1:-1] if text.startswith("[") and text.endswith("]") else text
    if isinstance(value, str) and (_UNSAFE_IN_LINE.search(text) or "\n" in text):
        return _yaml_double_quoted(value)
    return text


def _yaml_double_quoted(text: str) -> str:
    out = ['"']
    for char in text:
        code = ord(char)
        if char in '"\\':
            out.append("\\" + char)
        elif code < 0x20 or 0x7F <= code <= 0x9F or code in (0x2028, 0x2029):
            out.append(f"\\x{code:02X}" if code <= 0xFF else f"\\u{code:04X}")
        elif 0xD800 <= code <= 0xDFFF:
            out.append("\\uFFFD")  # not representable in a UTF-8 file
        else:
            out.append(char)
    out.append('"')
    return "".join(out)


def line_span(first: int, last: int) -> str:
    """``line 4``, ``lines 2-4``."""
    return f"line {first}" if first == last else f"lines {first}-{last}"


def lines(span: Any) -> Escaped:
    """Where a block with ``first_line`` and ``last_line`` is: numbers only, nothing to escape."""
    return Escaped(line_span(int(span.first_line), int(span.last_line)))


FILTERS = {"py": py, "pydoc": pydoc, "mdmsg": mdmsg, "pycomment": pycomment, "toml": toml, "yaml": yaml,
           "yamlcomment": yamlcomment, "md": md, "mdcode": mdcode, "mdurl": mdurl, "ident": ident, "code": code,
           "shell": shell, "lines": lines, "join": _join}


def templates_dir() -> Path:
    """``templates/``: inside the installed package, or beside it in a checkout. (Not through
    ``importlib.resources``: pip installs no zipped packages, and it imports zipfile.)"""
    here = Path(__file__).resolve().parent
    packaged = here / "templates"
    return packaged if packaged.is_dir() else here.parent / "templates"


@lru_cache(maxsize=1)
def environment() -> Any:
    """The Jinja environment of every template in ``templates/``."""
    import jinja2

    env = jinja2.Environment(loader=jinja2.FileSystemLoader(str(templates_dir())),
                             keep_trailing_newline=True, undefined=jinja2.StrictUndefined,
                             autoescape=False, trim_blocks=True, lstrip_blocks=True,
                             finalize=_finalize, bytecode_cache=_bytecode_cache())
    env.filters.update(FILTERS)
    return env


def _bytecode_cache() -> Any:
    """Compiled templates kept in the user's cache folder (compiling the templates took ~0.06 s
    of every conversion), or None where there is no private folder for them.

    Jinja keys a template by its name and file path, and reuses it only while the checksum of
    its source matches and the Python and Jinja bytecode versions are the same. The compiled
    code also depends on the environment's options (above) and on ``_finalize``: the file names
    carry a digest of this module's source and Jinja's version, so another nb2pkg never reads
    what this one compiled. A damaged or unwritable file costs a compilation, never an error.
    """
    import hashlib

    import jinja2

    from .usercache import cache_folder, private_folder

    folder = cache_folder()
    try:
        own = Path(__file__).read_bytes()
    except OSError:
        return None
    if folder is None or not private_folder(folder / "templates"):
        return None
    digest = hashlib.sha256(own + f"\0{jinja2.__version__}".encode()).hexdigest()[:16]

    class Cache(jinja2.FileSystemBytecodeCache):
        def load_bytecode(self, bucket: Any) -> None:
            import types

            try:
                super().load_bytecode(bucket)
            except Exception:  # a damaged file (pickle, marshal): compile instead
                bucket.reset()
            if bucket.code is not None and not isinstance(bucket.code, types.CodeType):
                bucket.reset()

        def dump_bytecode(self, bucket: Any) -> None:
            try:
                super().dump_bytecode(bucket)
            except OSError:  # full disk, read-only folder: compiled again next time
                pass

    return Cache(str(folder / "templates"), f"{digest}-%s.cache")


def render_template(name: str, **context: Any) -> str:
    return environment().get_template(name).render(**context)
