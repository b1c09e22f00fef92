"""Record the calls a notebook makes to its package's functions (runs inside the kernel).

``install`` wraps each package function so that every call appends its arguments (as they
were before the call), its result, what it printed and how it changed its arguments to
``calls.jsonl`` in a folder; arrays and pandas objects go beside it as files, in the
format of ``recorded``. The notebook then imports the wrapped functions; its own output is
unchanged (printing is teed, not captured). ``nb2pkg.record`` reads the folder back.
"""

from __future__ import annotations

import contextlib
import functools
import importlib
import io
import json
import sys
from pathlib import Path
from typing import Any, Callable, Sequence

from .recorded import DEFAULT_LIMIT, Unrecordable, describe, encode

CALLS_FILE = "calls.jsonl"
MAX_CALLS = 3  # distinct calls kept per function


def install(functions: Sequence[str], folder: str, limit: int = DEFAULT_LIMIT) -> None:
    """Wrap each ``module.function`` in place; record into ``folder``."""
    seen: dict[str, set[str]] = {}
    for dotted in functions:
        module_name, _, name = dotted.rpartition(".")
        module = importlib.import_module(module_name)
        original = getattr(module, name)
        recorder = _recorder(original, dotted, Path(folder), limit, seen.setdefault(dotted, set()))
        setattr(module, name, recorder)


class _Tee(io.TextIOBase):
    def __init__(self, target: Any) -> None:
        self.target = target
        self.buffer_text = io.StringIO()

    def write(self, text: str) -> int:
        self.buffer_text.write(text)
        return self.target.write(text)

    def flush(self) -> None:
        self.target.flush()


def _recorder(original: Callable, dotted: str, folder: Path, limit: int,
              seen: set[str]) -> Callable:
    @functools.wraps(original)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        if len(seen) >= MAX_CALLS:
            return original(*args, **kwargs)
        record: dict[str, Any] = {"function": dotted}
        files: dict[str, bytes] = {}
        try:
            record["args"] = encode(list(args), files, limit)
            record["kwargs"] = encode(kwargs, files, limit)
        except Unrecordable as exc:
            record["unrecordable"] = f"arguments: {exc}"
        tee = _Tee(sys.stdout)
        with contextlib.redirect_stdout(tee):
            result = original(*args, **kwargs)
        record["printed"] = tee.buffer_text.getvalue()
        try:
            record["result"] = encode(result, files, limit)
        except Unrecordable:
            record["result_type"] = describe(result)
        if "args" in record:
            with contextlib.suppress(Unrecordable):
                after = encode(list(args), files, limit)
                if after != record["args"]:
                    record["args_after"] = after
        record["count"] = _execution_count()
        # Files are named by content, so equal arguments give equal keys.
        key = json.dumps([record.get("args"), record.get("kwargs")], sort_keys=True, default=str)
        if key not in seen:
            seen.add(key)
            for name, data in files.items():
                (folder / name).write_bytes(data)
            with open(folder / CALLS_FILE, "a", encoding="utf-8") as handle:
                handle.write(json.dumps(record) + "\n")
        return result

    return wrapper


def _execution_count() -> int | None:
    """The execution count of the cell running now: ties the call to its cell."""
    try:
        import IPython
    except ImportError:  # pragma: no cover - recording only runs in a Jupyter kernel
        return None
    shell = IPython.get_ipython()
    return shell.execution_count if shell is not None else None
