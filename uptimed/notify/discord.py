"""Discord execute-webhook: a pure payload builder and a transport that only classifies.

The contract is tests/contract/README.md and execute-webhook.schema.json. Every payload
``build_payload`` returns is valid for any input: text is flattened to one line, cut to
Discord's limits with "…", and never left blank, because Discord answers 400 to an
over-long or empty field and a 400 disables the webhook.

User text (site names, reasons) is Markdown-escaped with backslashes, so a name such as
``[verify](https://evil.example)`` cannot become a masked link, and Unicode direction controls
(``BIDI_CONTROLS``: U+202A-U+202E, U+2066-U+2069, U+200E, U+200F, U+061C) are dropped, so a
name cannot reverse the text around it. A URL shown as text is left alone when Markdown finds
nothing in it (Discord then links it); otherwise it is shown as inline code, where Discord
reads no Markdown at all (a backslash inside a URL would change the link). Limits are applied
after escaping, and a cut never splits an escape.

Only the first ``MAX_REPLY_BYTES`` of Discord's answer are read; a larger answer is cut and
its connection closed, so a huge or endless reply costs no memory.

Lengths are counted in UTF-16 code units. Discord does not say whether it counts code
points or UTF-16 units; UTF-16 is never the smaller count, so text cut to fit it fits either.

Units of ``retry_after`` (the pre-v8 gotcha): from API v8 on, Discord sends seconds; before
v8 it sent milliseconds, and unversioned ``/api/webhooks/...`` URLs (what the Discord UI
hands out) are reported to still reach a pre-v8 version. The rule, in ``parse_retry_after``:

* the URL names ``/api/v8/`` or later -> the value is seconds, always;
* otherwise (unversioned, ``/api/v6/``, or URL unknown) a value above ``MS_THRESHOLD`` (60)
  is milliseconds and is divided by 1000, and a value up to 60 is taken as seconds.

A per-webhook wait over a minute is not expected, while a millisecond value is usually
hundreds or thousands. When the value is ambiguous (1..60 on an old URL), reading it as
seconds makes us wait too long. That only delays an alert. Reading it as milliseconds could
resend at once, and more 429s count toward Cloudflare's invalid-request ban. Use ``/api/v10/``
URLs to avoid the question.
"""

from __future__ import annotations

import json
import math
import re
import unicodedata
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

import aiohttp
from multidict import CIMultiDict
from yarl import URL

from uptimed import __version__
from uptimed.fields import is_tcp, tcp_address
from uptimed.models import Event, EventKind, Status, iso_ms
from uptimed.notify import DEFAULT_TIMEOUT, Delivery, NotifyError

RED = 0xE74C3C
GREEN = 0x2ECC71
GREY = 0x95A5A6
ORANGE = 0xE67E22

USERNAME = "uptimed"  # must not contain "discord" or "clyde"
FOOTER = "uptimed"
USER_AGENT = f"DiscordBot (https://github.com/uptimed/uptimed, {__version__})"

TITLE_MAX = 256
FIELD_VALUE_MAX = 1024
URL_MAX = 2048
ELLIPSIS = "…"
MS_THRESHOLD = 60.0  # see the module docstring
MAX_REPLY_BYTES = 8 * 1024  # Discord's error bodies are a few hundred bytes
# Unicode's Bidi_Control characters: embeddings, overrides, isolates and the three marks.
BIDI_CONTROLS = frozenset(
    "\u061c\u200e\u200f\u202a\u202b\u202c\u202d\u202e\u2066\u2067\u2068\u2069"
)

_HEADERS = {"User-Agent": USER_AGENT, "Content-Type": "application/json"}
_INVISIBLE = frozenset({"Cc", "Cf", "Zs", "Zl", "Zp", "Mn", "Me"})
_URI = re.compile(r"(?:[A-Za-z0-9\-._~:/?#\[\]@!$&'()*+,;=]|%[0-9A-Fa-f]{2})+")
_MD_INLINE = frozenset("\\*_~`|[]<>")  # emphasis, code, spoiler, links, mentions, <t:...>
_MD_LINE_START = re.compile(r"[#>+-]|\d+\.")  # heading, quote, list, "-#" subtext
_PLAIN_URL = re.compile(r"[A-Za-z0-9\-.:/?#@!$&'+,;=%]+")  # nothing Markdown reads
_API_VERSION = re.compile(r"/api/v(\d+)/", re.IGNORECASE)
_TOKEN = re.compile(r"/webhooks/\d+/([^/?#\s]+)")
_UNITS = (("d", 86_400), ("h", 3_600), ("m", 60), ("s", 1))


