"""Pydantic models for the API and the domain; no I/O here.

Times inside the daemon are integer milliseconds since the Unix epoch (what the store keeps);
they become ISO 8601 UTC strings with milliseconds and ``Z`` only when serialised.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from enum import StrEnum
from typing import Annotated, Any, Literal

from annotated_types import Ge, Le
from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    PlainSerializer,
    PlainValidator,
    TypeAdapter,
    ValidationError,
    ValidationInfo,
    WithJsonSchema,
    create_model,
    field_validator,
)
from pydantic_core import PydanticCustomError

from uptimed.fields import (
    DEFAULT_WARN_DAYS,
    MAX_EXPECTED_BYTES,
    MAX_HEADER_BYTES,
    MAX_HEADERS,
    MAX_NAME_LENGTH,
    MAX_REQUEST_BODY_BYTES,
    MAX_TEXT_LENGTH,
    HttpMethod,
    HttpUrl,
    JsonInt,
    RequestHeaders,
    SiteUrl,
    StatusSpec,
    WarnDays,
    check_body,
    check_json_query,
    is_tcp,
    whole_number,
)


def iso_ms(ms: int) -> str:
    """Format epoch milliseconds as ``2025-02-15T06:30:00.000Z``."""
    dt = datetime.fromtimestamp(ms / 1000, tz=UTC)
    return dt.strftime("%Y-%m-%dT%H:%M:%S.") + f"{ms % 1000:03d}Z"


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


_DATETIME = TypeAdapter(datetime)
_ISO_DATE = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}")
_INSTANT_RULE = "must be an ISO 8601 time like 2026-12-06T10:00:00Z"
_LAST_MS = 253_402_300_799_999  # 9999-12-31T23:59:59.999Z, the last time iso_ms can write


def _instant(value: Any, info: ValidationInfo) -> int:
    """An RFC 3339 time (no zone: UTC) from a request; epoch ms as the store hands it back.
    Times before 1970 mean the same as 1970 (the past), and after 9999 as 9999."""
    if isinstance(value, int) and not isinstance(value, bool) and info.mode == "python":
        return value
    # pydantic would also read "3600" as seconds since 1970: a duration sent by mistake
    if not isinstance(value, str) or not _ISO_DATE.match(value):
        raise PydanticCustomError("instant", _INSTANT_RULE)
    try:
        moment = _DATETIME.validate_strings(value)
    except ValidationError:
        raise PydanticCustomError("instant", _INSTANT_RULE) from None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return min(max(int(moment.timestamp() * 1000), 0), _LAST_MS)


# A time a request sets: ISO 8601 on the wire both ways, epoch ms inside.
Instant = Annotated[
    int,
    PlainValidator(_instant),
    PlainSerializer(iso_ms, return_type=str, when_used="json"),
    WithJsonSchema({"type": "string", "format": "date-time", "examples": ["2026-12-06T10:00:00Z"]}),
]


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
# A tcp:// site refuses these unless they hold their default: they shape an HTTP request or
# judge an HTTP answer.
HTTP_ONLY_FIELDS = (
    "expected_status_code",
    "keep_alive",
    "method",
    "headers",
    "body",
    "accepted_status_codes",
    "body_contains",
    "body_not_contains",
    "json_query",
    "json_expected",
    "follow_redirects",
)
WebhookId = Annotated[int, Field(ge=1, description="The webhook's id.")]


class SiteIn(_In):
    """A site's writable fields: what POST takes, and what PATCH changes."""

    url: SiteUrl = Field(
        examples=["https://example.com/health", "tcp://mail.example.com:465"],
        description="An absolute http(s) URL with a host, or tcp://host:port for a TCP check "
        "(UP when a connection opens); private and loopback hosts are allowed.",
    )
    name: str = Field(min_length=1, max_length=MAX_NAME_LENGTH, examples=["Example"])
    check_interval_seconds: JsonInt = Field(
        300, ge=1, le=86400, description="Seconds between checks."
    )
    expected_status_code: JsonInt = Field(
        200,
        ge=100,
        le=599,
        description="The site is UP when the final answer has this status; used only while "
        "accepted_status_codes is null.",
    )
    keep_alive: bool | None = Field(
        None,
        description="Reuse connections for this site's checks; null follows the global "
        "keep_alive setting (default off: each check connects afresh, like a new visitor).",
    )
    paused: bool = Field(
        False, description="A paused site is not checked and sends no alerts; it keeps its history."
    )
    method: HttpMethod = Field("GET", description="The HTTP method of the check's request.")
    headers: RequestHeaders = Field(
        default_factory=dict,
        examples=[{"Authorization": "Bearer s3cret", "Accept": "application/json"}],
        description=f"Request headers, name to value: at most {MAX_HEADERS}, "
        f"{MAX_HEADER_BYTES} bytes in all; they replace uptimed's own (User-Agent).",
    )
    body: str | None = Field(
        None,
        max_length=MAX_REQUEST_BODY_BYTES,
        description="The request body, sent as given (at most 64 KiB in UTF-8); its "
        "Content-Type is whatever headers says (none otherwise).",
    )
    accepted_status_codes: list[StatusSpec] | None = Field(
        None,
        min_length=1,
        max_length=50,
        examples=[["200-299", 301]],
        description='Statuses that count as UP: 200, "200", "200-299" or "2xx"; when '
        "set it decides, and expected_status_code is not used.",
    )
    body_contains: str | None = Field(
        None,
        min_length=1,
        max_length=MAX_TEXT_LENGTH,
        description="The body (its first 1 MiB, decoded with the answer's charset, else "
        "UTF-8) must contain this text.",
    )
    body_not_contains: str | None = Field(
        None,
        min_length=1,
        max_length=MAX_TEXT_LENGTH,
        description="The body (its first 1 MiB) must not contain this text.",
    )
    json_query: str | None = Field(
        None,
        min_length=1,
        max_length=MAX_TEXT_LENGTH,
        examples=["status"],
        description="A JMESPath expression run on the JSON body; its result must equal "
        "json_expected (or, when that is null, be anything but null).",
    )
    json_expected: Any = Field(
        None,
        examples=["ok"],
        description="The JSON value json_query must give; needs json_query.",
    )
    max_response_time_ms: (
        Annotated[int, Ge(1), Le(120_000), BeforeValidator(whole_number)] | None
    ) = Field(None, description="A whole answer slower than this is DOWN.")
    timeout_seconds: float | None = Field(
        None,
        ge=1,
        le=120,
        description="This site's timeout per try; null follows DEFAULT_TIMEOUT_SECONDS.",
    )
    follow_redirects: bool = Field(
        True, description="false: a 3xx is the final answer, so a redirect itself is checked."
    )
    verify_tls: bool = Field(
        True, description="false: self-signed, expired or wrong-host certificates are accepted."
    )
    tls: bool = Field(
        False,
        description="tcp:// sites only: complete a TLS handshake after connecting (SMTPS, "
        "IMAPS, LDAPS...); its certificate is then read as an https site's is.",
    )
    failure_threshold: JsonInt = Field(
        1, ge=1, le=10, description="Consecutive failed checks before the site turns DOWN."
    )
    success_threshold: JsonInt = Field(
        1, ge=1, le=10, description="Consecutive good checks before a DOWN site turns UP again."
    )
    retry_interval_seconds: (
        Annotated[int, Ge(1), Le(86400), BeforeValidator(whole_number)] | None
    ) = Field(
        None,
        description="Seconds between checks while failures are counted towards "
        "failure_threshold; null: check_interval_seconds. At most check_interval_seconds.",
    )
    renotify_every_seconds: (
        Annotated[int, Ge(60), Le(30 * 86400), BeforeValidator(whole_number)] | None
    ) = Field(
        None,
        description="While DOWN, a reminder at this period; null: never. Absent at creation: "
        "the renotify_every_seconds setting.",
    )
    tls_expiry_warn_days: WarnDays = Field(
        default_factory=lambda: list(DEFAULT_WARN_DAYS),
        examples=[[14, 7, 3, 1]],
        description="One message when the certificate's days left first reach each of these; "
        "[] turns warnings off. Absent at creation (or null in a PATCH): the "
        "tls_expiry_warn_days setting.",
    )
    alerts_muted_until: Instant | None = Field(
        None,
        description="Until this time checks and history go on but no message is sent "
        "(planned maintenance); then one message tells the state, if it changed meanwhile.",
    )
    public: bool = Field(
        False,
        examples=[True],
        description="Shown on the public status page (GET /status, no login) and its badges "
        "(GET /badge/{site_id}/...): name, state, uptime, response times and incidents.",
    )
    show_url: bool = Field(
        False, description="With public: the status page shows the site's URL too."
    )

    _check_body = field_validator("body")(check_body)  # type: ignore[assignment]
    _check_query = field_validator("json_query")(check_json_query)  # type: ignore[assignment]

    @field_validator("json_expected")
    @classmethod
    def _needs_query(cls, value: Any, info: ValidationInfo) -> Any:
        if value is not None and info.data.get("json_query") is None:
            raise PydanticCustomError("json_expected", "needs json_query")
        try:  # NaN and 1e400 (infinity) are no JSON values: they could never be matched
            size = len(json.dumps(value, allow_nan=False))
        except ValueError:
            raise PydanticCustomError(
                "json_expected", "its numbers must be finite (no NaN or Infinity)"
            ) from None
        if size > MAX_EXPECTED_BYTES:
            raise PydanticCustomError(
                "json_expected", f"must be at most {MAX_EXPECTED_BYTES} characters as JSON"
            )
        return value

    @field_validator("headers")
    @classmethod
    def _one_authorization(cls, value: dict[str, str], info: ValidationInfo) -> dict[str, str]:
        url = info.data.get("url")
        if url and "@" in url.split("/", 3)[2] and any(n.lower() == "authorization" for n in value):
            raise PydanticCustomError(
                "headers",
                "an Authorization header and a user:password@ in the url exclude each other",
            )
        return value

    @field_validator("body_contains", "body_not_contains", "json_query")
    @classmethod
    def _needs_a_body(cls, value: str | None, info: ValidationInfo) -> str | None:
        if value is not None and info.data.get("method") == "HEAD":
            raise PydanticCustomError("head_body", "a HEAD answer has no body to look into")
        return value

    @field_validator(*HTTP_ONLY_FIELDS)
    @classmethod
    def _http_only(cls, value: Any, info: ValidationInfo) -> Any:
        url = info.data.get("url")
        assert info.field_name is not None
        if url and is_tcp(url) and value != _default(info.field_name):
            raise PydanticCustomError(
                "http_only", "applies to http(s):// sites only, not to tcp://"
            )
        return value

    @field_validator("tls")
    @classmethod
    def _tcp_only(cls, value: bool, info: ValidationInfo) -> bool:
        url = info.data.get("url")
        if value and url and not is_tcp(url):
            raise PydanticCustomError(
                "tcp_only", "applies to tcp:// sites only (an https:// URL uses TLS already)"
            )
        return value

    @field_validator("retry_interval_seconds")
    @classmethod
    def _within_interval(cls, value: int | None, info: ValidationInfo) -> int | None:
        interval = info.data.get("check_interval_seconds")
        if value is not None and interval is not None and value > interval:
            raise PydanticCustomError(
                "retry_interval",
                "must be at most check_interval_seconds ({interval})",
                {"interval": interval},
            )
        return value

    @property
    def is_tcp(self) -> bool:
        return is_tcp(self.url)


