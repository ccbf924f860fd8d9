"""The state machine, as a table: previous state + check result -> new state, transition."""

from __future__ import annotations

import pytest

from uptimed.alerting import next_state
from uptimed.models import CheckResult, SiteState, Status

INI, U, D = Status.INITIAL, Status.UP, Status.DOWN


@pytest.mark.parametrize(
    ("previous", "seen", "transition"),
    [
        (INI, U, (INI, U)),
        (INI, D, (INI, D)),
        (U, U, None),
        (U, D, (U, D)),
        (D, D, None),
        (D, U, (D, U)),
    ],
    ids=["initial-up", "initial-down", "up-up", "up-down", "down-down", "down-up"],
)
def test_transitions(
    previous: Status, seen: Status, transition: tuple[Status, Status] | None
) -> None:
    before = SiteState(status=previous, since=1_000)
    reason = "HTTP 503" if seen is D else None
    result = CheckResult(status=seen, checked_at=5_000, response_time_ms=12, reason=reason)

    state, got = next_state(7, before, result)

    if transition is None:
        assert got is None
        assert state == before  # the status keeps its original start
    else:
        assert got is not None
        assert (got.previous, got.current) == transition
        assert (got.site_id, got.at, got.previous_since) == (7, 5_000, 1_000)
        assert got.reason == reason
        assert got.response_time_ms == 12
        assert state == SiteState(status=seen, since=5_000)
