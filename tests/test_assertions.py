"""The assertions over an answer, as a table: each field, each reason text, JSON equality as
JSON means it; and, against the local target, how a body is decoded and where it is cut."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import aiohttp
import pytest

from tests.conftest import Target
from uptimed.checks import check_site
from uptimed.checks.answer import Answer
from uptimed.checks.assertions import first_failure
from uptimed.checks.http import BODY_ASSERT_CAP
from uptimed.models import Site, Status


def site(**fields: Any) -> Site:
    return Site(id=1, url="http://example.test/", name="t", created_at=0, **fields)


def js(query: str, expected: Any = None) -> dict[str, Any]:
    return {"json_query": query, "json_expected": expected}


LONG = "x" * 300
CASES: list[tuple[str, dict[str, Any], int, str | None, int, str | None]] = [
    # id, site fields, status, body, elapsed ms, reason
    ("expected-ok", {}, 200, None, 5, None),
    ("expected-wrong", {}, 503, None, 5, "HTTP 503"),
    ("expected-other", {"expected_status_code": 204}, 204, None, 5, None),
    ("expected-other-wrong", {"expected_status_code": 204}, 200, None, 5, "HTTP 200"),
    ("accepted-int", {"accepted_status_codes": [201]}, 201, None, 5, None),
    ("accepted-str", {"accepted_status_codes": ["201"]}, 201, None, 5, None),
    ("accepted-range-low", {"accepted_status_codes": ["200-299"]}, 200, None, 5, None),
    ("accepted-range-high", {"accepted_status_codes": ["200-299"]}, 299, None, 5, None),
    ("accepted-class", {"accepted_status_codes": ["3xx"]}, 308, None, 5, None),
    ("accepted-second", {"accepted_status_codes": ["2xx", 404]}, 404, None, 5, None),
    (
        "accepted-wrong",
        {"accepted_status_codes": ["200-299"]},
        503,
        None,
        5,
        "HTTP 503 (accepted: 200-299)",
    ),
    (
        "accepted-wrong-two",
        {"accepted_status_codes": ["200-299", 301]},
        503,
        None,
        5,
        "HTTP 503 (accepted: 200-299, 301)",
    ),
    (
        "accepted-over-expected",
        {"expected_status_code": 503, "accepted_status_codes": ["2xx"]},
        503,
        None,
        5,
        "HTTP 503 (accepted: 2xx)",
    ),
    ("contains", {"body_contains": "Welcome"}, 200, "<h1>Welcome</h1>", 5, None),
    (
        "contains-not",
        {"body_contains": "Welcome"},
        200,
        "<h1>Hi</h1>",
        5,
        'body does not contain "Welcome"',
    ),
    (
        "contains-case",
        {"body_contains": "Welcome"},
        200,
        "welcome",
        5,
        'body does not contain "Welcome"',
    ),
    ("not-contains", {"body_not_contains": "Maintenance"}, 200, "all fine", 5, None),
    (
        "not-contains-not",
        {"body_not_contains": "Maintenance"},
        200,
        "Maintenance until 5",
        5,
        'body contains "Maintenance"',
    ),
    (
        "contains-quoted",
        {"body_contains": 'say "hi"'},
        200,
        "",
        5,
        'body does not contain "say \\"hi\\""',
    ),
    ("json-equal", js("status", "ok"), 200, '{"status": "ok"}', 5, None),
    (
        "json-differs",
        js("status", "ok"),
        200,
        '{"status": "degraded"}',
        5,
        'JSON status is "degraded", expected "ok"',
    ),
    ("json-any-value", js("status"), 200, '{"status": "degraded"}', 5, None),
    ("json-any-false", js("up"), 200, '{"up": false}', 5, None),
    (
        "json-null",
        js("status"),
        200,
        '{"status": null}',
        5,
        "JSON status is null, expected a value",
    ),
    ("json-missing", js("status"), 200, "{}", 5, "JSON status is null, expected a value"),
    ("json-not-json", js("status", "ok"), 200, "<html>", 5, "body is not JSON"),
    ("json-empty", js("status"), 200, "", 5, "body is not JSON"),
    ("json-huge-number", js("a"), 200, '{"a": ' + "9" * 5000 + "}", 5, "body is not JSON"),
    ("json-deep", js("a"), 200, "[" * 5000 + "]" * 5000, 5, "JSON nested too deeply"),
    ("json-true-is-not-1", js("a", 1), 200, '{"a": true}', 5, "JSON a is true, expected 1"),
    ("json-1-is-not-true", js("a", True), 200, '{"a": 1}', 5, "JSON a is 1, expected true"),
    ("json-0-is-not-false", js("a", False), 200, '{"a": 0}', 5, "JSON a is 0, expected false"),
    ("json-1-is-1.0", js("a", 1), 200, '{"a": 1.0}', 5, None),
    ("json-1.0-is-1", js("a", 1.0), 200, '{"a": 1}', 5, None),
    ("json-str-is-not-number", js("a", 1), 200, '{"a": "1"}', 5, 'JSON a is "1", expected 1'),
    ("json-false", js("a", False), 200, '{"a": false}', 5, None),
    (
        "json-nested-equal",
        js("a", [1, {"b": True, "c": [2.0, None]}]),
        200,
        '{"a": [1.0, {"c": [2, null], "b": true}]}',
        5,
        None,
    ),
    (
        "json-nested-true-vs-1",
        js("a", [1, {"b": True}]),
        200,
        '{"a": [1, {"b": 1}]}',
        5,
        'JSON a is [1, {"b": 1}], expected [1, {"b": true}]',
    ),
    (
        "json-nested-extra-key",
        js("a", {"b": 1}),
        200,
        '{"a": {"b": 1, "c": 2}}',
        5,
        'JSON a is {"b": 1, "c": 2}, expected {"b": 1}',
    ),
    (
        "json-list-longer",
        js("a", [1]),
        200,
        '{"a": [1, 1]}',
        5,
        "JSON a is [1, 1], expected [1]",
    ),
    (
        "json-filter",
        js("checks[?name=='db'].ok | [0]", True),
        200,
        '{"checks": [{"name": "web", "ok": true}, {"name": "db", "ok": false}]}',
        5,
        "JSON checks[?name=='db'].ok | [0] is false, expected true",
    ),
    (
        "json-clipped",
        js("a", "short"),
        200,
        f'{{"a": "{LONG}"}}',
        5,
        'JSON a is "' + "x" * 98 + '…, expected "short"',
    ),
    ("json-unicode", js("a", "ok"), 200, '{"a": "défaut"}', 5, 'JSON a is "défaut", expected "ok"'),
    ("slow", {"max_response_time_ms": 2000}, 200, None, 2340, "slow: 2340 ms > 2000 ms"),
    ("slow-equal", {"max_response_time_ms": 2000}, 200, None, 2000, None),
    # The order: status, body_contains, body_not_contains, json, slow.
    (
        "order-status-first",
        {"body_contains": "a", "max_response_time_ms": 1},
        500,
        "b",
        9,
        "HTTP 500",
    ),
    (
        "order-contains-before-not-contains",
        {"body_contains": "a", "body_not_contains": "b"},
        200,
        "b",
        5,
        'body does not contain "a"',
    ),
    (
        "order-not-contains-before-json",
        {"body_not_contains": "{", **js("a", 1)},
        200,
        '{"a": 2}',
        5,
        'body contains "{"',
    ),
    (
        "order-json-before-slow",
        {"max_response_time_ms": 1, **js("a", 1)},
        200,
        '{"a": 2}',
        9,
        "JSON a is 2, expected 1",
    ),
]


@pytest.mark.parametrize(
    ("fields", "status", "text", "elapsed_ms", "reason"),
    [case[1:] for case in CASES],
    ids=[case[0] for case in CASES],
)
def test_first_failure(
    fields: dict[str, Any], status: int, text: str | None, elapsed_ms: int, reason: str | None
) -> None:
    assert first_failure(site(**fields), Answer(status, text), elapsed_ms) == reason


def test_a_query_a_function_cannot_run_is_a_reason() -> None:
    reason = first_failure(site(**js("abs(a)", 1)), Answer(200, '{"a": "x"}'), 5)
    assert reason is not None and reason.startswith("JSON abs(a) failed: "), reason


# Through a real answer: the body is decoded with its charset, else UTF-8, and cut at 1 MiB.


@pytest.fixture
async def session() -> AsyncIterator[aiohttp.ClientSession]:
    async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(force_close=True)) as s:
        yield s


@pytest.mark.parametrize(
    ("data", "content_type", "needle", "up"),
    [
        ("Grüße".encode("latin-1"), "text/plain; charset=ISO-8859-1", "Grüße", True),
        ("Grüße".encode("latin-1"), "text/plain; charset=latin-1", "Grüße", True),
        ("Grüße".encode("cp1252"), 'text/html; charset="windows-1252"', "Grüße", True),
        ("Grüße".encode(), "text/plain", "Grüße", True),  # no charset: UTF-8
        ("Grüße".encode(), "application/octet-stream", "Grüße", True),
        ("Grüße".encode(), "text/plain; charset=no-such-charset", "Grüße", True),
        ("Grüße".encode(), "text/plain; charset=base64", "Grüße", True),  # not a text codec
        ("Grüße".encode(), "text/plain; charset=idna", "Grüße", True),  # cannot replace
        ("Grüße".encode(), "text/plain; charset=undefined", "Grüße", True),  # always fails
        ("Grüße".encode(), "text/plain; charset=punycode", "Grüße", True),  # quadratic time
        ("Grüße".encode(), "text/plain; charset=utf-7", "Grüße", True),  # no browser's
        ("Grüße".encode("latin-1"), "text/plain", "Gr\ufffd\ufffde", True),  # replaced
        ("Grüße".encode("latin-1"), "text/plain", "Grüße", False),
        ("Grüße".encode(), "text/plain; charset=latin-1", "Grüße", False),  # the header rules
    ],
    ids=[
        "latin-1",
        "latin-1-alias",
        "cp1252-quoted",
        "no-charset-utf-8",
        "octet-stream-utf-8",
        "unknown-charset-utf-8",
        "bytes-codec-utf-8",
        "idna-utf-8",
        "undefined-utf-8",
        "punycode-utf-8",
        "utf-7-utf-8",
        "bad-utf-8-replaced",
        "bad-utf-8-no-match",
        "charset-believed",
    ],
)
async def test_a_body_is_decoded_with_its_charset(
    session: aiohttp.ClientSession,
    target: Target,
    data: bytes,
    content_type: str,
    needle: str,
    up: bool,
) -> None:
    target.pages["p"] = (data, content_type)
    s = Site(id=1, url=target.url("/page/p"), name="t", created_at=0, body_contains=needle)
    result = await check_site(session, s, timeout=2)
    assert result.status is (Status.UP if up else Status.DOWN), result.reason


@pytest.mark.parametrize(
    ("field", "at", "up"),
    [
        ("body_contains", BODY_ASSERT_CAP - 6, True),  # the last bytes kept
        ("body_contains", BODY_ASSERT_CAP - 5, False),  # one byte of it beyond the cap
        ("body_contains", BODY_ASSERT_CAP + 100, False),
        ("body_not_contains", BODY_ASSERT_CAP + 100, True),  # never seen
        ("body_not_contains", BODY_ASSERT_CAP - 6, False),
    ],
)
async def test_a_body_is_looked_into_up_to_the_cap(
    session: aiohttp.ClientSession, target: Target, field: str, at: int, up: bool
) -> None:
    data = bytearray(b"." * (2 * BODY_ASSERT_CAP))
    data[at : at + 6] = b"MARKER"
    target.pages["big"] = (bytes(data), "text/plain")
    s = Site(id=1, url=target.url("/page/big"), name="t", created_at=0, **{field: "MARKER"})
    result = await check_site(session, s, timeout=5)
    assert result.status is (Status.UP if up else Status.DOWN), result.reason
