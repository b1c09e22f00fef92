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
    analysis of 10,000 cells spend more than half its time in it (docs/bench.md). On the way
    out, what was allocated meanwhile moves to the oldest generation (through ``gc.freeze``,
    so objects another caller had frozen are unfrozen too: nothing in nb2pkg's processes does).
    """
    enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if enabled:
            # Everything allocated meanwhile is young: the first collections would walk it all
            # (0.1 s at 600 cells) and free next to nothing. It goes to the oldest generation
            # instead, which only a full collection walks (freezing and unfreezing does that).
            gc.freeze()
            gc.unfreeze()
            gc.enable()
