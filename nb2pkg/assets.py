"""The files around a notebook that are part of it: data files it reads by relative path and
local modules it imports. Found on disk next to the notebook, at convert time.

A generated project runs its notebooks from ``notebooks/`` (and its stages with that folder as
working directory), so a file the original reads as ``data/x.csv`` is carried to
``notebooks/data/x.csv`` and one read as ``../data/x.csv`` to ``data/x.csv``: the same relative
paths resolve. Files over ``max_bytes`` are not copied (REPORT.md says where the project
expects them). Local modules go beside the refactored notebooks too: the kernel's working
directory is on ``sys.path``, so ``import helpers`` resolves as it did.
"""

from __future__ import annotations

import ast
import os
import posixpath
import stat
import sys
from dataclasses import dataclass, field, replace
from pathlib import Path

from .analysis.files import FileUses
from .analysis.parse import imported_names
from .beneath import NO_FOLLOW, NON_BLOCK, Hidden, Outside, open_beneath
from .errors import Nb2pkgError

PROJECT_NOTEBOOKS = "notebooks"
DEFAULT_MAX_BYTES = 50 * 1024 * 1024
MAX_FOLDER_DEPTH = 64  # folders deeper inside a carried folder are left out

# ("", bytes) for a file; (path inside, bytes) for each file of a folder
Contents = tuple[tuple[str, bytes], ...]

# Why something the notebook names is not carried (REPORT.md shows these after the path).
OUTSIDE_TREE = "it lies outside the notebook's folder tree"
OUTSIDE_ROOT = ("it lies outside the folder the conversion may read (in JupyterLab, the "
                "server's root)")
LINK_OUT_OF_TREE = "it is a symbolic link leading out of the notebook's folder tree"
LINK_OUT_OF_ROOT = ("it is a symbolic link leading out of the folder the conversion may read "
                    "(in JupyterLab, the server's root)")
HIDDEN = ("it is hidden (a name starting with `.` on its way), and hidden files are not carried "
          "here")
SYS_PATH_OUTSIDE = ("a folder the notebook adds to `sys.path`, outside the folder the conversion "
                    "may read (in JupyterLab, the server's root): local modules there are not "
                    "carried")


@dataclass(frozen=True)
class DataFile:
    source: Path  # absolute path beside the original notebook
    target: str  # project-relative POSIX path it is copied to ("notebooks/data/x.csv")
    size: int
    copied: bool  # False when over the size limit: referenced, not copied
    read_by: tuple[tuple[int, int], ...]  # (notebook position, cell) that name it
    written_by: tuple[tuple[int, int], ...]  # (notebook position, cell) that write it
    # What is carried, read once when found: generation never opens a path again.
    contents: Contents = field(default=(), repr=False)
    # Seen read only when `convert --verify` ran the notebook (a name built at run time).
    at_run_time: bool = False


@dataclass(frozen=True)
class LocalModule:
    name: str  # the top-level import name ("helpers")
    source: Path  # the .py file or package folder
    target: str  # project-relative path ("notebooks/helpers.py")
    imports: tuple[str, ...]  # top-level names it imports (for dependencies)
    contents: Contents = field(default=(), repr=False)


@dataclass(frozen=True)
class LeftOut:
    path: str  # as the notebook names it ("data/secret.txt", "../../outside")
    reason: str  # why it is not carried: one of the constants above, or why it cannot be read


@dataclass(frozen=True)
class Assets:
    data: tuple[DataFile, ...] = ()
    modules: tuple[LocalModule, ...] = ()
    outside: tuple[LeftOut, ...] = ()  # what the notebook names that is not carried, and why

    def module_names(self) -> frozenset[str]:
        return frozenset(m.name for m in self.modules)

    def text_of(self, notebook: int, path: str) -> str | None:
        """The text of the file the ``notebook``-th notebook names as ``path``, when carried
        (read when found, confined like every file carried), else None."""
        target = posixpath.normpath(posixpath.join(PROJECT_NOTEBOOKS, path.replace("\\", "/")))
        for d in self.data:
            if d.target == target and d.copied and any(nb == notebook for nb, _ in d.read_by):
                try:
                    return b"".join(content for inside, content in d.contents if not inside
                                    ).decode("utf-8")
                except UnicodeDecodeError:
                    return None
        return None


