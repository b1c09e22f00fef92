"""Prove that refactored notebooks print what the originals print, on a real Jupyter kernel.

Both notebooks run top to bottom (errors allowed, so every cell is compared). Their outputs are
compared as one ordered stream per notebook after normalizing what legitimately varies between
runs: execution counts, memory addresses, timings, the module path in reprs of moved classes, and
the file:line prefix of warnings. Consecutive stream chunks are joined, since the kernel may split
them differently from run to run.
"""

from __future__ import annotations

import difflib
import hashlib
import os
import re
import shutil
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Iterable, Mapping, Sequence

from .errors import VerificationError

Progress = Callable[[str], None]

_ADDRESS = re.compile(r"0x[0-9a-fA-F]{4,}")
_OBJECT = re.compile(r"<([A-Za-z_][\w.]*\.)?([A-Za-z_]\w*) object at 0x…>")
_CLASS = re.compile(r"<class '([A-Za-z_][\w.]*\.)?([A-Za-z_]\w*)'>")
_TIMING = re.compile(r"^(CPU times:.*|Wall time:.*|.*± .* per loop \(mean ± std\. dev\..*)$", re.M)
_WARNING_LOCATION = re.compile(r"^\S.*?:\d+: (\w+(?:Warning|Error)\b.*)$")


@dataclass(frozen=True)
class Output:
    cell: int  # the original notebook's cell index this output belongs to
    kind: str  # "stdout", "stderr", "result", "display", "error"
    text: str  # normalized content


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

    def describe(self, limit: int = 40) -> str:
        note = ""
        if self.varying:
            note = (f"; {len(self.varying)} outputs of cells {sorted(set(self.varying))} vary "
                    "between runs of the original itself and were not compared")
        if self.equivalent:
            return f"equivalent: {self.refactored} prints what {self.original} prints " \
                   f"({len(self.expected) - len(self.varying)} outputs compared{note})"
        lines = [f"DIFFERENT: {self.refactored} does not print what {self.original} prints "
                 f"(first difference at cell {self.first_difference_cell})"]
        if self.suspects:
            lines.append("  likely cause: " + "; ".join(self.suspects))
        diff = difflib.unified_diff(_render(self.expected), _render(self.actual), "original",
                                    "refactored", lineterm="", n=2)
        lines += ["  " + line for line in list(diff)[:limit]]
        return "\n".join(lines)

    def to_dict(self) -> dict[str, Any]:
        return {"original": self.original, "refactored": self.refactored,
                "equivalent": self.equivalent, "outputs_compared": len(self.expected),
                "first_difference_cell": self.first_difference_cell,
                "suspects": list(self.suspects), "varying_cells": sorted(set(self.varying)),
                "diff": [] if self.equivalent else list(difflib.unified_diff(
                    _render(self.expected), _render(self.actual), "original", "refactored",
                    lineterm="", n=2))}


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


def _render(outputs: Iterable[Output]) -> list[str]:
    lines = []
    for output in outputs:
        for i, line in enumerate(output.text.splitlines() or [""]):
            prefix = f"[cell {output.cell} {output.kind}]" if i == 0 else " " * 4
            lines.append(f"{prefix} {line}")
    return lines


def normalize_text(text: str) -> str:
    text = _ADDRESS.sub("0x…", text)
    text = _OBJECT.sub(lambda m: f"<{m.group(2)} object at 0x…>", text)
    text = _CLASS.sub(lambda m: f"<class '{m.group(2)}'>", text)
    text = _TIMING.sub("<timing>", text)
    return text


def _normalize_stderr(text: str) -> str:
    lines, skip_source = [], False
    for line in text.splitlines():
        match = _WARNING_LOCATION.match(line)
        if match:
            lines.append(match.group(1))
            skip_source = True  # the next indented line echoes source, which moved
            continue
        if skip_source and line.startswith("  "):
            skip_source = False
            continue
        skip_source = False
        lines.append(line)
    return normalize_text("\n".join(lines))


def _bundle(data: Mapping[str, Any]) -> str:
    parts = []
    for mime in sorted(data):
        value = data[mime]
        if isinstance(value, list):
            value = "".join(value)
        if mime.startswith("image/") or mime == "application/pdf":
            digest = hashlib.sha256(str(value).encode()).hexdigest()[:16]
            parts.append(f"{mime} sha256:{digest}")
        elif mime in {"text/plain", "text/html", "text/markdown", "text/latex"}:
            parts.append(f"{mime}: {normalize_text(str(value))}")
        else:
            parts.append(f"{mime}: {normalize_text(str(value))}")
    return "\n".join(parts)


def outputs_of(node: Any) -> tuple[Output, ...]:
    """The normalized output stream of an executed notebook node."""
    stream: list[Output] = []
    for index, cell in enumerate(node.cells):
        if cell.cell_type != "code":
            continue
        origin = cell.get("metadata", {}).get("nb2pkg", {}).get("source_cell", index)
        pending: dict[str, list[str]] = {}

        def flush() -> None:
            for name, chunks in pending.items():
                text = "".join(chunks)
                text = _normalize_stderr(text) if name == "stderr" else normalize_text(text)
                if text:
                    stream.append(Output(origin, name, text))
            pending.clear()

        for output in cell.get("outputs", []):
            kind = output.get("output_type")
            if kind == "stream":
                name = output.get("name", "stdout")
                if pending and name not in pending:
                    flush()
                text = output.get("text", "")
                pending.setdefault(name, []).append("".join(text) if isinstance(text, list) else text)
                continue
            flush()
            if kind in ("execute_result", "display_data"):
                stream.append(Output(origin, "result" if kind == "execute_result" else "display",
                                     _bundle(output.get("data", {}))))
            elif kind == "error":
                stream.append(Output(origin, "error", normalize_text(
                    f"{output.get('ename')}: {output.get('evalue')}")))
        flush()
    return tuple(stream)


