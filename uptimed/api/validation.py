"""Turn request input into models, or into one readable sentence for a 400."""

from __future__ import annotations

from collections.abc import Mapping
from functools import cache
from typing import Any, TypeVar

from aiohttp import web
from pydantic import BaseModel, ValidationError
from pydantic_core import ErrorDetails

from uptimed.db import MAX_SQLITE_INT
from uptimed.models import QueryModel

M = TypeVar("M", bound=BaseModel)
Q = TypeVar("Q", bound=QueryModel)


class BadRequest(Exception):
    """Input the API cannot use; ``str(e)`` is the sentence shown to the user."""


def first_error(exc: ValidationError, *, what: str = "Field") -> str:
    """The first problem as a sentence that names the field (hc's ``format_first_error``)."""
    err: ErrorDetails = exc.errors(include_url=False)[0]
    kind, loc, msg = err["type"], err["loc"], err["msg"]
    if kind == "json_invalid":
        return "Request body is not valid JSON."
    if not loc:
        return "Request body must be a JSON object."
    field = ".".join(str(part) for part in loc)
    if kind == "missing":
        return f"{what} '{field}' is required."
    return f"{what} '{field}': {msg[0].lower()}{msg[1:]}."


async def parse_body(request: web.Request, model: type[M]) -> M:
    body = await request.read()
    try:
        return model.model_validate_json(body)
    except ValidationError as e:
        raise BadRequest(first_error(e)) from None


def path_id(request: web.Request, name: str = "id") -> int:
    """A positive integer path parameter; ids beyond SQLite's range simply do not exist."""
    raw = request.match_info[name]
    if not raw.isascii() or not raw.isdigit():
        raise BadRequest(f"Path parameter '{name}' must be a positive integer.")
    value = int(raw)
    return value if value <= MAX_SQLITE_INT else 0


def parse_query(request: web.Request, model: type[Q]) -> Q:
    """The query string as ``model``: list fields are comma-separated (``?window=24h,7d``), a
    scalar given twice is an error, parameters the model does not name are ignored."""
    lists = array_fields(model)
    data: dict[str, Any] = {}
    for name in model.model_fields:
        values = request.query.getall(name, [])
        if not values:
            continue
        if name in lists:
            # "?window=" is an empty list (OpenAPI form style), which means: the default.
            parts = [part for value in values for part in value.split(",") if part]
            if parts:
                data[name] = parts
        elif len(values) > 1:
            raise BadRequest(f"Query parameter '{name}' is given more than once.")
        else:
            data[name] = values[0]
    try:
        return model.model_validate(data)
    except ValidationError as e:
        raise BadRequest(first_error(e, what="Query parameter")) from None


@cache
def array_fields(model: type[BaseModel]) -> frozenset[str]:
    """Fields whose JSON Schema is an array (optional or not): the comma-separated ones."""
    properties = model.model_json_schema()["properties"]
    return frozenset(name for name, schema in properties.items() if is_array(schema))


def is_array(schema: Mapping[str, Any]) -> bool:
    if schema.get("type") == "array":
        return True
    return any(is_array(s) for s in schema.get("anyOf", ()))
