"""Reading notebooks into plain records: cells, tags, sections and the papermill parameters cell.

Reading never modifies the file. Every problem becomes a ``NotebookError`` naming the file (and the
cell where there is one) and what to do, so the CLI can print one line instead of a traceback.
"""

from __future__ import annotations

import errno
import json
import os
import re
import stat
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Sequence

from .errors import Nb2pkgError, NotebookError, UnsupportedNotebook
from .notebook_format import read_node, schema_accepts

PYTHON_LANGUAGES = {"python", "python3", "python2", "ipython", "ipython3"}
_HEADING = re.compile(r"^(#{1,6})\s+(.+?)\s*#*\s*$")
_SETEXT = re.compile(r"^(=+|-+)\s*$")
# Deeper than this, later steps (nbformat, jsonschema, deepcopy, papermill) recurse past Python's
# limit (a notebook nested ~500 deep failed in convert). Jupyter itself writes nothing near it:
# plotly/vega outputs and widget state nest about 15 levels.
MAX_DEPTH = 100
# A lone surrogate can only come from a JSON escape: strict UTF-8 decoding refuses encoded ones.
_SURROGATE_ESCAPE = re.compile(r"\\u[dD][89abcdefABCDEF]")
_SURROGATE = re.compile("[\ud800-\udfff]")


@dataclass(frozen=True)
class Cell:
    """One notebook cell. ``index`` is its position in the notebook (0-based)."""

    index: int
    kind: str  # "code", "markdown" or "raw"
    source: str
    tags: tuple[str, ...] = ()
    execution_count: int | None = None
    outputs: tuple[Any, ...] = field(default=(), compare=False, repr=False)
    metadata: Any = field(default=None, compare=False, repr=False)

    @property
    def is_code(self) -> bool:
        return self.kind == "code"


@dataclass(frozen=True)
class Section:
    """A markdown heading and the cells it covers, up to the next heading of any level."""

    title: str
    level: int
    heading_cell: int  # index of the markdown cell holding the heading
    cells: tuple[int, ...]  # indexes of the cells after the heading, up to the next heading


@dataclass(frozen=True)
class Notebook:
    """A notebook as read from disk (always upgraded to nbformat 4)."""

    path: Path
    cells: tuple[Cell, ...]
    kernel_name: str
    language: str
    node: Any = field(compare=False, repr=False)  # the notebook node (attribute access), for copies
    original_nbformat: int = 4

    @property
    def name(self) -> str:
        return self.path.stem

    @property
    def code_cells(self) -> tuple[Cell, ...]:
        return tuple(c for c in self.cells if c.is_code)

    @property
    def parameters_cell(self) -> Cell | None:
        """The cell tagged ``parameters`` (papermill's contract), if any."""
        for cell in self.cells:
            if cell.is_code and "parameters" in cell.tags:
                return cell
        return None


def read_notebook(path: Path | str) -> Notebook:
    """Read and validate a notebook; raise ``NotebookError`` with a fix for anything unusable."""
    path = Path(path)
    text = _read_text(path)
    if not text.strip():
        raise NotebookError(f"empty file ({len(text)} bytes)", path=path,
                            hint="restore it from version control or re-save it from Jupyter")
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        raise NotebookError(f"malformed JSON at line {exc.lineno}, column {exc.colno}: {exc.msg}",
                            path=path, hint="the file is damaged; restore it from version control "
                            "or re-save it from Jupyter") from None
    except RecursionError:  # the C decoder refuses ~1,000 levels; say where, not a traceback
        raise _too_deep(path, where=_deep_position(text)) from None
    _check_values(data, text, path)
    if not isinstance(data, dict) or "cells" not in data and "worksheets" not in data:
        raise NotebookError("not a Jupyter notebook (no cells)", path=path)
    version = data.get("nbformat")
    if not isinstance(version, int) or version < 3:
        raise NotebookError(f"unsupported nbformat version {version!r}", path=path,
                            hint="open and re-save it in a current Jupyter to upgrade it to version 4")
    unnamed: list[int] | None  # the cells the file gives no id (None: every cell)
    if version == 4 and schema_accepts(data):  # most notebooks: no nbformat needed
        unnamed = [i for i, c in enumerate(data["cells"]) if "id" not in c]
        node = read_node(data)
    else:
        node, unnamed = _read_with_nbformat(text, data, version, path)
    _stable_ids(node, unnamed)
    kernel_name, language = _kernel(node)
    if language.lower() not in PYTHON_LANGUAGES:
        # Without a kernelspec the language came from other metadata: do not name a kernel.
        named = (node.metadata.get("kernelspec") or {}).get("name")
        runs = f"kernel {kernel_name!r} runs {language}" if named else f"its language is {language}"
        raise UnsupportedNotebook(f"{runs}, not Python", path=path,
                                  hint="nb2pkg converts Python notebooks only")
    cells = tuple(_cell(i, c) for i, c in enumerate(node.cells))
    return Notebook(path=path, cells=cells, kernel_name=kernel_name, language=language, node=node,
                    original_nbformat=version)


