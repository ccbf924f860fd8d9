"""History pages, incidents, uptime windows and retention, on a real SQLite file with
synthetic checks at controlled times (the clock is a number each test chooses)."""

from __future__ import annotations

import csv
import io
import math
from datetime import UTC, datetime
from pathlib import Path

import pytest
from aiohttp.test_utils import TestClient

from tests.conftest import AppClient, ManualClock, eventually
from uptimed.alerting import next_state
from uptimed.batching import CheckBatcher
from uptimed.config import Settings
from uptimed.db import Store, maintenance
from uptimed.db.maintenance import DAY, MINUTE, Retention
from uptimed.db.reports import history_page, incidents_page, uptime
from uptimed.models import (
    CheckResult,
    HistoryQuery,
    Site,
    SiteIn,
    SiteState,
    Status,
    UptimeWindow,
    iso_ms,
)

T0 = 1_739_600_000_000 // DAY * DAY  # a UTC midnight


class Sim:
    """Feeds checks for one site through the same state machine and store calls as the monitor."""

    def __init__(self, store: Store, site_id: int, created: int) -> None:
        self.store, self.site_id = store, site_id
        self.state = SiteState(status=Status.INITIAL, since=created)
        self.batch = CheckBatcher(store, flush_seconds=60, append_unchanged=True)

    async def check(self, at: int, up: bool, rtt: int = 100, reason: str = "HTTP 503") -> None:
        result = CheckResult(
            status=Status.UP if up else Status.DOWN,
            checked_at=at,
            response_time_ms=rtt,
            reason=None if up else reason,
        )
        self.state, transition = next_state(self.site_id, self.state, result)
        if transition is None:
            self.batch.add(self.site_id, result, self.state)
            await self.batch.flush()
        else:
            assert await self.store.record_transition(self.site_id, result, self.state, transition)


@pytest.fixture
async def store(tmp_path: Path) -> Store:
    s = await Store.open(tmp_path / "u.db")
    yield s  # type: ignore[misc]
    await s.close()


async def window_of(
    store: Store, site: Site, window: str, *, now: int, retention: Retention
) -> UptimeWindow:
    """One window, as ``GET /sites/{id}/uptime`` computes it."""
    (result,) = await uptime(store, site, [window], now=now, retention=retention)
    return result


async def make_site(store: Store, created: int = T0, name: str = "a") -> Sim:
    site = await store.insert_site(SiteIn(url="http://a", name=name), now=created)
    return Sim(store, site.id, created)


async def test_history_pages_walk_back_in_time_without_gaps(store: Store) -> None:
    sim = await make_site(store)
    for k in range(1, 26):
        await sim.check(T0 + k * MINUTE, up=k % 7 != 0)
    seen: list[int] = []
    cursor = None
    pages = 0
    while True:
        page, cursor = await history_page(store, sim.site_id, HistoryQuery(limit=10, cursor=cursor))
        times = [r["last_checked"] for r in page]
        assert times == sorted(times)  # each page oldest first
        seen = times + seen
        pages += 1
        if cursor is None:
            break
    assert pages == 3
    assert seen == [iso_ms(T0)] + [iso_ms(T0 + k * MINUTE) for k in range(1, 26)]


async def test_history_filters(store: Store) -> None:
    sim = await make_site(store)
    for k in range(1, 11):
        await sim.check(T0 + k * MINUTE, up=k not in (4, 5))

    def at(k: int) -> datetime:
        return datetime.fromtimestamp((T0 + k * MINUTE) / 1000, tz=UTC)

    page, _ = await history_page(store, sim.site_id, HistoryQuery(since=at(3), until=at(6)))
    assert [r["last_checked"] for r in page] == [iso_ms(T0 + k * MINUTE) for k in (3, 4, 5)]
    page, _ = await history_page(store, sim.site_id, HistoryQuery(status=Status.DOWN))
    assert [(r["status"], r["last_status_change"]) for r in page] == [
        ("DOWN", iso_ms(T0 + 4 * MINUTE))
    ] * 2
    page, cursor = await history_page(store, sim.site_id, HistoryQuery(limit=3))
    assert [r["last_checked"] for r in page] == [iso_ms(T0 + k * MINUTE) for k in (8, 9, 10)]
    assert cursor == T0 + 8 * MINUTE


