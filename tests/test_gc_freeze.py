"""The daemon's GC policy: frozen objects are out of the collector's sight until a full round."""

from __future__ import annotations

import gc
import weakref
from collections.abc import Iterator

import pytest

from uptimed.gc_freeze import YOUNG_THRESHOLD, freeze, tune


class Node:
    other: Node | None = None


@pytest.fixture(autouse=True)
def unfrozen() -> Iterator[None]:
    gc.unfreeze()
    yield
    gc.unfreeze()  # the rest of the test process keeps the stock collector


def test_a_frozen_cycle_waits_for_the_full_round() -> None:
    a, b = Node(), Node()
    a.other, b.other = b, a  # a reference cycle: only the cyclic collector can free it
    alive = weakref.ref(a)
    freeze(full=False)
    assert gc.get_freeze_count() > 0
    del a, b
    gc.collect()
    assert alive() is not None  # frozen while alive, so the collector cannot see it
    freeze(full=False)
    assert alive() is not None  # a cheap round walks only what came after the last freeze
    freeze(full=True)
    assert alive() is None


def test_garbage_is_collected_before_freezing() -> None:
    a, b = Node(), Node()
    a.other, b.other = b, a
    alive = weakref.ref(a)
    del a, b
    freeze(full=False)
    assert alive() is None


def test_young_collections_wait_for_many_more_objects_than_pythons_default() -> None:
    before = gc.get_threshold()
    try:
        tune()
        assert gc.get_threshold() == (YOUNG_THRESHOLD, before[1], before[2])
        gc.collect()
        start = gc.get_count()[0]
        kept = [[] for _ in range(5_000)]  # tracked objects, alive: no young collection yet
        assert gc.get_count()[0] >= start + len(kept)
    finally:
        gc.set_threshold(*before)
