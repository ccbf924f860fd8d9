"""Discord delivery when things around it break: a held SQLite lock, odd waits from Discord, a
huge answer, a webhook deleted mid-retry. The real app on a real SQLite file posts to the fake
Discord on loopback; the lock is held by a second sqlite3 connection to the same file."""

from __future__ import annotations

import asyncio
import logging
import re
import sqlite3
from collections.abc import Iterator
from typing import Any

import pytest

from tests.conftest import AppClient, Target, eventually, wait_out
from tests.fake_discord import FakeDiscord, Ok, RateLimited, Recorded, ServerError, Stream
from tests.test_delivery import add_hook, add_site, fake, fast, hook_state  # noqa: F401
from uptimed.app_keys import DISPATCHER
from uptimed.config import Settings

OUTBOX_LOGGER = "uptimed.notify.outbox"
BUSY_TIMEOUT = 5.0  # the store's PRAGMA busy_timeout, in seconds
A, B = "111111111111111111", "222222222222222222"


def delivery_lines(caplog: pytest.LogCaptureFixture) -> list[str]:
    return [r.getMessage() for r in caplog.records if r.name == OUTBOX_LOGGER]


async def answered(record: Recorded) -> None:
    """Returns once the fake has finished answering ``record`` (or the client hung up)."""

    async def finished() -> bool:
        return record.finished

    await eventually(finished)


def titles_delivered(discord: FakeDiscord, url: str) -> list[str]:
    return [r.body["embeds"][0]["title"] for r in discord.received(url) if r.status == 204]


# --- a database lock longer than busy_timeout (17.3) ------------------------------------------


class LockHolder:
    """Another connection to the same database file, as a backup tool would hold it."""

    def __init__(self, settings: Settings) -> None:
        self._conn = sqlite3.connect(
            settings.db_path, check_same_thread=False, isolation_level=None, timeout=30
        )
        self.taken: asyncio.Future[None] | None = None
        self.released = asyncio.Event()

    async def hold(self, seconds: float) -> None:
        """Take the write lock (once), keep it ``seconds``, then let go."""
        if self.taken is None:
            self.taken = asyncio.get_running_loop().create_future()
            await asyncio.to_thread(self._conn.execute, "BEGIN EXCLUSIVE")
            self.taken.set_result(None)
            asyncio.get_running_loop().call_later(seconds, self._release)
        await self.taken

    def _release(self) -> None:
        self._conn.execute("COMMIT")
        self.released.set()

    def close(self) -> None:
        self._conn.close()


@pytest.fixture
def lock(fast: Settings) -> Iterator[LockHolder]:  # noqa: F811
    holder = LockHolder(fast)
    yield holder
    holder.close()


async def test_a_lock_held_past_busy_timeout_neither_doubles_nor_strands(
    start_app: AppClient,
    fast: Settings,  # noqa: F811
    target: Target,
    fake: FakeDiscord,  # noqa: F811
    lock: LockHolder,
    caplog: pytest.LogCaptureFixture,
) -> None:
    """Discord accepts webhook A's message and answers B's with a 500 while another process
    holds the database lock for longer than busy_timeout: "delivered" (A) and the failed
    attempt's note (B) cannot be written for a while. A is POSTed exactly once; B is retried
    on its own and delivered, though no transition wakes the outbox again."""
    caplog.set_level(logging.INFO, logger=OUTBOX_LOGGER)
    client = await start_app(fast)
    a, b = fake.url(id=A), fake.url(id=B)
    fake.script(b, ServerError(500))

    async def lock_then_answer(record: Recorded) -> None:
        # Writes queue on uptimed's one connection: A's "delivered" waits busy_timeout and
        # fails, then B's "attempt" does; held this long, both fail at least once.
        await lock.hold(2 * BUSY_TIMEOUT + 1.5)

    fake.before_answer = lock_then_answer
    target.delay = 0.5  # both webhooks exist before the first check queues "started"
    site_id = await add_site(client, target.url(), interval=3600)
    hook_a, hook_b = await add_hook(client, site_id, a), await add_hook(client, site_id, b)

    await fake.wait_for(2)  # both answered under the lock
    await asyncio.wait_for(lock.released.wait(), timeout=20)

    async def both_delivered() -> bool:
        states = [await hook_state(client, h["id"]) for h in (hook_a, hook_b)]
        return all(s["pending"] == 0 and s["last_delivery_at"] for s in states)

    await eventually(both_delivered, timeout=20)
    await wait_out(1.0)  # several rescans (every 0.2 s here): nothing may be sent again
    assert [r.status for r in fake.received(a)] == [204]
    assert [r.status for r in fake.received(b)] == [500, 204]
    assert len(target.hit_times()) == 1  # one check, one transition: nothing else woke it
    lines = delivery_lines(caplog)
    assert any("marking=delivered" in line and "database is locked" in line for line in lines)
    assert any(
        "marking=attempt" in line and "database is locked" in line and "not retried" in line
        for line in lines
    )
    assert fake.violations() == []


