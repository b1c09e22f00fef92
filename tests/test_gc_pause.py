"""Pausing the collector (nb2pkg/gc_pause.py): what the pause allocated ends in the oldest
generation, where young collections do not walk it, and cyclic garbage is still collected."""

from __future__ import annotations

import gc
import weakref

from nb2pkg.gc_pause import gc_paused


class Node:
    pass


def test_what_the_pause_allocated_is_old_and_still_collected() -> None:
    assert gc.isenabled()
    with gc_paused():
        assert not gc.isenabled()
        kept = [Node() for _ in range(1000)]
        cycle = Node()
        cycle.me = cycle  # garbage once dropped, freed only by a collection
        alive = weakref.ref(cycle)
        del cycle
    assert gc.isenabled()
    young = {id(o) for o in gc.get_objects(generation=0)}
    assert not any(id(node) in young for node in kept)
    assert any(o is kept[0] for o in gc.get_objects(generation=2))
    gc.collect()
    assert alive() is None


def test_a_pause_inside_a_pause_leaves_the_collector_off() -> None:
    with gc_paused():
        with gc_paused():
            pass
        assert not gc.isenabled()
    assert gc.isenabled()
