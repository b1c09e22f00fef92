# Used by tests/test_notebooks.py: run notebooks on a kernel, compare their outputs.
# nb2pkg wrote this file (from its nb2pkg/runtime/notebook_outputs.py); it belongs to this
# project now: read it, change it. Nothing in the project needs nb2pkg to run or to test.
"""Run notebooks on a real Jupyter kernel and compare what they print.

Used to check that a refactored notebook prints what the original printed. Three layers:

1. Normalization (pure): an executed notebook → its ordered stream of ``Output``
   records, with what legitimately varies between runs normalized (execution counts,
   memory addresses, timings, the module path in reprs of moved classes). Consecutive
   stream chunks are joined (the kernel splits them differently from run to run) and
   warnings are taken out of stderr.
2. Comparison (pure): two output streams → a ``Comparison``. Rules:
   - Outputs are compared per cell (the original notebook's cell index).
   - Warnings are compared as one set of "Category: message" per notebook, not per
     cell, location or count: Python shows a warning once per code location for the
     whole session, so moving code into a function changes where and how often a
     warning appears, never whether it does.
   - With a second run of the original, a cell whose outputs differ between the two
     runs is compared loosely: what both runs printed must be there, and the rest must
     be outputs of the kinds (and error names) the original printed in one of its runs,
     as many as in one of them. Warnings shown by one run only are left out. An error
     is never excused by this unless the original itself raised it in that cell.
   - The original must run here: an error it raises that its saved outputs do not show
     at that cell (in a cell not tagged ``raises-exception``) means the environment
     lacks something (a package, a data file). ``compare_notebooks`` then raises
     ``OriginalFails``: two notebooks that fail the same way never compare equal.
3. Execution (nbclient): ``execute`` runs one notebook; ``compare_notebooks`` runs the
   original and the refactored notebook, and the original a second time when they
   differ.

Only the standard library is imported at module level; nbformat and nbclient are
imported when a notebook is read or run.
"""

from __future__ import annotations

import difflib
import hashlib
import os
import re
import tempfile
from collections import Counter
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, Callable, Collection, Iterable, Mapping, Sequence

RAISES_TAG = "raises-exception"  # the nbclient/nbval tag: this cell is meant to raise
# nbval's comment saying the same, on a line of its own (pvlib's tutorials).
RAISES_COMMENT = "NBVAL_RAISES_EXCEPTION"

_ADDRESS = re.compile(r"0x[0-9a-fA-F]{4,}")
_OBJECT = re.compile(r"<([A-Za-z_][\w.]*\.)?([A-Za-z_]\w*) object at 0x…>")
_CLASS = re.compile(r"<class '([A-Za-z_][\w.]*\.)?([A-Za-z_]\w*)'>")
# %time and %timeit lines. (`.*± .* per loop` took time quadratic in a line of many "±".)
_TIMING = re.compile(
    r"^(CPU times:.*|Wall time:.*|.* per loop \(mean ± std\. dev\..*)$", re.M
)
# A cell's file in a traceback (`/tmp/ipykernel_123/456.py`), found by its name; the path
# before it is taken by `_mask_cell_files`.
_CELL_FILE = re.compile(r"ipykernel_\d+[/\\]\d+\.py")
# A progress bar's times and rate (tqdm: "[00:01<00:03, 12.14it/s]").
_PROGRESS = re.compile(
    r"\[(?:\d+:)?\d\d:\d\d<(?:(?:\d+:)?\d\d:\d\d|\?)(?:,[^\]\n]*)?\]"
)
_WARNING_LOCATION = re.compile(r"^\S.*?:\d+: (\w+(?:Warning|Error)\b.*)$")


class NotebookRunError(Exception):
    """A notebook could not be run or compared.

    ``str()`` is one line: where, what went wrong, what to do.
    """

    def __init__(
        self,
        message: str,
        *,
        path: Path | str | None = None,
        cell: int | None = None,
        hint: str | None = None,
    ) -> None:
        self.message, self.cell, self.hint = message, cell, hint
        self.path = None if path is None else str(path)
        super().__init__(self.message)

    def __str__(self) -> str:
        where = self.path or ""
        if self.cell is not None:
            where = f"{where}: cell {self.cell}" if where else f"cell {self.cell}"
        text = f"{where}: {self.message}" if where else self.message
        return " ".join((f"{text} ({self.hint})" if self.hint else text).split())


class OriginalFails(NotebookRunError):
    """The original notebook raised an error here that it does not show itself."""

    def __init__(self, error: "Output", *, path: Path | str, hint: str) -> None:
        text = " ".join(error.text.split())
        text = text if len(text) <= 200 else text[:199] + "…"
        super().__init__(
            f"the original notebook fails here ({text}), "
            "so there is nothing to compare",
            path=path,
            cell=error.cell,
            hint=hint,
        )
        self.error = error


