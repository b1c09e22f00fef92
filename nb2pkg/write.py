"""Write generated files atomically, and refuse outputs that must not be replaced.

The project is built in a temporary folder beside the target and moved into place by renames,
so an interrupted run leaves either the previous output or none, never half a package; a run
killed between the two renames of a replacement is put right by the next one (``_recover``).
Under ``confined_to(root)`` nothing is written outside ``root``, however its folders are swapped
for symbolic links meanwhile. docs/security.md, "Writing outputs", has the threat model.
"""

from __future__ import annotations

import errno
import os
import re
import shutil
import stat
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from contextvars import ContextVar
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Iterable, Mapping, Sequence

try:
    import fcntl
except ImportError:  # Windows
    fcntl = None  # type: ignore[assignment]

from .atomic import write_atomic
from .beneath import DIRECTORY as _DIRECTORY, NO_FOLLOW as _NO_FOLLOW
from .errors import OutputExistsError, OutputWriteError

Files = Mapping[str, "str | bytes"]


# write_project builds the project in ".<name>.nb2pkg-old-XXXXXXXX" beside the target: the most
# it adds to the output folder's own name, which must still fit the file system's name limit.
_TEMPORARY_NAME_EXTRA = len(".") + len(".nb2pkg-old-") + 8


def check_output(output: Path, force: bool, inputs: Iterable[Path] = ()) -> None:
    """Refuse an existing output without ``force``, and any output that holds an input.

    Also refused before any work: an output under a file or a symbolic link loop, an output that
    is a symbolic link loop, and names too long for the file system.
    """
    # realpath, unlike Path.resolve on Python < 3.13, never raises on a symbolic link loop: the
    # loop stays in the path and is refused below.
    output = Path(os.path.realpath(output))
    for path in inputs:
        path = Path(os.path.realpath(path))
        if path == output or output in path.parents:
            raise OutputExistsError("the output folder contains the input notebook", path=output,
                                    hint="choose an output folder outside the notebooks' folder")
    existing = next((p for p in output.parents if os.path.lexists(p)), None)
    _check_name_lengths(output, existing)
    if existing is not None and not existing.is_dir():  # `-o some-file/out`: say so now
        what = "a symbolic link loop" if existing.is_symlink() else "a file"
        raise OutputExistsError(f"cannot create the output folder: {existing} is {what}",
                                path=output, hint="choose an output folder elsewhere")
    if os.path.islink(output):  # realpath followed every link that leads somewhere
        raise OutputExistsError("the output is a symbolic link loop", path=output,
                                hint="remove the link or choose another folder")
    # A conversion killed between its two renames left the previous output aside: put it back
    # now, so that "already exists" is said before the work rather than after it.
    if existing is not None and not os.path.lexists(output):
        recover_output(output)
    if os.path.exists(output) and not force:
        raise OutputExistsError("output folder already exists", path=output,
                                hint="pass --force to replace it, or choose another folder")
    if os.path.exists(output) and not output.is_dir():
        raise OutputExistsError("output exists and is not a folder", path=output,
                                hint="choose another path")


def _check_name_lengths(output: Path, existing: Path | None) -> None:
    try:
        limit = os.pathconf(existing or ".", "PC_NAME_MAX")
    except (OSError, ValueError, AttributeError):  # not POSIX, or not known for this folder
        limit = 255
    for part in output.parts[1:]:
        size = len(os.fsencode(part))
        if size > limit:
            raise OutputWriteError(f"a name in the output path is {size} bytes long, over the "
                                   f"file system's limit of {limit}", path=output,
                                   hint="choose a shorter output path")
    size = len(os.fsencode(output.name))
    if size + _TEMPORARY_NAME_EXTRA > limit:
        raise OutputWriteError(f"the output folder's name is {size} bytes long; at most "
                               f"{limit - _TEMPORARY_NAME_EXTRA} fit beside the temporary folder "
                               "it is built in", path=output, hint="choose a shorter name")


