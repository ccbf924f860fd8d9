"""The Discord notifier against golden JSON, the contract in tests/contract and a fake Discord
on loopback."""

from __future__ import annotations

import asyncio
import json
import socket
from collections.abc import AsyncIterator
from typing import Any

import aiohttp
import pytest
from pytest_aiohttp import AiohttpServer

from tests.fake_discord import (
    EMPTY_MESSAGE,
    SCHEMA_ENV,
    FakeDiscord,
    Hang,
    NotFound,
    Ok,
    RateLimited,
    Respond,
    ServerError,
    Unauthorized,
    validate_body,
)
from uptimed import __version__
from uptimed.models import Certificate, Event, EventKind, Status
from uptimed.notify import NOTIFIERS, Delivery, DiscordNotifier, NotifyError
from uptimed.notify.discord import (
    GREEN,
    GREY,
    ORANGE,
    RED,
    USER_AGENT,
    build_payload,
    format_duration,
    parse_retry_after,
)

AT = 1_739_601_000_000  # 2025-02-15T06:30:00.000Z
DOWN_SINCE = AT - 252_000  # 4m 12s before AT
V10 = "https://discord.com/api/v10/webhooks/123456789012345678/tok"
V6 = "https://discord.com/api/v6/webhooks/123456789012345678/tok"
OLD = "https://discord.com/api/webhooks/123456789012345678/tok"
HELLO = {"content": "hello", "username": "uptimed"}


def make_event(kind: EventKind, **changes: Any) -> Event:
    values: dict[str, Any] = {
        "kind": kind,
        "site_name": "Example",
        "site_url": "https://example.com/health",
        "at": AT,
    }
    return Event(**(values | changes))


def message(embed: dict[str, Any]) -> dict[str, Any]:
    """The parts every golden message shares."""
    common = {
        "url": "https://example.com/health",
        "timestamp": "2025-02-15T06:30:00.000Z",
        "footer": {"text": "uptimed"},
    }
    return {"username": "uptimed", "embeds": [common | embed], "allowed_mentions": {"parse": []}}


def url_field(inline: bool = False) -> dict[str, Any]:
    return {"name": "URL", "value": "https://example.com/health", "inline": inline}


GOLDEN = [
    pytest.param(
        make_event(
            EventKind.DOWN,
            status=Status.DOWN,
            reason="HTTP 503",
            response_time_ms=87,
            down_since=AT,
        ),
        message(
            {
                "title": "🔴 Example is DOWN",
                "color": RED,
                "fields": [
                    url_field(),
                    {"name": "Reason", "value": "HTTP 503", "inline": False},
                    {"name": "Response time", "value": "87 ms", "inline": True},
                    {"name": "Down since", "value": "<t:1739601000:f>", "inline": True},
                ],
            }
        ),
        id="down",
    ),
    pytest.param(
        make_event(
            EventKind.UP,
            status=Status.UP,
            reason="HTTP 503",
            response_time_ms=123,
            down_since=DOWN_SINCE,
        ),
        message(
            {
                "title": "🟢 Example is UP",
                "color": GREEN,
                "fields": [
                    url_field(),
                    {"name": "Outage", "value": "HTTP 503", "inline": False},
                    {"name": "Response time", "value": "123 ms", "inline": True},
                    {"name": "Down since", "value": "<t:1739600748:f>", "inline": True},
                    {"name": "Downtime", "value": "4m 12s", "inline": True},
                ],
            }
        ),
        id="up",
    ),
    pytest.param(
        make_event(EventKind.STARTED, status=Status.UP, response_time_ms=42),
        message(
            {
                "title": "🟢 Monitoring started: Example is UP",
                "color": GREEN,
                "fields": [
                    url_field(),
                    {"name": "Response time", "value": "42 ms", "inline": True},
                ],
            }
        ),
        id="started-up",
    ),
    pytest.param(
        make_event(EventKind.STARTED, status=Status.DOWN, reason="timeout after 10s"),
        message(
            {
                "title": "🔴 Monitoring started: Example is DOWN",
                "color": RED,
                "fields": [
                    url_field(),
                    {"name": "Reason", "value": "timeout after 10s", "inline": False},
                ],
            }
        ),
        id="started-down",
    ),
    pytest.param(
        make_event(EventKind.ENDED, status=Status.UP),
        message(
            {
                "title": "⚪ Monitoring ended: Example",
                "description": "The site was removed; uptimed no longer checks it.",
                "color": GREY,
                "fields": [url_field()],
            }
        ),
        id="ended",
    ),
    pytest.param(
        make_event(EventKind.PAUSED),
        message(
            {
                "title": "⏸️ Monitoring paused: Example",
                "description": "uptimed does not check this site until it is resumed.",
                "color": GREY,
                "fields": [url_field()],
            }
        ),
        id="paused",
    ),
    pytest.param(
        make_event(EventKind.RESUMED),
        message(
            {
                "title": "▶️ Monitoring resumed: Example",
                "description": "uptimed checks this site again; its next check runs now.",
                "color": GREY,
                "fields": [url_field()],
            }
        ),
        id="resumed",
    ),
    pytest.param(
        make_event(EventKind.TEST),
        message(
            {
                "title": "🔔 Test message for Example",
                "description": "uptimed can post to this webhook.",
                "color": GREY,
                "fields": [url_field()],
            }
        ),
        id="test",
    ),
]


