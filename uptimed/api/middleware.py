"""Middlewares, outermost first: errors -> auth (+ login-failure limit) -> per-user rate limit.

Every error leaves as JSON ``{"detail": ...}``. ``BadRequest`` and ``db.NotFound`` are 400 (the
documented API says 400 for an unknown id), ``ApiError`` carries its own status and headers,
aiohttp's own HTTP errors (404 route, 405, 413) keep their status, and anything else is a bug:
logged with its traceback, answered 500 without details.
"""

from __future__ import annotations

import base64
import binascii
import ipaddress
import logging
import secrets
import sqlite3
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass

from aiohttp import hdrs, web

from uptimed.api.ratelimit import SlidingWindow
from uptimed.api.validation import BadRequest
from uptimed.app_keys import HEALTH, SETTINGS
from uptimed.db import NotFound
from uptimed.declared import ReadOnly

log = logging.getLogger(__name__)

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]
Network = ipaddress.IPv4Network | ipaddress.IPv6Network
REALM = 'Basic realm="uptimed"'
AUTH_FAILURE_WINDOW = 60.0
DATABASE_RETRY_AFTER = 5  # seconds a client is asked to wait when the database refuses
API_FAULT_TTL = 30.0  # /healthz reports a database refusal this long after the last one

_FRAMEWORK_DETAILS = {
    404: "Not found: no such endpoint.",
    405: "Method not allowed for this endpoint.",
    413: "Request body too large: the limit is 1 MiB.",
}


class ApiError(Exception):
    def __init__(self, status: int, detail: str, headers: dict[str, str] | None = None) -> None:
        super().__init__(detail)
        self.status = status
        self.detail = detail
        self.headers = headers or {}


@dataclass
class AuthConfig:
    """Who may log in, and the two limits guarding the API."""

    username: str
    password: str
    failures: SlidingWindow  # wrong logins per client IP
    requests: SlidingWindow  # requests per user
    public_paths: frozenset[str]  # paths, or route patterns such as /badge/{site_id}/status.svg


def error_response(status: int, detail: str, headers: dict[str, str] | None = None) -> web.Response:
    return web.json_response({"detail": detail}, status=status, headers=headers)


@web.middleware
async def errors(request: web.Request, handler: Handler) -> web.StreamResponse:
    try:
        response = await handler(request)
        if request.method != hdrs.METH_GET:  # a write went through: the database takes them
            request.app[HEALTH].ok("api_writes")
        return response
    except ApiError as e:
        return error_response(e.status, e.detail, e.headers)
    except (BadRequest, NotFound) as e:
        return error_response(400, str(e))
    except ReadOnly as e:
        return error_response(409, str(e))
    except web.HTTPException as e:
        if e.status < 400:
            raise
        headers = {k: v for k, v in e.headers.items() if k in (hdrs.ALLOW, hdrs.RETRY_AFTER)}
        detail = _FRAMEWORK_DETAILS.get(e.status) or e.reason
        return error_response(e.status, detail, headers)
    except sqlite3.OperationalError as e:
        # A full or read-only disk, an I/O error, a lock held too long: not a bug, and the
        # client can try again. The transaction was rolled back, so nothing changed.
        # Seen only while requests come: reported until a quiet half-minute has passed.
        request.app[HEALTH].fail(
            "api_writes", f"the API cannot use the database: {e}", ttl=API_FAULT_TTL
        )
        return error_response(
            503,
            f"The database cannot be used right now ({e}); nothing was changed. Try again later.",
            {hdrs.RETRY_AFTER: str(DATABASE_RETRY_AFTER)},
        )
    except Exception:
        log.exception("unhandled error method=%s path=%s", request.method, request.path)
        return error_response(500, "Internal server error; the log has the details.")


def _basic_user(header: str | None, auth: AuthConfig) -> str | None:
    """The user name if the Basic credentials are right; both parts compared in constant time."""
    if not header:
        return None
    scheme, _, encoded = header.partition(" ")
    if scheme.lower() != "basic":
        return None
    try:
        decoded = base64.b64decode(encoded.strip(), validate=True)
    except (binascii.Error, ValueError):
        return None
    user, sep, password = decoded.partition(b":")
    if not sep:
        return None
    user_ok = secrets.compare_digest(user, auth.username.encode())
    password_ok = secrets.compare_digest(password, auth.password.encode())
    return auth.username if user_ok and password_ok else None


