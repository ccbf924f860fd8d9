"""Restarts: in-process on the same database, and the real ``uptimed`` process as a user runs it."""

from __future__ import annotations

import asyncio
import os
import signal
import time
from pathlib import Path

import pytest

from tests.conftest import AppClient, Target, eventually, settings_of
from tests.daemon import Daemon, api, daemon_fixture, free_port, uptimed_command  # noqa: F401
from uptimed.config import Settings


async def test_checks_and_history_resume_after_restart(
    start_app: AppClient, settings: Settings, target: Target
) -> None:
    client = await start_app(settings)
    resp = await client.post(
        "/sites", json={"url": target.url("/r"), "name": "r", "check_interval_seconds": 1}
    )
    site = await resp.json()
    await client.post(
        "/webhooks", json={"site_id": site["id"], "discord_webhook_url": "http://127.0.0.1:9/h"}
    )

    async def rows_at_least(c: object, n: int) -> list[dict]:
        rows = await (await c.get(f"/sites/{site['id']}/history")).json()  # type: ignore[attr-defined]
        return rows if len(rows) >= n else []

    before = await eventually(lambda: rows_at_least(client, 3))
    await client.close()
    hits_before = len(target.hit_times("/r"))

    client2 = await start_app(settings)  # no API call: the schedule comes back from the database
    again = await (await client2.get(f"/sites/{site['id']}")).json()
    assert settings_of(again) == settings_of(site)
    assert len(await (await client2.get("/webhooks")).json()) == 1

    async def resumed() -> bool:
        return len(target.hit_times("/r")) > hits_before

    await eventually(resumed, timeout=2.5)  # within one interval (1 s) plus the 1 s start spread
    after = await eventually(lambda: rows_at_least(client2, len(before) + 1))
    assert after[: len(before)] == before  # nothing lost, nothing rewritten
    assert after[-1]["last_status_change"] == before[1]["last_status_change"]  # still the same UP


async def test_daemon_runs_checks_and_exits_0_on_sigterm(daemon: Daemon, target: Target) -> None:
    await daemon.start()
    assert (daemon.cwd / "data" / "uptimed.db").exists()
    status, site = await api(
        daemon,
        "POST",
        "/sites",
        {"url": target.url("/p"), "name": "p", "check_interval_seconds": 1},
    )
    assert status == 200

    await target.wait_hits("/p", 2)
    started = time.monotonic()
    code, out = await daemon.stop(signal.SIGTERM)
    assert code == 0, out
    assert time.monotonic() - started < 8
    assert "Traceback" not in out

    # Up again on the same file: the site is there and is checked with no API call.
    hits = len(target.hit_times("/p"))
    await daemon.start()

    async def resumed() -> bool:
        return len(target.hit_times("/p")) > hits

    await eventually(resumed, timeout=3)
    status, rows = await api(daemon, "GET", f"/sites/{site['id']}/history")  # type: ignore[index]
    assert status == 200 and rows[0]["status"] == "INITIAL" and len(rows) >= 3  # type: ignore[index]
    assert (await daemon.stop(signal.SIGINT))[0] == 0