CERT = Certificate(
    subject="CN=example.com", issuer="CN=R11,O=Let's Encrypt,C=US", expires_at=1_765_015_200_000
)  # 2025-12-06T10:00:00Z
GOLDEN += [
    pytest.param(
        make_event(EventKind.DOWN, status=Status.DOWN, reason="HTTP 503", down_since=AT, checks=3),
        message(
            {
                "title": "🔴 Example is DOWN",
                "color": RED,
                "fields": [
                    url_field(),
                    {"name": "Reason", "value": "HTTP 503", "inline": False},
                    {"name": "Down since", "value": "<t:1739601000:f>", "inline": True},
                    {"name": "Confirmed by", "value": "3 failed checks in a row", "inline": True},
                ],
            }
        ),
        id="down-confirmed",
    ),
    pytest.param(
        make_event(
            EventKind.REMINDER,
            status=Status.DOWN,
            reason="HTTP 503",
            down_since=AT - 7_800_000,  # 2h 10m before
        ),
        message(
            {
                "title": "🔴 Example is still DOWN (for 2h 10m)",
                "color": RED,
                "fields": [
                    url_field(),
                    {"name": "Reason", "value": "HTTP 503", "inline": False},
                    {"name": "Down since", "value": "<t:1739593200:f>", "inline": True},
                ],
            }
        ),
        id="reminder",
    ),
    pytest.param(
        make_event(EventKind.CERTIFICATE, certificate=CERT, days_left=6),
        message(
            {
                "title": "🟠 Certificate of Example expires in 6 days",
                "description": "Certificate of example.com expires in 6 days "
                "(6 December 2025 10:00 UTC).",
                "color": ORANGE,
                "fields": [
                    url_field(),
                    {"name": "Subject", "value": "CN=example.com", "inline": False},
                    {"name": "Issuer", "value": "CN=R11,O=Let's Encrypt,C=US", "inline": False},
                    {"name": "Expires", "value": "<t:1765015200:f>", "inline": True},
                ],
            }
        ),
        id="certificate",
    ),
    pytest.param(
        make_event(EventKind.CERTIFICATE, certificate=CERT, days_left=-1),
        message(
            {
                "title": "🟠 Certificate of Example has expired",
                "description": "Certificate of example.com has expired "
                "(6 December 2025 10:00 UTC).",
                "color": ORANGE,
                "fields": [
                    url_field(),
                    {"name": "Subject", "value": "CN=example.com", "inline": False},
                    {"name": "Issuer", "value": "CN=R11,O=Let's Encrypt,C=US", "inline": False},
                    {"name": "Expires", "value": "<t:1765015200:f>", "inline": True},
                ],
            }
        ),
        id="certificate-expired",
    ),
    pytest.param(
        make_event(
            EventKind.UNMUTED, status=Status.DOWN, reason="timeout after 10s", down_since=AT
        ),
        message(
            {
                "title": "🔴 Alerts unmuted: Example is DOWN",
                "description": "Alerts were muted; this is the status now.",
                "color": RED,
                "fields": [
                    url_field(),
                    {"name": "Reason", "value": "timeout after 10s", "inline": False},
                    {"name": "Down since", "value": "<t:1739601000:f>", "inline": True},
                ],
            }
        ),
        id="unmuted-down",
    ),
    pytest.param(
        make_event(EventKind.UNMUTED, status=Status.UP),
        message(
            {
                "title": "🟢 Alerts unmuted: Example is UP",
                "description": "Alerts were muted; this is the status now.",
                "color": GREEN,
                "fields": [url_field()],
            }
        ),
        id="unmuted-up",
    ),
]


