"""Alerts whose status change the database refused (a full or read-only disk): kept in memory,
sent from there, and handed to the outbox once the change is written.

Without this a site that went down while the disk was full got no alert until space was freed:
the alert's outbox row is written in the transition's transaction, which failed. Now the
monitor keeps the transition (``Monitor`` retries writing it) and puts its message here, one
entry per webhook of the site; the dispatcher delivers these after the outbox rows of the same
URL, with the same retries, through the same bookkeeping calls as the store's (``next_message``,
``is_pending``, ``mark_*``). Their ids are negative, so they cannot be mistaken for rows.

When the transition is finally written, its messages must be written too, and each sent once:
``claim`` says which URLs Discord accepted the message for, or is being POSTed to right now
(their rows are written as delivered), and holds back the others (written as pending, for the
outbox to send); ``settle`` then forgets them, or ``release`` gives them back if the write
failed again. A POST in flight at ``claim`` goes on from here and is forgotten when it ends.
What is only here is lost if uptimed stops before the disk takes it; the log says so.
"""

from __future__ import annotations

import itertools
from collections.abc import Sequence
from dataclasses import dataclass
from enum import Enum
from typing import TypeVar

from uptimed.models import Event, OutboxMessage

K = TypeVar("K", int, str)


class _State(Enum):
    QUEUED = "queued"  # to send from here (also between retries)
    POSTING = "posting"  # a POST has begun and has not failed yet
    DELIVERED = "delivered"
    FAILED = "failed"  # given up on: the outbox takes it over once written
    CLAIMED = "claimed"  # being written to the outbox as pending: not to be sent from here


@dataclass(eq=False)
class _Entry:
    message: OutboxMessage
    key: int  # the transition it tells about
    state: _State = _State.QUEUED
    written: bool = False  # its transition is written: forget it when its POST ends


class UnwrittenAlerts:
    """The messages of transitions not yet written, per webhook URL, oldest first."""

    def __init__(self) -> None:
        self._by_id: dict[int, _Entry] = {}  # message id (negative) -> entry
        self._by_key: dict[int, list[_Entry]] = {}
        self._by_url: dict[str, list[_Entry]] = {}  # in the order they came
        self._ids = itertools.count(-1, -1)
        self._keys = itertools.count(1)

    def new_key(self) -> int:
        return next(self._keys)

    def add(
        self, key: int, site_id: int, targets: list[tuple[int, str]], event: str, now: int
    ) -> None:
        """One message per ``(webhook id, url)`` of the site, for the transition ``key``."""
        told = Event.model_validate_json(event)
        for webhook_id, url in targets:
            message = OutboxMessage.model_construct(
                id=next(self._ids),
                url=url,
                event=told,
                payload=None,
                created_at=now,
                attempts=0,
                site_id=site_id,
                webhook_id=webhook_id,
            )
            entry = _Entry(message, key)
            self._by_id[message.id] = entry
            self._by_key.setdefault(key, []).append(entry)
            self._by_url.setdefault(url, []).append(entry)

    # --- what the monitor calls when it writes the transition at last ------------------------

    def claim(self, key: int) -> frozenset[str]:
        """The URLs of ``key`` delivered or being POSTed to; the rest are held back."""
        sent: set[str] = set()
        for entry in self._by_key.get(key, ()):
            if entry.state in (_State.POSTING, _State.DELIVERED):
                sent.add(entry.message.url)
            else:
                entry.state = _State.CLAIMED
        return frozenset(sent)

    def settle(self, key: int) -> None:
        """``key`` is written: the outbox has its messages now, but for a POST still going."""
        for entry in list(self._by_key.get(key, ())):
            if entry.state is _State.POSTING:
                entry.written = True
            else:
                self._forget(entry)

    def release(self, key: int) -> None:
        """Writing ``key`` failed again: its claimed messages may be sent from here again."""
        for entry in self._by_key.get(key, ()):
            if entry.state is _State.CLAIMED:
                entry.state = _State.QUEUED

    def _forget(self, entry: _Entry) -> None:
        del self._by_id[entry.message.id]
        _remove(self._by_key, entry.key, entry)
        _remove(self._by_url, entry.message.url, entry)

    # --- the bookkeeping calls of the dispatcher, as the store has them (async alike) -----------

    async def pending_urls(self) -> list[str]:
        return [url for url in self._by_url if await self.next_message(url) is not None]

    async def next_message(self, url: str) -> OutboxMessage | None:
        for entry in self._by_url.get(url, ()):
            if entry.state in (_State.QUEUED, _State.POSTING):
                return entry.message
        return None

    # Messages from here are sent one at a time: these calls get a list of one.

    async def is_pending(self, messages: Sequence[OutboxMessage]) -> bool:
        """Asked right before each POST: a True answer means a POST begins."""
        (message,) = messages
        entry = self._by_id.get(message.id)
        if entry is None or entry.state not in (_State.QUEUED, _State.POSTING):
            return False
        entry.state = _State.POSTING
        return True

    async def mark_attempt(self, messages: Sequence[OutboxMessage], now: int, error: str) -> None:
        """The POST failed and will be retried: not sent, so the outbox may take it over."""
        for message in messages:
            self._end(message.id, _State.QUEUED)

    async def mark_delivered(self, messages: Sequence[OutboxMessage], now: int) -> None:
        for message in messages:
            self._end(message.id, _State.DELIVERED)

    async def mark_failed(
        self, messages: Sequence[OutboxMessage], now: int, error: str, *, disable: bool = False
    ) -> None:
        for message in messages:
            self._end(message.id, _State.FAILED)

    def _end(self, message_id: int, state: _State) -> None:
        entry = self._by_id.get(message_id)
        if entry is None or entry.state is _State.CLAIMED:
            return
        if entry.written and state is not _State.QUEUED:
            self._forget(entry)  # its row says delivered already
        else:
            entry.state = state


def _remove(index: dict[K, list[_Entry]], key: K, entry: _Entry) -> None:
    entries = index[key]
    entries.remove(entry)
    if not entries:
        del index[key]
