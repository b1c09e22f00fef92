"""Errors nb2pkg raises. Each ``str()`` is one line a user can act on: the file, the cell and the fix.

Only the CLI (and the lab extension) turn these into messages and exit codes; the library raises them.
"""

from __future__ import annotations

import re
from pathlib import Path

# Line breaks, other control characters and unpaired surrogates (undecodable bytes in file names)
# would split the message or fail to print: they are shown escaped, as Python writes them.
_UNPRINTABLE = re.compile("[\x00-\x1f\x7f-\x9f\u2028\u2029\ud800-\udfff]")


def one_line(text: str) -> str:
    """``text`` with line breaks, control characters and lone surrogates escaped (``\\n``)."""
    return _UNPRINTABLE.sub(lambda match: repr(match.group())[1:-1], text)


class Terminated(KeyboardInterrupt):
    """The process was asked to stop (SIGTERM): it stops as on Ctrl-C, cleaning up on the way
    (scratch folders, kernels, half-written output), and the CLI exits with 128 + 15."""


class Nb2pkgError(Exception):
    """Base class of every error nb2pkg reports to users (never a traceback)."""

    exit_code = 2

    def __init__(self, message: str, *, path: Path | str | None = None, cell: int | None = None,
                 hint: str | None = None) -> None:
        self.message = message
        self.path = str(path) if path is not None else None
        self.cell = cell
        self.hint = hint
        super().__init__(str(self))

    def __str__(self) -> str:
        where = self.path or ""
        if self.cell is not None:
            where = f"{where}: cell {self.cell}" if where else f"cell {self.cell}"
        text = f"{where}: {self.message}" if where else self.message
        if self.hint:
            text += f" ({self.hint})"
        return one_line(text)


class NotebookError(Nb2pkgError):
    """The notebook cannot be read or is not one nb2pkg can convert."""


class UnsupportedNotebook(NotebookError):
    """A readable notebook that nb2pkg does not handle (a non-Python kernel): refused, not broken."""


class OutputExistsError(Nb2pkgError):
    """The output folder exists and ``--force`` was not given."""


class OutputWriteError(Nb2pkgError):
    """The output folder could not be written (read-only, disk full, ...)."""


class VerificationError(Nb2pkgError):
    """Executing a notebook for verification failed before any comparison was possible."""


class PipelineError(Nb2pkgError):
    """A pipeline definition is invalid or a stage failed."""