def embed_total(payload: dict[str, Any]) -> int:
    """Discord's 6000-character count, in UTF-16 units (the stricter reading)."""
    texts = []
    for embed in payload["embeds"]:
        texts += [embed.get("title") or "", embed.get("description") or ""]
        texts += [f["name"] + f["value"] for f in embed.get("fields", [])]
        texts.append(embed.get("footer", {}).get("text") or "")
    return sum(len(t.strip().encode("utf-16-le", "surrogatepass")) // 2 for t in texts)


@pytest.fixture
async def fake(aiohttp_server: AiohttpServer) -> FakeDiscord:
    return await FakeDiscord().start(aiohttp_server)


@pytest.fixture
async def session() -> AsyncIterator[aiohttp.ClientSession]:
    async with aiohttp.ClientSession() as session:
        yield session


async def send(session: aiohttp.ClientSession, url: str, **kwargs: Any) -> Delivery:
    payload = build_payload(make_event(EventKind.TEST))
    return await DiscordNotifier().send(session, url, payload, **kwargs)


# --- build_payload ----------------------------------------------------------------------------


@pytest.mark.parametrize(("event", "expected"), GOLDEN)
def test_payload_matches_golden_json(event: Event, expected: dict[str, Any]) -> None:
    assert build_payload(event) == expected


@pytest.mark.parametrize(("event", "expected"), GOLDEN)
def test_golden_payload_is_valid_for_discord(event: Event, expected: dict[str, Any]) -> None:
    assert validate_body(build_payload(event)) == []


EXTREMES = {
    "10k-name": {"site_name": "n" * 10_000},
    "10k-emoji-name": {"site_name": "🔥" * 10_000},
    "5k-url": {"site_url": "https://example.com/" + "a" * 5_000},
    "10k-reason": {"reason": "r" * 10_000},
    "markdown-and-mentions": {"site_name": "**b** @everyone @here <@1> `x` ||s|| [l](https://e.x)"},
    "whitespace-name": {"site_name": " \t\n "},
    "zero-width-name": {"site_name": "\u200b\u200d\u0301"},
    "whitespace-reason": {"reason": " \n "},
    "control-characters": {"site_name": "a\x00b\nc\x7f", "reason": "line 1\r\nline 2"},
    "lone-surrogate": {"site_name": "bad\ud800name"},
    "empty-url": {"site_url": ""},
    "not-a-url": {"site_url": "not a url"},
    "unicode-url": {"site_url": "https://例え.jp/パス?q=ü"},
    "everything-at-once": {
        "site_name": "é" * 10_000,
        "site_url": "https://example.com/" + "🔥" * 5_000,
        "reason": "\u00a0" + "🔥" * 10_000,
        "response_time_ms": 10**15,
        "down_since": 0,
    },
}


@pytest.mark.parametrize("kind", list(EventKind))
@pytest.mark.parametrize("changes", EXTREMES.values(), ids=EXTREMES.keys())
def test_payload_stays_valid_for_extreme_input(kind: EventKind, changes: dict[str, Any]) -> None:
    status = Status.UP if kind in (EventKind.UP, EventKind.STARTED) else Status.DOWN
    defaults = {
        "status": status,
        "reason": "HTTP 500",
        "down_since": DOWN_SINCE,
        "certificate": Certificate("CN=" + "🔥" * 10_000, "O=" + "\u202e" * 5000, 0),
        "days_left": -(10**9),
        "checks": 10,
    }
    payload = build_payload(make_event(kind, **(defaults | changes)))

    assert validate_body(payload) == []
    assert embed_total(payload) <= 6000
    assert payload["allowed_mentions"] == {"parse": []}
    json.dumps(payload, ensure_ascii=False).encode()  # no lone surrogates left


def test_long_name_is_cut_with_an_ellipsis_and_keeps_the_state() -> None:
    title = build_payload(make_event(EventKind.DOWN, site_name="n" * 10_000))["embeds"][0]["title"]
    assert title == "🔴 " + "n" * 244 + "… is DOWN"
    assert len(title.encode("utf-16-le")) // 2 == 256


def test_blank_inputs_get_placeholders() -> None:
    event = make_event(EventKind.DOWN, site_name="\u200b ", site_url=" ", reason="\t")
    embed = build_payload(event)["embeds"][0]
    assert embed["title"] == "🔴 (unnamed site) is DOWN"
    assert embed["fields"][:2] == [
        {"name": "URL", "value": "(none)", "inline": False},
        {"name": "Reason", "value": "unknown", "inline": False},
    ]
    assert "url" not in embed


@pytest.mark.parametrize("status", [None, Status.INITIAL])
def test_started_without_a_result_is_grey(status: Status | None) -> None:
    embed = build_payload(make_event(EventKind.STARTED, status=status))["embeds"][0]
    assert (embed["title"], embed["color"]) == ("⚪ Monitoring started: Example", GREY)


# What a name, URL or reason could do in Discord if it went in raw, and what goes in instead.
# Backslash escapes render as the character itself; inline code renders its text literally.
HOSTILE = [
    pytest.param(
        {"site_name": "Shop [verify](https://evil.example)"},
        {"title": "🔴 Shop \\[verify\\](https://evil.example) is DOWN"},
        id="masked-link-in-name",
    ),
    pytest.param(
        {"site_name": "**big** _it_ ~~s~~ ||spoiler|| `code` \\ <@1> <t:0:R>"},
        {
            "title": "🔴 \\*\\*big\\*\\* \\_it\\_ \\~\\~s\\~\\~ \\|\\|spoiler\\|\\| "
            "\\`code\\` \\\\ \\<@1\\> \\<t:0:R\\> is DOWN"
        },
        id="emphasis-code-spoiler-mention-timestamp",
    ),
    pytest.param(
        {"site_name": "\u202egnp.exe\u202c Shop\u2066\u2067\u2068\u2069\u202a\u202b\u202d\u200f"},
        {"title": "🔴 gnp.exe Shop is DOWN"},
        id="bidi-controls-in-name",
    ),
    pytest.param(
        {"site_url": "https://example.com/[verify](https://evil.example)"},
        {
            "url": "https://example.com/%5Bverify%5D(https://evil.example)",
            "URL": "`https://example.com/[verify](https://evil.example)`",
        },
        id="masked-link-in-url",
    ),
    pytest.param(
        {"site_url": "https://example.com/a`b_c"},
        {"url": "https://example.com/a%60b_c", "URL": "`https://example.com/a%60b_c`"},
        id="backtick-in-url",
    ),
    pytest.param(
        {"site_url": "https://example.com/\u202eexe.pdf"},
        {"URL": "https://example.com/exe.pdf"},
        id="bidi-control-in-url",
    ),
    pytest.param(
        {"reason": "# HTTP 503 [see](https://evil.example)"},
        {"Reason": "\\# HTTP 503 \\[see\\](https://evil.example)"},
        id="heading-and-link-in-reason",
    ),
    pytest.param({"reason": "> quoted"}, {"Reason": "\\> quoted"}, id="quote-in-reason"),
    pytest.param({"reason": "-# small"}, {"Reason": "\\-# small"}, id="subtext-in-reason"),
    pytest.param({"reason": "1. listed"}, {"Reason": "1\\. listed"}, id="list-in-reason"),
    pytest.param(
        {"site_name": "# not a heading"}, {"title": "🔴 # not a heading is DOWN"}, id="mid-line-#"
    ),
]


@pytest.mark.parametrize(("changes", "expected"), HOSTILE)
def test_user_text_cannot_format_link_or_reorder(
    changes: dict[str, Any], expected: dict[str, str]
) -> None:
    defaults = {"status": Status.DOWN, "reason": "HTTP 503"}
    payload = build_payload(make_event(EventKind.DOWN, **(defaults | changes)))
    embed = payload["embeds"][0]
    fields = {f["name"]: f["value"] for f in embed["fields"]}
    got = {key: embed.get(key) if key in ("title", "url") else fields.get(key) for key in expected}
    assert got == expected
    assert validate_body(payload) == []


def test_plain_urls_stay_plain_so_discord_links_them() -> None:
    url = "https://user@example.com:8443/a/b-c.d?x=1&y=%20#top"
    embed = build_payload(make_event(EventKind.TEST, site_url=url))["embeds"][0]
    assert embed["fields"][0]["value"] == url


@pytest.mark.parametrize(
    ("name", "kept"),
    [("*" * 300, "\\*" * 122), ("a" + "_" * 300, "a" + "\\_" * 121)],
    ids=["all-escapes", "escape-after-one"],
)
def test_escaping_counts_toward_the_limit_and_a_cut_never_splits_an_escape(
    name: str, kept: str
) -> None:
    payload = build_payload(make_event(EventKind.DOWN, site_name=name))
    title = payload["embeds"][0]["title"]
    assert title == f"🔴 {kept}… is DOWN"
    assert len(title.encode("utf-16-le")) // 2 <= 256
    assert validate_body(payload) == []


def test_over_long_markdown_url_is_cut_inside_its_code_span() -> None:
    url = "https://example.com/" + "_" * 5_000
    value = build_payload(make_event(EventKind.TEST, site_url=url))["embeds"][0]["fields"][0]
    assert value["value"] == "`" + url[:1021] + "…`"


def test_over_long_url_is_text_but_not_a_link() -> None:
    long_url = "https://example.com/" + "a" * 5_000
    embed = build_payload(make_event(EventKind.TEST, site_url=long_url))["embeds"][0]
    assert "url" not in embed
    assert embed["fields"][0]["value"] == long_url[:1023] + "…"


@pytest.mark.parametrize(
    ("ms", "text"),
    [
        (0, "0s"),
        (999, "0s"),
        (-5_000, "0s"),
        (12_000, "12s"),
        (60_000, "1m"),
        (252_000, "4m 12s"),
        (7_380_000, "2h 3m"),
        (7_205_000, "2h"),
        (100_800_000, "1d 4h"),
        (400 * 86_400_000, "400d"),
        (400 * 86_400_000 + 5 * 3_600_000 + 59_999, "400d 5h"),
    ],
)
def test_format_duration(ms: int, text: str) -> None:
    assert format_duration(ms) == text


# --- parse_retry_after ------------------------------------------------------------------------

HTTP_DATE = "Wed, 21 Oct 2015 07:28:00 GMT"


@pytest.mark.parametrize(
    ("status", "headers", "body", "url", "expected"),
    [
        pytest.param(429, {}, {"retry_after": 0.5, "global": False}, V10, (0.5, False), id="v10-s"),
        pytest.param(429, {}, {"retry_after": 120.0}, V10, (120.0, False), id="v10-big-still-s"),
        pytest.param(429, {}, {"retry_after": 1500}, OLD, (1.5, False), id="unversioned-ms"),
        pytest.param(429, {}, {"retry_after": 1500}, V6, (1.5, False), id="v6-ms"),
        pytest.param(429, {}, {"retry_after": 2000}, None, (2.0, False), id="no-url-ms"),
        pytest.param(429, {}, {"retry_after": 0.5}, OLD, (0.5, False), id="unversioned-small-s"),
        pytest.param(429, {}, {"retry_after": 45}, OLD, (45.0, False), id="ambiguous-errs-long"),
        pytest.param(429, {"Retry-After": "2"}, None, V10, (2.0, False), id="header-only"),
        pytest.param(429, {"Retry-After": "1500"}, None, OLD, (1.5, False), id="header-only-ms"),
        pytest.param(429, {"retry-after": "3"}, {}, V10, (3.0, False), id="header-any-case"),
        pytest.param(
            429, {"Retry-After": "1"}, {"retry_after": 0.25}, V10, (0.25, False), id="body-wins"
        ),
        pytest.param(
            429, {}, {"retry_after": 1.0, "global": True}, V10, (1.0, True), id="global-body"
        ),
        pytest.param(
            429,
            {"Retry-After": "65", "X-RateLimit-Global": "true", "X-RateLimit-Scope": "global"},
            None,
            V10,
            (65.0, True),
            id="global-headers",
        ),
        pytest.param(429, {}, {"message": "slow down"}, V10, (None, False), id="no-value"),
        pytest.param(429, {"Retry-After": HTTP_DATE}, None, V10, (None, False), id="http-date"),
        pytest.param(429, {}, {"retry_after": True}, V10, (None, False), id="bool-not-number"),
        pytest.param(429, {}, {"retry_after": -1}, V10, (-1.0, False), id="negative-as-sent"),
        pytest.param(429, {}, {"retry_after": 1e9}, V10, (1e9, False), id="huge-as-sent"),
        pytest.param(
            503, {"Retry-After": "120"}, {"retry_after": 5}, OLD, (120.0, False), id="5xx-header-s"
        ),
        pytest.param(
            503, {"X-RateLimit-Global": "true"}, None, V10, (None, False), id="5xx-never-global"
        ),
    ],
)
def test_parse_retry_after(
    status: int,
    headers: dict[str, str],
    body: object,
    url: str | None,
    expected: tuple[float | None, bool],
) -> None:
    assert parse_retry_after(status, headers, body, url=url) == expected


# --- DiscordNotifier.send against the fake ------------------------------------------------------


def test_registry_names_the_discord_notifier() -> None:
    assert NOTIFIERS["discord"] is DiscordNotifier


async def test_204_returns_delivery_with_rate_limit_hint(
    fake: FakeDiscord, session: aiohttp.ClientSession
) -> None:
    payload = build_payload(make_event(EventKind.DOWN, status=Status.DOWN, reason="HTTP 503"))

    first = await DiscordNotifier().send(session, fake.url(), payload)
    second = await DiscordNotifier().send(session, fake.url(), payload)

    assert (first.status, first.remaining) == (204, 4)
    assert (second.status, second.remaining) == (204, 3)
    assert first.reset_after is not None and 0 < first.reset_after <= 2.0
    [request, _] = fake.received(fake.url())
    assert request.headers["User-Agent"] == USER_AGENT
    assert __version__ in USER_AGENT
    assert request.headers["Content-Type"] == "application/json"
    assert request.body == payload
    assert fake.violations() == []


async def test_wait_true_answers_200(fake: FakeDiscord, session: aiohttp.ClientSession) -> None:
    delivery = await send(session, fake.url() + "?wait=true")
    assert delivery.status == 200


@pytest.mark.parametrize(
    ("behaviour", "versioned", "retry_after", "is_global"),
    [
        pytest.param(RateLimited(0.5), True, 0.5, False, id="seconds"),
        pytest.param(RateLimited(1.5, unit="ms"), False, 1.5, False, id="milliseconds"),
        pytest.param(RateLimited(2.0, global_=True), True, 2.0, True, id="global"),
    ],
)
async def test_429_is_transient_with_retry_after(
    fake: FakeDiscord,
    session: aiohttp.ClientSession,
    behaviour: RateLimited,
    versioned: bool,
    retry_after: float,
    is_global: bool,
) -> None:
    url = fake.url(versioned=versioned)
    fake.script(url, behaviour)

    with pytest.raises(NotifyError) as caught:
        await send(session, url)

    error = caught.value
    assert (error.permanent, error.status, error.is_global) == (False, 429, is_global)
    assert error.retry_after == pytest.approx(retry_after)
    assert (await send(session, url)).status == 204  # the script is used up


@pytest.mark.parametrize(
    ("behaviour", "status", "retry_after"),
    [(ServerError(500), 500, None), (ServerError(502), 502, None), (ServerError(503, 7), 503, 7.0)],
    ids=["500", "502", "503-retry-after"],
)
async def test_5xx_is_transient(
    fake: FakeDiscord,
    session: aiohttp.ClientSession,
    behaviour: ServerError,
    status: int,
    retry_after: float | None,
) -> None:
    fake.script(fake.url(), behaviour)

    with pytest.raises(NotifyError) as caught:
        await send(session, fake.url())

    error = caught.value
    assert (error.permanent, error.status, error.retry_after) == (False, status, retry_after)
    assert str(error) == f"Discord answered {status}: {status}: Server Error (code 0)"


@pytest.mark.parametrize(
    ("behaviour", "status", "text"),
    [
        (NotFound(), 404, "Discord answered 404: Unknown Webhook (code 10015)"),
        (Unauthorized(), 401, "Discord answered 401: Invalid Webhook Token (code 50027)"),
        (
            Respond(403, {"message": "Missing Access", "code": 50001}),
            403,
            "Discord answered 403: Missing Access (code 50001)",
        ),
        (
            Respond(301, headers={"Location": "https://discord.com/"}),
            301,
            "Discord answered 301: Moved Permanently (a redirect: check the webhook URL)",
        ),
    ],
    ids=["404", "401", "403", "301-not-followed"],
)
async def test_4xx_and_redirects_are_permanent(
    fake: FakeDiscord,
    session: aiohttp.ClientSession,
    behaviour: NotFound | Unauthorized | Respond,
    status: int,
    text: str,
) -> None:
    fake.script(fake.url(), behaviour)

    with pytest.raises(NotifyError) as caught:
        await send(session, fake.url())

    assert (caught.value.permanent, caught.value.status, str(caught.value)) == (True, status, text)
    assert len(fake.received()) == 1


async def test_invalid_payload_is_permanent_and_says_where(
    fake: FakeDiscord, session: aiohttp.ClientSession
) -> None:
    payload = {"embeds": [{"title": "x" * 300}]}

    with pytest.raises(NotifyError) as caught:
        await DiscordNotifier().send(session, fake.url(), payload)

    assert (caught.value.permanent, caught.value.status) == (True, 400)
    assert "Invalid Form Body (code 50035)" in str(caught.value)
    assert "embeds/0/title" in str(caught.value)
    assert fake.valid_bodies() == []
    assert len(fake.violations()) == 1


async def test_connection_refused_is_transient(session: aiohttp.ClientSession) -> None:
    with socket.socket() as probe:  # a port that was free a moment ago and has no listener
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]

    with pytest.raises(NotifyError) as caught:
        await send(session, f"http://127.0.0.1:{port}/api/v10/webhooks/1/tok")

    error = caught.value
    assert (error.permanent, error.status, str(error)) == (False, None, "connection refused")


