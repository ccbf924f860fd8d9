"""Sites and webhooks declared in the config file, made to match it at start, on SIGHUP and on
POST /config/reload: the real app (or the real ``uptimed`` process) on a real SQLite file, a
real target and the fake Discord on loopback."""

from __future__ import annotations

import asyncio
import contextlib
import signal
from collections.abc import Awaitable, Callable
from pathlib import Path
from textwrap import dedent
from typing import Any

import pytest
from aiohttp.test_utils import TestClient

from tests.conftest import AUTH, Target, eventually, settings_of, wait_out
from tests.daemon import (  # noqa: F401
    Daemon,
    api,
    daemon_env,
    daemon_fixture,
    free_port,
    run_to_exit,
)
from tests.fake_discord import FakeDiscord
from tests.test_delivery import add_hook, fake, fast, titles  # noqa: F401 (fixtures)
from uptimed.app import create_app
from uptimed.config import Settings
from uptimed.declared import read_declaration

Start = Callable[[Settings, Path | None], Awaitable[TestClient]]
UNSET = "UPTIMED_TEST_NEVER_SET_14"


@pytest.fixture
def start(aiohttp_client: Callable[..., Awaitable[TestClient]]) -> Start:
    """The real app as ``__main__`` builds it: the file read at start (None: no file)."""

    async def start(settings: Settings, path: Path | None) -> TestClient:
        declaration = None if path is None else read_declaration(path)
        client = await aiohttp_client(create_app(settings, declaration=declaration))
        client.session.headers.update(AUTH)
        return client

    return start


def site_table(key: str, url: str, *lines: str) -> str:
    return "\n".join(["[[sites]]", f'key = "{key}"', f'url = "{url}"', *lines, ""])


def write(path: Path, *parts: str) -> Path:
    path.write_text("\n".join(dedent(part) for part in parts))
    return path


async def sites_by_key(client: TestClient) -> dict[str | None, dict[str, Any]]:
    resp = await client.get("/sites")
    assert resp.status == 200
    return {site["key"] or site["name"]: site for site in await resp.json()}


async def reload(client: TestClient, status: int = 200) -> dict[str, Any]:
    resp = await client.post("/config/reload")
    body = await resp.json()
    assert resp.status == status, body
    return body


def counts(body: dict[str, Any]) -> dict[str, int]:
    return {k: v for k, v in body.items() if k != "seconds"}


async def test_start_edit_and_sighup_make_the_database_match_the_file(
    daemon: Daemon,
    target: Target,
    fake: FakeDiscord,  # noqa: F811
) -> None:
    team = fake.url("111111111111111111")
    path = write(
        daemon.cwd / "uptimed.toml",
        '[webhooks.team]\nurl = "${TEAM_HOOK}"\n',
        site_table(
            "shop", target.url("/shop"), "check_interval_seconds = 1", 'webhooks = ["team"]'
        ),
        site_table(
            "blog", target.url("/blog"), "check_interval_seconds = 1", 'webhooks = ["team"]'
        ),
    )
    daemon.env["TEAM_HOOK"] = team  # ${NAME} from the environment
    await daemon.start("--config", str(path))
    status, listed = await api(daemon, "GET", "/sites")
    assert status == 200
    assert {(s["key"], s["source"], s["name"]) for s in listed} == {  # type: ignore[union-attr]
        ("shop", "config", "shop"),
        ("blog", "config", "blog"),
    }
    status, api_site = await api(
        daemon, "POST", "/sites", {"url": target.url("/api"), "name": "by-api"}
    )
    assert status == 200 and api_site["source"] == "api" and api_site["key"] is None  # type: ignore[index]
    await target.wait_hits("/shop", 2)
    await target.wait_hits("/blog", 2)
    await fake.wait_for(2, team)  # the shared webhook hears both sites
    assert sorted(titles(fake, team)) == [
        "🟢 Monitoring started: blog is UP",
        "🟢 Monitoring started: shop is UP",
    ]
    shop = next(s for s in listed if s["key"] == "shop")  # type: ignore[union-attr]
    _, history_before = await api(daemon, "GET", f"/sites/{shop['id']}/history")

    write(
        path,
        '[webhooks.team]\nurl = "${TEAM_HOOK}"\n',
        site_table(
            "shop",
            target.url("/shop"),
            'name = "Shop"',
            "check_interval_seconds = 2",
            'webhooks = ["team"]',
        ),
        site_table("docs", target.url("/docs"), "check_interval_seconds = 1"),
    )
    assert daemon.proc is not None
    daemon.proc.send_signal(signal.SIGHUP)

    async def reloaded() -> dict[str, Any] | None:
        _, now = await api(daemon, "GET", "/sites")
        by_key = {s["key"]: s for s in now}  # type: ignore[union-attr]
        return by_key if set(by_key) == {"shop", "docs", None} else None

    by_key = await eventually(reloaded)
    assert by_key["shop"]["id"] == shop["id"]  # changed in place
    assert (by_key["shop"]["name"], by_key["shop"]["check_interval_seconds"]) == ("Shop", 2)
    assert settings_of(by_key[None]) == settings_of(api_site)  # type: ignore[arg-type]
    await fake.wait_for(3, team)
    assert any(t.startswith("⚪ Monitoring ended: blog") for t in titles(fake, team))
    _, history_after = await api(daemon, "GET", f"/sites/{shop['id']}/history")
    assert history_after[: len(history_before)] == history_before  # type: ignore[index]
    await target.wait_hits("/docs", 1)
    status, hooks = await api(daemon, "GET", "/webhooks")
    assert [(h["site_id"], h["source"], h["key"]) for h in hooks] == [  # type: ignore[union-attr]
        (shop["id"], "config", "team"),
    ]
    assert fake.violations() == []


