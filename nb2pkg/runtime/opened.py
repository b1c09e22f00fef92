"""Note the files a notebook reads from its own folder while it runs (runs inside the kernel).

Static analysis sees the files a notebook names in literals; a name built at run time
(``pl.col("Sport") + ".png"``, ``f"{region}.csv"``) it cannot see, and the generated project
then lacks the file. ``install`` adds an audit hook (PEP 578) that appends one line per file
opened for reading below ``folder`` to ``record``: the cell's execution count, a tab, the
absolute path (after a first line ``setup``, a tab, the count the setup cell ran under). ``nb2pkg.verify`` reads it back after the run.

The hook must never change what the notebook does: it raises nothing, writes with ``os.write``
on a descriptor opened here (which raises no audit event of its own), and notes each file
once. A file the notebook opened for writing first is its output, not an input, and is not
noted when it is read later.
"""

from __future__ import annotations

import os
import sys
from typing import Any

# Opened without any of these, a file is only read.
_WRITE_FLAGS = os.O_WRONLY | os.O_RDWR | os.O_CREAT | os.O_APPEND | os.O_TRUNC


def install(folder: str, record: str) -> None:
    """Note files opened for reading below ``folder`` in the file ``record``."""
    below = os.path.join(os.path.realpath(folder), "")
    descriptor = os.open(record, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
    seen: set[str] = set()
    written: set[str] = set()
    # Which count a cell runs under depends on IPython's version (In [3] may run with
    # ``execution_count`` 3 or 4): the first line gives this, the setup cell's, to calibrate.
    os.write(descriptor, f"setup\t{_count()}\n".encode())

    def hook(event: str, args: Any) -> None:
        if event != "open":
            return
        try:
            path, mode, flags = args
            if isinstance(path, int) or path is None:
                return  # a descriptor: opened (and noted) before
            full = os.path.realpath(os.fsdecode(path))
            if not full.startswith(below) or full in seen:
                return
            if mode is not None:
                writes = any(c in str(mode) for c in "wax+")
            else:
                writes = bool((flags or 0) & _WRITE_FLAGS)
            if writes:
                written.add(full)
                return
            if full in written:
                return
            seen.add(full)
            os.write(descriptor, f"{_count()}\t{full}\n".encode("utf-8", "surrogateescape"))
        except Exception:  # noqa: BLE001 - never disturb the notebook
            return

    sys.addaudithook(hook)


def _count() -> int:
    shell = getattr(sys.modules.get("IPython"), "get_ipython", lambda: None)()
    return getattr(shell, "execution_count", 0) or 0
