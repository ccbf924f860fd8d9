"""Property-based fuzzing of every API operation with schemathesis, against the real app.

The app runs on 127.0.0.1 in a thread of its own (schemathesis sends its requests with the
blocking ``requests`` library). Three runs: every operation alone with valid and invalid
input; workflows of valid calls that feed ids from one answer into the next; and a walk along
every link the spec declares, from a new site. Every case is authenticated; schemathesis
also sends cases without credentials and with wrong ones, and methods the API does not have.
Checked for every response: no 5xx at all, status code, content type, headers and body as the
spec says, every 4xx a JSON ``{"detail": "<text>"}``, and valid input accepted (schemathesis's
default checks, adapted where noted below).

Loopback only. A site's URL is checked at once and a webhook's URL gets POSTed to, so a fuzzed
``https://10.1.2.3/`` would send real traffic. Before a case is sent, ``keep_on_loopback``
validates its body with the same pydantic model the handler uses: a body the API would accept
has every http(s) URL in it replaced by the URL of a loopback target served by this test; a
body the API rejects is sent as generated (it is answered 400 and stores nothing). Every site
and webhook the API confirms is asserted to point at 127.0.0.1, so a hole in this would fail
the test rather than reach the network.

Deterministic: hypothesis derandomized, no example database, no schemathesis cache, so CI
replays the same cases. The per-user rate limit and the login-failure limit are raised out of
the way (they are tested in test_api_auth.py); otherwise most cases would be answered 429.
"""

from __future__ import annotations

import asyncio
import copy
import json
import re
import threading
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import pytest
import schemathesis
from aiohttp import web
from hypothesis import HealthCheck, settings
from pydantic import TypeAdapter, ValidationError
from schemathesis.specs.openapi.checks import (
    negative_data_rejection,
    positive_data_acceptance,
    use_after_free,
)
from yarl import URL

from tests.conftest import AUTH, PASSWORD, USER
from uptimed.api.openapi import build_spec, documented_routes
from uptimed.app import create_app
from uptimed.config import Settings

MAX_EXAMPLES = 300
WORKFLOWS = 60
LOOPBACK = "127.0.0.1"


@dataclass
class FuzzedApi:
    """The app and a loopback target (a website that is UP, and a Discord that answers 204)."""

    base: str = ""
    target: str = ""
    bodies: dict[tuple[str, str], Any] = field(default_factory=dict)  # the body's type
    hits: list[str] = field(default_factory=list)
    succeeded: set[tuple[str, str]] = field(default_factory=set)  # operations answered 200


def _target_app(api: FuzzedApi) -> web.Application:
    async def answer(request: web.Request) -> web.Response:
        api.hits.append(f"{request.method} {request.path}")
        if request.method == "POST":
            return web.Response(status=204)
        return web.Response(text="up")

    app = web.Application()
    app.router.add_route("*", "/{tail:.*}", answer)
    return app


FUZZ_SETTINGS = Settings(
    database_url="sqlite:///./set-per-run.db",
    valid_username=USER,
    valid_password=PASSWORD,
    rate_limit=1_000_000,
    auth_failure_limit=1_000_000,
    default_timeout_seconds=2,
    check_retries=0,
    startup_spread_seconds=1,
    shutdown_grace_seconds=1,
    discord_timeout_seconds=2,
    _env_file=None,
)


@pytest.fixture(scope="module")
def fuzzed_api(tmp_path_factory: pytest.TempPathFactory) -> Iterator[FuzzedApi]:
    db = tmp_path_factory.mktemp("fuzz") / "uptimed.db"
    config = db.parent / "uptimed.toml"  # a file to reload: POST /config/reload answers 200
    config.write_text("# no declared sites\n")
    settings_ = FUZZ_SETTINGS.model_copy(update={"database_url": f"sqlite:///{db}"})
    api = FuzzedApi()
    ready = threading.Event()
    loop = asyncio.new_event_loop()
    stop = asyncio.Event()

    async def serve() -> None:
        target = web.AppRunner(_target_app(api))
        await target.setup()
        target_site = web.TCPSite(target, LOOPBACK, 0)
        await target_site.start()
        app = create_app(settings_, config_path=config)
        api.bodies = {(m, p): op.body for m, p, op in documented_routes(app) if op.body}
        runner = web.AppRunner(app)
        await runner.setup()
        site = web.TCPSite(runner, LOOPBACK, 0)
        await site.start()
        api.base = f"http://{LOOPBACK}:{runner.addresses[0][1]}"
        api.target = f"http://{LOOPBACK}:{target.addresses[0][1]}/fuzzed"
        ready.set()
        await stop.wait()
        await runner.cleanup()
        await target.cleanup()

    thread = threading.Thread(target=loop.run_until_complete, args=(serve(),), daemon=True)
    thread.start()
    assert ready.wait(15), "the app did not start"
    yield api
    loop.call_soon_threadsafe(stop.set)
    thread.join(15)
    loop.close()


