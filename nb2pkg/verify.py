"""Prove that refactored notebooks print what the originals print, on a real Jupyter kernel.

The module has three layers, kept apart so the first two can be copied into generated projects:

1. Normalization (pure): an executed notebook node → its ordered ``Output`` stream, with what
   legitimately varies between runs normalized (execution counts, memory addresses, timings, the
   module path in reprs of moved classes). Consecutive stream chunks are joined (the kernel splits
   them differently from run to run) and warnings are taken out of stderr.
2. Comparison (pure): output streams → a ``Comparison``. Rules:
   - Outputs are compared per cell (the original notebook's cell index).
   - Warnings are compared as one set of "Category: message" per notebook, not per cell, location
     or count: Python shows a warning once per code location for the whole session, so moving
     code (an extraction merges several cells' copies into one function) changes where and how
     often a warning appears, never whether it does.
   - With a second run of the original, a cell whose outputs differ between the two runs is
     compared loosely: what both runs printed must be there, and the rest must be outputs of the
     kinds (and error names) the original printed in one of its runs, as many as in one of them.
     Warnings shown by one run only are left out. An error is never excused by this unless the
     original itself raised it in that cell.
   - The original must run here: an error it raises that its saved outputs do not show at that
     cell (or that the cell is not tagged ``raises-exception``) is an environment problem
     (``EnvironmentProblem``), never a difference and never "equivalent".
3. Execution (kernel): run both notebooks, the original a second time when they differ.
"""

from __future__ import annotations

import difflib
import hashlib
import os
import re
import shutil
import tempfile
from collections import Counter
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, Callable, Collection, Iterable, Mapping, Sequence

from .errors import VerificationError

Progress = Callable[[str], None]

_ADDRESS = re.compile(r"0x[0-9a-fA-F]{4,}")
_OBJECT = re.compile(r"<([A-Za-z_][\w.]*\.)?([A-Za-z_]\w*) object at 0x…>")
_CLASS = re.compile(r"<class '([A-Za-z_][\w.]*\.)?([A-Za-z_]\w*)'>")
_TIMING = re.compile(r"^(CPU times:.*|Wall time:.*|.*± .* per loop \(mean ± std\. dev\..*)$", re.M)
_CELL_FILE = re.compile(r"(?:[^\s'\"]*[/\\])?ipykernel_\d+[/\\]\d+\.py")
_WARNING_LOCATION = re.compile(r"^\S.*?:\d+: (\w+(?:Warning|Error)\b.*)$")
RAISES_TAG = "raises-exception"  # the nbclient/nbval tag: this cell is meant to raise


class EnvironmentProblem(VerificationError):
    """The original notebook fails here (missing package, data file, ...): nothing to compare."""


# ---------------------------------------------------------------------------------------------
# Records


@dataclass(frozen=True)
class Output:
    cell: int  # the original notebook's cell index this output belongs to
    kind: str  # "stdout", "stderr", "warning", "result", "display", "error"
    text: str  # normalized content ("Name: value" for errors, "Category: message" for warnings)


@dataclass(frozen=True)
class Comparison:
    """The verdict of comparing an original's outputs with a refactored notebook's."""

    differing: tuple[int, ...] = ()  # cells whose outputs differ
    varying: tuple[int, ...] = ()  # cells that differ between two runs of the original itself
    missing_warnings: tuple[str, ...] = ()  # shown by the original, not by the refactored
    added_warnings: tuple[str, ...] = ()  # shown by the refactored only
    varying_warnings: tuple[str, ...] = ()  # shown by one run of the original only
    first_difference_cell: int | None = None
    compared: int = 0  # outputs required to match: all but what varies, warnings counted once

    @property
    def equivalent(self) -> bool:
        return not (self.differing or self.missing_warnings or self.added_warnings)


