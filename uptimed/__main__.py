"""``uptimed`` / ``python -m uptimed``: flags -> Settings -> logging -> the app, until SIGTERM."""

from __future__ import annotations

import argparse
import asyncio
import logging
import sys
from pathlib import Path

from uptimed import __version__
from uptimed.api import server
from uptimed.app import create_app
from uptimed.config import ConfigError, load_settings


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="uptimed", description="Uptime monitor with Discord alerts."
    )
    parser.add_argument("--host", help="address to listen on (default 127.0.0.1)")
    parser.add_argument("--port", help="port to listen on (default 8000)")
    parser.add_argument("--config", type=Path, help="TOML config file (or UPTIMED_CONFIG)")
    parser.add_argument("--log-level", help="DEBUG, INFO, WARNING or ERROR (default INFO)")
    parser.add_argument("--version", action="version", version=f"uptimed {__version__}")
    return parser.parse_args(argv)


def _event_loop() -> asyncio.AbstractEventLoop:
    """uvloop (a dependency except on Windows): the same asyncio API with a cheaper loop, which
    is where a check spends its time; the standard loop where it is missing."""
    try:
        import uvloop
    except ImportError:
        return asyncio.new_event_loop()
    return uvloop.new_event_loop()


# A database thread that wants the GIL back waits for the loop thread up to this long (Python's
# default is 5 ms); one quick run's figures are in README.md, Performance.
SWITCH_INTERVAL_SECONDS = 0.0005


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    overrides = {"host": args.host, "port": args.port, "log_level": args.log_level}
    try:
        settings = load_settings(overrides, args.config)
    except ConfigError as e:
        print(f"uptimed: config error: {e}", file=sys.stderr)
        return 2
    logging.basicConfig(
        level=settings.log_level, format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
    # One line per request or per job would drown the transitions at thousands of checks a second.
    for noisy in ("aiohttp.access", "apscheduler", "aiosqlite"):
        logging.getLogger(noisy).setLevel(max(logging.WARNING, logging.getLogger().level))
    sys.setswitchinterval(SWITCH_INTERVAL_SECONDS)
    try:
        server.run(create_app(settings, freeze_gc=True), settings, loop=_event_loop())
    except OSError as e:  # the port is taken, the database directory is not writable, ...
        logging.getLogger("uptimed").error("cannot start: %s", e)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
