"""Behind a reverse proxy: whose X-Forwarded-For is believed, and the login-failure limit per
forwarded client, with the real ``uptimed`` process."""

from __future__ import annotations

import ipaddress
from pathlib import Path

import aiohttp
import pytest

from tests.conftest import AUTH, PASSWORD, USER
from tests.daemon import Daemon, daemon_fixture  # noqa: F401
from tests.test_api_auth import basic
from uptimed.api.middleware import client_address
from uptimed.config import ConfigError, load_settings

LOCAL = [ipaddress.ip_network("127.0.0.1"), ipaddress.ip_network("10.0.0.0/8")]


@pytest.mark.parametrize(
    ("peer", "forwarded", "trusted", "client"),
    [
        ("203.0.113.9", ["198.51.100.1"], LOCAL, "203.0.113.9"),  # peer not a proxy: header ignored
        ("127.0.0.1", ["198.51.100.1"], [], "127.0.0.1"),  # no proxies configured
        ("127.0.0.1", ["198.51.100.1"], LOCAL, "198.51.100.1"),
        ("127.0.0.1", [], LOCAL, "127.0.0.1"),  # the proxy's own request
        (
            "127.0.0.1",
            ["1.1.1.1, 198.51.100.1"],
            LOCAL,
            "198.51.100.1",
        ),  # left part is the client's
        ("127.0.0.1", ["198.51.100.1, 10.1.2.3"], LOCAL, "198.51.100.1"),  # two proxies
        ("127.0.0.1", ["198.51.100.1", "10.1.2.3"], LOCAL, "198.51.100.1"),  # two header lines
        ("127.0.0.1", ["10.9.9.9, 10.1.2.3"], LOCAL, "10.9.9.9"),  # all hops trusted
        ("127.0.0.1", ["198.51.100.1, garbage"], LOCAL, "127.0.0.1"),  # stop at the last proxy
        ("127.0.0.1", ["198.51.100.1,"], LOCAL, "127.0.0.1"),
        ("::ffff:127.0.0.1", ["2001:db8::1"], LOCAL, "2001:db8::1"),  # dual-stack peer
        (None, ["198.51.100.1"], LOCAL, "unknown"),
    ],
    ids=[
        "untrusted-peer",
        "none-trusted",
        "one-proxy",
        "no-header",
        "spoofed-left",
        "two-proxies",
        "two-lines",
        "all-trusted",
        "garbage",
        "empty-entry",
        "mapped-ipv6",
        "no-peer",
    ],
)
def test_client_is_the_rightmost_address_that_is_not_a_trusted_proxy(
    peer: str | None,
    forwarded: list[str],
    trusted: list[ipaddress.IPv4Network | ipaddress.IPv6Network],
    client: str,
) -> None:
    assert client_address(peer, forwarded, trusted) == client


def test_trusted_proxies_from_environment_and_toml(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    assert load_settings().trusted_proxies == []
    monkeypatch.setenv("UPTIMED_TRUSTED_PROXIES", "127.0.0.1, 10.0.0.0/8 ::1")
    assert [str(n) for n in load_settings().trusted_proxies] == [
        "127.0.0.1/32",
        "10.0.0.0/8",
        "::1/128",
    ]
    monkeypatch.setenv("UPTIMED_TRUSTED_PROXIES", "10.0.0.0/8, nginx")
    with pytest.raises(ConfigError, match=r"^UPTIMED_TRUSTED_PROXIES: .*'nginx'"):
        load_settings()
    monkeypatch.delenv("UPTIMED_TRUSTED_PROXIES")
    toml = tmp_path / "u.toml"
    toml.write_text('trusted_proxies = ["192.168.0.0/16"]\n')
    assert [str(n) for n in load_settings(config=toml).trusted_proxies] == ["192.168.0.0/16"]


async def status_as(d: Daemon, forwarded_for: str, headers: dict[str, str]) -> int:
    async with (
        aiohttp.ClientSession() as s,
        s.get(d.base + "/sites", headers={"X-Forwarded-For": forwarded_for, **headers}) as r,
    ):
        if r.status >= 400:
            assert "detail" in await r.json()
        return r.status


async def test_behind_a_trusted_proxy_one_bad_script_locks_out_only_itself(
    daemon: Daemon,
) -> None:
    """nginx on 127.0.0.1 forwards three users. The script guessing passwords is locked out,
    even with the right password (a block that let a right guess through would tell it which
    guess was right); the others, the proxy itself included, are served."""
    daemon.env.update({"UPTIMED_TRUSTED_PROXIES": "127.0.0.1", "AUTH_FAILURE_LIMIT": "3"})
    await daemon.start()
    script, alice, bob = "198.51.100.7", "203.0.113.5", "203.0.113.6"
    wrong = basic(USER, PASSWORD + "-guess")
    for _ in range(3):
        assert await status_as(daemon, script, wrong) == 401
    assert await status_as(daemon, script, wrong) == 429
    assert await status_as(daemon, script, AUTH) == 429
    # What the script writes into its own header does not free it: nginx appends the real peer.
    assert await status_as(daemon, f"{alice}, {script}", AUTH) == 429
    assert await status_as(daemon, alice, AUTH) == 200
    assert await status_as(daemon, f"{script}, {bob}", AUTH) == 200
    assert await status_as(daemon, "", AUTH) == 200  # the proxy itself (no forwarded client)


async def test_without_trusted_proxies_a_forged_header_changes_nothing(daemon: Daemon) -> None:
    """The default: X-Forwarded-For is ignored, so a client cannot shed its block by forging one
    (here every request comes from 127.0.0.1, whatever the header says)."""
    assert "UPTIMED_TRUSTED_PROXIES" not in daemon.env
    daemon.env["AUTH_FAILURE_LIMIT"] = "3"
    await daemon.start()
    wrong = basic(USER, "guess")
    for i in range(3):
        assert await status_as(daemon, f"198.51.100.{i}", wrong) == 401
    assert await status_as(daemon, "203.0.113.5", wrong) == 429
    assert await status_as(daemon, "203.0.113.6", AUTH) == 429
