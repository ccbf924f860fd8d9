"""PATCH /sites/{id}, pausing, and each site's status: against the real app, a real target
and a fake Discord on loopback, on a real SQLite file."""

from __future__ import annotations

import asyncio
import time
from typing import Any

import pytest
from aiohttp.test_utils import TestClient

from tests.conftest import (
    AppClient,
    Target,
    database_at,
    eventually,
    settings_of,
    wait_out,
)
from tests.fake_discord import FakeDiscord
from tests.test_delivery import add_hook, fake, fast, titles  # noqa: F401 (fixtures)
from uptimed.config import Settings
from uptimed.db import SCHEMA_VERSION


async def add_site(client: TestClient, url: str, **fields: Any) -> dict[str, Any]:
    resp = await client.post("/sites", json={"url": url, "name": "Shop", **fields})
    assert resp.status == 200, await resp.text()
    return await resp.json()


async def patch(client: TestClient, site_id: int, body: Any, status: int = 200) -> Any:
    resp = await client.patch(f"/sites/{site_id}", json=body)
    answer = await resp.json()
    assert resp.status == status, answer
    return answer


async def test_patch_changes_the_fields_sent_and_keeps_the_rest(
    client: TestClient, target: Target
) -> None:
    site = await add_site(
        client,
        target.url(),
        check_interval_seconds=600,
        headers={"X-Token": "a"},
        body_contains="hello",
        keep_alive=True,
    )
    changed = await patch(client, site["id"], {"name": "Renamed", "method": "POST"})
    assert settings_of(changed) == settings_of(site) | {"name": "Renamed", "method": "POST"}
    # null resets a field to its default; the others stay
    reset = await patch(client, site["id"], {"headers": None, "keep_alive": None})
    assert settings_of(reset) == settings_of(changed) | {"headers": {}, "keep_alive": None}
    stored = await (await client.get(f"/sites/{site['id']}")).json()
    assert settings_of(stored) == settings_of(reset)


