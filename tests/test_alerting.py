"""The state machine, as a table: previous state + check result -> new state, transition."""

from __future__ import annotations

import pytest

from uptimed.alerting import event_for, next_state
from uptimed.models import CheckResult, EventKind, Site, SiteState, Status, Transition

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
        assert state == SiteState(status=seen, since=5_000, reason=reason)


def test_a_recovery_names_the_outage_and_a_timeout_shows_no_response_time() -> None:
    site = Site(id=7, url="http://x", name="Shop", created_at=0)
    up = SiteState(status=U, since=1_000)
    timeout = CheckResult(status=D, checked_at=5_000, response_time_ms=10_000, reason="timeout")
    down, went_down = next_state(7, up, timeout)
    assert went_down is not None
    alert = event_for(site, went_down)
    assert (alert.reason, alert.response_time_ms) == ("timeout", None)  # no answer, no time

    still = CheckResult(status=D, checked_at=6_000, response_time_ms=9, reason="HTTP 503")
    down, unchanged = next_state(7, down, still)
    assert unchanged is None and down.reason == "timeout"  # the outage's first reason stays

    ok = CheckResult(status=U, checked_at=9_000, response_time_ms=40, http_status=200)
    _, recovered = next_state(7, down, ok)
    assert recovered is not None
    recovery = event_for(site, recovered)
    assert (recovery.kind, recovery.reason, recovery.response_time_ms) == (
        EventKind.UP,
        "timeout",
        40,
    )
    assert recovery.down_since == 5_000


@pytest.mark.parametrize(
    ("previous", "current", "kind", "down_since"),
    [
        (INI, U, EventKind.STARTED, None),
        (INI, D, EventKind.STARTED, 5_000),
        (U, D, EventKind.DOWN, 5_000),
        (D, U, EventKind.UP, 1_000),
    ],
    ids=["started-up", "started-down", "down", "recovery"],
)
def test_event_for_transition(
    previous: Status, current: Status, kind: EventKind, down_since: int | None
) -> None:
    site = Site(id=7, url="http://x", name="Shop", created_at=0)
    transition = Transition(
        site_id=7,
        previous=previous,
        current=current,
        at=5_000,
        previous_since=1_000,
        reason="HTTP 503" if current is D else None,
        response_time_ms=12,
        http_status=503 if current is D else 200,
        previous_reason="timeout" if previous is D else None,
    )
    event = event_for(site, transition)
    assert (event.kind, event.status, event.at, event.down_since) == (
        kind,
        current,
        5_000,
        down_since,
    )
    assert event.reason == {D: "HTTP 503", U: "timeout" if previous is D else None}[current]
    assert event.response_time_ms == 12
    assert (event.site_name, event.site_url) == ("Shop", "http://x")
