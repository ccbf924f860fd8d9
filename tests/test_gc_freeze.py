"""The daemon's GC policy: frozen objects are out of the collector's sight until a full round."""

from __future__ import annotations

import gc
import weakref
from collections.abc import Iterator

import pytest

from uptimed.gc_freeze import freeze


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
