"""What a probe hands back, and the one signature every kind of check implements."""

from __future__ import annotations

from typing import NamedTuple, Protocol

import aiohttp

from uptimed.models import Certificate, Site


class Answer(NamedTuple):
    """The site answered: its final status code (None for a TCP connection, which has none)
    and, when the site asserts on it, its body decoded to text (None otherwise: a body nobody
    looks into is read and dropped); ``certificate`` when the answer came over TLS."""

    status: int | None
    text: str | None = None
    certificate: Certificate | None = None


class Probe(Protocol):
    """One try at ``site``: an ``Answer``, or ``errors.Failure`` / ``errors.LocalFault``.

    ``timeout`` is the site's effective one, in seconds; a probe never retries by itself."""

    async def __call__(
        self, session: aiohttp.ClientSession, site: Site, timeout: float
    ) -> Answer: ...