@dataclass(frozen=True)
class NotebookVerification:
    original: str
    refactored: str
    equivalent: bool
    expected: tuple[Output, ...] = field(repr=False)
    actual: tuple[Output, ...] = field(repr=False)
    first_difference_cell: int | None = None
    suspects: tuple[str, ...] = ()  # extractions or moved definitions that may have caused it
    varying: tuple[int, ...] = ()  # cells whose outputs differ between two runs of the original
    calls: tuple[Any, ...] = field(default=(), repr=False)  # record.RecordedCall, when recording
    comparison: Comparison = field(default=Comparison(), repr=False)

    def describe(self, limit: int = 40) -> str:
        note = _varying_note(self.comparison)
        if self.equivalent:
            return (f"equivalent: {self.refactored} prints what {self.original} prints "
                    f"({self.comparison.compared} outputs compared{note})")
        lines = [f"DIFFERENT: {self.refactored} does not print what {self.original} prints "
                 f"(first difference at cell {self.first_difference_cell}{note})"]
        if self.suspects:
            lines.append("  likely cause: " + "; ".join(self.suspects))
        lines += ["  " + line for line in self.diff()[:limit]]
        return "\n".join(lines)

    def diff(self) -> list[str]:
        return [] if self.equivalent else diff_lines(self.expected, self.actual, self.comparison)

    def to_dict(self) -> dict[str, Any]:
        c = self.comparison
        return {"original": self.original, "refactored": self.refactored,
                "equivalent": self.equivalent,
                "outputs_compared": c.compared,
                "first_difference_cell": self.first_difference_cell,
                "suspects": list(self.suspects), "varying_cells": sorted(set(self.varying)),
                "differing_cells": list(c.differing), "missing_warnings": list(c.missing_warnings),
                "added_warnings": list(c.added_warnings),
                "varying_warnings": list(c.varying_warnings), "diff": self.diff()}


@dataclass(frozen=True)
class Verification:
    notebooks: tuple[NotebookVerification, ...]

    @property
    def equivalent(self) -> bool:
        return all(n.equivalent for n in self.notebooks)

    def describe(self) -> str:
        return "\n".join(n.describe() for n in self.notebooks)

    @property
    def calls(self) -> tuple[Any, ...]:
        return tuple(call for n in self.notebooks for call in n.calls)

    def to_dict(self) -> dict[str, Any]:
        return {"equivalent": self.equivalent, "notebooks": [n.to_dict() for n in self.notebooks],
                "recorded_calls": len(self.calls)}


def _varying_note(c: Comparison) -> str:
    parts = []
    if c.varying:
        parts.append(f"cells {list(c.varying)} print differently in two runs of the original "
                     "itself, so only what both runs printed was required there")
    if c.varying_warnings:
        parts.append(f"{len(c.varying_warnings)} warnings shown by one run of the original only "
                     "were not compared")
    return "; " + "; ".join(parts) if parts else ""


# ---------------------------------------------------------------------------------------------
# Normalization: executed notebook node → output stream (pure)


def normalize_text(text: str) -> str:
    text = _ADDRESS.sub("0x…", text)
    text = _OBJECT.sub(lambda m: f"<{m.group(2)} object at 0x…>", text)
    text = _CLASS.sub(lambda m: f"<class '{m.group(2)}'>", text)
    text = _TIMING.sub("<timing>", text)
    return _CELL_FILE.sub("<cell>", text)


