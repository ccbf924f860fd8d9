"""Turn request input into models, or into one readable sentence for a 400."""

from __future__ import annotations

from typing import NoReturn, TypeVar

from aiohttp import web
from pydantic import BaseModel, ValidationError
from pydantic_core import ErrorDetails

from uptimed.db import MAX_SQLITE_INT

M = TypeVar("M", bound=BaseModel)


class BadRequest(Exception):
    """Input the API cannot use; ``str(e)`` is the sentence shown to the user."""


def first_error(exc: ValidationError) -> str:
    """The first problem as a sentence that names the field (hc's ``format_first_error``)."""
    err: ErrorDetails = exc.errors(include_url=False)[0]
    kind, loc, msg = err["type"], err["loc"], err["msg"]
    if kind == "invalid_url":
        return "Invalid URL"
    if kind == "json_invalid":
        return "Request body is not valid JSON."
    if not loc:
        return "Request body must be a JSON object."
    field = ".".join(str(part) for part in loc)
    if kind == "missing":
        return f"Field '{field}' is required."
    return f"Field '{field}': {msg[0].lower()}{msg[1:]}."


async def parse_body(request: web.Request, model: type[M]) -> M:
    body = await request.read()
    try:
        return model.model_validate_json(body)
    except ValidationError as e:
        raise BadRequest(first_error(e)) from None


def parse_query(request: web.Request, model: type[M], *, multi: tuple[str, ...] = ()) -> M:
    """Query parameters into ``model``; names in ``multi`` may repeat or hold commas."""
    data: dict[str, object] = dict(request.query)
    for name in multi:
        values = [v for raw in request.query.getall(name, []) for v in raw.split(",") if v]
        if values:
            data[name] = values
    try:
        return model.model_validate(data)
    except ValidationError as e:
        err = e.errors(include_url=False)[0]
        name = ".".join(str(part) for part in err["loc"][:1]) or "query"
        msg = err["msg"]
        return _raise(f"Query parameter '{name}': {msg[0].lower()}{msg[1:]}.")


def _raise(detail: str) -> NoReturn:
    raise BadRequest(detail)


def path_id(request: web.Request, name: str = "id") -> int:
    """A positive integer path parameter; ids beyond SQLite's range simply do not exist."""
    raw = request.match_info[name]
    if not raw.isascii() or not raw.isdigit():
        raise BadRequest(f"Path parameter '{name}' must be a positive integer.")
    value = int(raw)
    return value if value <= MAX_SQLITE_INT else 0