async def test_sigkill_loses_no_acknowledged_site_or_webhook(
    daemon: Daemon, target: Target
) -> None:
    await daemon.start()
    created = []
    for i in range(20):
        status, site = await api(
            daemon, "POST", "/sites", {"url": target.url(f"/k{i}"), "name": f"k{i}"}
        )
        assert status == 200
        status, _ = await api(
            daemon,
            "POST",
            "/webhooks",
            {"site_id": site["id"], "discord_webhook_url": "http://127.0.0.1:9/h"},
        )  # type: ignore[index]
        assert status == 200
        created.append(site)
    await daemon.stop(signal.SIGKILL)
    await daemon.start()
    status, sites = await api(daemon, "GET", "/sites")
    assert [settings_of(s) for s in sites] == [settings_of(s) for s in created]  # type: ignore[union-attr]
    status, hooks = await api(daemon, "GET", "/webhooks")
    assert len(hooks) == 20  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("env", "args", "names"),
    [
        ({"DATABASE_URL": "postgres://db/uptimed"}, [], "DATABASE_URL"),
        ({"RATE_LIMIT": "many"}, [], "RATE_LIMIT"),
        ({"OPTIMISATION": "maybe"}, [], "OPTIMISATION"),
        ({}, ["--port", "70000"], "--port"),  # a flag's error names the flag (issue 16.12)
        ({}, ["--config", "missing.toml"], "missing.toml"),
        ({"UPTIMED_CONFIG": "bad.toml"}, [], "bad.toml"),
        ({}, ["--log-level", "LOUD"], "--log-level"),
    ],
    ids=[
        "db-scheme",
        "rate-limit",
        "optimisation",
        "port",
        "missing-config",
        "bad-toml",
        "log-level",
    ],
)
async def test_bad_config_exits_nonzero_with_one_line(
    tmp_path: Path, env: dict[str, str], args: list[str], names: str
) -> None:
    (tmp_path / "bad.toml").write_text("port = [unclosed\n")
    started = time.monotonic()
    proc = await asyncio.create_subprocess_exec(
        *uptimed_command(), "--port", str(free_port()), *args,
        cwd=tmp_path,
        env={**{k: v for k, v in os.environ.items() if not k.startswith("UPTIMED_")}, **env},
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
    )  # fmt: skip
    _out, err = await asyncio.wait_for(proc.communicate(), timeout=10)
    assert proc.returncode not in (0, None)
    lines = err.decode().strip().splitlines()
    assert len(lines) == 1, lines
    assert names in lines[0] and "Traceback" not in lines[0]
    assert time.monotonic() - started < 5  # about a second on an idle machine; CI is shared


async def test_batched_history_sigkill_loses_only_the_last_batch_sigterm_nothing(
    daemon: Daemon, target: Target
) -> None:
    daemon.env["UPTIMED_HISTORY_FLUSH_SECONDS"] = "30"  # nothing is flushed by the timer
    await daemon.start()
    status, site = await api(
        daemon,
        "POST",
        "/sites",
        {"url": target.url("/b"), "name": "b", "check_interval_seconds": 1},
    )
    assert status == 200

    await target.wait_hits("/b", 3)
    target.statuses["/b"] = 503  # a transition: batched rows go first, then it, at once
    await target.wait_hits("/b", 6)
    await daemon.stop(signal.SIGKILL)
    seen = len(target.hit_times("/b"))

    await daemon.start()
    _, rows = await api(daemon, "GET", f"/sites/{site['id']}/history")  # type: ignore[index]
    statuses = [r["status"] for r in rows]  # type: ignore[index]
    first_down = statuses.index("DOWN")
    # Everything up to and including the transition survived the kill ...
    assert statuses[0] == "INITIAL" and set(statuses[1:first_down]) == {"UP"}
    assert first_down == statuses.count("UP") + 1
    # ... and only DOWN checks after it, still in the 30 s batch, were lost.
    assert len(rows) < seen + 1  # type: ignore[arg-type]

    # SIGTERM writes the batch: every check the target saw is in the history.
    target.statuses["/b"] = 200
    await target.wait_hits("/b", seen + 3)
    await daemon.stop(signal.SIGTERM)
    total_hits = len(target.hit_times("/b"))
    await daemon.start()
    _, after = await api(daemon, "GET", f"/sites/{site['id']}/history")  # type: ignore[index]
    lost_in_kill = seen + 1 - len(rows)  # type: ignore[arg-type]
    assert len(after) == total_hits + 1 - lost_in_kill  # type: ignore[arg-type]
    await daemon.stop(signal.SIGTERM)


async def test_sigterm_with_a_check_in_flight_is_one_info_line(
    daemon: Daemon, target: Target
) -> None:
    """A stop cancels a hanging check on purpose: no ERROR, no traceback, one line with counts."""
    target.delays["/hang"] = 60
    daemon.env["UPTIMED_SHUTDOWN_GRACE_SECONDS"] = "0.5"
    await daemon.start()
    status, _ = await api(daemon, "POST", "/sites", {"url": target.url("/hang"), "name": "hang"})
    assert status == 200
    await target.wait_hits("/hang", 1)
    code, out = await daemon.stop(signal.SIGTERM)
    assert code == 0, out
    assert "Traceback" not in out and "ERROR" not in out and "CancelledError" not in out, out
    assert "shutdown checks_finished=0 checks_cancelled=1" in out, out
