"""/metrics through the real app: parsed with prometheus_client's own parser, and compared with
what the API says about the same sites, webhooks and requests."""

from __future__ import annotations

from pathlib import Path

import aiohttp
import pytest
from aiohttp.test_utils import TestClient
from prometheus_client.parser import text_string_to_metric_families
from prometheus_client.samples import Sample

from tests.conftest import AppClient, Target, eventually
from tests.fake_discord import FakeDiscord, NotFound, Ok, ServerError
from tests.test_certificate_expiry import TlsTarget, tls  # noqa: F401  (the fixture)
from tests.test_sites_as_code import Start, reload, site_table, sites_by_key, start, write  # noqa: F401
from uptimed.config import Settings
from uptimed.db import Store
from uptimed.metrics import SCRAPE_CHUNK
from uptimed.models import SiteIn

Samples = dict[tuple[str, frozenset[tuple[str, str]]], float]


async def scrape(client: TestClient) -> Samples:
    resp = await client.get("/metrics")
    assert resp.status == 200, await resp.text()
    assert resp.headers["Content-Type"].startswith("text/plain; version=")
    samples: Samples = {}
    families = list(text_string_to_metric_families(await resp.text()))
    # Each family once: its HELP, TYPE and samples together (the parser would start a second
    # family of the same name for samples written after another family's).
    names = [family.name for family in families]
    assert len(names) == len(set(names)), names
    for family in families:
        for s in family.samples:
            key = (s.name, frozenset(s.labels.items()))
            assert key not in samples, key  # no series twice
            samples[key] = s.value
    return samples


def value(samples: Samples, metric: str, /, **labels: str) -> float | None:
    return samples.get((metric, frozenset(labels.items())))


def named(samples: Samples, name: str) -> list[Sample]:
    return [Sample(n, dict(labels), v) for (n, labels), v in samples.items() if n == name]


async def add_site(client: TestClient, **body: object) -> dict:
    resp = await client.post("/sites", json=body)
    assert resp.status == 200, await resp.text()
    return await resp.json()


async def checked(client: TestClient, site_id: int) -> dict:
    """The site once checked, and for an https site once its certificate is stored too (that
    is written just after the check's row)."""

    async def done() -> dict | None:
        site = await (await client.get(f"/sites/{site_id}")).json()
        if site["last_checked"] is None:
            return None
        if site["url"].startswith("https://") and site["tls_certificate"] is None:
            return None
        return site

    return await eventually(done)


async def test_site_series_match_the_api(
    client: TestClient,
    target: Target,
    tls: TlsTarget,  # noqa: F811
) -> None:
    target.statuses["/down"] = 503
    up = await add_site(client, url=target.url("/up"), name="Shop")
    down = await add_site(client, url=target.url("/down"), name='Blog "b" \\ x')
    secure = await add_site(
        client, url=f"https://127.0.0.1:{tls.port}/", name="TLS", verify_tls=False
    )
    paused = await add_site(client, url=target.url("/p"), name="Paused", paused=True)
    sites = {s["id"]: await checked(client, s["id"]) for s in (up, down, secure)}
    samples = await scrape(client)

    for site_id, site in sites.items():
        labels = {"site_id": str(site_id), "name": site["name"]}
        assert value(samples, "uptimed_site_up", **labels) == (site["status"] == "UP")
        assert value(samples, "uptimed_site_response_time_seconds", **labels) == pytest.approx(
            site["last_response_time_ms"] / 1000
        )
        window = (await (await client.get(f"/sites/{site_id}/uptime?window=24h")).json())[
            "windows"
        ][0]
        ups = value(samples, "uptimed_site_checks_total", **labels, result="up")
        downs = value(samples, "uptimed_site_checks_total", **labels, result="down")
        assert (ups, downs) == (
            window["checks"] - window["checks_down"],
            window["checks_down"],
        )
    assert value(samples, "uptimed_site_up", site_id=str(down["id"]), name='Blog "b" \\ x') == 0
    tls_days = named(samples, "uptimed_site_tls_days_left")
    assert tls_days == [
        Sample(
            "uptimed_site_tls_days_left",
            {"site_id": str(secure["id"]), "name": "TLS"},
            sites[secure["id"]]["tls_certificate"]["days_left"],
        )
    ]
    # A paused site is neither up nor down; its checks are shown (none yet).
    paused_labels = {"site_id": str(paused["id"]), "name": "Paused"}
    assert value(samples, "uptimed_site_up", **paused_labels) is None
    assert value(samples, "uptimed_site_checks_total", **paused_labels, result="up") == 0
    # Three checks, each a status change: three rows, three durations, three runs started.
    assert value(samples, "uptimed_history_rows_written_total") == 3
    assert value(samples, "uptimed_check_duration_seconds_count") == 3
    assert value(samples, "uptimed_scheduler_lateness_seconds_count") >= 3  # type: ignore[operator]
    assert value(samples, "process_resident_memory_bytes") > 0  # type: ignore[operator]

    await client.delete(f"/sites/{up['id']}")
    samples = await scrape(client)
    assert str(up["id"]) not in {s.labels["site_id"] for s in named(samples, "uptimed_site_up")}