# The spec of an app built like the one under test; test_openapi.py checks that the app serves
# exactly this. (Built here, not fetched: schemathesis's lazy fixture loader fails on pytest 9.)
SPEC = build_spec(create_app(FUZZ_SETTINGS))


def _schema(mode: str) -> schemathesis.BaseSchema:
    return schemathesis.openapi.from_dict(
        copy.deepcopy(SPEC),  # schemathesis adds the links it infers to the dict it is given
        config=schemathesis.Config.from_dict(
            {
                "auth": {"basic": {"username": USER, "password": PASSWORD}},
                "cache": {"enabled": False},
                "generation": {"mode": mode, "deterministic": True},
            }
        ),
    )


schema = _schema("all")  # every operation alone: valid and invalid input
workflows = _schema("positive")  # chains of valid calls go deep: invalid input ends a chain


def keep_on_loopback(case: schemathesis.Case, api: FuzzedApi) -> None:
    """Point every URL of a body the API would accept at the loopback target (module doc),
    those of a bulk body's sites and webhook lists too."""
    body_type = api.bodies.get((case.method.upper(), case.path))
    if body_type is None or not isinstance(case.body, (dict, list)):
        return
    adapter = TypeAdapter(body_type)
    try:
        adapter.validate_python(case.body)
    except ValidationError:
        return
    case.body = _on_loopback(case.body, api.target)
    adapter.validate_python(case.body)  # still accepted: the case keeps testing the happy path


def _on_loopback(value: Any, target: str) -> Any:
    """``value`` with each http(s):// and tcp:// string, at any depth but inside headers,
    pointed at the loopback target."""
    if isinstance(value, list):
        return [_on_loopback(item, target) for item in value]
    if isinstance(value, dict):
        return {k: v if k == "headers" else _on_loopback(v, target) for k, v in value.items()}
    if isinstance(value, str) and value.lower().startswith(("http://", "https://")):
        return target
    if isinstance(value, str) and value.lower().startswith("tcp://"):
        return f"tcp://{LOOPBACK}:{URL(target).port}"
    return value


def stored_urls_are_loopback(body: Any) -> None:
    for item in body if isinstance(body, list) else [body]:
        for key in ("url", "discord_webhook_url"):
            if isinstance(item, dict) and key in item:
                assert URL(item[key]).host == LOOPBACK, item


NOT_FOUND = frozenset({"Site not found", "Webhook not found"})
# Rules of a site that JSON Schema cannot state (a query language's grammar, sizes in bytes,
# names that differ only in case, a range's direction, one field needing another, a PATCH
# judged with the stored site): schema-valid input may break them, and is then refused.
SCHEMA_CANNOT_SAY = (
    "Field 'json_query': not a JMESPath expression",
    "Field 'json_expected': ",  # needs json_query; 1e400 is infinite; its size as JSON
    "Field 'headers': an Authorization header and a user:password@",
    "Field 'body': must be at most",
    "Field 'headers': names and values must be at most",
    "Field 'headers': header ",  # given twice; Content-Length/Transfer-Encoding
    "a range must run upwards",
    "a HEAD answer has no body",
    "must be at most check_interval_seconds",  # retry_interval_seconds
    "applies to http(s):// sites only",  # an HTTP field on a tcp:// site
    "applies to tcp:// sites only",  # tls on an http(s) site
    # RFC 3339 has leap seconds and the year 0, which no date type of Python has
    "Field 'alerts_muted_until': must be an ISO 8601 time",
)


