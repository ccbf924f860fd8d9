"""Pydantic models for the API and the domain; no I/O here.

Times inside the daemon are integer milliseconds since the Unix epoch (what the store keeps);
they become ISO 8601 UTC strings with milliseconds and ``Z`` only when serialised.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, datetime
from enum import StrEnum
from typing import Annotated, Any, Literal

from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    PlainSerializer,
    WithJsonSchema,
)
from pydantic_core import PydanticCustomError
from yarl import URL

MAX_URL_LENGTH = 4096
MAX_NAME_LENGTH = 1000


def iso_ms(ms: int) -> str:
    """Format epoch milliseconds as ``2025-02-15T06:30:00.000Z``."""
    dt = datetime.fromtimestamp(ms / 1000, tz=UTC)
    return dt.strftime("%Y-%m-%dT%H:%M:%S.") + f"{ms % 1000:03d}Z"


# What a site or webhook URL may be, as one regular expression that the validator applies and
# the OpenAPI schema publishes, so that clients and the API agree on every string: http or
# https, optional user:password@, an ASCII host name (IDN hosts in punycode, "xn--...") or an
# IPv4 or bracketed IPv6 address, an optional port up to 65535, then path, query and fragment
# without spaces or control characters. It reads the same in ECMAScript (what JSON Schema
# means) and Python, provided Python applies it with ``fullmatch``: a plain ``match`` would let
# "$" match before a final newline. tests/test_models.py checks with hypothesis that every
# match is accepted. (Lone surrogates, which no UTF-8 client can send, are left out of the
# pattern because Rust-based JSON Schema tools reject such a range; yarl refuses them.)
_H16 = "[0-9A-Fa-f]{1,4}"
_OCTET = "(?:25[0-5]|2[0-4][0-9]|1[0-9]{2}|[1-9]?[0-9])"
_LS32 = rf"(?:{_H16}:{_H16}|{_OCTET}(?:\.{_OCTET}){{3}})"
_IPV6 = "|".join(
    [
        rf"(?:{_H16}:){{6}}{_LS32}",
        rf"::(?:{_H16}:){{5}}{_LS32}",
        rf"(?:{_H16})?::(?:{_H16}:){{4}}{_LS32}",
        rf"(?:(?:{_H16}:){{0,1}}{_H16})?::(?:{_H16}:){{3}}{_LS32}",
        rf"(?:(?:{_H16}:){{0,2}}{_H16})?::(?:{_H16}:){{2}}{_LS32}",
        rf"(?:(?:{_H16}:){{0,3}}{_H16})?::{_H16}:{_LS32}",
        rf"(?:(?:{_H16}:){{0,4}}{_H16})?::{_LS32}",
        rf"(?:(?:{_H16}:){{0,5}}{_H16})?::{_H16}",
        rf"(?:(?:{_H16}:){{0,6}}{_H16})?::",
    ]
)
_LABEL = "[A-Za-z0-9](?:[A-Za-z0-9-]*[A-Za-z0-9])?"
_HOST = rf"(?:{_LABEL}(?:\.{_LABEL})*\.?|\[(?:{_IPV6})\])"
_USERINFO = "(?:[A-Za-z0-9._~!$&'()*+,;=-]+(?::[A-Za-z0-9._~!$&'()*+,;=-]*)?@)?"
_PORT = "(?:6553[0-5]|655[0-2][0-9]|65[0-4][0-9]{2}|6[0-4][0-9]{3}|[1-5][0-9]{4}|[0-9]{1,4})"
_REST = "[^\\x00-\\x20\\x7f-\\xa0\\u1680\\u2000-\\u200a\\u2028\\u2029\\u202f\\u205f\\u3000\\ufeff]"
URL_PATTERN = rf"^[Hh][Tt][Tt][Pp][Ss]?://{_USERINFO}{_HOST}(?::{_PORT})?(?:[/?#]{_REST}*)?$"
_URL = re.compile(URL_PATTERN)
# What a user is told when a URL breaks that rule, after "Field 'url': ".
URL_RULE = (
    "Must be an http:// or https:// URL with a host name or IP address, an optional port up to "
    "65535 and no spaces"
)


def _check_http_url(value: str) -> str:
    """Accept exactly the strings ``URL_PATTERN`` matches; yarl must be able to parse them
    too (it always can: the pattern is stricter, which the tests check)."""
    try:
        url = URL(value)
        ok = (
            _URL.fullmatch(value) is not None
            and url.scheme in ("http", "https")
            and bool(url.host)
            and url.port is not None
        )
    except (ValueError, TypeError):
        ok = False
    if not ok:
        raise PydanticCustomError("invalid_url", URL_RULE)
    return value


HttpUrl = Annotated[
    str,
    Field(min_length=1, max_length=MAX_URL_LENGTH, json_schema_extra={"pattern": URL_PATTERN}),
    AfterValidator(_check_http_url),
]
# An int inside the daemon, an ISO 8601 string on the wire: the OpenAPI response schemas
# (serialization mode) must say so, request schemas never contain one.
Timestamp = Annotated[
    int,
    PlainSerializer(iso_ms, return_type=str, when_used="json"),
    WithJsonSchema(
        {"type": "string", "format": "date-time", "examples": ["2025-02-15T06:30:00.000Z"]},
        mode="serialization",
    ),
]


def _whole_number(value: Any) -> Any:
    """JSON has one number type: 60.0 is the integer 60 (as JSON Schema says), 60.5 is not."""
    if isinstance(value, float) and value.is_integer():
        return int(value)
    return value


# An integer in a request body: strict (no "60", no true), but 60.0 counts.
JsonInt = Annotated[int, BeforeValidator(_whole_number)]


class Status(StrEnum):
    INITIAL = "INITIAL"
    UP = "UP"
    DOWN = "DOWN"


class _In(BaseModel):
    """Request bodies: JSON types are strict ("300" is not an integer), unknown keys ignored.

    Strings are taken as sent (no stripping), so the published JSON Schema, lengths included,
    says exactly what is accepted."""

    model_config = ConfigDict(strict=True, extra="ignore")


class QueryModel(BaseModel):
    """Query strings: values arrive as text, so "5" is read as 5; unknown parameters ignored."""

    model_config = ConfigDict(extra="ignore")


SiteId = Annotated[int, Field(ge=1, description="The site's id.")]
WebhookId = Annotated[int, Field(ge=1, description="The webhook's id.")]


class SiteIn(_In):
    url: HttpUrl = Field(
        examples=["https://example.com/health"],
        description="An absolute http(s) URL with a host; private and loopback hosts are allowed.",
    )
    name: str = Field(min_length=1, max_length=MAX_NAME_LENGTH, examples=["Example"])
    check_interval_seconds: JsonInt = Field(
        300, ge=1, le=86400, description="Seconds between checks."
    )
    expected_status_code: JsonInt = Field(
        200, ge=100, le=599, description="The site is UP when the final answer has this status."
    )
    keep_alive: bool | None = Field(
        None,
        description="Reuse connections for this site's checks; null follows the global "
        "keep_alive setting (default off: each check connects afresh, like a new visitor).",
    )


class Site(SiteIn):
    model_config = ConfigDict(frozen=True)

    id: int
    created_at: Timestamp


class WebhookIn(_In):
    site_id: JsonInt = Field(
        ge=1, description="The site whose status changes this webhook hears of."
    )
    discord_webhook_url: HttpUrl = Field(
        examples=["https://discord.com/api/v10/webhooks/123456789012345678/token"],
        description="A Discord execute-webhook URL.",
    )


class Webhook(WebhookIn):
    id: int
    created_at: Timestamp
    last_delivery_at: Timestamp | None = None
    last_error: str | None = Field(
        None,
        description="what went wrong at the last failed attempt, while a message is being "
        "retried and after it was given up; null once a message is delivered",
    )
    last_error_at: Timestamp | None = Field(None, description="when that attempt was made")
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
    """The current status of a site, since when (epoch ms) it holds, and why when DOWN (the
    first failed check's reason: the recovery message names it)."""

    status: Status
    since: int
    reason: str | None = None


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
    http_status: int | None = None  # None: no answer came (timeout, refused, ...)
    previous_reason: str | None = None  # why the previous status was DOWN


def _utc(value: datetime) -> datetime:
    return value if value.tzinfo else value.replace(tzinfo=UTC)


UtcTime = Annotated[datetime, AfterValidator(_utc)]


MAX_SQLITE_INT = 2**63 - 1
# A cursor means "older than this"; one beyond SQLite's integers (which SQLite cannot take)
# means the same as SQLite's largest: every row.
Cursor = Annotated[int, Field(ge=0), AfterValidator(lambda v: min(v, MAX_SQLITE_INT))]


class HistoryQuery(QueryModel):
    limit: int = Field(1000, ge=1, le=10000, description="rows per page, newest first")
    since: UtcTime | None = Field(None, description="only rows checked at or after (ISO 8601)")
    until: UtcTime | None = Field(None, description="only rows checked before (ISO 8601)")
    status: Status | None = None
    cursor: Cursor | None = Field(None, description="from the Link rel=next of the last page")


class PageQuery(QueryModel):
    limit: int = Field(100, ge=1, le=1000)
    cursor: Cursor | None = None


# 1 to 99999 minutes, hours or days: the same rule for each unit (99999m is about 69 days).
WINDOW_RE = r"^[1-9][0-9]{0,4}[mhd]$"
DEFAULT_WINDOWS = ["24h", "7d", "30d"]


class UptimeQuery(QueryModel):
    window: list[Annotated[str, Field(pattern=WINDOW_RE)]] = Field(
        default_factory=lambda: list(DEFAULT_WINDOWS),
        max_length=10,
        description="windows like 30m, 24h, 7d, 30d, 365d (1 to 99999 minutes, hours or days); "
        "repeat or comma-separate",
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
    """Over the checks of the window; null when it holds none."""

    avg: float | None
    p95: int | None
    p95_exact: bool = Field(
        description="true: from every check; false: the upper edge of the histogram bucket "
        "holding the 95th percentile (windows of more than 20,000 checks or beyond raw history)"
    )
    max: int | None


class UptimeWindow(BaseModel):
    window: str
    start: Timestamp = Field(
        description="where the figures begin: the window's start, or the site's first finished "
        "check if that is later (the INITIAL time before it is not monitored); equal to end "
        "while no check has finished"
    )
    end: Timestamp
    uptime_percent: float | None = Field(
        description="time UP / time monitored (start to end); null while no check has finished"
    )
    checks: int
    checks_down: int
    down_seconds: float
    incidents: int
    response_time_ms: ResponseTimes
    resolution: Literal["raw", "1h", "1d"] = Field(
        description="raw: the window lies within the raw history and every figure is exact; "
        "1h/1d: it reaches further back, where hourly/daily rollups count, so its start is "
        "rounded down to the hour/day"
    )


class Uptime(BaseModel):
    site_id: int
    windows: list[UptimeWindow]


class Detail(BaseModel):
    """Every error body, and the body of deletions."""

    detail: str = Field(examples=["Site not found"])


class Health(BaseModel):
    """``GET /healthz``: the process is up, serving, and can check and record.

    With a problem the answer is 503 with the same shape plus ``detail`` (every problem in one
    sentence, as every error carries)."""

    status: Literal["ok", "failing"] = "ok"
    problems: list[str] = Field(default_factory=list)


class TrialResult(BaseModel):
    """``POST /webhooks/{id}/test`` when Discord accepted the message."""

    detail: str = Field(examples=["Test message delivered"])
    discord_status: int = Field(examples=[204], description="the HTTP status Discord answered")


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
    reason: str | None = None  # why DOWN ("HTTP 503", "timeout after 10s", ...); for UP, why it was
    response_time_ms: int | None = None  # only when an answer came
    down_since: int | None = None  # epoch ms the outage began (DOWN and UP events)


class OutboxMessage(BaseModel):
    """A queued Discord message: the URL and payload were snapshotted when it was queued."""

    id: int
    url: str
    payload: dict[str, Any]
    created_at: int
    attempts: int = 0
    site_id: int | None = None  # a snapshot for the log: the site may be gone
    webhook_id: int | None = None  # likewise
