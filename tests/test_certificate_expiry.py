"""Certificate expiry end to end: the real app checks a real TLS server whose certificate the
test makes (trustme) and swaps, on a clock the test moves; a fake Discord validates every
message. Once per threshold per certificate, none twice across a restart, afresh on renewal."""

from __future__ import annotations

import datetime as dt
import ssl
from collections.abc import Awaitable, Callable
from typing import Any

import pytest
import trustme
from aiohttp.test_utils import TestClient, TestServer

from tests.conftest import AppClient, ManualClock, Target, eventually, make_target_app
from tests.fake_discord import FakeDiscord
from uptimed.config import Settings

DAY = 86_400
EXPIRES = dt.datetime(2031, 3, 4, 5, 6, 7, tzinfo=dt.UTC)


@pytest.fixture
async def fake(aiohttp_server: Any) -> FakeDiscord:
    return await FakeDiscord().start(aiohttp_server)


class TlsTarget:
    """A TLS server on 127.0.0.1 whose certificate ``serve`` replaces (new handshakes only)."""

    def __init__(self) -> None:
        self.ca = trustme.CA(organization_name="uptimed test CA")
        self.context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        self.target = Target()
        self.server: TestServer | None = None

    def serve(self, expires: dt.datetime) -> None:
        leaf = self.ca.issue_cert("127.0.0.1", common_name="shop.test", not_after=expires)
        leaf.configure_cert(self.context)

    @property
    def port(self) -> int:
        assert self.server is not None and self.server.port is not None
        return self.server.port


@pytest.fixture
async def tls(aiohttp_server: Callable[..., Awaitable[TestServer]]) -> TlsTarget:
    t = TlsTarget()
    t.serve(EXPIRES)
    t.server = await aiohttp_server(make_target_app(t.target), ssl=t.context)
    t.target.server = t.server
    return t


def titles(fake: FakeDiscord) -> list[str]:
    return [b["embeds"][0]["title"] for b in fake.valid_bodies()]


async def checks_seen(tls: TlsTarget, client: TestClient, site_id: int, count: int) -> None:
    """Wait until ``count`` more checks of the site have been recorded."""
    rows = await (await client.get(f"/sites/{site_id}/history")).json()
    before = len(rows)

    async def recorded() -> bool:
        rows = await (await client.get(f"/sites/{site_id}/history")).json()
        return len(rows) >= before + count

    await eventually(recorded)


@pytest.mark.parametrize("kind", ["https", "tcp+tls"])
async def test_one_warning_per_threshold_none_twice_after_a_restart_afresh_when_renewed(
    start_app: AppClient,
    settings: Settings,
    tls: TlsTarget,
    fake: FakeDiscord,
    kind: str,
) -> None:
    # 10 days and an hour before the certificate expires
    manual = ManualClock(wall=EXPIRES.timestamp() - 10 * DAY - 3600)
    client = await start_app(settings, manual.clock())
    if kind == "https":
        where: dict[str, Any] = {"url": f"https://127.0.0.1:{tls.port}/shop"}
    else:
        where = {"url": f"tcp://127.0.0.1:{tls.port}", "tls": True}
    # the test CA is not trusted by the daemon: the certificate is read all the same
    resp = await client.post(
        "/sites",
        json={"name": "Shop", "check_interval_seconds": 1, "verify_tls": False, **where},
    )
    assert resp.status == 200, await resp.text()
    site = await resp.json()
    assert (site["tls_expiry_warn_days"], site["tls_certificate"]) == ([14, 7, 3, 1], None)
    hook = fake.url()
    resp = await client.post("/webhooks", json={"site_id": site["id"], "discord_webhook_url": hook})
    assert resp.status == 200

    await fake.wait_for(2)  # started (UP), and the 14-day warning
    warning = next(b["embeds"][0] for b in fake.valid_bodies() if "Certificate" in str(b))
    assert warning["title"] == "🟠 Certificate of Shop expires in 10 days"
    assert warning["description"] == (
        "Certificate of 127.0.0.1 expires in 10 days (4 March 2031 05:06 UTC)."
    )
    shown = {f["name"]: f["value"] for f in warning["fields"]}
    assert shown["Subject"].startswith("CN=shop.test")
    assert "uptimed test CA" in shown["Issuer"]
    assert shown["Expires"] == f"<t:{int(EXPIRES.timestamp())}:f>"
    got = (await (await client.get(f"/sites/{site['id']}")).json())["tls_certificate"]
    assert got["expires_at"] == "2031-03-04T05:06:07.000Z"
    assert got["days_left"] == 10
    assert got["subject"] == shown["Subject"].replace("\\", "")

    await checks_seen(tls, client, site["id"], 3)  # more checks: nothing more to say
    manual.advance(3 * DAY)  # 7 days left: the next threshold
    await fake.wait_for(3)
    assert titles(fake)[2] == "🟠 Certificate of Shop expires in 7 days"

    await client.close()  # a restart: the warnings sent are remembered
    client = await start_app(settings, manual.clock())
    await checks_seen(tls, client, site["id"], 3)
    assert len(fake.received()) == 3

    # renewed, but badly: another certificate, 6 days left; its thresholds start afresh
    tls.serve(EXPIRES - dt.timedelta(days=1))
    await fake.wait_for(4)
    assert titles(fake)[3] == "🟠 Certificate of Shop expires in 6 days"
    await checks_seen(tls, client, site["id"], 3)
    assert len(fake.received()) == 4
    assert fake.violations() == []