def _read_with_nbformat(text: str, data: Any, version: int, path: Path) -> tuple[Any, list[int] | None]:
    """The node of a notebook the quick schema check did not accept (version 3, a minor version
    it has no schema for, an invalid file: nbformat's error says what is wrong), and the cells
    the file gave no id (None: every cell, as in version 3)."""
    import nbformat  # with jsonschema: ~0.08 s

    try:
        with warnings.catch_warnings():
            # Missing cell ids are normal in older files; nbformat adds them on reading.
            warnings.simplefilter("ignore")
            if version == 4:  # validate the file as it is, so errors point at its fields
                nbformat.validate(nbformat.from_dict(data))
            unnamed = None if version != 4 else [
                i for i, c in enumerate(data.get("cells") or ()) if isinstance(c, dict) and "id" not in c]
            # Drop the first parse before nbformat parses the text again: holding both made
            # reading a notebook with large outputs peak at 3x its size instead of 2x.
            data = None
            # nbformat.reads would validate again (and only log what it finds): the schema check
            # is most of reading a long notebook, so each notebook is checked once, as it is
            # for version 4 and once converted for version 3.
            from nbformat.reader import reads

            node = nbformat.convert(reads(text), 4)
            if version != 4:
                nbformat.validate(node)
            return node, unnamed
    except nbformat.ValidationError as exc:
        raise _invalid(exc, path) from None
    except Exception as exc:  # nbformat raises assorted errors for damaged structures
        # nbformat normalizes before it checks the schema, so on some damaged structures
        # ("cells": [1], a number as cell_type, a string as nbformat_minor) it fails with a Python
        # error naming no field ("argument of type 'int' is not iterable"): report the schema's
        # complaint instead (tests/data/robustness/cell_is_not_an_object.ipynb).
        schema_error = _schema_error(text, version) if version == 4 else None
        if schema_error is not None:
            raise _invalid(schema_error, path) from None
        raise NotebookError(f"invalid notebook: {_first_line(str(exc))}", path=path) from None


def _stable_ids(node: Any, unnamed: list[int] | None) -> None:
    """Ids from position (``cell-3``) for the cells the file named none (``None``: every cell,
    as in version 3) and for those repeating an earlier cell's id, in place of the random ones nbformat invents (on reading, or on writing
    format 4.5): converting one file twice must give the same bytes, and an update must not see
    every cell of such a notebook as new. Format 4.4 and older has no ids (its schema allows
    none), so those cells stay without."""
    cells = node.cells
    if node.get("nbformat_minor", 0) < 5:
        return
    chosen = set(range(len(cells)) if unnamed is None else unnamed)
    seen: set[object] = set()
    for i, cell in enumerate(cells):  # a repeated id: nbformat would correct it at random
        if i not in chosen and cell.get("id") in seen:
            chosen.add(i)
        seen.add(cell.get("id"))
    if not chosen:
        return
    indices = sorted(chosen)
    taken = {c.get("id") for i, c in enumerate(cells) if i not in chosen}
    for index in indices:
        cell_id = f"cell-{index}"
        while cell_id in taken:
            cell_id += "-x"
        taken.add(cell_id)
        cells[index]["id"] = cell_id


