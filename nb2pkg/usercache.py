"""The user's cache folder: what nb2pkg keeps between runs outside any output (what
``dependencies`` read of the installed distributions, the compiled templates of ``templating``).

Everything kept there can be rebuilt: a missing, damaged or unwritable folder costs time, never
an error. Standard library only (``nb2pkg run`` renders its report through ``templating``).
"""

from __future__ import annotations

import os
import sys
from pathlib import Path


def cache_folder() -> Path | None:
    """``$NB2PKG_CACHE_DIR``, else the user's cache folder (``$XDG_CACHE_HOME/nb2pkg``,
    ``~/.cache/nb2pkg``, ``%LOCALAPPDATA%/nb2pkg``); None without a home folder."""
    folder = os.environ.get("NB2PKG_CACHE_DIR")
    if not folder:
        base = (os.environ.get("LOCALAPPDATA") if sys.platform == "win32"
                else os.environ.get("XDG_CACHE_HOME"))
        if not base:
            try:
                base = str(Path.home() / ".cache")
            except RuntimeError:  # no home folder: no cache
                return None
        folder = os.path.join(base, "nb2pkg")
    return Path(folder)


def private_folder(folder: Path) -> bool:
    """Is ``folder`` (created when missing) a directory only this user can write?

    What the template cache holds is executed (Python bytecode), so it is kept only where no
    other user could have put it, as Python's own ``__pycache__`` relies on."""
    try:
        folder.mkdir(parents=True, exist_ok=True, mode=0o700)
        info = os.stat(folder, follow_symlinks=False)
    except OSError:
        return False
    import stat

    if not stat.S_ISDIR(info.st_mode):
        return False
    if hasattr(os, "getuid"):
        return info.st_uid == os.getuid() and not info.st_mode & (stat.S_IWGRP | stat.S_IWOTH)
    return True  # Windows: the per-user %LOCALAPPDATA%
