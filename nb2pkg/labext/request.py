"""Validate the requests of the lab extension against the server root, without touching tornado.

Every client-supplied path is resolved once with ``realpath`` (so ``..`` and symlinks are
followed) and must stay inside the server root and out of hidden folders (unless the contents
manager allows them). What was checked is kept as a ``RootPath``: the resolved names below the
root, which ``conversion.py`` then walks without following any link, so a link swapped in after
the check cannot lead outside (docs/security.md, "JupyterLab server").
"""

from __future__ import annotations

import json
import os
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

OPTION_NAMES = ("extract", "pipeline", "verify", "force", "update")
MAX_MANIFEST_BYTES = 16 * 1024 * 1024  # .nb2pkg/manifest.json: hashes of a project's files
MAX_BODY_BYTES = 64 * 1024  # a request is a few paths and flags: anything bigger is refused (413)
MAX_PATH_BYTES = 4096  # PATH_MAX on Linux
MAX_NAME_BYTES = 255  # one file or folder name (NAME_MAX)
MAX_PACKAGE_CHARS = 100
_JOB_ID = re.compile(r"[A-Za-z0-9-]{1,64}")


class RequestError(Exception):
    """A request the extension refuses; ``str()`` is the one-line message sent to the client,
    ``status`` the HTTP status, ``field`` the request field at fault (for the lab's form)."""

    def __init__(self, message: str, status: int = 400, field: str | None = None) -> None:
        super().__init__(message)
        self.status = status
        self.field = field

    def to_dict(self) -> dict[str, Any]:
        return {"message": str(self), **({"field": self.field} if self.field else {})}


@dataclass(frozen=True)
class RootPath:
    """A path inside the server root, as checked: the resolved names below the root."""

    root: str  # the resolved server root
    parts: tuple[str, ...]  # no "", ".", ".." and, when checked, no symbolic link among them

    @property
    def absolute(self) -> Path:
        return Path(self.root, *self.parts)

    @property
    def relative(self) -> str:
        """"/"-separated and relative to the root, as JupyterLab names files."""
        return "/".join(self.parts)


@dataclass(frozen=True)
class ConvertRequest:
    notebook: RootPath  # an existing .ipynb file when checked
    notebook_path: str  # the notebook as the client named it (before symlinks), normalized
    output: RootPath  # a folder or nothing when checked
    name: str | None
    options: dict[str, bool]  # only those the client gave; nb2pkg's defaults apply to the rest
    job: str | None
    allow_hidden: bool = True  # the contents manager's rule, for the files the notebook reads

    @property
    def folder(self) -> RootPath:
        """The notebook's folder, as checked: its relative paths resolve from there."""
        return RootPath(self.notebook.root, self.notebook.parts[:-1])


def resolve_inside(root: str, path: Any, what: str, allow_hidden: bool = True,
                   field: str | None = None) -> RootPath:
    """``root``-relative ``path``, resolved, refused unless inside ``root`` (itself resolved)."""
    if not isinstance(path, str) or not path.strip():
        raise RequestError(f"Give the {what} as a path relative to the Jupyter root.", field=field)
    if "\0" in path:
        raise RequestError(f"The {what} path contains a NUL character.", field=field)
    try:
        size = len(os.fsencode(path))
    except UnicodeError:  # lone surrogates: no file can have that name
        raise RequestError(f"The {what} path is not valid Unicode text.", field=field) from None
    if size > MAX_PATH_BYTES:
        raise RequestError(f"The {what} path is {size} bytes long; at most {MAX_PATH_BYTES} "
                           "are allowed.", field=field)
    if os.path.isabs(path) or path.startswith(("/", "\\")):
        raise RequestError(f"The {what} path must be relative to the Jupyter root, not absolute.",
                           field=field)
    for part in path.split("/"):
        if len(os.fsencode(part)) > MAX_NAME_BYTES:
            raise RequestError(f"A name in the {what} path is longer than {MAX_NAME_BYTES} "
                               "bytes.", field=field)
    given = os.path.normpath(os.path.join(root, path))
    resolved = os.path.realpath(given)
    if os.path.commonpath([root, resolved]) != root:
        raise RequestError(f"The {what} '{path}' is outside the Jupyter root.", field=field)
    # Jupyter's contents manager refuses hidden files and folders unless allow_hidden is set,
    # by the path as given and (links) as resolved: so does nb2pkg.
    if not allow_hidden and (_hidden(given, root) or _hidden(resolved, root)):
        raise RequestError(f"'{path}' is hidden, and this Jupyter server does not serve hidden "
                           "files (ContentsManager.allow_hidden).", status=403, field=field)
    relative = os.path.relpath(resolved, root)
    return RootPath(root, () if relative == os.curdir else tuple(relative.split(os.sep)))


def _hidden(path: str, root: str) -> bool:
    from jupyter_core.paths import is_hidden  # the contents manager's own rule

    if path == root or os.path.commonpath([root, path]) != root:
        return False
    try:
        return is_hidden(path, root)
    except OSError:  # cannot even look at it: as hidden as it gets
        return True


def parse_body(body: bytes) -> dict[str, Any]:
    """The JSON object of a request body."""
    if len(body) > MAX_BODY_BYTES:
        raise RequestError(f"The request body is over {MAX_BODY_BYTES} bytes.", status=413)
    try:
        data = json.loads(body or b"")
    except ValueError:
        raise RequestError("The request body is not valid JSON.") from None
    except RecursionError:
        raise RequestError("The request body is JSON nested too deeply.") from None
    if not isinstance(data, dict):
        raise RequestError("The request body must be a JSON object.")
    return data


