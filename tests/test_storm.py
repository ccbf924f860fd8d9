"""Alert storms through one Discord webhook URL: many sites flip at once and their alerts share
a few messages (``alert_group_window_seconds``), with the real app or the real daemon, a real
target whose answers the test flips, and the fake Discord enforcing 5 requests per 2 s.

Each site is named "storm 007." (zero-padded, with a delimiter, so no name is inside another);
which sites a message names, and as what, is read from its embeds' titles and description
lines, whether it is today's single-embed message or a grouped one.
"""

from __future__ import annotations

import asyncio
import re
import signal
import time
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from aiohttp.test_utils import TestClient

from tests.conftest import AppClient, Target, eventually, wait_out
from tests.daemon import Daemon, api, daemon_fixture  # noqa: F401
from tests.fake_discord import FakeDiscord, Hang, Ok, Recorded
from uptimed.config import Settings

INTERVAL = 1  # seconds between checks: the minimum check_interval_seconds
DETECTION = INTERVAL + 2.5  # from a flip to its first message: an interval, the check, the POST
FLIP_STEPS, FLIP_SPREAD = 8, 1.5  # every site flips within 2 s, in 8 steps
NAMED_WITHIN = 30.0  # seconds from the flip until every site of a wave was named
WAVE_MESSAGES_MAX = 5
WINDOW = 10.0  # alert_group_window_seconds' default

DOWN, UP, STARTED, OTHER = "DOWN", "UP", "STARTED", "OTHER"
_NAME = re.compile(r"storm (\d{3})\.")
_ESCAPE = re.compile(r"\\(.)")


def site_name(i: int) -> str:
    return f"storm {i:03d}."


def site_path(i: int) -> str:
    return f"/storm/{i:03d}"


# --- reading what the fake Discord got -------------------------------------------------------


@dataclass(frozen=True)
class Mention:
    """One site named in one message: as what (DOWN, UP, STARTED, OTHER) and in which text."""

    kind: str
    site: int
    text: str  # the title (a single-event embed) or the description line it was read from
    grouped: bool  # read from a description line of a grouped embed


def _kind(text: str) -> str | None:
    """STARTED, DOWN or UP by the text's emoji (else its words); None if it holds both."""
    if "started" in text.lower():
        return STARTED
    for down_mark, up_mark in (("🔴", "🟢"), (" DOWN", " UP")):
        down, up = down_mark in text, up_mark in text
        if down or up:
            return None if down and up else DOWN if down else UP
    return None


def mentions(body: Any) -> list[Mention]:
    """The sites a message names, in order: a title naming a site is a single-event embed
    ("🔴 storm 007. is DOWN"); otherwise each description line naming one is a grouped
    event, its kind from the line's own emoji, else from a title of one kind only."""
    found: list[Mention] = []
    for embed in body.get("embeds") or [] if isinstance(body, dict) else []:
        title = _ESCAPE.sub(r"\1", embed.get("title") or "")
        if names := _NAME.findall(title):
            kind = _kind(title) or OTHER
            found += [Mention(kind, int(n), title, grouped=False) for n in names]
            continue
        for line in (embed.get("description") or "").splitlines():
            plain = _ESCAPE.sub(r"\1", line)
            for n in _NAME.findall(plain):
                kind = _kind(plain) or _kind(title)
                assert kind is not None, f"cannot tell DOWN from UP: {title!r} / {line!r}"
                found.append(Mention(kind, int(n), line, grouped=True))
    return found


def accepted(fake: FakeDiscord, url: str, since: float = 0.0) -> list[Recorded]:
    """Requests Discord accepted (answered 2xx) from ``since`` on: a hung or refused request
    was not delivered, so sending it again is right."""
    return [
        r
        for r in fake.received(url)
        if r.at >= since and r.status is not None and 200 <= r.status < 300
    ]


@dataclass
class Wave:
    """The messages of one wave (DOWN or UP) from its flip, and when its sites were named."""

    flip: float  # monotonic time of the first flip
    messages: list[Recorded]
    first_named: dict[int, float]  # site -> arrival of the first message naming it so

    @property
    def first_after(self) -> float:
        return self.messages[0].at - self.flip

    @property
    def all_named_after(self) -> float:
        return max(self.first_named.values()) - self.flip


def wave(fake: FakeDiscord, url: str, kind: str, flip: float) -> Wave:
    messages, named = [], {}
    for r in accepted(fake, url, flip):
        sites = [m.site for m in mentions(r.body) if m.kind == kind]
        if sites:
            messages.append(r)
            for site in sites:
                named.setdefault(site, r.at)
    return Wave(flip, messages, named)