def split_stderr(text: str) -> tuple[list[str], str]:
    """The warnings in stderr text ("Category: message", location dropped) and the other text.

    Python prints a warning as ``file:line: Category: message`` and, when the source is known,
    the source line indented below it; both depend on where the code lives, so both go.
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
        if mime == "application/vnd.jupyter.widget-view+json" and isinstance(value, Mapping):
            value = {k: v for k, v in value.items() if k != "model_id"}  # random per run
        if mime.startswith("image/") or mime == "application/pdf":
            digest = hashlib.sha256(str(value).encode()).hexdigest()[:16]
            parts.append(f"{mime} sha256:{digest}")
        else:
            parts.append(f"{mime}: {normalize_text(str(value))}")
    return "\n".join(parts)


def _streams(cell: int, chunks: list[tuple[str, str]]) -> list[Output]:
    """Stream chunks between two rich outputs → outputs: warnings out, same-stream text joined."""
    pieces: list[tuple[str, str]] = []  # (stream name, text), consecutive names merged
    for name, text in chunks:
        if pieces and pieces[-1][0] == name:
            pieces[-1] = (name, pieces[-1][1] + text)
        else:
            pieces.append((name, text))
    found: list[Output] = []
    merged: list[tuple[str, str]] = []
    for name, text in pieces:
        if name == "stderr":
            warnings, text = split_stderr(text)
            found += [Output(cell, "warning", w) for w in warnings]
        else:
            text = normalize_text(text)
        if not text:
            continue
        if merged and merged[-1][0] == name:  # joined again once a warning between them is gone
            merged[-1] = (name, merged[-1][1] + text)
        else:
            merged.append((name, text))
    return found + [Output(cell, name, text) for name, text in merged]


def source_cells(node: Any) -> list[int]:
    """For each cell of ``node``, the original notebook's cell index it stands for.

    Refactored notebooks carry it in ``metadata.nb2pkg.source_cell``; a cell nb2pkg added (the
    extracted functions) counts as part of the next original cell, where its effect is first seen.
    """
    origins: list[int | None] = []
    for index, cell in enumerate(node.cells):
        meta = cell.get("metadata", {}).get("nb2pkg", {})
        origins.append(meta.get("source_cell", None if meta.get("generated") else index))
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
                chunks.append((output.get("name", "stdout"),
                               "".join(text) if isinstance(text, list) else text))
                continue
            stream += _streams(origin, chunks)
            chunks = []
            if kind in ("execute_result", "display_data"):
                stream.append(Output(origin, "result" if kind == "execute_result" else "display",
                                     _bundle(output.get("data", {}))))
            elif kind == "error":
                stream.append(Output(origin, "error", normalize_text(
                    f"{output.get('ename')}: {output.get('evalue')}")))
        stream += _streams(origin, chunks)
    return tuple(stream)


def raising_cells(node: Any) -> frozenset[int]:
    """Cells tagged ``raises-exception``: an error there is part of the notebook."""
    return frozenset(i for i, cell in enumerate(node.cells)
                     if RAISES_TAG in cell.get("metadata", {}).get("tags", []))


# ---------------------------------------------------------------------------------------------
# Comparison: output streams → verdict (pure)


def error_name(output: Output) -> str:
    return output.text.split(":", 1)[0]


def first_unexpected_error(run: Sequence[Output], saved: Sequence[Output],
                           may_raise: Collection[int] = ()) -> Output | None:
    """The first error of ``run`` that the notebook does not show itself: not in its saved
    outputs at the same cell with the same exception name, in a cell not tagged to raise."""
    shown = {(o.cell, error_name(o)) for o in saved if o.kind == "error"}
    return next((o for o in run if o.kind == "error" and o.cell not in may_raise
                 and (o.cell, error_name(o)) not in shown), None)


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
    return [o for block in matcher.get_matching_blocks() for o in a[block.a:block.a + block.size]]


def _without(outputs: Sequence[Output], subsequence: Sequence[Output]) -> list[Output] | None:
    """``outputs`` minus ``subsequence`` (matched in order), or None if it is not one."""
    rest, wanted = [], list(subsequence)
    for o in outputs:
        if wanted and o == wanted[0]:
            wanted.pop(0)
        else:
            rest.append(o)
    return None if wanted else rest


def _signature(o: Output) -> str:
    return f"error {error_name(o)}" if o.kind == "error" else o.kind


def cell_agrees(expected: Sequence[Output], actual: Sequence[Output],
                again: Sequence[Output] | None = None) -> bool:
    """Whether one cell's refactored outputs match the original's (two runs when given)."""
    if tuple(actual) == tuple(expected) or (again is not None and tuple(actual) == tuple(again)):
        return True
    if again is None or tuple(again) == tuple(expected):
        return False
    # The original varies here: what both its runs print must be there, in order; the rest must
    # be of the kinds (errors: the names) the original printed loosely, as many as in some run.
    stable = _common(expected, again)
    rest = _without(actual, stable)
    if rest is None:
        return False
    loose = [Counter(map(_signature, _without(run, stable) or ())) for run in (expected, again)]
    have = Counter(map(_signature, rest))
    return all(min(c[s] for c in loose) <= have[s] <= max(c[s] for c in loose)
               for s in set(have) | set(loose[0]) | set(loose[1]))


def compare(expected: Sequence[Output], actual: Sequence[Output],
            again: Sequence[Output] | None = None) -> Comparison:
    """Compare a refactored notebook's outputs with the original's (``again``: its second run)."""
    cells_e, cells_a = _by_cell(expected), _by_cell(actual)
    cells_b = _by_cell(again) if again is not None else None
    cells = sorted(set(cells_e) | set(cells_a) | set(cells_b or ()))
    varying = tuple(c for c in cells if cells_b is not None
                    and cells_b.get(c, ()) != cells_e.get(c, ()))
    differing = tuple(c for c in cells if not cell_agrees(
        cells_e.get(c, ()), cells_a.get(c, ()), None if cells_b is None else cells_b.get(c, ())))

    warn_e, warn_a = _warnings(expected), _warnings(actual)
    warn_b = _warnings(again) if again is not None else dict(warn_e)
    always, sometimes = set(warn_e) & set(warn_b), set(warn_e) | set(warn_b)
    missing = sorted(always - set(warn_a), key=lambda w: (warn_e.get(w, warn_b.get(w)), w))
    added = sorted(set(warn_a) - sometimes, key=lambda w: (warn_a[w], w))
    varying_warnings = tuple(sorted(sometimes - always))

    firsts = [*differing, *(warn_e.get(w, warn_b.get(w)) for w in missing),
              *(warn_a[w] for w in added)]
    compared = len(always) + sum(
        len(_common(cells_e.get(c, ()), cells_b.get(c, ())) if cells_b is not None and c in varying
            else cells_e.get(c, ())) for c in cells)
    return Comparison(differing, varying, tuple(missing), tuple(added), varying_warnings,
                      min(firsts) if firsts else None, compared)  # type: ignore[type-var]


def _render(outputs: Iterable[Output]) -> list[str]:
    lines = []
    for output in outputs:
        for i, line in enumerate(output.text.splitlines() or [""]):
            prefix = f"[cell {output.cell} {output.kind}]" if i == 0 else " " * 4
            lines.append(f"{prefix} {line}")
    return lines


def diff_lines(expected: Sequence[Output], actual: Sequence[Output],
               comparison: Comparison) -> list[str]:
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

    return list(difflib.unified_diff(_render(shown(expected)), _render(shown(actual)),
                                     "original", "refactored", lineterm="", n=2))


# ---------------------------------------------------------------------------------------------
# Execution on a real kernel


def _kernel_name(node: Any) -> str:
    from jupyter_client.kernelspec import KernelSpecManager

    wanted = node.get("metadata", {}).get("kernelspec", {}).get("name") or "python3"
    available = KernelSpecManager().find_kernel_specs()
    if wanted in available:
        return wanted
    return "python3" if "python3" in available else next(iter(available), "python3")


def read(path: Path) -> Any:
    """The notebook node as saved (with its saved outputs)."""
    import nbformat

    try:
        return nbformat.read(str(path), as_version=4)
    except Exception as exc:
        raise VerificationError(f"cannot read notebook: {exc}", path=path) from None


def execute(path: Path, *, cwd: Path | None = None, python_path: Sequence[Path] = (),
            timeout: int = 600, setup: str | None = None) -> Any:
    """Execute a notebook on a real kernel (errors recorded, not raised); return the node.

    ``setup`` is code run first in the same kernel, in a cell removed again afterwards.
    """
    import nbformat
    from nbclient import NotebookClient
    from nbclient.exceptions import CellTimeoutError, DeadKernelError

    path = Path(path).absolute()
    node = read(path)
    env = dict(os.environ)
    if python_path:
        env["PYTHONPATH"] = os.pathsep.join([*(str(Path(p).absolute()) for p in python_path),
                                             *filter(None, [env.get("PYTHONPATH")])])
    # Keep the kernel from writing bytecode or history beside the user's files.
    env["PYTHONDONTWRITEBYTECODE"] = "1"
    if setup:
        node.cells.insert(0, nbformat.v4.new_code_cell(setup, metadata={"nb2pkg": {"setup": True}}))
    client = NotebookClient(node, timeout=timeout, kernel_name=_kernel_name(node), allow_errors=True,
                            resources={"metadata": {"path": str(Path(cwd or path.parent).absolute())}})
    try:
        client.execute(env=env)
    except (CellTimeoutError, DeadKernelError) as exc:
        raise VerificationError(f"execution stopped: {str(exc).splitlines()[0]}", path=path,
                                hint="raise --timeout, or check the notebook runs on its own") from None
    if setup:
        errors = [o for o in node.cells[0].outputs if o.get("output_type") == "error"]
        if errors:
            raise VerificationError(f"could not set up recording: {errors[0].get('evalue')}",
                                    path=path, hint="rerun with --no-record")
        # Setup imports the package: warnings its imports raise belong to the notebook's output
        # (the original shows them where it imports), so they move to the first code cell.
        stderr = [o for o in node.cells[0].outputs
                  if o.get("output_type") == "stream" and o.get("name") == "stderr"]
        del node.cells[0]
        first = next((c for c in node.cells if c.cell_type == "code"), None)
        if stderr and first is not None:
            first.outputs[:0] = stderr
    return node


def _what_to_do(error: Output, cwd: Path) -> str:
    name = error_name(error)
    if name in ("ModuleNotFoundError", "ImportError"):
        return "install the missing package where the notebook's kernel runs, then verify again"
    if name in ("FileNotFoundError", "IsADirectoryError", "NotADirectoryError"):
        return f"a file the notebook reads is missing; the notebook runs from {cwd}: " \
               "put the file there, then verify again"
    return "make the original notebook run top to bottom here first, then verify again"


def check_original_runs(path: Path | str, saved: Any, run: Sequence[Output], cwd: Path) -> None:
    """Raise ``EnvironmentProblem`` when the original raised an error it does not show itself."""
    error = first_unexpected_error(run, outputs_of(saved), raising_cells(saved))
    if error is not None:
        text = " ".join(error.text.split())
        text = text if len(text) <= 200 else text[:199] + "…"
        raise EnvironmentProblem(f"the original notebook fails here ({text}), so there is "
                                 "nothing to compare", path=path, cell=error.cell,
                                 hint=_what_to_do(error, cwd))


def _packages(python_path: Sequence[Path]) -> list[str]:
    return sorted(p.name for folder in python_path if Path(folder).is_dir()
                  for p in Path(folder).iterdir() if (p / "__init__.py").is_file())


def _warnings_setup(python_path: Sequence[Path]) -> str | None:
    """Show DeprecationWarnings raised from the package as Python shows those from ``__main__``.

    Code moved out of the notebook would otherwise lose its DeprecationWarnings (Python ignores
    them outside ``__main__``), which says nothing about what the code does.
    """
    names = _packages(python_path)
    if not names:
        return None
    pattern = "(" + "|".join(re.escape(n) for n in names) + r")(\.|$)"
    return (f"__import__('warnings').filterwarnings('default', category=DeprecationWarning, "
            f"module={pattern!r})\n")


def verify_notebook(original: Path, refactored: Path, *, python_path: Sequence[Path] = (),
                    timeout: int = 600, cwd: Path | None = None, progress: Progress | None = None,
                    label: str | None = None, refactored_label: str | None = None,
                    record: Sequence[str] = ()) -> NotebookVerification:
    """Execute both notebooks and compare their normalized outputs.

    Raises ``EnvironmentProblem`` when the original itself fails here (see the module docstring).
    Relative paths are taken from the current working directory.
    """
    say = progress or (lambda message: None)
    shown_original, shown_refactored = label or str(original), str(refactored_label or refactored)
    original, refactored = Path(original).absolute(), Path(refactored).absolute()
    python_path = [Path(p).absolute() for p in python_path]
    cwd = Path(cwd).absolute() if cwd is not None else original.parent
    for path in (original, refactored):
        if not path.exists():
            raise VerificationError("no such notebook", path=path)
    say(f"executing {shown_original}")
    saved = read(original)
    expected = outputs_of(execute(original, cwd=cwd, timeout=timeout))
    check_original_runs(shown_original, saved, expected, cwd)

    say(f"executing {shown_refactored}")
    setup, recording = _warnings_setup(python_path), None
    if record:
        from .record import setup_code

        scratch = Path(tempfile.mkdtemp(prefix="nb2pkg-record-"))
        recording = scratch / "calls.jsonl"
        setup = (setup or "") + setup_code(record, recording)
        python_path = [*python_path, Path(__file__).resolve().parent.parent]  # nb2pkg itself
    executed = execute(refactored, cwd=cwd, python_path=python_path, timeout=timeout, setup=setup)
    actual = outputs_of(executed)
    calls: tuple = ()
    if recording is not None:
        from .record import load

        calls = tuple(load(recording, executed, refactored.name))
        shutil.rmtree(recording.parent, ignore_errors=True)

    comparison = compare(expected, actual)
    if not comparison.equivalent:
        # Before blaming the refactoring, see whether the original even agrees with itself
        # (unseeded randomness, clocks, warnings of one run only).
        say(f"outputs differ; executing {shown_original} again to find outputs that vary by themselves")
        again = outputs_of(execute(original, cwd=cwd, timeout=timeout))
        comparison = compare(expected, actual, again)
    return NotebookVerification(shown_original, shown_refactored, comparison.equivalent,
                                expected, actual, comparison.first_difference_cell,
                                varying=comparison.varying, calls=calls, comparison=comparison)


def package_functions(src: Path) -> list[str]:
    """Dotted names of the public top-level functions of the package under ``src``."""
    import ast

    found = []
    for module in sorted(Path(src).glob("*/*.py")):
        if module.name == "__init__.py":
            continue
        tree = ast.parse(module.read_text(encoding="utf-8"))
        found += [f"{module.parent.name}.{module.stem}.{node.name}" for node in tree.body
                  if isinstance(node, ast.FunctionDef) and not node.name.startswith("_")]
    return found


def verify_paths(originals: Sequence[Path], project: Path, *, timeout: int = 600,
                 progress: Progress | None = None, record: bool = False) -> Verification:
    """``nb2pkg verify``: originals against PROJECT/notebooks/<same file name>."""
    project = Path(project)
    if not (project / "notebooks").is_dir():
        raise VerificationError("not a project generated by nb2pkg (no notebooks/ folder)",
                                path=project, hint="pass the folder given to `nb2pkg convert -o`")
    results = []
    for original in originals:
        refactored = project / "notebooks" / Path(original).name
        if not refactored.exists():
            raise VerificationError(f"no refactored notebook {refactored.name} in {project}/notebooks",
                                    path=original, hint="pass the notebooks given to convert")
        results.append(verify_notebook(
            Path(original), refactored, python_path=[project / "src"], timeout=timeout,
            progress=progress, record=package_functions(project / "src") if record else ()))
    return Verification(tuple(results))


def verify_project(plan: Any, files: Mapping[str, str | bytes], *, timeout: int = 600,
                   progress: Progress | None = None, record: bool = True,
                   cwd: Path | str | None = None) -> Verification:
    """Verify a planned project before it is written: render it to a scratch folder and run.
    Both notebooks run from ``cwd``, by default the original's own folder."""
    scratch = Path(tempfile.mkdtemp(prefix="nb2pkg-verify-"))
    try:
        for relative, content in files.items():
            target = scratch / relative
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_bytes(content if isinstance(content, bytes) else content.encode())
        results = []
        for notebook in plan.notebooks:
            result = verify_notebook(Path(notebook.original), scratch / "notebooks" / notebook.filename,
                                     python_path=[scratch / "src"], timeout=timeout,
                                     cwd=Path(cwd or Path(notebook.original).parent),
                                     progress=progress,
                                     refactored_label=f"notebooks/{notebook.filename}",
                                     record=package_functions(scratch / "src") if record else ())
            if not result.equivalent:
                result = _with_suspects(plan, notebook, result)
            results.append(result)
        return Verification(tuple(results))
    finally:
        shutil.rmtree(scratch, ignore_errors=True)


def _with_suspects(plan: Any, notebook: Any, result: NotebookVerification) -> NotebookVerification:
    position = next(i for i, n in enumerate(plan.notebooks) if n is notebook)
    cell = result.first_difference_cell if result.first_difference_cell is not None else 10**9
    suspects = []
    for e in plan.extractions:
        cells = [c.occurrence.cell for c in e.calls if c.occurrence.notebook == position]
        if any(c <= cell for c in cells):
            suspects.append((max(c for c in cells if c <= cell),
                             f"extraction {e.group} → {e.function}() (called in cells {cells})"))
    for h in plan.hoisted:
        if h.notebook == position and h.cell <= cell:
            suspects.append((h.cell, f"{h.kind} `{h.name}` moved to {plan.name}.{h.module}"))
    suspects.sort(key=lambda s: -s[0])
    return replace(result, suspects=tuple(text for _, text in suspects[:3]))