# -- writing a project -----------------------------------------------------------------------------
# Beside the output, write_project creates only names ".<output name>.nb2pkg-<what>": "lock"
# (one writer at a time), "XXXXXXXX" (a staging folder; mkdtemp's 8 characters) and
# "old-XXXXXXXX" (the previous output, moved aside for the moment of the swap; the longest, 21
# bytes more than the output's name). _recover reads what a killed writer left of them.
LOCK_TIMEOUT = 60.0  # seconds a second writer of one output waits for the first to finish
_MARKER = ".nb2pkg-replaced-by"  # in an old-XXXXXXXX folder: "dev:inode" of its replacement
# Linux names an open folder by a path, so path-based calls (mkdtemp, Path.write_text, rename)
# reach that very folder even if its path is changed meanwhile.
_FD_PATHS = os.path.isdir("/proc/self/fd")
_CONFINEMENT: ContextVar[str | None] = ContextVar("nb2pkg_write_confinement", default=None)


@contextmanager
def confined_to(root: Path | str) -> Iterator[None]:
    """While the block runs (in this thread, or threads and tasks it starts with its context),
    ``write_project`` writes only beneath ``root``, and follows no symbolic link between ``root``
    and the output, not even one swapped in while it works. The JupyterLab extension uses it with
    the server root (docs/security.md)."""
    token = _CONFINEMENT.set(os.path.realpath(root))
    try:
        yield
    finally:
        _CONFINEMENT.reset(token)


def confinement() -> str | None:
    """The root ``confined_to`` set for this context, if any (``nb2pkg.update`` reads the
    project beneath it too)."""
    return _CONFINEMENT.get()


@dataclass(frozen=True)
class _Folder:
    """The folder that holds the output, opened once: no later step looks its path up again."""

    fd: int
    path: str  # names this very folder for path-based calls (/proc/self/fd/N where there is one)
    root_fd: int | None  # the confinement root, to check the folder is still beneath it


def write_project(files: Files, output: Path, force: bool = False) -> list[str]:
    """Write ``files`` under ``output`` atomically; return the written paths, sorted.

    One writer per output at a time (a lock file beside it, waiting up to ``LOCK_TIMEOUT``).
    Under the lock, whatever a killed writer left beside the output is put right first (its
    previous output put back), ``force`` is decided again, and the final rename never replaces a
    folder that appeared since: without ``force`` nothing that exists is ever replaced.
    """
    output = Path(output)
    recover_output(output)  # a killed run's leftovers would mislead check_output
    check_output(output, force)  # early and path-based; decided again below, under the lock
    with _output_folder(output, create=True) as (folder, name), _locked(folder, name, output):
        _recover(folder, name)
        replacing = _existing_output(folder, name, output, force)
        staging = _stage(folder, name, files, output)
        _swap_in(folder, name, staging, replacing, output)
    return sorted(files)


def write_update(files: Files, output: Path, leave: Callable[[str], bool],
                 keep_previous: str) -> list[str]:
    """Replace the existing project ``output`` by ``files`` plus every file of it for which
    ``leave(relative path)`` is false (carried unchanged: links stay links), atomically and
    under the lock, as ``write_project`` does. The project as it was is not removed: it moves to
    ``output/keep_previous`` (replacing the copy an earlier update kept there).

    Killed between the renames, the previous project stays beside the output in its
    ``.<name>.nb2pkg-old-XXXXXXXX`` folder (``_recover`` keeps it: it never matches the marker).
    """
    output = Path(output)
    recover_output(output)
    with _output_folder(output, create=False) as (folder, name), _locked(folder, name, output):
        _recover(folder, name)
        if not _existing_output(folder, name, output, True):
            raise OutputWriteError("the project folder is gone", path=output,
                                   hint="restore it, then update again")
        staging = _stage(folder, name, files, output)
        try:
            _carry(folder, name, staging, leave)
        except BaseException as exc:
            _remove_tree(folder.fd, os.path.basename(staging))
            if isinstance(exc, OSError):
                raise _write_error(exc, output) from None
            raise
        _swap_in(folder, name, staging, True, output, keep_previous)
    return sorted(files)


