"""How the real ``uptimed`` process starts, or refuses to: one line and exit code 2 for every
unusable database (never a traceback, never a hang), one process per database, only the
documented environment names, no secret in any output, the start line, ``--help``, and the
Docker health check."""

from __future__ import annotations

import asyncio
import ctypes
import json
import logging
import os
import re
import resource
import signal
import socket
import sqlite3
import sys
import threading
from collections.abc import Callable
from pathlib import Path

import pytest

from tests.conftest import Target, eventually
from tests.daemon import (  # noqa: F401
    Daemon,
    api,
    daemon_env,
    daemon_fixture,
    free_port,
    run_to_exit,
)
from tests.test_config import readme_env_names
from uptimed import __version__
from uptimed.db.files import DatabaseUnavailable
from uptimed.db.schema import SCHEMA_VERSION
from uptimed.db.store import Store

ROOT = Path(__file__).resolve().parents[1]
PR_CAPBSET_DROP = 24
CAP_DAC_OVERRIDE, CAP_DAC_READ_SEARCH = 1, 2


def bound_by_permissions() -> None:
    """``preexec_fn``: the child obeys file permission bits. Root ignores them through
    CAP_DAC_OVERRIDE; dropped from the bounding set, the exec'd child lacks it while still able to
    run the venv (uid 0 still owns /root). Not root: permission bits bind already."""
    if os.geteuid() != 0:
        return
    libc = ctypes.CDLL(None, use_errno=True)
    for cap in (CAP_DAC_OVERRIDE, CAP_DAC_READ_SEARCH):
        if libc.prctl(PR_CAPBSET_DROP, cap, 0, 0, 0) != 0:
            raise OSError(ctypes.get_errno(), "prctl(PR_CAPBSET_DROP)")


def small_disk() -> None:
    """``preexec_fn``: no file may grow past 64 bytes, as on a full disk (the pid fits in the
    lock file; SQLite's first page does not). Python ignores SIGXFSZ, so writes fail instead."""
    resource.setrlimit(resource.RLIMIT_FSIZE, (64, 64))


def sqlite_file(path: Path) -> None:
    path.parent.mkdir(exist_ok=True)
    with sqlite3.connect(path) as conn:
        conn.execute("CREATE TABLE t (x)")
    conn.close()


def not_sqlite(db: Path) -> None:
    db.parent.mkdir()
    db.write_text("notes, not a database\n" * 200)


def parent_is_a_file(db: Path) -> None:
    db.parent.write_text("a file where the directory should be\n")


def directory_not_writable(db: Path) -> None:
    db.parent.mkdir(mode=0o555)


def read_only_file(db: Path) -> None:
    sqlite_file(db)
    db.chmod(0o444)


def read_only_directory(db: Path) -> None:
    sqlite_file(db)
    db.parent.chmod(0o555)


def newer_schema(db: Path) -> None:
    sqlite_file(db)
    with sqlite3.connect(db) as conn:
        conn.execute(f"PRAGMA user_version = {SCHEMA_VERSION + 1}")
    conn.close()


CASES: list[tuple[str, Callable[[Path], None], Callable[[], None] | None, str]] = [
    ("not-sqlite", not_sqlite, None, "file is not a database"),
    ("parent-is-a-file", parent_is_a_file, None, "is not a directory"),
    ("directory-not-writable", directory_not_writable, bound_by_permissions, "permission denied"),
    ("read-only-file", read_only_file, bound_by_permissions, "permission denied"),
    ("read-only-directory", read_only_directory, bound_by_permissions, "permission denied"),
    ("disk-full", lambda db: None, small_disk, "disk I/O error"),
    ("newer-schema", newer_schema, None, "is newer than this uptimed"),
]


@pytest.mark.parametrize(
    ("make", "preexec_fn", "reason"), [c[1:] for c in CASES], ids=[c[0] for c in CASES]
)
async def test_unusable_database_exits_2_with_one_line(
    tmp_path: Path,
    make: Callable[[Path], None],
    preexec_fn: Callable[[], None] | None,
    reason: str,
) -> None:
    db = tmp_path / "data" / "uptimed.db"
    make(db)
    try:
        result = await run_to_exit(
            tmp_path, daemon_env(), "--port", str(free_port()), preexec_fn=preexec_fn
        )
    finally:
        if db.parent.is_dir():
            db.parent.chmod(0o755)  # for the clean-up of tmp_path
    assert result.code == 2, result
    assert len(result.lines) == 1, result.stderr
    assert result.lines[0].startswith(f"uptimed: cannot open database {db}: "), result.lines
    assert reason in result.lines[0]
    assert "Traceback" not in result.stderr + result.stdout
    assert result.seconds < 10  # it ends by itself (run_to_exit fails the test otherwise)


