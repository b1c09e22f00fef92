"""Record the calls a notebook makes to its package's functions (runs inside the kernel).

``install`` wraps each package function so that every call appends its arguments (as they
were before the call), its result, what it printed and how it changed its arguments to
``calls.jsonl`` in a folder; arrays and pandas objects go beside it as files, in the
format of ``recorded``. The notebook then imports the wrapped functions; its own output is
unchanged (printing is teed, not captured). ``nb2pkg.record`` reads the folder back.

``replay`` runs later, in a fresh process of the same Python (named in ``python.txt``):
it calls each stored call again from its arguments alone, as the generated tests will, and
says which do not give what was recorded (their result depends on something else: a
module-level counter, matplotlib's current figure, unseeded randomness).
"""

from __future__ import annotations

import contextlib
import functools
import io
import json
import sys
from pathlib import Path
from typing import Any, Callable, Sequence

from .recorded import (
    DEFAULT_LIMIT,
    Unrecordable,
    check_call,
    describe,
    encode,
    load_call,
)

CALLS_FILE = "calls.jsonl"
INTERPRETER_FILE = "python.txt"  # the kernel's Python: where the calls are replayed
MAX_CALLS = 3  # distinct calls kept per function


def install(functions: Sequence[str], folder: str, limit: int = DEFAULT_LIMIT) -> None:
    """Wrap each ``module.function`` in place when the notebook imports its module; record
    into ``folder``.

    Not by importing the modules now: that would run their imports before the notebook's
    first cell, and what an import prints (a library's warning) would leave the cell where
    the notebook shows it."""
    (Path(folder) / INTERPRETER_FILE).write_text(sys.executable, encoding="utf-8")
    _count_cells()
    wanted: dict[str, list[str]] = {}
    for dotted in functions:
        module_name, _, name = dotted.rpartition(".")
        wanted.setdefault(module_name, []).append(name)
    seen: dict[str, set[str]] = {}

    def wrap(module: Any) -> None:
        for name in wanted[module.__name__]:
            dotted = f"{module.__name__}.{name}"
            recorder = _recorder(
                getattr(module, name), dotted, Path(folder), limit, seen.setdefault(dotted, set())
            )
            setattr(module, name, recorder)

    for module_name in wanted:
        if module_name in sys.modules:
            wrap(sys.modules[module_name])
    sys.meta_path.insert(0, _WrapWhenImported(set(wanted) - set(sys.modules), wrap))


class _WrapWhenImported:
    """A finder that lets the others find ``names`` and wraps their functions once loaded."""

    def __init__(self, names: set[str], wrap: Callable[[Any], None]) -> None:
        self.names = names
        self.wrap = wrap

    def find_spec(self, fullname: str, path: Any, target: Any = None) -> Any:
        if fullname not in self.names:
            return None
        for finder in sys.meta_path:
            # (Another install's finder, in a process that installed twice, would ask this one.)
            find = getattr(finder, "find_spec", None)
            ours = isinstance(finder, _WrapWhenImported)
            spec = find(fullname, path, target) if find and not ours else None
            if spec is not None and spec.loader is not None:
                spec.loader = _ThenWrap(spec.loader, self.wrap)
                return spec
        return None


class _ThenWrap:
    """A loader that runs the module as ``loader`` does, then wraps its functions."""

    def __init__(self, loader: Any, wrap: Callable[[Any], None]) -> None:
        self.loader = loader
        self.wrap = wrap

    def create_module(self, spec: Any) -> Any:
        return self.loader.create_module(spec)

    def exec_module(self, module: Any) -> None:
        self.loader.exec_module(module)
        self.wrap(module)


class _Tee(io.TextIOBase):
    def __init__(self, target: Any) -> None:
        self.target = target
        self.buffer_text = io.StringIO()

    def write(self, text: str) -> int:
        self.buffer_text.write(text)
        return self.target.write(text)

    def flush(self) -> None:
        self.target.flush()