def _carry(folder: _Folder, name: str, staging: str, leave: Callable[[str], bool]) -> None:
    """Carry what the project holds besides the generated files into ``staging`` (files as
    hard links where the file system allows, else copies), walking it with ``O_NOFOLLOW`` from
    the folder held open (a symbolic link is copied as a link, never followed)."""
    top = os.open(name, _DIRECTORY | _NO_FOLLOW, dir_fd=folder.fd)
    try:
        _carry_folder(top, "", staging, leave)
    finally:
        os.close(top)


def _carry_folder(fd: int, prefix: str, staging: str, leave: Callable[[str], bool]) -> None:
    for entry in sorted(os.scandir(fd), key=lambda e: e.name):
        relative = prefix + entry.name
        if leave(relative):
            continue
        info = os.stat(entry.name, dir_fd=fd, follow_symlinks=False)
        target = os.path.join(staging, relative)
        if stat.S_ISDIR(info.st_mode):
            os.makedirs(target, exist_ok=True)
            inner = os.open(entry.name, _DIRECTORY | _NO_FOLLOW, dir_fd=fd)
            try:
                _carry_folder(inner, relative + "/", staging, leave)
            finally:
                os.close(inner)
            os.chmod(target, stat.S_IMODE(info.st_mode) | 0o700)
        elif stat.S_ISLNK(info.st_mode):
            os.makedirs(os.path.dirname(target), exist_ok=True)
            os.symlink(os.readlink(entry.name, dir_fd=fd), target)
        elif stat.S_ISREG(info.st_mode):
            os.makedirs(os.path.dirname(target), exist_ok=True)
            try:
                # The project as it was keeps this file too (it moves to .nb2pkg/previous): one
                # file with two names, instead of a copy of a .venv, DVC cache or .git inside
                # the project on every update. (Not a link target: a link is linked as itself.)
                os.link(entry.name, target, src_dir_fd=fd, follow_symlinks=False)
                continue
            except OSError:  # another file system, no hard links there, too many links: copy
                pass
            source = os.open(entry.name, os.O_RDONLY | _NO_FOLLOW, dir_fd=fd)
            with open(source, "rb") as reading, open(target, "xb") as writing:
                shutil.copyfileobj(reading, writing)
            os.chmod(target, stat.S_IMODE(info.st_mode))
            os.utime(target, ns=(info.st_atime_ns, info.st_mtime_ns))
        # FIFOs, sockets, devices: not copied (they stay in the previous project's copy)


def recover_output(output: Path) -> None:
    """Put right what an nb2pkg run killed while writing ``output`` left beside it: its previous
    output goes back in place, staging folders go. ``write_project`` does this first anyway."""
    output = Path(output)
    if not os.path.isdir(os.path.dirname(os.path.realpath(output))):
        return
    with _output_folder(output, create=False) as (folder, name), _locked(folder, name, output):
        _recover(folder, name)


@contextmanager
def _output_folder(output: Path, create: bool) -> Iterator[tuple[_Folder, str]]:
    root = _CONFINEMENT.get()
    opened: list[int] = []
    try:
        if root is None:  # the command line: the user's own paths, resolved once as given
            resolved = os.path.realpath(output)
            parent, name = os.path.split(resolved)
            if create:
                os.makedirs(parent, exist_ok=True)
            opened.append(os.open(parent, _DIRECTORY))
            root_fd = None
        else:
            *parents, name = _parts_beneath(root, output)
            opened.append(os.open(root, _DIRECTORY))
            root_fd = opened[0]
            for part in parents:
                opened.append(_enter(opened[-1], part, create))
            parent = os.path.join(root, *parents)
    except OSError as exc:
        for fd in opened:
            os.close(fd)
        if exc.errno in (errno.ELOOP, errno.ENOTDIR):
            raise OutputWriteError("cannot create the output folder: a folder on the way to it is "
                                   "a file or a symbolic link (it changed while nb2pkg worked)",
                                   path=output, hint="nothing was written; try again") from None
        raise OutputWriteError(f"cannot create the output folder: {exc.strerror}", path=output,
                               hint="check permissions and free disk space") from None
    fd = opened[-1]
    try:
        yield _Folder(fd, f"/proc/self/fd/{fd}" if _FD_PATHS else parent, root_fd), name
    finally:
        for fd in opened:
            os.close(fd)