class ExecutionStopped(NotebookRunError):
    """The kernel died or a cell ran past the timeout."""


class KernelNeverStarted(NotebookRunError):
    """The kernel died twice before running anything."""


class SetupFailed(NotebookRunError):
    """The setup code run before the notebook raised an error."""


# --------------------------------------------------------------------------------------
# Records


@dataclass(frozen=True)
class Output:
    cell: int  # the original notebook's cell index this output belongs to
    kind: str  # "stdout", "stderr", "warning", "result", "display", "error"
    text: str  # normalized ("Name: value" for errors, "Category: message" for warnings)


@dataclass(frozen=True)
class Comparison:
    """The verdict of comparing an original's outputs with a refactored notebook's."""

    differing: tuple[int, ...] = ()  # cells whose outputs differ
    varying: tuple[int, ...] = ()  # cells that differ between two runs of the original
    missing_warnings: tuple[str, ...] = ()  # shown by the original, not the refactored
    added_warnings: tuple[str, ...] = ()  # shown by the refactored only
    varying_warnings: tuple[str, ...] = ()  # shown by one run of the original only
    first_difference_cell: int | None = None
    compared: int = 0  # outputs required to match: all but what varies, warnings once
    # The cells that vary printed the same once both notebooks ran with their random
    # generators seeded alike (``SEEDED``).
    seeded: bool = False

    @property
    def equivalent(self) -> bool:
        return not (self.differing or self.missing_warnings or self.added_warnings)


# --------------------------------------------------------------------------------------
# Normalization: executed notebook node → output stream (pure)


def normalize_text(text: str) -> str:
    """``text`` with addresses, module paths in reprs, timings and cell files masked."""
    text = _ADDRESS.sub("0x…", text)
    text = _OBJECT.sub(lambda m: f"<{m.group(2)} object at 0x…>", text)
    text = _CLASS.sub(lambda m: f"<class '{m.group(2)}'>", text)
    text = _TIMING.sub("<timing>", text)
    text = _PROGRESS.sub("[<timing>]", text)
    return _mask_cell_files(text)


def _mask_cell_files(text: str) -> str:
    """Each cell file's path, with the folders before it (what is not whitespace or a quote),
    as ``<cell>``. A regular expression looking for the folders first takes time quadratic
    in a long run of such characters (a base64 picture in HTML: 20 KB took 5 s; colorcet's
    page of colormaps kept `--verify` busy for over 10 minutes), so the name is found first
    and the folders are read back from it."""
    pieces, last = [], 0
    for match in _CELL_FILE.finditer(text):
        start = match.start()
        if start > last and text[start - 1] in "/\\":
            start -= 1
            while start > last and not (
                text[start - 1].isspace() or text[start - 1] in "'\""
            ):
                start -= 1
        pieces += [text[last:start], "<cell>"]
        last = match.end()
    pieces.append(text[last:])
    return "".join(pieces)


def as_shown(text: str) -> str:
    """Stream text as Jupyter and a terminal show it: a carriage return goes back to the
    start of the line and what follows overwrites it (a progress bar's updates leave its
    last state, however many the timing made)."""
    if "\r" not in text:
        return text
    lines = []
    for line in text.replace("\r\n", "\n").split("\n"):
        shown = ""
        for part in line.split("\r"):
            shown = part + shown[len(part) :]
        lines.append(shown)
    return "\n".join(lines)


def split_stderr(text: str) -> tuple[list[str], str]:
    """The warnings in stderr text ("Category: message", no location) and the rest.

    Python prints a warning as ``file:line: Category: message`` and, when the source is
    known, the source line indented below it; both depend on where the code lives, so
    both go.
    """
    warnings, lines, skip_source = [], [], False
    for line in text.splitlines(keepends=True):
        match = _WARNING_LOCATION.match(line.rstrip("\r\n"))
        if match:
            warnings.append(normalize_text(match.group(1)))
            skip_source = True
            continue
        if skip_source and line.startswith("  "):
            skip_source = False
            continue
        skip_source = False
        lines.append(line)
    return warnings, normalize_text("".join(lines))


def _bundle(data: Mapping[str, Any]) -> str:
    parts = []
    for mime in sorted(data):
        value = data[mime]
        if isinstance(value, list):
            value = "".join(value)
        if mime == "application/vnd.jupyter.widget-view+json" and isinstance(
            value, Mapping
        ):
            # The model id is random per run; the rest says which widget it is.
            value = {k: v for k, v in value.items() if k != "model_id"}
        if mime.startswith("image/") or mime == "application/pdf":
            digest = hashlib.sha256(str(value).encode()).hexdigest()[:16]
            parts.append(f"{mime} sha256:{digest}")
        else:
            parts.append(f"{mime}: {normalize_text(str(value))}")
    return "\n".join(parts)