def _recorder(
    original: Callable, dotted: str, folder: Path, limit: int, seen: set[str]
) -> Callable:
    @functools.wraps(original)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        if len(seen) >= MAX_CALLS:
            return original(*args, **kwargs)
        # Recording must never change what the notebook does: whatever goes wrong while
        # looking at the arguments or the result (a property that raises, a library object
        # that breaks on being walked) only makes the call unrecorded.
        record: dict[str, Any] = {"function": dotted}
        files: dict[str, bytes] = {}
        try:
            record["args"] = encode(list(args), files, limit)
            record["kwargs"] = encode(kwargs, files, limit)
        except Exception as exc:  # noqa: BLE001 - see above
            record.pop("args", None)
            record["unrecordable"] = f"arguments: {_trouble(exc)}"
        tee = _Tee(sys.stdout)
        with contextlib.redirect_stdout(tee):
            result = original(*args, **kwargs)
        with contextlib.suppress(Exception):
            _keep(record, files, result, args, tee.buffer_text.getvalue(), folder, limit, seen)
        return result

    return wrapper


def _keep(record: dict[str, Any], files: dict[str, bytes], result: Any, args: tuple,
          printed: str, folder: Path, limit: int, seen: set[str]) -> None:
    """Add the result, what was printed and the arguments' changes to ``record``, and write it
    unless an equal call was written before."""
    record["printed"] = printed
    try:
        record["result"] = encode(result, files, limit)
    except Exception:  # noqa: BLE001 - as for the arguments
        record["result_type"] = describe(result)
    if "args" in record:
        with contextlib.suppress(Exception):
            after = encode(list(args), files, limit)
            if after != record["args"]:
                record["args_after"] = after
    record["cell_run"] = _cells_run
    # Files are named by content, so equal arguments give equal keys.
    key = json.dumps([record.get("args"), record.get("kwargs")], sort_keys=True, default=str)
    if key not in seen:
        seen.add(key)
        for name, data in files.items():
            (folder / name).write_bytes(data)
        with open(folder / CALLS_FILE, "a", encoding="utf-8") as handle:
            handle.write(json.dumps(record) + "\n")


def _trouble(exc: Exception) -> str:
    return str(exc) if isinstance(exc, Unrecordable) else f"{type(exc).__name__} on looking at them"


_cells_run = (
    0  # cells started since ``install``: the n-th is the notebook's n-th code cell run
)


def _count_cells() -> None:
    """Count the cells the kernel starts from now on, to tie each call to its cell.

    IPython's ``execution_count`` would not do: whether it has already moved on to the
    next number while a cell runs differs between IPython versions (it has in IPython 9
    with ipykernel 7). ``install`` runs in a cell of its own before the notebook's cells.
    """
    try:
        import IPython
    except ImportError:  # pragma: no cover - recording only runs in a Jupyter kernel
        return
    shell = IPython.get_ipython()
    if shell is not None:
        shell.events.register("pre_run_cell", _cell_started)


def _cell_started(*_: Any) -> None:
    global _cells_run
    _cells_run += 1


def replay(paths: Sequence[str], normalize: Callable[[str], str], output: str) -> None:
    """Call each stored call (``paths``: its JSON files) again in this process and write
    ``{path: why}`` for those that do not do what was recorded to ``output`` (JSON).

    The check is the generated test's (``recorded.check_call``). The calls run in the
    order the tests run them, then again in reverse: a result that depends on state the
    arguments do not carry can agree once by coincidence of order, and then fails alone
    (``pytest -k``) or after an edit. What they print is caught, as pytest would.
    """
    failures: dict[str, str] = {}
    for again, path in [(False, p) for p in paths] + [
        (True, p) for p in reversed(paths)
    ]:
        if path in failures:
            continue
        printed = io.StringIO()
        try:
            call = load_call(path)  # afresh: a call may change its arguments
            with contextlib.redirect_stdout(printed):
                result = call.target()(*call.args, **call.kwargs)
            check_call(call, result, printed.getvalue(), normalize)
        except (Exception, SystemExit) as exc:
            failures[path] = _why(exc, again)
    with open(output, "w", encoding="utf-8") as handle:
        json.dump(failures, handle)


def _why(exc: BaseException, again: bool) -> str:
    """One short line: what went wrong on replay."""
    lines = [line.strip() for line in str(exc).splitlines() if line.strip()]
    detail = lines[0][:100] if lines else ""
    if isinstance(exc, AssertionError):
        what = "gave another result" + (f" ({detail})" if detail else "")
    else:
        what = f"raised {type(exc).__name__}" + (f": {detail}" if detail else "")
    if again:
        return f"called a second time in one process, it {what}"
    return f"called again from its recorded arguments, it {what}"