def _parts_beneath(root: str, output: Path) -> list[str]:
    relative = os.path.relpath(os.path.abspath(output), root)
    if relative == os.curdir or relative.split(os.sep)[0] == os.pardir:
        raise OutputWriteError("the output folder is not inside the folder nb2pkg may write to",
                               path=output, hint="choose a folder inside it")
    return relative.split(os.sep)


def _enter(parent_fd: int, name: str, create: bool) -> int:
    """Open the folder ``name`` in ``parent_fd``, creating it if missing; never through a link."""
    try:
        return os.open(name, _DIRECTORY | _NO_FOLLOW, dir_fd=parent_fd)
    except FileNotFoundError:
        if not create:
            raise
    with suppress(FileExistsError):
        os.mkdir(name, 0o777, dir_fd=parent_fd)
    return os.open(name, _DIRECTORY | _NO_FOLLOW, dir_fd=parent_fd)


@contextmanager
def _locked(folder: _Folder, name: str, output: Path) -> Iterator[None]:
    """Hold ``.<name>.nb2pkg-lock`` beside the output: concurrent writers of one output take
    turns instead of replacing each other's half-done work. It is an empty folder (flock works
    on folders too), so whatever cleans up a killed run's folders removes it alike; it goes when
    released."""
    if fcntl is None:  # no flock (Windows): taking turns is left to the user
        yield
        return
    lock = f".{name}.nb2pkg-lock"
    deadline = time.monotonic() + LOCK_TIMEOUT
    while True:
        try:
            with suppress(FileExistsError):
                os.mkdir(lock, 0o700, dir_fd=folder.fd)
            fd = os.open(lock, _DIRECTORY | _NO_FOLLOW, dir_fd=folder.fd)
        except FileNotFoundError:  # removed by its holder just now: again
            continue
        except OSError as exc:
            raise OutputWriteError(f"cannot create the lock {lock}: {exc.strerror}",
                                   path=output, hint="check permissions") from None
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(fd)
            if time.monotonic() >= deadline:
                raise OutputExistsError(
                    "another nb2pkg run is writing this output folder", path=output,
                    hint=f"it has held {lock} for over {LOCK_TIMEOUT:.0f} s; try again later"
                    ) from None
            time.sleep(0.05)
            continue
        except OSError:  # no flock on this file system (some network ones): go on unserialized
            break
        # The holder before us removes the lock as it lets go: then lock the one now in place.
        if _same_file(os.fstat(fd), folder.fd, lock):
            break
        os.close(fd)
    try:
        yield
    finally:
        with suppress(OSError):
            os.rmdir(lock, dir_fd=folder.fd)
        os.close(fd)  # releases the lock


def _recover(folder: _Folder, name: str) -> None:
    """Put right what a writer of this output, killed mid-way, left beside it (lock held)."""
    leftover = re.compile(re.escape(f".{name}.nb2pkg-") + r"(old-)?[a-z0-9_]{8}")
    stale = [(entry, match.group(1) is not None) for entry in sorted(os.listdir(folder.fd))
             if (match := leftover.fullmatch(entry))]
    if not stale:
        return
    # An empty output folder beside them is the name a killed writer had just claimed for its
    # final rename without --force (_rename_no_replace); rmdir removes it only while empty.
    with suppress(OSError):
        os.rmdir(name, dir_fd=folder.fd)
    for entry, moved_aside in stale:
        if not moved_aside or _restore(folder, name, entry):
            _remove_tree(folder.fd, entry)


