"""``uptimed export`` and ``uptimed import`` as a user runs them (real processes): a daemon's
sites and webhooks out as TOML and into another daemon with an empty database."""

from __future__ import annotations

import asyncio
import signal
import tomllib
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import Target, settings_of
from tests.daemon import Daemon, api, daemon_env, free_port, run_to_exit
from tests.fake_discord import FakeDiscord
from uptimed.db import Store
from uptimed.db.sites import write_site
from uptimed.models import SiteIn

ORIGIN = ("id", "created_at", "source", "key")


@pytest.fixture
async def fake(aiohttp_server: Any) -> FakeDiscord:
    return await FakeDiscord().start(aiohttp_server)


@pytest.fixture
async def daemons(tmp_path: Path) -> AsyncIterator[list[Daemon]]:
    """Two daemons, each in a directory (and database) of its own; start them as needed."""
    made = []
    for name in ("a", "b"):
        (tmp_path / name).mkdir()
        made.append(Daemon(tmp_path / name, free_port(), daemon_env()))
    yield made
    for d in made:
        if d.proc is not None and d.proc.returncode is None:
            d.proc.kill()
            await d.proc.wait()


async def call(d: Daemon, method: str, path: str, body: object = None) -> Any:
    status, answer = await api(d, method, path, body)
    assert status == 200, answer
    return answer


def assorted_sites(target: Target) -> list[dict[str, Any]]:
    port = target.url().split(":")[2].split("/")[0]
    return [
        {
            "url": target.url("/full"),
            "name": "Full House",
            "check_interval_seconds": 60,
            "expected_status_code": 201,
            "keep_alive": True,
            "method": "POST",
            "headers": {"Authorization": "Bearer s3cret", "X-Env": "prod"},
            "body": '{"ping": true}',
            "body_contains": "hello",
            "body_not_contains": "error",
            "max_response_time_ms": 800,
            "timeout_seconds": 2.5,
            "follow_redirects": False,
            "verify_tls": False,
            "failure_threshold": 2,
            "success_threshold": 3,
            "retry_interval_seconds": 30,
            "renotify_every_seconds": 600,
            "tls_expiry_warn_days": [30, 7],
            "alerts_muted_until": "2030-01-01T00:00:00Z",
            "public": True,
            "show_url": True,
        },
        {"url": f"tcp://127.0.0.1:{port}", "name": "Mail (TLS)", "tls": True, "paused": True},
        {
            "url": target.url("/json"),
            "name": "Shop",
            "accepted_status_codes": ["200-299", 301],
            "json_query": "status",
            "json_expected": {"ok": [1, "yes", False]},
        },
        {"url": target.url("/head"), "name": "Shop", "method": "HEAD", "check_interval_seconds": 5},
        {"url": target.url("/plain"), "name": "Ünïcode ☃ site"},
    ]