def _streams(cell: int, chunks: list[tuple[str, str]]) -> list[Output]:
    """Stream chunks between two rich outputs → outputs.

    Warnings are taken out; text of the same stream is joined.
    """
    pieces: list[tuple[str, str]] = []  # (stream name, text), consecutive names merged
    for name, text in chunks:
        if pieces and pieces[-1][0] == name:
            pieces[-1] = (name, pieces[-1][1] + text)
        else:
            pieces.append((name, text))
    found: list[Output] = []
    merged: list[tuple[str, str]] = []
    for name, text in pieces:
        text = as_shown(text)
        if name == "stderr":
            warnings, text = split_stderr(text)
            found += [Output(cell, "warning", w) for w in warnings]
        else:
            text = normalize_text(text)
        if not text:
            continue
        # Joined again once a warning between them is gone.
        if merged and merged[-1][0] == name:
            merged[-1] = (name, merged[-1][1] + text)
        else:
            merged.append((name, text))
    return found + [Output(cell, name, text) for name, text in merged]


def source_cells(node: Any) -> list[int]:
    """For each cell of ``node``, the original notebook's cell index it stands for.

    Refactored notebooks carry it in ``metadata.nb2pkg.source_cell``; a cell added by
    the refactoring (``metadata.nb2pkg.generated``) counts as part of the next original
    cell, where its effect is first seen.
    """
    origins: list[int | None] = []
    for index, cell in enumerate(node.cells):
        meta = cell.get("metadata", {}).get("nb2pkg", {})
        added = meta.get("generated")
        origins.append(meta.get("source_cell", None if added else index))
    following = len(node.cells)
    for index in reversed(range(len(origins))):
        if origins[index] is None:
            origins[index] = following
        following = origins[index]  # type: ignore[assignment]
    return origins  # type: ignore[return-value]


def outputs_of(node: Any) -> tuple[Output, ...]:
    """The normalized output stream of an executed (or saved) notebook node."""
    stream: list[Output] = []
    for cell, origin in zip(node.cells, source_cells(node)):
        if cell.cell_type != "code":
            continue
        chunks: list[tuple[str, str]] = []
        for output in cell.get("outputs", []):
            kind = output.get("output_type")
            if kind == "stream":
                text = output.get("text", "")
                name = output.get("name", "stdout")
                chunks.append((name, "".join(text) if isinstance(text, list) else text))
                continue
            stream += _streams(origin, chunks)
            chunks = []
            if kind in ("execute_result", "display_data"):
                shown = "result" if kind == "execute_result" else "display"
                stream.append(Output(origin, shown, _bundle(output.get("data", {}))))
            elif kind == "error":
                text = f"{output.get('ename')}: {output.get('evalue')}"
                stream.append(Output(origin, "error", normalize_text(text)))
        stream += _streams(origin, chunks)
    return tuple(stream)


def raising_cells(node: Any) -> frozenset[int]:
    """Cells meant to raise: an error there is part of the notebook."""
    return frozenset(i for i, cell in enumerate(node.cells) if raises_on_purpose(cell))


def raises_on_purpose(cell: Any) -> bool:
    """Tagged ``raises-exception`` (nbclient, nbval), or marked so by nbval's comment line
    ``# NBVAL_RAISES_EXCEPTION`` (which nbclient does not read)."""
    if RAISES_TAG in (cell.get("metadata", {}).get("tags") or ()):
        return True
    source = cell.get("source") or ""
    return cell.get("cell_type") == "code" and any(
        line.strip().startswith("#")
        and line.strip().lstrip("#").strip() == RAISES_COMMENT
        for line in "".join(source).splitlines()
    )


# --------------------------------------------------------------------------------------
# Comparison: output streams → verdict (pure)


def error_name(output: Output) -> str:
    return output.text.split(":", 1)[0]


def first_unexpected_error(
    run: Sequence[Output], saved: Sequence[Output], may_raise: Collection[int] = ()
) -> Output | None:
    """The first error of ``run`` that the notebook does not show itself.

    That is an error not in its saved outputs at the same cell with the same exception
    name, in a cell not tagged to raise.
    """
    shown = {(o.cell, error_name(o)) for o in saved if o.kind == "error"}
    return next(
        (
            o
            for o in run
            if o.kind == "error"
            and o.cell not in may_raise
            and (o.cell, error_name(o)) not in shown
        ),
        None,
    )


def _by_cell(outputs: Iterable[Output]) -> dict[int, tuple[Output, ...]]:
    cells: dict[int, list[Output]] = {}
    for o in outputs:
        if o.kind != "warning":
            cells.setdefault(o.cell, []).append(o)
    return {cell: tuple(found) for cell, found in cells.items()}