def _restore(folder: _Folder, name: str, entry: str) -> bool:
    """Put the previous output kept in ``entry`` back when the output is missing; True when
    ``entry`` may go (nothing in it, or what replaced it is complete), False to keep it."""
    try:
        kept = os.open(entry, _DIRECTORY | _NO_FOLLOW, dir_fd=folder.fd)
    except OSError:  # not a folder of ours, only a name like ours
        return True
    try:
        if not _lexists(kept, name):
            return True
        if not _lexists(folder.fd, name):  # killed between the two renames of _swap_in
            os.rename(name, name, src_dir_fd=kept, dst_dir_fd=folder.fd)
            return True
        # Killed after the new output went in, before this folder was removed: the output is
        # the folder _swap_in recorded. Anything else put there meanwhile: keep both.
        try:
            marker = os.open(_MARKER, os.O_RDONLY | _NO_FOLLOW, dir_fd=kept)
        except OSError:
            return False
        try:
            recorded = os.read(marker, 100).decode(errors="replace")
        finally:
            os.close(marker)
        now = os.stat(name, dir_fd=folder.fd, follow_symlinks=False)
        return recorded == f"{now.st_dev}:{now.st_ino}"
    finally:
        os.close(kept)


def _existing_output(folder: _Folder, name: str, output: Path, force: bool) -> bool:
    """Whether there is an output to replace; refuse what must not be replaced."""
    try:
        found = os.stat(name, dir_fd=folder.fd, follow_symlinks=False)
    except FileNotFoundError:
        return False
    if stat.S_ISLNK(found.st_mode):  # resolved before: it became a link while nb2pkg worked
        raise OutputExistsError("the output is a symbolic link", path=output,
                                hint="give the folder it points to, or choose another folder")
    if not stat.S_ISDIR(found.st_mode):
        raise OutputExistsError("output exists and is not a folder", path=output,
                                hint="choose another path")
    if not force:
        raise OutputExistsError("output folder already exists", path=output,
                                hint="pass --force to replace it, or choose another folder")
    return True


def _stage(folder: _Folder, name: str, files: Files, output: Path) -> str:
    """A complete copy of the project in a new staging folder beside the output."""
    try:
        staging = tempfile.mkdtemp(prefix=f".{name}.nb2pkg-", dir=folder.path)
    except OSError as exc:
        raise OutputWriteError(f"cannot create the output folder: {exc.strerror}", path=output,
                               hint="check permissions and free disk space") from None
    made = {Path(staging)}  # folders made so far: ~60 files share ~20 of them
    try:
        for relative, content in sorted(files.items()):
            if os.path.isabs(relative) or os.pardir in Path(relative).parts:
                raise OutputWriteError(f"refusing to write {relative!r} outside the output folder",
                                       path=output, hint="this is a bug in nb2pkg; please report it")
            target = Path(staging, relative)
            if target.parent not in made:
                target.parent.mkdir(parents=True, exist_ok=True)
                made.update(target.parents)
            if isinstance(content, bytes):
                target.write_bytes(content)
            else:
                target.write_text(content, encoding="utf-8", newline="\n")
        os.chmod(staging, 0o755)
    except BaseException as exc:  # also Ctrl-C: never leave the staging folder behind
        _remove_tree(folder.fd, os.path.basename(staging))
        if isinstance(exc, OSError):
            raise _write_error(exc, output) from None
        raise
    return staging


