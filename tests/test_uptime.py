"""Uptime knows nothing before a site's first finished check: the INITIAL time is not monitored,
at every resolution (raw rows, hour and day rollups), and a window with nothing monitored says
null rather than 100. Paused time is not monitored either, nor down. Real SQLite file,
synthetic checks at chosen times, exact figures."""

from __future__ import annotations

from pathlib import Path

import pytest
from aiohttp.test_utils import TestClient

from tests.conftest import AppClient, ManualClock, Target, eventually
from tests.test_reports import T0, Sim, make_site, window_of
from uptimed.config import Settings
from uptimed.db import Store, maintenance
from uptimed.db.maintenance import DAY, HOUR, MINUTE, Retention
from uptimed.db.reports import incidents_page
from uptimed.models import SiteIn, UptimeWindow

SECOND = 1000
UNKNOWN_TIMES = {"avg": None, "p95": None, "p95_exact": True, "max": None}


@pytest.fixture
async def store(tmp_path: Path) -> Store:
    s = await Store.open(tmp_path / "u.db")
    yield s  # type: ignore[misc]
    await s.close()


def figures(w: UptimeWindow) -> dict[str, object]:
    return w.model_dump(exclude={"window", "end", "resolution"})


async def test_nothing_known_before_the_first_check(store: Store) -> None:
    sim = await make_site(store, created=T0)
    site = await store.get_site(sim.site_id)
    now = T0 + 30 * SECOND
    for window in ("30m", "24h", "7d"):
        w = await window_of(store, site, window, now=now, retention=Retention())
        assert figures(w) == {
            "start": now,  # nothing monitored yet: the window is empty
            "uptime_percent": None,
            "checks": 0,
            "checks_down": 0,
            "down_seconds": 0.0,
            "incidents": 0,
            "response_time_ms": UNKNOWN_TIMES,
        }, window


async def test_a_site_never_up_is_zero_percent_up(store: Store) -> None:
    sim = await make_site(store, created=T0)
    await sim.check(T0 + 2 * SECOND, up=False, rtt=40)  # 2 s of INITIAL: not up, not monitored
    await sim.check(T0 + 62 * SECOND, up=False, rtt=60)
    site = await store.get_site(sim.site_id)
    w = await window_of(store, site, "24h", now=T0 + 122 * SECOND, retention=Retention())
    assert figures(w) == {
        "start": T0 + 2 * SECOND,
        "uptime_percent": 0.0,  # was 1.6393: the INITIAL seconds counted as up
        "checks": 2,
        "checks_down": 2,
        "down_seconds": 120.0,
        "incidents": 1,
        "response_time_ms": {"avg": 50.0, "p95": 60, "p95_exact": True, "max": 60},
    }


async def test_raw_figures_count_from_the_first_check(store: Store) -> None:
    sim = await make_site(store, created=T0)
    await sim.check(T0 + 30 * SECOND, up=True, rtt=100)
    await sim.check(T0 + 90 * SECOND, up=False, rtt=300)
    await sim.check(T0 + 150 * SECOND, up=True, rtt=200)
    site = await store.get_site(sim.site_id)
    now = T0 + 200 * SECOND
    day = await window_of(store, site, "24h", now=now, retention=Retention())
    assert figures(day) == {
        "start": T0 + 30 * SECOND,
        "uptime_percent": 64.7059,  # 110 of 170 monitored seconds
        "checks": 3,
        "checks_down": 1,
        "down_seconds": 60.0,
        "incidents": 1,
        "response_time_ms": {"avg": 200.0, "p95": 300, "p95_exact": True, "max": 300},
    }
    minute = await window_of(store, site, "1m", now=now, retention=Retention())
    assert figures(minute) == {
        "start": now - MINUTE,
        "uptime_percent": 83.3333,  # the outage's last 10 of 60 seconds
        "checks": 1,
        "checks_down": 0,
        "down_seconds": 10.0,
        "incidents": 1,
        "response_time_ms": {"avg": 200.0, "p95": 200, "p95_exact": True, "max": 200},
    }
    assert day.resolution == minute.resolution == "raw"