def _read_text(path: Path) -> str:
    """The notebook's text: a regular UTF-8 file, read without blocking."""
    data = read_regular_file(path)
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise NotebookError(f"not UTF-8 text ({exc.reason} at byte {exc.start})", path=path,
                            hint="notebooks are UTF-8 JSON; re-save it from Jupyter") from None


def read_regular_file(path: Path | str, error: type[Nb2pkgError] = NotebookError,
                      what: str = "notebook") -> bytes:
    """The bytes of ``path``, or ``error`` in one line when it is not a regular file one can read
    (a folder, a FIFO, a device, a symbolic link loop, missing, not permitted). Never blocks.

    Any command reading a path a user gives can use it (``what`` names the expected file).
    """
    try:
        # O_NONBLOCK: opening a FIFO named *.ipynb must not wait forever for a writer; what was
        # opened is checked below, so the file cannot be swapped between a check and the open.
        fd = os.open(path, os.O_RDONLY | getattr(os, "O_NONBLOCK", 0) | getattr(os, "O_BINARY", 0))
    except OSError as exc:
        raise _unreadable(path, exc, error, what) from None
    try:
        mode = os.fstat(fd).st_mode
        if stat.S_ISDIR(mode):
            raise error(f"is a folder, not a {what}", path=path, hint="pass the files inside it")
        if not stat.S_ISREG(mode):
            kind = "a FIFO" if stat.S_ISFIFO(mode) else "a device or socket"
            raise error(f"is {kind}, not a regular file", path=path,
                        hint="nb2pkg reads regular files only")
        file = os.fdopen(fd, "rb")  # owns the descriptor from here on
    except BaseException:
        os.close(fd)
        raise
    with file:
        try:
            return file.read()
        except OSError as exc:
            raise _unreadable(path, exc, error, what) from None


def _unreadable(path: Path | str, exc: OSError, error: type[Nb2pkgError], what: str
                ) -> Nb2pkgError:
    if exc.errno == errno.ENOENT:
        return error("no such file", path=path, hint="check the path")
    if exc.errno == errno.ELOOP:
        return error("is a symbolic link loop", path=path, hint=f"point the link at a {what}")
    if exc.errno in (errno.EISDIR, errno.EACCES) and os.path.isdir(path):  # Windows
        return error(f"is a folder, not a {what}", path=path, hint="pass the files inside it")
    hint = "check the file's permissions" if exc.errno in (errno.EACCES, errno.EPERM) else None
    return error(f"cannot read: {exc.strerror or exc}", path=path, hint=hint)


def _too_deep(path: Path, where: str, cell: int | None = None) -> NotebookError:
    return NotebookError(f"nested more than {MAX_DEPTH} levels deep at {where}", path=path,
                         cell=cell, hint="no notebook Jupyter writes nests like this; remove or "
                         "flatten that value")


def _deep_position(text: str) -> str:
    """'line L, column C' where the JSON text first nests deeper than ``MAX_DEPTH``."""
    depth = 0
    for match in re.finditer(r'"(?:[^"\\]|\\.)*"|[\[\]{}]', text):
        token = match.group()
        if token in "[{":
            depth += 1
            if depth > MAX_DEPTH:
                line = text.count("\n", 0, match.start()) + 1
                column = match.start() - (text.rfind("\n", 0, match.start()) + 1) + 1
                return f"line {line}, column {column}"
        elif token in "]}":
            depth -= 1
    return "an unknown place"


