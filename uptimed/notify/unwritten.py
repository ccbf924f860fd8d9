"""Alerts whose status change the database refused (a full or read-only disk): kept in memory,
sent from there, and handed to the outbox once the change is written.

Without this a site that went down while the disk was full got no alert until space was freed:
the alert's outbox row is written in the transition's transaction, which failed. Now the
monitor keeps the transition (``Monitor`` retries writing it) and puts its message here, one
entry per webhook of the site; the dispatcher delivers these after the outbox rows of the same
URL, with the same retries, through the same bookkeeping calls as the store's (``next_message``,
``is_pending``, ``mark_*``). Their ids are negative, so they cannot be mistaken for rows.

When the transition is finally written, its messages must be written too, and never sent twice:
``claim`` says which URLs already had a POST begun (their rows are written as delivered), and
holds back the others (written as pending, for the outbox to send); ``settle`` then forgets
them, or ``release`` gives them back if the write failed again. A delivered message is kept
until its transition is written, so that ``claim`` still knows it went out. What is only here is
lost if uptimed stops before the disk takes it; the log says so at a stop.
"""

from __future__ import annotations

import itertools
import json
from dataclasses import dataclass

from uptimed.models import OutboxMessage


@dataclass
class _Entry:
    message: OutboxMessage
    key: int  # the transition it tells about
    begun: bool = False  # a POST may have been made: never hand it to the outbox as pending
    claimed: bool = False  # being written to the outbox: not to be sent from here
    done: bool = False  # delivered or given up: kept until its transition is written


class UnwrittenAlerts:
    """The messages of transitions not yet written, per webhook URL, oldest first."""

    def __init__(self) -> None:
        self._entries: dict[int, _Entry] = {}  # message id (negative) -> entry, in order
        self._ids = itertools.count(-1, -1)
        self._keys = itertools.count(1)
        self._written: set[int] = set()  # keys written while a POST of theirs was still going

    def new_key(self) -> int:
        return next(self._keys)

    def add(
        self, key: int, site_id: int, targets: list[tuple[int, str]], payload: str, now: int
    ) -> None:
        """One message per ``(webhook id, url)`` of the site, for the transition ``key``."""
        for webhook_id, url in targets:
            message = OutboxMessage.model_construct(
                id=next(self._ids),
                url=url,
                payload=json.loads(payload),
                created_at=now,
                attempts=0,
                site_id=site_id,
                webhook_id=webhook_id,
            )
            self._entries[message.id] = _Entry(message, key)

    # --- what the monitor calls when it writes the transition at last ------------------------

    def claim(self, key: int) -> frozenset[str]:
        """The URLs of ``key`` that had a POST begun; the rest are held back from sending."""
        begun: set[str] = set()
        for entry in self._entries.values():
            if entry.key == key:
                if entry.begun or entry.done:
                    begun.add(entry.message.url)
                else:
                    entry.claimed = True
        return frozenset(begun)

    def settle(self, key: int) -> None:
        """``key`` is written: the outbox has the claimed messages now. Those with a POST
        begun stay until it ends (their rows say delivered already)."""
        mine = [(i, e) for i, e in self._entries.items() if e.key == key]
        for message_id, entry in mine:
            if entry.claimed or entry.done:
                del self._entries[message_id]
        if any(not (e.claimed or e.done) for _, e in mine):
            self._written.add(key)

    def release(self, key: int) -> None:
        """Writing ``key`` failed again: its claimed messages may be sent from here again."""
        for entry in self._entries.values():
            if entry.key == key:
                entry.claimed = False

    # --- the bookkeeping calls of the dispatcher, as the store has them (async alike) -----------

    async def pending_urls(self) -> list[str]:
        return list(
            dict.fromkeys(
                e.message.url for e in self._entries.values() if not (e.claimed or e.done)
            )
        )

    async def next_message(self, url: str) -> OutboxMessage | None:
        for entry in self._entries.values():
            if entry.message.url == url and not (entry.claimed or entry.done):
                return entry.message
        return None

    async def is_pending(self, message_id: int) -> bool:
        """Asked right before each POST: a True answer means a POST begins."""
        entry = self._entries.get(message_id)
        if entry is None or entry.claimed or entry.done:
            return False
        entry.begun = True
        return True

    async def mark_delivered(self, message: OutboxMessage, now: int) -> None:
        self._finish(message.id)

    async def mark_failed(self, message: OutboxMessage, now: int, error: str) -> None:
        self._finish(message.id)

    def _finish(self, message_id: int) -> None:
        """Done: forgotten if its transition is written already, else kept for ``claim``."""
        entry = self._entries.get(message_id)
        if entry is None:
            return
        entry.done = True
        if entry.key in self._written:
            del self._entries[message_id]
            if not any(e.key == entry.key for e in self._entries.values()):
                self._written.discard(entry.key)

    async def mark_attempt(self, message: OutboxMessage, now: int, error: str) -> None:
        """Nothing to keep: the dispatcher logs every failed attempt."""
