"""Pydantic models for the API and the domain; no I/O here.

Times inside the daemon are integer milliseconds since the Unix epoch (what the store keeps);
they become ISO 8601 UTC strings with milliseconds and ``Z`` only when serialised.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from enum import StrEnum
from typing import Annotated, Any, Literal

from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    PlainSerializer,
)
from pydantic_core import PydanticCustomError
from yarl import URL

MAX_URL_LENGTH = 4096
MAX_NAME_LENGTH = 1000


def iso_ms(ms: int) -> str:
    """Format epoch milliseconds as ``2025-02-15T06:30:00.000Z``."""
    dt = datetime.fromtimestamp(ms / 1000, tz=UTC)
    return dt.strftime("%Y-%m-%dT%H:%M:%S.") + f"{ms % 1000:03d}Z"


def _check_http_url(value: str) -> str:
    """Accept only absolute http(s) URLs with a host that aiohttp can request."""
    try:
        url = URL(value)
        ok = (
            url.scheme in ("http", "https")
            and bool(url.host)
            and url.port is not None
            and not any(c.isspace() for c in value)
        )
    except (ValueError, TypeError):
        ok = False
    if not ok:
        raise PydanticCustomError("invalid_url", "Invalid URL")
    return value


HttpUrl = Annotated[
    str, Field(min_length=1, max_length=MAX_URL_LENGTH), AfterValidator(_check_http_url)
]
Timestamp = Annotated[int, PlainSerializer(iso_ms, return_type=str, when_used="json")]


class Status(StrEnum):
    INITIAL = "INITIAL"
    UP = "UP"
    DOWN = "DOWN"


class _In(BaseModel):
    """Request bodies: JSON types are strict ("300" is not an integer), unknown keys ignored."""

    model_config = ConfigDict(strict=True, extra="ignore", str_strip_whitespace=True)


class SiteIn(_In):
    url: HttpUrl = Field(examples=["https://example.com/health"])
    name: str = Field(min_length=1, max_length=MAX_NAME_LENGTH, examples=["Example"])
    check_interval_seconds: int = Field(300, ge=1, le=86400)
    expected_status_code: int = Field(200, ge=100, le=599)
    keep_alive: bool | None = Field(
        None,
        description="reuse connections for this site's checks; null follows the global "
        "keep_alive setting (default off: each check connects afresh, like a new visitor)",
    )


class Site(SiteIn):
    model_config = ConfigDict(frozen=True)

    id: int
    created_at: Timestamp


class WebhookIn(_In):
    site_id: int = Field(ge=1)
    discord_webhook_url: HttpUrl = Field(
        examples=["https://discord.com/api/v10/webhooks/123456789012345678/token"]
    )


class Webhook(WebhookIn):
    id: int
    created_at: Timestamp
    last_delivery_at: Timestamp | None = None
    last_error: str | None = None
    pending: int = Field(0, description="messages not yet delivered to this webhook")


class HistoryRow(BaseModel):
    status: Status
    response_time_ms: int | None
    last_checked: Timestamp
    last_status_change: Timestamp
    reason: str | None = None


@dataclass(frozen=True, slots=True)
class CheckResult:
    """What one check saw; a down site is a value here, never an exception.

    A dataclass, not a model: thousands are made a second and none crosses the API.
    """

    status: Status
    checked_at: int
    response_time_ms: int
    reason: str | None = None
    http_status: int | None = None


@dataclass(frozen=True, slots=True)
class SiteState:
    """The current status of a site and since when (epoch ms) it holds."""

    status: Status
    since: int


class Transition(BaseModel):
    """A change of status, the thing messages are sent about."""

    model_config = ConfigDict(frozen=True)

    site_id: int
    previous: Status
    current: Status
    at: int
    previous_since: int
    reason: str | None = None
    response_time_ms: int | None = None


class _Query(BaseModel):
    """Query strings: values arrive as text, so types are converted (not strict)."""

    model_config = ConfigDict(extra="ignore")


def _utc(value: datetime) -> datetime:
    return value if value.tzinfo else value.replace(tzinfo=UTC)


UtcTime = Annotated[datetime, AfterValidator(_utc)]


class HistoryQuery(_Query):
    limit: int = Field(1000, ge=1, le=10000, description="rows per page, newest first")
    since: UtcTime | None = Field(None, description="only rows checked at or after (ISO 8601)")
    until: UtcTime | None = Field(None, description="only rows checked before (ISO 8601)")
    status: Status | None = None
    cursor: int | None = Field(None, ge=0, description="from the Link rel=next of the last page")
    format: Literal["json", "csv"] = "json"


class PageQuery(_Query):
    limit: int = Field(100, ge=1, le=1000)
    cursor: int | None = Field(None, ge=0)


WINDOW_RE = r"^[1-9][0-9]{0,4}[hd]$"
DEFAULT_WINDOWS = ["24h", "7d", "30d"]


class UptimeQuery(_Query):
    window: list[Annotated[str, Field(pattern=WINDOW_RE)]] = Field(
        default_factory=lambda: list(DEFAULT_WINDOWS),
        max_length=10,
        description="windows like 24h, 7d, 30d, 90d, 365d; repeat or comma-separate",
    )


class Incident(BaseModel):
    """One down period: from the first failed check to the first good one (None: ongoing)."""

    id: int
    site_id: int
    started_at: Timestamp
    ended_at: Timestamp | None
    duration_seconds: float
    reason: str | None
    checks_failed: int


class ResponseTimes(BaseModel):
    avg: float | None
    p95: int | None
    max: int | None


class UptimeWindow(BaseModel):
    window: str
    start: Timestamp
    end: Timestamp
    uptime_percent: float | None = Field(description="time UP / time monitored in the window")
    checks: int
    checks_down: int
    down_seconds: float
    incidents: int
    response_time_ms: ResponseTimes
    resolution: Literal["raw", "1h", "1d"] = Field(
        description="raw: every check; 1h/1d: rollups were used for the older part, so its "
        "edge is rounded to the hour/day and p95 is the upper edge of a histogram bucket"
    )


class Uptime(BaseModel):
    site_id: int
    windows: list[UptimeWindow]


class Detail(BaseModel):
    """Every error body, and the body of deletions."""

    detail: str


class EventKind(StrEnum):
    """Why a Discord message is sent."""

    STARTED = "started"  # first check result after INITIAL
    DOWN = "down"  # UP -> DOWN
    UP = "up"  # DOWN -> UP (recovery)
    ENDED = "ended"  # site deleted
    TEST = "test"  # POST /webhooks/{id}/test


class Event(BaseModel):
    """Everything a message needs, snapshotted so it can be sent after the site is gone."""

    model_config = ConfigDict(frozen=True)

    kind: EventKind
    site_name: str
    site_url: str
    at: int  # epoch ms of the transition (or of the request, for ENDED/TEST)
    status: Status | None = None  # the status after the transition
    reason: str | None = None  # why DOWN ("HTTP 503", "timeout after 10s", ...)
    response_time_ms: int | None = None
    down_since: int | None = None  # epoch ms the outage began (DOWN and UP events)


class OutboxMessage(BaseModel):
    """A queued Discord message: the URL and payload were snapshotted when it was queued."""

    id: int
    url: str
    payload: dict[str, Any]
    created_at: int
    attempts: int = 0
