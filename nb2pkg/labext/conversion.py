"""One conversion for the lab, confined to the server root even while others change the files.

The request was checked once (request.py). From then on nothing is looked up by path again:

- the notebook is read once, through a walk from the root that follows no symbolic link
  (``O_NOFOLLOW`` on every name, ``nb2pkg.beneath``), into a private copy in a temporary folder
  of the server's own; the converter reads the notebook only from that copy;
- what the notebook reads and imports (data files, local modules) is found from its real
  folder, as checked, with ``convert(source_folder=..., confine_to=root, allow_hidden=...)``:
  ``nb2pkg.assets`` opens each file by a walk from the root that follows a link only while it
  stays beneath the root, and reads it once; hidden names only if the contents manager allows
  them. ``verify`` runs the original notebook from that folder;
- the package is written under ``write.confined_to(root)``: write_project walks from the root to
  the output's folder the same way, builds the project beside it and renames relative to that
  open folder, after checking it is still beneath the root.

Answers name files relative to the root only: the private copy, the output and the root itself
are replaced by the paths the user knows, in every string of the summary and in messages.
"""

from __future__ import annotations

import asyncio
import contextvars
import copy
import errno
import os
import shutil
import stat
import tempfile
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..beneath import open_beneath
from ..errors import Nb2pkgError, OutputExistsError
from .request import ConvertRequest, RequestError, RootPath

_CHANGED = ("The notebook '{}' changed while it was being converted (a folder or the file was "
            "replaced); try again.")


@dataclass(frozen=True)
class PathNames:
    """Absolute paths of the server, and what the user calls them (root-relative)."""

    pairs: tuple[tuple[str, str], ...]  # longest first

    def relative(self, text: str) -> str:
        for absolute, shown in self.pairs:
            text = text.replace(absolute, shown)
        return text

    def everywhere(self, data: Any) -> Any:
        """``data`` (JSON-able) with every string made relative."""
        if isinstance(data, str):
            return self.relative(data)
        if isinstance(data, list):
            return [self.everywhere(item) for item in data]
        if isinstance(data, dict):
            return {key: self.everywhere(value) for key, value in data.items()}
        return data


def path_names(request: ConvertRequest, copy: Path | None = None) -> PathNames:
    folder = os.path.dirname(request.notebook_path)
    pairs = [(str(request.output.absolute), request.output.relative)]
    if copy is not None:
        pairs += [(str(copy), request.notebook_path),
                  (str(copy.parent) + os.sep, f"{folder}/" if folder else ""),
                  (str(copy.parent), folder or ".")]
    root = request.output.root
    if root != os.sep:  # a root of "/": absolute paths stay as they are, nothing else is cut
        pairs += [(root + os.sep, ""), (root, ".")]
    return PathNames(tuple(sorted(pairs, key=lambda pair: -len(pair[0]))))


@contextmanager
def private_copy(request: ConvertRequest) -> Iterator[Path]:
    """The notebook as checked, copied once into a folder only this server can write.

    The copy keeps the name the user gave the notebook (nb2pkg names the package and the
    refactored notebook after it) and sits one level down a private folder: whatever still
    looks beside the notebook's path rather than in ``source_folder`` (``%pip install -r``
    files, by ``nb2pkg.dependencies``) finds nothing of anyone else's.
    """
    fd = _open_beneath(request.notebook)
    try:
        private = tempfile.mkdtemp(prefix="nb2pkg-lab-")
        try:
            copy = Path(private, "notebook", os.path.basename(request.notebook_path))
            copy.parent.mkdir()
            with open(fd, "rb", closefd=False) as source, open(copy, "xb") as target:
                shutil.copyfileobj(source, target)
            yield copy
        finally:
            shutil.rmtree(private, ignore_errors=True)
    finally:
        os.close(fd)


def _open_beneath(notebook: RootPath) -> int:
    """An fd of the regular file ``notebook`` names, reached from the root through no link."""
    shown = "/".join(notebook.parts)
    try:
        fd, _ = open_beneath(notebook.root, notebook.parts)
    except OSError as exc:
        if exc.errno in (errno.ELOOP, errno.ENOTDIR, errno.EMLINK):
            raise RequestError(_CHANGED.format(shown), status=409) from None
        if exc.errno == errno.ENOENT:
            raise RequestError(f"The notebook '{shown}' does not exist.", status=404) from None
        raise RequestError(f"Cannot read the notebook '{shown}': {exc.strerror}.",
                           status=422) from None
    if not stat.S_ISREG(os.fstat(fd).st_mode):
        os.close(fd)
        raise RequestError(_CHANGED.format(shown), status=409)
    return fd