# --- payload ------------------------------------------------------------------------------


def build_payload(event: Event) -> dict[str, Any]:
    """The execute-webhook JSON for one event: one embed, no pings, within every limit."""
    if event.kind is EventKind.OFFLINE:
        return _offline_payload(event)
    prefix, suffix, color = _headline(event)
    name_max = TITLE_MAX - _u16(prefix) - _u16(suffix)
    embed: dict[str, Any] = {
        "title": prefix + _text(event.site_name, name_max, "(unnamed site)", start=False) + suffix,
        "color": color,
        "fields": _fields(event),
        "timestamp": iso_ms(event.at),
        "footer": {"text": FOOTER},
    }
    if event.kind is EventKind.TEST:
        embed["description"] = "uptimed can post to this webhook."
    elif event.kind is EventKind.ENDED:
        embed["description"] = "The site was removed; uptimed no longer checks it."
    elif event.kind is EventKind.PAUSED:
        embed["description"] = "uptimed does not check this site until it is resumed."
    elif event.kind is EventKind.RESUMED:
        embed["description"] = "uptimed checks this site again; its next check runs now."
    elif event.kind is EventKind.CERTIFICATE and event.certificate is not None:
        embed["description"] = _certificate_sentence(event)
    elif event.kind is EventKind.UNMUTED:
        embed["description"] = "Alerts were muted; this is the status now."
    if link := _embed_url(event.site_url):
        embed["url"] = link
    # Worst case (every input at its cap) is about 2,400 of the 6,000 units allowed across
    # embeds, so no further cut is needed; test_payload_stays_valid_for_extreme_input pins it.
    return {"username": USERNAME, "embeds": [embed], "allowed_mentions": {"parse": []}}


def _offline_payload(event: Event) -> dict[str, Any]:
    """The monitor itself was offline: which span, and how many of this webhook's sites it
    could not check then (their failed checks were set aside, not recorded)."""
    since = event.down_since if event.down_since is not None else event.at
    sites = f"{event.checks} site{'s' if event.checks != 1 else ''}"
    embed = {
        "title": "📡 uptimed was offline",
        "description": (
            f"uptimed could not reach the internet from <t:{since // 1000}:f> to"
            f" <t:{event.at // 1000}:f> ({format_duration(event.at - since)}), so it could not"
            f" check {sites} of this webhook then. Their failed checks were set aside, not"
            " recorded; they are checked as usual again."
        ),
        "color": GREY,
        "timestamp": iso_ms(event.at),
        "footer": {"text": FOOTER},
    }
    return {"username": USERNAME, "embeds": [embed], "allowed_mentions": {"parse": []}}


def every_site_trial_payload(at: int) -> dict[str, Any]:
    """The test message of a webhook that hears every site: there is no one site to name."""
    embed = {
        "title": "🔔 Test message for every site",
        "description": "uptimed can post to this webhook. It hears every site, present and"
        " future: each one's status changes come here.",
        "color": GREY,
        "timestamp": iso_ms(at),
        "footer": {"text": FOOTER},
    }
    return {"username": USERNAME, "embeds": [embed], "allowed_mentions": {"parse": []}}


def format_duration(ms: int) -> str:
    """The largest non-zero unit and the one below it, if non-zero: "4m 12s", "2h", "0s"."""
    rest, parts = max(0, ms) // 1000, []
    for unit, size in _UNITS:
        count, rest = divmod(rest, size)
        parts.append((count, unit))
    first = next((i for i, (count, _) in enumerate(parts) if count), len(parts))
    return " ".join(f"{count}{unit}" for count, unit in parts[first : first + 2] if count) or "0s"


def _headline(event: Event) -> tuple[str, str, int]:
    """Title prefix, title suffix and colour; the site name goes between the two."""
    match event.kind, event.status:
        case EventKind.DOWN, _:
            return "🔴 ", " is DOWN", RED
        case EventKind.UP, _:
            return "🟢 ", " is UP", GREEN
        case EventKind.STARTED, Status.UP:
            return "🟢 Monitoring started: ", " is UP", GREEN
        case EventKind.STARTED, Status.DOWN:
            return "🔴 Monitoring started: ", " is DOWN", RED
        case EventKind.STARTED, _:
            return "⚪ Monitoring started: ", "", GREY
        case EventKind.ENDED, _:
            return "⚪ Monitoring ended: ", "", GREY
        case EventKind.PAUSED, _:
            return "⏸️ Monitoring paused: ", "", GREY
        case EventKind.RESUMED, _:
            return "▶️ Monitoring resumed: ", "", GREY
        case EventKind.REMINDER, _:
            since = event.down_since if event.down_since is not None else event.at
            return "🔴 ", f" is still DOWN (for {format_duration(event.at - since)})", RED
        case EventKind.CERTIFICATE, _:
            return "🟠 Certificate of ", f" {_expiry_phrase(event.days_left or 0)}", ORANGE
        case EventKind.UNMUTED, Status.DOWN:
            return "🔴 Alerts unmuted: ", " is DOWN", RED
        case EventKind.UNMUTED, Status.UP:
            return "🟢 Alerts unmuted: ", " is UP", GREEN
        case EventKind.UNMUTED, _:
            return "⚪ Alerts unmuted: ", "", GREY
        case _:
            return "🔔 Test message for ", "", GREY


