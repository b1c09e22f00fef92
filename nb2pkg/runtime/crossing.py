"""Note the values that could not cross a pipeline stage boundary (runs inside the kernel).

The pipeline saves what later stages need at the end of each stage (``stage_io``): pickle,
unless the value is a module (saved by name). A generator, an open file or a model holding a
lambda cannot be pickled, and its stage then fails where the notebook ran fine. Which values
can be saved is only known when the notebook runs, so ``nb2pkg convert --verify`` installs
this in the kernel of the refactored notebook: after each cell that ends a stage it tries to
pickle, into nothing, the values that may cross that boundary, and appends a line per value
that fails to ``record``: the cell's ordinal, a tab, the name, a tab, its type, a tab, the
error. ``nb2pkg.verify`` reads it back, and the conversion runs those stages together.

Cells are counted as nbclient runs them: the first code cell that is not blank is 1. They are
counted as they start (IPython's ``pre_run_cell``), which the setup cell installing this has
already done: it is not counted, whatever execution count each IPython version gives it.

The check must never change what the notebook does: it raises nothing, writes with
``os.write``, and pickles into a sink that keeps no bytes (so no copy of a large value).
Pickling calls the value's own ``__reduce__``/``__getstate__``, as the pipeline will.
"""

from __future__ import annotations

import os
import pickle
import sys
import types
from typing import Any, Mapping, Sequence


class _Sink:
    """A file that forgets what is written to it."""

    def write(self, data: Any) -> int:
        # Protocol 5 writes a large buffer (a numpy array's data) as a `PickleBuffer`, which
        # has no len(): any array of 64 KiB or more was judged unsaveable, joining stages.
        return memoryview(data).nbytes


def install(record: str, boundaries: Mapping[int, Sequence[str]]) -> None:
    """After cell ``k`` (see the module docstring) of ``boundaries``, try its names."""
    shell = getattr(sys.modules.get("IPython"), "get_ipython", lambda: None)()
    if shell is None:
        return
    descriptor = os.open(record, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
    ordinal = [0]

    def before_cell(*_: Any) -> None:
        ordinal[0] += 1

    def after_cell(*_: Any) -> None:
        try:
            for name in boundaries.get(ordinal[0], ()):
                if name not in shell.user_ns:
                    continue  # saved as absent
                problem = unsaveable(shell.user_ns[name])
                if problem is not None:
                    line = "\t".join([str(ordinal[0]), name, *problem])
                    os.write(descriptor, (line.replace("\n", " ") + "\n").encode(
                        "utf-8", "surrogateescape"))
        except Exception:  # noqa: BLE001 - never disturb the notebook
            return

    shell.events.register("pre_run_cell", before_cell)
    shell.events.register("post_run_cell", after_cell)


# Libraries whose objects pickle without an error and come back otherwise. HoloViews 1.23: a
# Layout comes back with each part nested once more, and drawing it raises "AdjointLayout only
# accepts Element types" (its getting-started guide, in `dvc repro`); `hv.Store.dumps` too.
# Unpickling in the kernel to see would run the objects' own code there (counters, registries)
# and could change what the notebook prints, so they are known by their module.
NOT_KEPT_BY_PICKLE = {"holoviews": "pickled HoloViews objects come back otherwise"}


def unsaveable(value: Any) -> tuple[str, str] | None:
    """(type, error) when the pipeline cannot save ``value`` for the stages after."""
    if isinstance(value, types.ModuleType):
        return None
    kind = type(value)
    where = "" if kind.__module__ == "builtins" else f"{kind.__module__}."
    for klass in kind.__mro__:
        why = NOT_KEPT_BY_PICKLE.get(str(getattr(klass, "__module__", "")).split(".")[0])
        if why:
            return f"{where}{kind.__qualname__}", why
    try:
        pickle.Pickler(_Sink(), protocol=pickle.HIGHEST_PROTOCOL).dump(value)
    except Exception as exc:  # noqa: BLE001 - pickle raises TypeError, PicklingError, ...
        error = (str(exc).strip().splitlines() or [""])[0][:200]
        return f"{where}{kind.__qualname__}", f"{type(exc).__name__}: {error}"
    return None
