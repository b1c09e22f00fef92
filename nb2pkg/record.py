"""Record the calls a notebook makes to its package's functions, for regression tests.

``setup_code`` is run in the kernel before the refactored notebook: it wraps each package
function so that every call appends its arguments (as they were before the call), its result,
what it printed and how it changed its arguments to a JSON-lines file. The notebook then imports
the wrapped functions; its own output is unchanged (printing is teed, not captured).
``load`` reads the file back and ties each call to the notebook cell it came from.
"""

from __future__ import annotations

import contextlib
import functools
import importlib
import io
import json
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Sequence

DEFAULT_LIMIT = 100_000  # bytes of JSON per recorded value
MAX_CALLS = 3  # distinct calls kept per function


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


def setup_code(functions: Sequence[str], output: Path, limit: int = DEFAULT_LIMIT) -> str:
    """Python source the kernel runs first to wrap ``functions``."""
    return (f"import nb2pkg.record as __nb2pkg_record\n"
            f"__nb2pkg_record.install({list(functions)!r}, {str(output)!r}, {limit!r})\n"
            f"del __nb2pkg_record\n")


def install(functions: Sequence[str], output: str, limit: int = DEFAULT_LIMIT) -> None:
    """Wrap each ``module.function`` in place (runs inside the kernel)."""
    seen: dict[str, set[str]] = {}
    for dotted in functions:
        module_name, _, name = dotted.rpartition(".")
        module = importlib.import_module(module_name)
        original = getattr(module, name)
        setattr(module, name, _recorder(original, dotted, output, limit, seen.setdefault(dotted, set())))


class _Tee(io.TextIOBase):
    def __init__(self, target: Any) -> None:
        self.target = target
        self.buffer_text = io.StringIO()

    def write(self, text: str) -> int:
        self.buffer_text.write(text)
        return self.target.write(text)

    def flush(self) -> None:
        self.target.flush()


def _recorder(original: Callable, dotted: str, output: str, limit: int, seen: set[str]) -> Callable:
    from .values import Unrecordable, describe, encode

    @functools.wraps(original)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        if len(seen) >= MAX_CALLS:
            return original(*args, **kwargs)
        record: dict[str, Any] = {"function": dotted}
        try:
            record["args"], record["kwargs"] = encode(list(args), limit), encode(kwargs, limit)
        except Unrecordable as exc:
            record["unrecordable"] = f"arguments: {exc}"
        tee = _Tee(sys.stdout)
        with contextlib.redirect_stdout(tee):
            result = original(*args, **kwargs)
        record["printed"] = tee.buffer_text.getvalue()
        try:
            record["result"] = encode(result, limit)
        except Unrecordable:
            record["result_type"] = describe(result)
        if "args" in record:
            with contextlib.suppress(Unrecordable):
                after = encode(list(args), limit)
                if after != record["args"]:
                    record["args_after"] = after
        try:
            import IPython

            shell = IPython.get_ipython()
            record["count"] = shell.execution_count if shell is not None else None
        except ImportError:  # pragma: no cover - recording only runs in a Jupyter kernel
            record["count"] = None
        key = json.dumps([record.get("args"), record.get("kwargs")], sort_keys=True, default=str)
        if key not in seen:
            seen.add(key)
            with open(output, "a", encoding="utf-8") as handle:
                handle.write(json.dumps(record) + "\n")
        return result

    return wrapper


def load(path: Path, executed: Any, notebook: str) -> list[RecordedCall]:
    """The calls recorded in ``path``; ``executed`` is the executed node (to map cells)."""
    if not path.exists():
        return []
    cells = {}
    for index, cell in enumerate(executed.cells):
        if cell.cell_type == "code" and cell.get("execution_count") is not None:
            cells[cell.execution_count] = cell.get("metadata", {}).get("nb2pkg", {}).get(
                "source_cell", index)
    calls = []
    for line in path.read_text(encoding="utf-8").splitlines():
        data = json.loads(line)
        if data.get("result", 0) is None and not data.get("printed") and "args_after" not in data:
            # Returned None, printed nothing, changed no argument: its effect (a plot, a file)
            # is not in the record, so its test can only check that it runs and returns None.
            data["result_type"] = {"type": "builtins.NoneType"}
            del data["result"]
        calls.append(RecordedCall(
            function=data["function"], cell=cells.get(data.get("count")), notebook=notebook,
            args=data.get("args"), kwargs=data.get("kwargs"), result=data.get("result"),
            result_type=data.get("result_type"), printed=data.get("printed", ""),
            args_after=data.get("args_after"), unrecordable=data.get("unrecordable")))
    return calls


@dataclass(frozen=True)
class Coverage:
    function: str
    value_tests: int  # calls whose result (and printing, and argument changes) are asserted
    type_tests: int  # calls whose result could only be checked for type and shape
    reason: str | None = None  # why a function has no test


def coverage(functions: Sequence[str], calls: Sequence[RecordedCall]) -> list[Coverage]:
    """How each package function is covered by the recorded calls."""
    result = []
    for function in functions:
        mine = [c for c in calls if c.function == function]
        runnable = [c for c in mine if c.unrecordable is None]
        values = sum(1 for c in runnable if c.result_type is None)
        reason = None
        if not mine:
            reason = "never called while the notebooks ran"
        elif not runnable:
            reason = f"arguments could not be recorded ({mine[0].unrecordable})"
        result.append(Coverage(function, values, len(runnable) - values, reason))
    return result


def test_data(calls: Sequence[RecordedCall]) -> dict[str, str]:
    """``tests/data/recorded/<function>.json`` files: the runnable calls of each function."""
    by_function: dict[str, list[dict[str, Any]]] = {}
    for call in calls:
        if call.unrecordable is not None:
            continue
        entries = by_function.setdefault(call.function, [])
        stem = Path(call.notebook).stem
        name = call.function.rpartition(".")[2]
        entry = {"id": f"{name}-{stem}-cell{call.cell}-{len(entries) + 1}",
                 "function": call.function, "notebook": call.notebook, "cell": call.cell,
                 "args": call.args, "kwargs": call.kwargs, "printed": call.printed}
        if call.result_type is None:
            entry["result"] = call.result
        else:
            entry["result_type"] = call.result_type
        if call.args_after is not None:
            entry["args_after"] = call.args_after
        entries.append(entry)
    return {f"tests/data/recorded/{function}.json": json.dumps({"calls": entries}, indent=1,
                                                                sort_keys=True) + "\n"
            for function, entries in sorted(by_function.items())}