def comparable(sites: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [{k: v for k, v in settings_of(s).items() if k not in ORIGIN} for s in sites]


def hooks_by_position(sites: list[dict[str, Any]], hooks: list[dict[str, Any]]) -> list[Any]:
    """Each webhook as (its site's place in the list, or None for every site; URL), sorted."""
    place = {site["id"]: i for i, site in enumerate(sites)}
    found = [(place.get(h["site_id"], -1), h["discord_webhook_url"]) for h in hooks]
    return sorted(found, key=lambda item: (item[0], item[1]))


async def test_export_then_import_into_an_empty_daemon_gives_the_same_sites_and_webhooks(
    daemons: list[Daemon], target: Target, fake: FakeDiscord, tmp_path: Path
) -> None:
    a, b = daemons
    await asyncio.gather(a.start(), b.start())
    made = await call(a, "POST", "/sites/bulk", assorted_sites(target))
    own, shared, every = (fake.url(id=str(n)) for n in (111, 222, 333))
    hooks = [
        (made[0]["id"], own),
        (made[0]["id"], shared),
        (made[2]["id"], shared),
        (None, every),
        (made[3]["id"], every),  # its own, and the same URL as every site's
    ]
    for site_id, url in hooks:
        await call(a, "POST", "/webhooks", {"site_id": site_id, "discord_webhook_url": url})

    # exported while the daemon runs
    exported = await run_to_exit(a.cwd, a.env, "export")
    assert exported.code == 0, exported.stderr
    assert exported.stderr == ""
    document = tomllib.loads(exported.stdout)
    assert [s["key"] for s in document["sites"]] == [
        "full-house",
        "mail-tls",
        "shop",
        "shop-2",
        "n-code-site",
    ]
    assert document["webhooks"] == {
        "all-sites": {"url": every, "all_sites": True},
        "shared": {"url": shared},
    }
    assert document["sites"][0]["webhooks"] == [own, "shared"]
    assert document["sites"][3]["webhooks"] == [every]
    assert document["sites"][4] == {"key": "n-code-site", "url": target.url("/plain"),
                                    "name": "Ünïcode ☃ site"}  # fmt: skip
    path = tmp_path / "sites.toml"
    path.write_text(exported.stdout)

    imported = await run_to_exit(tmp_path, b.env, "import", str(path), "--api", b.base)
    assert imported.code == 0, imported.stderr
    assert imported.stdout.strip() == (
        f"imported 5 sites (4 webhooks of sites) and 1 webhooks of every site from {path}"
        f" into {b.base}"
    )
    sites_a, sites_b = await call(a, "GET", "/sites"), await call(b, "GET", "/sites")
    assert comparable(sites_b) == comparable(sites_a)
    assert {(s["source"], s["key"]) for s in sites_b} == {("api", None)}
    hooks_a, hooks_b = await call(a, "GET", "/webhooks"), await call(b, "GET", "/webhooks")
    assert hooks_by_position(sites_b, hooks_b) == hooks_by_position(sites_a, hooks_a)
    assert len(hooks_b) == len(hooks) == 5
    for d in daemons:
        assert (await d.stop(signal.SIGTERM))[0] == 0


async def test_declared_sites_and_webhooks_keep_their_keys_and_names(tmp_path: Path) -> None:
    """Export names a declared site by its key and a declared webhook table by its name."""
    (tmp_path / "data").mkdir()
    store = await Store.open(tmp_path / "data" / "uptimed.db")
    hook = "https://discord.com/api/v10/webhooks/1/t"
    async with store.transaction() as db:
        declared = await write_site(db, SiteIn(url="https://a.example/", name="Shop"), 1, "shop")
        await write_site(db, SiteIn(url="https://b.example/", name="shop"), 1)
        await write_site(db, SiteIn(url="https://c.example/", name="shop"), 1)
        await db.execute(
            "INSERT INTO webhooks (site_id, url, created_at, source, key)"
            " VALUES (NULL, ?, 1, 'config', 'team')",
            (hook,),
        )
        await db.execute(
            "INSERT INTO webhooks (site_id, url, created_at) VALUES (?, ?, 1)",
            (declared.id, hook + "2"),
        )
    await store.close()

    exported = await run_to_exit(tmp_path, daemon_env(), "export")
    assert exported.code == 0, exported.stderr
    document = tomllib.loads(exported.stdout)
    assert [s["key"] for s in document["sites"]] == ["shop", "shop-2", "shop-3"]
    assert document["webhooks"] == {"team": {"url": hook, "all_sites": True}}
    assert document["sites"][0]["webhooks"] == [hook + "2"]


async def test_export_without_a_database_says_so(tmp_path: Path) -> None:
    exported = await run_to_exit(tmp_path, daemon_env(), "export")
    assert exported.code == 2
    assert exported.stdout == ""
    assert exported.lines == [
        "uptimed export: no database at data/uptimed.db (DATABASE_URL or --config names another?)"
    ]
    assert not (tmp_path / "data").exists()  # and made none


SITE = '[[sites]]\nkey = "s{n}"\nurl = "https://example.com/{n}"\n'


async def test_import_is_all_or_nothing_through_the_api(
    daemons: list[Daemon], tmp_path: Path
) -> None:
    a = daemons[0]
    await a.start()
    path = tmp_path / "many.toml"
    path.write_text("\n".join(SITE.format(n=n) for n in range(1001)))
    refused = await run_to_exit(tmp_path, a.env, "import", str(path), "--api", a.base)
    assert refused.code == 1
    assert refused.lines == [
        f"uptimed import: {a.base} refused the file, nothing was imported: 400 Request body"
        " must hold 1 to 1000 sites."
    ]
    assert await call(a, "GET", "/sites") == []

    path.write_text(SITE.format(n=1))
    wrong = await run_to_exit(
        tmp_path, a.env, "import", str(path), "--api", a.base, "--password", "wrong"
    )
    assert (wrong.code, wrong.lines) == (
        1,
        [
            f"uptimed import: {a.base} refused the file, nothing was imported: 401 wrong user"
            " or password (--user, --password)"
        ],
    )
    port = free_port()
    env = {**a.env, "UPTIMED_PORT": str(port)}  # the default API URL comes from the settings
    gone = await run_to_exit(tmp_path, env, "import", str(path))
    assert gone.code == 1
    assert gone.lines[0].startswith(
        f"uptimed import: cannot reach the daemon at http://127.0.0.1:{port}/sites/bulk:"
    )
    env = {**a.env, "UPTIMED_PORT": str(a.port)}
    done = await run_to_exit(tmp_path, env, "import", str(path))
    assert done.code == 0, done.stderr
    assert [s["url"] for s in await call(a, "GET", "/sites")] == ["https://example.com/1"]


NO_PASSWORD = "no password: VALID_PASSWORD is not configured, so pass the daemon's with --password"


@pytest.mark.parametrize(
    ("text", "line"),
    [
        (
            SITE.format(n=1) + "check_interval_seconds = 0\n",
            "config file {path}: site 's1': check_interval_seconds: Input should be greater"
            " than or equal to 1",
        ),
        (SITE.format(n=1), NO_PASSWORD),
    ],
    ids=["bad-file", "no-password"],
)
async def test_import_refuses_a_bad_file_or_no_password_before_sending(
    tmp_path: Path, text: str, line: str
) -> None:
    path = tmp_path / "sites.toml"
    path.write_text(text)
    env = {k: v for k, v in daemon_env().items() if k != "VALID_PASSWORD"}
    port = free_port()  # nothing listens: an attempt to send would say "cannot reach"
    run = await run_to_exit(tmp_path, env, "import", str(path), "--api", f"http://127.0.0.1:{port}")
    assert (run.code, run.lines) == (2, [f"uptimed import: {line.format(path=path)}"])
