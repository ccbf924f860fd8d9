"""The OpenAPI document: valid 3.1, built from the handlers' declarations, complete."""

from __future__ import annotations

from typing import Any

import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient
from openapi_spec_validator import validate
from pydantic import Field

from uptimed.api.openapi import Link, SpecError, build_spec, documented_routes, operation
from uptimed.api.validation import BadRequest, parse_query
from uptimed.app import create_app
from uptimed.config import Settings
from uptimed.models import Detail, QueryModel, Status


async def spec_of(client: TestClient) -> dict[str, Any]:
    resp = await client.get("/openapi.json", headers={"Authorization": ""})
    assert resp.status == 200
    return await resp.json()


async def test_served_spec_is_valid_openapi_3_1(client: TestClient) -> None:
    spec = await spec_of(client)
    validate(spec)  # openapi-spec-validator: raises on any error
    assert spec["openapi"] == "3.1.0"
    assert spec["components"]["securitySchemes"] == {
        "basicAuth": {"type": "http", "scheme": "basic"}
    }
    assert spec["security"] == [{"basicAuth": []}]


async def test_served_spec_is_built_from_the_app_routes(client: TestClient) -> None:
    # tests/test_fuzz.py fuzzes build_spec(create_app(...)): it must be what is served.
    assert await spec_of(client) == build_spec(client.server.app)


def test_every_route_is_documented_or_declared_hidden(settings: Settings) -> None:
    app = create_app(settings)
    spec = build_spec(app)  # raises SpecError for a handler without @operation
    documented = {(m.upper(), p) for p, item in spec["paths"].items() for m in item}
    assert documented == {
        ("GET", "/healthz"),
        ("POST", "/sites"),
        ("POST", "/sites/bulk"),
        ("GET", "/sites"),
        ("GET", "/sites/{id}"),
        ("DELETE", "/sites/{id}"),
        ("PATCH", "/sites/{id}"),
        ("GET", "/sites/{id}/history"),
        ("GET", "/sites/{id}/history.csv"),
        ("GET", "/sites/{id}/uptime"),
        ("GET", "/sites/{id}/incidents"),
        ("GET", "/incidents"),
        ("POST", "/webhooks"),
        ("GET", "/webhooks"),
        ("GET", "/webhooks/{id}"),
        ("DELETE", "/webhooks/{id}"),
        ("PATCH", "/webhooks/{id}"),
        ("POST", "/webhooks/{id}/test"),
        ("POST", "/config/reload"),
        ("GET", "/metrics"),
        ("GET", "/badge/{site_id}/status.svg"),
        ("GET", "/badge/{site_id}/uptime.svg"),
        ("GET", "/badge/{site_id}/response-time.svg"),
        ("GET", "/status"),
        ("GET", "/status.json"),
    }
    assert {(m, p) for m, p, _ in documented_routes(app)} == documented


async def undocumented(request: web.Request) -> web.Response:
    return web.json_response({})


def test_a_route_without_operation_fails_the_build() -> None:
    app = web.Application()
    app.router.add_get("/new", undocumented)
    with pytest.raises(SpecError, match=r"GET /new \(undocumented\) has no @operation"):
        build_spec(app)


def test_declared_path_parameters_must_match_the_route() -> None:
    app = web.Application()
    handler = operation("x", response=Detail, path={"site_id": int})(_copy(undocumented))
    app.router.add_get("/things/{id}", handler)
    with pytest.raises(SpecError, match="names \\['site_id'\\], the route has \\['id'\\]"):
        build_spec(app)


def test_two_routes_that_openapi_reads_as_one_path_fail_the_build() -> None:
    # OpenAPI counts /things/{id} and /things/{name} as the same path: name it once.
    app = web.Application()
    app.router.add_get("/things/{id}", operation("x", response=Detail, path={"id": int})(paged))
    app.router.add_delete(
        "/things/{name}", operation("y", response=Detail, path={"name": str})(_copy(paged))
    )
    with pytest.raises(SpecError, match=r"/things/\{name\} and /things/\{id\} are one path"):
        build_spec(app)