def _swap_in(folder: _Folder, name: str, staging: str, replacing: bool, output: Path,
             keep_previous: str | None = None) -> None:
    """Move the staging folder to the output's name, the previous output (if any) aside first;
    with ``keep_previous``, the previous output then moves to that path inside the new one."""
    target = os.path.join(folder.path, name)
    old: str | None = None
    try:
        _check_beneath_root(folder, output)
        if replacing:
            old = tempfile.mkdtemp(prefix=f".{name}.nb2pkg-old-", dir=folder.path)
            _record_replacement(old, staging, keep=keep_previous is not None)
            os.rename(target, os.path.join(old, name))
            # --force consents to replacing whatever is at the name: a plain rename, which fails
            # only on a folder someone filled since. A kill right here leaves the name free and
            # the previous output in `old`, which _recover puts back.
            os.rename(staging, target)
        else:
            _rename_no_replace(staging, target)
    except BaseException as exc:
        _remove_tree(folder.fd, os.path.basename(staging))
        kept = old is not None and not _put_back(folder, name, old)
        if isinstance(exc, FileExistsError) or (  # someone else created the output meanwhile
                isinstance(exc, OSError) and exc.errno == errno.ENOTEMPTY):
            where = f"; the previous output is kept in {os.path.basename(old or '')}" if kept else ""
            raise OutputExistsError(f"the output folder was created by someone else while nb2pkg "
                                    f"wrote it; nothing was replaced{where}", path=output,
                                    hint="look at it, then convert again") from None
        if isinstance(exc, OSError):
            raise _write_error(exc, output) from None
        raise
    if old is not None and keep_previous is not None:
        _keep_previous(folder, name, old, keep_previous)
    elif old is not None:
        _remove_tree(folder.fd, os.path.basename(old))


def _keep_previous(folder: _Folder, name: str, old: str, keep: str) -> None:
    """Move the replaced project from ``old`` to ``keep`` inside the new one; the copy an
    earlier update kept there goes (it is the project two updates ago)."""
    previous = os.path.join(old, name)
    with suppress(OSError):  # the older backup inside the previous project
        inner = os.open(os.path.join(previous, os.path.dirname(keep)), _DIRECTORY | _NO_FOLLOW)
        try:
            _remove_tree(inner, os.path.basename(keep))
        finally:
            os.close(inner)
    target = os.path.join(folder.path, name, keep)
    try:
        os.makedirs(os.path.dirname(target), exist_ok=True)
        os.rename(previous, target)
    except OSError:  # the previous project stays where it is, beside the output: never lost
        return
    _remove_tree(folder.fd, os.path.basename(old))


def _record_replacement(old: str, staging: str, keep: bool = False) -> None:
    """Note in ``old`` which folder replaces the output, for _restore after a kill. An update
    (``keep``) writes a record _restore never matches, so a kill before the previous project
    reached its place inside the new one leaves it beside, never removed."""
    new = os.stat(staging)
    fd = os.open(os.path.join(old, _MARKER), os.O_WRONLY | os.O_CREAT | os.O_EXCL | _NO_FOLLOW,
                 0o600)
    try:
        os.write(fd, f"{'kept:' if keep else ''}{new.st_dev}:{new.st_ino}".encode())
    finally:
        os.close(fd)


def _rename_no_replace(source: str, target: str) -> None:
    """Rename ``source`` to ``target`` unless something is at ``target`` by now.

    A plain rename silently replaces an empty folder. mkdir claims the name (FileExistsError when
    anything is there); the rename then replaces only that empty folder of ours.
    """
    os.mkdir(target, 0o700)
    try:
        os.rename(source, target)
    except BaseException:
        with suppress(OSError):  # only while it is still our empty folder
            os.rmdir(target)
        raise


def _put_back(folder: _Folder, name: str, old: str) -> bool:
    """After a failed swap, the previous output back in place; False if its name is taken."""
    previous = os.path.join(old, name)
    if os.path.lexists(previous):
        if _lexists(folder.fd, name):
            return False
        os.rename(previous, os.path.join(folder.path, name))
    _remove_tree(folder.fd, os.path.basename(old))
    return True


