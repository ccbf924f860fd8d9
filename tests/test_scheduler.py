"""Start-up placement of each site's first check: on its own grid, spread, never late."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from uptimed.models import Site
from uptimed.scheduler import first_run_at

NOW = datetime(2025, 2, 15, 6, 30, tzinfo=UTC)
NOW_MS = int(NOW.timestamp() * 1000)


def site(site_id: int, interval: int) -> Site:
    return Site(id=site_id, url="http://x", name="x", check_interval_seconds=interval, created_at=0)


def test_resumes_own_grid_when_last_check_is_recent() -> None:
    last = NOW_MS - 20_000  # checked 20 s ago, every 60 s
    assert first_run_at(site(1, 60), last, NOW, spread=60) == NOW + timedelta(seconds=40)


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
