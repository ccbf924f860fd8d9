"""Confirmation thresholds: the pure state machine as a table, and its count across a restart
(a real SQLite file: the count is read back from the history rows)."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import pytest

from tests.conftest import ManualClock
from uptimed.alerting import counting_failures, next_state
from uptimed.db import Store
from uptimed.db.history import history_values
from uptimed.db.maintenance import Retention
from uptimed.db.reports import first_result
from uptimed.followups import Followups
from uptimed.models import CheckResult, SiteIn, SiteState, Status

INI, U, D = Status.INITIAL, Status.UP, Status.DOWN


def run(
    start: Status, checks: str, *, fail: int = 1, ok: int = 1, streak: int = 0
) -> tuple[list[tuple[Status, int]], list[tuple[Status, Status, int]]]:
    """Feed checks ("u"/"d") through the state machine; the (status, streak) after each, and
    each transition as (previous, current, checks that confirmed it)."""
    state = SiteState(status=start, since=0, streak=streak)
    states, transitions = [], []
    for i, c in enumerate(checks, start=1):
        seen = U if c == "u" else D
        result = CheckResult(
            status=seen, checked_at=i * 1000, response_time_ms=5, reason=None if seen is U else "x"
        )
        state, transition = next_state(
            1, state, result, failure_threshold=fail, success_threshold=ok
        )
        states.append((state.status, state.streak))
        if transition is not None:
            transitions.append((transition.previous, transition.current, transition.checks))
            assert state.since == transition.at == i * 1000  # the state begins at its change
    return states, transitions


@pytest.mark.parametrize(
    ("start", "checks", "fail", "ok", "states", "transitions"),
    [
        # thresholds of 1: every change at once (what the seed did)
        (U, "d", 1, 1, [(D, 0)], [(U, D, 1)]),
        (D, "u", 1, 1, [(U, 0)], [(D, U, 1)]),
        # failure_threshold 3: two failures are counted, the third turns it DOWN
        (U, "ddd", 3, 1, [(U, 1), (U, 2), (D, 0)], [(U, D, 3)]),
        # a flap (fail, ok, fail) never reaches 2
        (U, "dudud", 2, 1, [(U, 1), (U, 0), (U, 1), (U, 0), (U, 1)], []),
        # success_threshold 2: one good check is counted, the second turns it UP
        (D, "uu", 1, 2, [(D, 1), (U, 0)], [(D, U, 2)]),
        (D, "udu", 1, 2, [(D, 1), (D, 0), (D, 1)], []),
        # a new site: DOWN only once confirmed, UP at its first good check
        (INI, "dd", 3, 1, [(INI, 1), (INI, 2)], []),
        (INI, "ddd", 3, 3, [(INI, 1), (INI, 2), (D, 0)], [(INI, D, 3)]),
        (INI, "ddu", 3, 3, [(INI, 1), (INI, 2), (U, 0)], [(INI, U, 1)]),
        # checks that agree with the status count nothing
        (U, "uuu", 3, 3, [(U, 0), (U, 0), (U, 0)], []),
        (D, "ddd", 3, 3, [(D, 0), (D, 0), (D, 0)], []),
        # the maximum, 10
        (U, "d" * 10, 10, 1, [(U, n) for n in range(1, 10)] + [(D, 0)], [(U, D, 10)]),
    ],
    ids=[
        "one-down",
        "one-up",
        "three-down",
        "flap",
        "two-up",
        "up-flap",
        "initial-counting",
        "initial-down",
        "initial-up-at-once",
        "up-steady",
        "down-steady",
        "ten",
    ],
)
def test_thresholds(
    start: Status,
    checks: str,
    fail: int,
    ok: int,
    states: list[tuple[Status, int]],
    transitions: list[tuple[Status, Status, int]],
) -> None:
    assert run(start, checks, fail=fail, ok=ok) == (states, transitions)


def test_a_count_restored_mid_way_goes_on_from_there() -> None:
    """A restart after two of three failures: the third turns the site DOWN."""
    assert run(U, "d", fail=3, streak=2) == ([(D, 0)], [(U, D, 3)])
    assert run(D, "u", ok=3, streak=2) == ([(U, 0)], [(D, U, 3)])


def test_a_lowered_threshold_is_met_by_the_next_disagreeing_check() -> None:
    """A PATCH lowered failure_threshold below the count: the next failure decides."""
    assert run(U, "d", fail=2, streak=4) == ([(D, 0)], [(U, D, 5)])


def test_retries_run_only_while_failures_are_counted() -> None:
    assert counting_failures(SiteState(U, 0, streak=1))
    assert counting_failures(SiteState(INI, 0, streak=2))
    assert not counting_failures(SiteState(U, 0))
    assert not counting_failures(SiteState(D, 0, streak=1))  # good checks after an outage


@pytest.fixture
async def store(tmp_path: Path) -> Store:
    s = await Store.open(tmp_path / "u.db")
    yield s  # type: ignore[misc]
    await s.close()


async def test_a_restart_counts_the_checks_towards_a_threshold_from_history(store: Store) -> None:
    site = await store.insert_site(
        SiteIn(url="http://a.test/", name="A", failure_threshold=3), now=1_000
    )
    other = await store.insert_site(
        SiteIn(url="http://b.test/", name="B", failure_threshold=3), now=1_000
    )
    up = CheckResult(status=U, checked_at=2_000, response_time_ms=5, http_status=200)
    state, transition = next_state(site.id, SiteState(INI, 1_000), up)
    assert transition is not None
    await store.record_transition(site.id, up, state, transition)
    # then: good, failed, good (the count ends), failed, failed: two in a row now
    rows = []
    for at, status in ((3_000, U), (4_000, D), (5_000, U), (6_000, D), (7_000, D)):
        check = CheckResult(status=status, checked_at=at, response_time_ms=5, reason="x")
        rows.append(history_values(site.id, check, state))
    await store.write_checks(rows, [], [])
    # a new site whose first two checks failed, below its threshold: it is still INITIAL
    new_state = SiteState(INI, 1_000)
    await store.write_checks(
        [history_values(other.id, CheckResult(D, at, 5, "x"), new_state) for at in (2_000, 3_000)],
        [],
        [],
    )

    states = await store.site_states()

    assert states[site.id][0] == SiteState(U, 2_000, None, streak=2)
    assert states[site.id][1] == 7_000
    restored, transition = next_state(
        site.id,
        states[site.id][0],
        CheckResult(status=D, checked_at=8_000, response_time_ms=5, reason="x"),
        failure_threshold=3,
    )
    assert transition is not None and (transition.checks, restored.status) == (3, D)
    assert states[other.id] == (SiteState(INI, 1_000, None, streak=2), 3_000)


async def test_a_new_site_is_monitored_from_the_check_that_decided_its_status(
    store: Store,
) -> None:
    """Failures counted while a site is still INITIAL are neither up nor down time."""
    site = await store.insert_site(
        SiteIn(url="http://a.test/", name="A", failure_threshold=3), now=1_000
    )
    new = SiteState(INI, 1_000)
    await store.write_checks(
        [history_values(site.id, CheckResult(D, at, 5, "x"), new) for at in (2_000, 3_000)],
        [],
        [],
    )
    retention = Retention(raw_days=30, minute_days=2, hour_days=90, day_days=1825)
    assert await first_result(store, site, now=3_500, retention=retention) is None
    third = CheckResult(D, 4_000, 5, "x")
    state, transition = next_state(site.id, replace(new, streak=2), third, failure_threshold=3)
    assert transition is not None
    await store.record_transition(site.id, third, state, transition)
    assert await first_result(store, site, now=5_000, retention=retention) == 4_000


async def test_followups_read_a_storm_a_page_at_a_time_and_tell_each_site_once(
    store: Store,
) -> None:
    """Seven sites down for an hour, reminded every minute, read two at a time."""
    ids = []
    for n in range(7):
        site = await store.insert_site(
            SiteIn(url=f"http://s{n}.test/", name=f"S{n}", renotify_every_seconds=60), now=1_000
        )
        down = CheckResult(D, 2_000, 5, "x")
        state, transition = next_state(site.id, SiteState(INI, 1_000), down)
        assert transition is not None
        await store.record_transition(site.id, down, state, transition, message="{}")
        ids.append(site.id)
    clock = ManualClock(wall=3_600.0)
    woken = []
    followups = Followups(store, clock=clock.clock(), wake=lambda: woken.append(1), page=2)

    assert await followups.run() == 7
    assert await followups.run() == 0
    assert woken == [1]
    clock.advance(60)
    assert await followups.run() == 7