async def test_failed_open_leaves_no_database_thread(tmp_path: Path) -> None:
    """Why a failed start hung: an unclosed aiosqlite connection is a non-daemon thread, and
    Python waits for it at exit for ever (deaf to SIGTERM, whose asyncio handler stayed)."""
    path = tmp_path / "u.db"
    path.write_bytes(b"x" * 8192)
    before = threading.active_count()
    with pytest.raises(DatabaseUnavailable, match="file is not a database"):
        await Store.open(path)

    async def threads_gone() -> bool:
        return threading.active_count() <= before

    await eventually(threads_gone, timeout=5)


LEAKS_A_THREAD = """
import sys, threading
from uptimed import process
threading.Thread(target=threading.Event().wait, name="leaked").start()  # never ends
sys.exit(process.failed(RuntimeError("boom")))
"""


async def test_a_failed_run_ends_even_with_a_thread_left_behind(tmp_path: Path) -> None:
    """The last guard of a failed start: whatever thread a failure leaves, the process ends."""
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-c", LEAKS_A_THREAD, cwd=tmp_path,
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
    )  # fmt: skip
    try:
        _out, err = await asyncio.wait_for(proc.communicate(), timeout=15)
    finally:
        if proc.returncode is None:
            proc.kill()
    assert proc.returncode == 2
    assert err.decode().splitlines() == ["uptimed: cannot start: boom"]


