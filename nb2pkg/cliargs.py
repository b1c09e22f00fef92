"""Argument types shared by the command modules (``cli``, ``update_cli``, ``pipeline.cli``)."""

from __future__ import annotations

import argparse
from pathlib import Path


def given_path(text: str) -> Path:
    """A path argument. An empty one is refused: ``Path("")`` is the current folder, so a
    script passing an unset variable would convert, or with ``--force`` replace, that folder."""
    if not text.strip():
        raise argparse.ArgumentTypeError("an empty path was given (`.` names the current folder)")
    return Path(text)