@schemathesis.check
def valid_input_is_accepted(ctx: Any, response: schemathesis.Response, case: Any) -> bool:
    """schemathesis's ``positive_data_acceptance``, except that it wants 404 for an id that
    does not exist, where this API answers 400 "Site not found" (documented, and kept for the
    clients that already rely on it), and the ``SCHEMA_CANNOT_SAY`` rules. Any other 400 to
    schema-valid input is a failure."""
    positive = case.meta is not None and case.meta.generation.mode.is_positive
    if positive and response.status_code == 400:
        detail = response.json().get("detail")
        # POST /sites/bulk names a site's field by its index: the same rules apply
        detail = re.sub(r"^Field 'sites\[\d+\]\.", "Field '", detail)
        unsayable = any(rule in detail for rule in SCHEMA_CANNOT_SAY)
        assert detail in NOT_FOUND or unsayable, f"schema-valid input refused: {detail!r}"
    return True


@schemathesis.check
def errors_are_json_detail(ctx: Any, response: schemathesis.Response, case: Any) -> bool:
    """Every 4xx is JSON with a string ``detail``."""
    if 400 <= response.status_code < 500:
        body = response.json()
        assert isinstance(body, dict), f"{response.status_code} body is not an object: {body!r}"
        assert isinstance(body.get("detail"), str), f"{response.status_code} has no detail: {body}"
    return True


HYPOTHESIS = settings(
    max_examples=MAX_EXAMPLES,
    derandomize=True,
    database=None,
    deadline=None,
    suppress_health_check=list(HealthCheck),
)


def _blank(value: Any) -> bool:
    """A query value with nothing between its commas (``?window=``, ``?window=,,``)."""
    if isinstance(value, list):
        return all(_blank(item) for item in value)
    return isinstance(value, str) and not value.strip(",")


def validate(
    api: FuzzedApi, case: schemathesis.Case, response: schemathesis.Response, **kwargs: Any
) -> None:
    excluded = [positive_data_acceptance]
    if any(_blank(value) for value in (case.query or {}).values()):
        # "?window=" is an empty list, so the default (OpenAPI form style: parse_query), and
        # also how [""] is written: schemathesis sends it as invalid, finds a site, gets 200.
        excluded.append(negative_data_rejection)
    if (case.method.upper(), case.path) == ("GET", "/webhooks/{id}"):
        # Here {id} is a site id (the documented API), where DELETE /webhooks/{id} takes a
        # webhook id: "DELETE /webhooks/1, then GET /webhooks/1 answers 200" is two resources.
        excluded.append(use_after_free)
    case.validate_response(
        response,
        excluded_checks=excluded,
        additional_checks=[valid_input_is_accepted, errors_are_json_detail],
        **kwargs,
    )
    if response.status_code == 200:
        ctype = next((v[0] for k, v in response.headers.items() if k.lower() == "content-type"), "")
        if ctype.startswith("application/json"):
            stored_urls_are_loopback(response.json())
        api.succeeded.add((case.method.upper(), case.path))


@schema.parametrize()
@HYPOTHESIS
def test_no_input_breaks_the_api(case: schemathesis.Case, fuzzed_api: FuzzedApi) -> None:
    keep_on_loopback(case, fuzzed_api)
    validate(fuzzed_api, case, case.call(base_url=fuzzed_api.base))


def test_no_sequence_of_calls_breaks_the_api(fuzzed_api: FuzzedApi) -> None:
    """Workflows: ids from one answer feed the next call (add a site, read its history, add a
    webhook to it, test the webhook, delete both), along the links the spec declares and
    those schemathesis infers."""

    class Workflow(workflows.as_state_machine()):  # type: ignore[misc]
        def before_call(self, case: schemathesis.Case) -> None:
            keep_on_loopback(case, fuzzed_api)

        def get_call_kwargs(self, case: schemathesis.Case) -> dict[str, Any]:
            return {"base_url": fuzzed_api.base}

        def validate_response(
            self, response: schemathesis.Response, case: schemathesis.Case, **kwargs: Any
        ) -> None:
            kwargs.pop("additional_checks", None)
            validate(fuzzed_api, case, response, recorder=getattr(self, "recorder", None))

        def setup(self) -> None:
            # Each scenario starts from an empty store: hypothesis replays scenarios and
            # requires that the same calls get answers of the same shape. A webhook of every
            # site outlives the sites: it goes by itself.
            for site in _call(fuzzed_api, "GET", "/sites"):
                _call(fuzzed_api, "DELETE", f"/sites/{site['id']}")
            for webhook in _call(fuzzed_api, "GET", "/webhooks"):
                _call(fuzzed_api, "DELETE", f"/webhooks/{webhook['id']}")

    Workflow.run(settings=settings(HYPOTHESIS, max_examples=WORKFLOWS, stateful_step_count=30))


