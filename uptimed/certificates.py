"""Certificate expiry: what each site's TLS checks see, and one warning per threshold.

A check that opened TLS hands its leaf certificate here. A certificate other than the one
stored is written (a renewal, another ``expires_at``, starts its warnings afresh); when its
days left reach one of the site's ``tls_expiry_warn_days``, its webhooks get one message, in
the transaction that notes the threshold warned of, so a restart sends nothing twice. Writes
happen only then: an unchanged certificate costs a comparison per check.
"""

from __future__ import annotations

import logging
import sqlite3
import time
from collections.abc import Callable

from uptimed.alerting import certificate_event, warning_due
from uptimed.db import Store
from uptimed.models import Certificate, Site

log = logging.getLogger(__name__)


class CertificateWatch:
    def __init__(
        self,
        store: Store,
        *,
        clock: Callable[[], float] = time.time,
        on_message: Callable[[], None] = lambda: None,
    ) -> None:
        self._store = store
        self._clock = clock
        self._on_message = on_message
        self._known: dict[int, tuple[Certificate, int | None]] = {}  # site -> (cert, warned)

    async def restore(self) -> None:
        """The stored certificates and warnings (before the first check, at start-up)."""
        for site_id, known in (await self._store.certificates()).items():
            self._known.setdefault(site_id, known)

    def expires_at(self, site_id: int) -> int | None:
        """The expiry (epoch ms) of the certificate the site's checks last saw (/metrics)."""
        known = self._known.get(site_id)
        return None if known is None else known[0].expires_at

    def forget(self, site_id: int) -> None:
        self._known.pop(site_id, None)

    async def seen(self, site: Site, certificate: Certificate, *, muted: bool) -> bool:
        """A check of ``site`` saw ``certificate``; False when a warning is due but alerts are
        muted (or it could not be saved): it is not noted as warned, and comes with the first
        check after the mute."""
        known, warned = self._known.get(site.id, (None, None))
        if known is not None and known.expires_at != certificate.expires_at:
            warned = None  # a renewed certificate: its thresholds start afresh
        now = int(self._clock() * 1000)
        days = certificate.days_left(now)
        due = warning_due(days, site.tls_expiry_warn_days, warned)
        held = muted and due is not None
        if held:
            due = None
        if due is None and certificate == known:
            return not held
        message = None
        if due is not None:
            warned = due
            message = certificate_event(site, certificate, days, now).model_dump_json()
        try:
            await self._store.save_certificate(
                site.id, certificate, warned, message=message, now=now
            )
        except sqlite3.OperationalError as e:  # a full disk, a lock: the next check tries again
            log.warning("certificate not saved site=%d: %s", site.id, e)
            return False
        self._known[site.id] = (certificate, warned)
        if message is not None:
            self._on_message()
        return not held
