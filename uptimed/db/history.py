"""History: a row per check, and incidents. Two writers, as the daemon has them: a batch of
checks that changed no status (``write_checks``, from ``batching``), and a transition with its
incident and its messages in one transaction (``record_transition``, from ``monitor``). Each
statement is written once, here."""

from __future__ import annotations

from collections.abc import Iterable

from uptimed.db.connection import Connection
from uptimed.db.outbox import queue_messages
from uptimed.db.schema import STATUS_CODES
from uptimed.models import CheckResult, SiteState, Status, Transition

# (site_id, status code, response_time_ms, checked_at, reason, status_since). A row of a site
# deleted meanwhile is dropped, and so is a second row at the same (site, time) key.
INSERT_HISTORY = (
    "INSERT OR IGNORE INTO history"
    " (site_id, status, response_time_ms, checked_at, reason, status_since)"
    " SELECT ?1, ?2, ?3, ?4, ?5, ?6 WHERE EXISTS (SELECT 1 FROM sites WHERE id = ?1)"
)
HistoryValues = tuple[int, int, int, int, str | None, int]


def history_values(site_id: int, result: CheckResult, state: SiteState) -> HistoryValues:
    """The parameters of ``INSERT_HISTORY`` for a check; ``state`` is the status after it."""
    return (
        site_id,
        STATUS_CODES[result.status],
        result.response_time_ms,
        result.checked_at,
        result.reason,
        state.since,
    )


# OPTIMISATION=1: (response_time_ms, checked_at, reason, site_id) on the site's latest row.
UPDATE_LATEST = (
    "UPDATE history SET response_time_ms = ?1, checked_at = ?2, reason = ?3"
    " WHERE site_id = ?4 AND checked_at = (SELECT max(checked_at) FROM history WHERE site_id = ?4)"
)
COUNT_FAILED = (
    "UPDATE incidents SET checks_failed = checks_failed + 1 WHERE site_id = ? AND ended_at IS NULL"
)


class HistoryQueries(Connection):
    async def record_transition(
        self,
        site_id: int,
        result: CheckResult,
        state: SiteState,
        transition: Transition,
        *,
        message: str | None = None,
        sent: Iterable[str] = (),
        now: int = 0,
    ) -> bool:
        """Write the check that changed a status, its incident and its messages in one
        transaction; False, writing nothing, when the site was deleted or paused meanwhile.

        ``state`` is the status after the check. A DOWN transition opens an incident, an UP
        one closes it. ``message`` (the event as JSON; None while alerts are muted) is queued in
        the outbox for each webhook of the site; ``sent``: webhook URLs it already went to
        from memory (the transition could not be written then, see ``notify.unwritten``),
        written as delivered at ``now``.
        """
        async with self.transaction() as db:
            # A site paused meanwhile changes no more: its webhooks were told it is paused.
            # told_status: the status its webhooks were last told (not when a mute held the
            # message back: they are told when it ends).
            cur = await db.execute(
                "UPDATE sites SET status = ?1, status_since = ?2, last_checked = ?3,"
                " told_status = CASE WHEN ?5 THEN ?1 ELSE told_status END"
                " WHERE id = ?4 AND paused = 0",
                (state.status, state.since, result.checked_at, site_id, message is not None),
            )
            if cur.rowcount == 0:
                return False
            await db.execute(INSERT_HISTORY, history_values(site_id, result, state))
            if transition.current is Status.DOWN:
                await db.execute(
                    "INSERT INTO incidents (site_id, started_at, reason, checks_failed)"
                    " VALUES (?, ?, ?, ?)",
                    (site_id, result.checked_at, result.reason, transition.checks),
                )
            else:
                await db.execute(
                    "UPDATE incidents SET ended_at = ? WHERE site_id = ? AND ended_at IS NULL",
                    (result.checked_at, site_id),
                )
            if message is not None:
                await queue_messages(db, site_id, message, result.checked_at, sent, now)
        return True

    async def write_checks(
        self,
        rows: list[HistoryValues],
        in_place: list[tuple[int, int, str | None, int]],
        failed: list[int],
    ) -> None:
        """Write a batch of checks that changed no status, in one transaction.

        ``rows`` are new history rows (``INSERT_HISTORY``); ``in_place`` updates the latest
        row of a site instead (``UPDATE_LATEST``, ``OPTIMISATION=1``); ``failed`` holds a site
        id per DOWN check, counted in its open incident.
        """
        async with self.transaction() as db:
            if rows:
                await db.executemany(INSERT_HISTORY, rows)
            if in_place:
                await db.executemany(UPDATE_LATEST, in_place)
            if failed:
                await db.executemany(COUNT_FAILED, [(site_id,) for site_id in failed])