@pytest.mark.parametrize("up", [True, False], ids=["up", "down"])
async def test_a_window_without_a_check_carries_the_known_status(store: Store, up: bool) -> None:
    """Checked before the window began: its status is known, as the incidents table says,
    although no check fell inside (an hourly site, a 30m window)."""
    sim = await make_site(store, created=T0)
    await sim.check(T0 + SECOND, up=up)
    site = await store.get_site(sim.site_id)
    now = T0 + SECOND + 45 * MINUTE
    w = await window_of(store, site, "30m", now=now, retention=Retention())
    assert figures(w) == {
        "start": now - 30 * MINUTE,
        "uptime_percent": 100.0 if up else 0.0,
        "checks": 0,
        "checks_down": 0,
        "down_seconds": 0.0 if up else 1800.0,
        "incidents": 0 if up else 1,
        "response_time_ms": UNKNOWN_TIMES,
    }


# --- rollup resolutions: raw rows (and the INITIAL row) pruned after one day -----------------

HOURLY = Retention(raw_days=1, minute_days=1, hour_days=10, day_days=30)  # 5d window: "1h"
DAILY = Retention(raw_days=1, minute_days=1, hour_days=2, day_days=30)  # 5d window: "1d"
CREATED = T0 + 10 * HOUR + 30 * MINUTE
FIRST = T0 + 13 * HOUR + 15 * MINUTE  # 2h45m of INITIAL (the daemon was down), across hours
NOW = T0 + 3 * DAY