@dataclass(frozen=True)
class _Places:
    """Where files are read from. Every file is opened by a walk from ``root``; the other
    places are names below it, resolved (no links)."""

    root: str  # ``confine_to``, or the top of the file system
    confined: bool  # nothing is even looked at outside ``root``
    folder: tuple[str, ...]  # relative paths resolve from here (the notebook's folder)
    notebook: str  # the notebook's file name in it
    tree: tuple[str, ...]  # data files and modules beside the notebook stay beneath it
    allow_hidden: bool

    def path(self, parts: tuple[str, ...]) -> str:
        return os.path.join(self.root, *parts)

    def parts(self, path: str) -> tuple[str, ...]:
        relative = os.path.relpath(path, self.root)
        return () if relative == os.curdir else tuple(relative.split(os.sep))


def find_assets(notebook: Path, uses: FileUses, imported: set[str],
                max_bytes: int = DEFAULT_MAX_BYTES, position: int = 0, *,
                folder: Path | str | None = None, confine_to: Path | str | None = None,
                allow_hidden: bool = True) -> Assets:
    """Data files and local modules of the notebook at ``notebook``, the ``position``-th of the
    notebooks converted together, with what they contain.

    ``folder`` is where the notebook's relative paths resolve (default: the notebook's own
    folder). Everything carried lies, links resolved, inside the notebook's folder tree (its
    folder's parent), except local modules of folders the notebook adds to ``sys.path``. With
    ``confine_to``, nothing outside that folder is carried or even looked at, those modules
    included; without ``allow_hidden``, nothing with a name starting with ``.`` on its way
    below it. Every file is opened by a walk from ``confine_to`` (or from the top of the file
    system) that follows no link out of it (``nb2pkg.beneath``), and read once, here.
    """
    places = _places(notebook, folder, confine_to, allow_hidden)
    folder_path = places.path(places.folder)
    data: dict[str, dict] = {}
    outside: list[LeftOut] = []
    for use in uses.paths:
        full = os.path.normpath(os.path.join(folder_path, use.path))
        normal = posixpath.normpath(posixpath.join(PROJECT_NOTEBOOKS, use.path.replace("\\", "/")))
        if places.confined and not _beneath(full, places.root):
            outside.append(LeftOut(use.path, OUTSIDE_ROOT))  # not even looked at
            continue
        parts = places.parts(full)
        if normal == ".." or normal.startswith(("../", "/")) or not _within(parts, places.tree):
            if use.writes or _exists(places, parts):
                outside.append(LeftOut(use.path, OUTSIDE_TREE))
            continue
        entry = data.setdefault(normal, {"path": use.path, "parts": parts, "read": [],
                                         "written": []})
        entry["written" if use.writes else "read"].append((position, use.cell))
    files = []
    for target, entry in sorted(data.items()):
        read_by = tuple(sorted(set(entry["read"])))
        written_by = tuple(sorted(set(entry["written"])))
        found = _open(places, entry["parts"], within=places.tree)
        if isinstance(found, str):
            outside.append(LeftOut(entry["path"], found))
            continue
        if found is None:  # not there (or not a file or folder): an output, not an input
            if written_by:
                # Its readers count: a later stage reads what an earlier one wrote.
                files.append(DataFile(Path(places.path(entry["parts"])), target, 0, False,
                                      read_by, written_by))
            continue
        fd, real = found
        try:
            if _holds(real, places):  # the notebook itself, or a folder holding it (".", "..")
                continue
            if stat.S_ISDIR(os.fstat(fd).st_mode):
                size, contents = _read_folder(fd, max_bytes)
            else:
                size, contents = _read_file(fd, max_bytes)
        finally:
            os.close(fd)
        files.append(DataFile(Path(places.path(real)), target, size, contents is not None,
                              read_by, written_by, contents or ()))
    modules = _local_modules(places, uses.sys_paths, imported, outside)
    return Assets(tuple(files), modules, tuple(dict.fromkeys(outside)))


