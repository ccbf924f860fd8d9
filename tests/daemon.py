"""The real ``uptimed`` process, started the way a user starts it, for restart and signal tests."""

from __future__ import annotations

import asyncio
import os
import shutil
import signal
import socket
import sys
import time
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from tests.conftest import AUTH, PASSWORD, USER, eventually


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def uptimed_command() -> list[str]:
    script = shutil.which("uptimed", path=str(Path(sys.executable).parent))
    return [script] if script else [sys.executable, "-m", "uptimed"]


class Daemon:
    def __init__(self, cwd: Path, port: int, env: dict[str, str]) -> None:
        self.cwd, self.port, self.env = cwd, port, env
        self.proc: asyncio.subprocess.Process | None = None
        self.base = f"http://127.0.0.1:{port}"

    async def start(self, *args: str, port_flag: bool = True, **popen: Any) -> None:
        """Start and wait for /healthz. ``port_flag=False``: the port must come from the
        environment or a config file (the test sets ``self.port`` to match). ``popen``: extra
        arguments for the subprocess, e.g. a ``preexec_fn`` setting limits."""
        port = ["--port", str(self.port)] if port_flag else []
        self.proc = await asyncio.create_subprocess_exec(
            *uptimed_command(), *port, *args,
            cwd=self.cwd, env=self.env,
            stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT, **popen,
        )  # fmt: skip

        async def healthy() -> bool:
            assert self.proc is not None
            if self.proc.returncode is not None:
                out = await self.proc.stdout.read()  # type: ignore[union-attr]
                raise AssertionError(f"uptimed exited {self.proc.returncode}: {out.decode()}")
            try:
                async with aiohttp.ClientSession() as s, s.get(self.base + "/healthz") as r:
                    return r.status == 200
            except aiohttp.ClientConnectionError:
                return False

        await eventually(healthy, timeout=15)

    async def stop(self, sig: signal.Signals) -> tuple[int, str]:
        assert self.proc is not None
        self.proc.send_signal(sig)
        out, _ = await asyncio.wait_for(self.proc.communicate(), timeout=15)
        return self.proc.returncode or 0, out.decode()


def daemon_env() -> dict[str, str]:
    """The test's environment without any UPTIMED_ setting, plus a login and a database."""
    return {
        **{k: v for k, v in os.environ.items() if not k.startswith("UPTIMED_")},
        "VALID_USERNAME": USER,
        "VALID_PASSWORD": PASSWORD,
        "DATABASE_URL": "sqlite:///data/uptimed.db",
        "UPTIMED_STARTUP_SPREAD_SECONDS": "1",
        "UPTIMED_ALERT_GROUP_WINDOW_SECONDS": "0",  # a test of grouping sets its own
    }


@dataclass
class Exited:
    code: int
    stdout: str
    stderr: str
    seconds: float

    @property
    def lines(self) -> list[str]:
        return self.stderr.strip().splitlines()


async def run_to_exit(
    cwd: Path,
    env: dict[str, str],
    *args: str,
    preexec_fn: Callable[[], None] | None = None,
    timeout: float = 15,
) -> Exited:
    """Run ``uptimed *args`` expecting it to end by itself (a refused start, --help); a process
    still running after ``timeout`` fails the test (and is killed)."""
    started = time.monotonic()
    proc = await asyncio.create_subprocess_exec(
        *uptimed_command(), *args, cwd=cwd, env=env, preexec_fn=preexec_fn,
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
    )  # fmt: skip
    try:
        out, err = await asyncio.wait_for(proc.communicate(), timeout=timeout)
    except TimeoutError:
        proc.kill()
        await proc.wait()
        raise AssertionError(f"uptimed {' '.join(args)} still running after {timeout}s") from None
    assert proc.returncode is not None
    return Exited(proc.returncode, out.decode(), err.decode(), time.monotonic() - started)


@pytest.fixture(name="daemon")
async def daemon_fixture(tmp_path: Path) -> AsyncIterator[Daemon]:
    d = Daemon(tmp_path, free_port(), daemon_env())
    yield d
    if d.proc is not None and d.proc.returncode is None:
        d.proc.kill()
        await d.proc.wait()


async def api(d: Daemon, method: str, path: str, json: object = None) -> tuple[int, object]:
    async with (
        aiohttp.ClientSession(headers=AUTH) as s,
        s.request(method, d.base + path, json=json) as r,
    ):
        return r.status, await r.json()