def _linked_app(link: Link) -> web.Application:
    """POST /things (its 200 links with ``link``) and GET /things/{id}, POST /parts (a body)."""
    app = web.Application()
    app.router.add_post("/things", operation("x", response=Detail, links={"it": link})(paged))
    app.router.add_get(
        "/things/{id}", operation("y", response=Detail, path={"id": int})(_copy(paged))
    )
    app.router.add_post("/parts", operation("z", response=Detail, body=Detail)(_copy(paged)))
    return app


def test_links_name_their_target_by_operation_id() -> None:
    follow = Link("GET /things/{id}", "The new thing", parameters={"id": "$response.body#/id"})
    add = Link("POST /parts", "A part of it", body={"thing": "$response.body#/id"})
    for link, expected in [
        (follow, {"operationId": "get_things_id", "parameters": {"id": "$response.body#/id"}}),
        (add, {"operationId": "post_parts", "requestBody": {"thing": "$response.body#/id"}}),
    ]:
        links = build_spec(_linked_app(link))["paths"]["/things"]["post"]["responses"]["200"]
        assert links["links"] == {"it": {**expected, "description": link.description}}


@pytest.mark.parametrize(
    ("link", "error"),
    [
        (Link("GET /nowhere/{id}", "Gone"), r"GET /nowhere/\{id\}, which is not a documented"),
        (
            Link("GET /things/{id}", "Typo", parameters={"ids": "$response.body#/id"}),
            r"with parameters it does not take: \['ids'\]",
        ),
        (
            Link("GET /things/{id}", "Body", body={"id": "$response.body#/id"}),
            "with a body, and it takes none",
        ),
    ],
)
def test_a_link_the_target_cannot_take_fails_the_build(link: Link, error: str) -> None:
    with pytest.raises(SpecError, match=r"POST /things links to " + ".*" + error):
        build_spec(_linked_app(link))


def _copy(handler: Any) -> Any:
    async def copy(request: web.Request) -> web.Response:
        return await handler(request)

    return copy


def test_every_operation_says_which_errors_it_can_answer(settings: Settings) -> None:
    spec = build_spec(create_app(settings))
    detail = {"application/json": {"schema": {"$ref": "#/components/schemas/Detail"}}}
    for path, item in spec["paths"].items():
        for method, op in item.items():
            responses = op["responses"]
            where = f"{method} {path}"
            if path == "/healthz":
                assert op["security"] == [] and set(responses) == {"200", "503"}, where
                continue
            if path.startswith("/badge/"):  # public: an unknown or private site is 404
                assert op["security"] == [] and set(responses) == {"200", "400", "404"}, where
                continue
            if path in ("/status", "/status.json"):  # public: no login, off while none is public
                assert op["security"] == [] and set(responses) == {"200", "404"}, where
                assert responses["404"]["content"] == detail, where
                continue
            assert {"401", "429"} <= set(responses), where
            assert responses["401"]["headers"]["WWW-Authenticate"]["required"], where
            assert responses["429"]["headers"]["Retry-After"]["required"], where
            if path == "/config/reload":  # no input, but the file it reads can be wrong
                assert {"400", "409"} <= set(responses), where
            else:
                assert ("400" in responses) == bool(op.get("parameters") or op.get("requestBody"))
            assert ("413" in responses) == ("requestBody" in op), where
            for status, response in responses.items():
                if status != "200":
                    assert response["content"] == detail, (where, status)
    assert "502" in spec["paths"]["/webhooks/{id}/test"]["post"]["responses"]


def test_times_are_date_time_strings_in_answers_and_absent_from_requests(
    settings: Settings,
) -> None:
    schemas = build_spec(create_app(settings))["components"]["schemas"]
    date_time = {"type": "string", "format": "date-time"}
    assert schemas["SiteView"]["properties"]["created_at"].items() >= date_time.items()
    assert schemas["HistoryRow"]["properties"]["last_checked"].items() >= date_time.items()
    optional = schemas["Webhook"]["properties"]["last_delivery_at"]["anyOf"]
    assert optional[0].items() >= date_time.items() and optional[1] == {"type": "null"}
    assert "created_at" not in schemas["SiteIn"]["properties"]


