"""uptimed as a real process, and the API traffic the benchmark sends it.

``Daemon`` starts ``uptimed --port P`` with a clean environment in its own working directory
(so no ``.env`` of the repository leaks in) and ends it by pid: SIGTERM, then SIGKILL.
The traffic functions are bounded in count and time: site creation (as fast as possible, or
paced on a schedule) and the API probe that measures latency while checks run.
"""

from __future__ import annotations

import asyncio
import os
import random
import resource
import shutil
import signal
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

import aiohttp

from benchmarks.dbstats import percentiles

USER, PASSWORD = "bench", "bench-password"
AUTH = aiohttp.BasicAuth(USER, PASSWORD)


def uptimed_command(src: Path | None = None) -> list[str]:
    """The venv's ``uptimed``; with ``src`` (a directory holding ``uptimed/``), that tree."""
    if src is not None:
        return [sys.executable, "-m", "uptimed"]
    script = shutil.which("uptimed", path=str(Path(sys.executable).parent))
    return [script] if script else [sys.executable, "-m", "uptimed"]


class Daemon:
    """One uptimed process on ``db_path``; ``start()`` again after ``stop()`` is a restart."""

    def __init__(
        self,
        workdir: Path,
        db_path: Path,
        port: int,
        env: dict[str, str],
        src: Path | None = None,
        nofile_soft: int | None = None,
    ) -> None:
        self.workdir, self.db_path, self.port = workdir, db_path, port
        self.nofile_soft = nofile_soft
        workdir.mkdir(parents=True, exist_ok=True)
        self.base = f"http://127.0.0.1:{port}"
        base_env = {
            k: v
            for k, v in os.environ.items()
            if not k.startswith("UPTIMED_") and k not in ("DATABASE_URL", "OPTIMISATION")
        }
        self.env = {
            **base_env,
            "VALID_USERNAME": USER,
            "VALID_PASSWORD": PASSWORD,
            "DATABASE_URL": f"sqlite:///{db_path}",
            "RATE_LIMIT": "100000000",
            "OPTIMISATION": "0",
            "UPTIMED_LOG_LEVEL": "WARNING",
            **env,
        }
        if src is not None:  # run that source tree instead of the installed package
            self.env["PYTHONPATH"] = str(src.resolve())
        self.command = [*uptimed_command(src), "--port", str(port)]
        self.proc: subprocess.Popen[bytes] | None = None
        self.spawned_at = 0.0
        self.log_path = workdir / "uptimed.log"

    @property
    def pid(self) -> int:
        assert self.proc is not None
        return self.proc.pid

    def start(self) -> None:
        log = self.log_path.open("ab")
        self.spawned_at = time.time()
        self.proc = subprocess.Popen(
            self.command,
            cwd=self.workdir,
            env=self.env,
            stdout=log,
            stderr=subprocess.STDOUT,
            preexec_fn=None if self.nofile_soft is None else self._limit_files,
        )

    def _limit_files(self) -> None:
        """In the child before exec: the open-file soft limit of a default Linux install (1024)
        or ``--nofile-soft``, the hard limit unchanged, so descriptors run out as they would."""
        _, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
        soft = self.nofile_soft if hard == resource.RLIM_INFINITY else min(self.nofile_soft, hard)
        resource.setrlimit(resource.RLIMIT_NOFILE, (soft, hard))

    def log_lines(self, *needles: str) -> list[str]:
        """Lines of uptimed's log containing any of ``needles`` (case-insensitive)."""
        if not self.log_path.exists():
            return []
        lowered = [n.lower() for n in needles]
        with self.log_path.open(errors="replace") as f:
            return [line.rstrip("\n") for line in f if any(n in line.lower() for n in lowered)]

    async def wait_healthy(self, timeout: float) -> float:
        """Seconds from spawn to the first ``200`` from ``/healthz`` (polled every 20 ms)."""
        deadline = time.monotonic() + timeout
        async with aiohttp.ClientSession() as s:
            while time.monotonic() < deadline:
                if self.proc is not None and self.proc.poll() is not None:
                    raise RuntimeError(f"uptimed exited {self.proc.returncode}: {self.log_tail()}")
                try:
                    async with s.get(self.base + "/healthz", timeout=aiohttp.ClientTimeout(1)) as r:
                        if r.status == 200:
                            return time.time() - self.spawned_at
                except (aiohttp.ClientError, TimeoutError):
                    pass
                await asyncio.sleep(0.02)
        raise RuntimeError(f"uptimed did not answer /healthz within {timeout:g}s")

    def stop(self, timeout: float = 30) -> dict[str, float | int | None]:
        """SIGTERM and wait; SIGKILL after ``timeout``. Returns exit code and seconds taken."""
        if self.proc is None or self.proc.poll() is not None:
            return {"exit_code": None if self.proc is None else self.proc.returncode}
        t0 = time.monotonic()
        self.proc.send_signal(signal.SIGTERM)
        try:
            code = self.proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            code = self.proc.wait(timeout=10)
        return {"exit_code": code, "stop_s": round(time.monotonic() - t0, 2)}

    def kill(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(timeout=10)

    def log_tail(self, lines: int = 20) -> str:
        if not self.log_path.exists():
            return ""
        return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])


