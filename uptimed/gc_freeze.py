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

The young generation is collected every ``YOUNG_THRESHOLD`` tracked objects (net of those freed)
instead of Python's 700. At 2,000 checks/s the default ran some 150 young collections a second;
whatever was alive at that moment (a check in flight, a history row waiting for its batch) moved
up a generation, and every such move brought the next full collection nearer, which walks every
object since the last freeze (all the sites created through the API in the last minute). With
the higher threshold nearly everything a check allocates is freed by reference counting before
a collection comes. At 2,000 checks/s (two runs of each build, alternated): time in collections
about 30 ms a second -> 1 ms (``gc.callbacks``), check lateness p99 21-24 -> 11 ms; CPU per
check 218 and 248 -> 221 and 194 us, within the machine's noise.
"""

from __future__ import annotations

import asyncio
import gc
import logging
import time

log = logging.getLogger(__name__)


YOUNG_THRESHOLD = 20_000  # garbage cycles wait for at most this many objects: a few MiB


def tune() -> None:
    """Collect the young generation less often (see above); the older ones keep their ratios."""
    _, middle, old = gc.get_threshold()
    gc.set_threshold(YOUNG_THRESHOLD, middle, old)


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