HTTP_ONLY = "applies to http(s):// sites only, not to tcp://."
BAD_FIELDS = [
    ({"url": "ftp://x"}, "Field 'url': "),
    ({"url": None}, "Field 'url': input should be a valid string."),
    ({"name": None}, "Field 'name': input should be a valid string."),
    ({"check_interval_seconds": 0}, "Field 'check_interval_seconds': "),
    ({"method": "FETCH"}, "Field 'method': "),
    ({"headers": {"Bad Name": "x"}}, "Field 'headers': header name \"Bad Name\""),
    ({"headers": {"X": "a\r\nInjected: 1"}}, "Field 'headers': the value of header X"),
    ({"headers": {f"X-{i}": "v" for i in range(51)}}, "Field 'headers': "),
    ({"body": "x" * 65537}, "Field 'body': "),
    ({"accepted_status_codes": ["2xx", "abc"]}, "Field 'accepted_status_codes.1': "),
    ({"accepted_status_codes": []}, "Field 'accepted_status_codes': "),
    ({"json_query": "status[["}, "Field 'json_query': not a JMESPath expression"),
    ({"json_expected": "ok"}, "Field 'json_expected': needs json_query."),
    ({"max_response_time_ms": 0}, "Field 'max_response_time_ms': "),
    ({"timeout_seconds": 121}, "Field 'timeout_seconds': "),
    ({"follow_redirects": "no"}, "Field 'follow_redirects': "),
    ({"verify_tls": 1}, "Field 'verify_tls': "),
    ({"paused": "yes"}, "Field 'paused': "),
    ({"method": "HEAD", "body_contains": "x"}, "Field 'body_contains': a HEAD answer"),
    ({"name": ""}, "Field 'name': "),
    ({"expected_status_code": 600}, "Field 'expected_status_code': "),
    ({"keep_alive": "yes"}, "Field 'keep_alive': "),
    ({"headers": ["X: y"]}, "Field 'headers': input should be an object."),
    ({"headers": {"X": 1}}, "Field 'headers.X': "),
    ({"headers": {"content-length": "5"}}, "Field 'headers': header content-length is"),
    ({"headers": {"A": "1", "a": "2"}}, "Field 'headers': header a is given twice"),
    ({"headers": {"X": "v" * 8200}}, "Field 'headers': names and values must be at most"),
    ({"body": 5}, "Field 'body': "),
    ({"body": "é" * 40000}, "Field 'body': must be at most 65536 bytes"),
    ({"accepted_status_codes": "2xx"}, "Field 'accepted_status_codes': "),
    ({"accepted_status_codes": [600]}, "Field 'accepted_status_codes.0': a status code is"),
    ({"accepted_status_codes": ["300-200"]}, "Field 'accepted_status_codes.0': a range"),
    ({"accepted_status_codes": [True]}, "Field 'accepted_status_codes.0': each entry"),
    ({"body_contains": ""}, "Field 'body_contains': "),
    ({"body_not_contains": "x" * 1001}, "Field 'body_not_contains': "),
    ({"json_query": ""}, "Field 'json_query': "),
    ({"max_response_time_ms": 1.5}, "Field 'max_response_time_ms': "),
    ({"timeout_seconds": 0.5}, "Field 'timeout_seconds': "),
    ({"timeout_seconds": "5"}, "Field 'timeout_seconds': "),
    ({"json_query": "a", "json_expected": 1e400}, "Field 'json_expected': its numbers must"),
    ({"json_query": "a", "json_expected": "x" * 9000}, "Field 'json_expected': must be at"),
    (
        {"url": "http://u:p@127.0.0.1/", "headers": {"Authorization": "Basic x"}},
        "Field 'headers': an Authorization header and a user:password@ in the url",
    ),
    ([1], "Request body must be a JSON object."),
    # tcp:// sites: a port is needed, nothing after it, and no HTTP field but at its default
    ({"url": "tcp://127.0.0.1"}, "Field 'url': "),
    ({"url": "tcp://127.0.0.1:0"}, "Field 'url': "),
    ({"url": "tcp://127.0.0.1:25/smtp"}, "Field 'url': "),
    ({"url": "tcp://u:p@127.0.0.1:25"}, "Field 'url': "),
    ({"url": f"tcp://{'a' * 64}.test:25"}, "Field 'url': "),  # a DNS label is 1-63 characters
    ({"url": f"https://{'a' * 64}.test/"}, "Field 'url': "),
    ({"url": "tcp://127.0.0.1:25", "method": "POST"}, f"Field 'method': {HTTP_ONLY}"),
    ({"url": "tcp://127.0.0.1:25", "headers": {"X": "y"}}, f"Field 'headers': {HTTP_ONLY}"),
    ({"url": "tcp://127.0.0.1:25", "body": "HELO"}, f"Field 'body': {HTTP_ONLY}"),
    ({"url": "tcp://127.0.0.1:25", "body_contains": "220"}, f"Field 'body_contains': {HTTP_ONLY}"),
    (
        {"url": "tcp://127.0.0.1:25", "accepted_status_codes": [200]},
        f"Field 'accepted_status_codes': {HTTP_ONLY}",
    ),
    (
        {"url": "tcp://127.0.0.1:25", "expected_status_code": 204},
        f"Field 'expected_status_code': {HTTP_ONLY}",
    ),
    ({"url": "tcp://127.0.0.1:25", "keep_alive": False}, f"Field 'keep_alive': {HTTP_ONLY}"),
    (
        {"url": "tcp://127.0.0.1:25", "follow_redirects": False},
        f"Field 'follow_redirects': {HTTP_ONLY}",
    ),
    ({"tls": True}, "Field 'tls': applies to tcp:// sites only"),
    ({"tls": 1}, "Field 'tls': "),
    # thresholds, reminders, certificate warnings, mutes
    ({"failure_threshold": 11}, "Field 'failure_threshold': "),
    ({"success_threshold": 0}, "Field 'success_threshold': "),
    ({"failure_threshold": 2.5}, "Field 'failure_threshold': "),
    (
        {"check_interval_seconds": 600, "retry_interval_seconds": 601},
        "Field 'retry_interval_seconds': must be at most check_interval_seconds (600).",
    ),
    ({"retry_interval_seconds": 0}, "Field 'retry_interval_seconds': "),
    ({"renotify_every_seconds": 59}, "Field 'renotify_every_seconds': "),
    ({"renotify_every_seconds": "3600"}, "Field 'renotify_every_seconds': "),
    ({"tls_expiry_warn_days": [-1]}, "Field 'tls_expiry_warn_days.0': "),
    ({"tls_expiry_warn_days": list(range(11))}, "Field 'tls_expiry_warn_days': "),
    ({"tls_expiry_warn_days": 7}, "Field 'tls_expiry_warn_days': "),
    ({"alerts_muted_until": "tomorrow"}, "Field 'alerts_muted_until': must be an ISO 8601"),
    ({"alerts_muted_until": 1_800_000_000}, "Field 'alerts_muted_until': must be an ISO 8601"),
    ({"alerts_muted_until": "3600"}, "Field 'alerts_muted_until': must be an ISO 8601"),
]