async def test_api_requests_are_counted_by_route_pattern_and_status_class(
    client: TestClient, target: Target
) -> None:
    site = await add_site(client, url=target.url(), name="s")
    for _ in range(3):
        assert (await client.get(f"/sites/{site['id']}")).status == 200
    assert (await client.get("/sites/999")).status == 400
    assert (await client.get("/no/such/path/42")).status == 404
    async with aiohttp.ClientSession() as anonymous:
        assert (await anonymous.get(client.make_url("/sites"))).status == 401
    samples = await scrape(client)
    requests = "uptimed_api_requests_total"
    assert value(samples, requests, route="/sites/{id}", method="GET", status="2xx") == 3
    assert value(samples, requests, route="/sites/{id}", method="GET", status="4xx") == 1
    assert value(samples, requests, route="/sites", method="POST", status="2xx") == 1
    assert value(samples, requests, route="/sites", method="GET", status="4xx") == 1
    assert value(samples, requests, route="unmatched", method="GET", status="4xx") == 1
    routes = {s.labels["route"] for s in named(samples, requests)}
    assert not any("999" in r or "42" in r for r in routes)  # never the raw path


async def test_metrics_need_the_login_unless_metrics_public(
    start_app: AppClient, settings: Settings
) -> None:
    closed = await start_app(settings)
    async with aiohttp.ClientSession() as anonymous:
        resp = await anonymous.get(closed.make_url("/metrics"))
        assert resp.status == 401
        assert resp.headers["WWW-Authenticate"] == 'Basic realm="uptimed"'
        assert await resp.json() == {
            "detail": "Authentication required: send valid HTTP Basic credentials."
        }
        await closed.close()
        open_ = await start_app(settings.model_copy(update={"metrics_public": True}))
        resp = await anonymous.get(open_.make_url("/metrics"))
        assert resp.status == 200
        assert "uptimed_check_duration_seconds" in await resp.text()
        assert (await anonymous.get(open_.make_url("/sites"))).status == 401  # only /metrics


async def test_discord_counters_and_pending_match_the_webhooks(
    start_app: AppClient, settings: Settings, target: Target, aiohttp_server: object
) -> None:
    fake = await FakeDiscord().start(aiohttp_server)  # type: ignore[arg-type]
    client = await start_app(
        settings.model_copy(
            update={"discord_backoff_initial_seconds": 0.05, "discord_backoff_max_seconds": 0.2}
        )
    )
    good, gone = fake.url("111111111111111111"), fake.url("222222222222222222")
    fake.script(good, ServerError(), Ok())  # one retry, then sent
    fake.script(gone, NotFound())  # failed at once
    site = await add_site(client, url=target.url(), name="s")
    for hook in (good, gone):
        resp = await client.post(
            "/webhooks", json={"site_id": site["id"], "discord_webhook_url": hook}
        )
        assert resp.status == 200

    async def settled() -> Samples | None:
        samples = await scrape(client)
        sent = value(samples, "uptimed_discord_messages_sent_total")
        failed = value(samples, "uptimed_discord_messages_failed_total")
        return samples if (sent, failed) == (1, 1) else None

    samples = await eventually(settled)
    assert value(samples, "uptimed_discord_messages_retried_total") == 1
    hooks = await (await client.get("/webhooks")).json()
    assert value(samples, "uptimed_discord_messages_pending") == sum(h["pending"] for h in hooks)
    assert fake.violations() == []


async def test_pending_counts_what_waits_for_discord(
    start_app: AppClient, settings: Settings, target: Target, aiohttp_server: object
) -> None:
    client = await start_app(settings)
    site = await add_site(client, url=target.url(), name="s", paused=True)
    # Nothing listens on port 9: the messages are retried and stay pending.
    hook = "http://127.0.0.1:9/api/webhooks/123456789012345678/token"
    await client.post("/webhooks", json={"site_id": site["id"], "discord_webhook_url": hook})
    await client.patch(f"/sites/{site['id']}", json={"paused": False})

    async def pending() -> Samples | None:
        hooks = await (await client.get("/webhooks")).json()
        samples = await scrape(client)
        count = value(samples, "uptimed_discord_messages_pending")
        return samples if hooks[0]["pending"] == count >= 2 else None  # started, then UP

    await eventually(pending, interval=0.5)