def run_conversion(request: ConvertRequest,
                   progress: Callable[[str], None] | None = None) -> dict[str, Any]:
    """Convert one notebook as requested: ``ConvertReport.to_dict()`` with root-relative paths,
    plus the lab's paths. Every refusal is a ``RequestError`` (409 output exists, 422 nb2pkg
    refused), its message with root-relative paths."""
    from ..api import ConvertOptions, convert  # heavy (libcst, jinja2): only when first used
    from ..write import confined_to

    if request.options.get("update"):
        return run_update(request, progress)
    options = ConvertOptions(name=request.name, **request.options)  # type: ignore[arg-type]
    with private_copy(request) as copy:
        names = path_names(request, copy)
        say = (lambda message: progress(names.relative(message))) if progress else None

        def convert_confined() -> Any:
            with confined_to(request.output.root):
                return convert([copy], request.output.absolute, options, progress=say,
                               source_folder=request.folder.absolute,
                               confine_to=request.notebook.root,
                               allow_hidden=request.allow_hidden)

        try:
            report = _in_own_event_loop(convert_confined)
        except OutputExistsError as error:
            raise RequestError(_shown(error, names), status=409, field="output") from None
        except Nb2pkgError as error:  # nb2pkg refused: unreadable notebook, verification, ...
            raise RequestError(_shown(error, names), status=422) from None
        summary = names.everywhere(report.to_dict())
    summary["lab"] = {
        "output": request.output.relative,
        "readme": f"{request.output.relative}/README.md" if "README.md" in report.files else None,
    }
    return summary


def run_update(request: ConvertRequest,
               progress: Callable[[str], None] | None = None) -> dict[str, Any]:
    """``nb2pkg update`` of the output folder from the notebook: ``UpdateReport.to_dict()``
    with root-relative paths, plus the lab's paths. Refused (409, field ``output``) unless the
    folder holds an earlier conversion of this notebook. Reads and writes stay beneath the root
    (``update(confine_to=root)``); the project as it was is kept in its ``.nb2pkg/previous``."""
    from ..update import update
    from .request import holds_conversion_of

    if not holds_conversion_of(request.output, request.notebook):
        raise RequestError(f"'{request.output.relative}' holds no earlier conversion of this "
                           "notebook to update.", status=409, field="output")
    with private_copy(request) as copy:
        names = path_names(request, copy)
        say = (lambda message: progress(names.relative(message))) if progress else None
        try:
            report = _in_own_event_loop(lambda: update(
                request.output.absolute, [copy], progress=say,
                confine_to=request.output.root, source_folder=request.folder.absolute,
                allow_hidden=request.allow_hidden))
        except Nb2pkgError as error:
            raise RequestError(_shown(error, names), status=422) from None
        summary = names.everywhere(report.to_dict())
    summary["lab"] = {
        "output": request.output.relative,
        "readme": f"{request.output.relative}/README.md"
        if os.path.isfile(request.output.absolute / "README.md") else None,
    }
    return summary


def _shown(error: Nb2pkgError, names: PathNames) -> str:
    """The error's one line with root-relative paths. A path that is still absolute was reached
    through a link swapped in meanwhile: not named (nothing was written there)."""
    if error.path is not None:
        error = copy.copy(error)
        shown = names.relative(str(error.path))
        error.path = "(a path outside the Jupyter root)" if os.path.isabs(shown) else shown
    return names.relative(str(error))


def _in_own_event_loop(work: Callable[[], Any]) -> Any:
    """Run ``work`` in an empty context, with an event loop of its own for this thread.

    Verifying runs notebooks with nbclient, whose ``run_sync`` (jupyter_core) takes the loop
    from a context variable. ``asyncio.to_thread`` copies the server thread's context into the
    worker, and under ``jupyter server`` that variable holds the server's own, running loop:
    "This event loop is already running". In an empty context ``ensure_event_loop`` makes a new
    loop, which every ``run_sync`` of this conversion then shares; it is closed at the end.
    """
    def run() -> Any:
        from jupyter_core.utils import ensure_event_loop

        loop = ensure_event_loop()
        try:
            return work()
        finally:
            asyncio.set_event_loop(None)
            loop.close()

    return contextvars.Context().run(run)
