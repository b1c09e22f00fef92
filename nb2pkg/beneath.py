"""Open files beneath a root folder, never through a symbolic link leading out of it.

Every name is opened relative to the folder above it (``dir_fd``) with ``O_NOFOLLOW``, starting
from the root, so a link swapped in while nb2pkg works can make an open fail but never lead
outside. With ``follow``, a link met on the way is read (``readlink``) and its target walked
the same way: from the root when absolute (it must name a place beneath the root), from the
folder holding the link when relative, ``..`` never above the root. That is Linux's
``openat2(RESOLVE_BENEATH)``, which Python does not offer, done one name at a time.

Users: the lab's private copy of the notebook (``nb2pkg/labext/conversion.py``, no links at all)
and the data files and local modules carried into a project (``nb2pkg/assets.py``).
``nb2pkg/write.py`` walks to the output's folder the same way, creating folders as it goes.
"""

from __future__ import annotations

import errno
import os
import stat
from collections.abc import Sequence

DIRECTORY = os.O_RDONLY | getattr(os, "O_DIRECTORY", 0)
NO_FOLLOW = getattr(os, "O_NOFOLLOW", 0)
# A FIFO met where a file is expected must not hang the reader: open it without blocking.
NON_BLOCK = getattr(os, "O_NONBLOCK", 0)
MAX_LINKS = 40  # links followed in one walk, as Linux allows (then ELOOP)
_UF_HIDDEN = getattr(stat, "UF_HIDDEN", 0)


class Outside(OSError):
    """The walk would leave the root: a link leading out of it, or ``..`` above it."""


class Hidden(OSError):
    """A hidden name on the way (starting with ``.``, or hidden by the file system)."""


def open_beneath(root: str, parts: Sequence[str], *, follow: bool = False,
                 allow_hidden: bool = True) -> tuple[int, tuple[str, ...]]:
    """An fd of what ``parts`` (names below ``root``) name, and its names below the root with
    every link resolved. ``root`` is an absolute path without links (``os.path.realpath``).

    The last name is opened ``O_RDONLY | O_NONBLOCK``, whatever it is: the caller checks what it
    got with ``os.fstat`` and closes the fd. Raises ``Outside``, ``Hidden`` (unless
    ``allow_hidden``), and the ``OSError`` of a failed open: ``FileNotFoundError``, and, without
    ``follow``, ``ELOOP``/``ENOTDIR`` for a link on the way.
    """
    folders = [(os.open(root, DIRECTORY), "")]  # (fd, name) from the root down
    todo = list(reversed(parts))  # the next name last
    links = 0
    try:
        while todo:
            name = todo.pop()
            if name in ("", os.curdir):
                continue
            if name == os.pardir:
                if len(folders) == 1:
                    raise Outside(errno.EXDEV, "the path leads above the root")
                os.close(folders.pop()[0])
                continue
            if not allow_hidden and name.startswith("."):
                raise Hidden(errno.EACCES, "a hidden name is on the way", name)
            last = not todo
            try:
                fd = os.open(name, (os.O_RDONLY | NON_BLOCK if last else DIRECTORY) | NO_FOLLOW,
                             dir_fd=folders[-1][0])
            except OSError as exc:
                if not follow or exc.errno not in (errno.ELOOP, errno.ENOTDIR, errno.EMLINK):
                    raise
                try:  # a link (or, if this fails too, a file where a folder is expected)
                    target = os.readlink(name, dir_fd=folders[-1][0])
                except OSError:
                    raise exc from None
                links += 1
                if links > MAX_LINKS:
                    raise OSError(errno.ELOOP, "too many symbolic links", name) from None
                if os.path.isabs(target):
                    target = os.path.normpath(target)
                    if os.path.commonpath([root, target]) != root:
                        raise Outside(errno.EXDEV, "a symbolic link leads out of the root",
                                      name) from None
                    while len(folders) > 1:
                        os.close(folders.pop()[0])
                    target = os.path.relpath(target, root)
                todo.extend(reversed(target.split("/")))
                continue
            folders.append((fd, name))
            if not allow_hidden and getattr(os.fstat(fd), "st_flags", 0) & _UF_HIDDEN:
                raise Hidden(errno.EACCES, "a hidden name is on the way", name)
        names = tuple(name for _, name in folders[1:])
        return (folders.pop()[0] if len(folders) > 1 else os.dup(folders[0][0])), names
    finally:
        for opened, _ in folders:
            os.close(opened)
