"""Validate a ``POST /nb2pkg/convert`` body against the server root, without touching tornado.

Every client-supplied path is resolved with ``realpath`` (so ``..`` and symlinks are followed)
and must stay inside the server root; nothing outside it is ever read or written.
"""

from __future__ import annotations

import json
import os
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

OPTION_NAMES = ("extract", "pipeline", "verify", "force")
_JOB_ID = re.compile(r"[A-Za-z0-9-]{1,64}")


class RequestError(Exception):
    """A request the extension refuses (400); ``str()`` is the message sent to the client."""


@dataclass(frozen=True)
class ConvertRequest:
    notebook: Path  # absolute, resolved, inside the root, an existing .ipynb file
    output: Path  # absolute, resolved, inside the root (may not exist yet)
    output_path: str  # the output folder relative to the root, "/"-separated, for the client
    name: str | None
    options: dict[str, bool]  # only those the client gave; nb2pkg's defaults apply to the rest
    job: str | None


def resolve_inside(root: str, path: Any, what: str) -> str:
    """``root``-relative ``path`` as a resolved absolute path, refused unless inside ``root``.

    ``root`` must already be resolved (``os.path.realpath``).
    """
    if not isinstance(path, str) or not path.strip():
        raise RequestError(f"Give the {what} as a path relative to the Jupyter root.")
    if "\0" in path:
        raise RequestError(f"The {what} path contains a NUL character.")
    if os.path.isabs(path) or path.startswith(("/", "\\")):
        raise RequestError(f"The {what} path must be relative to the Jupyter root, not absolute.")
    resolved = os.path.realpath(os.path.join(root, path))
    if os.path.commonpath([root, resolved]) != root:
        raise RequestError(f"The {what} '{path}' is outside the Jupyter root.")
    return resolved


def parse_convert_request(body: bytes, root: str) -> ConvertRequest:
    """Check a request body; raise ``RequestError`` with a message the user can act on."""
    try:
        data = json.loads(body or b"")
    except ValueError:
        raise RequestError("The request body is not valid JSON.") from None
    if not isinstance(data, dict):
        raise RequestError("The request body must be a JSON object.")
    root = os.path.realpath(root)

    path = data.get("path")
    notebook = resolve_inside(root, path, "notebook")
    if not notebook.endswith(".ipynb"):
        raise RequestError(f"'{path}' is not a notebook (.ipynb) file.")
    if not os.path.exists(notebook):
        raise RequestError(f"The notebook '{path}' does not exist.")
    if not os.path.isfile(notebook):
        raise RequestError(f"'{path}' is not a file.")

    output_arg = data.get("output")
    output = resolve_inside(root, output_arg, "output folder")
    # The root itself would be replaced wholesale under `force`. nb2pkg refuses the other two as
    # OutputExistsError, which the lab would answer with an offer to overwrite: a 400 here.
    if output == root:
        raise RequestError("The output folder cannot be the Jupyter root itself; name a folder.")
    if os.path.commonpath([output, notebook]) == output:
        raise RequestError(f"The output folder '{output_arg}' contains the notebook; "
                           "choose a folder beside it.")
    if os.path.exists(output) and not os.path.isdir(output):
        raise RequestError(f"'{output_arg}' exists and is not a folder.")

    name = data.get("name")
    if name is not None and not isinstance(name, str):
        raise RequestError("The package name must be a string.")
    name = (name or "").strip() or None

    options = data.get("options", {})
    if not isinstance(options, dict):
        raise RequestError("'options' must be a JSON object.")
    unknown = sorted(set(options) - set(OPTION_NAMES))
    if unknown:
        raise RequestError(f"Unknown option '{unknown[0]}'; known: {', '.join(OPTION_NAMES)}.")
    for key, value in options.items():
        if not isinstance(value, bool):
            raise RequestError(f"Option '{key}' must be true or false.")

    job = data.get("job")
    if job is not None and not (isinstance(job, str) and _JOB_ID.fullmatch(job)):
        raise RequestError("'job' must be up to 64 letters, digits or dashes.")

    return ConvertRequest(
        notebook=Path(notebook),
        output=Path(output),
        output_path=Path(os.path.relpath(output, root)).as_posix(),
        name=name,
        options=dict(options),
        job=job,
    )