async def test_a_broken_file_on_sighup_changes_nothing_and_logs_one_error(
    daemon: Daemon, target: Target
) -> None:
    path = write(daemon.cwd / "uptimed.toml", site_table("shop", target.url("/shop")))
    await daemon.start("--config", str(path))
    _, before = await api(daemon, "GET", "/sites")
    write(path, site_table("shop", target.url("/shop")), "[[sites]\nkey = ")
    assert daemon.proc is not None
    daemon.proc.send_signal(signal.SIGHUP)
    status, answer = await api(daemon, "POST", "/config/reload")  # the same file, the same error
    assert status == 400 and "not valid TOML" in answer["detail"]  # type: ignore[index]
    _, after = await api(daemon, "GET", "/sites")
    assert [settings_of(s) for s in after] == [settings_of(s) for s in before]  # type: ignore[union-attr]

    async def errors_logged() -> list[str]:
        assert daemon.proc is not None and daemon.proc.stdout is not None
        lines = []
        while len(lines) < 2:
            line = (await daemon.proc.stdout.readline()).decode()
            if "config reload failed" in line:
                lines.append(line)
        return lines

    lines = await asyncio.wait_for(errors_logged(), timeout=10)  # SIGHUP's and the POST's
    assert all(" ERROR " in line and str(path) in line for line in lines), lines
    code, _ = await daemon.stop(signal.SIGTERM)
    assert code == 0  # and SIGHUP did not end it


async def hang_up_until(daemon: Daemon, done: Callable[[], bool]) -> None:
    """SIGHUP every 5 ms until ``done()`` or the process's exit."""
    assert daemon.proc is not None
    while not done() and daemon.proc.returncode is None:
        with contextlib.suppress(ProcessLookupError):
            daemon.proc.send_signal(signal.SIGHUP)
        await asyncio.sleep(0.005)


async def test_sighup_while_uptimed_starts_or_stops_does_not_end_it(
    daemon: Daemon, target: Target
) -> None:
    """``systemctl reload`` may come before the loop handles SIGHUP, or after it stopped: from
    the start's database open (300 declared sites applied next) to the exit, none ends it."""
    sites = [site_table(f"s{i}", target.url(f"/s{i}"), "paused = true") for i in range(300)]
    path = write(daemon.cwd / "uptimed.toml", *sites)
    starting = asyncio.create_task(daemon.start("--config", str(path)))
    database = daemon.cwd / "data" / "uptimed.db"

    async def opened() -> bool:
        return database.exists()

    await eventually(opened, timeout=15, interval=0.002)
    await hang_up_until(daemon, starting.done)
    await starting  # healthy: uptimed exited would raise here
    _, listed = await api(daemon, "GET", "/sites")
    assert len(listed) == 300  # type: ignore[arg-type]
    assert daemon.proc is not None
    daemon.proc.send_signal(signal.SIGTERM)
    await hang_up_until(daemon, lambda: False)
    out = (await daemon.proc.stdout.read()).decode()  # type: ignore[union-attr]
    assert await daemon.proc.wait() == 0, out[-2000:]


async def test_a_broken_file_at_start_exits_2_with_one_line(tmp_path: Path) -> None:
    path = write(
        tmp_path / "uptimed.toml",
        site_table("shop", "https://example.com/", "check_interval_seconds = 0"),
    )
    env = daemon_env()
    exited = await run_to_exit(tmp_path, env, "--port", str(free_port()), "--config", str(path))
    assert exited.code == 2
    assert len(exited.lines) == 1, exited.lines
    line = exited.lines[0]
    assert str(path) in line and "'shop'" in line and "check_interval_seconds" in line, line
    assert not (tmp_path / "data").exists()  # refused before anything was made