def _default(name: str) -> Any:
    return SiteIn.model_fields[name].get_default(call_default_factory=True)


# What decides when a site's state changes and who hears of it, not what a check does.
ALERT_FIELDS = frozenset(
    {
        "failure_threshold",
        "success_threshold",
        "retry_interval_seconds",
        "renotify_every_seconds",
        "tls_expiry_warn_days",
        "alerts_muted_until",
    }
)
# What only decides where a site is shown.
DISPLAY_FIELDS = frozenset({"name", "public", "show_url"})
# The fields whose change reschedules a site's checks: all but those, paused and the above.
CHECK_FIELDS = frozenset(SiteIn.model_fields) - DISPLAY_FIELDS - {"paused"} - ALERT_FIELDS


class Site(SiteIn):
    """A stored site as the daemon keeps it: one per site, held by its scheduler job.

    It has at most 29 fields on purpose: CPython shares one table of attribute names among
    instances of a class with up to 29 (SHARED_KEYS_MAX_SIZE in 3.11), and each site then
    holds only its values (about 300 bytes); one field more gives every site a dict of its own
    (1,584 bytes: 50 MiB more at 40,000 sites). Where a site came from is the API's to show
    (SiteView).
    """

    model_config = ConfigDict(frozen=True)

    id: int
    created_at: Timestamp

    def timeout(self, default: float) -> float:
        return default if self.timeout_seconds is None else self.timeout_seconds