def _places(notebook: Path, folder: Path | str | None, confine_to: Path | str | None,
            allow_hidden: bool) -> _Places:
    if folder is None:
        real = os.path.realpath(notebook)
        folder, name = os.path.dirname(real), os.path.basename(real)
    else:
        folder, name = os.path.realpath(folder), Path(notebook).name
    tree = os.path.dirname(folder)
    root = os.path.abspath(os.sep) if confine_to is None else os.path.realpath(confine_to)
    if not _beneath(folder, root):
        raise Nb2pkgError("the notebook's folder is outside the folder the conversion may read",
                          path=folder, hint="pass a source folder inside confine_to")
    places = _Places(root, confine_to is not None, (), name, (), allow_hidden)
    return replace(places, folder=places.parts(folder),
                   tree=places.parts(tree if _beneath(tree, root) else root))


def _beneath(path: str, root: str) -> bool:
    return os.path.commonpath([root, path]) == root


def _within(parts: tuple[str, ...], folder: tuple[str, ...]) -> bool:
    return parts[:len(folder)] == folder


def _exists(places: _Places, parts: tuple[str, ...]) -> bool:
    if not places.confined:  # the command line: the user's own files
        return os.path.lexists(places.path(parts))
    found = _open(places, parts)
    if isinstance(found, tuple):
        os.close(found[0])
    return found is not None


def _open(places: _Places, parts: tuple[str, ...], within: tuple[str, ...] = ()
          ) -> tuple[int, tuple[str, ...]] | str | None:
    """An fd of a file or folder and its names below the root (links resolved); None when there
    is none; else why it is not carried (out of the root, or, links resolved, of ``within``)."""
    try:
        fd, real = open_beneath(places.root, parts, follow=True, allow_hidden=places.allow_hidden)
    except (FileNotFoundError, NotADirectoryError):
        return None
    except Outside:
        return LINK_OUT_OF_ROOT
    except Hidden:
        return HIDDEN
    except OSError as exc:
        return f"it cannot be read ({exc.strerror or exc})"
    if not _within(real, within):  # through a link, still beneath the root
        os.close(fd)
        return LINK_OUT_OF_TREE
    if not (stat.S_ISREG(os.fstat(fd).st_mode) or stat.S_ISDIR(os.fstat(fd).st_mode)):
        os.close(fd)  # a FIFO, a device: not data
        return None
    return fd, real


def _holds(real: tuple[str, ...], places: _Places) -> bool:
    return real == (*places.folder, places.notebook) or real == places.folder[:len(real)]


def _read_file(fd: int, limit: int | None) -> tuple[int, Contents | None]:
    """The size of the open file, and its bytes unless over ``limit``."""
    size = os.fstat(fd).st_size
    if limit is not None and size > limit:
        return size, None
    chunks, total = [], 0
    while limit is None or total <= limit:
        chunk = os.read(fd, 1 << 20)
        if not chunk:
            break
        chunks.append(chunk)
        total += len(chunk)
    if limit is not None and total > limit:  # it grew while read
        return total, None
    return total, (("", b"".join(chunks)),)


def _read_folder(fd: int, limit: int | None) -> tuple[int, Contents | None]:
    """The size of the files of the open folder that are carried (hidden names, ``__pycache__``
    and links left out), and their bytes unless over ``limit`` in all."""
    found: list[tuple[str, bytes]] = []
    total = _read_into(fd, "", found, limit, 0)
    if limit is not None and total > limit:
        return total, None
    return total, tuple(sorted(found))


def _read_into(fd: int, prefix: str, found: list[tuple[str, bytes]], limit: int | None,
               depth: int) -> int:
    """Read the folder ``fd`` into ``found``; return the size of its files. Past ``limit``
    (bytes left; None: no limit) files are only counted."""
    total = 0
    with os.scandir(fd) as entries:
        names = sorted(entry.name for entry in entries)
    for name in names:
        if name.startswith(".") or name == "__pycache__":
            continue
        try:  # never through a link, even one swapped in since the listing
            child = os.open(name, os.O_RDONLY | NO_FOLLOW | NON_BLOCK, dir_fd=fd)
        except OSError:
            continue
        try:
            mode, room = os.fstat(child).st_mode, None if limit is None else limit - total
            if stat.S_ISDIR(mode) and depth < MAX_FOLDER_DEPTH:
                total += _read_into(child, f"{prefix}{name}/", found, room, depth + 1)
            elif stat.S_ISREG(mode) and room is not None and room < 0:
                total += os.fstat(child).st_size
            elif stat.S_ISREG(mode):
                size, contents = _read_file(child, room)
                total += size
                if contents is not None:
                    found.append((f"{prefix}{name}", contents[0][1]))
        finally:
            os.close(child)
    return total