async def wave_named(
    fake: FakeDiscord, url: str, kind: str, flip: float, sites: Iterable[int]
) -> Wave:
    """Once every site in ``sites`` was named as ``kind`` in a message after ``flip``."""
    wanted = set(sites)

    async def done() -> Wave | None:
        got = wave(fake, url, kind, flip)
        return got if wanted <= got.first_named.keys() else None

    try:
        return await eventually(done, timeout=NAMED_WITHIN + 15, interval=0.1)
    except AssertionError:
        got = wave(fake, url, kind, flip)
        missing = sorted(wanted - got.first_named.keys())
        raise AssertionError(
            f"{kind}: {len(missing)} sites never named, e.g. {missing[:10]}; "
            f"{len(got.messages)} messages; answers {Counter(r.status for r in fake.received())}"
        ) from None


def assert_each_once_and_in_order(
    fake: FakeDiscord, url: str, since: float, sites: Iterable[int]
) -> None:
    """Among accepted messages from ``since``: each site named DOWN once and UP once, and
    its DOWN first (an earlier message, or an earlier line of the same one)."""
    order: list[tuple[str, int]] = [
        (m.kind, m.site)
        for r in accepted(fake, url, since)
        for m in mentions(r.body)
        if m.kind in (DOWN, UP)
    ]
    counts = Counter(order)
    for site in sites:
        times = (counts[DOWN, site], counts[UP, site])
        assert times == (1, 1), f"{site_name(site)} named (DOWN, UP) {times} times"
        assert order.index((DOWN, site)) < order.index((UP, site)), site
    assert {site for _, site in order} == set(sites)


def rate_limited(fake: FakeDiscord) -> list[Recorded]:
    return [r for r in fake.received() if r.status == 429]


# --- driving the app -------------------------------------------------------------------------


def storm_settings(settings: Settings, **update: Any) -> Settings:
    return settings.model_copy(
        update={
            "rate_limit": 1_000_000,  # the test creates hundreds of sites and webhooks
            "discord_timeout_seconds": 5,
            "discord_backoff_initial_seconds": 0.05,
            "discord_backoff_max_seconds": 0.5,
            **update,
        }
    )


async def add_storm_sites(client: TestClient, target: Target, url: str, count: int) -> list[int]:
    """``count`` sites checked every INTERVAL, each with its own webhook row on ``url``."""
    ids = []
    for i in range(count):
        body = {"url": target.url(site_path(i)), "name": site_name(i)}
        resp = await client.post("/sites", json={**body, "check_interval_seconds": INTERVAL})
        assert resp.status == 200, await resp.text()
        site_id = (await resp.json())["id"]
        resp = await client.post("/webhooks", json={"site_id": site_id, "discord_webhook_url": url})
        assert resp.status == 200, await resp.text()
        ids.append(site_id)
    return ids


async def flip(target: Target, sites: Sequence[int], status: int) -> float:
    """Every site in ``sites`` answers ``status`` from now, in FLIP_STEPS steps over FLIP_SPREAD
    seconds (a storm, not one instant); returns when the first step was taken."""
    started = time.monotonic()
    for step in range(FLIP_STEPS):
        for i in sites[step::FLIP_STEPS]:
            target.statuses[site_path(i)] = status
        if step < FLIP_STEPS - 1:
            await asyncio.sleep(FLIP_SPREAD / (FLIP_STEPS - 1))
    return started


async def quiet(fake: FakeDiscord, url: str, window: float, since: float = 0.0) -> None:
    """Until ``url`` is idle as the dispatcher sees it: every request from ``since`` on
    answered, the last one at least ``window`` ago (so the next event goes out at once, alone).
    ``since``: after a restart, leave out a request the killed process left hanging."""

    async def idle() -> bool:
        got = [r for r in fake.received(url) if r.at >= since]
        if any(r.status is None for r in got):
            return False
        return not got or time.monotonic() - got[-1].at >= window + 0.3

    await eventually(idle, timeout=window + 90, interval=0.1)


async def settled(
    get: Any, fake: FakeDiscord, url: str, status: str | None, window: float, since: float = 0.0
) -> None:
    """Every site has ``status`` (None: any), nothing is pending on any webhook, and ``url``
    is idle."""

    async def sites_are() -> bool:
        status_code, sites = await get("/sites")
        return status_code == 200 and all(status in (None, s["status"]) for s in sites)

    async def nothing_pending() -> bool:
        status_code, hooks = await get("/webhooks")
        return status_code == 200 and all(h["pending"] == 0 for h in hooks)

    await eventually(sites_are, timeout=30, interval=0.2)
    await eventually(nothing_pending, timeout=120, interval=0.2)
    await quiet(fake, url, window, since)