async def test_warnings_off_and_an_expired_certificate_verified_is_down(
    start_app: AppClient, settings: Settings, tls: TlsTarget, fake: FakeDiscord
) -> None:
    manual = ManualClock(wall=EXPIRES.timestamp() + DAY)  # one day after it expired
    client = await start_app(settings, manual.clock())
    quiet = await (
        await client.post(
            "/sites",
            json={
                "name": "Quiet",
                "url": f"https://127.0.0.1:{tls.port}/",
                "verify_tls": False,
                "tls_expiry_warn_days": [],
                "check_interval_seconds": 1,
            },
        )
    ).json()
    await client.post("/webhooks", json={"site_id": quiet["id"], "discord_webhook_url": fake.url()})
    await fake.wait_for(1)
    await checks_seen(tls, client, quiet["id"], 2)
    assert titles(fake) == ["🟢 Monitoring started: Quiet is UP"]
    shown = (await (await client.get(f"/sites/{quiet['id']}")).json())["tls_certificate"]
    assert shown["days_left"] == -1  # read, shown, not warned of

    # verified (the daemon does not trust the test CA, and the real clock says it is valid):
    # the handshake fails, a DOWN as before; nothing can be read
    strict = await (
        await client.post(
            "/sites",
            json={"name": "Strict", "url": f"https://127.0.0.1:{tls.port}/", "paused": False},
        )
    ).json()

    async def down() -> dict[str, Any] | None:
        got = await (await client.get(f"/sites/{strict['id']}")).json()
        return got if got["status"] == "DOWN" else None

    got = await eventually(down)
    assert got["last_reason"].startswith("TLS error")
    assert got["tls_certificate"] is None


async def test_a_kept_alive_site_reads_its_certificate_on_a_fresh_connection_once_an_hour(
    start_app: AppClient, settings: Settings, tls: TlsTarget
) -> None:
    manual = ManualClock(wall=EXPIRES.timestamp() - 100 * DAY)
    client = await start_app(settings, manual.clock())
    resp = await client.post(
        "/sites",
        json={
            "name": "Shop",
            "url": f"https://127.0.0.1:{tls.port}/shop",
            "verify_tls": False,
            "keep_alive": True,
            "check_interval_seconds": 1,
        },
    )
    site = await resp.json()

    async def expires_at() -> str | None:
        got = await (await client.get(f"/sites/{site['id']}")).json()
        return None if got["tls_certificate"] is None else got["tls_certificate"]["expires_at"]

    assert await eventually(expires_at) == "2031-03-04T05:06:07.000Z"
    tls.serve(EXPIRES + dt.timedelta(days=90))  # renewed: new handshakes get the new one
    hits = len(await tls.target.wait_hits("/shop", 4))
    ports = [h[2]["X-Peer-Port"] for h in tls.target.hits]
    # the first check connected afresh (and closed), the others reuse one kept-alive connection
    assert ports[0] != ports[1] and len(set(ports[1:])) == 1, ports
    assert await expires_at() == "2031-03-04T05:06:07.000Z"  # that connection's handshake

    manual.advance(3601)
    await eventually(lambda: _is(expires_at, "2031-06-02T05:06:07.000Z"))
    seen = len(await tls.target.wait_hits("/shop", len(tls.target.hits) + 1))
    later = [h[2]["X-Peer-Port"] for h in tls.target.hits[hits:seen]]
    # one fresh connection, then the kept-alive one again
    assert len([p for p in later if p not in ports]) == 1 and later[-1] == ports[1], later


async def _is(read: Callable[[], Awaitable[object]], value: object) -> bool:
    return await read() == value