async def test_incidents_ongoing_and_ended_newest_first(store: Store) -> None:
    a, b = await make_site(store, name="a"), await make_site(store, name="b")
    await a.check(T0 + 1 * MINUTE, up=True)
    await a.check(T0 + 2 * MINUTE, up=False, reason="HTTP 500")
    await a.check(T0 + 3 * MINUTE, up=False, reason="timeout after 10s")
    await a.check(T0 + 4 * MINUTE, up=True)
    await b.check(T0 + 5 * MINUTE, up=False, reason="connection refused")  # INITIAL -> DOWN
    await a.check(T0 + 6 * MINUTE, up=False, reason="HTTP 502")

    now = T0 + 10 * MINUTE
    mine, _ = await incidents_page(store, a.site_id, limit=10, cursor=None, now=now)
    assert [(i.started_at, i.ended_at, i.reason, i.checks_failed) for i in mine] == [
        (T0 + 6 * MINUTE, None, "HTTP 502", 1),
        (T0 + 2 * MINUTE, T0 + 4 * MINUTE, "HTTP 500", 2),
    ]
    assert mine[0].duration_seconds == 240.0  # ongoing: up to now
    assert mine[1].duration_seconds == 120.0

    everyone, cursor = await incidents_page(store, None, limit=2, cursor=None, now=now)
    assert [i.site_id for i in everyone] == [a.site_id, b.site_id]
    rest, cursor2 = await incidents_page(store, None, limit=2, cursor=cursor, now=now)
    assert [i.started_at for i in rest] == [T0 + 2 * MINUTE] and cursor2 is None


async def test_uptime_maths_across_window_edges(store: Store) -> None:
    sim = await make_site(store, created=T0 - 3 * DAY)
    # Checks every 10 minutes for 3 days; an outage of 30 minutes straddles the 24h edge,
    # another of 20 minutes is still going on.
    now = T0
    down = {*range(-24 * 6 - 1, -24 * 6 + 2), *range(-2, 0)}  # indices of failed checks
    for k in range(-3 * 24 * 6 + 1, 0):
        await sim.check(now + k * 10 * MINUTE, up=k not in down, rtt=100 + (k % 20))
    retention = Retention()
    site = await store.get_site(sim.site_id)
    day = await window_of(store, site, "24h", now=now, retention=retention)
    assert day.resolution == "raw"
    assert day.start == now - DAY
    # The first outage began at -24h10m and ended at -23h40m: 20 of its minutes are inside.
    # The second began 20 minutes ago and goes on.
    assert day.incidents == 2
    assert day.down_seconds == pytest.approx(20 * 60 + 20 * 60)
    assert day.uptime_percent == pytest.approx(100 * (86400 - 2400) / 86400, abs=1e-4)
    in_window = list(range(-24 * 6, 0))  # the check at exactly -24h is inside the window
    assert day.checks == len(in_window)
    assert day.checks_down == len([k for k in in_window if k in down])
    rtts = sorted(100 + (k % 20) for k in in_window)
    assert day.response_time_ms.max == max(rtts)
    assert day.response_time_ms.p95 == rtts[math.ceil(0.95 * len(rtts)) - 1]
    assert day.response_time_ms.avg == pytest.approx(sum(rtts) / len(rtts), abs=0.05)

    week = await window_of(store, site, "7d", now=now, retention=retention)
    # Not monitored before its first check, 10 minutes after it was created.
    assert week.start == site.created_at + 10 * MINUTE
    assert week.incidents == 2
    assert week.down_seconds == pytest.approx(30 * 60 + 20 * 60)


async def test_uptime_and_incidents_survive_a_restart(tmp_path: Path) -> None:
    store = await Store.open(tmp_path / "u.db")
    sim = await make_site(store)
    await sim.check(T0 + MINUTE, up=False)
    await store.close()
    store = await Store.open(tmp_path / "u.db")
    site = await store.get_site(sim.site_id)
    w = await window_of(store, site, "24h", now=T0 + 11 * MINUTE, retention=Retention())
    assert (w.incidents, w.down_seconds, w.checks_down) == (1, 600.0, 1)
    await store.close()