async def test_a_run_skipped_while_the_last_check_runs_is_counted(
    client: TestClient, target: Target
) -> None:
    target.delays["/slow"] = 1.5  # longer than the interval, shorter than the 2 s timeout
    await add_site(client, url=target.url("/slow"), name="slow", check_interval_seconds=1)

    async def skipped() -> bool:
        return bool(value(await scrape(client), "uptimed_checks_skipped_total"))

    await eventually(skipped)


def site_ids(samples: Samples, name: str) -> set[str]:
    return {s.labels["site_id"] for s in named(samples, name)}


async def test_a_renamed_paused_or_deleted_site_shows_at_the_next_scrape(
    client: TestClient, target: Target
) -> None:
    site = await add_site(client, url=target.url(), name="Old")
    other = await add_site(client, url=target.url("/other"), name="Other")
    await checked(client, site["id"])
    sid = str(site["id"])

    resp = await client.patch(f"/sites/{sid}", json={"name": 'New "n"'})
    assert resp.status == 200, await resp.text()
    samples = await scrape(client)
    assert value(samples, "uptimed_site_up", site_id=sid, name='New "n"') == 1
    assert value(samples, "uptimed_site_checks_total", site_id=sid, name='New "n"', result="up")
    assert not [s for s in named(samples, "uptimed_site_up") if s.labels["name"] == "Old"]

    await client.patch(f"/sites/{sid}", json={"paused": True})
    samples = await scrape(client)
    assert sid not in site_ids(samples, "uptimed_site_up")  # neither up nor down
    assert sid in site_ids(samples, "uptimed_site_checks_total")  # its checks still shown

    await client.patch(f"/sites/{sid}", json={"paused": False})
    samples = await scrape(client)
    assert value(samples, "uptimed_site_up", site_id=sid, name='New "n"') == 1

    await client.delete(f"/sites/{sid}")
    samples = await scrape(client)
    for family in (
        "uptimed_site_up",
        "uptimed_site_response_time_seconds",
        "uptimed_site_checks_total",
    ):
        assert sid not in site_ids(samples, family)
    assert str(other["id"]) in site_ids(samples, "uptimed_site_checks_total")


async def test_stored_sites_are_scraped_after_a_start_across_chunks(
    start_app: AppClient, settings: Settings, target: Target
) -> None:
    """More sites than one chunk of the streamed answer, stored before the start (the names
    and paused flags come from the start-up's resume, not from the API)."""
    count = 2 * SCRAPE_CHUNK + 7
    store = await Store.open(settings.db_path)
    try:
        for n in range(count):
            data = SiteIn(url=target.url(f"/{n}"), name=f"s{n} \\ {n}", paused=n > 0)
            await store.insert_site(data, now=1_700_000_000_000)
    finally:
        await store.close()
    client = await start_app(settings)

    async def all_scraped() -> Samples | None:
        samples = await scrape(client)
        got = named(samples, "uptimed_site_checks_total")
        return samples if len(got) == 2 * count else None

    samples = await eventually(all_scraped)
    names = {
        s.labels["site_id"]: s.labels["name"] for s in named(samples, "uptimed_site_checks_total")
    }
    assert sorted(names.values()) == sorted(f"s{n} \\ {n}" for n in range(count))
    first = min(names, key=int)
    await checked(client, int(first))  # the one site not paused
    samples = await scrape(client)
    assert site_ids(samples, "uptimed_site_up") == {first}
    assert value(samples, "uptimed_site_checks_total", site_id=first, name="s0 \\ 0", result="up")


async def test_a_reload_renames_pauses_and_removes_declared_sites_in_the_scrape(
    start: Start,  # noqa: F811
    settings: Settings,
    target: Target,
    tmp_path: Path,
) -> None:
    """Sites changed by the config file, not the API: the series follow them as well."""
    path = write(tmp_path / "uptimed.toml", site_table("shop", target.url("/shop"), 'name = "A"'))
    client = await start(settings, path)
    sid = str((await sites_by_key(client))["shop"]["id"])
    await checked(client, int(sid))
    assert value(await scrape(client), "uptimed_site_up", site_id=sid, name="A") == 1

    write(path, site_table("shop", target.url("/shop"), 'name = "B"', "paused = true"))
    await reload(client)
    samples = await scrape(client)
    assert sid not in site_ids(samples, "uptimed_site_up")
    assert value(samples, "uptimed_site_checks_total", site_id=sid, name="B", result="up") == 1

    write(path, "")
    await reload(client)
    assert sid not in site_ids(await scrape(client), "uptimed_site_checks_total")