def _warnings(outputs: Iterable[Output]) -> dict[str, int]:
    """Each warning shown, with the first cell that shows it."""
    found: dict[str, int] = {}
    for o in outputs:
        if o.kind == "warning":
            found.setdefault(o.text, o.cell)
    return found


def _common(a: Sequence[Output], b: Sequence[Output]) -> list[Output]:
    matcher = difflib.SequenceMatcher(None, a, b, autojunk=False)
    return [
        o
        for block in matcher.get_matching_blocks()
        for o in a[block.a : block.a + block.size]
    ]


def _without(
    outputs: Sequence[Output], subsequence: Sequence[Output]
) -> list[Output] | None:
    """``outputs`` minus ``subsequence`` (matched in order), or None if not one."""
    rest, wanted = [], list(subsequence)
    for o in outputs:
        if wanted and o == wanted[0]:
            wanted.pop(0)
        else:
            rest.append(o)
    return None if wanted else rest


def _signature(o: Output) -> str:
    return f"error {error_name(o)}" if o.kind == "error" else o.kind


def cell_agrees(
    expected: Sequence[Output],
    actual: Sequence[Output],
    *again: Sequence[Output] | None,
) -> bool:
    """Whether one cell's refactored outputs match the original's (given more runs of it)."""
    runs = [tuple(expected), *(tuple(run) for run in again if run is not None)]
    if tuple(actual) in runs:
        return True
    if len(set(runs)) == 1:
        return False
    # The original varies here: what all its runs print must be there, in order; the
    # rest must be of the kinds (errors: the names) the original printed loosely, as
    # many as in some run. Each run more can only make less stable: two runs that agree
    # by chance on one of a few pictures (a test drawing from permutations) do not make
    # that picture required when a third run draws another.
    stable = _printed_by_all(runs)
    rest = _without(actual, stable)
    if rest is None:
        return False
    loose = [Counter(map(_signature, _without(run, stable) or ())) for run in runs]
    have = Counter(map(_signature, rest))
    return all(
        min(c[s] for c in loose) <= have[s] <= max(c[s] for c in loose)
        for s in set(have).union(*loose)
    )


def compare(
    expected: Sequence[Output],
    actual: Sequence[Output],
    again: Sequence[Output] | None = None,
    known_varying: Collection[int] = (),
    third: Sequence[Output] | None = None,
) -> Comparison:
    """Compare a refactored notebook's outputs with the original's.

    ``again`` and ``third`` are the outputs of more runs of the original, when there were
    any. ``known_varying``: cells seen to vary between two runs of the original before (when
    the project was made); where this time's runs happen to agree, such a cell must
    still show outputs of the same kinds, as many of each.
    """
    cells_e, cells_a = _by_cell(expected), _by_cell(actual)
    more = [_by_cell(run) for run in (again, third) if run is not None]
    cells = sorted(set(cells_e) | set(cells_a) | {c for run in more for c in run})
    known = set(known_varying) & set(cells)
    varying = tuple(
        c
        for c in cells
        if any(run.get(c, ()) != cells_e.get(c, ()) for run in more) or c in known
    )

    def agrees(c: int) -> bool:
        e, a = cells_e.get(c, ()), cells_a.get(c, ())
        if cell_agrees(e, a, *(run.get(c, ()) for run in more)):
            return True
        return (
            c in known
            and all(tuple(run.get(c, ())) == tuple(e) for run in more)
            and Counter(map(_signature, a)) == Counter(map(_signature, e))
        )

    differing = tuple(c for c in cells if not agrees(c))

    warn_e, warn_a = _warnings(expected), _warnings(actual)
    warn_b = _warnings(again) if again is not None else dict(warn_e)
    always, sometimes = set(warn_e) & set(warn_b), set(warn_e) | set(warn_b)
    missing = sorted(
        always - set(warn_a), key=lambda w: (warn_e.get(w, warn_b.get(w)), w)
    )
    added = sorted(set(warn_a) - sometimes, key=lambda w: (warn_a[w], w))
    varying_warnings = tuple(sorted(sometimes - always))

    firsts = [
        *differing,
        *(warn_e.get(w, warn_b.get(w)) for w in missing),
        *(warn_a[w] for w in added),
    ]
    compared = len(always) + sum(len(_stable(c, cells_e, more, varying)) for c in cells)
    return Comparison(
        differing,
        varying,
        tuple(missing),
        tuple(added),
        varying_warnings,
        min(firsts) if firsts else None,  # type: ignore[type-var]
        compared,
    )


def _stable(
    cell: int,
    expected: Mapping[int, Sequence[Output]],
    more: Sequence[Mapping[int, Sequence[Output]]],
    varying: Collection[int],
) -> list[Output]:
    """What every run of the original printed in ``cell``."""
    if cell not in varying:
        return list(expected.get(cell, ()))
    return _printed_by_all(
        [expected.get(cell, ()), *(run.get(cell, ()) for run in more)]
    )


