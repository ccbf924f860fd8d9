"""/sites end to end through the real app: shapes, every validation error, deletion."""

from __future__ import annotations

import json
import re

import pytest
from aiohttp.test_utils import TestClient

from tests.conftest import Target, eventually, wait_out

ISO_MS = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$")


async def test_create_site_returns_documented_fields(client: TestClient, target: Target) -> None:
    resp = await client.post("/sites", json={"url": target.url(), "name": "Example"})
    assert resp.status == 200
    body = await resp.json()
    assert body["url"] == target.url()
    assert body["name"] == "Example"
    assert body["check_interval_seconds"] == 300
    assert body["expected_status_code"] == 200
    assert isinstance(body["id"], int)
    assert ISO_MS.match(body["created_at"])

    assert (await (await client.get(f"/sites/{body['id']}")).json()) == body
    assert (await (await client.get("/sites")).json()) == [body]


async def test_new_site_is_checked_within_two_seconds(client: TestClient, target: Target) -> None:
    resp = await client.post("/sites", json={"url": target.url(), "name": "Fast"})
    site = await resp.json()

    async def checked() -> list[dict]:
        rows = await (await client.get(f"/sites/{site['id']}/history")).json()
        return rows if len(rows) >= 2 else []

    rows = await eventually(checked, timeout=2.0)
    initial, first = rows[0], rows[1]
    assert initial["status"] == "INITIAL"
    assert initial["response_time_ms"] is None
    assert first["status"] == "UP"
    assert isinstance(first["response_time_ms"], int)
    assert ISO_MS.match(first["last_checked"]) and ISO_MS.match(first["last_status_change"])
    assert first["last_status_change"] == first["last_checked"]


URL_ERROR = (
    "Field 'url': must be an http:// or https:// URL with a host name or IP address, an optional"
    " port up to 65535 and no spaces, or tcp://host:port (a port from 1 to 65535)."
)
BAD_BODIES = [
    ({"url": "ftp://example.com", "name": "x"}, URL_ERROR),
    ({"url": "http://", "name": "x"}, URL_ERROR),
    ({"url": "example.com", "name": "x"}, URL_ERROR),
    ({"url": "http://exa mple.com", "name": "x"}, URL_ERROR),
    ({"url": "http://example.com:99999/", "name": "x"}, URL_ERROR),
    ({"name": "x"}, "Field 'url' is required."),
    ({"url": "http://example.com"}, "Field 'name' is required."),
    ({"url": "http://example.com", "name": ""}, "Field 'name'"),
    (
        {"url": "http://example.com", "name": "x", "check_interval_seconds": 0},
        "check_interval_seconds",
    ),
    (
        {"url": "http://example.com", "name": "x", "check_interval_seconds": 86401},
        "check_interval_seconds",
    ),
    (
        {"url": "http://example.com", "name": "x", "check_interval_seconds": "60"},
        "check_interval_seconds",
    ),
    (
        {"url": "http://example.com", "name": "x", "check_interval_seconds": 1.5},
        "check_interval_seconds",
    ),
    (
        {"url": "http://example.com", "name": "x", "check_interval_seconds": True},
        "check_interval_seconds",
    ),
    (
        {"url": "http://example.com", "name": "x", "expected_status_code": 99},
        "expected_status_code",
    ),
    (
        {"url": "http://example.com", "name": "x", "expected_status_code": 600},
        "expected_status_code",
    ),
    ({"url": 12, "name": "x"}, "Field 'url'"),
    ({"url": "http://example.com", "name": ["x"]}, "Field 'name'"),
    ([{"url": "http://example.com", "name": "x"}], "must be a JSON object"),
    ("just a string", "must be a JSON object"),
    (42, "must be a JSON object"),
]


@pytest.mark.parametrize(
    ("body", "detail"), BAD_BODIES, ids=[str(i) for i in range(len(BAD_BODIES))]
)
async def test_bad_site_bodies_are_400_with_a_sentence(
    client: TestClient, body: object, detail: str
) -> None:
    resp = await client.post("/sites", json=body)
    assert resp.status == 400
    got = (await resp.json())["detail"]
    assert detail in got
    assert (await (await client.get("/sites")).json()) == []