def test_every_documented_link_leads_to_an_answer(fuzzed_api: FuzzedApi) -> None:
    """The spec's links are true: from a new site, follow every link the spec declares with
    the values it names, and every answer is a 200 that passes the checks above. This reaches
    each operation an id leads to on purpose; the generated cases above reach one only when a
    draw happens to hit an id that exists at that moment."""
    declared = {
        (f"{m.upper()} {p}", name)
        for p, item in SPEC["paths"].items()
        for m, op in item.items()
        for name in op["responses"]["200"].get("links", {})
    }
    pending = [schema["/sites"]["POST"].Case(headers=AUTH, body=_example_body("/sites", "post"))]
    followed: set[tuple[str, str]] = set()  # (source operation, link name): each once
    while pending:
        case = pending.pop(0)
        keep_on_loopback(case, fuzzed_api)
        response = case.call(base_url=fuzzed_api.base)
        validate(fuzzed_api, case, response)
        assert response.status_code == 200, (case.method, case.path, response.text)
        source = f"{case.method.upper()} {case.path}"
        links = SPEC["paths"][case.path][case.method.lower()]["responses"]["200"].get("links", {})
        answer = response.json() if links else None  # a badge is SVG, and links nowhere
        for name, link in links.items():
            if (source, name) in followed:
                continue  # a cycle of links is walked once
            followed.add((source, name))
            method, path = _operation(link["operationId"])
            parameters = {k: _pointer(answer, v) for k, v in link.get("parameters", {}).items()}
            extra: dict[str, Any] = {}
            if (body := link.get("requestBody")) is not None:
                extra["body"] = _example_body(path, method) | {
                    k: _pointer(answer, v) for k, v in body.items()
                }
            pending.append(
                schema[path][method.upper()].Case(
                    headers=AUTH, path_parameters=parameters or None, **extra
                )
            )
    assert followed == declared, "a declared link cannot be reached from a new site"


def _operation(operation_id: str) -> tuple[str, str]:
    return next(
        (m, p)
        for p, item in SPEC["paths"].items()
        for m, op in item.items()
        if op["operationId"] == operation_id
    )


def _pointer(answer: Any, expression: str) -> Any:
    """The value of a ``$response.body#/a/b`` runtime expression in ``answer``."""
    prefix = "$response.body#/"
    assert expression.startswith(prefix), expression
    for key in expression.removeprefix(prefix).split("/"):
        answer = answer[key]
    return answer


def _example_body(path: str, method: str) -> dict[str, Any]:
    """A body of the first example of every property that has one (URLs point at the
    loopback target once keep_on_loopback has run)."""
    ref = SPEC["paths"][path][method]["requestBody"]["content"]["application/json"]["schema"]
    model = SPEC["components"]["schemas"][ref["$ref"].rsplit("/", 1)[-1]]
    return {k: v["examples"][0] for k, v in model["properties"].items() if v.get("examples")}


def test_the_fuzzing_reached_every_operation_and_stayed_on_loopback(
    fuzzed_api: FuzzedApi,
) -> None:
    """Checks what the tests above did (run the whole module): every operation answered 200
    at least once, so no happy path went untested, and what they stored points only at the
    loopback target, which their sites' checks reached."""
    operations = {(m.upper(), p) for p, item in SPEC["paths"].items() for m in item}
    assert operations - fuzzed_api.succeeded == set()
    for path in ("/sites", "/webhooks"):
        stored_urls_are_loopback(_call(fuzzed_api, "GET", path))
    assert any(hit.startswith("GET /fuzzed") for hit in fuzzed_api.hits)


def _call(api: FuzzedApi, method: str, path: str) -> Any:
    request = urllib.request.Request(api.base + path, method=method, headers=AUTH)
    with urllib.request.urlopen(request, timeout=10) as response:
        return json.load(response)