def _fields(event: Event) -> list[dict[str, Any]]:
    fields = [_field("URL", _url_text(event.site_url))]
    is_down = event.kind in (EventKind.DOWN, EventKind.REMINDER) or (
        event.kind in (EventKind.STARTED, EventKind.UNMUTED) and event.status is Status.DOWN
    )
    if is_down:
        fields.append(_field("Reason", _text(event.reason, FIELD_VALUE_MAX, "unknown")))
    if event.kind is EventKind.UP and event.reason is not None:
        fields.append(_field("Outage", _text(event.reason, FIELD_VALUE_MAX, "unknown")))
    if event.response_time_ms is not None:
        fields.append(_field("Response time", f"{event.response_time_ms} ms", inline=True))
    if event.down_since is not None and event.kind is not EventKind.STARTED:
        # Discord renders <t:…:f> in each reader's own time zone.
        fields.append(_field("Down since", f"<t:{event.down_since // 1000}:f>", inline=True))
        if event.kind is EventKind.UP:
            downtime = format_duration(event.at - event.down_since)
            fields.append(_field("Downtime", downtime, inline=True))
    if event.checks > 1 and event.kind in (EventKind.DOWN, EventKind.UP, EventKind.STARTED):
        what = "failed" if event.status is Status.DOWN else "good"
        fields.append(_field("Confirmed by", f"{event.checks} {what} checks in a row", inline=True))
    if event.kind is EventKind.CERTIFICATE and (cert := event.certificate) is not None:
        fields.append(_field("Subject", _text(cert.subject, FIELD_VALUE_MAX, "(none)")))
        fields.append(_field("Issuer", _text(cert.issuer, FIELD_VALUE_MAX, "(none)")))
        fields.append(_field("Expires", f"<t:{cert.expires_at // 1000}:f>", inline=True))
    return fields


def _expiry_phrase(days: int) -> str:
    if days < 0:
        return "has expired"
    if days == 0:
        return "expires in less than a day"
    return f"expires in {days} day{'s' if days != 1 else ''}"


def _certificate_sentence(event: Event) -> str:
    """ "Certificate of example.com expires in 6 days (6 December 2026 10:00 UTC)." """
    assert event.certificate is not None
    expires = datetime.fromtimestamp(event.certificate.expires_at / 1000, tz=UTC)
    when = f"{expires.day} {expires:%B %Y %H:%M} UTC"
    host = _text(_host(event.site_url), 300, "the site", start=False)
    return f"Certificate of {host} {_expiry_phrase(event.days_left or 0)} ({when})."


def _host(site_url: str) -> str:
    if is_tcp(site_url):
        return tcp_address(site_url)[0]
    try:
        return URL(site_url).host or site_url
    except (ValueError, TypeError):
        return site_url


def _field(name: str, value: str, *, inline: bool = False) -> dict[str, Any]:
    return {"name": name, "value": value, "inline": inline}


def _u16(text: str) -> int:
    """Length in UTF-16 code units (astral characters such as most emoji count twice)."""
    return len(text) + sum(1 for c in text if ord(c) > 0xFFFF)


def _clean(text: str | None) -> str:
    """One line: control characters and whitespace runs become one space, ends trimmed
    (Discord trims before counting), lone surrogates (unencodable) become U+FFFD, and
    direction controls are dropped (they could make a name spoof the text around it)."""
    chars = (
        "\ufffd" if 0xD800 <= ord(c) <= 0xDFFF else " " if unicodedata.category(c) == "Cc" else c
        for c in text or ""
        if c not in BIDI_CONTROLS
    )
    return " ".join("".join(chars).split())


def _visible(text: str) -> bool:
    """Discord rejects empty values and may strip format characters such as U+200B."""
    return any(unicodedata.category(c) not in _INVISIBLE for c in text)


