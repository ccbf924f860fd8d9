"""Basic auth, the login-failure limit per IP and the request limit per user."""

from __future__ import annotations

import base64
import logging

import pytest
from aiohttp.test_utils import TestClient

from tests.conftest import AUTH, PASSWORD, USER, AppClient, ManualClock
from uptimed.config import Settings


def basic(user: str, password: str) -> dict[str, str]:
    token = base64.b64encode(f"{user}:{password}".encode()).decode()
    return {"Authorization": f"Basic {token}"}


async def test_healthz_is_public(client: TestClient) -> None:
    resp = await client.get("/healthz", headers={"Authorization": ""})
    assert resp.status == 200
    assert await resp.json() == {"status": "ok", "connectivity": "ok"}


@pytest.mark.parametrize(
    "headers",
    [
        {},
        basic(USER, "wrong"),
        basic("mallory", PASSWORD),
        basic(USER, PASSWORD + "x"),
        {"Authorization": "Basic !!!notbase64"},
        {"Authorization": "Basic " + base64.b64encode(b"no-colon").decode()},
        {"Authorization": "Bearer abc"},
        {"Authorization": "Basic"},
    ],
    ids=[
        "none",
        "wrong-password",
        "wrong-user",
        "longer",
        "garbage",
        "no-colon",
        "bearer",
        "empty",
    ],
)
@pytest.mark.parametrize("path", ["/sites", "/webhooks", "/sites/1/history", "/nope"])
async def test_bad_credentials_are_401(
    start_app: AppClient, settings: Settings, headers: dict[str, str], path: str
) -> None:
    client = await start_app(settings)
    client.session.headers.pop("Authorization")
    resp = await client.get(path, headers=headers)
    assert resp.status == 401
    assert resp.headers["WWW-Authenticate"] == 'Basic realm="uptimed"'
    assert "credentials" in (await resp.json())["detail"]


async def test_failed_logins_are_limited_per_ip(start_app: AppClient, settings: Settings) -> None:
    clock = ManualClock()
    settings = settings.model_copy(update={"auth_failure_limit": 3})
    client = await start_app(settings, clock.clock())
    for _ in range(3):
        assert (await client.get("/sites", headers=basic(USER, "guess"))).status == 401
    resp = await client.get("/sites", headers=basic(USER, "guess"))
    assert resp.status == 429
    assert int(resp.headers["Retry-After"]) == 60
    assert "failed logins" in (await resp.json())["detail"]
    # Even the right password is refused while the address is blocked: no more guesses.
    assert (await client.get("/sites")).status == 429
    clock.advance(59)
    assert (await client.get("/sites")).status == 429
    clock.advance(1.5)
    assert (await client.get("/sites")).status == 200


async def test_missing_credentials_do_not_count_as_failures(
    start_app: AppClient, settings: Settings
) -> None:
    settings = settings.model_copy(update={"auth_failure_limit": 2})
    client = await start_app(settings, ManualClock().clock())
    for _ in range(5):
        assert (await client.get("/sites", headers={"Authorization": ""})).status == 401
    assert (await client.get("/sites")).status == 200


async def test_requests_are_limited_per_user_with_retry_after(
    start_app: AppClient, settings: Settings
) -> None:
    clock = ManualClock()
    settings = settings.model_copy(update={"rate_limit": 5, "rate_window": 10})
    client = await start_app(settings, clock.clock())
    for i in range(5):
        assert (await client.get("/sites")).status == 200, i
        clock.advance(1)
    resp = await client.get("/sites")
    assert resp.status == 429
    assert resp.headers["Retry-After"] == "5"
    assert "Rate limit exceeded" in (await resp.json())["detail"]
    assert (await client.get("/healthz")).status == 200  # not counted, not limited
    clock.advance(5)
    assert (await client.get("/sites")).status == 200  # the oldest request left the window
    assert (await client.get("/sites")).status == 429


async def test_generated_password_is_logged_once_and_works(
    start_app: AppClient, settings: Settings, caplog: pytest.LogCaptureFixture
) -> None:
    settings = settings.model_copy(update={"valid_username": None, "valid_password": None})
    with caplog.at_level(logging.WARNING, logger="uptimed.app"):
        client = await start_app(settings)
    lines = [r.getMessage() for r in caplog.records if "generated a password" in r.getMessage()]
    assert len(lines) == 1
    password = lines[0].rsplit("password=", 1)[1]
    assert "user=admin" in lines[0]
    assert (await client.get("/sites")).status == 401  # the fixture's alice is not admin
    assert (await client.get("/sites", headers=basic("admin", password))).status == 200
    assert AUTH["Authorization"] not in lines[0]
