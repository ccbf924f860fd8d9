"""What a field of a request may hold: validators, and the JSON Schema patterns that publish
the same rules in /openapi.json (URLs, whole numbers, a check's headers, body, status codes
and JMESPath query). Pure: no I/O."""

from __future__ import annotations

import json
import re
from typing import Annotated, Any, Literal

import jmespath
from annotated_types import Ge, Le
from pydantic import AfterValidator, BeforeValidator, Field, PlainValidator, WithJsonSchema
from pydantic_core import PydanticCustomError
from yarl import URL

MAX_URL_LENGTH = 4096
MAX_NAME_LENGTH = 1000

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
_LABEL = "[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?"  # at most 63 characters (DNS)
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

# A TCP check's address: tcp://host:port, the port required (1-65535), nothing after it.
_TCP_PORT = (
    "(?:6553[0-5]|655[0-2][0-9]|65[0-4][0-9]{2}|6[0-4][0-9]{3}|[1-5][0-9]{4}|[1-9][0-9]{0,3})"
)
TCP_URL_PATTERN = rf"^[Tt][Cc][Pp]://{_HOST}:{_TCP_PORT}$"
_TCP_URL = re.compile(TCP_URL_PATTERN)
# A site's URL is either; one pattern, so the OpenAPI schema says both.
SITE_URL_PATTERN = f"{URL_PATTERN}|{TCP_URL_PATTERN}"
SITE_URL_RULE = (
    "Must be an http:// or https:// URL with a host name or IP address, an optional port up to "
    "65535 and no spaces, or tcp://host:port (a port from 1 to 65535)"
)


def is_tcp(url: str) -> bool:
    return url[:6].lower() == "tcp://"


def is_https(url: str) -> bool:
    return url[:8].lower() == "https://"


def tcp_address(url: str) -> tuple[str, int]:
    """The (host, port) of a ``tcp://`` URL the validator accepted (IPv6 without brackets)."""
    host, _, port = url[6:].rpartition(":")
    return host.strip("[]"), int(port)


def _check_site_url(value: str) -> str:
    if is_tcp(value):
        if _TCP_URL.fullmatch(value) is None:
            raise PydanticCustomError("invalid_url", SITE_URL_RULE)
        return value
    try:
        return _check_http_url(value)
    except PydanticCustomError:
        raise PydanticCustomError("invalid_url", SITE_URL_RULE) from None


SiteUrl = Annotated[
    str,
    Field(min_length=1, max_length=MAX_URL_LENGTH, json_schema_extra={"pattern": SITE_URL_PATTERN}),
    AfterValidator(_check_site_url),
]


def whole_number(value: Any) -> Any:
    """JSON has one number type: 60.0 is the integer 60 (as JSON Schema says), 60.5 is not."""
    if isinstance(value, float) and value.is_integer():
        return int(value)
    return value


# An integer in a request body: strict (no "60", no true), but 60.0 counts.
JsonInt = Annotated[int, BeforeValidator(whole_number)]

MAX_WARN_DAYS = 3650
DEFAULT_WARN_DAYS = (14, 7, 3, 1)


def _highest_first(value: list[int]) -> list[int]:
    """Thresholds are a set: kept once each, highest first (the order they are reached)."""
    return sorted(set(value), reverse=True)


WarnDays = Annotated[
    list[Annotated[int, Ge(0), Le(MAX_WARN_DAYS), BeforeValidator(whole_number)]],
    Field(max_length=10),
    AfterValidator(_highest_first),
]


HttpMethod = Literal["GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"]
MAX_HEADERS = 50
MAX_HEADER_BYTES = 8 * 1024  # names and values, in UTF-8, all together
MAX_REQUEST_BODY_BYTES = 64 * 1024
MAX_TEXT_LENGTH = 1000  # body_contains, body_not_contains, json_query
MAX_EXPECTED_BYTES = 8 * 1024  # json_expected, as JSON text
# RFC 9110 token: what a header name may be.
HEADER_NAME_PATTERN = r"^[!#$%&'*+.^_`|~0-9A-Za-z-]+$"
# A field value: no control characters but tab (CR and LF would start another header).
HEADER_VALUE_PATTERN = r"^[^\x00-\x08\x0a-\x1f\x7f]*$"
_HEADER_NAME = re.compile(HEADER_NAME_PATTERN)
_HEADER_VALUE = re.compile(HEADER_VALUE_PATTERN)
# aiohttp writes these from the body it sends; a second, different value would be a lie.
_COMPUTED_HEADERS = frozenset({"content-length", "transfer-encoding"})
# 200, "200", "200-299" or "2xx" (a class); a range must not run backwards.
STATUS_SPEC_PATTERN = r"^(?:[1-5][0-9]{2}(?:-[1-5][0-9]{2})?|[1-5]xx)$"
_STATUS_SPEC = re.compile(STATUS_SPEC_PATTERN)


