"""Alerts of status changes the database refused: what is sent from memory, and what the outbox
is handed once the change is written, so that each webhook gets the alert exactly once."""

from __future__ import annotations

from tests.conftest import told
from uptimed.notify.unwritten import UnwrittenAlerts

A, B, C = "http://a/h", "http://b/h", "http://c/h"
PAYLOAD = told("down")


def alerts(*urls: str) -> tuple[UnwrittenAlerts, int]:
    memory = UnwrittenAlerts()
    key = memory.new_key()
    memory.add(key, 7, [(i, url) for i, url in enumerate(urls, 1)], PAYLOAD, now=1)
    return memory, key


async def test_each_webhook_gets_a_message_sent_like_an_outbox_row() -> None:
    memory, _ = alerts(A, B)
    assert await memory.pending_urls() == [A, B]
    message = await memory.next_message(A)
    assert message is not None and message.id < 0  # never an outbox row's id
    assert (message.site_id, message.webhook_id, message.event.site_name) == (7, 1, "down")
    assert await memory.is_pending([message])
    await memory.mark_delivered([message], now=2)
    assert await memory.next_message(A) is None and await memory.pending_urls() == [B]


async def test_written_change_hands_over_what_was_not_sent_and_marks_what_was() -> None:
    memory, key = alerts(A, B, C)
    delivered = await memory.next_message(A)
    assert delivered is not None and await memory.is_pending([delivered])
    await memory.mark_delivered([delivered], now=2)
    posting = await memory.next_message(B)
    assert posting is not None and await memory.is_pending([posting])  # its POST has begun

    sent = memory.claim(key)
    assert sent == {A, B}  # written as delivered: the outbox must not send them again
    assert await memory.next_message(C) is None  # held back: the outbox row will send it
    memory.settle(key)
    assert await memory.pending_urls() == [B]  # the POST in flight goes on from memory ...
    await memory.mark_delivered([posting], now=3)
    assert await memory.pending_urls() == []  # ... and is forgotten when it ends
    assert memory.claim(key) == frozenset()


async def test_a_write_that_fails_again_gives_the_messages_back() -> None:
    memory, key = alerts(A)
    assert memory.claim(key) == frozenset()
    assert await memory.next_message(A) is None
    memory.release(key)
    message = await memory.next_message(A)
    assert message is not None and await memory.is_pending([message])
    assert memory.claim(key) == {A}  # now a POST has begun


async def test_a_claimed_message_is_not_posted_by_a_waiting_worker() -> None:
    memory, key = alerts(A)
    message = await memory.next_message(A)
    assert message is not None
    memory.claim(key)  # the worker had it, but had not asked yet
    assert not await memory.is_pending([message])


async def test_a_post_that_failed_is_not_counted_as_sent() -> None:
    """A 5xx or 429 before the change is written: the outbox gets the message as pending."""
    memory, key = alerts(A, B)
    retried = await memory.next_message(A)
    assert retried is not None and await memory.is_pending([retried])
    await memory.mark_attempt([retried], now=2, error="Discord answered 503")
    given_up = await memory.next_message(B)
    assert given_up is not None and await memory.is_pending([given_up])
    await memory.mark_failed([given_up], now=3, error="Discord answered 404")
    assert memory.claim(key) == frozenset()  # neither was accepted: both go to the outbox
    assert not await memory.is_pending([retried])  # and the waiting retry stops here
    memory.settle(key)
    assert await memory.pending_urls() == []


async def test_a_post_in_flight_at_the_write_that_then_fails_is_retried_from_memory() -> None:
    memory, key = alerts(A)
    message = await memory.next_message(A)
    assert message is not None and await memory.is_pending([message])
    assert memory.claim(key) == {A}  # its row is written as delivered ...
    memory.settle(key)
    await memory.mark_attempt([message], now=2, error="timeout")
    assert await memory.next_message(A) == message  # ... so it must go on from here
    assert await memory.is_pending([message])
    await memory.mark_delivered([message], now=3)
    assert await memory.pending_urls() == [] and await memory.next_message(A) is None