async def test_retention_rolls_up_prunes_and_keeps_long_windows(
    store: Store, tmp_path: Path
) -> None:
    retention = Retention(raw_days=3, minute_days=1, hour_days=6, day_days=30)
    sim = await make_site(store, created=T0)
    step = 30 * MINUTE
    pages: dict[int, int] = {}
    for day in range(12):
        for k in range(48):
            at = T0 + day * DAY + k * step + MINUTE
            await sim.check(at, up=not (day == 1 and k < 4), rtt=50 + k)
        now = T0 + (day + 1) * DAY
        await maintenance.run(store, now, retention)
        async with store.conn.execute("PRAGMA page_count") as cur:
            pages[day] = (await cur.fetchone())[0]  # type: ignore[index]

    now = T0 + 12 * DAY
    async with store.conn.execute("SELECT min(checked_at), count(*) FROM history") as cur:
        oldest, raw_rows = await cur.fetchone()  # type: ignore[misc]
    assert oldest >= now - 3 * DAY - GRACE  # raw rows older than 3 days are gone
    assert raw_rows <= 3 * 48 + 48
    for table, keep in (("rollup_minute", 1), ("rollup_hour", 6), ("rollup_day", 30)):
        async with store.conn.execute(f"SELECT min(bucket), count(*) FROM {table}") as cur:
            first, count = await cur.fetchone()  # type: ignore[misc]
        assert count > 0, table
        assert first >= now - keep * DAY - DAY, table
    # The file stops growing once every level has reached its retention.
    assert pages[11] <= pages[8] * 1.05, pages

    site = await store.get_site(sim.site_id)
    w = await window_of(store, site, "10d", now=now, retention=retention)
    assert w.resolution == "1d"
    assert w.checks == 10 * 48  # every check counted, most of them from rollups
    assert w.checks_down == 0  # the failures of day 1 are older than 10 days
    month = await window_of(store, site, "30d", now=now, retention=retention)
    assert month.checks == 12 * 48
    assert month.checks_down == 4
    assert month.incidents == 1
    assert month.down_seconds == pytest.approx(4 * 30 * 60)
    assert month.response_time_ms.max == 50 + 47
    # The 95th rank falls in the 75-100 ms bucket; its upper edge is capped at the maximum.
    assert month.response_time_ms.p95 == 97


GRACE = maintenance.GRACE_MS


async def test_pruning_ends_old_messages_pauses_and_offline_spans_but_keeps_pending(
    store: Store,
) -> None:
    """A year of alerts must not stay in the file for ever: messages delivered or given up go
    with raw rows, ended pauses and offline spans with day rollups; a message still waiting
    and a pause or span still open stay however old they are."""
    retention = Retention(raw_days=3, minute_days=1, hour_days=6, day_days=30)
    sim = await make_site(store, created=T0)
    now = T0 + 40 * DAY
    old, recent = T0 + DAY, now - DAY  # past both retentions; within both
    url = "https://discord.com/api/webhooks/1/t"
    async with store.transaction() as db:
        for at, delivered, failed in (
            (old, old, None),
            (old, None, old),
            (old, None, None),  # pending: kept
            (recent, recent, None),
            (now - 10 * DAY, now - 10 * DAY, None),  # older than raw rows: goes
        ):
            await db.execute(
                "INSERT INTO outbox (site_id, url, event, created_at, delivered_at, failed_at)"
                " VALUES (?, ?, '{}', ?, ?, ?)",
                (sim.site_id, url, at, delivered, failed),
            )
        for started, ended in ((old, old + 1), (old, None), (recent, recent + 1)):
            await db.execute(
                "INSERT INTO pauses (site_id, started_at, ended_at) VALUES (?, ?, ?)",
                (sim.site_id, started, ended),
            )
            cur = await db.execute(
                "INSERT INTO offline (started_at, last_seen_at, ended_at) VALUES (?, ?, ?)",
                (started, started, ended),
            )
            await db.execute(
                "INSERT INTO offline_sites (offline_id, site_id) VALUES (?, ?)",
                (cur.lastrowid, sim.site_id),
            )
    await maintenance.prune(store, now, retention)
    rows = await store.conn.execute_fetchall(
        "SELECT created_at, delivered_at, failed_at FROM outbox ORDER BY id"
    )
    assert [tuple(r) for r in rows] == [(old, None, None), (recent, recent, None)]
    for table in ("pauses", "offline"):
        rows = await store.conn.execute_fetchall(f"SELECT started_at, ended_at FROM {table}")
        assert sorted(tuple(r) for r in rows) == [(old, None), (recent, recent + 1)], table
    rows = await store.conn.execute_fetchall("SELECT count(*) FROM offline_sites")
    assert rows[0][0] == 2  # the pruned span's sites went with it


# --- the API ------------------------------------------------------------------------------