def api_session(daemon: Daemon, connections: int) -> aiohttp.ClientSession:
    """Keep-alive session for API traffic (as a dashboard or a script would use)."""
    return aiohttp.ClientSession(
        base_url=daemon.base,
        auth=AUTH,
        connector=aiohttp.TCPConnector(limit=connections),
        timeout=aiohttp.ClientTimeout(total=30),
    )


@dataclass
class Created:
    """What a creation run produced; ``lag`` is how far behind its schedule each POST started."""

    ids: list[int] = field(default_factory=list)
    latency_ms: list[float] = field(default_factory=list)
    lag_s: list[float] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)
    wall_s: float = 0.0
    keep_alive_field: bool | None = None
    not_echoed: list[str] | None = None  # keys of the first body missing from its answer

    def summary(self) -> dict:
        n = len(self.ids)
        return {
            "created": n,
            "errors": len(self.errors),
            "first_errors": self.errors[:3],
            "wall_s": round(self.wall_s, 2),
            "sites_per_s": round(n / self.wall_s, 1) if self.wall_s else None,
            "post_latency_ms": percentiles(self.latency_ms, (50, 99)),
            "max_lag_s": round(max(self.lag_s, default=0.0), 2),
            "keep_alive_field_in_answer": self.keep_alive_field,
            "fields_not_in_answer": self.not_echoed,
        }


async def create_sites(
    session: aiohttp.ClientSession,
    bodies: list[dict],
    *,
    spread_s: float = 0.0,
    concurrency: int = 32,
    deadline_s: float = 600,
) -> Created:
    """POST each body to /sites; ``spread_s`` > 0 starts POST i at ``i * spread_s / len``.

    Stops early after ``deadline_s`` or 100 errors; what was created is in the result.
    """
    out = Created()
    t0 = time.monotonic()
    step = spread_s / len(bodies) if bodies else 0.0
    queue = iter(enumerate(bodies))

    async def worker() -> None:
        for i, body in queue:
            now = time.monotonic()
            if now - t0 > deadline_s or len(out.errors) >= 100:
                return
            due = t0 + i * step
            if due > now:
                await asyncio.sleep(due - now)
            out.lag_s.append(max(0.0, time.monotonic() - due))
            started = time.perf_counter()
            try:
                async with session.post("/sites", json=body) as resp:
                    data = await resp.json()
                    if resp.status != 200:
                        out.errors.append(f"HTTP {resp.status}: {data}")
                        continue
            except (aiohttp.ClientError, TimeoutError) as e:
                out.errors.append(repr(e))
                continue
            out.latency_ms.append(1000 * (time.perf_counter() - started))
            out.ids.append(data["id"])
            if out.keep_alive_field is None:
                out.keep_alive_field = "keep_alive" in data
                out.not_echoed = sorted(set(body) - set(data))

    await asyncio.gather(*(worker() for _ in range(concurrency)))
    out.wall_s = time.monotonic() - t0
    return out