def _printed_by_all(runs: Sequence[Sequence[Output]]) -> list[Output]:
    """The outputs every run printed, in order (a subsequence of each)."""
    stable = list(runs[0])
    for run in runs[1:]:
        stable = _common(stable, run)
    return stable


def _render(outputs: Iterable[Output]) -> list[str]:
    lines = []
    for output in outputs:
        for i, line in enumerate(output.text.splitlines() or [""]):
            prefix = f"[cell {output.cell} {output.kind}]" if i == 0 else " " * 4
            lines.append(f"{prefix} {line}")
    return lines


def diff_lines(
    expected: Sequence[Output], actual: Sequence[Output], comparison: Comparison
) -> list[str]:
    """A unified diff of the differing cells and warnings only."""
    shown_cells = set(comparison.differing)
    warnings = set(comparison.missing_warnings) | set(comparison.added_warnings)

    def shown(outputs: Sequence[Output]) -> list[Output]:
        seen: set[str] = set()
        kept = []
        for o in outputs:
            if o.kind == "warning":
                if o.text in warnings and o.text not in seen:
                    seen.add(o.text)
                    kept.append(o)
            elif o.cell in shown_cells:
                kept.append(o)
        return kept

    return list(
        difflib.unified_diff(
            _render(shown(expected)),
            _render(shown(actual)),
            "original",
            "refactored",
            lineterm="",
            n=2,
        )
    )


def describe(
    comparison: Comparison,
    expected: Sequence[Output],
    actual: Sequence[Output],
    *,
    original: str,
    refactored: str,
    likely_causes: Sequence[str] = (),
    limit: int = 40,
) -> str:
    """The verdict in words: one line when equivalent, else where and a diff."""
    note = _varying_note(comparison)
    if comparison.equivalent:
        return (
            f"equivalent: {refactored} prints what {original} prints "
            f"({comparison.compared} outputs compared{note})"
        )
    lines = [
        f"DIFFERENT: {refactored} does not print what {original} prints "
        f"(first difference at cell {comparison.first_difference_cell}{note})"
    ]
    if likely_causes:
        lines.append("  likely cause: " + "; ".join(likely_causes))
    lines += ["  " + line for line in diff_lines(expected, actual, comparison)[:limit]]
    return "\n".join(lines)


def _varying_note(c: Comparison) -> str:
    parts = []
    if c.varying:
        parts.append(
            f"cells {list(c.varying)} print differently in two runs of the original "
            "itself, so only what both runs printed was required there"
        )
    if c.seeded:
        parts.append(
            "there, run again with Python's and numpy's random generators seeded alike "
            "(an unseeded notebook), both printed the same"
        )
    if c.varying_warnings:
        parts.append(
            f"{len(c.varying_warnings)} warnings shown by one run of the original only "
            "were not compared"
        )
    return "; " + "; ".join(parts) if parts else ""


# --------------------------------------------------------------------------------------
# Execution on a real kernel


def read(path: Path | str) -> Any:
    """The notebook node as saved (with its saved outputs)."""
    import nbformat

    try:
        return nbformat.read(str(path), as_version=4)
    except Exception as exc:
        raise NotebookRunError(f"cannot read notebook: {exc}", path=path) from None


def _kernel_config():
    """Encrypt the connection to the kernel where jupyter_client and the kernel both can
    (ipykernel 7.3 and later warns on every start over plain TCP); an older jupyter_client
    has no such setting."""
    from jupyter_client.manager import KernelManager
    from traitlets.config import Config

    if "transport_encryption" in KernelManager.class_trait_names():
        return Config({"KernelManager": {"transport_encryption": "auto"}})
    return Config()


def _kernel_name(node: Any) -> str:
    from jupyter_client.kernelspec import KernelSpecManager

    wanted = node.get("metadata", {}).get("kernelspec", {}).get("name") or "python3"
    available = KernelSpecManager().find_kernel_specs()
    if wanted in available:
        return wanted
    return "python3" if "python3" in available else next(iter(available), "python3")


# nbclient, in the main thread, handles SIGINT and SIGTERM itself while it runs a notebook: it
# shuts the kernel down, and the run then fails with whatever the dead kernel causes
# (CancelledError, AssertionError). Afterwards it resets both signals to Python's defaults, so
# the process's own handlers (the CLI's, for SIGTERM) would be gone.
_SIGNALS = ("SIGINT", "SIGTERM")


def _signal_handlers() -> dict[Any, Any]:
    """The main thread's handlers of SIGINT and SIGTERM (none elsewhere: only it has any)."""
    import signal
    import threading

    if threading.current_thread() is not threading.main_thread():
        return {}
    return {
        sig: signal.getsignal(sig) for sig in (getattr(signal, n) for n in _SIGNALS)
    }