BROKEN = [
    ("bad-toml", "[[sites]\nkey = ", "not valid TOML"),
    ("bad-field", site_table("shop", "http://127.0.0.1:9/", "timeout_seconds = -1"), "'shop'"),
    (
        "duplicate-key",
        site_table("new", "http://127.0.0.1:9/a") + site_table("new", "http://127.0.0.1:9/b"),
        "key 'new' is also [[sites]] #2's key",
    ),
    (
        "unknown-webhook",
        site_table("new", "http://127.0.0.1:9/", 'webhooks = ["nope"]'),
        "no [webhooks.nope] table",
    ),
    (
        "missing-variable",
        site_table("new", "http://127.0.0.1:9/${" + UNSET + "}"),
        f"environment variable {UNSET} is not set",
    ),
]


@pytest.mark.parametrize(("text", "names"), [b[1:] for b in BROKEN], ids=[b[0] for b in BROKEN])
async def test_a_broken_edit_changes_nothing_and_reload_answers_400(
    start: Start, settings: Settings, target: Target, tmp_path: Path, text: str, names: str
) -> None:
    path = write(
        tmp_path / "uptimed.toml",
        '[webhooks.team]\nurl = "http://127.0.0.1:9/api/webhooks/1/t"\nall_sites = true\n',
        site_table(
            "shop", target.url("/shop"), 'webhooks = ["http://127.0.0.1:9/api/webhooks/2/t"]'
        ),
        site_table("blog", target.url("/blog")),
    )
    client = await start(settings, path)
    before = await sites_by_key(client)
    hooks_before = await (await client.get("/webhooks")).json()
    assert set(before) == {"shop", "blog"} and len(hooks_before) == 2
    # The broken file would also drop blog and the shared webhook, were it applied.
    write(path, site_table("shop", target.url("/shop"), "check_interval_seconds = 7"), text)
    answer = await reload(client, 400)
    assert answer["detail"].startswith(f"config file {path}: ")
    assert names in answer["detail"]
    assert "\n" not in answer["detail"]
    after = await sites_by_key(client)
    assert {k: settings_of(s) for k, s in after.items()} == {
        k: settings_of(s) for k, s in before.items()
    }
    assert await (await client.get("/webhooks")).json() == hooks_before


async def test_a_declared_site_is_read_only_through_the_api(
    start: Start, settings: Settings, target: Target, tmp_path: Path
) -> None:
    path = write(tmp_path / "uptimed.toml", site_table("shop", target.url("/shop")))
    client = await start(settings, path)
    shop = (await sites_by_key(client))["shop"]
    for method, body in (("PATCH", {"name": "x"}), ("DELETE", None)):
        resp = await client.request(method, f"/sites/{shop['id']}", json=body)
        answer = await resp.json()
        assert resp.status == 409, answer
        assert str(path) in answer["detail"] and "'shop'" in answer["detail"], answer
    assert settings_of((await sites_by_key(client))["shop"]) == settings_of(shop)
    # An API site stays editable.
    resp = await client.post("/sites", json={"url": target.url("/api"), "name": "by-api"})
    api_site = await resp.json()
    assert (await client.patch(f"/sites/{api_site['id']}", json={"name": "y"})).status == 200


async def test_reloads_never_touch_api_sites_or_their_webhooks(
    start: Start, settings: Settings, target: Target, tmp_path: Path
) -> None:
    path = write(tmp_path / "uptimed.toml", site_table("shop", target.url("/shop")))
    client = await start(settings, path)
    resp = await client.post("/sites", json={"url": target.url("/api"), "name": "by-api"})
    api_site = await resp.json()
    hook = await add_hook(client, api_site["id"], "http://127.0.0.1:9/api/webhooks/3/t")
    write(path, "")  # every declared site removed
    assert counts(await reload(client)) == {
        "sites_created": 0,
        "sites_changed": 0,
        "sites_removed": 1,
        "sites_unchanged": 0,
        "webhooks_created": 0,
        "webhooks_removed": 0,
    }
    after = await sites_by_key(client)
    assert list(after) == ["by-api"]
    assert settings_of(after["by-api"]) == settings_of(api_site)
    hooks = await (await client.get("/webhooks")).json()
    assert [(h["id"], h["source"]) for h in hooks] == [(hook["id"], "api")]


