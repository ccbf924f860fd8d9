"""The leaf certificate of a TLS connection, as a check reports it.

It is read in DER form (``getpeercert(binary_form=True)``), the one form ``ssl`` gives also when
verification is off, and parsed with ``cryptography``. A site's certificate changes a few times a
year while it is checked thousands of times, so the parse is cached by the DER bytes: a check of
an unchanged certificate costs a hash and a dict lookup.
"""

from __future__ import annotations

import ssl
from functools import lru_cache

from cryptography import x509

from uptimed.models import Certificate

CACHED_CERTIFICATES = 4096  # distinct leaves kept parsed: a few KiB each


def leaf_certificate(ssl_object: ssl.SSLObject | ssl.SSLSocket | None) -> Certificate | None:
    """The peer's leaf certificate; None without TLS, without a certificate, or when it does
    not parse (a certificate we cannot read must not turn an answer into an error)."""
    if ssl_object is None:
        return None
    try:
        der = ssl_object.getpeercert(binary_form=True)
    except ValueError:  # the handshake is not done
        return None
    return None if not der else parse_certificate(der)


@lru_cache(maxsize=CACHED_CERTIFICATES)
def parse_certificate(der: bytes) -> Certificate | None:
    """``der`` as a ``Certificate``: RFC 4514 subject and issuer, notAfter in epoch ms."""
    try:
        cert = x509.load_der_x509_certificate(der)
        return Certificate(
            subject=cert.subject.rfc4514_string(),
            issuer=cert.issuer.rfc4514_string(),
            # Certificate times are whole seconds: exact in ms, no float rounding.
            expires_at=int(cert.not_valid_after_utc.timestamp()) * 1000,
        )
    except Exception:  # any malformed field, in any of cryptography's parsers: no certificate
        return None