def _local_modules(places: _Places, sys_paths: tuple[str, ...], imported: set[str],
                   outside: list[LeftOut]) -> tuple[LocalModule, ...]:
    """Imported names that a file or package beside the notebook (or in a folder the notebook
    adds to ``sys.path``) provides, standard library excluded; followed through their own
    imports of further local modules."""
    search = [(places.folder, places.tree, "")]  # (folder, what it must stay in, shown as)
    for added in sys_paths:
        full = os.path.normpath(os.path.join(places.path(places.folder), added))
        if places.confined and not _beneath(full, places.root):
            outside.append(LeftOut(added, SYS_PATH_OUTSIDE))
            continue
        search.append((places.parts(full), (), added + "/"))
    found: dict[str, LocalModule] = {}
    todo = sorted(imported)
    while todo:
        name = todo.pop()
        if name in found or name in sys.stdlib_module_names:
            continue
        for place, within, shown in search:
            module = _module(places, place, within, name)
            if module is None:
                continue
            if isinstance(module, str):  # there, but not carried: it stays unresolved
                outside.append(LeftOut(f"{shown}{name}", module))
                break
            source, contents = module
            names = _imports_of(contents)
            target = f"{PROJECT_NOTEBOOKS}/{name}" + (".py" if contents[0][0] == "" else "")
            found[name] = LocalModule(name, source, target, tuple(sorted(names)), contents)
            todo.extend(n for n in names if n not in found)
            break
    return tuple(found[n] for n in sorted(found))


def _module(places: _Places, place: tuple[str, ...], within: tuple[str, ...], name: str
            ) -> tuple[Path, Contents] | str | None:
    """The module ``name`` in the folder ``place``: its path and its contents; None when there
    is none; else why it is not carried."""
    found = _open(places, (*place, f"{name}.py"), within)
    if isinstance(found, str):
        return found
    if found is not None:
        fd, real = found
        try:
            if stat.S_ISREG(os.fstat(fd).st_mode):
                return Path(places.path(real)), _read_file(fd, None)[1] or ()
        finally:
            os.close(fd)
    found = _open(places, (*place, name), within)
    if found is None or isinstance(found, str):
        return found
    fd, real = found
    try:
        if not stat.S_ISDIR(os.fstat(fd).st_mode) or not _has_python(fd):
            return None
        contents = _read_folder(fd, None)[1] or ()
    finally:
        os.close(fd)
    return (Path(places.path(real)), contents) if contents else None


def _has_python(fd: int) -> bool:
    with os.scandir(fd) as entries:
        return any(e.name.endswith(".py") and not e.name.startswith(".")
                   and e.is_file(follow_symlinks=False) for e in entries)


def _imports_of(contents: Contents) -> set[str]:
    """Top-level names imported anywhere in a module file or package (absolute imports)."""
    names: set[str] = set()
    for path, content in contents:
        if path and not path.endswith(".py"):
            continue
        try:
            names.update(imported_names(ast.parse(content)))
        except (SyntaxError, ValueError):
            continue
    return names


def asset_files(assets: Assets) -> dict[str, bytes]:
    """The project files that carry the assets: relative path -> content (as read when found)."""
    files: dict[str, bytes] = {}
    carried: list[DataFile | LocalModule] = [*assets.modules,
                                             *(d for d in assets.data if d.copied)]
    for item in carried:
        for inside, content in item.contents:
            files[f"{item.target}/{inside}" if inside else item.target] = content
    return files


__all__ = ["Assets", "DataFile", "LeftOut", "LocalModule", "find_assets", "asset_files",
           "DEFAULT_MAX_BYTES", "PROJECT_NOTEBOOKS"]