@pytest.mark.parametrize(("body", "detail"), BAD_FIELDS)
async def test_bad_patches_are_400_naming_the_field_and_change_nothing(
    client: TestClient, target: Target, body: Any, detail: str
) -> None:
    site = await add_site(client, target.url(), check_interval_seconds=600)
    answer = await patch(client, site["id"], body, status=400)
    assert answer["detail"].startswith(detail), answer
    now = await (await client.get(f"/sites/{site['id']}")).json()
    assert settings_of(now) == settings_of(site)


async def test_post_takes_every_new_field_and_get_shows_it(
    client: TestClient, target: Target
) -> None:
    fields = {
        "method": "PUT",
        "headers": {"Authorization": "Bearer x", "Content-Type": "application/json"},
        "body": '{"ping": 1}',
        "accepted_status_codes": [200, "204", "200-299", "3xx"],
        "body_contains": "hello",
        "body_not_contains": "Maintenance",
        "json_query": "checks[?ok].name | [0]",
        "json_expected": {"nested": [1, None, True]},
        "max_response_time_ms": 2000,
        "timeout_seconds": 2.5,
        "follow_redirects": False,
        "verify_tls": False,
        "paused": True,
    }
    site = await add_site(client, target.url("/all"), **fields)
    assert {k: site[k] for k in fields} == fields
    got = await (await client.get(f"/sites/{site['id']}")).json()
    assert got == site
    listed = await (await client.get("/sites")).json()
    assert listed == [site]


@pytest.mark.parametrize(("body", "detail"), BAD_FIELDS)
async def test_bad_new_sites_are_400_naming_the_field_and_store_nothing(
    client: TestClient, target: Target, body: Any, detail: str
) -> None:
    sent = {"url": target.url(), "name": "Shop"} | body if isinstance(body, dict) else body
    resp = await client.post("/sites", json=sent)
    answer = await resp.json()
    assert resp.status == 400 and answer["detail"].startswith(detail), answer
    assert await (await client.get("/sites")).json() == []


async def test_patch_that_leaves_json_expected_without_its_query_is_400(
    client: TestClient, target: Target
) -> None:
    site = await add_site(client, target.url(), json_query="status", json_expected="ok")
    answer = await patch(client, site["id"], {"json_query": None}, status=400)
    assert answer == {"detail": "Field 'json_expected': needs json_query."}
    both = await patch(client, site["id"], {"json_query": None, "json_expected": None})
    assert (both["json_query"], both["json_expected"]) == (None, None)


@pytest.mark.parametrize("site_id", ["999", "0"])
async def test_patch_of_an_unknown_site_is_400_site_not_found(
    client: TestClient, site_id: str
) -> None:
    resp = await client.patch(f"/sites/{site_id}", json={"name": "x"})
    assert (resp.status, await resp.json()) == (400, {"detail": "Site not found"})


async def test_a_changed_check_runs_within_two_seconds_and_starts_the_grid_there(
    client: TestClient, target: Target
) -> None:
    site = await add_site(client, target.url("/old"), check_interval_seconds=3)
    await target.wait_hits("/old", 1)
    await wait_out(0.3)
    patched_at = time.monotonic()
    await patch(client, site["id"], {"url": target.url("/new")})
    first, second = await target.wait_hits("/new", 2, timeout=8)
    assert first - patched_at < 2.0
    assert second - first == pytest.approx(3.0, abs=0.3)  # the new grid starts at the change
    assert len(target.hit_times("/old")) == 1


async def test_a_new_name_alone_reschedules_nothing(client: TestClient, target: Target) -> None:
    site = await add_site(client, target.url("/n"), check_interval_seconds=3)
    (first,) = await target.wait_hits("/n", 1)
    await patch(client, site["id"], {"name": "Other name"})
    await patch(client, site["id"], {"url": site["url"], "check_interval_seconds": 3})  # same
    await wait_out(1.5)
    assert len(target.hit_times("/n")) == 1  # no extra check
    _, second = await target.wait_hits("/n", 2, timeout=5)
    assert second - first == pytest.approx(3.0, abs=0.3)


