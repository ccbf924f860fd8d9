"""Open files: the limit every check's socket counts against, and the checks in flight it
allows.

A check in flight holds one socket, and a site that accepts a connection and never answers
holds it for every try's whole timeout. A fixed cap of 500 checks in flight (until issue 15) let
1,000 such sites hold every slot while the healthy sites' checks queued behind them: the
monitor went blind to the sites it could still see. Descriptors are the real limit, so the
process raises its soft limit to the hard one at start (systemd gives a service 1024 soft,
524288 hard), and the checks may hold all of it but a reserve for the database, the API's
clients and Discord. When descriptors still run out, a check fails with EMFILE, which
``checks.errors`` turns into a ``LocalFault``: the site is not reported DOWN for it.
"""

from __future__ import annotations

import logging
import sys

if sys.platform != "win32":
    import resource

# The API's clients may hold a quarter of the limit (within bounds, for odd limits); the checks
# may hold the rest but a reserve for the database, Discord, the log and the lock file.
API_SHARE = 4
API_MIN, API_MAX = 8, 4096
RESERVED = 64
UNLIMITED = 1 << 20  # an unlimited soft limit counts as this many
UNREAD_LIMIT = 1024  # what the shares are taken of where the limit cannot be read (Windows)


def soft_limit() -> int | None:
    """The open-file soft limit; None where there is none to read (Windows)."""
    if sys.platform == "win32":
        return None
    soft, _ = resource.getrlimit(resource.RLIMIT_NOFILE)
    return UNLIMITED if soft == resource.RLIM_INFINITY else soft


def raise_soft_limit() -> tuple[int, str]:
    """Raise the open-file soft limit to the hard limit. Returns the log level and the line
    that says both, for the start to log once it has succeeded (a refused start prints one
    line only)."""
    if sys.platform == "win32":
        return logging.DEBUG, "open files: no limit to raise on Windows"
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    shown = "unlimited" if hard == resource.RLIM_INFINITY else str(hard)
    if soft == hard:
        return logging.INFO, f"open files: limit {shown} (soft = hard)"
    try:
        resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    except (OSError, ValueError) as e:  # macOS refuses an unlimited one: keep what we have
        return logging.WARNING, f"open files: soft limit {soft} not raised to {shown}: {e}"
    return logging.INFO, f"open files: soft limit raised from {soft} to the hard limit {shown}"


def api_connections(limit: int | None) -> int:
    """Connections the API serves at once by default (``UPTIMED_MAX_CONNECTIONS``)."""
    if limit is None:
        limit = UNREAD_LIMIT
    return max(API_MIN, min(limit // API_SHARE, API_MAX))


def check_budget(limit: int | None, configured: int | None, api: int | None = None) -> int:
    """Checks in flight at once: ``configured`` (``UPTIMED_MAX_CONCURRENT_CHECKS``) when set,
    but never more than what the open-file ``limit`` leaves after ``api`` connections (the
    default share when None) and the reserve."""
    if limit is None:
        limit = UNREAD_LIMIT
    room = max(1, limit - (api or api_connections(limit)) - RESERVED)
    return room if configured is None else min(configured, room)