# --- Discord's odd waits (17.5) ---------------------------------------------------------------


async def test_a_global_429_asking_for_1e9_seconds_pauses_at_most_backoff_max(
    start_app: AppClient,
    fast: Settings,  # noqa: F811
    target: Target,
    fake: FakeDiscord,  # noqa: F811
    caplog: pytest.LogCaptureFixture,
) -> None:
    client = await start_app(fast.model_copy(update={"discord_backoff_max_seconds": 1.0}))
    a, b = fake.url(id=A), fake.url(id=B)
    fake.script(a, RateLimited(1e9, global_=True), RateLimited(1e9, global_=True))
    target.delay = 0.5
    site_id = await add_site(client, target.url(), interval=3600)
    hook_a = await add_hook(client, site_id, a)
    await add_hook(client, site_id, b)

    async def odd_shown() -> str | None:
        return (await hook_state(client, hook_a["id"]))["last_error"]

    error = await eventually(odd_shown, interval=0.02)
    assert "globally rate limited, retry after 1e+09s" in error
    assert "a wait of 1e+09s is out of range: waiting 1s instead" in error

    got = await fake.wait_for(3, a, timeout=10)
    assert [r.status for r in got] == [429, 429, 204]
    gaps = [got[1].at - got[0].at, got[2].at - got[1].at]
    assert all(0.9 <= gap < 3 for gap in gaps), gaps
    assert titles_delivered(fake, b) == ["🟢 Monitoring started: Shop is UP"]
    assert any("out of range" in line for line in delivery_lines(caplog))


@pytest.mark.parametrize(
    ("answer", "said"),
    [
        (RateLimited(retry_after=-5), "rate limited, retry after -5s"),
        (ServerError(503, retry_after=0), "Discord answered 503"),
    ],
    ids=["429-retry-after-minus-5", "503-retry-after-0"],
)
async def test_a_zero_or_negative_wait_is_not_a_busy_loop(
    start_app: AppClient,
    fast: Settings,  # noqa: F811
    target: Target,
    fake: FakeDiscord,  # noqa: F811
    answer: Any,
    said: str,
) -> None:
    """Believed, these made 10,000 POSTs in 10 s; the backoff (at least 0.2 s here) floors them."""
    settings = fast.model_copy(
        update={"discord_backoff_initial_seconds": 0.2, "discord_backoff_max_seconds": 0.4}
    )
    client = await start_app(settings)
    url = fake.url()
    fake.default = answer
    target.delay = 0.5
    site_id = await add_site(client, target.url(), interval=3600)
    hook = await add_hook(client, site_id, url)
    first = (await fake.wait_for(1, url))[0].at

    await wait_out(2.0)
    times = [r.at for r in fake.received(url) if r.at <= first + 2.0]
    assert 3 <= len(times) <= 11, len(times)  # retried, but at most one POST per 0.2 s
    state = await hook_state(client, hook["id"])
    assert said in state["last_error"]
    assert "is out of range: waiting" in state["last_error"]
    assert state["pending"] == 1 and state["last_error_at"]


