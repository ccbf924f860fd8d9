"""What is told with time rather than with a check: reminders of an outage, the state a mute
kept quiet once it ends, and the certificate a site's TLS checks see (with the warnings sent
for it). Due times are read from here, never kept in timers, so a restart neither skips nor
doubles a message."""

from __future__ import annotations

from dataclasses import dataclass

from uptimed.db.connection import Connection
from uptimed.db.outbox import queue_messages
from uptimed.db.sites import SITE_COLUMNS, site_from_row
from uptimed.models import Certificate, Site, SiteState, Status

_S_COLUMNS = ", ".join(f"s.{c}" for c in SITE_COLUMNS.split(", "))
# The reason of the site's latest check: a reminder says why it is down now.
_LATEST_REASON = (
    "(SELECT h.reason FROM history h WHERE h.site_id = s.id ORDER BY h.checked_at DESC LIMIT 1)"
)
_UNMUTED = "(s.alerts_muted_until IS NULL OR s.alerts_muted_until <= :now)"


@dataclass(frozen=True)
class DueReminder:
    site: Site
    incident_id: int
    down_since: int
    reason: str | None
    last: int  # the incident's start or last reminder, as read: the write checks it is still


@dataclass(frozen=True)
class Untold:
    """A site whose webhooks were last told another status than its own (a mute ended)."""

    site: Site
    state: SiteState


class AlertQueries(Connection):
    async def due_reminders(
        self, now: int, *, after: int = 0, limit: int = 500
    ) -> list[DueReminder]:
        """Open incidents of DOWN sites whose next reminder is due at ``now``: one period
        after the later of the incident's start and its last reminder. Sites paused, muted or
        whose webhooks were not told of the outage (a mute ends first) are left out. At most
        ``limit``, in incident order from after ``after`` (a storm is read a page at a time)."""
        rows = await self._reader.execute_fetchall(
            f"SELECT {_S_COLUMNS}, i.id AS incident_id, i.started_at,"
            " coalesce(i.reminded_at, i.started_at) AS last,"
            f" coalesce({_LATEST_REASON}, i.reason) AS reason"
            " FROM incidents i JOIN sites s ON s.id = i.site_id"
            " WHERE i.ended_at IS NULL AND s.renotify_every_seconds IS NOT NULL"
            " AND s.paused = 0 AND s.status = 'DOWN' AND s.told_status = 'DOWN'"
            f" AND {_UNMUTED}"
            " AND coalesce(i.reminded_at, i.started_at) + s.renotify_every_seconds * 1000 <= :now"
            " AND i.id > :after ORDER BY i.id LIMIT :limit",
            {"now": now, "after": after, "limit": limit},
        )
        return [
            DueReminder(
                site_from_row(row),
                row["incident_id"],
                row["started_at"],
                row["reason"],
                row["last"],
            )
            for row in rows
        ]

    async def record_reminder(self, reminder: DueReminder, message: str, now: int) -> bool:
        """Queue a reminder and mark it sent, in one transaction; False (nothing queued) when
        the outage ended or was reminded of since it was read (two runs at once send one)."""
        async with self.transaction() as db:
            cur = await db.execute(
                "UPDATE incidents SET reminded_at = :now WHERE id = :id AND ended_at IS NULL"
                " AND coalesce(reminded_at, started_at) = :last",
                {"now": now, "id": reminder.incident_id, "last": reminder.last},
            )
            if cur.rowcount == 0:
                return False
            await queue_messages(db, reminder.site.id, message, now)
        return True

    async def untold(self, now: int, *, after: int = 0, limit: int = 500) -> list[Untold]:
        """Unmuted, unpaused sites whose status differs from the last one told (index
        ``sites_untold``: only sites a mute kept quiet are read); at most ``limit``, in id
        order from after ``after``."""
        rows = await self._reader.execute_fetchall(
            f"SELECT {_S_COLUMNS}, s.status, s.status_since,"
            " (SELECT reason FROM incidents i WHERE i.site_id = s.id AND i.ended_at IS NULL)"
            " AS open_reason FROM sites s INDEXED BY sites_untold"
            " WHERE s.told_status <> s.status AND s.status <> 'INITIAL' AND s.paused = 0"
            f" AND {_UNMUTED} AND s.id > :after ORDER BY s.id LIMIT :limit",
            {"now": now, "after": after, "limit": limit},
        )
        return [
            Untold(
                site_from_row(row),
                SiteState(Status(row["status"]), row["status_since"], row["open_reason"]),
            )
            for row in rows
        ]

    async def record_told(self, untold: Untold, message: str, now: int) -> bool:
        """Queue the message telling the current status, and note it told; False when the
        status changed meanwhile (a transition tells it then) or was told already. An outage
        told here is reminded of one period from now, not at once."""
        async with self.transaction() as db:
            cur = await db.execute(
                "UPDATE sites SET told_status = status"
                " WHERE id = ? AND status = ? AND status_since = ? AND told_status <> status",
                (untold.site.id, untold.state.status, untold.state.since),
            )
            if cur.rowcount == 0:
                return False
            await db.execute(
                "UPDATE incidents SET reminded_at = ? WHERE site_id = ? AND ended_at IS NULL",
                (now, untold.site.id),
            )
            await queue_messages(db, untold.site.id, message, now)
        return True

    async def certificates(self) -> dict[int, tuple[Certificate, int | None]]:
        """Each site's stored certificate and the lowest warning threshold sent for it."""
        rows = await self._reader.execute_fetchall(
            "SELECT id, tls_subject, tls_issuer, tls_expires_at, tls_warned_days FROM sites"
            " WHERE tls_expires_at IS NOT NULL"
        )
        return {row[0]: (Certificate(row[1], row[2], row[3]), row[4]) for row in rows}

    async def save_certificate(
        self,
        site_id: int,
        certificate: Certificate,
        warned: int | None,
        *,
        message: str | None = None,
        now: int = 0,
    ) -> None:
        """Store the certificate a check saw and the lowest threshold warned of for it, with
        the warning's message (if any) in the same transaction."""
        async with self.transaction() as db:
            cur = await db.execute(
                "UPDATE sites SET tls_subject = ?, tls_issuer = ?, tls_expires_at = ?,"
                " tls_warned_days = ? WHERE id = ?",
                (certificate.subject, certificate.issuer, certificate.expires_at, warned, site_id),
            )
            if cur.rowcount and message is not None:
                await queue_messages(db, site_id, message, now)
