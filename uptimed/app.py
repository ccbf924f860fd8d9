"""The app factory: it only wires parts together, each resource in its own cleanup context.

Start order (reverse on exit): store -> HTTP clients -> outbox dispatcher -> monitor and
scheduler (the config file's sites and webhooks applied before any site is scheduled) -> the
SIGHUP handler that reloads them. So on SIGTERM no reload starts any more, the scheduler stops
and in-flight checks finish (their messages are committed), then delivery stops (undelivered
messages stay queued for the next start), then the clients close, then the database: nothing
is written to a closed connection.
"""

from __future__ import annotations

import asyncio
import logging
import secrets
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import AbstractAsyncContextManager, asynccontextmanager, suppress
from pathlib import Path

import aiohttp
from aiohttp import web

from uptimed import __version__, gc_freeze
from uptimed.api import public_paths, setup_routes
from uptimed.api.metrics import count_requests
from uptimed.api.middleware import (
    AUTH_FAILURE_WINDOW,
    AuthConfig,
    auth_middleware,
    errors,
    security_headers,
)
from uptimed.api.ratelimit import SlidingWindow
from uptimed.app_keys import (
    CLOCK,
    CONFIG_PATH,
    CONNECTIVITY,
    DISPATCHER,
    FOLLOWUPS,
    FREEZE_GC,
    HEALTH,
    HTTP,
    METRICS,
    MONITOR,
    NOTIFIER,
    NOTIFY_HTTP,
    RETENTION,
    SCHEDULER,
    SETTINGS,
    SITES,
    STORE,
    UNWRITTEN,
)
from uptimed.checks.http import TlsResponse
from uptimed.clock import Clock
from uptimed.config import Settings
from uptimed.connectivity import MIN_INTERVAL_SECONDS, Connectivity
from uptimed.connector import CheckConnector
from uptimed.db import Store, maintenance
from uptimed.db.maintenance import Retention
from uptimed.declared import Declaration
from uptimed.descriptors import check_budget, soft_limit
from uptimed.followups import Followups
from uptimed.health import Health, watch_database_file
from uptimed.metrics import Metrics
from uptimed.monitor import CheckSessions, Monitor
from uptimed.notify import NOTIFIERS
from uptimed.notify.outbox import Dispatcher
from uptimed.notify.unwritten import UnwrittenAlerts
from uptimed.reloads import declare_at_start, sighup_ctx
from uptimed.scheduler import Scheduler
from uptimed.sites import Sites

log = logging.getLogger(__name__)

MAX_BODY_BYTES = 1024 * 1024
DEFAULT_USERNAME = "admin"


def credentials(settings: Settings) -> tuple[str, str]:
    """The configured login, or ``admin`` with a random password logged once: never no auth."""
    username = settings.valid_username or DEFAULT_USERNAME
    if settings.valid_password is not None:
        return username, settings.valid_password.get_secret_value()
    password = secrets.token_urlsafe(18)
    log.warning(
        "no VALID_PASSWORD configured: generated a password for this run user=%s password=%s",
        username,
        password,
    )
    return username, password


async def store_ctx(app: web.Application) -> AsyncIterator[None]:
    app[STORE] = await Store.open(app[SETTINGS].db_path)
    yield
    await app[STORE].close()


async def database_watch_ctx(app: web.Application) -> AsyncIterator[None]:
    watch = asyncio.create_task(
        watch_database_file(app[SETTINGS].db_path, app[HEALTH]), name="database-watch"
    )
    yield
    watch.cancel()
    with suppress(asyncio.CancelledError):
        await watch


def _check_session(*, keep_alive: bool) -> aiohttp.ClientSession:
    """Only fresh connections' https answers carry their certificate (``TlsResponse``): a
    kept-alive one shows an old handshake's, and the monitor reads none from it."""
    connector = CheckConnector(limit=0, force_close=not keep_alive, ttl_dns_cache=300)
    return aiohttp.ClientSession(
        connector=connector,
        headers={"User-Agent": f"uptimed/{__version__}"},
        cookie_jar=aiohttp.DummyCookieJar(),
        response_class=aiohttp.ClientResponse if keep_alive else TlsResponse,
    )


