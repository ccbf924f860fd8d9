"""Keeps Python's cyclic garbage collector off the objects that live as long as the daemon.

A full collection walks every tracked object with the loop stopped. With 20,000 sites (a job,
a trigger, a site and a state each) plus the modules, that took 60-150 ms, several times a
minute at 2,000 checks/s: every check due meanwhile started late (p99 lateness 190 ms).
``gc.freeze()`` moves what is alive out of the collector's sight, so later collections walk
only what came after.

Freezing right after a collection leaks nothing that was garbage then. An object frozen while
alive that later becomes part of a garbage *cycle* (a check in flight at that moment) is not
collected until it is unfrozen, so every ``full_every`` freezes everything is unfrozen and
collected once: that single pause is the price, paid rarely instead of often. Objects freed by
reference counting (most of them, deleted sites included) are freed at once either way.
"""

from __future__ import annotations

import asyncio
import gc
import logging
import time

log = logging.getLogger(__name__)


def freeze(*, full: bool) -> None:
    """Collect, then freeze the survivors; ``full`` first unfreezes, so everything is walked."""
    started = time.perf_counter()
    if full:
        gc.unfreeze()
    gc.collect()
    gc.freeze()
    log.debug(
        "gc freeze full=%s frozen=%d ms=%.1f",
        full,
        gc.get_freeze_count(),
        1000 * (time.perf_counter() - started),
    )


async def keep_frozen(every: float = 60, full_every: int = 60) -> None:
    """Freeze every ``every`` seconds (cheap: it walks only what came since the last freeze),
    and every ``full_every``-th time walk everything (one pause, once an hour by default)."""
    rounds = 0
    while True:
        await asyncio.sleep(every)
        rounds += 1
        freeze(full=rounds % full_every == 0)