async def test_history_and_webhooks_survive_a_patch(
    client: TestClient,
    target: Target,
    fake: FakeDiscord,  # noqa: F811
) -> None:
    site = await add_site(client, target.url("/h"), check_interval_seconds=1)
    await add_hook(client, site["id"], fake.url())
    await target.wait_hits("/h", 2)
    before = await (await client.get(f"/sites/{site['id']}/history")).json()
    await patch(client, site["id"], {"url": target.url("/h2"), "accepted_status_codes": ["2xx"]})
    await target.wait_hits("/h2", 1)

    async def longer() -> list[Any]:
        rows = await (await client.get(f"/sites/{site['id']}/history")).json()
        return rows if len(rows) > len(before) else []

    rows = await eventually(longer)
    assert rows[: len(before)] == before
    hooks = await (await client.get(f"/webhooks/{site['id']}")).json()
    assert len(hooks) == 1


async def test_status_fields_follow_the_checks(client: TestClient, target: Target) -> None:
    site = await add_site(client, target.url("/s"), check_interval_seconds=1)
    assert (site["status"], site["last_checked"], site["last_reason"]) == ("INITIAL", None, None)
    assert site["status_since"] == site["created_at"]

    async def status(want: str) -> dict[str, Any]:
        got = await (await client.get(f"/sites/{site['id']}")).json()
        return got if got["status"] == want and got["last_checked"] else {}

    up = await eventually(lambda: status("UP"))
    assert up["last_reason"] is None and up["last_response_time_ms"] >= 0
    target.statuses["/s"] = 503
    down = await eventually(lambda: status("DOWN"))
    assert down["last_reason"] == "HTTP 503"
    assert down["status_since"] >= up["last_checked"]


async def test_list_filters_by_status_and_paused(client: TestClient, target: Target) -> None:
    target.statuses["/down"] = 500
    up = await add_site(client, target.url("/up"), check_interval_seconds=1)
    down = await add_site(client, target.url("/down"), check_interval_seconds=1)
    paused = await add_site(client, target.url("/p"), paused=True)

    async def ids(query: str) -> list[int]:
        resp = await client.get(f"/sites{query}")
        assert resp.status == 200
        return [s["id"] for s in await resp.json()]

    async def settled() -> bool:
        return await ids("?status=INITIAL") == [paused["id"]]

    await eventually(settled)
    assert await ids("?status=UP") == [up["id"]]
    assert await ids("?status=DOWN") == [down["id"]]
    assert await ids("?paused=true") == [paused["id"]]
    assert await ids("?paused=false") == [up["id"], down["id"]]
    assert await ids("?paused=false&status=DOWN") == [down["id"]]
    assert await ids("") == [up["id"], down["id"], paused["id"]]
    for bad in ("?status=SIDEWAYS", "?paused=perhaps"):
        resp = await client.get(f"/sites{bad}")
        assert resp.status == 400
        assert (await resp.json())["detail"].startswith("Query parameter '")
    assert target.hit_times("/p") == []  # created paused: never checked


async def test_pause_stops_checks_and_resume_checks_at_once(
    start_app: AppClient,
    fast: Settings,  # noqa: F811
    target: Target,
    fake: FakeDiscord,  # noqa: F811
) -> None:
    client = await start_app(fast)
    site = await add_site(client, target.url("/p"), check_interval_seconds=1)
    hook = fake.url()
    await add_hook(client, site["id"], hook)
    await fake.wait_for(1)  # Monitoring started
    answer = await patch(client, site["id"], {"paused": True})
    assert answer["paused"] is True
    await fake.wait_for(2)
    hits = len(target.hit_times("/p"))
    await wait_out(2.5)  # an interval and more: no check, no message
    assert len(target.hit_times("/p")) == hits
    assert titles(fake, hook) == ["🟢 Monitoring started: Shop is UP", "⏸️ Monitoring paused: Shop"]
    again = await patch(client, site["id"], {"paused": True})  # paused again: nothing new
    assert settings_of(again) == settings_of(answer)
    target.statuses["/p"] = 503  # it broke while nobody looked
    resumed_at = time.monotonic()
    await patch(client, site["id"], {"paused": False})
    first = (await target.wait_hits("/p", hits + 1))[hits]
    assert first - resumed_at < 2.0
    await fake.wait_for(4)
    assert titles(fake, hook)[2:] == ["▶️ Monitoring resumed: Shop", "🔴 Shop is DOWN"]
    assert fake.violations() == []