async def http_ctx(app: web.Application) -> AsyncIterator[None]:
    """Two client sessions shared by all checks: one connects afresh for every check (the
    default: it sees what a new visitor sees), one keeps connections alive between checks."""
    app[HTTP] = CheckSessions(
        fresh=_check_session(keep_alive=False),
        pooled=_check_session(keep_alive=True),
        keep_alive=app[SETTINGS].keep_alive,
    )
    yield
    await app[HTTP].fresh.close()
    await app[HTTP].pooled.close()


async def notify_http_ctx(app: web.Application) -> AsyncIterator[None]:
    """Discord gets its own pooled session: a hanging Discord cannot touch the checks' pool."""
    app[NOTIFY_HTTP] = aiohttp.ClientSession(cookie_jar=aiohttp.DummyCookieJar())
    yield
    await app[NOTIFY_HTTP].close()


async def dispatcher_ctx(app: web.Application) -> AsyncIterator[None]:
    settings = app[SETTINGS]
    app[DISPATCHER] = Dispatcher(
        app[STORE],
        app[NOTIFY_HTTP],
        app[NOTIFIER],
        clock=app[CLOCK],
        timeout=settings.discord_timeout_seconds,
        give_up_after=settings.discord_give_up_after_seconds,
        backoff_initial=settings.discord_backoff_initial_seconds,
        backoff_max=settings.discord_backoff_max_seconds,
        group_window=settings.alert_group_window_seconds,
        unwritten=app[UNWRITTEN],
        metrics=app[METRICS],
    )
    app[DISPATCHER].start()
    yield
    await app[DISPATCHER].stop()


def connectivity_ctx(
    min_interval: float,
) -> Callable[[web.Application], AbstractAsyncContextManager[None]]:
    """The offline detector, only when ``connectivity_check_urls`` is set (else none at all:
    no cost, nothing changes). It probes with the checks' fresh session, as a check would."""

    @asynccontextmanager
    async def ctx(app: web.Application) -> AsyncIterator[None]:
        urls = app[SETTINGS].connectivity_check_urls
        if not urls:
            yield
            return
        connectivity = Connectivity(
            urls,
            app[HTTP].fresh,
            app[STORE],
            clock=app[CLOCK].now,
            monotonic=app[CLOCK].monotonic,
            min_interval=min_interval,
            on_message=app[DISPATCHER].wake,
        )
        await connectivity.start()
        app[CONNECTIVITY] = connectivity
        yield
        await connectivity.stop()

    return ctx


FOLLOWUPS_INTERVAL_SECONDS = 5.0  # how late a reminder or the end of a mute may be told


def scheduler_ctx(
    declaration: Declaration | None,
) -> Callable[[web.Application], AbstractAsyncContextManager[None]]:
    """The monitor, the scheduler and the sites service. The config file's sites and webhooks
    (``declaration``) are applied first, so the scheduler resumes the sites as the file left
    them."""

    @asynccontextmanager
    async def ctx(app: web.Application) -> AsyncIterator[None]:
        async with _scheduler(app, declaration):
            yield

    return ctx


@asynccontextmanager
async def _scheduler(app: web.Application, declaration: Declaration | None) -> AsyncIterator[None]:
    settings = app[SETTINGS]
    monitor = Monitor(
        app[STORE],
        app[HTTP],
        timeout=settings.default_timeout_seconds,
        retries=settings.check_retries,
        max_concurrent=check_budget(
            soft_limit(), settings.max_concurrent_checks, settings.max_connections
        ),
        append_unchanged=not settings.optimisation,
        flush_seconds=settings.history_flush_seconds,
        clock=app[CLOCK].now,
        monotonic=app[CLOCK].monotonic,
        on_message=app[DISPATCHER].wake,
        health=app[HEALTH],
        unwritten=app[UNWRITTEN],
        connectivity=app.get(CONNECTIVITY),
        metrics=app[METRICS],
    )
    store, clock, retention = app[STORE], app[CLOCK], app[RETENTION]

    async def maintenance_job() -> None:
        try:
            await maintenance.run(store, clock.now_ms(), retention)
        except Exception:
            log.exception("maintenance failed")

    followups = app[FOLLOWUPS] = Followups(store, clock=clock, wake=app[DISPATCHER].wake)

    async def followups_job() -> None:
        try:
            await followups.run()
        except Exception:
            log.exception("reminders and mute ends failed")

    scheduler = Scheduler(
        monitor,
        startup_spread=settings.startup_spread_seconds,
        maintenance=maintenance_job,
        maintenance_interval=settings.maintenance_interval_seconds,
        followups=followups_job,
        followups_interval=FOLLOWUPS_INTERVAL_SECONDS,
        monotonic=clock.monotonic,
        metrics=app[METRICS],
    )
    scheduler.start()
    monitor.start()
    app[MONITOR] = monitor
    app[SCHEDULER] = scheduler
    app[SITES] = Sites(
        store,
        scheduler,
        monitor,
        clock=clock,
        wake=app[DISPATCHER].wake,
        defaults={
            "renotify_every_seconds": settings.renotify_every_seconds,
            "tls_expiry_warn_days": settings.tls_expiry_warn_days,
        },
        config_path=app.get(CONFIG_PATH),
    )
    await declare_at_start(app[SITES], app[STORE], declaration)
    # The stored sites are scheduled in the background: the API (and /healthz) answer at once.
    resuming = asyncio.create_task(_resume(app, scheduler), name="resume")
    yield
    resuming.cancel()
    with suppress(asyncio.CancelledError):
        await resuming
    await scheduler.stop(grace=settings.shutdown_grace_seconds)