async def test_a_webhook_429_asking_for_1e9_seconds_gives_up_on_time(
    start_app: AppClient,
    fast: Settings,  # noqa: F811
    target: Target,
    fake: FakeDiscord,  # noqa: F811
) -> None:
    """The give-up time is the ceiling: one more try at the deadline, then failed."""
    client = await start_app(fast.model_copy(update={"discord_give_up_after_seconds": 2}))
    url = fake.url()
    fake.default = RateLimited(1e9)
    target.delay = 0.5
    site_id = await add_site(client, target.url(), interval=3600)
    hook = await add_hook(client, site_id, url)

    async def failed() -> dict[str, Any] | None:
        state = await hook_state(client, hook["id"])
        return state if state["pending"] == 0 and state["last_error"] else None

    state = await eventually(failed, timeout=8)
    assert "retry after 1e+09s" in state["last_error"]
    got = fake.received(url)
    assert len(got) == 2
    assert 1.0 < got[1].at - got[0].at < 3.0


# --- a huge answer (17.9) ---------------------------------------------------------------------


async def test_a_300_mb_answer_is_cut_and_classified(
    start_app: AppClient,
    fast: Settings,  # noqa: F811
    target: Target,
    fake: FakeDiscord,  # noqa: F811
    caplog: pytest.LogCaptureFixture,
) -> None:
    client = await start_app(fast)
    url = fake.url()
    fake.script(url, Stream(status=500))
    target.delay = 0.5
    site_id = await add_site(client, target.url(), interval=3600)
    hook = await add_hook(client, site_id, url)

    got = await fake.wait_for(2, url, timeout=10)
    assert [r.status for r in got] == [500, 204]
    streamed = got[0]
    await answered(streamed)
    assert streamed.disconnected
    assert streamed.sent < 32 * 1024 * 1024  # of 300 MiB: uptimed hung up early
    assert any(
        "Discord answered 500: Internal Server Error" in line for line in delivery_lines(caplog)
    )

    async def delivered() -> bool:
        state = await hook_state(client, hook["id"])
        return state["pending"] == 0 and state["last_error"] is None

    await eventually(delivered)


async def test_the_test_endpoint_reads_a_huge_answer_no_further(
    start_app: AppClient,
    fast: Settings,  # noqa: F811
    target: Target,
    fake: FakeDiscord,  # noqa: F811
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.INFO)
    client = await start_app(fast)
    url = fake.url()
    site_id = await add_site(client, target.url(), interval=3600)
    hook = await add_hook(client, site_id, url)
    await fake.wait_for(1, url)  # "Monitoring started"
    fake.script(url, Stream(status=400))

    resp = await client.post(f"/webhooks/{hook['id']}/test")
    assert resp.status == 502
    assert (await resp.json())["detail"] == (
        "Test message not delivered: Discord answered 400: Bad Request"
    )
    streamed = fake.received(url)[-1]
    await answered(streamed)
    assert streamed.disconnected and streamed.sent < 32 * 1024 * 1024
    assert any(
        f"test message failed site={site_id} webhook={hook['id']}" in r.getMessage()
        for r in caplog.records
    )


# --- deleting a webhook (16.5) ----------------------------------------------------------------


async def test_a_deleted_webhook_gets_nothing_more_even_mid_retry(
    start_app: AppClient,
    fast: Settings,  # noqa: F811
    target: Target,
    fake: FakeDiscord,  # noqa: F811
    caplog: pytest.LogCaptureFixture,
) -> None:
    """Webhook A is being retried (a 30 s wait) when it is deleted; site 2's webhook C shares
    its URL and its message waits behind A's. A is not POSTed again, C goes out at once, and
    deleting the whole site still sends "Monitoring ended" to its remaining webhook B."""
    caplog.set_level(logging.INFO)
    client = await start_app(fast)
    shared, b = fake.url(id=A), fake.url(id=B)
    fake.script(shared, RateLimited(30))
    target.delays["/two"] = 1.5  # site 2's first check (and C's message) comes second
    one = await add_site(client, target.url("/one"), interval=3600, name="One")
    two = await add_site(client, target.url("/two"), interval=3600, name="Two")
    hook_a = await add_hook(client, one, shared)
    await add_hook(client, one, b)
    hook_c = await add_hook(client, two, shared)
    await fake.wait_for(1, shared)  # A's "started" got the 429: its worker waits 30 s

    async def c_queued() -> bool:
        return (await hook_state(client, hook_c["id"]))["pending"] == 1

    await eventually(c_queued)
    resp = await client.delete(f"/webhooks/{hook_a['id']}")
    assert resp.status == 200

    await fake.wait_for(2, shared, timeout=5)  # C's message, long before A's 30 s were up
    assert titles_delivered(fake, shared) == ["🟢 Monitoring started: Two is UP"]
    assert any(
        f"webhook deleted site={one} webhook={hook_a['id']} dropped=1" in r.getMessage()
        for r in caplog.records
    )

    resp = await client.delete(f"/sites/{one}")
    assert resp.status == 200
    await fake.wait_for(2, b)
    assert titles_delivered(fake, b) == [
        "🟢 Monitoring started: One is UP",
        "⚪ Monitoring ended: One",
    ]
    await wait_out(0.5)
    assert len(fake.received(shared)) == 2  # A: the one 429 before its deletion, nothing after
    assert fake.violations() == []