async def test_an_empty_file_is_a_new_database_too(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """A start that failed on a full disk can leave an empty file: the next start creates the
    database in it, and says so."""
    path = tmp_path / "u.db"
    path.touch()
    with caplog.at_level(logging.WARNING, logger="uptimed.db.store"):
        for _ in range(2):
            await (await Store.open(path)).close()
    created = [r for r in caplog.records if "new, empty database" in r.getMessage()]
    assert len(created) == 1 and str(path) in created[0].getMessage()


async def test_second_process_on_one_database_exits_2_naming_the_holder(daemon: Daemon) -> None:
    await daemon.start()
    assert daemon.proc is not None
    second = await run_to_exit(daemon.cwd, daemon.env, "--port", str(free_port()))
    assert second.code == 2, second
    (line,) = second.lines
    db = daemon.cwd / "data" / "uptimed.db"
    assert line.startswith(f"uptimed: database {db} is in use by another uptimed")
    assert f"(pid {daemon.proc.pid})" in line
    assert second.seconds < 10
    assert (await api(daemon, "GET", "/sites"))[0] == 200  # the holder goes on

    await daemon.stop(signal.SIGKILL)  # the kernel frees the lock with the holder
    await daemon.start()
    assert (await api(daemon, "GET", "/sites"))[0] == 200


async def test_a_port_in_use_exits_2_with_one_line_and_no_traceback(tmp_path: Path) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        result = await run_to_exit(tmp_path, daemon_env(), "--port", str(port))
    assert result.code == 2, result
    assert result.lines[-1].startswith("uptimed: cannot start: ")
    assert "address already in use" in result.lines[-1]
    assert "Traceback" not in result.stderr


async def test_start_line_and_a_new_database_at_warning(
    daemon: Daemon, tmp_path: Path, target: Target
) -> None:
    (tmp_path / ".env").write_text("RATE_LIMIT=100\n")
    db = tmp_path / "data" / "uptimed.db"
    await daemon.start()
    status, _ = await api(daemon, "POST", "/sites", {"url": target.url("/s"), "name": "s"})
    assert status == 200
    code, first = await daemon.stop(signal.SIGTERM)
    assert code == 0, first
    created = [line for line in first.splitlines() if "new, empty database" in line]
    assert len(created) == 1 and " WARNING " in created[0] and str(db) in created[0], created
    start = f"uptimed {__version__} starting: listen=http://127.0.0.1:{daemon.port} database={db}"
    expected = f"{start} sites=0 config=.env,environment,flags"
    assert [line.split(" INFO uptimed: ")[1] for line in first.splitlines() if start in line] == [
        expected
    ]

    await daemon.start()
    _code, second = await daemon.stop(signal.SIGTERM)
    assert "new, empty database" not in second  # the same file: nothing to warn about
    assert f"{start} sites=1 config=.env,environment,flags" in second


async def test_only_documented_environment_names_configure_uptimed(
    daemon: Daemon, tmp_path: Path
) -> None:
    (tmp_path / "uptimed.toml").write_text(f"port = {daemon.port}\n")
    daemon.env.update(
        UPTIMED_CONFIG="uptimed.toml",
        PORT=str(free_port()),  # read as the field "port", it would beat the TOML file
        HOST="256.0.0.1",  # tcsh exports HOST; read, the bind would fail
        LOG_LEVEL="LOUD",  # read, a config error
        DOCS_PUBLIC="maybe",
    )
    await daemon.start(port_flag=False)
    code, out = await daemon.stop(signal.SIGTERM)
    assert code == 0, out
    assert re.search(r" sites=0 config=uptimed.toml,environment$", out, re.MULTILINE), out


async def test_kubernetes_service_address_in_uptimed_port_is_ignored_with_a_warning(
    daemon: Daemon, tmp_path: Path
) -> None:
    (tmp_path / "uptimed.toml").write_text(f"port = {daemon.port}\n")
    daemon.env.update(UPTIMED_CONFIG="uptimed.toml", UPTIMED_PORT="tcp://10.0.0.11:8000")
    await daemon.start(port_flag=False)  # healthy on the TOML's port
    _code, out = await daemon.stop(signal.SIGTERM)
    notes = [line for line in out.splitlines() if "UPTIMED_PORT=tcp://10.0.0.11:8000" in line]
    assert len(notes) == 1 and " WARNING " in notes[0], out
    assert "Service" in notes[0] and f"listening on port {daemon.port}" in notes[0]


async def test_rejected_database_url_never_shows_its_password(tmp_path: Path) -> None:
    env = {**daemon_env(), "DATABASE_URL": "postgresql://monitor:s3cret-pw@db.example/uptimed"}
    result = await run_to_exit(tmp_path, env, "--port", str(free_port()))
    assert result.code == 2
    (line,) = result.lines
    assert line.startswith("uptimed: config error: DATABASE_URL: only SQLite is supported")
    assert "postgresql://***@db.example/uptimed" in line
    assert "s3cret-pw" not in result.stderr + result.stdout and "monitor" not in line


LOGS_SECRETS = """
import logging
from uptimed import process
process.configure_logging("INFO")
log = logging.getLogger("uptimed.notify")
log.warning("posting to %s", "https://discord.com/api/webhooks/123/tok-SECRET-1?wait=true")
log.info("database postgresql://u:pw-SECRET-2@h/db")
try:
    raise ValueError("bad url http://user:pw-SECRET-3@example.com/x")
except ValueError:
    log.exception("check failed")
logging.getLogger("uptimed.app").warning(
    "no VALID_PASSWORD configured: generated a password for this run user=%s password=%s",
    "admin", "Generated-4",
)
"""


async def test_daemon_logging_redacts_url_passwords_and_webhook_tokens(tmp_path: Path) -> None:
    """The daemon's own logging set-up (process.configure_logging), in a process of its own."""
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-c", LOGS_SECRETS, cwd=tmp_path,
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
    )  # fmt: skip
    _out, err = await asyncio.wait_for(proc.communicate(), timeout=15)
    text = err.decode()
    assert proc.returncode == 0, text
    assert "SECRET" not in text
    assert "webhooks/123/***?wait=true" in text
    assert "postgresql://***@h/db" in text and "http://***@example.com/x" in text
    assert "Traceback" in text  # the traceback is kept, redacted
    assert "user=admin password=Generated-4" in text  # the one documented password line


async def test_help_lists_every_environment_name(tmp_path: Path) -> None:
    result = await run_to_exit(tmp_path, daemon_env(), "--help")
    assert result.code == 0, result
    for name in readme_env_names():
        assert re.search(rf"^  {name} ", result.stdout, re.MULTILINE), name
    assert re.search(r"^  UPTIMED_PORT +8000$", result.stdout, re.MULTILINE)
    assert "README.md" in result.stdout and "uptimed.toml.example" in result.stdout
    assert "uptimed export" in result.stdout and "uptimed import FILE" in result.stdout