async def test_a_paused_site_stays_paused_across_a_restart(
    start_app: AppClient, settings: Settings, target: Target
) -> None:
    client = await start_app(settings)
    site = await add_site(client, target.url("/r"), check_interval_seconds=1)
    await target.wait_hits("/r", 1)
    await patch(client, site["id"], {"paused": True})
    await client.close()
    hits = len(target.hit_times("/r"))

    again = await start_app(settings)
    await wait_out(2.0)
    assert len(target.hit_times("/r")) == hits
    got = await (await again.get(f"/sites/{site['id']}")).json()
    assert (got["paused"], got["status"]) == (True, "UP")
    await patch(again, site["id"], {"paused": False})
    await target.wait_hits("/r", hits + 1, timeout=3)


async def test_a_change_abandons_a_hanging_check_and_checks_at_once(
    client: TestClient, target: Target
) -> None:
    target.delays["/hang"] = 15  # answers long after the next check is due
    site = await add_site(
        client, target.url("/hang"), check_interval_seconds=60, timeout_seconds=20
    )
    await target.wait_hits("/hang", 1)  # the check is in flight, waiting for the answer
    patched_at = time.monotonic()
    changed = await patch(client, site["id"], {"url": target.url("/quick")})
    (first,) = await target.wait_hits("/quick", 1, timeout=5)
    assert first - patched_at < 2.0  # not skipped behind the hanging check (60 s later)

    async def checked() -> dict[str, Any]:
        got = await (await client.get(f"/sites/{site['id']}")).json()
        return got if got["status"] == "UP" else {}

    up = await eventually(checked)
    assert up["url"] == changed["url"]


async def test_two_patches_at_once_both_land(client: TestClient, target: Target) -> None:
    site = await add_site(client, target.url("/two"), check_interval_seconds=60)
    for round_ in range(5):
        paused = round_ % 2 == 0
        await asyncio.gather(
            patch(client, site["id"], {"paused": paused}),
            patch(client, site["id"], {"name": f"name {round_}"}),
        )
        got = await (await client.get(f"/sites/{site['id']}")).json()
        assert (got["paused"], got["name"]) == (paused, f"name {round_}")


async def test_a_patch_while_the_stored_sites_are_scheduled_at_start_holds(
    start_app: AppClient, settings: Settings, target: Target
) -> None:
    """Scheduling 20,000 stored sites takes seconds after the API answers: PATCHes in that
    time take effect (the moved site is checked at once and its result recorded, the paused
    one is not checked). That resume() does not later schedule a site as it read it before
    the PATCH shows only when that site is next due, a day on: not tested here."""
    count = 20_000
    raw = database_at(settings.db_path, SCHEMA_VERSION)
    now = int(time.time() * 1000)
    raw.executemany(
        "INSERT INTO sites (url, name, check_interval_seconds, expected_status_code,"
        " created_at, status, status_since) VALUES (?, ?, 86400, 200, ?, 'UP', ?)",
        ((target.url(f"/s{i}"), f"s{i}", now - 5000, now - 5000) for i in range(count)),
    )
    raw.execute(  # each was checked a second ago: none is due for a day
        "INSERT INTO history (site_id, status, response_time_ms, checked_at, status_since)"
        " SELECT id, 1, 5, ?, ? FROM sites",
        (now - 1000, now - 5000),
    )
    raw.commit()
    raw.close()

    client = await start_app(settings)
    last, before_last = count, count - 1  # scheduled last: the PATCHes come before their turn
    await patch(client, last, {"url": target.url("/moved")})
    await patch(client, before_last, {"paused": True})
    await target.wait_hits("/moved", 1, timeout=5)
    renamed = await patch(client, 1, {"name": "renamed"})
    assert renamed["name"] == "renamed"
    await wait_out(1.0)
    assert target.hit_times(f"/s{before_last - 1}") == []  # paused: never checked
    assert target.hit_times(f"/s{last - 1}") == []  # its old URL: not checked either
    got = await (await client.get(f"/sites/{before_last}")).json()
    assert got["paused"] is True
    moved = await (await client.get(f"/sites/{last}")).json()
    assert moved["last_checked"] is not None and moved["last_response_time_ms"] is not None