def check_notebook(root: str, path: Any, allow_hidden: bool = True) -> RootPath:
    """An existing ``.ipynb`` file inside the root."""
    notebook = resolve_inside(root, path, "notebook", allow_hidden, field="path")
    if not notebook.parts or not notebook.parts[-1].endswith(".ipynb"):
        raise RequestError(f"'{path}' is not a notebook (.ipynb) file.", field="path")
    if not os.path.exists(notebook.absolute):
        raise RequestError(f"The notebook '{path}' does not exist.", status=404, field="path")
    if not os.path.isfile(notebook.absolute):
        raise RequestError(f"'{path}' is not a file.", field="path")
    return notebook


def parse_convert_request(body: bytes, root: str, allow_hidden: bool = True) -> ConvertRequest:
    """Check a ``POST /nb2pkg/convert`` body; raise ``RequestError`` with a message the user
    can act on."""
    data = parse_body(body)
    root = os.path.realpath(root)

    path = data.get("path")
    notebook = check_notebook(root, path, allow_hidden)

    output_arg = data.get("output")
    output = resolve_inside(root, output_arg, "output folder", allow_hidden, field="output")
    # The root itself would be replaced wholesale under `force`. nb2pkg refuses the other two as
    # OutputExistsError, which the lab would answer with an offer to overwrite: a 400 here.
    if not output.parts:
        raise RequestError("The output folder cannot be the Jupyter root itself; name a folder.",
                           field="output")
    if notebook.parts[:len(output.parts)] == output.parts:
        raise RequestError(f"The output folder '{output_arg}' contains the notebook; "
                           "choose a folder beside it.", field="output")
    if os.path.lexists(output.absolute) and not os.path.isdir(output.absolute):
        raise RequestError(f"'{output_arg}' exists and is not a folder.", field="output")

    name = data.get("name")
    if name is not None and not isinstance(name, str):
        raise RequestError("The package name must be a string.", field="name")
    name = (name or "").strip() or None
    if name is not None:
        check_package_name(name)

    options = data.get("options", {})
    if not isinstance(options, dict):
        raise RequestError("'options' must be a JSON object.")
    unknown = sorted(set(options) - set(OPTION_NAMES))
    if unknown:
        raise RequestError(f"Unknown option '{_shown(unknown[0])}'; known: "
                           f"{', '.join(OPTION_NAMES)}.")
    for key, value in options.items():
        if not isinstance(value, bool):
            raise RequestError(f"Option '{key}' must be true or false.")

    job = data.get("job")
    if job is not None and not (isinstance(job, str) and _JOB_ID.fullmatch(job)):
        raise RequestError("'job' must be up to 64 letters, digits or dashes.")

    return ConvertRequest(notebook=notebook, notebook_path=_normalized(str(path)), output=output,
                          name=name, options=dict(options), job=job, allow_hidden=allow_hidden)


def check_package_name(name: str) -> None:
    """Refuse a name nb2pkg would change: the lab shows the name the package will have."""
    from ..refactor.naming import package_name  # the CLI's rule

    if len(name) > MAX_PACKAGE_CHARS:
        raise RequestError(f"The package name is over {MAX_PACKAGE_CHARS} characters.",
                           field="name")
    try:
        name.encode()
    except UnicodeError:
        raise RequestError("The package name is not valid Unicode text.", field="name") from None
    suggested = package_name(name)
    if suggested != name:
        raise RequestError(f"'{name}' cannot name a package; nb2pkg would call it "
                           f"'{suggested}'.", field="name")


def defaults(notebook_path: str) -> dict[str, str]:
    """The package name and output folder the lab suggests for a notebook (root-relative path
    as the client named it): the CLI's default name, a ``<stem>_pkg`` folder beside it."""
    from ..refactor.naming import package_name

    folder, file_name = os.path.split(_normalized(notebook_path))
    stem = file_name[:-len(".ipynb")] if file_name.endswith(".ipynb") else file_name
    return {"name": package_name(stem), "output": "/".join(filter(None, [folder, f"{stem}_pkg"]))}


def holds_conversion_of(output: RootPath, notebook: RootPath) -> bool:
    """Whether ``output`` holds an earlier conversion of ``notebook``: its
    ``.nb2pkg/manifest.json`` (read beneath the root, following no link) names the notebook.
    The lab then offers "Update package" (``nb2pkg update``) instead of replacing the folder."""
    import stat

    from ..beneath import open_beneath
    from ..baseline import MANIFEST, NotConvertedError, parse_manifest

    try:
        fd, _ = open_beneath(output.root, (*output.parts, *MANIFEST.split("/")))
    except OSError:
        return False
    try:
        if not stat.S_ISREG(os.fstat(fd).st_mode) or os.fstat(fd).st_size > MAX_MANIFEST_BYTES:
            return False
        os.set_blocking(fd, True)
        data = os.read(fd, MAX_MANIFEST_BYTES + 1)
    finally:
        os.close(fd)
    try:
        manifest = parse_manifest(data)
    except NotConvertedError:
        return False
    return any(os.path.normpath(os.path.join(output.absolute, p)) == str(notebook.absolute)
               for p in manifest.notebooks)


def _normalized(path: str) -> str:
    return os.path.normpath(path).replace(os.sep, "/")


def _shown(text: str) -> str:
    return text if len(text) <= 40 else text[:37] + "..."