def _check_values(data: Any, text: str, path: Path) -> None:
    """Refuse nesting deeper than ``MAX_DEPTH`` and strings with a lone surrogate, naming where.

    Both parse as JSON, but a lone surrogate cannot be written back as UTF-8 (the converted
    notebook, REPORT.md, the terminal) and deep nesting overflows the recursive steps that follow.
    Only containers are visited, and their strings only when the text has a surrogate escape at
    all, so that a large notebook costs a fraction of its ``json.loads``; the path to what is
    refused is looked for only then.
    """
    strings = _SURROGATE_ESCAPE.search(text) is not None
    todo: list[tuple[Any, int]] = [(data, 1)]
    while todo:
        value, depth = todo.pop()
        if depth > MAX_DEPTH:
            steps, _ = _find(data, lambda v, d: isinstance(v, (dict, list)) and d > MAX_DEPTH)
            raise _too_deep(path, _where(steps, 8) + "/...", _cell_of(steps))
        children = value.values() if isinstance(value, dict) else value
        if strings and (any(isinstance(v, str) and _SURROGATE.search(v) for v in children)
                        or isinstance(value, dict) and any(_SURROGATE.search(k) for k in value)):
            steps, text_found = _find(data, lambda v, d: isinstance(v, str)
                                      and _SURROGATE.search(v) is not None)
            raise _surrogate(path, steps, text_found)
        todo.extend((v, depth + 1) for v in children if isinstance(v, (dict, list)))


def _find(data: Any, wanted: Any) -> tuple[tuple, Any]:
    """(JSON path, thing) of the first value or dict key for which ``wanted(thing, depth)`` holds
    (``data`` is at depth 1; a key's path ends with the key itself)."""
    todo: list[tuple[Any, tuple]] = [(data, ())]
    while todo:
        value, steps = todo.pop()
        if wanted(value, len(steps) + 1):
            return steps, value
        if isinstance(value, dict):
            for key, item in value.items():
                if wanted(key, len(steps) + 2):
                    return (*steps, key), key
                todo.append((item, (*steps, key)))
        elif isinstance(value, list):
            todo.extend((item, (*steps, i)) for i, item in enumerate(value))
    return (), None


def _surrogate(path: Path, steps: tuple, value: str) -> NotebookError:
    char = _SURROGATE.search(value).group()  # type: ignore[union-attr]
    return NotebookError(f"text at {_where(steps)} holds a lone surrogate \\u{ord(char):04x}, "
                         "which is not valid Unicode", path=path, cell=_cell_of(steps),
                         hint="delete that character; a tool wrote half of a surrogate pair")


def _where(steps: Sequence, limit: int | None = None) -> str:
    """The JSON path of a value, from its cell when it is in one (the cell is named apart)."""
    if _cell_of(steps) is not None:
        steps = steps[2:]
    return "/".join(str(step)[:40] for step in steps[:limit]) or "notebook"


def _cell_of(steps: Sequence) -> int | None:
    return steps[1] if len(steps) > 1 and steps[0] == "cells" and isinstance(steps[1], int) else None


def _invalid(error: Any, path: Path) -> NotebookError:
    """A schema ValidationError as a one-line NotebookError naming the field (and cell)."""
    steps = list(error.absolute_path)
    where = " at " + "/".join(str(p) for p in steps) if steps else ""  # "": the whole file
    return NotebookError(f"invalid notebook{where}: {_first_line(error.message)}", path=path,
                         cell=_cell_of(steps), hint="re-save it from Jupyter, or fix the field by hand")


def _schema_error(text: str, version: int) -> Any:
    """The schema's most relevant complaint about the file as written, or None."""
    try:
        import jsonschema
        from nbformat.validator import get_validator

        data = json.loads(text)
        minor = data.get("nbformat_minor")
        validator = get_validator(version, minor if isinstance(minor, int) else None,
                                  name="jsonschema")
        return jsonschema.exceptions.best_match(validator.iter_errors(data))
    except Exception:  # only a better message is at stake
        return None