class TlsCertificate(BaseModel):
    """The leaf certificate the site's latest TLS check saw."""

    subject: str = Field(examples=["CN=example.com"])
    issuer: str = Field(examples=["CN=R11,O=Let's Encrypt,C=US"])
    expires_at: Timestamp
    days_left: int = Field(description="whole days until expires_at; negative once expired")


class SiteView(Site):
    """A site as the API shows it: its settings and, read-only, where it came from and how it
    is doing."""

    source: Literal["api", "config"] = Field(
        "api",
        description="config: declared in the config file's [[sites]] (read-only here: change "
        "the file and reload); api: made through this API",
    )
    key: str | None = Field(
        None, description="a declared site's key in the config file; null for an API site"
    )
    status: Status = Status.INITIAL
    status_since: Timestamp
    last_checked: Timestamp | None = Field(None, description="null: never checked")
    last_response_time_ms: int | None = None
    last_reason: str | None = Field(None, description="why the last check failed; null when up")
    tls_certificate: TlsCertificate | None = Field(
        None, description="null: no check of this site has opened TLS yet"
    )


def _absent_means_unchanged(extra: Any) -> Callable[[dict[str, Any]], None]:
    """A PATCH field has no default (absent: unchanged); it keeps SiteIn's schema extras."""

    def edit(schema: dict[str, Any]) -> None:
        schema.pop("default", None)
        schema.update(extra or {})

    return edit


