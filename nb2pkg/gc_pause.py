"""Pausing the cyclic garbage collector while analyses are built (shared by the entry points)."""

from __future__ import annotations

import contextlib
import gc
from typing import Iterator


@contextlib.contextmanager
def gc_paused() -> Iterator[None]:
    """Pause the cyclic garbage collector while building analyses.

    Syntax trees and records hold no reference cycles, so reference counting frees them; but
    the collector still walks every tree kept so far on each full collection, which made the
    analysis of 10,000 cells spend more than half its time in it (docs/bench.md).
    """
    enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if enabled:
            gc.enable()