async def test_hanging_server_times_out_as_transient(
    fake: FakeDiscord, session: aiohttp.ClientSession
) -> None:
    fake.script(fake.url(), Hang())

    with pytest.raises(NotifyError) as caught:
        await send(session, fake.url(), timeout=0.2)

    assert (caught.value.permanent, str(caught.value)) == (False, "timeout after 0.2s")
    assert fake.received()[0].status is None  # still hanging; released at teardown


@pytest.mark.parametrize("url", ["not a url", "ftp://example.com/api/webhooks/1/tok"])
async def test_unusable_url_is_permanent(session: aiohttp.ClientSession, url: str) -> None:
    with pytest.raises(NotifyError) as caught:
        await send(session, url)
    assert (caught.value.permanent, str(caught.value)) == (True, "invalid webhook URL")


async def test_a_raise_for_status_session_still_classifies(fake: FakeDiscord) -> None:
    fake.script(fake.url(), NotFound())
    async with aiohttp.ClientSession(raise_for_status=True) as session:
        with pytest.raises(NotifyError) as caught:
            await send(session, fake.url())
    assert (caught.value.permanent, caught.value.status) == (True, 404)


# --- the fake itself --------------------------------------------------------------------------

FULL_EMBED = {
    "title": "t",
    "description": "d",
    "url": "https://example.com/",
    "timestamp": "2025-02-15T06:30:00.000Z",
    "color": RED,
    "footer": {"text": "f"},
    "author": {"name": "a"},
    "fields": [{"name": "n", "value": "v", "inline": True}],
}