def _check_headers(value: dict[str, str]) -> dict[str, str]:
    if len(value) > MAX_HEADERS:
        raise PydanticCustomError("headers", f"at most {MAX_HEADERS} headers")
    seen: set[str] = set()
    size = 0
    for name, text in value.items():
        if not _HEADER_NAME.fullmatch(name):
            raise PydanticCustomError(
                "headers", "header name {name} is not an HTTP token", {"name": json.dumps(name)}
            )
        if name.lower() in _COMPUTED_HEADERS:
            raise PydanticCustomError(
                "headers",
                "header {name} is computed from the body and cannot be set",
                {"name": name},
            )
        if name.lower() in seen:
            raise PydanticCustomError(
                "headers", "header {name} is given twice (names ignore case)", {"name": name}
            )
        seen.add(name.lower())
        if not _HEADER_VALUE.fullmatch(text):
            raise PydanticCustomError(
                "headers",
                "the value of header {name} holds a control character (CR, LF, ...)",
                {"name": name},
            )
        size += len(name.encode()) + len(text.encode())
    if size > MAX_HEADER_BYTES:
        raise PydanticCustomError(
            "headers", f"names and values must be at most {MAX_HEADER_BYTES} bytes in all"
        )
    return value


def check_body(value: str | None) -> str | None:
    if value is not None and len(value.encode()) > MAX_REQUEST_BODY_BYTES:
        raise PydanticCustomError(
            "body", f"must be at most {MAX_REQUEST_BODY_BYTES} bytes in UTF-8"
        )
    return value


def status_spec_range(spec: int | str) -> tuple[int, int]:
    """The status codes an entry of ``accepted_status_codes`` admits, as (lowest, highest)."""
    if isinstance(spec, int):
        return spec, spec
    if spec.endswith("xx"):
        low = int(spec[0]) * 100
        return low, low + 99
    low_text, _, high_text = spec.partition("-")
    return int(low_text), int(high_text or low_text)


def _status_spec(value: Any) -> int | str:
    """One entry of ``accepted_status_codes``, as sent (a whole number or a string)."""
    value = whole_number(value)
    if isinstance(value, bool) or not isinstance(value, int | str):
        raise PydanticCustomError(
            "status_spec", 'each entry must be like 200, "200", "200-299" or "2xx"'
        )
    if isinstance(value, int):
        if not 100 <= value <= 599:
            raise PydanticCustomError("status_spec", "a status code is from 100 to 599")
        return value
    if not _STATUS_SPEC.fullmatch(value):
        raise PydanticCustomError(
            "status_spec", 'each entry must be like 200, "200", "200-299" or "2xx"'
        )
    low, high = status_spec_range(value)
    if low > high:
        raise PydanticCustomError("status_spec", 'a range must run upwards, like "200-299"')
    return value


def check_json_query(value: str | None) -> str | None:
    if value is not None:
        try:
            jmespath.compile(value)
        except jmespath.exceptions.JMESPathError as e:
            raise PydanticCustomError(
                "json_query", "not a JMESPath expression: {error}", {"error": str(e)[:200]}
            ) from None
    return value


StatusSpec = Annotated[
    int | str,
    PlainValidator(_status_spec),
    WithJsonSchema(
        {
            "anyOf": [
                {"type": "integer", "minimum": 100, "maximum": 599},
                {"type": "string", "pattern": STATUS_SPEC_PATTERN},
            ]
        }
    ),
]
RequestHeaders = Annotated[
    dict[str, str],
    AfterValidator(_check_headers),
    WithJsonSchema(
        {
            "type": "object",
            "maxProperties": MAX_HEADERS,
            "propertyNames": {"pattern": HEADER_NAME_PATTERN},
            "additionalProperties": {"type": "string", "pattern": HEADER_VALUE_PATTERN},
        }
    ),
]
