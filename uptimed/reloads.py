"""The config file's sites and webhooks at start and on SIGHUP (``POST /config/reload`` is in
``api/config.py``); the work itself is ``Sites.apply`` and ``Sites.reload_file``."""

from __future__ import annotations

import asyncio
import logging
import signal
import sys
from collections.abc import AsyncIterator
from contextlib import suppress

from aiohttp import web

from uptimed.app_keys import SITES
from uptimed.db import Store
from uptimed.declared import Declaration, DeclarationError
from uptimed.sites import NoConfigFile, Sites, summary

log = logging.getLogger(__name__)


async def declare_at_start(sites: Sites, store: Store, declaration: Declaration | None) -> None:
    """At start: the file's sites and webhooks, before any is scheduled. Without a file the
    declared sites stay as they are: a missing --config must never delete them."""
    if declaration is not None:
        started = asyncio.get_running_loop().time()
        applied = await sites.apply(declaration)
        seconds = asyncio.get_running_loop().time() - started
        log.info("config applied path=%s %s", declaration.path, summary(applied, seconds).line())
        return
    if declared := await store.declared_site_count():
        log.warning(
            "%d site(s) declared in a config file are in the database, but uptimed was started"
            " without one (--config or UPTIMED_CONFIG): they are kept and checked as they are,"
            " and stay read-only until the file is given again",
            declared,
        )


def ignore_sighup() -> None:
    """SIGHUP ends a process by default: ignored from the start of ``main`` until the loop
    handles it, and again once the handler is gone, so a reload sent while uptimed starts or
    stops (``systemctl reload``) is lost rather than ending it."""
    if sys.platform != "win32":
        signal.signal(signal.SIGHUP, signal.SIG_IGN)


async def sighup_ctx(app: web.Application) -> AsyncIterator[None]:
    """SIGHUP reloads the config file's sites and webhooks (not on Windows, which has no
    SIGHUP). Without a config file SIGHUP is logged and ignored."""
    loop = asyncio.get_running_loop()
    tasks: set[asyncio.Task[None]] = set()

    def hangup() -> None:
        task = asyncio.create_task(reload_on_signal(app), name="config-reload")
        tasks.add(task)
        task.add_done_callback(tasks.discard)

    installed = False
    if sys.platform != "win32":
        try:
            loop.add_signal_handler(signal.SIGHUP, hangup)
            installed = True
        except (RuntimeError, ValueError):  # outside the main thread (uvloop: ValueError)
            log.debug("SIGHUP not handled: the loop runs outside the main thread")
    yield
    if installed:
        loop.remove_signal_handler(signal.SIGHUP)  # back to the default, which ends the process
        ignore_sighup()
    for task in list(tasks):
        task.cancel()
        with suppress(asyncio.CancelledError):
            await task


async def reload_on_signal(app: web.Application) -> None:
    """SIGHUP: reload, or one line saying why the running config stays (a broken file's
    line is logged by ``Sites.reload_file``)."""
    try:
        await app[SITES].reload_file()
    except NoConfigFile as e:
        log.warning("SIGHUP ignored: %s", e)
    except DeclarationError:
        pass
    except Exception:
        log.exception("config reload failed, the running config stays")