def _patch_model() -> type[BaseModel]:
    """PATCH's body: every writable field of a site, optional; null resets a field to its
    default, so only the fields without one (url, name) refuse null."""
    fields: dict[str, Any] = {}
    for name, info in SiteIn.model_fields.items():
        annotation = info.annotation
        if info.metadata:
            annotation = Annotated[(annotation, *info.metadata)]  # type: ignore[valid-type]
        if not info.is_required():
            annotation = annotation | None  # type: ignore[operator]
        extra = {"json_schema_extra": _absent_means_unchanged(info.json_schema_extra)}
        fields[name] = (
            annotation,
            Field(None, description=info.description, examples=info.examples, **extra),
        )
    return create_model("SitePatch", __base__=_In, **fields)


SitePatch = _patch_model()


class WebhookIn(_In):
    # Ge inside the union: on the Field, pydantic checks it but the JSON Schema says "ge"
    # (no JSON Schema keyword), so the spec would allow 0.
    site_id: Annotated[int, Ge(1), BeforeValidator(whole_number)] | None = Field(
        description="The site whose status changes this webhook hears of; null: every site, "
        "present and future.",
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
    enabled: bool = Field(
        True,
        description="false: Discord refused this URL for good (404, 401, 403: see last_error) "
        "or it was disabled by PATCH; it takes no messages until enabled again",
    )
    disabled_at: Timestamp | None = Field(None, description="when it was disabled")
    source: Literal["api", "config"] = Field(
        "api", description="config: declared in the config file (DELETE answers 409)"
    )
    key: str | None = Field(
        None, description="the name of its [webhooks.NAME] table in the config file, if any"
    )


class WebhookPatch(_In):
    enabled: bool = Field(
        description="true: take messages again (after a 404 or 401 was fixed); false: stop. "
        "Applies to every webhook with the same URL: to Discord they are one webhook"
    )


class HistoryRow(BaseModel):
    status: Status
    response_time_ms: int | None
    last_checked: Timestamp
    last_status_change: Timestamp
    reason: str | None = None


@dataclass(frozen=True, slots=True)
class Certificate:
    """A TLS leaf certificate as a check saw it; ``expires_at`` is its notAfter in epoch ms."""

    subject: str
    issuer: str
    expires_at: int

    def days_left(self, now: int) -> int:
        """Whole days from ``now`` (epoch ms) until it expires; negative once it has."""
        return (self.expires_at - now) // 86_400_000


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
    certificate: Certificate | None = None  # the TLS leaf, when the check opened TLS


@dataclass(frozen=True, slots=True)
class SiteState:
    """The current status of a site, since when (epoch ms) it holds, and why when DOWN (the
    check's reason that turned it DOWN: the recovery message names it).

    ``streak`` counts the latest checks in a row that disagreed with ``status`` (failures
    while UP or INITIAL, good checks while DOWN) and have not yet reached its threshold."""

    status: Status
    since: int
    reason: str | None = None
    streak: int = 0


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
    checks: int = 1  # the checks in a row that made it (its threshold)


def _utc(value: datetime) -> datetime:
    return value if value.tzinfo else value.replace(tzinfo=UTC)


UtcTime = Annotated[datetime, AfterValidator(_utc)]


MAX_SQLITE_INT = 2**63 - 1
# A cursor means "older than this"; one beyond SQLite's integers (which SQLite cannot take)
# means the same as SQLite's largest: every row.
Cursor = Annotated[int, Field(ge=0), AfterValidator(lambda v: min(v, MAX_SQLITE_INT))]


class SiteQuery(QueryModel):
    status: Status | None = Field(None, description="only sites with this status")
    paused: bool | None = Field(None, description="only paused (true) or unpaused sites")


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
        "while no check has finished. Paused spans after it are not monitored either"
    )
    end: Timestamp
    uptime_percent: float | None = Field(
        description="time UP / time monitored (start to end, less the paused spans, which are "
        "neither up nor down); null while nothing is monitored: no check has finished, or the "
        "site was paused throughout"
    )
    checks: int
    checks_down: int
    down_seconds: float
    incidents: int = Field(description="incidents down within the window for a moment not paused")
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
    connectivity: Literal["ok", "offline"] = Field(
        "ok",
        description="offline: a check failed and every connectivity_check_urls target failed "
        "too, so failed checks are set aside, not recorded, until one answers again (always "
        "ok when connectivity_check_urls is empty). Offline alone is not a 503: restarting "
        "uptimed cannot bring its network back, and a health check would restart it in a loop",
    )


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
    PAUSED = "paused"  # PATCH paused=true
    RESUMED = "resumed"  # PATCH paused=false
    TEST = "test"  # POST /webhooks/{id}/test
    REMINDER = "reminder"  # still DOWN, every renotify_every_seconds
    CERTIFICATE = "certificate"  # the TLS certificate's days left reached a threshold
    UNMUTED = "unmuted"  # a mute ended and the status differs from the last one told
    OFFLINE = "offline"  # the monitor could not check from down_since to at (connectivity)


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
    down_since: int | None = None  # epoch ms the outage began (DOWN, UP, REMINDER events)
    checks: int = 1  # the checks in a row that confirmed a DOWN or UP
    certificate: Certificate | None = None  # CERTIFICATE: the certificate warned of
    days_left: int | None = None  # CERTIFICATE: whole days until it expires


class OutboxMessage(BaseModel):
    """A queued message: the URL and the event were snapshotted when it was queued. A body
    rendered by a version before schema 9 (pending at the upgrade) is ``payload`` instead."""

    id: int
    url: str
    event: Event | None = None
    payload: dict[str, Any] | None = None
    created_at: int
    attempts: int = 0
    site_id: int | None = None  # a snapshot for the log: the site may be gone
    webhook_id: int | None = None  # likewise
