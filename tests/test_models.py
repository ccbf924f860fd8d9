"""The URL rule: one regular expression shared by the validator and the OpenAPI schema."""

from __future__ import annotations

import re

import jsonschema
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from pydantic import ValidationError

from uptimed.fields import URL_PATTERN
from uptimed.models import SiteIn


def accepted(url: str) -> bool:
    try:
        SiteIn.model_validate({"url": url, "name": "x"})
    except ValidationError:
        return False
    return True


@settings(max_examples=500, database=None, suppress_health_check=list(HealthCheck))
@given(st.from_regex(URL_PATTERN, fullmatch=True))
def test_every_string_the_schema_allows_is_accepted(url: str) -> None:
    assert accepted(url), url


def test_the_pattern_is_one_a_json_schema_validator_applies() -> None:
    validator = jsonschema.Draft202012Validator({"type": "string", "pattern": URL_PATTERN})
    assert validator.is_valid("https://example.com/a")
    assert not validator.is_valid("https://example.com/a b")


@pytest.mark.parametrize(
    "url",
    [
        "https://example.com",
        "http://127.0.0.1:8080/health?full=1#top",
        "http://[::1]:8000/",
        "https://user:pa$$@example.com/",
        "https://xn--bcher-kva.example/",
        "https://example.com/päth/ü?q=ö",
        "HTTPS://EXAMPLE.COM.",
    ],
)
def test_urls_that_are_accepted(url: str) -> None:
    assert accepted(url)
    assert re.fullmatch(URL_PATTERN, url)


@pytest.mark.parametrize(
    "url",
    [
        "https://example.com\n",
        " https://example.com",
        "https://exa mple.com",
        "https://bücher.example/",
        "https://example.com:65536/",
        "http://[::1::2]/",
        "http://",
        "ftp://example.com",
        "https://example.com/\x00",
    ],
)
def test_urls_that_are_refused_by_both(url: str) -> None:
    assert not accepted(url)
    assert not re.fullmatch(URL_PATTERN, url)


def test_a_lone_surrogate_is_refused_although_the_pattern_leaves_it_out() -> None:
    # No UTF-8 client can send one; JSON's "\\ud800" escape can, and gets a 400.
    assert not accepted("https://example.com/\ud800")
