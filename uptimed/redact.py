"""Secrets out of what uptimed prints: URL userinfo and Discord webhook tokens become ``***``.

``redact`` is applied to every config error, and ``RedactSecrets`` to every log record, so a
password in ``DATABASE_URL`` or a webhook's token never lands in a terminal, journal or log
file. The one deliberate exception is the generated password, logged once at start (README);
it is neither userinfo nor a webhook token, so the filter leaves it alone.
"""

from __future__ import annotations

import logging
import re

MASK = "***"
# scheme://user:password@host -> scheme://***@host (the user name too: it is half a login).
_USERINFO = re.compile(r"(?P<scheme>[A-Za-z][A-Za-z0-9+.\-]*://)[^/?#@\s'\"]+@")
# .../webhooks/<id>/<token> -> .../webhooks/<id>/*** (Discord: the token is the credential).
_WEBHOOK_TOKEN = re.compile(r"(?P<head>/webhooks/\d+/)[^/?#\s'\"]+")
_SECRET_NAME = re.compile(r"passw(or)?d|token|secret|credential", re.IGNORECASE)


def redact(text: str) -> str:
    """``text`` with every URL userinfo and Discord webhook token replaced by ``***``."""
    text = _USERINFO.sub(rf"\g<scheme>{MASK}@", text)
    return _WEBHOOK_TOKEN.sub(rf"\g<head>{MASK}", text)


def is_secret_name(name: str) -> bool:
    """A setting whose value must never be shown, even redacted (``VALID_PASSWORD``, ...)."""
    return bool(_SECRET_NAME.search(name))


class RedactSecrets(logging.Filter):
    """A handler filter: formats the record's message (and traceback) once, redacted.

    On a handler rather than a logger, because a logger's filters do not see records that
    propagate from its children (``uptimed.notify.outbox``, ``aiohttp.client``, ...).
    """

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        clean = redact(message)
        if clean != message:
            record.msg, record.args = clean, None
        if record.exc_info and not record.exc_text:
            record.exc_text = logging.Formatter().formatException(record.exc_info)
        if record.exc_text:
            record.exc_text = redact(record.exc_text)
        return True


def install(logger: logging.Logger | None = None) -> None:
    """Put ``RedactSecrets`` on every handler of ``logger`` (the root logger by default)."""
    for handler in (logger or logging.getLogger()).handlers:
        if not any(isinstance(f, RedactSecrets) for f in handler.filters):
            handler.addFilter(RedactSecrets())
