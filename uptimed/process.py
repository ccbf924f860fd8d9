"""The process around the app: flags, settings, logging, the one-process lock, the start line,
and failed starts that end in one line and exit code 2 (never a traceback, never a hang).

``__main__`` calls ``prepare`` (everything that can fail before the event loop exists), runs the
app, and hands any failure of the run to ``failed``.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import os
import sys
import threading
from dataclasses import dataclass
from pathlib import Path

from aiohttp import web

from uptimed import __version__, descriptors, pidlock, redact
from uptimed.app_keys import SETTINGS, STORE
from uptimed.config import CONFIG_ENV, ENV_FIELDS, ConfigError, Settings, load
from uptimed.db.files import DatabaseUnavailable, check_files
from uptimed.declared import Declaration, DeclarationError, read_declaration

log = logging.getLogger("uptimed")

# A database thread that wants the GIL back waits for the loop thread up to this long (Python's
# default is 5 ms); one quick run's figures are in README.md, Performance.
SWITCH_INTERVAL_SECONDS = 0.0005
EXIT_START_FAILED = 2


class StartError(Exception):
    """uptimed cannot start; ``str(e)`` is the one line to print (without ``uptimed: ``)."""


# Defaults that are not a plain value: what happens when the setting is missing.
_SHOWN_DEFAULTS = {"valid_username": "admin", "valid_password": "(generated, logged once)"}


def _default(field: str) -> str:
    value = Settings.model_fields[field].default
    if field in _SHOWN_DEFAULTS:
        return _SHOWN_DEFAULTS[field]
    if value is None:
        return "(none)"
    return str(value).lower() if isinstance(value, bool) else str(value)


def _environment_help() -> str:
    lines = [
        "environment variables, with their defaults (flags win over them, they win over .env,",
        ".env over the TOML file; README.md, Configuration, explains each setting and",
        "uptimed.toml.example shows them all):",
    ]
    width = max(map(len, ENV_FIELDS)) + 2
    lines += [f"  {name:<{width}}{_default(field)}" for name, field in ENV_FIELDS.items()]
    lines.append(f"  {CONFIG_ENV:<{width}}(none): the TOML file, as --config")
    return "\n".join(lines)


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="uptimed",
        description="Uptime monitor with Discord alerts.\n\n"
        "  uptimed export        print every site and webhook as TOML ([[sites]])\n"
        "  uptimed import FILE   add a file's sites to the running daemon, all or none\n"
        "(each has --help)",
        epilog=_environment_help(),
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    # Flags are validated with the settings, so an error names the flag (--port), not the env.
    parser.add_argument("--host", help="address to listen on (default 127.0.0.1; UPTIMED_HOST)")
    parser.add_argument("--port", help="port to listen on (default 8000; UPTIMED_PORT)")
    parser.add_argument("--config", type=Path, help=f"TOML config file (or {CONFIG_ENV})")
    parser.add_argument(
        "--log-level", help="DEBUG, INFO, WARNING or ERROR (default INFO; UPTIMED_LOG_LEVEL)"
    )
    parser.add_argument("--version", action="version", version=f"uptimed {__version__}")
    return parser.parse_args(argv)


def event_loop() -> asyncio.AbstractEventLoop:
    """uvloop (a dependency except on Windows): the same asyncio API with a cheaper loop, which
    is where a check spends its time; the standard loop where it is missing."""
    try:
        import uvloop
    except ImportError:
        return asyncio.new_event_loop()
    return uvloop.new_event_loop()


@dataclass
class Prepared:
    """What ``prepare`` made: the settings, the config sources used, the lock's descriptor
    (open for the life of the process: closing it would let a second uptimed in), and the
    sites and webhooks the config file declares (None: no config file)."""

    settings: Settings
    sources: tuple[str, ...]
    lock_fd: int | None
    open_files: tuple[int, str]  # the log level and line of the open-file limit, for the start
    declaration: Declaration | None = None

    async def announce(self, app: web.Application) -> None:
        """The one INFO line at start, once the store is open (``create_app``'s ``on_open``)."""
        settings = app[SETTINGS]
        sites = len(await app[STORE].site_ids())
        log.info(
            "uptimed %s starting: listen=http://%s:%d database=%s sites=%d config=%s",
            __version__,
            settings.host,
            settings.port,
            settings.db_path.absolute(),
            sites,
            ",".join(self.sources) or "defaults",
        )
        log.log(*self.open_files)


def configure_logging(level: str) -> None:
    logging.basicConfig(level=level, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    redact.install()  # no URL password or webhook token in any line, whoever logs it
    # One line per request or per job would drown the transitions at thousands of checks a second.
    for noisy in ("aiohttp.access", "apscheduler", "aiosqlite"):
        logging.getLogger(noisy).setLevel(max(logging.WARNING, logging.getLogger().level))


def prepare(argv: list[str] | None) -> Prepared:
    """Flags -> settings -> the file's sites and webhooks -> logging -> database directory and
    file -> the lock. Raises ``StartError`` with the line to print (a broken declaration is
    one: at start nothing runs on a file that would be refused at reload)."""
    args = parse_args(argv)
    overrides = {"host": args.host, "port": args.port, "log_level": args.log_level}
    try:
        loaded = load(overrides, args.config)
    except ConfigError as e:
        raise StartError(f"config error: {e}") from None
    settings = loaded.settings
    config = args.config or (Path(p) if (p := os.environ.get(CONFIG_ENV)) else None)
    try:
        declaration = None if config is None else read_declaration(config)
    except DeclarationError as e:
        raise StartError(str(e)) from None
    configure_logging(settings.log_level)
    for notice in loaded.notices:
        log.warning("%s", notice)
    sys.setswitchinterval(SWITCH_INTERVAL_SECONDS)
    path = settings.db_path
    try:
        check_files(path)
        lock_fd = pidlock.acquire(path) if sys.platform != "win32" else None
    except (DatabaseUnavailable, pidlock.AlreadyRunning) as e:
        raise StartError(str(e)) from None
    except OSError as e:
        raise StartError(str(DatabaseUnavailable(path, (e.strerror or str(e)).lower()))) from None
    return Prepared(settings, loaded.sources, lock_fd, descriptors.raise_soft_limit(), declaration)


def refuse(e: StartError) -> int:
    print(f"uptimed: {redact.redact(str(e))}", file=sys.stderr)
    return EXIT_START_FAILED


def failed(e: BaseException) -> int:
    """``run_app`` raised: the start failed (a database that fails at open, a port in use) or
    the app broke. One line, exit code 2; and the process must end even if something left a
    non-daemon thread behind (an unclosed aiosqlite connection once kept a failed start alive
    for ever, deaf to SIGTERM: asyncio's handler stays installed with no loop to run it)."""
    line = str(e) if isinstance(e, DatabaseUnavailable) else f"cannot start: {e}"
    code = refuse(StartError(line))
    if any(
        t.is_alive() and not t.daemon
        for t in threading.enumerate()
        if t is not threading.current_thread()
    ):
        logging.shutdown()
        sys.stderr.flush()
        os._exit(code)
    return code
