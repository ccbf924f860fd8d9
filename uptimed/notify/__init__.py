"""The notifier seam: one ``send`` per provider, and an error that carries its retry policy.

A notifier POSTs one payload once and classifies the answer. It never retries, sleeps or
opens a ``ClientSession``: the caller owns the session (made in a cleanup context), the
tenacity loop and the outbox bookkeeping, so a 2xx is never sent twice.

Exceptions::

    NotifyError                  the only exception ``send`` raises for a failed delivery
      permanent=True             3xx, 400, 401, 403, 404, other 4xx, an unusable URL:
                                 resending the same thing cannot succeed, so do not retry;
                                 record ``str(err)`` and disable the webhook
      permanent=False            429 (wait ``retry_after`` seconds; ``is_global`` means the
                                 whole IP is limited, not just this webhook), 5xx, timeouts,
                                 refused or dropped connections: retry with backoff

Anything else (e.g. ``TypeError`` from a payload that is not JSON) is a bug and propagates.
Messages never contain the webhook URL, because its token is a secret.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Protocol

if TYPE_CHECKING:
    import aiohttp

DEFAULT_TIMEOUT = 10.0  # seconds for the whole POST, connect to last byte


class NotifyError(Exception):
    """A delivery failed; the attributes tell the caller whether and when to try again."""

    def __init__(
        self,
        message: str,
        *,
        permanent: bool,
        retry_after: float | None = None,
        is_global: bool = False,
        status: int | None = None,
    ) -> None:
        super().__init__(message)
        self.message = message
        self.permanent = permanent
        self.retry_after = retry_after  # seconds, already converted from Discord's units
        self.is_global = is_global
        self.status = status  # HTTP status, None when no response arrived

    def __repr__(self) -> str:
        return (
            f"NotifyError({self.message!r}, permanent={self.permanent}, "
            f"retry_after={self.retry_after}, is_global={self.is_global}, status={self.status})"
        )


@dataclass(frozen=True, slots=True)
class Delivery:
    """A 2xx answer plus the rate-limit hint, so the caller can pause *before* a 429.

    ``remaining`` requests are left in the current bucket, which refills in ``reset_after``
    seconds; both are None when the provider does not say.
    """

    status: int
    remaining: int | None = None
    reset_after: float | None = None


class Notifier(Protocol):
    """One transport. Returns a ``Delivery`` on 2xx, raises ``NotifyError`` otherwise."""

    async def send(
        self,
        session: aiohttp.ClientSession,
        url: str,
        payload: dict[str, Any],
        *,
        timeout: float = DEFAULT_TIMEOUT,
    ) -> Delivery: ...


# Imported last: discord.py needs NotifyError and Delivery from this module.
from uptimed.notify.discord import DiscordNotifier  # noqa: E402

NOTIFIERS: dict[str, type[Notifier]] = {"discord": DiscordNotifier}

__all__ = ["DEFAULT_TIMEOUT", "NOTIFIERS", "Delivery", "DiscordNotifier", "Notifier", "NotifyError"]
