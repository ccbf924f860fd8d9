"""A fake Discord webhook server for tests: it records, validates and answers as scripted.

It holds every request to the contract in ``tests/contract/`` (the JSON schema plus the rules a
schema cannot express), so a test that passes here would not get a 400 from Discord. An
invalid request is recorded with its violations and answered 400 the way Discord answers;
it does not use up the script.

    fake = await FakeDiscord().start(aiohttp_server)   # or: async with FakeDiscord() as fake
    fake.script(fake.url(), RateLimited(0.5), Ok())    # then Ok for ever (fake.default)
    ...
    await fake.wait_for(2)
    assert fake.violations() == []

The schema is read from ``$UPTIMED_DISCORD_SCHEMA`` if set, else from the repository's own copy,
``tests/contract/execute-webhook.schema.json`` (its README says where it comes from).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import math
import os
import re
import time
import unicodedata
from collections import defaultdict, deque
from collections.abc import Awaitable, Callable, Iterable, Mapping
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path
from typing import Any, Literal

import pytest_asyncio
from aiohttp import web
from jsonschema import Draft202012Validator, FormatChecker
from multidict import CIMultiDict
from pytest_aiohttp import AiohttpServer
from yarl import URL

SCHEMA_ENV = "UPTIMED_DISCORD_SCHEMA"
DEFAULT_SCHEMA = Path(__file__).resolve().parent / "contract" / "execute-webhook.schema.json"
LIMIT, WINDOW = 5, 2.0  # per webhook, as a Discord developer described it (README, #367)
EMBED_TOTAL_MAX = 6000
ALLOWED_FLAGS = 4 | 4096  # SUPPRESS_EMBEDS, SUPPRESS_NOTIFICATIONS
EMPTY_MESSAGE = "body: empty message, needs non-blank content or an embed"

_SNOWFLAKE = re.compile(r"0|[1-9][0-9]*")
_USER_AGENT = re.compile(r"DiscordBot \([^,()]+, [^()]+\)")
_BOOLEANS = {"True", "true", "1", "False", "false", "0"}
_INVISIBLE = frozenset({"Cc", "Cf", "Zs", "Zl", "Zp", "Mn", "Me"})
_PCT = r"%[0-9A-Fa-f]{2}"
_URI = re.compile(  # RFC 3986 "URI", used when no rfc3987/rfc3986-validator is installed
    rf"""[A-Za-z][A-Za-z0-9+.\-]*:
    (?://(?:(?:[\w\-.~!$&'()*+,;=:]|{_PCT})*@)?
        (?:\[[0-9A-Fa-f:.vV]+\]|(?:[\w\-.~!$&'()*+,;=]|{_PCT})*)(?::[0-9]*)?)?
    (?:[\w\-.~!$&'()*+,;=:@/]|{_PCT})*
    (?:\?(?:[\w\-.~!$&'()*+,;=:@/?]|{_PCT})*)?
    (?:\#(?:[\w\-.~!$&'()*+,;=:@/?]|{_PCT})*)?""",
    re.VERBOSE | re.ASCII,
)


# --- behaviours: what the fake answers to one request --------------------------------------


@dataclass(frozen=True)
class Ok:
    """204 (200 and a message object with ``?wait=true``) plus X-RateLimit-* headers."""


@dataclass(frozen=True)
class RateLimited:
    """429. ``unit="ms"`` answers like API versions before v8 (body and header in ms)."""

    retry_after: float = 0.5  # seconds, whatever the unit on the wire
    global_: bool = False
    unit: Literal["s", "ms"] = "s"


@dataclass(frozen=True)
class ServerError:
    status: int = 500
    retry_after: float | None = None  # seconds, sent as a Retry-After header


@dataclass(frozen=True)
class NotFound:
    """404 code 10015: the webhook was deleted."""


@dataclass(frozen=True)
class Unauthorized:
    """401 code 50027: the token was regenerated."""


@dataclass(frozen=True)
class Hang:
    """Never answers; released when the fake closes, so teardown does not hang."""


@dataclass(frozen=True)
class Stream:
    """A ``status`` answer whose body is ``size`` bytes of JSON-looking junk, streamed in
    ``chunk``-byte writes for as long as the client reads; the record's ``sent`` says how far
    it got and ``disconnected`` whether the client hung up first."""

    status: int = 500
    size: int = 300 * 1024 * 1024
    chunk: int = 64 * 1024


@dataclass(frozen=True)
class Respond:
    """Anything else: a status, an optional JSON body and headers."""

    status: int
    body: Any = None
    headers: Mapping[str, str] = field(default_factory=dict)


Behaviour = Ok | RateLimited | ServerError | NotFound | Unauthorized | Hang | Stream | Respond


@dataclass
class Recorded:
    """One request as the fake saw it."""

    at: float  # time.monotonic() on arrival
    path: str
    query: dict[str, str]
    headers: CIMultiDict[str]
    raw: bytes
    body: Any  # parsed JSON, None if it did not parse
    violations: list[str]
    status: int | None = None  # what the fake answered; None while hanging
    sent: int = 0  # body bytes written (Stream only)
    disconnected: bool = False  # the client hung up before the whole body was written
    finished: bool = False  # the answer is complete, or the client hung up


# --- validation ------------------------------------------------------------------------------


def schema_path() -> Path:
    return Path(os.environ.get(SCHEMA_ENV) or DEFAULT_SCHEMA)


def validate_body(body: object) -> list[str]:
    """Everything Discord would reject in an execute-webhook JSON body; [] when valid.

    Stricter than Discord where Discord is unclear: lengths must fit in UTF-16 units as well
    as code points, and a value of only invisible characters counts as empty.
    """
    if not isinstance(body, dict):
        return ["body: must be a JSON object"]
    path = schema_path()
    errors = sorted(_validator(path).iter_errors(body), key=lambda e: [str(p) for p in e.path])
    problems = [f"{_where(e.path)}: {_short(e.message)}" for e in errors]
    problems += _utf16_limits(body, _schema(path), "")
    content, embeds = body.get("content"), body.get("embeds")
    has_content = isinstance(content, str) and not _blank(content)
    if not has_content and not (isinstance(embeds, list) and embeds):
        problems.append(EMPTY_MESSAGE)
    embeds = [e for e in embeds if isinstance(e, dict)] if isinstance(embeds, list) else []
    total = sum(_embed_chars(embed) for embed in embeds)
    if total > EMBED_TOTAL_MAX:
        problems.append(f"embeds: {total} characters in total, over {EMBED_TOTAL_MAX}")
    for i, embed in enumerate(embeds):
        fields = embed.get("fields")
        for j, item in enumerate(fields if isinstance(fields, list) else []):
            for key in ("name", "value"):
                if isinstance(item, dict) and isinstance(item.get(key), str) and _blank(item[key]):
                    problems.append(f"embeds/{i}/fields/{j}/{key}: must not be blank")
    flags = body.get("flags")
    if isinstance(flags, int) and not isinstance(flags, bool) and flags & ~ALLOWED_FLAGS:
        problems.append(f"flags: {flags} sets bits other than 4 and 4096")
    username = body.get("username")
    if isinstance(username, str):
        if _blank(username):
            problems.append("username: must not be blank")
        if any(word in username.lower() for word in ("discord", "clyde")):
            problems.append("username: must not contain 'discord' or 'clyde'")
    return problems


def validate_request(
    headers: Mapping[str, str], raw: bytes, query: Mapping[str, str]
) -> tuple[Any, list[str]]:
    """The parsed body and every violation: headers, query string, JSON syntax and body."""
    problems = []
    content_type = headers.get("Content-Type", "").split(";")[0].strip().lower()
    if content_type != "application/json":
        problems.append(f"Content-Type: must be application/json, got {content_type!r}")
    if not _USER_AGENT.fullmatch(headers.get("User-Agent", "")):
        problems.append("User-Agent: must look like 'DiscordBot (url, version)'")
    if "wait" in query and query["wait"] not in _BOOLEANS:
        problems.append(f"wait: {query['wait']!r} is not a boolean")
    if "thread_id" in query and not _SNOWFLAKE.fullmatch(query["thread_id"]):
        problems.append("thread_id: not a snowflake")
    try:
        body = json.loads(raw.decode(), parse_constant=_reject_constant)
    except ValueError:
        return None, [*problems, "body: not valid JSON"]
    return body, problems + validate_body(body)


@cache
def _schema(path: Path) -> dict[str, Any]:
    if not path.is_file():
        raise FileNotFoundError(
            f"Discord schema not found at {path}; restore tests/contract/ or set {SCHEMA_ENV}"
        )
    schema: dict[str, Any] = json.loads(path.read_text(encoding="utf-8"))
    Draft202012Validator.check_schema(schema)
    return schema


@cache
def _validator(path: Path) -> Draft202012Validator:
    checker = FormatChecker()
    if "uri" not in checker.checkers:  # jsonschema skips "uri" without an optional package
        checker.checks("uri")(_is_uri)
    return Draft202012Validator(_schema(path), format_checker=checker)


def _is_uri(value: object) -> bool:
    return not isinstance(value, str) or _URI.fullmatch(value) is not None


def _utf16_limits(value: object, schema: Mapping[str, Any], path: str) -> list[str]:
    """maxLength again, in UTF-16 units: what the schema check passed but Discord may not."""
    if isinstance(value, str):
        limit = schema.get("maxLength")
        if limit is not None and len(value) <= limit < _u16(value):
            return [f"{path[1:]}: {_u16(value)} UTF-16 units, over {limit}"]
    elif isinstance(value, dict):
        props = schema.get("properties", {})
        return [
            problem
            for key, item in value.items()
            if key in props
            for problem in _utf16_limits(item, props[key], f"{path}/{key}")
        ]
    elif isinstance(value, list) and isinstance(schema.get("items"), dict):
        return [
            problem
            for i, item in enumerate(value)
            for problem in _utf16_limits(item, schema["items"], f"{path}/{i}")
        ]
    return []


def _embed_chars(embed: Mapping[str, Any]) -> int:
    """Discord's 6000-character count for one embed, ends trimmed, in UTF-16 units."""
    texts = [embed.get("title"), embed.get("description")]
    fields = embed.get("fields")
    for item in fields if isinstance(fields, list) else []:
        if isinstance(item, dict):
            texts += [item.get("name"), item.get("value")]
    for key, sub in (("footer", "text"), ("author", "name")):
        if isinstance(embed.get(key), dict):
            texts.append(embed[key].get(sub))
    return sum(_u16(text.strip()) for text in texts if isinstance(text, str))


def _u16(text: str) -> int:
    return len(text.encode("utf-16-le", "surrogatepass")) // 2


def _blank(text: str) -> bool:
    return all(unicodedata.category(c) in _INVISIBLE for c in text)


def _where(path: Iterable[object]) -> str:
    return "/".join(str(p) for p in path) or "body"


def _short(message: str) -> str:
    return message if len(message) <= 160 else message[:120] + " … " + message[-30:]


def _reject_constant(name: str) -> None:
    raise ValueError(f"{name} is not JSON")


# --- the server ------------------------------------------------------------------------------


@dataclass
class _Bucket:
    """A fixed window per webhook id, like Discord's per-route buckets."""

    started: float = -math.inf
    count: int = 0

    def reset_after(self, now: float) -> float:
        return max(0.0, self.started + WINDOW - now)

    def full(self, now: float) -> bool:
        return self.reset_after(now) > 0 and self.count >= LIMIT

    def hit(self, now: float) -> None:
        if self.reset_after(now) == 0:
            self.started, self.count = now, 0
        self.count += 1


class FakeDiscord:
    """Serves ``POST /api/webhooks/{id}/{token}`` and ``POST /api/v{N}/webhooks/{id}/{token}``.

    ``enforce_rate_limit=True`` answers 429 on its own past 5 requests per 2 s per webhook;
    otherwise the limit is only advertised in the headers. ``default`` answers requests the
    script does not cover.
    """

    def __init__(self, *, enforce_rate_limit: bool = False) -> None:
        self.enforce_rate_limit = enforce_rate_limit
        self.default: Behaviour = Ok()
        # Awaited with each valid request's record before it is answered (e.g. to take a lock
        # at the moment Discord accepts a message).
        self.before_answer: Callable[[Recorded], Awaitable[None]] | None = None
        self.requests: list[Recorded] = []
        self.base_url = ""
        self.app = web.Application()
        self.app.router.add_post("/api/webhooks/{webhook_id}/{token}", self._execute)
        self.app.router.add_post(
            r"/api/v{version:\d+}/webhooks/{webhook_id}/{token}", self._execute
        )
        self.app.on_shutdown.append(self._on_shutdown)
        self._scripts: defaultdict[str, deque[Behaviour]] = defaultdict(deque)
        self._buckets: defaultdict[str, _Bucket] = defaultdict(_Bucket)
        self._arrived = asyncio.Event()
        self._released = asyncio.Event()
        self._runner: web.AppRunner | None = None

    async def start(self, aiohttp_server: AiohttpServer | None = None) -> FakeDiscord:
        """Listens on 127.0.0.1, through the ``aiohttp_server`` fixture when given."""
        if aiohttp_server is not None:
            server = await aiohttp_server(self.app)
            self.base_url = str(server.make_url("/")).rstrip("/")
        else:
            self._runner = web.AppRunner(self.app, shutdown_timeout=1.0)
            await self._runner.setup()
            await web.TCPSite(self._runner, "127.0.0.1", 0).start()
            host, port = self._runner.addresses[0][:2]
            self.base_url = f"http://{host}:{port}"
        return self

    async def close(self) -> None:
        self._released.set()
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None

    async def __aenter__(self) -> FakeDiscord:
        return await self.start()

    async def __aexit__(self, *exc_info: object) -> None:
        await self.close()

    def url(
        self, id: str = "123456789012345678", token: str = "tok", *, versioned: bool = True
    ) -> str:
        """A webhook URL on this fake; ``versioned=False`` gives the pre-v8 form the UI copies."""
        api = "/api/v10" if versioned else "/api"
        return f"{self.base_url}{api}/webhooks/{id}/{token}"

    def script(self, url_or_path: str, *behaviours: Behaviour) -> None:
        """Queues answers for one webhook URL, used one per request in order."""
        self._scripts[_path(url_or_path)].extend(behaviours)

    def received(self, path: str | None = None) -> list[Recorded]:
        """Requests so far, oldest first, for one webhook URL or path, or all."""
        wanted = None if path is None else _path(path)
        return [r for r in self.requests if wanted is None or r.path == wanted]

    def valid_bodies(self, path: str | None = None) -> list[Any]:
        return [r.body for r in self.received(path) if not r.violations]

    def violations(self, path: str | None = None) -> list[str]:
        """Every violation as "#index path: problem"; assert it equals [] at the end of a test."""
        return [
            f"#{i} {r.path}: {problem}"
            for i, r in enumerate(self.received(path))
            for problem in r.violations
        ]

    async def wait_for(
        self, count: int, path: str | None = None, *, timeout: float = 10.0
    ) -> list[Recorded]:
        """Returns once ``count`` requests have arrived; wakes on each arrival, no sleeping."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while len(got := self.received(path)) < count:
            left = deadline - loop.time()
            if left <= 0:
                raise TimeoutError(f"fake Discord got {len(got)} of {count} requests in {timeout}s")
            self._arrived.clear()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._arrived.wait(), left)
        return got

    async def _on_shutdown(self, app: web.Application) -> None:
        self._released.set()

    async def _execute(self, request: web.Request) -> web.StreamResponse:
        now = time.monotonic()
        raw = await request.read()
        query = dict(request.query)
        body, problems = validate_request(request.headers, raw, query)
        webhook_id = request.match_info["webhook_id"]
        if not _SNOWFLAKE.fullmatch(webhook_id):
            problems.append("webhook_id: not a snowflake")
        record = Recorded(
            now, request.path, query, CIMultiDict(request.headers), raw, body, problems
        )
        self.requests.append(record)
        self._arrived.set()
        response = self._answer(record, webhook_id, now)
        if self.before_answer is not None and not record.violations:
            await self.before_answer(record)
        if response is None:  # Hang
            await self._released.wait()
            return web.Response(status=503)
        if isinstance(response, Stream):
            return await _stream(request, record, response)
        record.status = response.status
        record.finished = True
        return response

    def _answer(
        self, record: Recorded, webhook_id: str, now: float
    ) -> web.Response | Stream | None:
        if record.violations:
            return _invalid(record.violations)
        bucket = self._buckets[webhook_id]
        if self.enforce_rate_limit and bucket.full(now):
            return _rate_limited(RateLimited(round(bucket.reset_after(now), 3)))
        bucket.hit(now)
        script = self._scripts[record.path]
        behaviour = script.popleft() if script else self.default
        match behaviour:
            case Ok():
                headers = _bucket_headers(bucket, webhook_id, now)
                if record.query.get("wait") in ("True", "true", "1"):
                    message = {"id": "1", "type": 0, "webhook_id": webhook_id, **record.body}
                    return web.json_response(message, headers=headers)
                return web.Response(status=204, headers=headers)
            case RateLimited():
                return _rate_limited(behaviour)
            case ServerError(status=status, retry_after=retry_after):
                headers = (
                    {} if retry_after is None else {"Retry-After": str(math.ceil(retry_after))}
                )
                return _error(status, 0, f"{status}: Server Error", headers)
            case NotFound():
                return _error(404, 10015, "Unknown Webhook")
            case Unauthorized():
                return _error(401, 50027, "Invalid Webhook Token")
            case Hang():
                return None
            case Stream():
                return behaviour
            case Respond(status=status, body=body, headers=headers):
                if body is None:
                    return web.Response(status=status, headers=headers)
                return web.json_response(body, status=status, headers=headers)
        raise TypeError(f"not a behaviour: {behaviour!r}")


async def _stream(request: web.Request, record: Recorded, stream: Stream) -> web.StreamResponse:
    """Writes ``stream.size`` bytes while the client reads; stops when it hangs up."""
    response = web.StreamResponse(status=stream.status)
    response.content_type = "application/json"
    response.content_length = stream.size
    record.status = stream.status
    chunk = b" " * stream.chunk
    try:
        await response.prepare(request)
        await response.write(b'{"message": "')
        record.sent = 13
        while record.sent < stream.size:
            part = chunk[: stream.size - record.sent]
            await response.write(part)
            record.sent += len(part)
    except ConnectionError:
        record.disconnected = True
    except asyncio.CancelledError:
        record.disconnected = True
        raise
    finally:
        record.finished = True
    return response


def _path(url_or_path: str) -> str:
    return URL(url_or_path).path


def _bucket_headers(bucket: _Bucket, webhook_id: str, now: float) -> dict[str, str]:
    reset_after = bucket.reset_after(now)
    return {
        "X-RateLimit-Limit": str(LIMIT),
        "X-RateLimit-Remaining": str(max(0, LIMIT - bucket.count)),
        "X-RateLimit-Reset": f"{time.time() + reset_after:.3f}",
        "X-RateLimit-Reset-After": f"{reset_after:.3f}",
        "X-RateLimit-Bucket": f"fake-{webhook_id}",
    }


def _rate_limited(behaviour: RateLimited) -> web.Response:
    seconds = behaviour.retry_after
    value: float = round(seconds * 1000) if behaviour.unit == "ms" else seconds
    body = {
        "message": "You are being rate limited.",
        "retry_after": value,
        "global": behaviour.global_,
    }
    headers = {"Retry-After": str(math.ceil(value)), "Via": "1.1 google"}
    if behaviour.global_:
        headers |= {"X-RateLimit-Global": "true", "X-RateLimit-Scope": "global"}
    else:
        headers |= {
            "X-RateLimit-Scope": "user",
            "X-RateLimit-Limit": str(LIMIT),
            "X-RateLimit-Remaining": "0",
            "X-RateLimit-Reset-After": f"{seconds:.3f}",
        }
    return web.json_response(body, status=429, headers=headers)


def _invalid(violations: list[str]) -> web.Response:
    if EMPTY_MESSAGE in violations:
        code, message = 50006, "Cannot send an empty message"
    elif "body: not valid JSON" in violations:
        code, message = 50109, "The request body contains invalid JSON."
    else:
        code, message = 50035, "Invalid Form Body"
    errors = {"_errors": [{"code": "FAKE_DISCORD", "message": v} for v in violations]}
    return web.json_response({"code": code, "message": message, "errors": errors}, status=400)


def _error(
    status: int, code: int, message: str, headers: Mapping[str, str] | None = None
) -> web.Response:
    return web.json_response({"message": message, "code": code}, status=status, headers=headers)


@pytest_asyncio.fixture
async def fake_discord(aiohttp_server: AiohttpServer) -> FakeDiscord:
    """A started FakeDiscord; import this into conftest.py to share it."""
    return await FakeDiscord().start(aiohttp_server)
