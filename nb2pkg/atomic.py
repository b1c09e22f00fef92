"""Write a file whole or not at all: a partial file beside it, renamed into place.

Everything nb2pkg writes outside a staged project goes through here (the state file, the run
report, exported pipeline files, recorded tests). Standard library only: a run with nothing to
do imports this.
"""

from __future__ import annotations

import os
from pathlib import Path


def partial_path(path: Path) -> Path:
    """A temporary name beside ``path``, of this process and call only.

    Never a fixed name: two writers never write into the same temporary file, and the last
    rename wins whole. (Not ``tempfile.mkstemp``: its files are private, and the renamed file
    should get the usual permissions.)
    """
    import secrets  # here, not at the top: a run with nothing to do rarely writes a file

    return path.with_name(f".{path.name}.{os.getpid()}.{secrets.token_hex(4)}.partial")


def write_atomic(path: Path, content: str | bytes) -> None:
    """Replace ``path`` with ``content`` (text as UTF-8, newlines as given on every system);
    on any failure the old file stays and no partial file is left."""
    partial = partial_path(path)
    try:
        with open(partial, "xb") as stream:
            stream.write(content if isinstance(content, bytes) else content.encode("utf-8"))
        os.replace(partial, path)
    except BaseException:
        partial.unlink(missing_ok=True)
        raise