def _ip(text: str) -> ipaddress.IPv4Address | ipaddress.IPv6Address:
    """An address as written, an IPv4-mapped IPv6 peer (``::ffff:127.0.0.1``) as IPv4."""
    address = ipaddress.ip_address(text.strip())
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        return address.ipv4_mapped
    return address


def client_address(
    peer: str | None, forwarded_for: Sequence[str], trusted: Sequence[Network]
) -> str:
    """Who is asking, for the login-failure limit. ``X-Forwarded-For`` is believed only when the
    direct peer is a trusted proxy, and then read from the right: each trusted proxy appends the
    address it was connected from, so the right-most address that is not a trusted proxy is the
    client; whatever the client wrote to the left of it is ignored. An entry that is not an
    address stops the walk at the last trusted hop (a client must not pick its own key)."""
    try:
        address = _ip(peer or "")
    except ValueError:
        return peer or "unknown"
    hops = [hop for header in forwarded_for for hop in header.split(",")]
    while hops and any(address in net for net in trusted):
        try:
            address = _ip(hops.pop())
        except ValueError:
            break
    return str(address)


def auth_middleware(
    auth: AuthConfig,
) -> Callable[[web.Request, Handler], Awaitable[web.StreamResponse]]:
    @web.middleware
    async def authenticate(request: web.Request, handler: Handler) -> web.StreamResponse:
        resource = request.match_info.route.resource
        if request.path in auth.public_paths or (
            resource is not None and resource.canonical in auth.public_paths
        ):
            return await handler(request)
        trusted = request.app[SETTINGS].trusted_proxies
        client = (
            client_address(
                request.remote, request.headers.getall(hdrs.X_FORWARDED_FOR, ()), trusted
            )
            if trusted
            else request.remote or "unknown"
        )
        if wait := auth.failures.retry_after(client):
            raise ApiError(
                429,
                f"Too many failed logins from your address; try again in {wait} seconds.",
                {hdrs.RETRY_AFTER: str(wait)},
            )
        header = request.headers.get(hdrs.AUTHORIZATION)
        user = _basic_user(header, auth)
        if user is None:
            if header:  # a missing header is a first visit, not a guess
                auth.failures.hit(client)
            raise ApiError(
                401,
                "Authentication required: send valid HTTP Basic credentials.",
                {hdrs.WWW_AUTHENTICATE: REALM},
            )
        if wait := auth.requests.hit_if_allowed(user):
            raise ApiError(
                429,
                f"Rate limit exceeded: at most {auth.requests.limit} requests per "
                f"{auth.requests.window:g} seconds; try again in {wait} seconds.",
                {hdrs.RETRY_AFTER: str(wait)},
            )
        return await handler(request)

    return authenticate


# The docs pages: scripts, styles, fonts, images and fetches from this origin only, and no
# inline script. Swagger UI and ReDoc set inline styles and data: images; ReDoc runs its
# search index in a blob: worker.
HTML_CSP = (
    "default-src 'self'; script-src 'self'; style-src 'self' 'unsafe-inline'; "
    "img-src 'self' data:; worker-src 'self' blob:; connect-src 'self'; object-src 'none'; "
    "base-uri 'none'; form-action 'none'; frame-ancestors 'none'"
)
# Everything else is data or a script file: nothing in it may load anything.
OTHER_CSP = "default-src 'none'; frame-ancestors 'none'"


async def security_headers(request: web.Request, response: web.StreamResponse) -> None:
    """``on_response_prepare``: see ``add_security_headers``."""
    add_security_headers(response)


def add_security_headers(response: web.StreamResponse) -> None:
    """No MIME sniffing, framing or referrers anywhere; a CSP on every answer (the docs pages'
    allows only this origin); nothing is cached unless its handler says otherwise (the docs
    files do: they hold no data), whatever its type: JSON, CSV, an error or a redirect. Also
    called for the answers to malformed requests, which aiohttp sends without the app's
    signals."""
    headers = response.headers
    headers.setdefault("X-Content-Type-Options", "nosniff")
    headers.setdefault("X-Frame-Options", "DENY")
    headers.setdefault("Referrer-Policy", "no-referrer")
    is_html = response.content_type == "text/html"
    headers.setdefault("Content-Security-Policy", HTML_CSP if is_html else OTHER_CSP)
    headers.setdefault(hdrs.CACHE_CONTROL, "no-store")