def _kernel_name(node: Any) -> str:
    from jupyter_client.kernelspec import KernelSpecManager

    wanted = node.get("metadata", {}).get("kernelspec", {}).get("name") or "python3"
    available = KernelSpecManager().find_kernel_specs()
    if wanted in available:
        return wanted
    return "python3" if "python3" in available else next(iter(available), "python3")


def execute(path: Path, *, cwd: Path | None = None, python_path: Sequence[Path] = (),
            timeout: int = 600, setup: str | None = None) -> Any:
    """Execute a notebook on a real kernel (errors recorded, not raised); return the node.

    ``setup`` is code run first in the same kernel, in a cell removed again afterwards.
    """
    import nbformat
    from nbclient import NotebookClient
    from nbclient.exceptions import CellTimeoutError, DeadKernelError

    try:
        node = nbformat.read(str(path), as_version=4)
    except Exception as exc:
        raise VerificationError(f"cannot read notebook: {exc}", path=path) from None
    env = dict(os.environ)
    if python_path:
        env["PYTHONPATH"] = os.pathsep.join([*(str(p) for p in python_path),
                                             *filter(None, [env.get("PYTHONPATH")])])
    # Keep the kernel from writing bytecode or history beside the user's files.
    env["PYTHONDONTWRITEBYTECODE"] = "1"
    if setup:
        node.cells.insert(0, nbformat.v4.new_code_cell(setup, metadata={"nb2pkg": {"setup": True}}))
    client = NotebookClient(node, timeout=timeout, kernel_name=_kernel_name(node),
                            allow_errors=True, resources={"metadata": {"path": str(cwd or path.parent)}})
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
        del node.cells[0]
    return node


def verify_notebook(original: Path, refactored: Path, *, python_path: Sequence[Path] = (),
                    timeout: int = 600, cwd: Path | None = None, progress: Progress | None = None,
                    label: str | None = None, refactored_label: str | None = None,
                    record: Sequence[str] = ()) -> NotebookVerification:
    """Execute both notebooks and compare their normalized output streams."""
    say = progress or (lambda message: None)
    original, refactored = Path(original), Path(refactored)
    for path in (original, refactored):
        if not path.exists():
            raise VerificationError("no such notebook", path=path)
    say(f"executing {original}")
    expected = outputs_of(execute(original, cwd=cwd or original.parent, timeout=timeout))
    say(f"executing {refactored}")
    setup, recording = None, None
    if record:
        from .record import setup_code

        scratch = Path(tempfile.mkdtemp(prefix="nb2pkg-record-"))
        recording = scratch / "calls.jsonl"
        setup = setup_code(record, recording)
        python_path = [*python_path, Path(__file__).resolve().parent.parent]  # nb2pkg itself
    executed = execute(refactored, cwd=cwd or original.parent, python_path=python_path,
                       timeout=timeout, setup=setup)
    actual = outputs_of(executed)
    calls: tuple = ()
    if recording is not None:
        from .record import load

        calls = tuple(load(recording, executed, refactored.name))
        shutil.rmtree(recording.parent, ignore_errors=True)
    varying: tuple[int, ...] = ()
    if expected != actual and len(expected) == len(actual):
        # Before blaming the refactoring, see whether the original even agrees with itself
        # (unseeded randomness, clocks): outputs that differ between two runs of the original
        # are reported as varying and left out of the comparison.
        say(f"outputs differ; executing {original} again to find outputs that vary by themselves")
        again = outputs_of(execute(original, cwd=cwd or original.parent, timeout=timeout))
        if len(again) == len(expected):
            varying = tuple(i for i, (a, b) in enumerate(zip(expected, again)) if a != b)
    compared = [(a, b) for i, (a, b) in enumerate(zip(expected, actual)) if i not in varying]
    first = next((a.cell for a, b in compared if a != b), None)
    if first is None and len(expected) != len(actual):
        longer = expected if len(expected) > len(actual) else actual
        first = longer[min(len(expected), len(actual))].cell
    return NotebookVerification(label or str(original), str(refactored_label or refactored),
                                first is None, expected, actual, first,
                                varying=tuple(expected[i].cell for i in varying), calls=calls)


def package_functions(src: Path) -> list[str]:
    """Dotted names of the public top-level functions of the package under ``src``."""
    import ast

    found = []
    for module in sorted(src.glob("*/*.py")):
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
                   progress: Progress | None = None, record: bool = True) -> Verification:
    """Verify a planned project before it is written: render it to a scratch folder and run."""
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
                                     cwd=Path(notebook.original).parent, progress=progress,
                                     refactored_label=f"notebooks/{notebook.filename}",
                                     record=package_functions(scratch / "src") if record else ())
            if not result.equivalent:
                result = _with_suspects(plan, notebook, result)
            results.append(result)
        return Verification(tuple(results))
    finally:
        shutil.rmtree(scratch, ignore_errors=True)


def _with_suspects(plan: Any, notebook: Any, result: NotebookVerification) -> NotebookVerification:
    from dataclasses import replace

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