def _text(value: str | None, limit: int, fallback: str, *, start: bool = True) -> str:
    """Cleaned, Markdown-escaped and cut ``value``, or ``fallback`` when nothing visible is
    left. ``start``: the text begins a line, where "#", ">", "-" and "1." mean something."""
    text = _clean(value)
    if not _visible(text):
        return fallback
    return _clip(_escape(text, start=start), limit)


def _escape(text: str, *, start: bool) -> list[str]:
    """``text`` as a list of parts, each one character or a backslash and the character it
    escapes, so that a cut never separates the two."""
    parts = [f"\\{c}" if c in _MD_INLINE else c for c in text]
    if start and (match := _MD_LINE_START.match(text)):
        last = match.end() - 1  # "#" or ">" itself, or the dot of "1."
        if len(parts[last]) == 1:  # ">" is escaped everywhere already
            parts[last] = "\\" + parts[last]
    return parts


def _url_text(url: str) -> str:
    """The site URL for the URL field: as is when Markdown reads nothing in it, else as
    inline code (a backtick, never valid in a URL, is shown percent-encoded)."""
    text = _clean(url)
    if not _visible(text):
        return "(none)"
    if _PLAIN_URL.fullmatch(text):
        return _clip(list(text), FIELD_VALUE_MAX)
    code = text.replace("`", "%60")
    return "`" + _clip(list(code), FIELD_VALUE_MAX - 2) + "`"


def _clip(parts: list[str], limit: int) -> str:
    """The joined ``parts`` if they fit ``limit`` UTF-16 units, else the longest run of whole
    parts that fits with "…"."""
    text = "".join(parts)
    if _u16(text) <= limit:
        return text
    used = 0
    for end, part in enumerate(parts):
        used += _u16(part)
        if used > limit - len(ELLIPSIS):
            return "".join(parts[:end]).rstrip() + ELLIPSIS
    return text  # pragma: no cover - the length check above returned already


def _embed_url(site_url: str) -> str | None:
    """The site URL as a clickable title link, or None when Discord would reject it."""
    try:
        url = URL(site_url)
        text = str(url)  # percent-encodes spaces and non-ASCII, IDNA-encodes the host
    except (ValueError, TypeError, UnicodeError):
        return None
    if url.scheme not in ("http", "https") or not url.host:
        return None
    if len(text) > URL_MAX or not _URI.fullmatch(text):
        return None
    return text


# --- answers ------------------------------------------------------------------------------


def parse_retry_after(
    status: int, headers: Mapping[str, str], body: object, *, url: str | None = None
) -> tuple[float | None, bool]:
    """Seconds to wait and whether the limit is global, from a 429 (or a 5xx's header).

    The 429 body's ``retry_after`` wins over the ``Retry-After`` header. Milliseconds are
    converted by the rule in the module docstring, which needs the webhook ``url``. For other
    statuses only the standard ``Retry-After`` header (seconds) is read. Returns
    ``(None, is_global)`` when no usable number is present. The value is returned as sent, a
    negative or huge one included: the caller clamps it and can say what was odd.
    """
    h = CIMultiDict(headers)
    rate_limited = status == 429
    is_global = rate_limited and (
        (isinstance(body, dict) and body.get("global") is True)
        or h.get("X-RateLimit-Global", "").strip().lower() == "true"
        or h.get("X-RateLimit-Scope", "").strip().lower() == "global"
    )
    value = _number(body.get("retry_after")) if rate_limited and isinstance(body, dict) else None
    if value is None:
        value = _number(h.get("Retry-After"))  # an HTTP-date is not a number: ignored
    if value is None:
        return None, is_global
    if rate_limited and not _speaks_seconds(url) and value > MS_THRESHOLD:
        value /= 1000
    return value, is_global


def _speaks_seconds(url: str | None) -> bool:
    """True when the URL pins API v8 or later, whose rate-limit values are seconds."""
    match = _API_VERSION.search(url.split("?", 1)[0]) if url else None
    return match is not None and int(match[1]) >= 8


def _number(value: object) -> float | None:
    if isinstance(value, bool) or not isinstance(value, int | float | str):
        return None
    try:
        number = float(value)
    except ValueError:
        return None
    return number if math.isfinite(number) else None


