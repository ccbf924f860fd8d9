"""Typed keys for everything the running app holds; handlers import these, not the factory."""

from __future__ import annotations

from pathlib import Path

import aiohttp
from aiohttp import web

from uptimed.clock import Clock
from uptimed.config import Settings
from uptimed.connectivity import Connectivity
from uptimed.db import Store
from uptimed.db.maintenance import Retention
from uptimed.followups import Followups
from uptimed.health import Health
from uptimed.metrics import Metrics
from uptimed.monitor import CheckSessions, Monitor
from uptimed.notify import Notifier
from uptimed.notify.outbox import Dispatcher
from uptimed.notify.unwritten import UnwrittenAlerts
from uptimed.scheduler import Scheduler
from uptimed.sites import Sites
from uptimed.web.status import StatusCache

SETTINGS = web.AppKey("settings", Settings)
# The TOML config file the daemon was started with (absent: none): its sites and webhooks are
# reloaded from it (SIGHUP, POST /config/reload), and a 409 names it.
CONFIG_PATH = web.AppKey("config_path", Path)
CLOCK = web.AppKey("clock", Clock)
FREEZE_GC = web.AppKey("freeze_gc", bool)  # see gc_freeze.py
HEALTH = web.AppKey("health", Health)  # what /healthz reports
METRICS = web.AppKey("metrics", Metrics)  # this app's Prometheus registry and counters
STORE = web.AppKey("store", Store)
RETENTION = web.AppKey("retention", Retention)
HTTP = web.AppKey("http", CheckSessions)  # checks: fresh connections, or pooled (keep-alive)
NOTIFY_HTTP = web.AppKey("notify_http", aiohttp.ClientSession)  # Discord: pooled
NOTIFIER = web.AppKey("notifier", Notifier)
DISPATCHER = web.AppKey("dispatcher", Dispatcher)
# Alerts of status changes the database refused: sent from memory (monitor -> dispatcher).
UNWRITTEN = web.AppKey("unwritten", UnwrittenAlerts)
MONITOR = web.AppKey("monitor", Monitor)
# Only when connectivity_check_urls is set: whether the monitor itself is offline (/healthz).
CONNECTIVITY = web.AppKey("connectivity", Connectivity)
SCHEDULER = web.AppKey("scheduler", Scheduler)
# Reminders and mute ends: run every few seconds by the scheduler.
FOLLOWUPS = web.AppKey("followups", Followups)
SITES = web.AppKey("sites", Sites)  # add / change / pause / remove: store, scheduler, monitor
# The public status page: its last build, kept at most 10 s (web/status.py).
STATUS_CACHE = web.AppKey("status_cache", StatusCache)