async def api_with_history(
    start_app: AppClient, settings: Settings, clock: ManualClock | None = None
) -> tuple[TestClient, int]:
    clock = clock or ManualClock(wall=(T0 + 100 * MINUTE) / 1000)
    client = await start_app(settings, clock.clock())
    resp = await client.post(
        "/sites", json={"url": "http://127.0.0.1:9/", "name": "x", "check_interval_seconds": 86400}
    )
    return client, (await resp.json())["id"]


@pytest.mark.parametrize(
    ("query", "fragment"),
    [
        ("limit=0", "'limit'"),
        ("limit=10001", "'limit'"),
        ("limit=ten", "'limit'"),
        ("since=yesterday", "'since'"),
        ("until=2025-13-01", "'until'"),
        ("status=MAYBE", "'status'"),
        ("cursor=-5", "'cursor'"),
    ],
)
async def test_bad_history_parameters_are_400(
    start_app: AppClient, settings: Settings, query: str, fragment: str
) -> None:
    client, site_id = await api_with_history(start_app, settings)
    resp = await client.get(f"/sites/{site_id}/history?{query}")
    assert resp.status == 400
    assert fragment in (await resp.json())["detail"]


@pytest.mark.parametrize(
    "query",
    [
        "window=1y",
        "window=0d",
        "window=24h&window=",
        "window=-1h",
        "window=0m",
        "window=30s",
        "window=100000m",
        "window=1.5h",
    ],
)
async def test_bad_uptime_windows_are_400(
    start_app: AppClient, settings: Settings, query: str
) -> None:
    client, site_id = await api_with_history(start_app, settings)
    resp = await client.get(f"/sites/{site_id}/uptime?{query}")
    if query == "window=24h&window=":
        assert resp.status == 200  # an empty value adds nothing
    else:
        assert resp.status == 400
        assert "'window" in (await resp.json())["detail"]


async def test_history_api_link_header_and_csv(start_app: AppClient, settings: Settings) -> None:
    clock = ManualClock(wall=(T0 + 100 * MINUTE) / 1000)
    client, site_id = await api_with_history(start_app, settings, clock)

    async def two_rows() -> bool:
        return len(await (await client.get(f"/sites/{site_id}/history")).json()) >= 2

    await eventually(two_rows)
    resp = await client.get(f"/sites/{site_id}/history?limit=1")
    rows = await resp.json()
    assert len(rows) == 1 and rows[0]["status"] == "DOWN"
    link = resp.headers["Link"]
    assert link.startswith(f"</sites/{site_id}/history?limit=1&cursor=") and link.endswith(
        '>; rel="next"'
    )
    older = await (await client.get(link[1 : link.index(">")])).json()
    assert [r["status"] for r in older] == ["INITIAL"]

    for path in (f"/sites/{site_id}/history.csv", f"/sites/{site_id}/history.csv?status=DOWN"):
        resp = await client.get(path)
        assert resp.status == 200
        assert resp.content_type == "text/csv"
        table = list(csv.reader(io.StringIO(await resp.text())))
        assert table[0] == [
            "status",
            "response_time_ms",
            "last_checked",
            "last_status_change",
            "reason",
        ]
        assert [r[0] for r in table[1:]] == (["DOWN"] if "status" in path else ["INITIAL", "DOWN"])
        assert table[-1][4] == "connection refused"
        assert resp.headers["Cache-Control"] == "no-store"  # history is data, like the JSON

    clock.advance(60)
    resp = await client.get(f"/sites/{site_id}/uptime?window=24h,7d&window=24h")
    body = await resp.json()
    assert [w["window"] for w in body["windows"]] == ["24h", "7d"]
    assert body["windows"][0]["incidents"] == 1
    resp = await client.get("/incidents")
    assert [i["reason"] for i in await resp.json()] == ["connection refused"]
    assert (await client.get("/sites/99/incidents")).status == 400
    assert (await client.get("/sites/99/uptime")).status == 400
    assert (await client.get("/sites/99/history.csv")).status == 400