def app_get(client: TestClient) -> Any:
    async def get(path: str) -> tuple[int, Any]:
        resp = await client.get(path)
        return resp.status, await resp.json()

    return get


def daemon_get(daemon: Daemon) -> Any:
    async def get(path: str) -> tuple[int, Any]:
        return await api(daemon, "GET", path)

    return get


# --- the storms ------------------------------------------------------------------------------


async def test_storm_of_200_sites_is_a_few_messages_per_wave(
    start_app: AppClient, settings: Settings, target: Target, aiohttp_server: Any
) -> None:
    count = 200
    fake = await FakeDiscord(enforce_rate_limit=True).start(aiohttp_server)
    client = await start_app(storm_settings(settings, alert_group_window_seconds=WINDOW))
    url = fake.url()
    await add_storm_sites(client, target, url, count)
    await settled(app_get(client), fake, url, "UP", WINDOW)
    sites = list(range(count))

    down_flip = await flip(target, sites, 503)
    down = await wave_named(fake, url, DOWN, down_flip, sites)
    await settled(app_get(client), fake, url, "DOWN", WINDOW)
    up_flip = await flip(target, sites, 200)
    up = await wave_named(fake, url, UP, up_flip, sites)
    await settled(app_get(client), fake, url, "UP", WINDOW)

    for kind, got in ((DOWN, down), (UP, up)):
        summary = f"{kind}: {len(got.messages)} messages, first after {got.first_after:.2f}s, "
        summary += f"all named after {got.all_named_after:.2f}s"
        print(summary)  # the figures, with -s
        assert got.first_after <= DETECTION, summary
        assert got.all_named_after <= NAMED_WITHIN, summary
        assert len(got.messages) <= WAVE_MESSAGES_MAX, summary
    assert_each_once_and_in_order(fake, url, down_flip, sites)
    for m in (m for r in accepted(fake, url, down_flip) for m in mentions(r.body) if m.grouped):
        assert f"]({target.url(site_path(m.site))})" in m.text, m  # the name links to the site
        if m.kind == DOWN:
            assert "HTTP 503" in m.text, m  # the reason
        else:
            assert re.search(r"\d+[smhd]\b", m.text), m  # the downtime
    assert rate_limited(fake) == []
    assert fake.violations() == []


async def test_storm_without_grouping_is_one_message_per_event(
    start_app: AppClient, settings: Settings, target: Target, aiohttp_server: Any
) -> None:
    count = 20  # one message each at 5 per 2 s: 8 s a wave
    fake = await FakeDiscord(enforce_rate_limit=True).start(aiohttp_server)
    client = await start_app(storm_settings(settings, alert_group_window_seconds=0))
    url = fake.url()
    await add_storm_sites(client, target, url, count)
    await settled(app_get(client), fake, url, "UP", 0)
    sites = list(range(count))

    down_flip = await flip(target, sites, 503)
    down = await wave_named(fake, url, DOWN, down_flip, sites)
    await settled(app_get(client), fake, url, "DOWN", 0)
    up_flip = await flip(target, sites, 200)
    up = await wave_named(fake, url, UP, up_flip, sites)
    await settled(app_get(client), fake, url, "UP", 1.0)

    for got in (down, up):
        assert len(got.messages) == count
        assert got.first_after <= DETECTION
    for r in accepted(fake, url, down_flip):
        (embed,) = r.body["embeds"]
        (m,) = mentions(r.body)
        emoji = "🔴" if m.kind == DOWN else "🟢"
        assert embed["title"] == f"{emoji} {site_name(m.site)} is {m.kind}"
    assert_each_once_and_in_order(fake, url, down_flip, sites)
    assert rate_limited(fake) == []
    assert fake.violations() == []


async def test_a_lone_outage_is_one_message_as_fast_as_ever(
    start_app: AppClient, settings: Settings, target: Target, aiohttp_server: Any
) -> None:
    fake = await FakeDiscord(enforce_rate_limit=True).start(aiohttp_server)
    client = await start_app(storm_settings(settings, alert_group_window_seconds=WINDOW))
    url = fake.url()
    await add_storm_sites(client, target, url, 3)
    await settled(app_get(client), fake, url, "UP", WINDOW)
    before = len(fake.received(url))

    flipped = time.monotonic()
    target.statuses[site_path(1)] = 503
    (message,) = (await fake.wait_for(before + 1, url, timeout=DETECTION + 5))[before:]
    (check_at,) = [t for t in target.hit_times(site_path(1)) if t >= flipped][:1]

    assert message.status == 204
    assert message.at - check_at <= 1.0  # sent as soon as the check saw it: nothing held back
    assert message.at - flipped <= INTERVAL + 1.5
    (embed,) = message.body["embeds"]
    assert embed["title"] == f"🔴 {site_name(1)} is DOWN"
    assert {"name": "Reason", "value": "HTTP 503", "inline": False} in embed["fields"]
    await wait_out(2.0)  # and nothing else follows it
    assert len(fake.received(url)) == before + 1
    assert fake.violations() == []