def _kernel(node: Any) -> tuple[str, str]:
    meta = node.get("metadata", {})
    spec = meta.get("kernelspec") or {}
    info = meta.get("language_info") or {}
    # jupytext writes notebooks made from R/Julia/PowerShell scripts with no kernelspec and no
    # language_info, only metadata.jupytext.main_language: without it they were read as Python
    # (every cell unparseable) instead of being refused (tests/data/robustness/jupytext_*).
    # Notebooks saved in nbformat 3 by IJulia/IRkernel name it only in metadata.language, which
    # the upgrade to v4 keeps (tests/data/robustness/v3_julia_metadata_language.ipynb).
    jupytext = meta.get("jupytext") if isinstance(meta.get("jupytext"), dict) else {}
    language = (spec.get("language") or info.get("name") or jupytext.get("main_language")
                or meta.get("language") or "python")
    return spec.get("name") or "python3", str(language)


def _cell(index: int, raw: Any) -> Cell:
    tags = raw.get("metadata", {}).get("tags") or ()
    return Cell(
        index=index,
        kind=raw.get("cell_type", "raw"),
        source=raw.get("source", ""),
        tags=tuple(str(t) for t in tags),
        execution_count=raw.get("execution_count"),
        outputs=tuple(raw.get("outputs", ())),
        metadata=raw.get("metadata", {}),
    )


def _first_line(text: str) -> str:
    line = text.strip().splitlines()[0] if text.strip() else "unknown problem"
    return line if len(line) <= 200 else line[:197] + "..."


def headings(source: str) -> list[tuple[int, str]]:
    """Markdown headings (level, title) of a markdown cell, ATX and setext, outside code fences."""
    found: list[tuple[int, str]] = []
    fenced = False
    previous = ""
    for line in source.splitlines():
        stripped = line.strip()
        if stripped.startswith(("```", "~~~")):
            fenced = not fenced
            previous = ""
            continue
        if fenced:
            continue
        match = _HEADING.match(stripped)
        if match and len(line) - len(line.lstrip()) < 4:
            found.append((len(match.group(1)), _clean_title(match.group(2))))
        elif previous.strip() and _SETEXT.match(stripped) and not previous.startswith((" " * 4, "\t")):
            found.append((1 if stripped[0] == "=" else 2, _clean_title(previous.strip())))
        previous = line
    return found


def _clean_title(title: str) -> str:
    # Headings often carry markup: keep the words a person reads.
    title = re.sub(r"<[^>]+>", "", title)
    title = re.sub(r"[*_`]", "", title)
    title = re.sub(r"\[([^\]]*)\]\([^)]*\)", r"\1", title)
    return printable(title)


_ANSI = re.compile(r"\x1b\[[0-9;?]*[ -/]*[@-~]")  # a terminal colour or cursor sequence
_CONTROL = re.compile("[\x00-\x1f\x7f-\x9f\ud800-\udfff\ufffe\uffff]+")


def printable(text: str) -> str:
    """``text`` on one line without control characters (ESC, NUL, ...) or unpaired surrogates.

    Titles taken from headings become stage titles, YAML comments and report lines: YAML refuses
    such characters anywhere in a file, so ``nb2pkg run`` would refuse the pipeline (issue 12).
    """
    text = _CONTROL.sub(" ", _ANSI.sub("", text))
    return " ".join(text.split())


def sections(notebook: Notebook) -> tuple[Section, ...]:
    """Every heading with the cells up to the next heading (of any level), in notebook order."""
    marks: list[tuple[int, int, str]] = []  # (cell index, level, title)
    for cell in notebook.cells:
        if cell.kind == "markdown":
            for level, title in headings(cell.source):
                marks.append((cell.index, level, title))
    result = []
    for i, (index, level, title) in enumerate(marks):
        end = len(notebook.cells)
        for later_index, _, _ in marks[i + 1:]:
            if later_index > index:
                end = later_index
                break
        result.append(Section(title=title, level=level, heading_cell=index,
                              cells=tuple(range(index + 1, end))))
    # A cell with several headings yields several sections; only its last one owns the cells.
    return tuple(s if not any(o.heading_cell == s.heading_cell for o in result[j + 1:])
                 else Section(s.title, s.level, s.heading_cell, ())
                 for j, s in enumerate(result))