@pytest.mark.parametrize(
    ("args", "flag"),
    [
        (["--port", "abc"], "--port"),
        (["--port", "70000"], "--port"),
        (["--log-level", "LOUD"], "--log-level"),
    ],
)
async def test_a_bad_flag_is_named_as_the_flag(tmp_path: Path, args: list[str], flag: str) -> None:
    result = await run_to_exit(tmp_path, daemon_env(), *args)
    assert result.code == 2
    (line,) = result.lines
    assert line.startswith(f"uptimed: config error: {flag}: "), line
    assert "UPTIMED_" not in line


def healthcheck_command() -> list[str]:
    text = (ROOT / "Dockerfile").read_text().replace("\\\n", " ")
    (line,) = [x for x in text.splitlines() if x.startswith("HEALTHCHECK")]
    command = json.loads(line.split(" CMD ", 1)[1])
    assert command[0] == "python"
    return [sys.executable, *command[1:]]


async def test_docker_healthcheck_follows_uptimed_port(daemon: Daemon) -> None:
    daemon.env["UPTIMED_PORT"] = str(daemon.port)
    await daemon.start(port_flag=False)

    async def check(port: int) -> int:
        proc = await asyncio.create_subprocess_exec(
            *healthcheck_command(), env={**os.environ, "UPTIMED_PORT": str(port)}
        )
        return await asyncio.wait_for(proc.wait(), timeout=10)

    assert await check(daemon.port) == 0
    assert await check(free_port()) != 0  # it asks the port it is given, nothing else


def readme_section(title: str) -> str:
    text = (ROOT / "README.md").read_text()
    return text.split(f"\n## {title}\n", 1)[1].split("\n## ", 1)[0]


def test_readme_operations_match_what_is_checked_here() -> None:
    systemd = readme_section("Running as a systemd service")
    assert "LimitNOFILE=65536" in systemd
    assert "ExecStart=/opt/uptimed/.venv/bin/uptimed" in systemd
    assert "python3 -m venv /opt/uptimed/.venv" in systemd
    docker = readme_section("Docker")
    assert "-p 127.0.0.1:8000:8000" in docker and "-p 8000:8000" not in docker
    assert "chown 10001" in docker  # the image's user, for a bind mount
    assert (
        "uid 10001" in (ROOT / "Dockerfile").read_text()
        or "--uid 10001" in (ROOT / "Dockerfile").read_text()
    )


def _limit_of(pid: int) -> tuple[int, int]:
    return resource.prlimit(pid, resource.RLIMIT_NOFILE)


async def test_the_open_file_soft_limit_is_raised_to_the_hard_limit_and_logged(
    daemon: Daemon,
) -> None:
    """systemd gives a service 1024 descriptors (soft) of 524288 (hard): a check holds one, so
    uptimed takes what it may, and says so."""
    _, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    assert hard > 1024, "the test needs a hard limit above systemd's soft default"

    def systemd_default() -> None:
        resource.setrlimit(resource.RLIMIT_NOFILE, (1024, hard))

    await daemon.start(preexec_fn=systemd_default)
    assert daemon.proc is not None
    assert _limit_of(daemon.proc.pid) == (hard, hard)
    _, out = await daemon.stop(signal.SIGTERM)
    shown = "unlimited" if hard == resource.RLIM_INFINITY else str(hard)
    lines = [line for line in out.splitlines() if "open files" in line]
    assert len(lines) == 1 and " INFO " in lines[0], lines
    assert lines[0].endswith(f"open files: soft limit raised from 1024 to the hard limit {shown}")

    def no_room() -> None:
        resource.setrlimit(resource.RLIMIT_NOFILE, (512, 512))

    await daemon.start(preexec_fn=no_room)
    assert daemon.proc is not None
    assert _limit_of(daemon.proc.pid) == (512, 512)
    _, out = await daemon.stop(signal.SIGTERM)
    assert [line.split(": ", 1)[1] for line in out.splitlines() if "open files" in line] == [
        "open files: limit 512 (soft = hard)"
    ]