async def test_an_outage_and_its_recovery_in_one_group_keep_their_order(
    start_app: AppClient, settings: Settings, target: Target, aiohttp_server: Any
) -> None:
    fake = await FakeDiscord(enforce_rate_limit=True).start(aiohttp_server)
    client = await start_app(storm_settings(settings, alert_group_window_seconds=WINDOW))
    get = app_get(client)
    url = fake.url()
    ids = await add_storm_sites(client, target, url, 3)
    await settled(get, fake, url, "UP", WINDOW)
    before = len(fake.received(url))

    async def site_is(i: int, status: str) -> bool:
        _, site = await get(f"/sites/{ids[i]}")
        return site["status"] == status

    target.statuses[site_path(0)] = 503  # finds the URL idle: sent at once, alone
    (alone,) = (await fake.wait_for(before + 1, url, timeout=DETECTION + 5))[before:]
    target.statuses[site_path(1)] = 503  # within the window: both wait for it to pass
    await eventually(lambda: site_is(1, "DOWN"))
    target.statuses[site_path(1)] = 200
    await eventually(lambda: site_is(1, "UP"))
    (group,) = (await fake.wait_for(before + 2, url, timeout=WINDOW + 10))[before + 1 :]
    await settled(get, fake, url, None, WINDOW)

    assert [(m.kind, m.site) for m in mentions(alone.body)] == [(DOWN, 0)]
    assert [(m.kind, m.site) for m in mentions(group.body)] == [(DOWN, 1), (UP, 1)]
    (embed,) = group.body["embeds"]
    assert embed["title"] == "🔴 1 site DOWN · 🟢 1 UP"
    assert group.at - alone.at >= WINDOW - 0.05  # held until the window after the last send
    assert len(fake.received(url)) == before + 2
    assert rate_limited(fake) == []
    assert fake.violations() == []


async def test_sigkill_mid_storm_delivers_every_event_once_in_order(
    daemon: Daemon, target: Target, aiohttp_server: Any
) -> None:
    count, window = 24, 2.0  # a short window keeps the test short; grouping is on
    fake = await FakeDiscord(enforce_rate_limit=True).start(aiohttp_server)
    daemon.env |= {
        "RATE_LIMIT": "1000000",
        "UPTIMED_DISCORD_TIMEOUT_SECONDS": "60",  # the hung POST is still in flight at the kill
        "UPTIMED_ALERT_GROUP_WINDOW_SECONDS": str(window),
    }
    await daemon.start()
    url = fake.url()
    for i in range(count):
        body = {"url": target.url(site_path(i)), "name": site_name(i)}
        status, site = await api(daemon, "POST", "/sites", {**body, "check_interval_seconds": 1})
        assert status == 200, site
        hook = {"site_id": site["id"], "discord_webhook_url": url}  # type: ignore[index]
        assert (await api(daemon, "POST", "/webhooks", hook))[0] == 200
    get = daemon_get(daemon)
    await settled(get, fake, url, "UP", window)
    sites = list(range(count))
    first_half, second_half = sites[: count // 2], sites[count // 2 :]

    # The storm's first message is accepted; the next one hangs, unanswered, when the kill lands.
    fake.script(url, Ok())
    fake.default = Hang()
    down_flip = await flip(target, sites, 503)

    async def hung() -> bool:
        return any(r.status is None for r in fake.received(url))

    async def are(status: str, which: list[int]) -> bool:
        _, listed = await get("/sites")
        by_name = {s["name"]: s["status"] for s in listed}
        return all(by_name[site_name(i)] == status for i in which)

    await eventually(hung, timeout=DETECTION + window + 10)
    await eventually(lambda: are("DOWN", sites), timeout=15)
    await flip(target, first_half, 200)  # their recoveries queue behind the hung message
    await eventually(lambda: are("UP", first_half), timeout=15)
    assert accepted(fake, url, down_flip), "the storm's first message was not accepted"
    await daemon.stop(signal.SIGKILL)

    fake.default = Ok()
    restarted = time.monotonic()
    await daemon.start()
    await flip(target, second_half, 200)
    await wave_named(fake, url, DOWN, down_flip, sites)
    await wave_named(fake, url, UP, down_flip, sites)
    await settled(get, fake, url, "UP", window, since=restarted)

    assert_each_once_and_in_order(fake, url, down_flip, sites)
    assert rate_limited(fake) == []
    assert fake.violations() == []