def test_request_bodies_and_examples_come_from_the_models(settings: Settings) -> None:
    spec = build_spec(create_app(settings))
    body = spec["paths"]["/sites"]["post"]["requestBody"]
    assert body == {
        "required": True,
        "content": {"application/json": {"schema": {"$ref": "#/components/schemas/SiteIn"}}},
    }
    site_in = spec["components"]["schemas"]["SiteIn"]
    assert site_in["required"] == ["url", "name"]
    assert site_in["properties"]["url"]["examples"] == [
        "https://example.com/health",
        "tcp://mail.example.com:465",
    ]
    assert site_in["properties"]["check_interval_seconds"] | {"title": None} == {
        "default": 300,
        "minimum": 1,
        "maximum": 86400,
        "type": "integer",
        "title": None,
        "description": "Seconds between checks.",
    }
    listing = spec["paths"]["/sites"]["get"]["responses"]["200"]["content"]
    assert listing["application/json"]["schema"] == {
        "type": "array",
        "items": {"$ref": "#/components/schemas/SiteView"},
    }


def test_an_answer_that_is_not_json_names_its_media_type() -> None:
    app = web.Application()
    csv = operation("CSV", response=str, media_type="text/csv", path={"id": int})(paged)
    app.router.add_get("/things/{id}.csv", csv)
    spec = build_spec(app)
    validate(spec)
    ok = spec["paths"]["/things/{id}.csv"]["get"]["responses"]["200"]
    assert ok["content"] == {"text/csv": {"schema": {"type": "string"}}}


class Page(QueryModel):
    limit: int = Field(1000, ge=1, le=10000, description="rows per page")
    status: Status | None = None
    window: list[str] = Field(["24h"], description="comma-separated")


async def paged(request: web.Request) -> web.Response:
    return web.json_response(parse_query(request, Page).model_dump(mode="json"))


def paged_app() -> web.Application:
    app = web.Application()
    handler = operation("Paged", response=Detail, query=Page, path={"id": int})(paged)
    app.router.add_get("/things/{id}", handler)
    return app


def test_query_model_fields_become_parameters() -> None:
    spec = build_spec(paged_app())
    validate(spec)
    params = {p["name"]: p for p in spec["paths"]["/things/{id}"]["get"]["parameters"]}
    assert params["id"] == {
        "name": "id",
        "in": "path",
        "required": True,
        "schema": {"type": "integer"},
    }
    assert params["limit"] == {
        "name": "limit",
        "in": "query",
        "required": False,
        "description": "rows per page",
        "schema": {"default": 1000, "maximum": 10000, "minimum": 1, "type": "integer"},
    }
    assert params["status"]["schema"]["anyOf"][0] == {"$ref": "#/components/schemas/Status"}
    assert (params["window"]["style"], params["window"]["explode"]) == ("form", False)


@pytest.mark.parametrize(
    ("query", "expected"),
    [
        ("", {"limit": 1000, "status": None, "window": ["24h"]}),
        (
            "?limit=5&status=UP&window=24h,7d&other=x",
            {"limit": 5, "status": "UP", "window": ["24h", "7d"]},
        ),
        ("?window=1h&window=2h", {"limit": 1000, "status": None, "window": ["1h", "2h"]}),
    ],
    ids=["defaults", "all", "repeated-list"],
)
async def test_parse_query_reads_what_the_spec_describes(
    aiohttp_client: Any, query: str, expected: dict[str, Any]
) -> None:
    client = await aiohttp_client(paged_app())
    resp = await client.get(f"/things/1{query}")
    assert await resp.json() == expected


@pytest.mark.parametrize(
    ("query", "sentence"),
    [
        ("limit=0", "Query parameter 'limit': input should be greater than or equal to 1."),
        ("limit=x", "Query parameter 'limit': input should be a valid integer"),
        ("status=SIDEWAYS", "Query parameter 'status': input should be 'INITIAL', 'UP' or 'DOWN'."),
        ("limit=1&limit=2", "Query parameter 'limit' is given more than once."),
    ],
)
def test_parse_query_errors_are_one_sentence(query: str, sentence: str) -> None:
    from aiohttp.test_utils import make_mocked_request

    with pytest.raises(BadRequest) as e:
        parse_query(make_mocked_request("GET", f"/things/1?{query}"), Page)
    assert str(e.value).startswith(sentence)