class DiscordNotifier:
    """POSTs one payload to a Discord webhook and classifies the answer (see uptimed.notify).

    Stateless: the session, the timeout and the retry loop all belong to the caller. Redirects
    are not followed, since aiohttp would replay a POST as a GET (which on a webhook URL returns
    200 without posting anything). A session made with ``raise_for_status`` is overridden.
    """

    async def send(
        self,
        session: aiohttp.ClientSession,
        url: str,
        payload: dict[str, Any],
        *,
        timeout: float = DEFAULT_TIMEOUT,
    ) -> Delivery:
        """Returns a ``Delivery`` on 2xx; raises ``NotifyError`` for anything else."""
        data = json.dumps(payload).encode()  # ASCII escapes: valid even with odd code points
        try:
            async with session.post(
                url,
                data=data,
                headers=_HEADERS,
                timeout=aiohttp.ClientTimeout(total=timeout),
                allow_redirects=False,
                raise_for_status=False,
            ) as response:
                raw = await _read_head(response, MAX_REPLY_BYTES)
                status, headers, reason = response.status, response.headers, response.reason
        except TimeoutError as exc:  # aiohttp's timeouts subclass it
            raise NotifyError(f"timeout after {timeout:g}s", permanent=False) from exc
        except (aiohttp.InvalidURL, aiohttp.NonHttpUrlClientError) as exc:
            raise NotifyError("invalid webhook URL", permanent=True) from exc
        except aiohttp.ClientError as exc:
            raise NotifyError(_redact(_describe(exc), url), permanent=False) from exc
        return _classify(status, headers, raw, url=url, reason=reason)


async def _read_head(response: aiohttp.ClientResponse, limit: int) -> bytes:
    """At most ``limit`` bytes of the body; the rest is never read: the connection is closed."""
    head = bytearray()
    while len(head) < limit and (chunk := await response.content.read(limit - len(head))):
        head += chunk
    if not response.content.at_eof():
        response.close()
    return bytes(head)


def _classify(
    status: int, headers: Mapping[str, str], raw: bytes, *, url: str, reason: str | None
) -> Delivery:
    if 200 <= status < 300:
        return Delivery(
            status,
            remaining=_int(headers.get("X-RateLimit-Remaining")),
            reset_after=_number(headers.get("X-RateLimit-Reset-After")),
        )
    body = _json(raw)
    if status == 429:
        retry_after, is_global = parse_retry_after(status, headers, body, url=url)
        wait = "no retry_after given" if retry_after is None else f"retry after {retry_after:g}s"
        scope = "globally " if is_global else ""
        raise NotifyError(
            f"Discord answered 429: {scope}rate limited, {wait}",
            permanent=False,
            retry_after=retry_after,
            is_global=is_global,
            status=status,
        )
    message = f"Discord answered {status}: {_explain(body) or reason or 'no details'}"
    if status >= 500:
        retry_after, _ = parse_retry_after(status, headers, body, url=url)
        raise NotifyError(message, permanent=False, retry_after=retry_after, status=status)
    if 300 <= status < 400:
        message += " (a redirect: check the webhook URL)"
    raise NotifyError(message, permanent=True, status=status)


def _json(raw: bytes) -> object:
    try:
        return json.loads(raw)
    except ValueError:  # includes UnicodeDecodeError
        return None


def _int(value: str | None) -> int | None:
    number = _number(value)
    return int(number) if number is not None else None


def _explain(body: object) -> str:
    """Discord's own words: "Unknown Webhook (code 10015)", plus where a 50035 points."""
    if not isinstance(body, dict) or not isinstance(body.get("message"), str):
        return ""
    text = _clip(list(_clean(body["message"])), 200)
    if isinstance(body.get("code"), int) and not isinstance(body["code"], bool):
        text += f" (code {body['code']})"
    if problems := _form_errors(body.get("errors"), ""):
        text += ": " + _clip(list("; ".join(problems)), 300)
    return text


def _form_errors(errors: object, path: str) -> list[str]:
    """Flattens Discord's nested ``{"embeds": {"0": {"title": {"_errors": [...]}}}}``."""
    if not isinstance(errors, dict):
        return []
    found = [
        f"{path or 'body'}: {item.get('message')}"
        for item in errors.get("_errors", [])
        if isinstance(item, dict)
    ]
    for key, value in errors.items():
        if key != "_errors":
            found += _form_errors(value, f"{path}.{key}" if path else str(key))
    return found


def _describe(exc: aiohttp.ClientError) -> str:
    if isinstance(exc, aiohttp.ClientConnectorError):
        if isinstance(exc.os_error, ConnectionRefusedError):
            return "connection refused"
        return f"cannot connect to {exc.host}:{exc.port}: {exc.os_error.strerror or exc.os_error}"
    if isinstance(exc, aiohttp.ServerDisconnectedError):
        return "server disconnected"
    return f"{type(exc).__name__}: {exc}"


def _redact(text: str, url: str) -> str:
    """Hides the webhook token, a secret, from text headed for logs and the database."""
    if match := _TOKEN.search(url):
        text = text.replace(match[0], match[0].removesuffix(match[1]) + "<token>")
    return text