async def test_an_unchanged_file_writes_nothing_and_settings_give_the_defaults(
    start: Start, settings: Settings, target: Target, tmp_path: Path
) -> None:
    settings = settings.model_copy(
        update={"renotify_every_seconds": 1800, "tls_expiry_warn_days": [9, 2]}
    )
    path = write(
        tmp_path / "uptimed.toml",
        site_table("shop", target.url("/shop"), "check_interval_seconds = 60"),
        site_table("blog", target.url("/blog"), "renotify_every_seconds = 600"),
    )
    client = await start(settings, path)
    shop = (await sites_by_key(client))["shop"]
    assert (shop["renotify_every_seconds"], shop["tls_expiry_warn_days"]) == (1800, [9, 2])
    await target.wait_hits("/shop", 1)
    again = await reload(client)
    assert counts(again) == {
        "sites_created": 0,
        "sites_changed": 0,
        "sites_removed": 0,
        "sites_unchanged": 2,
        "webhooks_created": 0,
        "webhooks_removed": 0,
    }
    # Not rescheduled: an interval of 60 s brings no second check after the reload.
    resp = await client.post("/sites", json={"url": target.url("/probe"), "name": "probe"})
    assert resp.status == 200
    await target.wait_hits("/probe", 1)  # a check has run since the reload
    await wait_out(1.0)  # a rescheduled site would have been checked at once
    assert len(target.hit_times("/shop")) == 1


async def test_a_change_in_the_file_is_a_patch_paused_and_resumed_are_told(
    start: Start,
    fast: Settings,  # noqa: F811
    target: Target,
    fake: FakeDiscord,  # noqa: F811
    tmp_path: Path,
) -> None:
    hook = fake.url("222222222222222222")
    lines = ("check_interval_seconds = 60", f'webhooks = ["{hook}"]')
    path = write(tmp_path / "uptimed.toml", site_table("shop", target.url("/shop"), *lines))
    client = await start(fast, path)
    await fake.wait_for(1, hook)  # Monitoring started
    shop = (await sites_by_key(client))["shop"]
    write(path, site_table("shop", target.url("/shop"), *lines, "paused = true"))
    assert counts(await reload(client))["sites_changed"] == 1
    await fake.wait_for(2, hook)
    write(path, site_table("shop", target.url("/other"), *lines))
    assert counts(await reload(client))["sites_changed"] == 1
    await fake.wait_for(3, hook)
    await target.wait_hits("/other", 1)  # resumed, and what is checked changed: at once
    assert titles(fake, hook) == [
        "🟢 Monitoring started: shop is UP",
        "⏸️ Monitoring paused: shop",
        "▶️ Monitoring resumed: shop",
    ]
    assert (await sites_by_key(client))["shop"]["id"] == shop["id"]


async def test_a_webhook_for_every_site_hears_api_sites_and_follows_its_url(
    start: Start,
    fast: Settings,  # noqa: F811
    target: Target,
    fake: FakeDiscord,  # noqa: F811
    tmp_path: Path,
) -> None:
    first, second = fake.url("333333333333333333"), fake.url("444444444444444444")
    path = write(tmp_path / "uptimed.toml", f'[webhooks.all]\nurl = "{first}"\nall_sites = true\n')
    client = await start(fast, path)
    hooks = await (await client.get("/webhooks")).json()
    assert [(h["site_id"], h["source"], h["key"]) for h in hooks] == [(None, "config", "all")]
    resp = await client.post("/sites", json={"url": target.url("/api"), "name": "by-api"})
    assert resp.status == 200
    await fake.wait_for(1, first)
    assert titles(fake, first) == ["🟢 Monitoring started: by-api is UP"]
    write(path, f'[webhooks.all]\nurl = "{second}"\nall_sites = true\n')
    assert counts(await reload(client))["webhooks_created"] == 1
    hooks = await (await client.get("/webhooks")).json()
    assert [(h["key"], h["discord_webhook_url"]) for h in hooks] == [("all", second)]
    write(path, "")
    assert counts(await reload(client))["webhooks_removed"] == 1
    assert await (await client.get("/webhooks")).json() == []


async def test_without_a_config_file_declared_sites_are_kept(
    start: Start,
    settings: Settings,
    target: Target,
    tmp_path: Path,
    caplog: pytest.LogCaptureFixture,
) -> None:
    path = write(tmp_path / "uptimed.toml", site_table("shop", target.url("/shop")))
    client = await start(settings, path)
    before = await sites_by_key(client)
    await client.close()
    client = await start(settings, None)
    after = await sites_by_key(client)
    assert {k: settings_of(s) for k, s in after.items()} == {
        k: settings_of(s) for k, s in before.items()
    }
    assert any(
        r.levelname == "WARNING" and "1 site(s) declared in a config file" in r.getMessage()
        for r in caplog.records
    )
    answer = await reload(client, 409)
    assert "without a config file" in answer["detail"]
    resp = await client.delete(f"/sites/{before['shop']['id']}")
    assert resp.status == 409  # still read-only: the file is its truth