async def checks_every_15_minutes(
    store: Store, retention: Retention, *, down: range = range(0), up: bool = True
) -> Sim:
    """From FIRST to NOW, rolling up and pruning as the daemon would; ``down`` holds the
    indices of failed checks (all of them fail when ``up`` is False)."""
    sim = await make_site(store, created=CREATED)
    for k in range((NOW - FIRST) // (15 * MINUTE) + 1):
        at = FIRST + k * 15 * MINUTE
        await sim.check(at, up=up and k not in down, rtt=100)
        if at % HOUR == 0:
            await maintenance.run(store, at, retention)
    async with store.conn.execute(
        "SELECT count(*) FROM history WHERE site_id = ? AND status = 0", (sim.site_id,)
    ) as cur:
        assert tuple(await cur.fetchone()) == (0,)  # type: ignore[arg-type]  # the INITIAL row is gone: rollups must tell
    return sim


@pytest.mark.parametrize(
    ("retention", "resolution"), [(HOURLY, "1h"), (DAILY, "1d")], ids=["1h", "1d"]
)
async def test_rollups_know_the_first_check_of_a_site_up_ever_since(
    store: Store, retention: Retention, resolution: str
) -> None:
    sim = await checks_every_15_minutes(store, retention)
    site = await store.get_site(sim.site_id)
    w = await window_of(store, site, "5d", now=NOW, retention=retention)
    assert w.resolution == resolution
    assert w.start == FIRST  # the status began with the first check: known to the millisecond
    assert (w.uptime_percent, w.checks, w.checks_down) == (100.0, (NOW - FIRST) // 900_000 + 1, 0)


@pytest.mark.parametrize(
    ("retention", "resolution", "start"),
    [(HOURLY, "1h", T0 + 13 * HOUR), (DAILY, "1d", CREATED)],
    ids=["1h", "1d"],
)
async def test_rollups_round_the_first_check_down_to_their_bucket(
    store: Store, retention: Retention, resolution: str, start: int
) -> None:
    """An outage since then hides when exactly the first check ran: the window starts at the
    first check's bucket (no earlier than the site's creation), not at the window's edge."""
    sim = await checks_every_15_minutes(store, retention, down=range(40, 44))  # 1 h down
    site = await store.get_site(sim.site_id)
    w = await window_of(store, site, "5d", now=NOW, retention=retention)
    assert w.resolution == resolution
    assert w.start == start
    monitored = (NOW - start) / 1000
    assert (w.down_seconds, w.incidents, w.checks_down) == (3600.0, 1, 4)
    assert w.uptime_percent == round(100 * (monitored - 3600) / monitored, 4)


@pytest.mark.parametrize(
    ("retention", "resolution"), [(HOURLY, "1h"), (DAILY, "1d")], ids=["1h", "1d"]
)
async def test_rollups_know_a_site_never_up_is_zero_percent_up(
    store: Store, retention: Retention, resolution: str
) -> None:
    sim = await checks_every_15_minutes(store, retention, up=False)
    site = await store.get_site(sim.site_id)
    w = await window_of(store, site, "5d", now=NOW, retention=retention)
    assert w.resolution == resolution
    assert (w.start, w.uptime_percent, w.down_seconds) == (FIRST, 0.0, (NOW - FIRST) / 1000)


@pytest.mark.parametrize("retention", [HOURLY, DAILY], ids=["1h", "1d"])
async def test_rollups_know_nothing_of_a_site_never_checked(
    store: Store, retention: Retention
) -> None:
    sim = await make_site(store, created=CREATED)
    for day in range(1, 4):
        await maintenance.run(store, T0 + day * DAY, retention)  # prunes the INITIAL row
    site = await store.get_site(sim.site_id)
    w = await window_of(store, site, "5d", now=NOW, retention=retention)
    assert (w.start, w.uptime_percent, w.checks) == (NOW, None, 0)


# --- paused spans: not monitored, not down -------------------------------------------------


async def set_paused(store: Store, sim: Sim, paused: bool, at: int) -> None:
    """Pause or resume through the store's real path, as ``PATCH /sites/{id}`` does."""
    await store.update_site(sim.site_id, SiteIn(url="http://a", name="a", paused=paused), now=at)


async def every_minute(sim: Sim, first: int, last: int, up: bool = True) -> None:
    """A check at each whole minute from ``first`` to ``last`` (minutes after T0)."""
    for k in range(first, last + 1):
        await sim.check(T0 + k * MINUTE, up=up)


async def test_an_up_site_paused_for_a_while_stays_100_percent(store: Store) -> None:
    sim = await make_site(store, created=T0)
    await sim.check(T0 + 10 * SECOND, up=True)
    await every_minute(sim, 1, 10)
    await set_paused(store, sim, True, T0 + 10 * MINUTE + 30 * SECOND)
    await set_paused(store, sim, False, T0 + 40 * MINUTE + 30 * SECOND)
    await every_minute(sim, 41, 60)
    site = await store.get_site(sim.site_id)
    now = T0 + 60 * MINUTE
    day = await window_of(store, site, "24h", now=now, retention=Retention())
    assert figures(day) == {
        "start": T0 + 10 * SECOND,  # the first check: the pause does not move the start
        "uptime_percent": 100.0,
        "checks": 31,
        "checks_down": 0,
        "down_seconds": 0.0,
        "incidents": 0,
        "response_time_ms": {"avg": 100.0, "p95": 100, "p95_exact": True, "max": 100},
    }
    half = await window_of(store, site, "30m", now=now, retention=Retention())
    assert (half.start, half.uptime_percent, half.checks) == (now - 30 * MINUTE, 100.0, 20)
    # A minute down shows what was monitored: 63 minutes less the 10 s before the first check
    # and the 30 paused minutes.
    await sim.check(T0 + 61 * MINUTE, up=False)
    await sim.check(T0 + 62 * MINUTE, up=True)
    day = await window_of(store, site, "24h", now=T0 + 63 * MINUTE, retention=Retention())
    assert (day.down_seconds, day.uptime_percent) == (60.0, round(100 * 1910 / 1970, 4))


async def test_a_site_paused_mid_incident_is_not_down_while_paused(store: Store) -> None:
    """The incident stays open across the pause (no check says otherwise): only its
    monitored minutes are down time; the incident itself keeps its wall time."""
    sim = await make_site(store, created=T0)
    await sim.check(T0 + 10 * SECOND, up=True)
    await every_minute(sim, 1, 4, up=False)  # down from minute 1
    await set_paused(store, sim, True, T0 + 5 * MINUTE)
    await set_paused(store, sim, False, T0 + 35 * MINUTE)  # 30 minutes paused
    await every_minute(sim, 36, 39, up=False)
    await every_minute(sim, 40, 60)  # recovered at minute 40
    site = await store.get_site(sim.site_id)
    now = T0 + 60 * MINUTE
    w = await window_of(store, site, "24h", now=now, retention=Retention())
    monitored = (now - T0) / 1000 - 10 - 1800
    assert figures(w) == {
        "start": T0 + 10 * SECOND,
        "uptime_percent": round(100 * (monitored - 540) / monitored, 4),
        "checks": 30,
        "checks_down": 8,
        "down_seconds": 540.0,  # 39 minutes of incident, 30 of them paused
        "incidents": 1,
        "response_time_ms": {"avg": 100.0, "p95": 100, "p95_exact": True, "max": 100},
    }
    (incident,), _ = await incidents_page(store, sim.site_id, limit=10, cursor=None, now=now)
    assert incident.duration_seconds == 39 * 60  # wall time, pause included


async def test_an_incident_open_after_a_pause_counts_from_a_window_starting_in_it(
    store: Store,
) -> None:
    sim = await make_site(store, created=T0)
    await every_minute(sim, 1, 4, up=False)
    await set_paused(store, sim, True, T0 + 5 * MINUTE)
    await set_paused(store, sim, False, T0 + 35 * MINUTE)
    await every_minute(sim, 36, 60, up=False)  # still down, the incident still open
    site = await store.get_site(sim.site_id)
    w = await window_of(store, site, "30m", now=T0 + 60 * MINUTE, retention=Retention())
    assert (w.start, w.uptime_percent, w.down_seconds, w.incidents) == (
        T0 + 30 * MINUTE,
        0.0,
        1500.0,  # 25 monitored minutes after the 5 paused ones
        1,
    )


@pytest.mark.parametrize("up", [True, False], ids=["up", "down"])
async def test_a_window_inside_a_pause_still_open_monitors_nothing(store: Store, up: bool) -> None:
    sim = await make_site(store, created=T0)
    await sim.check(T0 + 10 * SECOND, up=up)
    await set_paused(store, sim, True, T0 + MINUTE)  # never resumed: runs to now
    site = await store.get_site(sim.site_id)
    now = T0 + 3 * HOUR
    hour = await window_of(store, site, "1h", now=now, retention=Retention())
    assert figures(hour) == {
        "start": now - HOUR,
        "uptime_percent": None,  # nothing monitored: neither 100 nor 0
        "checks": 0,
        "checks_down": 0,
        "down_seconds": 0.0,
        "incidents": 0,  # the open incident has no monitored time in this window
        "response_time_ms": UNKNOWN_TIMES,
    }
    day = await window_of(store, site, "24h", now=now, retention=Retention())
    assert (day.start, day.uptime_percent, day.down_seconds, day.incidents) == (
        T0 + 10 * SECOND,
        100.0 if up else 0.0,  # the 50 seconds before the pause
        0.0 if up else 50.0,
        0 if up else 1,
    )


async def test_a_pause_still_open_runs_to_the_window_end(store: Store) -> None:
    sim = await make_site(store, created=T0)
    await sim.check(T0 + 10 * SECOND, up=False)
    await every_minute(sim, 1, 20, up=False)
    await set_paused(store, sim, True, T0 + 20 * MINUTE + 30 * SECOND)
    site = await store.get_site(sim.site_id)
    now = T0 + 40 * MINUTE
    w = await window_of(store, site, "30m", now=now, retention=Retention())
    assert (w.start, w.uptime_percent, w.down_seconds, w.incidents) == (
        now - 30 * MINUTE,
        0.0,  # 10.5 minutes monitored, all down; 19.5 paused
        630.0,
        1,
    )


async def test_a_site_created_paused_is_monitored_from_its_first_check(store: Store) -> None:
    site = await store.insert_site(SiteIn(url="http://a", name="a", paused=True), now=T0)
    sim = Sim(store, site.id, T0)
    site = await store.get_site(site.id)
    w = await window_of(store, site, "24h", now=T0 + HOUR, retention=Retention())
    assert (w.start, w.uptime_percent) == (T0 + HOUR, None)  # paused since its creation
    await set_paused(store, sim, False, T0 + HOUR)
    await sim.check(T0 + HOUR + SECOND, up=False)
    w = await window_of(store, site, "24h", now=T0 + 2 * HOUR, retention=Retention())
    assert (w.start, w.uptime_percent, w.down_seconds) == (T0 + HOUR + SECOND, 0.0, 3599.0)


PAUSED = (T0 + DAY + 35 * MINUTE, T0 + DAY + 3 * HOUR + 5 * MINUTE)  # rolled up by NOW


async def checks_with_a_pause(store: Store, retention: Retention) -> Sim:
    """Every 15 minutes from FIRST to NOW but while PAUSED, rolling up and pruning hourly as
    the daemon would; down from T0+1d+15m, across the pause, up again at T0+1d+3h15m."""
    sim = await make_site(store, created=CREATED)
    for k in range((NOW - FIRST) // (15 * MINUTE) + 1):
        at = FIRST + k * 15 * MINUTE
        if at == PAUSED[1] - 5 * MINUTE:
            await set_paused(store, sim, True, PAUSED[0])
            await set_paused(store, sim, False, PAUSED[1])
        if not PAUSED[0] <= at < PAUSED[1]:
            await sim.check(at, up=not T0 + DAY + 15 * MINUTE <= at < PAUSED[1], rtt=100)
        if at % HOUR == 0:
            await maintenance.run(store, at, retention)
    return sim


@pytest.mark.parametrize(
    ("retention", "resolution", "window", "start", "paused", "down"),
    [
        (HOURLY, "1h", "5d", T0 + 13 * HOUR, 150 * MINUTE, 30 * MINUTE),
        (DAILY, "1d", "5d", CREATED, 150 * MINUTE, 30 * MINUTE),
        # 47h starts at T0+1d+1h, inside the pause: hour rollups keep that start...
        (HOURLY, "1h", "47h", T0 + DAY + HOUR, 125 * MINUTE, 10 * MINUTE),
        # ...day rollups round it down to T0+1d, and the pause is counted from there too.
        (DAILY, "1d", "47h", T0 + DAY, 150 * MINUTE, 30 * MINUTE),
    ],
    ids=["1h-5d", "1d-5d", "1h-47h", "1d-47h"],
)
async def test_rollups_leave_paused_time_out(
    store: Store,
    retention: Retention,
    resolution: str,
    window: str,
    start: int,
    paused: int,
    down: int,
) -> None:
    sim = await checks_with_a_pause(store, retention)
    site = await store.get_site(sim.site_id)
    w = await window_of(store, site, window, now=NOW, retention=retention)
    assert (w.resolution, w.start) == (resolution, start)
    monitored = NOW - start - paused
    assert (w.down_seconds, w.incidents) == (down / 1000, 1)
    assert w.uptime_percent == round(100 * (monitored - down) / monitored, 4)


# --- through the API ---------------------------------------------------------------------


async def test_api_says_null_until_the_first_check_finishes(
    client: TestClient, target: Target
) -> None:
    target.delay = 1.0  # the first check is still waiting for its answer
    site = await (await client.post("/sites", json={"url": target.url(), "name": "x"})).json()
    await target.wait_hits("/", 1)
    body = await (await client.get(f"/sites/{site['id']}/uptime?window=30m,24h")).json()
    for w in body["windows"]:
        assert w["uptime_percent"] is None
        assert (w["checks"], w["checks_down"], w["incidents"], w["down_seconds"]) == (0, 0, 0, 0)
        assert w["response_time_ms"] == UNKNOWN_TIMES
        assert w["start"] == w["end"]

    async def checked() -> dict:
        body = await (await client.get(f"/sites/{site['id']}/uptime?window=30m")).json()
        return body if body["windows"][0]["checks"] else {}

    w = (await eventually(checked))["windows"][0]
    assert w["uptime_percent"] == 100.0


async def test_api_site_never_up_is_zero_percent_up(
    start_app: AppClient, settings: Settings
) -> None:
    """The monitor writes the first check 1 ms after the creation when the clock has not
    moved: that millisecond counted as up (the issue's "0.0024")."""
    clock = ManualClock(wall=(T0 + 100 * MINUTE) / 1000)
    client = await start_app(settings, clock.clock())
    body = {"url": "http://127.0.0.1:9/", "name": "refused", "check_interval_seconds": 86400}
    site = await (await client.post("/sites", json=body)).json()

    async def down() -> bool:
        rows = await (await client.get(f"/sites/{site['id']}/history")).json()
        return [r["status"] for r in rows] == ["INITIAL", "DOWN"]

    await eventually(down)
    clock.advance(60)
    w = (await (await client.get(f"/sites/{site['id']}/uptime?window=1h")).json())["windows"][0]
    assert (w["uptime_percent"], w["checks"], w["checks_down"], w["incidents"]) == (0.0, 1, 1, 1)
    assert w["down_seconds"] == 59.999  # from the first check, 1 ms after the creation


async def test_api_paused_time_is_not_monitored(start_app: AppClient, settings: Settings) -> None:
    """PATCH pauses and resumes a site that is down; /uptime leaves the pause out of both the
    monitored and the down time, and says null for a window inside it."""
    clock = ManualClock(wall=(T0 + 100 * MINUTE) / 1000)
    client = await start_app(settings, clock.clock())
    body = {"url": "http://127.0.0.1:9/", "name": "refused", "check_interval_seconds": 86400}
    site = await (await client.post("/sites", json=body)).json()
    uptime = f"/sites/{site['id']}/uptime"

    async def down() -> bool:
        rows = await (await client.get(f"/sites/{site['id']}/history")).json()
        return [r["status"] for r in rows] == ["INITIAL", "DOWN"]

    await eventually(down)
    clock.advance(600)
    resp = await client.patch(f"/sites/{site['id']}", json={"paused": True})
    assert resp.status == 200
    clock.advance(1800)
    w = (await (await client.get(f"{uptime}?window=30m")).json())["windows"][0]
    assert (w["uptime_percent"], w["down_seconds"], w["incidents"]) == (None, 0.0, 0)
    resp = await client.patch(f"/sites/{site['id']}", json={"paused": False})
    assert resp.status == 200
    clock.advance(600)
    w = (await (await client.get(f"{uptime}?window=1h")).json())["windows"][0]
    assert (w["uptime_percent"], w["incidents"]) == (0.0, 1)
    assert w["down_seconds"] == 1199.999  # 3000 s since the first check, 1800 of them paused
    w = (await (await client.get(f"{uptime}?window=30m")).json())["windows"][0]
    # From inside the pause: the incident, still open, is down for the 10 minutes since.
    assert (w["uptime_percent"], w["down_seconds"], w["incidents"]) == (0.0, 600.0, 1)
    (incident,) = await (await client.get(f"/sites/{site['id']}/incidents")).json()
    assert incident["duration_seconds"] == 2999.999  # an incident is wall time


# --- offline spans: the monitor itself could not check; every site's time, not monitored ---


async def test_an_offline_span_is_not_monitored_time_nor_down_time(store: Store) -> None:
    """As a pause, for every site: an incident open across it is down only outside it."""
    sim = await make_site(store, created=T0)
    await sim.check(T0 + 10 * SECOND, up=True)
    await every_minute(sim, 1, 4, up=False)  # down from minute 1
    span = await store.start_offline(T0 + 5 * MINUTE, [sim.site_id])
    await store.end_offline(span, T0 + 35 * MINUTE, [])  # 30 minutes offline
    await every_minute(sim, 36, 39, up=False)
    await every_minute(sim, 40, 60)  # recovered at minute 40
    site = await store.get_site(sim.site_id)
    now = T0 + 60 * MINUTE
    w = await window_of(store, site, "24h", now=now, retention=Retention())
    monitored = (now - T0) / 1000 - 10 - 1800
    assert (w.start, w.down_seconds, w.incidents) == (T0 + 10 * SECOND, 540.0, 1)
    assert w.uptime_percent == round(100 * (monitored - 540) / monitored, 4)
    # Another site, never set aside, is not monitored during the span either.
    other = await make_site(store, created=T0, name="b")
    await other.check(T0 + 10 * SECOND, up=True)
    await every_minute(other, 1, 58)
    await other.check(T0 + 59 * MINUTE, up=False)  # one minute down
    await other.check(T0 + 60 * MINUTE, up=True)
    w = await window_of(
        store, await store.get_site(other.site_id), "24h", now=now, retention=Retention()
    )
    assert (w.down_seconds, w.uptime_percent) == (
        60.0,
        round(100 * (monitored - 60) / monitored, 4),
    )


async def test_an_offline_span_still_open_runs_to_now_and_overlaps_a_pause_once(
    store: Store,
) -> None:
    sim = await make_site(store, created=T0)
    await sim.check(T0 + 10 * SECOND, up=False)  # down from the first check
    await set_paused(store, sim, True, T0 + 20 * MINUTE)
    await set_paused(store, sim, False, T0 + 40 * MINUTE)
    await store.start_offline(T0 + 30 * MINUTE)  # overlaps the pause's last 10 minutes
    site = await store.get_site(sim.site_id)
    now = T0 + 60 * MINUTE
    w = await window_of(store, site, "24h", now=now, retention=Retention())
    # Monitored: from the first check to the pause (20 min less 10 s); nothing since.
    assert (w.down_seconds, w.uptime_percent, w.incidents) == (20 * 60 - 10, 0.0, 1)
    hour = await window_of(store, site, "30m", now=now, retention=Retention())
    assert (hour.uptime_percent, hour.down_seconds, hour.incidents) == (None, 0.0, 0)
