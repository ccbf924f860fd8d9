"""The HTTP(S) probe: one request as the site asks for it, and its answer.

A site without body assertions has its body read and dropped up to ``BODY_CAP_BYTES``, so the
timing covers the whole answer at no cost beyond today's; a site with them keeps up to
``BODY_ASSERT_CAP`` and decodes it with the answer's charset (UTF-8 when there is none or
Python does not know it; undecodable bytes become U+FFFD).

An https answer carries the leaf certificate of its connection (``tls.py``), read whether or
not it was verified, when the session makes ``TlsResponse``s (as the app's check sessions do);
a plain http answer is one of the shared ``_BARE`` answers, as before.
"""

from __future__ import annotations

import codecs
import ssl
from functools import lru_cache

import aiohttp
from aiohttp.connector import Connection

from uptimed.checks.answer import Answer
from uptimed.checks.errors import MAX_REDIRECTS, Failure, LocalFault, local_fault, reason, transient
from uptimed.checks.tls import leaf_certificate
from uptimed.models import Certificate, Site

BODY_CAP_BYTES = 256 * 1024
BODY_ASSERT_CAP = 1024 * 1024
_CHUNK = 64 * 1024
# One answer per status code, made once: a plain check allocates no Answer of its own.
_BARE = {code: Answer(code) for code in range(100, 1000)}
_NO_CONTENT_TYPE = ("Content-Type",)


class TlsResponse(aiohttp.ClientResponse):
    """A response that reads its connection's leaf certificate as it starts.

    The probe cannot read it itself: a small answer is parsed whole inside ``start``, which
    hands the connection back to the pool (``resp.connection`` is None, and with
    ``force_close`` the transport is gone) before the probe sees the response. A session made
    with ``response_class=TlsResponse`` gives each hop of a request its own, so the final
    answer's is the certificate of the connection that gave it.
    """

    certificate: Certificate | None = None

    async def start(self, connection: Connection) -> aiohttp.ClientResponse:
        transport = connection.transport
        if transport is not None:  # a plain transport has no ssl_object: one dict lookup
            self.certificate = leaf_certificate(transport.get_extra_info("ssl_object"))
        return await super().start(connection)


async def probe(session: aiohttp.ClientSession, site: Site, timeout: float) -> Answer:
    """Send ``site``'s request; raise ``Failure`` or ``LocalFault`` when no answer came.

    An https answer carries its certificate when ``session`` makes ``TlsResponse``s."""
    body = site.body
    try:
        async with session.request(
            site.method,
            site.url,
            headers=site.headers or None,
            data=None if body is None else body.encode(),
            skip_auto_headers=None if body is None else _skipped(site.headers),
            timeout=_timeout(timeout),
            max_redirects=MAX_REDIRECTS + 1,  # aiohttp raises on reaching the count
            allow_redirects=site.follow_redirects,
            ssl=site.verify_tls,  # False: any certificate is accepted
        ) as resp:
            certificate = resp.certificate if isinstance(resp, TlsResponse) else None
            if (
                site.body_contains is None
                and site.body_not_contains is None
                and site.json_query is None
            ):
                # Read (and drop) the body, so timing covers the whole answer; stop at the cap.
                read = 0
                async for chunk in resp.content.iter_chunked(_CHUNK):
                    read += len(chunk)
                    if read >= BODY_CAP_BYTES:
                        break
                if certificate is None:
                    return _BARE.get(resp.status) or Answer(resp.status)
                return Answer(resp.status, None, certificate)
            text = _decode(await _read_capped(resp), resp.charset)
            return Answer(resp.status, text, certificate)
    except (TimeoutError, aiohttp.ClientConnectionError, aiohttp.ClientPayloadError) as e:
        raise transient(e, timeout) from e
    except (aiohttp.ClientError, ssl.SSLError, ValueError) as e:
        # Redirect loops, bad redirect targets, malformed answers: trying again won't help.
        raise Failure(reason(e, timeout), transient=False) from e
    except (OSError, MemoryError) as e:
        if local := local_fault(e):
            raise LocalFault(local) from e
        raise


async def _read_capped(resp: aiohttp.ClientResponse) -> bytes:
    """The body's first ``BODY_ASSERT_CAP`` bytes; the rest is never read."""
    data = bytearray()
    async for chunk in resp.content.iter_chunked(_CHUNK):
        data += chunk
        if len(data) >= BODY_ASSERT_CAP:
            del data[BODY_ASSERT_CAP:]
            break
    return bytes(data)


def _decode(data: bytes, charset: str | None) -> str:
    return data.decode(_codec(charset), errors="replace")


# The charsets a browser decodes (the WHATWG Encoding Standard's, as Python names them). Python
# knows more, and some are no charset a page would use but a trap: "punycode" decodes in
# quadratic time (1 MiB: some 40 s of the event loop), "idna", "utf-7", "unicode_escape",
# "base64" or "zlib" were never meant for bodies. Those bodies are read as UTF-8.
TEXT_CHARSETS = frozenset(
    codecs.lookup(name).name
    for name in (
        "utf-8", "utf-16", "utf-16-le", "utf-16-be", "utf-32", "ascii", "latin-1", "ibm866",
        "iso-8859-2", "iso-8859-3", "iso-8859-4", "iso-8859-5", "iso-8859-6", "iso-8859-7",
        "iso-8859-8", "iso-8859-10", "iso-8859-13", "iso-8859-14", "iso-8859-15", "iso-8859-16",
        "koi8-r", "koi8-u", "mac-roman", "mac-cyrillic", "cp874", "cp1250", "cp1251", "cp1252",
        "cp1253", "cp1254", "cp1255", "cp1256", "cp1257", "cp1258", "gbk", "gb18030", "big5",
        "euc-jp", "iso-2022-jp", "shift_jis", "euc-kr",
    )
)  # fmt: skip


@lru_cache(maxsize=64)
def _codec(charset: str | None) -> str:
    """The codec to decode a body with: its declared charset when it is a browser's, else
    UTF-8."""
    if charset:
        try:
            name = codecs.lookup(charset).name
        except (LookupError, ValueError):  # unknown, or not a name at all ("a\0b")
            return "utf-8"
        if name in TEXT_CHARSETS:
            return name
    return "utf-8"


def _skipped(headers: dict[str, str]) -> tuple[str, ...] | None:
    """Without a Content-Type among the site's headers, send none (aiohttp would add one)."""
    if any(name.lower() == "content-type" for name in headers):
        return None
    return _NO_CONTENT_TYPE


@lru_cache(maxsize=16)
def _timeout(total: float) -> aiohttp.ClientTimeout:
    return aiohttp.ClientTimeout(total=total)