async def probe_api(
    session: aiohttp.ClientSession,
    ids: list[int],
    *,
    rate: float,
    seconds: float,
    history_limit: int,
) -> dict:
    """Open-loop GETs at ``rate``/s for ``seconds``: /sites/{id} and /sites/{id}/history, taking
    turns, each timed from its scheduled start (so a stalled server cannot hide its stall).
    /healthz, which reads no database (nor checks credentials or the rate limit), goes at the
    same instant as each /sites/{id}: the gap between the two is mostly the database's part."""
    lat: dict[str, list[float]] = {"site": [], "history": [], "healthz": []}
    errors: list[str] = []
    healthz_errors: list[str] = []
    history_rows: list[int] = []
    rng = random.Random(5)

    async def one(kind: str, site_id: int, due: float) -> None:
        if kind == "healthz":
            path = "/healthz"
        else:
            path = f"/sites/{site_id}" + (
                f"/history?limit={history_limit}" if kind == "history" else ""
            )
        failed = healthz_errors if kind == "healthz" else errors
        try:
            async with session.get(path) as resp:
                data = await resp.json()
                if resp.status != 200:
                    failed.append(f"{path}: HTTP {resp.status}")
                    return
        except (aiohttp.ClientError, TimeoutError) as e:
            failed.append(f"{path}: {e!r}")
            return
        lat[kind].append(1000 * (time.monotonic() - due))
        if kind == "history":
            history_rows.append(len(data))

    t0 = time.monotonic()
    tasks: set[asyncio.Task[None]] = set()
    for i in range(int(rate * seconds)):
        due = t0 + i / rate
        if (delay := due - time.monotonic()) > 0:
            await asyncio.sleep(delay)
        kind = "site" if i % 2 == 0 else "history"
        task = asyncio.create_task(one(kind, rng.choice(ids), due))
        tasks.add(task)
        task.add_done_callback(tasks.discard)
        if i % 2 == 0:
            task = asyncio.create_task(one("healthz", 0, due))
            tasks.add(task)
            task.add_done_callback(tasks.discard)
    if tasks:
        await asyncio.wait(tasks, timeout=35)
    return {
        "rate": rate,
        "errors": len(errors),
        "first_errors": errors[:3],
        "site_ms": percentiles(lat["site"], (50, 99)),
        "history_ms": percentiles(lat["history"], (50, 99)),
        "healthz_ms": percentiles(lat["healthz"], (50, 99)),
        "healthz_errors": len(healthz_errors),
        "history_rows_max": max(history_rows, default=0),
        "history_limit": history_limit,
    }


def count_series(body: bytes) -> int:
    """Samples in a Prometheus text answer: lines neither empty nor comments (``# HELP``,
    ``# TYPE``). Counted with ``bytes.count`` so a large answer does not stall the harness."""
    if not body:
        return 0
    lines = body.count(b"\n") + (not body.endswith(b"\n"))
    comments = body.count(b"\n#") + body.startswith(b"#")
    empty = body.count(b"\n\n") + body.startswith(b"\n")
    return lines - comments - empty


async def scrape_metrics(daemon: Daemon, every: float, until: float) -> dict:
    """``GET /metrics`` (the benchmark's basic auth) every ``every`` s from now until the wall
    time ``until``, as Prometheus would: one at a time on its own keep-alive connection, the
    next at its schedule or when the previous ended. Each scrape's wall time is taken until
    the whole body is read. A build without the endpoint answers 404: recorded, not raised."""
    scrapes: list[dict] = []
    t0 = time.time()
    async with aiohttp.ClientSession(
        base_url=daemon.base,
        auth=AUTH,
        connector=aiohttp.TCPConnector(limit=1),
        timeout=aiohttp.ClientTimeout(total=30),
    ) as session:
        i = 0
        while (due := t0 + i * every) < until:
            if (delay := due - time.time()) > 0:
                await asyncio.sleep(delay)
            i += 1
            start = time.time()
            s: dict = {"start": start, "lag_s": round(start - due, 3)}
            try:
                async with session.get("/metrics") as resp:
                    body = await resp.read()
                    s["status"] = resp.status
                    s["content_type"] = resp.headers.get("Content-Type", "")
            except (aiohttp.ClientError, TimeoutError) as e:
                s.update(status=None, error=repr(e)[:200])
                body = b""
            s["end"] = time.time()
            s["ms"] = 1000 * (s["end"] - start)
            s["bytes"] = len(body)
            s["series"] = count_series(body) if s.get("status") == 200 else None
            scrapes.append(s)
    ok = [s for s in scrapes if s.get("status") == 200]
    statuses: dict[str, int] = {}
    for s in scrapes:
        if s.get("status") != 200:
            statuses[str(s.get("status"))] = statuses.get(str(s.get("status")), 0) + 1
    series = [s["series"] for s in ok]
    return {
        "every_s": every,
        "scrapes": len(scrapes),
        "ok": len(ok),
        "not_ok": statuses,
        "first_error": next((s["error"] for s in scrapes if "error" in s), None),
        "ms": percentiles([s["ms"] for s in ok], (50, 99)),
        "series_min": min(series, default=None),
        "series_max": max(series, default=None),
        "bytes_max": max((s["bytes"] for s in ok), default=None),
        "content_type": ok[0]["content_type"] if ok else None,
        "max_lag_s": max((s["lag_s"] for s in scrapes), default=0.0),
        # what each scrape took, for the lateness of the checks due meanwhile (ms since epoch)
        "spans_ms": [(int(s["start"] * 1000), int(s["end"] * 1000)) for s in scrapes],
        "each": [
            {k: (round(v, 1) if k == "ms" else v) for k, v in s.items() if k not in ("end",)}
            for s in scrapes
        ],
    }
