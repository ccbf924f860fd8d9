"""The hang server of ``--hung``: accepts every TCP connection and never answers.

``python -m benchmarks.hang PORT`` listens on 127.0.0.1:PORT. Each connection is accepted and
held: nothing is sent, and the server never closes it first, so a client's check can only end
by its own timeout. What the client sends is read and dropped (so its buffers never fill),
and a connection is let go when the client closes it, else this process would run out of
descriptors after a few minutes of checks. Its RLIMIT_NOFILE soft limit is raised to the
hard limit at start: the point is to exhaust the checker's descriptors, not this server's.
``HangServer`` runs it as a process of its own (its CPU is not the daemon's nor the harness's).
"""

from __future__ import annotations

import asyncio
import os
import resource
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path


class _Hold(asyncio.Protocol):
    """One held connection: reads and drops, answers nothing, closes only after the peer."""

    held = 0

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        _Hold.held += 1

    def data_received(self, data: bytes) -> None:
        pass

    def eof_received(self) -> bool:
        return False  # the peer closed: close our end too (we never close first)

    def connection_lost(self, exc: Exception | None) -> None:
        _Hold.held -= 1


async def _serve(port: int) -> None:
    loop = asyncio.get_running_loop()
    server = await loop.create_server(_Hold, "127.0.0.1", port, backlog=4096, reuse_address=True)
    print(f"hang server on 127.0.0.1:{port}", flush=True)
    async with server:
        await asyncio.Event().wait()  # until SIGTERM


def main(port: int) -> None:
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    print(f"RLIMIT_NOFILE soft {soft} -> {hard}", flush=True)
    asyncio.run(_serve(port))


class HangServer:
    """``python -m benchmarks.hang`` as a process; ``held()`` counts its open sockets."""

    def __init__(self, workdir: Path, port: int) -> None:
        self.port = port
        self._log = workdir / "hang.log"
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self, timeout: float = 10) -> None:
        self._log.parent.mkdir(parents=True, exist_ok=True)
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "benchmarks.hang", str(self.port)],
            stdout=self._log.open("ab"),
            stderr=subprocess.STDOUT,
            start_new_session=True,
            cwd=Path(__file__).resolve().parent.parent,
        )
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"hang server exited: {self._log.read_text(errors='replace')}")
            with socket.socket() as s:
                if s.connect_ex(("127.0.0.1", self.port)) == 0:
                    return
            time.sleep(0.05)
        raise RuntimeError(f"hang server did not listen within {timeout:g}s")

    def url(self, i: int | str) -> str:
        return f"http://127.0.0.1:{self.port}/hang/{i}"

    @property
    def pid(self) -> int | None:
        return self.proc.pid if self.proc is not None and self.proc.poll() is None else None

    def held(self) -> int | None:
        """Sockets open in the server now (its descriptors but stdio and the listener)."""
        if self.pid is None:
            return None
        try:
            fds = os.listdir(f"/proc/{self.pid}/fd")
        except OSError:
            return None
        sockets = 0
        for fd in fds:
            try:
                sockets += os.readlink(f"/proc/{self.pid}/fd/{fd}").startswith("socket:")
            except OSError:
                continue
        return max(0, sockets - 1 - 2)  # the listener, and asyncio's self-pipe socketpair

    def stop(self) -> None:
        if self.proc is None or self.proc.poll() is not None:
            return
        os.killpg(self.proc.pid, signal.SIGTERM)
        try:
            self.proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait(timeout=10)


if __name__ == "__main__":
    main(int(sys.argv[1]))