@pytest.mark.parametrize(
    "raw",
    [b"", b"{", b"{'url': 1}", b"\xff\xfe", b"nul"],
    ids=["empty", "open", "quotes", "binary", "nul"],
)
async def test_malformed_json_is_400(client: TestClient, raw: bytes) -> None:
    resp = await client.post("/sites", data=raw, headers={"Content-Type": "application/json"})
    assert resp.status == 400
    assert (await resp.json())["detail"] == "Request body is not valid JSON."


async def test_body_over_one_mebibyte_is_413(client: TestClient) -> None:
    body = json.dumps({"url": "http://example.com", "name": "x" * (1024 * 1024)})
    resp = await client.post("/sites", data=body, headers={"Content-Type": "application/json"})
    assert resp.status == 413
    assert "1 MiB" in (await resp.json())["detail"]


@pytest.mark.parametrize(
    "path", ["/sites/abc", "/sites/1.5", "/sites/-1", "/sites/%20", "/sites/abc/history"]
)
async def test_non_integer_id_is_400(client: TestClient, path: str) -> None:
    resp = await client.get(path)
    assert resp.status == 400
    assert "must be a positive integer" in (await resp.json())["detail"]


@pytest.mark.parametrize("site_id", ["0", "999", "99999999999999999999999"])
async def test_unknown_site_is_400_site_not_found(client: TestClient, site_id: str) -> None:
    for method, path in [
        ("GET", f"/sites/{site_id}"),
        ("DELETE", f"/sites/{site_id}"),
        ("GET", f"/sites/{site_id}/history"),
        ("GET", f"/sites/{site_id}/history.csv"),
    ]:
        resp = await client.request(method, path)
        assert resp.status == 400, (method, path)
        assert await resp.json() == {"detail": "Site not found"}


async def test_unknown_route_and_method_are_json(client: TestClient) -> None:
    resp = await client.get("/nope")
    assert resp.status == 404
    assert "detail" in await resp.json()
    resp = await client.put("/sites")
    assert resp.status == 405
    assert "detail" in await resp.json()


async def test_extra_fields_are_ignored(client: TestClient, target: Target) -> None:
    resp = await client.post("/sites", json={"url": target.url(), "name": "x", "colour": "blue"})
    assert resp.status == 200
    assert "colour" not in await resp.json()


async def test_delete_site_stops_checks_and_removes_history_and_webhooks(
    client: TestClient, target: Target
) -> None:
    site = await (
        await client.post(
            "/sites", json={"url": target.url("/del"), "name": "x", "check_interval_seconds": 1}
        )
    ).json()
    await client.post(
        "/webhooks", json={"site_id": site["id"], "discord_webhook_url": "http://127.0.0.1:9/hook"}
    )

    await target.wait_hits("/del", 2)
    resp = await client.delete(f"/sites/{site['id']}")
    assert resp.status == 200
    assert await resp.json() == {"detail": "Site deleted successfully"}

    hits_at_delete = len(target.hit_times("/del"))
    assert (await client.get(f"/sites/{site['id']}")).status == 400
    assert (await client.get(f"/sites/{site['id']}/history")).status == 400
    assert await (await client.get("/webhooks")).json() == []
    # Two more intervals pass: no further check may reach the target (one may have been in flight).
    await wait_out(2.2)
    assert len(target.hit_times("/del")) <= hits_at_delete + 1


async def test_a_whole_number_written_as_a_float_is_an_integer(
    client: TestClient, target: Target
) -> None:
    # JSON Schema (and so every client generated from /openapi.json) counts 60.0 as an integer.
    body = {"url": target.url(), "name": "x", "check_interval_seconds": 60.0}
    resp = await client.post("/sites", json=body)
    assert resp.status == 200
    assert (await resp.json())["check_interval_seconds"] == 60