@pytest.mark.parametrize(
    "body",
    [{"content": "hi"}, {"embeds": [FULL_EMBED], "flags": 4096, "allowed_mentions": {"parse": []}}],
    ids=["content", "full-embed"],
)
def test_validator_accepts_valid_bodies(body: dict[str, Any]) -> None:
    assert validate_body(body) == []


def embed(**fields: Any) -> dict[str, Any]:
    return {"embeds": [{"title": "t", **fields}]}


def field(value: str) -> dict[str, str]:
    return {"name": "n", "value": value}


@pytest.mark.parametrize(
    ("body", "problem"),
    [
        pytest.param(embed(title="x" * 300), "embeds/0/title: ", id="300-char-title"),
        pytest.param(embed(title="🔥" * 200), "400 UTF-16 units, over 256", id="utf16-title"),
        pytest.param({}, EMPTY_MESSAGE, id="empty-message"),
        pytest.param({"content": "  ", "embeds": []}, EMPTY_MESSAGE, id="blank-content"),
        pytest.param(embed(fields=[field(" ")]), "value: must not be blank", id="blank-field"),
        pytest.param(embed(fields=[field("v")] * 26), "embeds/0/fields: ", id="26-fields"),
        pytest.param(
            embed(description="d" * 4096, fields=[field("v" * 1024)] * 2),
            "characters in total, over 6000",
            id="over-6000",
        ),
        pytest.param(
            {"embeds": [{"description": "d" * 3500}] * 2}, "7000 characters", id="6000-across"
        ),
        pytest.param({"content": "x", "flags": 1}, "flags: 1 sets bits", id="flag-1"),
        pytest.param({"content": "x", "embed": {}}, "'embed' was unexpected", id="typo-key"),
        pytest.param(embed(timestamp="yesterday"), "not a 'date-time'", id="timestamp"),
        pytest.param(embed(url="not a uri"), "not a 'uri'", id="uri"),
        pytest.param(embed(color=2**24), "embeds/0/color: ", id="colour"),
        pytest.param(
            {"content": "x", "allowed_mentions": {"parse": ["here"]}},
            "allowed_mentions/parse/0: ",
            id="mention-type",
        ),
        pytest.param({"content": "x", "username": "Discord"}, "'discord'", id="username"),
        pytest.param([], "must be a JSON object", id="not-an-object"),
    ],
)
def test_validator_rejects(body: object, problem: str) -> None:
    problems = validate_body(body)
    assert any(problem in p for p in problems), problems


