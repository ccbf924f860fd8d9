"""OpenAPI 3.1 for the API, built from what each handler declares and from the pydantic models.

Each handler says what it takes and returns with ``@operation``; ``build_spec(app)`` walks
``app.router`` and turns those declarations into the document served at ``/openapi.json``. The
models named there are the ones the handler validates and serialises with, so the document
cannot drift from the code. Adding an endpoint means adding one decorator::

    class HistoryQuery(QueryModel):
        limit: int = Field(1000, ge=1, le=10000, description="rows per page")
        status: Status | None = None

    @routes.get("/sites/{id}/history")
    @operation(
        "A site's checks, oldest first",
        tags=["sites"],
        path={"id": SiteId},
        query=HistoryQuery,
        response=list[HistoryRow],
        headers={"Link": 'the next page, as <url>; rel="next"'},
    )
    async def site_history(request: web.Request) -> web.Response:
        query = parse_query(request, HistoryQuery)
        ...

What the builder adds by itself, so no handler can forget it: 400 when the operation has a
path, query or body parameter; 413 when it has a body; 401 (with ``WWW-Authenticate``) and 429
(with ``Retry-After``) unless it is ``public``. Every error body is ``Detail``. Other statuses
go in ``errors={502: "why"}``. Request bodies and query parameters use the models'
validation-mode JSON Schema, responses the serialization mode (times are ISO strings there).

A route whose handler has no ``@operation`` makes ``build_spec`` raise ``SpecError``, and a
test builds the spec of the real app: an undocumented endpoint fails CI. Routes that are not
part of the API (the docs pages and their assets) declare ``@operation(hidden=True)``.

An answer that is not JSON names its media type: ``response=str, media_type="text/csv"``.

Links say where the ids of a 200 answer go next (OpenAPI ``links``), by ``"METHOD /path"``::

    links={"hooks": Link("GET /webhooks/{id}", "Hooks", parameters={"id": "$response.body#/id"})}

A link to a route that is not documented, or naming a parameter or body the target does not
take, makes ``build_spec`` raise ``SpecError``.

Query parameters: each field of the ``query`` model is one parameter. A list field is written
comma-separated (``?window=24h,7d``: OpenAPI ``style: form, explode: false``), which is what
``validation.parse_query`` reads.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Mapping
from dataclasses import KW_ONLY, dataclass, field
from typing import Any, TypeVar

from aiohttp import hdrs, web
from pydantic import BaseModel, TypeAdapter
from pydantic.json_schema import GenerateJsonSchema, JsonSchemaMode

from uptimed import __version__
from uptimed.api.validation import is_array
from uptimed.models import Detail

SECURITY_SCHEME = "basicAuth"
REF_TEMPLATE = "#/components/schemas/{model}"
_ATTR = "__uptimed_operation__"
_PATH_PARAM = re.compile(r"\{(\w+)(?::[^}]*)?\}")

F = TypeVar("F", bound=Callable[..., Any])

ERROR_DESCRIPTIONS = {
    400: "Invalid input, named in one sentence; or an unknown id (`Site not found`).",
    401: "Missing or wrong credentials.",
    413: "Request body over 1 MiB.",
    429: "Too many requests by this user, or too many failed logins from this address.",
}


class SpecError(Exception):
    """A route cannot be documented: no ``@operation``, or it disagrees with its route."""


@dataclass(frozen=True)
class Link:
    """An OpenAPI link from a 200 answer to ``target`` (``"METHOD /path"``). ``parameters`` maps
    the target's path or query parameters to runtime expressions such as ``$response.body#/id``;
    ``body`` maps fields of the target's body the same way, to be merged into the body a client
    sends (schemathesis reads it so; a tool that takes ``requestBody`` as the whole body sees
    only these fields)."""

    target: str
    description: str
    _: KW_ONLY
    parameters: Mapping[str, str] = field(default_factory=dict)
    body: Mapping[str, str] | None = None


@dataclass(frozen=True)
class Operation:
    """What ``@operation`` stores on a handler; see the module docstring."""

    summary: str
    description: str | None = None
    tags: tuple[str, ...] = ()
    path: Mapping[str, Any] = field(default_factory=dict)
    query: type[BaseModel] | None = None
    body: Any = None
    response: Any = None
    headers: Mapping[str, str] = field(default_factory=dict)
    errors: Mapping[int, str] = field(default_factory=dict)
    links: Mapping[str, Link] = field(default_factory=dict)
    media_type: str = "application/json"
    public: bool = False
    hidden: bool = False


def operation(
    summary: str = "",
    *,
    description: str | None = None,
    tags: Iterable[str] = (),
    path: Mapping[str, Any] | None = None,
    query: type[BaseModel] | None = None,
    body: Any = None,
    response: Any = None,
    headers: Mapping[str, str] | None = None,
    errors: Mapping[int, str] | None = None,
    links: Mapping[str, Link] | None = None,
    media_type: str = "application/json",
    public: bool = False,
    hidden: bool = False,
) -> Callable[[F], F]:
    """Declare a handler's operation: ``path`` maps each ``{name}`` in the route to its type,
    ``query`` and ``body`` are the models the handler validates with, ``response`` the type of
    the 200 body (any type pydantic can describe: ``Site``, ``list[Site]``), ``headers`` the
    200 response headers, ``errors`` extra error statuses and what they mean, ``links`` where
    the 200 answer's ids go next (module doc), ``media_type`` that of the 200 body, ``public``
    that no auth is needed. The description defaults to the handler's docstring.

    The handler is returned unchanged, so the decorator may sit above or below ``@routes.get``.
    """
    if not hidden and (not summary or response is None):
        raise TypeError("@operation needs a summary and a response type (or hidden=True)")

    def mark(handler: F) -> F:
        op = Operation(
            summary=summary,
            description=description or _docstring(handler),
            tags=tuple(tags),
            path=dict(path or {}),
            query=query,
            body=body,
            response=response,
            headers=dict(headers or {}),
            errors=dict(errors or {}),
            links=dict(links or {}),
            media_type=media_type,
            public=public,
            hidden=hidden,
        )
        setattr(handler, _ATTR, op)
        return handler

    return mark


def operation_of(handler: Callable[..., Any]) -> Operation | None:
    return getattr(handler, _ATTR, None)


def _docstring(handler: Callable[..., Any]) -> str | None:
    doc = (handler.__doc__ or "").strip()
    return " ".join(doc.split()) or None


def documented_routes(app: web.Application) -> list[tuple[str, str, Operation]]:
    """``(method, path, operation)`` for every route of the API, in the router's order.

    HEAD routes that aiohttp adds beside each GET are left out; hidden operations too. Raises
    ``SpecError`` for a route whose handler has no ``@operation``.
    """
    found = []
    shapes: dict[str, str] = {}
    for route in app.router.routes():
        if route.method == hdrs.METH_HEAD:
            continue
        path = route.resource.canonical if route.resource else ""
        op = operation_of(route.handler)
        if op is None:
            name = getattr(route.handler, "__qualname__", repr(route.handler))
            raise SpecError(f"{route.method} {path} ({name}) has no @operation")
        if op.hidden:
            continue
        names = set(_PATH_PARAM.findall(path))
        if names != set(op.path):
            raise SpecError(
                f"{route.method} {path}: @operation(path=...) names {sorted(op.path)}, "
                f"the route has {sorted(names)}"
            )
        shape = _PATH_PARAM.sub("{}", path)
        if shapes.setdefault(shape, path) != path:
            raise SpecError(f"{path} and {shapes[shape]} are one path to OpenAPI: use one name")
        found.append((route.method, _PATH_PARAM.sub(r"{\1}", path), op))
    return found


class _Schemas:
    """Collects JSON Schemas of types in one pydantic pass, so shared models become one
    component each (pydantic suffixes ``-Input``/``-Output`` where the two modes differ)."""

    def __init__(self) -> None:
        self._inputs: list[tuple[int, JsonSchemaMode, Any]] = []
        self._resolved: dict[tuple[int, JsonSchemaMode], dict[str, Any]] = {}
        self.components: dict[str, Any] = {}

    def add(self, tp: Any, mode: JsonSchemaMode) -> tuple[int, JsonSchemaMode]:
        """A key for the schema of ``tp``, to look up once ``resolve`` has run."""
        key = len(self._inputs)
        self._inputs.append((key, mode, TypeAdapter(tp).core_schema))
        return key, mode

    def resolve(self) -> None:
        generator = GenerateJsonSchema(ref_template=REF_TEMPLATE)
        resolved, definitions = generator.generate_definitions(self._inputs)
        self._resolved = dict(resolved)
        self.components = dict(sorted(definitions.items()))

    def __getitem__(self, key: tuple[int, JsonSchemaMode]) -> dict[str, Any]:
        return self._resolved[key]

    def inline(self, schema: dict[str, Any]) -> dict[str, Any]:
        """The schema itself where ``schema`` is only a reference to a component."""
        ref = schema.get("$ref", "")
        name = ref.removeprefix(REF_TEMPLATE.format(model=""))
        return self.components.get(name, schema) if ref else schema


def build_spec(app: web.Application) -> dict[str, Any]:
    """The OpenAPI 3.1 document of every documented route of ``app``."""
    routes = documented_routes(app)
    schemas = _Schemas()
    detail = schemas.add(Detail, "serialization")
    keys = []
    for _method, _path, op in routes:
        keys.append(
            {
                "path": {n: schemas.add(tp, "validation") for n, tp in op.path.items()},
                "query": schemas.add(op.query, "validation") if op.query else None,
                "body": schemas.add(op.body, "validation") if op.body is not None else None,
                "response": schemas.add(op.response, "serialization"),
            }
        )
    schemas.resolve()
    targets = {f"{method} {path}": (_operation_id(method, path), op) for method, path, op in routes}

    paths: dict[str, dict[str, Any]] = {}
    for (method, path, op), key in zip(routes, keys, strict=True):
        parameters = [_path_parameter(name, schemas[k]) for name, k in key["path"].items()]
        if key["query"] is not None:
            parameters += _query_parameters(schemas.inline(schemas[key["query"]]))
        item: dict[str, Any] = {
            "operationId": _operation_id(method, path),
            "summary": op.summary,
        }
        if op.description:
            item["description"] = op.description
        if op.tags:
            item["tags"] = list(op.tags)
        if parameters:
            item["parameters"] = parameters
        if key["body"] is not None:
            item["requestBody"] = {"required": True, "content": _json(schemas[key["body"]])}
        content = {op.media_type: {"schema": schemas[key["response"]]}}
        ok: dict[str, Any] = {"description": "OK", "content": content}
        if op.headers:
            ok["headers"] = {
                name: {"description": text, "schema": {"type": "string"}}
                for name, text in op.headers.items()
            }
        if op.links:
            ok["links"] = {
                name: _link(link, targets, f"{method} {path}") for name, link in op.links.items()
            }
        responses: dict[str, Any] = {"200": ok}
        for status, text in sorted(_errors(op).items()):
            responses[str(status)] = _error_response(status, text, schemas[detail])
        item["responses"] = responses
        if op.public:
            item["security"] = []
        paths.setdefault(path, {})[method.lower()] = item

    return {
        "openapi": "3.1.0",
        "info": {
            "title": "uptimed",
            "version": __version__,
            "description": (
                "Self-hosted uptime monitor: sites checked on a schedule, status changes "
                'sent to Discord webhooks. Every error is JSON `{"detail": "..."}`.'
            ),
        },
        "paths": paths,
        "components": {
            "schemas": schemas.components,
            "securitySchemes": {SECURITY_SCHEME: {"type": "http", "scheme": "basic"}},
        },
        "security": [{SECURITY_SCHEME: []}],
    }


def _errors(op: Operation) -> dict[int, str]:
    found: dict[int, str] = {}
    if op.path or op.query is not None or op.body is not None:
        found[400] = ERROR_DESCRIPTIONS[400]
    if op.body is not None:
        found[413] = ERROR_DESCRIPTIONS[413]
    if not op.public:
        found[401] = ERROR_DESCRIPTIONS[401]
        found[429] = ERROR_DESCRIPTIONS[429]
    return found | dict(op.errors)


def _error_response(status: int, text: str, detail: dict[str, Any]) -> dict[str, Any]:
    response: dict[str, Any] = {"description": text, "content": _json(detail)}
    if status == 401:
        response["headers"] = {
            "WWW-Authenticate": {
                "description": '`Basic realm="uptimed"`',
                "required": True,
                "schema": {"type": "string"},
            }
        }
    elif status == 429:
        response["headers"] = {
            "Retry-After": {
                "description": "Seconds to wait before the next request.",
                "required": True,
                "schema": {"type": "integer", "minimum": 1},
            }
        }
    return response


def _link(link: Link, targets: Mapping[str, tuple[str, Operation]], source: str) -> dict[str, Any]:
    """The link as OpenAPI has it; a target, parameter or body the target lacks is an error."""
    where = f"{source} links to {link.target}"
    if link.target not in targets:
        raise SpecError(f"{where}, which is not a documented route")
    operation_id, target = targets[link.target]
    known = set(target.path) | (set(target.query.model_fields) if target.query else set())
    if unknown := sorted(set(link.parameters) - known):
        raise SpecError(f"{where} with parameters it does not take: {unknown}")
    if link.body is not None and target.body is None:
        raise SpecError(f"{where} with a body, and it takes none")
    found: dict[str, Any] = {"operationId": operation_id, "description": link.description}
    if link.parameters:
        found["parameters"] = dict(link.parameters)
    if link.body is not None:
        found["requestBody"] = dict(link.body)
    return found


def _json(schema: dict[str, Any]) -> dict[str, Any]:
    return {"application/json": {"schema": schema}}


def _path_parameter(name: str, schema: dict[str, Any]) -> dict[str, Any]:
    schema = dict(schema)
    param = {"name": name, "in": "path", "required": True}
    if description := schema.pop("description", None):
        param["description"] = description
    return {**param, "schema": schema}


def _query_parameters(model_schema: dict[str, Any]) -> list[dict[str, Any]]:
    required = set(model_schema.get("required", ()))
    params = []
    for name, prop in model_schema.get("properties", {}).items():
        schema = {k: v for k, v in prop.items() if k not in ("title", "description")}
        param: dict[str, Any] = {"name": name, "in": "query", "required": name in required}
        if description := prop.get("description"):
            param["description"] = description
        param["schema"] = schema
        if is_array(schema):
            param |= {"style": "form", "explode": False}
        params.append(param)
    return params


def _operation_id(method: str, path: str) -> str:
    words = re.sub(r"[^A-Za-z0-9]+", "_", path).strip("_")
    return f"{method.lower()}_{words}" if words else method.lower()
