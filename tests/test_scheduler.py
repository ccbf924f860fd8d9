"""Start-up placement of each site's first check: on its own grid, spread, never late."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from uptimed.models import Site
from uptimed.scheduler import GridTrigger, first_run_at

NOW = datetime(2025, 2, 15, 6, 30, tzinfo=UTC)
NOW_MS = int(NOW.timestamp() * 1000)


def site(site_id: int, interval: int) -> Site:
    return Site(id=site_id, url="http://x", name="x", check_interval_seconds=interval, created_at=0)


def test_resumes_own_grid_when_last_check_is_recent() -> None:
    last = NOW_MS - 20_000  # checked 20 s ago, every 60 s
    assert first_run_at(site(1, 60), last, NOW, spread=60) == NOW + timedelta(seconds=40)


def test_a_check_due_during_a_short_stop_runs_as_long_after_the_start_as_it_is_late() -> None:
    """A restart takes a few seconds: the checks due meanwhile run in the few seconds after it,
    at the rate they came due (spread afresh, some came a whole window after the start)."""
    for late in (0.5, 2, 7):
        last = NOW_MS - int((60 + late) * 1000)  # every 60 s: due ``late`` s ago
        assert first_run_at(site(1, 60), last, NOW, spread=60) == NOW + timedelta(seconds=late)
    # late by more than the spread window: spread within the window
    assert first_run_at(site(1, 300), NOW_MS - 400_000, NOW, spread=60) < NOW + timedelta(
        seconds=60
    )


@pytest.mark.parametrize(
    "last",
    [None, NOW_MS - 10 * 86_400_000, NOW_MS + 999_999_000],
    ids=["never", "overdue", "future"],
)
def test_overdue_or_unknown_sites_are_spread_within_their_interval(last: int | None) -> None:
    for interval in (1, 30, 300, 86400):
        runs = [first_run_at(site(i, interval), last, NOW, spread=60) for i in range(1, 1001)]
        offsets = sorted((r - NOW).total_seconds() for r in runs)
        window = min(interval, 60)
        assert offsets[0] >= 0
        assert offsets[-1] < window
        # Spread, not bunched: every tenth of the window holds some first checks.
        buckets = {int(o / window * 10) for o in offsets}
        assert buckets == set(range(10))


def test_the_grid_holds_after_a_retry_and_a_long_gap_is_skipped_in_one_step() -> None:
    start = datetime(2026, 1, 1, tzinfo=UTC)
    trigger = GridTrigger(seconds=300, start_date=start, timezone=UTC)
    at = start.__add__
    # a retry 20 s after a grid point is followed by the next grid point, not by retry + 300 s
    retry = at(timedelta(seconds=320))
    assert trigger.get_next_fire_time(retry, retry) == at(timedelta(seconds=600))
    on_grid = at(timedelta(seconds=600))
    assert trigger.get_next_fire_time(on_grid, on_grid) == at(timedelta(seconds=900))
    # a day without runs (a suspended VM): the last point missed, then the next; no 288 steps
    later = at(timedelta(days=1, seconds=10))
    assert trigger.get_next_fire_time(on_grid, later) == at(timedelta(days=1))
    assert trigger.get_next_fire_time(at(timedelta(days=1)), later) == at(
        timedelta(days=1, seconds=300)
    )
    # grid points of a fractional sum are not mistaken for the one before (float error)
    tenth = GridTrigger(seconds=1, start_date=start, timezone=UTC)
    point = at(timedelta(seconds=3))
    assert tenth.get_next_fire_time(point, point) == at(timedelta(seconds=4))


def test_a_restart_while_failures_are_counted_checks_again_after_the_retry_interval() -> None:
    site = Site.model_validate(
        {
            "id": 1,
            "url": "http://a.test/",
            "name": "a",
            "created_at": 0,
            "check_interval_seconds": 300,
            "failure_threshold": 3,
            "retry_interval_seconds": 20,
        }
    )
    now = datetime(2026, 1, 1, tzinfo=UTC)
    last = int((now - timedelta(seconds=5)).timestamp() * 1000)
    assert first_run_at(site, last, now, 60, retrying=True) == now + timedelta(seconds=15)
    assert first_run_at(site, last, now, 60) == now + timedelta(seconds=295)