def test_validator_reads_the_schema_named_by_the_environment(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Any
) -> None:
    monkeypatch.setenv(SCHEMA_ENV, str(tmp_path / "missing.json"))
    with pytest.raises(FileNotFoundError, match=SCHEMA_ENV):
        validate_body({"content": "x"})


@pytest.mark.parametrize(
    ("headers", "data", "code", "problem"),
    [
        pytest.param(
            {"Content-Type": "text/plain", "User-Agent": USER_AGENT},
            b'{"content": "x"}',
            50035,
            "Content-Type",
            id="content-type",
        ),
        pytest.param(
            {"Content-Type": "application/json"}, b'{"content": "x"}', 50035, "User-Agent", id="ua"
        ),
        pytest.param(
            {"Content-Type": "application/json", "User-Agent": USER_AGENT},
            b"{nope",
            50109,
            "not valid JSON",
            id="json",
        ),
        pytest.param(
            {"Content-Type": "application/json", "User-Agent": USER_AGENT},
            b"{}",
            50006,
            "empty message",
            id="empty",
        ),
    ],
)
async def test_fake_answers_400_like_discord(
    fake: FakeDiscord,
    session: aiohttp.ClientSession,
    headers: dict[str, str],
    data: bytes,
    code: int,
    problem: str,
) -> None:
    fake.script(fake.url(), NotFound())

    async with session.post(fake.url(), data=data, headers=headers) as response:
        assert response.status == 400
        assert (await response.json())["code"] == code

    assert any(problem in p for p in fake.violations()), fake.violations()
    with pytest.raises(NotifyError, match="404"):  # the 400 did not use up the script
        await send(session, fake.url())


