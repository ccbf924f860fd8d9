"""What makes an answer DOWN: pure functions of the site and its answer, each a reason or None.

They run after the answer came, so a failed assertion is an answer and never retried.
``first_failure`` tries them in a fixed order (status, body_contains, body_not_contains, JSON,
slow) and returns the first reason, so a DOWN names one cause. A TCP answer has no status and
no body: only the response time applies to it.
"""

from __future__ import annotations

import json
from functools import lru_cache
from typing import Any

import jmespath
from jmespath.parser import ParsedResult

from uptimed.checks.answer import Answer
from uptimed.fields import status_spec_range
from uptimed.models import Site

SHOWN_MAX = 100  # characters of a value a reason shows


def first_failure(site: Site, answer: Answer, elapsed_ms: int) -> str | None:
    """Why ``answer`` (which took ``elapsed_ms``) makes ``site`` DOWN; None when it is UP."""
    status = answer.status
    if status is None:  # a TCP connection
        return slow_failure(site, elapsed_ms)
    return (
        status_failure(site, status)
        or contains_failure(site, answer.text)
        or not_contains_failure(site, answer.text)
        or json_failure(site, answer.text)
        or slow_failure(site, elapsed_ms)
    )


def status_failure(site: Site, status: int) -> str | None:
    """``accepted_status_codes`` decides when set; ``expected_status_code`` only otherwise."""
    specs = site.accepted_status_codes
    if specs is None:
        return None if status == site.expected_status_code else f"HTTP {status}"
    for spec in specs:
        low, high = _range(spec)
        if low <= status <= high:
            return None
    return f"HTTP {status} (accepted: {', '.join(str(spec) for spec in specs)})"


def contains_failure(site: Site, text: str | None) -> str | None:
    needle = site.body_contains
    if needle is None or (text is not None and needle in text):
        return None
    return f"body does not contain {_shown(needle)}"


def not_contains_failure(site: Site, text: str | None) -> str | None:
    needle = site.body_not_contains
    if needle is None or text is None or needle not in text:
        return None
    return f"body contains {_shown(needle)}"


def json_failure(site: Site, text: str | None) -> str | None:
    """``json_query``'s result must equal ``json_expected``, or be non-null when that is None."""
    query = site.json_query
    if query is None:
        return None
    try:
        return _json_failure(query, text, site.json_expected)
    except RecursionError:  # parsing, comparing or showing a document nested thousands deep
        return "JSON nested too deeply"


def _json_failure(query: str, text: str | None, expected: Any) -> str | None:
    try:
        document = json.loads(text or "")
    except ValueError:  # JSONDecodeError, and numbers beyond int's digit limit
        return "body is not JSON"
    try:
        found = _compiled(query).search(document)
    except jmespath.exceptions.JMESPathError as e:  # a function given the wrong types
        return f"JSON {query} failed: {str(e).splitlines()[0][:SHOWN_MAX]}"
    if expected is None:
        return None if found is not None else f"JSON {query} is null, expected a value"
    if json_equal(found, expected):
        return None
    return f"JSON {query} is {_shown(found)}, expected {_shown(expected)}"


def slow_failure(site: Site, elapsed_ms: int) -> str | None:
    limit = site.max_response_time_ms
    if limit is None or elapsed_ms <= limit:
        return None
    return f"slow: {elapsed_ms} ms > {limit} ms"


def json_equal(a: Any, b: Any) -> bool:
    """Equality as JSON means it: true is not 1 (Python says it is), 1 is 1.0, and lists and
    objects compare member by member under the same rule."""
    if isinstance(a, bool) or isinstance(b, bool):
        return a is b
    if isinstance(a, int | float) and isinstance(b, int | float):
        return a == b
    if isinstance(a, list) and isinstance(b, list):
        return len(a) == len(b) and all(json_equal(x, y) for x, y in zip(a, b, strict=True))
    if isinstance(a, dict) and isinstance(b, dict):
        return a.keys() == b.keys() and all(json_equal(a[k], b[k]) for k in a)
    if isinstance(a, str) and isinstance(b, str):
        return a == b
    return a is None and b is None


def _shown(value: Any) -> str:
    """``value`` JSON-encoded for a reason, clipped to ``SHOWN_MAX`` characters."""
    text = json.dumps(value, ensure_ascii=False)
    return text if len(text) <= SHOWN_MAX else text[: SHOWN_MAX - 1] + "…"


@lru_cache(maxsize=1024)
def _compiled(query: str) -> ParsedResult:
    return jmespath.compile(query)


@lru_cache(maxsize=1024)
def _range(spec: int | str) -> tuple[int, int]:
    return status_spec_range(spec)