def _restore(handlers: dict[Any, Any]) -> None:
    import signal

    for sig, handler in handlers.items():
        if handler is not None:  # set outside Python: nothing to put back
            signal.signal(sig, handler)


def _stopped_by_signal(client: Any) -> bool:
    """Whether nbclient's signal handler shut the kernel down (Ctrl-C or SIGTERM while a cell
    ran): the run stopped because the user asked, not because the notebook failed."""
    return getattr(client, "_async_cleanup_kernel_future", None) is not None


def execute(
    path: Path | str,
    *,
    cwd: Path | str | None = None,
    python_path: Sequence[Path | str] = (),
    timeout: int = 600,
    setup: str | None = None,
    kernel_manager: Any = None,
) -> Any:
    """Execute a notebook on a real kernel (errors recorded, not raised); the node.

    The kernel runs in ``cwd`` (default: the notebook's folder) with ``python_path``
    first on ``PYTHONPATH``. ``setup`` is code run first in the same kernel, in a cell
    removed again afterwards; what it writes to stderr (warnings of imports) moves to
    the first code cell. ``kernel_manager``: another kernel than the notebook's.
    """
    import atexit

    import nbformat
    from nbclient import NotebookClient
    from nbclient.exceptions import CellTimeoutError, DeadKernelError

    path = Path(path).absolute()
    node = read(path)
    env = dict(os.environ)
    if python_path:
        paths = [str(Path(p).absolute()) for p in python_path]
        paths += filter(None, [env.get("PYTHONPATH")])
        env["PYTHONPATH"] = os.pathsep.join(paths)
    # Keep the kernel from writing bytecode beside the user's files.
    env["PYTHONDONTWRITEBYTECODE"] = "1"
    if setup:
        node.cells.insert(0, nbformat.v4.new_code_cell(setup))
    handlers = _signal_handlers()
    # The kernel process's own stderr is not the notebook's (what its cells write comes back
    # as outputs): a traceback from the kernel's start-up (its heartbeat losing a port to
    # another process) would otherwise reach the user's terminal. It is kept to explain a
    # kernel that dies.
    with tempfile.TemporaryFile() as kernel_log:
        for attempt in (1, 2):
            client = NotebookClient(
                node,
                km=kernel_manager,
                timeout=timeout,
                kernel_name=_kernel_name(node) if kernel_manager is None else "",
                allow_errors=True,
                # Its outputs are in; the kernel (with its process group) is killed at once
                # rather than asked to exit. Asked, a kernel still inside a cell when the user
                # stops us (nbclient shuts it down on Ctrl-C and SIGTERM) prints a traceback.
                shutdown_kernel="immediate",
                resources={
                    "metadata": {"path": str(Path(cwd or path.parent).absolute())}
                },
                config=_kernel_config(),
            )
            try:
                client.execute(env=env, stderr=kernel_log)
            except (CellTimeoutError, DeadKernelError) as exc:
                if _stopped_by_signal(client):
                    raise KeyboardInterrupt() from None
                raise ExecutionStopped(
                    f"execution stopped: {str(exc).splitlines()[0]}{_last_words(kernel_log)}",
                    path=path,
                    hint="raise the timeout, or check the notebook runs on its own",
                ) from None
            except BaseException as exc:
                if _stopped_by_signal(client):
                    raise KeyboardInterrupt() from None
                if _never_started(exc, node):
                    # nbclient leaves its exit-time cleanup of a kernel that never started
                    # registered, which then fails noisily when the process ends.
                    atexit.unregister(client._cleanup_kernel)
                    if attempt == 1 and kernel_manager is None:
                        continue
                    name = client.kernel_name or kernel_manager.kernel_name
                    raise KernelNeverStarted(
                        f"kernel {name!r} died before it started{_last_words(kernel_log)}",
                        path=path,
                        hint="check that it starts outside nb2pkg; "
                        "jupyter kernelspec list shows where it is installed",
                    ) from None
                raise
            finally:
                # nbclient stops only the kernels it started itself.
                if kernel_manager is not None and kernel_manager.has_kernel:
                    kernel_manager.shutdown_kernel(now=True)
                _restore(handlers)
            break
    if setup:
        errors = [o for o in node.cells[0].outputs if o.get("output_type") == "error"]
        if errors:
            raise SetupFailed(
                f"the setup code failed: {errors[0].get('ename')}: "
                f"{errors[0].get('evalue')}",
                path=path,
            )
        # Setup may import the package: warnings its imports raise belong to the
        # notebook's output (the original shows them where it imports), so they move to
        # the first cell.
        stderr = [
            o
            for o in node.cells[0].outputs
            if o.get("output_type") == "stream" and o.get("name") == "stderr"
        ]
        del node.cells[0]
        first = next((c for c in node.cells if c.cell_type == "code"), None)
        if stderr and first is not None:
            first.outputs[:0] = stderr
    return node