async def test_fake_rejects_a_webhook_id_that_is_not_a_snowflake(
    fake: FakeDiscord, session: aiohttp.ClientSession
) -> None:
    with pytest.raises(NotifyError, match="400"):
        await send(session, fake.url(id="abc"))
    assert fake.violations() == [f"#0 {fake.received()[0].path}: webhook_id: not a snowflake"]


async def test_fake_enforces_five_per_two_seconds(
    aiohttp_server: AiohttpServer, session: aiohttp.ClientSession
) -> None:
    fake = await FakeDiscord(enforce_rate_limit=True).start(aiohttp_server)

    remaining = [(await send(session, fake.url())).remaining for _ in range(5)]
    with pytest.raises(NotifyError) as caught:
        await send(session, fake.url())

    assert remaining == [4, 3, 2, 1, 0]
    assert caught.value.status == 429
    assert caught.value.retry_after is not None and 0 <= caught.value.retry_after <= 2.0
    assert (await send(session, fake.url(id="987654321098765432"))).status == 204  # own bucket


async def test_scripts_are_per_webhook(fake: FakeDiscord, session: aiohttp.ClientSession) -> None:
    other = fake.url(id="987654321098765432")
    fake.script(fake.url(), NotFound(), Ok())

    assert (await send(session, other)).status == 204
    with pytest.raises(NotifyError):
        await send(session, fake.url())
    assert (await send(session, fake.url())).status == 204
    assert [r.status for r in fake.received(fake.url())] == [404, 204]
    assert [r.status for r in fake.received(other)] == [204]


async def test_wait_for_wakes_on_arrival_and_times_out(
    fake: FakeDiscord, session: aiohttp.ClientSession
) -> None:
    with pytest.raises(TimeoutError):
        await fake.wait_for(1, timeout=0.05)

    task = asyncio.create_task(send(session, fake.url()))
    [request] = await fake.wait_for(1, fake.url(), timeout=5)
    await task

    assert request.path == "/api/v10/webhooks/123456789012345678/tok"


async def test_standalone_fake_releases_a_hanging_request_on_close(
    session: aiohttp.ClientSession,
) -> None:
    async with FakeDiscord() as fake:
        assert (await send(session, fake.url())).status == 204
        fake.script(fake.url(), Hang())
        hanging = asyncio.create_task(send(session, fake.url(), timeout=30))
        await fake.wait_for(2)

    with pytest.raises(NotifyError) as caught:
        await asyncio.wait_for(hanging, 5)
    assert (caught.value.permanent, caught.value.status) == (False, 503)