async def _resume(app: web.Application, scheduler: Scheduler) -> None:
    await scheduler.resume(app[STORE])
    if app[FREEZE_GC]:  # the stored sites are now long-lived objects: out of the GC's way
        gc_freeze.freeze(full=True)
        await gc_freeze.keep_frozen()


def create_app(
    settings: Settings,
    *,
    clock: Clock | None = None,
    freeze_gc: bool = False,
    on_open: Callable[[web.Application], Awaitable[None]] | None = None,
    connectivity_interval: float = MIN_INTERVAL_SECONDS,
    config_path: Path | None = None,
    declaration: Declaration | None = None,
) -> web.Application:
    """The whole daemon as an aiohttp app. ``freeze_gc`` is a policy for the process (see
    gc_freeze.py): ``__main__`` turns it on; tests, which run many apps in one process, do not.
    ``on_open`` runs once the database is open and before anything else starts (the start
    line: later, its queries would wait behind the loading of every site).
    ``connectivity_interval``: seconds between connectivity probes (tests make it short).
    ``config_path``: the TOML file whose [[sites]] and [webhooks.NAME] the database follows
    (reloaded on SIGHUP and ``POST /config/reload``); ``declaration``: what it declared when
    read at start (``process.prepare``), applied before any site is scheduled (its path is the
    config path when none is given).
    """
    if config_path is None and declaration is not None:
        config_path = declaration.path
    clock = clock or Clock()
    if settings.redis_url:
        log.info("REDIS_URL is set but ignored: uptimed needs no broker")
    username, password = credentials(settings)
    auth = AuthConfig(
        username=username,
        password=password,
        failures=SlidingWindow(settings.auth_failure_limit, AUTH_FAILURE_WINDOW, clock.monotonic),
        requests=SlidingWindow(settings.rate_limit, settings.rate_window, clock.monotonic),
        public_paths=public_paths(
            docs_public=settings.docs_public, metrics_public=settings.metrics_public
        ),
    )
    metrics = Metrics()
    app = web.Application(
        middlewares=[count_requests(metrics), errors, auth_middleware(auth)],
        client_max_size=MAX_BODY_BYTES,
    )
    app[METRICS] = metrics
    app[SETTINGS] = settings
    if config_path is not None:
        app[CONFIG_PATH] = config_path
    app[CLOCK] = clock
    app[FREEZE_GC] = freeze_gc
    app[HEALTH] = Health(clock.monotonic)
    app[UNWRITTEN] = UnwrittenAlerts()
    app[RETENTION] = Retention(
        raw_days=settings.history_retention_days,
        minute_days=settings.rollup_minute_retention_days,
        hour_days=settings.rollup_hour_retention_days,
        day_days=settings.rollup_day_retention_days,
    )
    app[NOTIFIER] = NOTIFIERS["discord"]()

    async def opened(app: web.Application) -> AsyncIterator[None]:
        if on_open is not None:
            await on_open(app)
        yield

    app.cleanup_ctx.extend(
        [
            store_ctx,
            opened,
            database_watch_ctx,
            http_ctx,
            notify_http_ctx,
            dispatcher_ctx,
            connectivity_ctx(connectivity_interval),
            scheduler_ctx(declaration),
            sighup_ctx,
        ]
    )
    app.on_response_prepare.append(security_headers)
    setup_routes(app)
    return app