def _last_words(log: Any) -> str:
    """The last line the kernel process wrote to its stderr, as the end of a message."""
    log.seek(0)
    lines = log.read().decode("utf-8", "replace").split("\n")
    last = next((line.strip() for line in reversed(lines) if line.strip()), "")
    last = last if len(last) <= 200 else last[:199] + "…"
    return f" (the kernel said: {last})" if last else ""


def _never_started(error: BaseException, node: Any) -> bool:
    """Whether the kernel died before running anything: jupyter_client chooses its ports
    before the kernel binds them, and another process can take one in between ("Address
    already in use"). Starting again is then safe: no cell ran."""
    seen: BaseException | None = error
    while seen is not None:
        if "Kernel died before replying to kernel_info" in str(seen):
            return not any(
                cell.get("outputs") or cell.get("execution_count")
                for cell in node.cells
                if cell.get("cell_type") == "code"
            )
        seen = seen.__cause__ or seen.__context__
    return False


def what_to_do(error: Output, cwd: Path | str) -> str:
    """The fix for an error the original raises here but does not show itself."""
    name = error_name(error)
    # "cannot import name 'X' from 'pkg.sub' (...)": the package is there, in another
    # version than the one the notebook was written for (an API that moved or went).
    moved = re.match(
        r"ImportError: cannot import name '([^']+)' from '([^']+)'", error.text
    )
    if moved:
        return (
            f"the installed {moved.group(2).split('.')[0]} has no {moved.group(1)} in "
            f"{moved.group(2)}: install the version the notebook was written for where "
            "its kernel runs, then run again"
        )
    # "No module named 'epstein_civil_violence'" from a notebook in a folder of that name:
    # it imports its own folder as a package, which Python finds only from the folder above.
    own = re.search(r"No module named '([^'.]+)", error.text)
    if own and own.group(1) == Path(cwd).name:
        return (
            f"the notebook imports its own folder {own.group(1)} as a package, which "
            f"Python finds only from the folder above: set PYTHONPATH={Path(cwd).parent}, "
            "then run again"
        )
    if name in ("ModuleNotFoundError", "ImportError"):
        return (
            "install the missing package where the notebook's kernel runs, "
            "then run again"
        )
    if name in ("FileNotFoundError", "IsADirectoryError", "NotADirectoryError"):
        return (
            f"a file the notebook reads is missing; the notebook runs from {cwd}: "
            "put the file there, then run again"
        )
    return "make the original notebook run top to bottom here first, then run again"


def check_original_runs(
    path: Path | str, saved: Any, run: Sequence[Output], cwd: Path | str
) -> None:
    """Raise ``OriginalFails`` if the original raised an error it does not show."""
    error = first_unexpected_error(run, outputs_of(saved), raising_cells(saved))
    if error is not None:
        raise OriginalFails(error, path=path, hint=what_to_do(error, cwd))


def package_warnings_setup(python_path: Sequence[Path | str]) -> str | None:
    """Setup code showing DeprecationWarnings of the packages on ``python_path``.

    Python shows them only for code in ``__main__``: code moved out of the notebook into
    a package would otherwise lose its DeprecationWarnings, which says nothing about
    what the code does.
    """
    names = sorted(
        p.name
        for folder in python_path
        if Path(folder).is_dir()
        for p in Path(folder).iterdir()
        if (p / "__init__.py").is_file()
    )
    if not names:
        return None
    pattern = "(" + "|".join(re.escape(n) for n in names) + r")(\.|$)"
    return (
        "__import__('warnings').filterwarnings('default', category=DeprecationWarning, "
        f"module={pattern!r})\n"
    )


@dataclass(frozen=True)
class NotebookComparison:
    """What two notebooks printed, and the verdict."""

    original: str  # as shown in messages
    refactored: str
    expected: tuple[Output, ...] = field(repr=False)  # the original's (first run)
    actual: tuple[Output, ...] = field(repr=False)  # the refactored notebook's outputs
    comparison: Comparison = field(repr=False)
    executed: Any = field(default=None, repr=False)  # the executed refactored notebook

    @property
    def equivalent(self) -> bool:
        return self.comparison.equivalent

    def describe(self, likely_causes: Sequence[str] = (), limit: int = 40) -> str:
        return describe(
            self.comparison,
            self.expected,
            self.actual,
            original=self.original,
            refactored=self.refactored,
            likely_causes=likely_causes,
            limit=limit,
        )


