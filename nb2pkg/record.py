"""Recorded package calls, converter side: set up recording, read it back, write test data.

While verifying, the refactored notebook's kernel first runs ``setup_code``, which installs
``nb2pkg.runtime.recording`` (the wrappers that log each call into a scratch folder). ``load``
reads that folder back and ties each call to the notebook cell it came from; ``test_data``
turns the calls into the files of ``tests/data/recorded/`` in the generated project, in the
format of ``nb2pkg.runtime.recorded`` (which the project carries as ``tests/_recorded.py``).

Before they are written, ``nb2pkg.verify`` replays the stored calls once in a fresh process
(``replay_code``, ``nb2pkg.runtime.recording.replay``) and marks with ``irreproducible`` those
that do not give what was recorded: they get no test, and REPORT.md says why per function.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Mapping, Sequence

from .runtime.recorded import DEFAULT_LIMIT, TAG, files_of, renamed
from .runtime.recording import CALLS_FILE, INTERPRETER_FILE

RECORDED_DIR = "tests/data/recorded"


@dataclass(frozen=True)
class RecordedCall:
    function: str  # dotted path, e.g. "pkg.module.func"
    cell: int | None  # source cell index in the original notebook
    notebook: str  # refactored notebook file name
    args: Any = field(repr=False)  # encoded positional arguments (None when unrecordable)
    kwargs: Any = field(repr=False)
    result: Any = field(repr=False)  # encoded result, or None when ``result_type`` is set
    result_type: dict | None = None  # type/shape of an unrecordable result
    printed: str = ""
    args_after: Any = field(default=None, repr=False)  # arguments after the call, when changed
    unrecordable: str | None = None  # why the inputs could not be recorded
    files: Mapping[str, bytes] = field(default_factory=dict, repr=False)  # arrays, frames
    irreproducible: str | None = None  # why a replay from the arguments alone disagreed

    @property
    def tested(self) -> bool:
        """Whether the call becomes a test: recordable, and it reproduced when replayed."""
        return self.unrecordable is None and self.irreproducible is None


def setup_code(functions: Sequence[str], folder: Path, limit: int = DEFAULT_LIMIT) -> str:
    """Python source the kernel runs first to wrap ``functions``, recording into ``folder``.

    The kernel finds nb2pkg where this process found it, for the import only: a source
    checkout is not on its path, and the folder of an installed nb2pkg (site-packages) must
    not go before the kernel's own packages.
    """
    return runtime_call("recording", f"install({list(functions)!r}, {str(folder)!r}, {limit!r})")


def runtime_call(module: str, call: str) -> str:
    """Python source the kernel runs to call ``nb2pkg.runtime.<module>.<call>``, importing
    nb2pkg from where this process found it (see ``setup_code``)."""
    root = _nb2pkg_parent()
    return (f"import sys as __nb2pkg_sys\n"
            f"__nb2pkg_sys.path.insert(0, {root!r})\n"
            f"try:\n"
            f"    import nb2pkg.runtime.{module} as __nb2pkg_{module}\n"
            f"finally:\n"
            f"    __nb2pkg_sys.path.remove({root!r})\n"
            f"__nb2pkg_{module}.{call}\n"
            f"del __nb2pkg_sys, __nb2pkg_{module}\n")


def _nb2pkg_parent() -> str:
    """The folder holding the nb2pkg package this process imported (put first on the path of
    the kernel or replay process for the import of nb2pkg only)."""
    return str(Path(__file__).resolve().parent.parent)


def replay_code(paths_file: Path, output: Path) -> str:
    """Python source (``python -c``) replaying the stored calls listed in ``paths_file`` (a
    JSON list of their JSON files) and writing ``{path: why}`` of those that do not
    reproduce to ``output``. nb2pkg is imported from where this process found it, as in
    ``setup_code``; the package under test must be on the path (``PYTHONPATH``)."""
    root = _nb2pkg_parent()
    return (f"import json, sys\n"
            f"sys.path.insert(0, {root!r})\n"
            f"from nb2pkg.runtime.notebook_outputs import normalize_text\n"
            f"from nb2pkg.runtime.recording import replay\n"
            f"sys.path.remove({root!r})\n"
            f"with open({str(paths_file)!r}, encoding='utf-8') as handle:\n"
            f"    paths = json.load(handle)\n"
            f"replay(paths, normalize_text, {str(output)!r})\n")


def interpreter(folder: Path) -> str | None:
    """The Python the recording kernel ran (written by ``recording.install``)."""
    path = Path(folder) / INTERPRETER_FILE
    return path.read_text(encoding="utf-8").strip() if path.exists() else None


def load(folder: Path, executed: Any, notebook: str) -> list[RecordedCall]:
    """The calls recorded in ``folder``; ``executed`` is the executed node (to map cells)."""
    path = Path(folder) / CALLS_FILE
    if not path.exists():
        return []
    # The recorder numbers the cells in the order they ran (1: the first code cell run).
    run = sorted((cell.execution_count, cell.get("metadata", {}).get("nb2pkg", {}).get(
        "source_cell", index)) for index, cell in enumerate(executed.cells)
        if cell.cell_type == "code" and cell.get("execution_count") is not None)
    cells = {order: source for order, (_, source) in enumerate(run, start=1)}
    calls = []
    for line in path.read_text(encoding="utf-8").splitlines():
        data = json.loads(line)
        if data.get("result", 0) is None and not data.get("printed") and "args_after" not in data:
            # Returned None, printed nothing, changed no argument: its effect (a plot, a file)
            # is not in the record, so its test can only check that it runs and returns None.
            data["result_type"] = {"type": "builtins.NoneType"}
            del data["result"]
        names = files_of([data.get(k) for k in ("args", "kwargs", "result", "args_after")])
        calls.append(RecordedCall(
            function=data["function"], cell=cells.get(data.get("cell_run")), notebook=notebook,
            args=data.get("args"), kwargs=data.get("kwargs"), result=data.get("result"),
            result_type=data.get("result_type"), printed=data.get("printed", ""),
            args_after=data.get("args_after"), unrecordable=data.get("unrecordable"),
            files={name: (Path(folder) / name).read_bytes() for name in dict.fromkeys(names)}))
    return calls


@dataclass(frozen=True)
class Coverage:
    function: str
    value_tests: int  # calls whose result (and printing, and argument changes) are asserted
    type_tests: int  # calls whose result could only be checked for type and shape
    reason: str | None = None  # why a function has no test
    dropped: int = 0  # calls left out because they did not reproduce from their arguments
    dropped_reason: str | None = None  # why (the first of them)


def coverage(functions: Sequence[str], calls: Sequence[RecordedCall]) -> list[Coverage]:
    """How each package function is covered by the recorded calls."""
    result = []
    for function in functions:
        mine = [c for c in calls if c.function == function]
        recordable = [c for c in mine if c.unrecordable is None]
        tested = [c for c in recordable if c.tested]
        dropped = [c.irreproducible for c in recordable if c.irreproducible is not None]
        values = sum(1 for c in tested if c.result_type is None)
        reason = None
        if not mine:
            reason = "never called while the notebooks ran"
        elif not recordable:
            reason = f"arguments could not be recorded ({mine[0].unrecordable})"
        elif not tested:
            reason = f"not reproducible from its arguments: {dropped[0]}"
        result.append(Coverage(function, values, len(tested) - values, reason, len(dropped),
                               dropped[0] if dropped else None))
    return result


def test_data(calls: Sequence[RecordedCall]) -> dict[str, str | bytes]:
    """The files of ``tests/data/recorded/``: for each tested call (``RecordedCall.tested``),
    in a folder named after its function (``core.clean_sales/``), ``<notebook>-cell<N>-<k>.json``
    and the files its values refer to, renamed after where they appear (``...-1.args-0.npy``,
    ``...-1.result.pkl``)."""
    return {name: content for _, _, files in stored_calls(calls) for name, content in files.items()}


def stored_calls(calls: Sequence[RecordedCall]
                 ) -> list[tuple[RecordedCall, str, dict[str, str | bytes]]]:
    """Each tested call, the path of its JSON file and its files (the JSON one included)."""
    stored = []
    counts: dict[str, int] = {}
    for call in calls:
        if not call.tested:
            continue
        files: dict[str, str | bytes] = {}
        folder = call.function.partition(".")[2]  # the package name is the same for all
        counts[folder] = counts.get(folder, 0) + 1
        stem = f"{Path(call.notebook).stem}-cell{call.cell}-{counts[folder]}"
        entry: dict[str, Any] = {"function": call.function, "notebook": call.notebook,
                                 "cell": call.cell, "args": call.args, "kwargs": call.kwargs}
        if call.result_type is None:
            entry["result"] = call.result
        else:
            entry["result_type"] = call.result_type
        entry["printed"] = call.printed
        if call.args_after is not None:
            entry["args_after"] = call.args_after
        names: dict[str, str] = {}
        for role in ("args", "kwargs", "result", "args_after"):
            for position, name in _files_by_place(entry.get(role), role):
                if name not in names:
                    names[name] = f"{stem}.{position}{Path(name).suffix}"
                    files[f"{RECORDED_DIR}/{folder}/{names[name]}"] = call.files[name]
        entry = {key: renamed(value, names) if key in ("args", "kwargs", "result", "args_after")
                 else value for key, value in entry.items()}
        path = f"{RECORDED_DIR}/{folder}/{stem}.json"
        files[path] = json.dumps(entry, indent=1) + "\n"
        stored.append((call, path, files))
    return stored


def _files_by_place(data: Any, place: str) -> list[tuple[str, str]]:
    """(where in the call, file name) for each file an encoded value refers to:
    ``args-0``, ``kwargs-frame``, ``result``, ``result-1`` (an item of a returned tuple)."""
    if isinstance(data, list):
        return [found for i, item in enumerate(data)
                for found in _files_by_place(item, f"{place}-{i}")]
    if not isinstance(data, dict):
        return []
    if "file" in data and TAG in data:
        return [(place, data["file"])]
    if TAG not in data:
        return [found for key, value in data.items()
                for found in _files_by_place(value, f"{place}-{_word(key)}")]
    inner = data.get("items", data.get("pairs", data.get("state")))
    return _files_by_place(inner, place) if inner is not None else []


def _word(key: str) -> str:
    return re.sub(r"[^A-Za-z0-9_]+", "_", key)[:40] or "_"


def test_requirements(calls: Sequence[RecordedCall]) -> list[str]:
    """Distributions the generated tests need to read the recorded files."""
    suffixes = {Path(name).suffix for call in calls if call.tested for name in call.files}
    needed = []
    if ".npy" in suffixes:
        needed.append("numpy")
    if ".parquet" in suffixes or ".pkl" in suffixes:
        needed.append("pandas")
    if ".parquet" in suffixes:
        needed.append("pyarrow")
    return needed