def _check_beneath_root(folder: _Folder, output: Path) -> None:
    """Under ``confined_to``: the output's folder is still beneath the root (not moved out)."""
    if folder.root_fd is None:
        return
    root = os.fstat(folder.root_fd)
    opened: list[int] = []
    current = folder.fd
    try:
        for _ in range(4096):
            here = os.fstat(current)
            if (here.st_dev, here.st_ino) == (root.st_dev, root.st_ino):
                return
            opened.append(os.open(os.pardir, _DIRECTORY, dir_fd=current))
            current = opened[-1]
            if _same_file(here, current, os.curdir):  # the top of the file system
                break
    finally:
        for fd in opened:
            os.close(fd)
    raise OutputWriteError("the output's folder was moved out of the folder nb2pkg may write to",
                           path=output, hint="nothing was replaced; choose the folder again")


def _write_error(exc: OSError, output: Path) -> OutputWriteError:
    return OutputWriteError(f"cannot write the project: {exc.strerror or exc}", path=output,
                            hint="check permissions and free disk space; nothing was changed")


def _same_file(known: os.stat_result, dir_fd: int, name: str) -> bool:
    try:
        now = os.stat(name, dir_fd=dir_fd, follow_symlinks=False)
    except FileNotFoundError:
        return False
    return (now.st_dev, now.st_ino) == (known.st_dev, known.st_ino)


def _lexists(dir_fd: int, name: str) -> bool:
    try:
        os.stat(name, dir_fd=dir_fd, follow_symlinks=False)
    except FileNotFoundError:
        return False
    return True


def _remove_tree(dir_fd: int, name: str) -> None:
    """Remove ``name`` in ``dir_fd`` and everything under it, following no link; best effort."""
    try:
        fd = os.open(name, _DIRECTORY | _NO_FOLLOW, dir_fd=dir_fd)
    except FileNotFoundError:
        return
    except OSError:  # a file or a link: only the name goes
        with suppress(OSError):
            os.unlink(name, dir_fd=dir_fd)
        return
    try:
        for entry in list(os.scandir(fd)):
            if entry.is_dir(follow_symlinks=False):
                _remove_tree(fd, entry.name)
            else:
                with suppress(OSError):
                    os.unlink(entry.name, dir_fd=fd)
    finally:
        os.close(fd)
    with suppress(OSError):
        os.rmdir(name, dir_fd=dir_fd)


def write_recordings(project: Path, calls: Sequence[Any], functions: Sequence[str]) -> list[str]:
    """Replace the recorded-call tests of an existing project (``nb2pkg verify`` refresh) and
    REPORT.md's section on them (``functions``: the package's, as ``record.coverage`` takes).

    The new data folder is written whole beside the old one, then swapped in: a run stopped
    half-way leaves the old tests or the new ones (the next run puts a stranded old folder
    back), never a mix or none."""
    from .generate import recorded_section, recorded_test_files, with_recorded_section
    from .record import coverage

    # The helper modules (tests/_recorded.py, ...) belong to the project once written: an
    # existing copy, maybe edited, is kept.
    files = {relative: content for relative, content in recorded_test_files(calls).items()
             if not (Path(relative).name.startswith("_") and (project / relative).exists())}
    prefix = "tests/data/recorded/"
    data = project / prefix
    staging, old = data.with_name(".recorded.nb2pkg-new"), data.with_name(".recorded.nb2pkg-old")
    if old.exists() and not data.exists():  # stopped between the two renames below
        os.replace(old, data)
    for leftover in (staging, old):
        shutil.rmtree(leftover, ignore_errors=True)
    staging.mkdir(parents=True)
    for relative, content in files.items():
        if relative.startswith(prefix):
            _replace_file(staging / relative[len(prefix):], content)
    if data.exists():
        os.replace(data, old)
    os.replace(staging, data)
    shutil.rmtree(old, ignore_errors=True)
    for relative, content in files.items():
        if not relative.startswith(prefix):
            _replace_file(project / relative, content)
    report = project / "REPORT.md"
    if report.is_file():
        section = recorded_section(coverage(functions, calls))
        _replace_file(report, with_recorded_section(report.read_text(encoding="utf-8"), section))
    return sorted(files)


def _replace_file(target: Path, content: str | bytes) -> None:
    target.parent.mkdir(parents=True, exist_ok=True)
    write_atomic(target, content)