# --- visible while it lasts, and named in the log (16.4, 16.10) -------------------------------


async def test_a_retried_message_shows_its_error_and_time_and_every_line_names_it(
    start_app: AppClient,
    fast: Settings,  # noqa: F811
    target: Target,
    fake: FakeDiscord,  # noqa: F811
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.INFO, logger=OUTBOX_LOGGER)
    client = await start_app(fast)
    url = fake.url()
    fake.default = ServerError(503)
    target.delay = 0.5
    site_id = await add_site(client, target.url(), interval=3600)
    hook = await add_hook(client, site_id, url)
    await fake.wait_for(2, url)

    async def retrying() -> dict[str, Any] | None:
        state = await hook_state(client, hook["id"])
        return state if state["last_error"] else None

    state = await retrying()
    assert state is not None
    assert state["pending"] == 1
    assert state["last_error"] == "Discord answered 503: 503: Server Error (code 0)"
    assert state["last_error_at"] >= hook["created_at"]  # ISO 8601 UTC strings sort by time

    fake.default = Ok()

    async def delivered() -> dict[str, Any] | None:
        state = await hook_state(client, hook["id"])
        return state if state["pending"] == 0 else None

    state = await eventually(delivered)
    assert (state["last_error"], state["last_error_at"]) == (None, None)
    assert state["last_delivery_at"]

    retries = [r for r in caplog.records if "message retry" in r.getMessage()]
    assert retries and all(r.levelno == logging.WARNING for r in retries)
    lines = delivery_lines(caplog)
    assert any("message delivered" in line for line in lines)
    named = re.compile(rf"\bsite={site_id} webhook={hook['id']} message=\d+\b")
    assert all(named.search(line) for line in lines), lines


async def test_a_stop_lets_a_post_in_flight_finish_so_it_is_not_sent_again(
    start_app: AppClient,
    fast: Settings,  # noqa: F811
    fake: FakeDiscord,  # noqa: F811
    target: Target,
) -> None:
    """A SIGTERM while Discord is answering: the answer is waited for and recorded, so the
    message is not POSTed a second time after the restart."""
    arrived, answer = asyncio.Event(), asyncio.Event()

    async def hold(record: Recorded) -> None:
        arrived.set()
        await answer.wait()

    fake.before_answer = hold
    client = await start_app(fast)
    site_id = await add_site(client, target.url("/ok"))
    await add_hook(client, site_id, fake.url())
    await asyncio.wait_for(arrived.wait(), 10)  # "Monitoring started" is being answered
    dispatcher = client.app[DISPATCHER]
    closing = asyncio.create_task(client.close())

    async def stopping() -> bool:
        return dispatcher._stopping  # the stop has begun and waits for the POST in flight

    await eventually(stopping, interval=0.01)
    answer.set()
    await asyncio.wait_for(closing, 15)

    client = await start_app(fast)
    hooks = await (await client.get("/webhooks")).json()
    assert hooks[0]["pending"] == 0 and hooks[0]["last_delivery_at"] is not None, hooks
    await wait_out(1.5)  # a resend would come at once after the start
    assert len(fake.received()) == 1