async def test_raw_windows_are_exact_whether_or_not_rollups_exist(store: Store) -> None:
    sim = await make_site(store, created=T0 - 3 * DAY)
    for k in range(1, 3 * 24 * 60, 7):  # every 7 minutes for 3 days, a few failures
        await sim.check(T0 - 3 * DAY + k * MINUTE, up=k % 97 != 0, rtt=20 + k % 300)
    now = T0 + 17 * MINUTE + 5_000  # not on a minute or hour edge
    site = await store.get_site(sim.site_id)
    before = [
        await window_of(store, site, w, now=now, retention=Retention()) for w in ("24h", "2d")
    ]
    await maintenance.run(store, now, Retention())  # rolls minutes and hours up to now - grace
    after = [await window_of(store, site, w, now=now, retention=Retention()) for w in ("24h", "2d")]
    assert [w.model_dump() for w in after] == [w.model_dump() for w in before]
    assert all(w.resolution == "raw" and w.response_time_ms.p95_exact for w in after)


@pytest.mark.parametrize(
    "ms", [0, 1, 999, 1_000, 59_999, 1_739_601_000_123, 1_739_601_059_999, 4_102_444_799_999]
)
async def test_sqlite_time_format_matches_the_api_format(store: Store, ms: int) -> None:
    async with store.reader.execute(
        "SELECT strftime('%Y-%m-%dT%H:%M:%fZ', ? / 1000.0, 'unixepoch')", (ms,)
    ) as cur:
        (text,) = await cur.fetchone()  # type: ignore[misc]
    assert text == iso_ms(ms)


async def test_pruning_runs_at_most_once_an_hour(store: Store) -> None:
    """Rollups run every minute; pruning walks every site too, for rows days old: hourly."""
    retention = Retention(raw_days=1, minute_days=1, hour_days=2, day_days=30)
    sim = await make_site(store, created=T0)
    await sim.check(T0 + MINUTE, up=True)
    now = T0 + 3 * DAY

    async def raw_rows() -> int:
        async with store.conn.execute(
            "SELECT count(*) FROM history WHERE checked_at > ?", (T0,)
        ) as cur:
            return (await cur.fetchone())[0]  # type: ignore[index]

    await maintenance.run(store, now, retention)
    assert await raw_rows() == 0  # the first run prunes
    await sim.check(T0 + 2 * MINUTE, up=True)  # another row past its retention
    await maintenance.run(store, now + 59 * MINUTE, retention)
    assert await raw_rows() == 1  # within the hour: left for the next pruning
    await maintenance.run(store, now + 60 * MINUTE, retention)
    assert await raw_rows() == 0


@pytest.mark.parametrize(
    "path", ["/incidents", "/sites/1/incidents", "/sites/1/history", "/sites/1/history.csv"]
)
async def test_a_cursor_beyond_sqlite_integers_means_every_row(
    client: TestClient, path: str
) -> None:
    """Found by the fuzzer: 2**96 reached SQLite and came back as a 500."""
    await client.post("/sites", json={"url": "http://127.0.0.1:9/", "name": "a"})
    resp = await client.get(path, params={"cursor": str(2**96)})
    plain = await client.get(path)  # asked later: it may hold a check more, never fewer rows
    assert (resp.status, plain.status) == (200, 200)
    if path.endswith(".csv"):
        got, every = (await resp.text()).splitlines(), (await plain.text()).splitlines()
    else:
        got, every = await resp.json(), await plain.json()
        if "incidents" in path:  # an open incident's duration grows between the two answers
            got, every = [i["id"] for i in got], [i["id"] for i in every]
    assert all(row in every for row in got)
    assert got or "incidents" in path  # history: at least the INITIAL row


async def test_uptime_windows_in_minutes(start_app: AppClient, settings: Settings) -> None:
    """1 to 99999 minutes, like hours and days: 30m is the last half hour."""
    clock = ManualClock(wall=(T0 + 100 * MINUTE) / 1000)
    client, site_id = await api_with_history(start_app, settings, clock)

    async def checked() -> bool:
        return len(await (await client.get(f"/sites/{site_id}/history")).json()) == 2

    await eventually(checked)  # DOWN (connection refused) since the first check
    clock.advance(3600)
    resp = await client.get(f"/sites/{site_id}/uptime?window=30m,1m,99999m,60m,1h")
    assert resp.status == 200
    windows = {w["window"]: w for w in (await resp.json())["windows"]}
    assert list(windows) == ["30m", "1m", "99999m", "60m", "1h"]
    end = iso_ms(T0 + 160 * MINUTE)
    assert windows["30m"]["start"] == iso_ms(T0 + 130 * MINUTE)
    assert windows["30m"]["end"] == end
    assert windows["30m"]["down_seconds"] == 1800.0
    assert windows["1m"]["down_seconds"] == 60.0
    assert windows["60m"] == {**windows["1h"], "window": "60m"}