# Run first, in both notebooks alike, when their outputs are compared seeded. Besides the
# global generators, numpy's `default_rng()` asked for without a seed (hyperopt's `fmin`
# does, on every call) gets one: the n-th such generator is seeded n, in both runs alike.
SEEDED = (
    "import random as __nb2pkg_random\n"
    "__nb2pkg_random.seed(0)\n"
    "del __nb2pkg_random\n"
    "try:\n"
    "    import numpy as __nb2pkg_numpy\n"
    "except ImportError:\n"
    "    pass\n"
    "else:\n"
    "    __nb2pkg_numpy.random.seed(0)\n"
    "    def __nb2pkg_default_rng(seed=None, *, _make=__nb2pkg_numpy.random.default_rng,\n"
    "                             _unseeded=iter(range(2**31))):\n"
    "        return _make(next(_unseeded) if seed is None else seed)\n"
    "    __nb2pkg_numpy.random.default_rng = __nb2pkg_default_rng\n"
    "    del __nb2pkg_numpy, __nb2pkg_default_rng\n"
)


def compare_notebooks(
    original: Path | str,
    refactored: Path | str,
    *,
    cwd: Path | str | None = None,
    python_path: Sequence[Path | str] = (),
    timeout: int = 600,
    setup: str | None = None,
    progress: Callable[[str], None] | None = None,
    original_label: str | None = None,
    refactored_label: str | None = None,
    varying: Collection[int] = (),
) -> NotebookComparison:
    """Run both notebooks from ``cwd`` (default: the original's folder); compare.

    The refactored notebook runs with ``python_path`` first on ``PYTHONPATH``, the
    DeprecationWarnings of those packages shown, and ``setup`` run before it. Raises
    ``OriginalFails`` when the original raises an error here that it does not show.
    ``varying``: cells known to vary between runs of the original (see ``compare``).
    """
    say = progress or (lambda message: None)
    shown_original = original_label or str(original)
    shown_refactored = refactored_label or str(refactored)
    original, refactored = Path(original).absolute(), Path(refactored).absolute()
    cwd = Path(cwd).absolute() if cwd is not None else original.parent
    for path in (original, refactored):
        if not path.exists():
            raise NotebookRunError("no such notebook", path=path)
    say(f"executing {shown_original}")
    expected = outputs_of(execute(original, cwd=cwd, timeout=timeout))
    check_original_runs(shown_original, read(original), expected, cwd)

    say(f"executing {shown_refactored}")
    setup = "".join(filter(None, [package_warnings_setup(python_path), setup])) or None
    executed = execute(
        refactored, cwd=cwd, python_path=python_path, timeout=timeout, setup=setup
    )
    actual = outputs_of(executed)
    comparison = compare(expected, actual, known_varying=varying)
    if not comparison.equivalent:
        # Before blaming the refactoring, see whether the original even agrees with
        # itself (unseeded randomness, clocks, warnings of one run only).
        say(f"outputs differ; executing {shown_original} again to see what varies")
        again = outputs_of(execute(original, cwd=cwd, timeout=timeout))
        comparison = compare(expected, actual, again, varying)
        if not comparison.equivalent and comparison.varying:
            # The original varies (unseeded randomness): its two runs may agree by chance
            # where the refactored run, a third draw, does not. A third run of the original
            # shows more of what varies: what it prints otherwise is no longer required, and
            # cells it alone varies in then need the same kinds of output.
            say(f"outputs still differ; executing {shown_original} a third time")
            third = outputs_of(execute(original, cwd=cwd, timeout=timeout))
            drawn = compare(expected, third).differing
            comparison = compare(
                expected, actual, again, {*varying, *drawn}, third=third
            )
        if not comparison.equivalent and comparison.varying:
            # The original varies by itself: it draws unseeded random numbers. Runs of a
            # few outcomes (a test drawing one of two pictures, a graph laid out at random)
            # can agree by chance however often it runs, in the cells seen varying and in
            # others; with the random generators seeded alike, an unseeded notebook draws
            # the same numbers in both, and a faithful refactoring prints exactly the same.
            say(
                f"executing {shown_original} and {shown_refactored} with seeded random generators"
            )
            warnings_setup = package_warnings_setup(python_path) or ""
            seeded_expected = outputs_of(
                execute(original, cwd=cwd, timeout=timeout, setup=SEEDED)
            )
            seeded_actual = outputs_of(
                execute(
                    refactored,
                    cwd=cwd,
                    python_path=python_path,
                    timeout=timeout,
                    setup=warnings_setup + SEEDED,
                )
            )
            if compare(seeded_expected, seeded_actual).equivalent:
                comparison = replace(
                    comparison,
                    differing=(),
                    missing_warnings=(),
                    added_warnings=(),
                    first_difference_cell=None,
                    seeded=True,
                )
    return NotebookComparison(
        shown_original, shown_refactored, expected, actual, comparison, executed
    )
