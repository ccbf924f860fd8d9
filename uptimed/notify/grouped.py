"""Several events to one webhook in as few Discord messages as fit: a storm is a few messages.

One event is today's message (``discord.build_payload``). Several share one: a title that
counts them ("🔴 37 sites DOWN · 🟢 2 UP"), then a line per event in event order (the order in
which they were queued, so a site's recovery line always follows its outage line), each naming
the site (a link to it) and what happened; the footer's time is the last event's. Lines are
kept short on purpose: a message holds 6,000 characters, and every character a line saves is
more sites per message in a storm. Lines fill embed descriptions (at most
``DESCRIPTION_MAX`` each), embeds fill a message (at most ``EMBEDS_MAX``, and ``TOTAL_MAX``
characters across them), and a group that does not fit one message is split into as few as
hold every line: nothing is ever cut to "and N more". A message of a split group says which
part it is in its title.

Every part of a line has a bound (``NAME_MAX``, ``REASON_MAX``; a link only for URLs up to
``LINK_MAX``), so a line is at most a few hundred characters and a message holds dozens.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from typing import Any

from uptimed.models import Event, EventKind, Status, iso_ms
from uptimed.notify.discord import (
    FOOTER,
    GREEN,
    GREY,
    ORANGE,
    RED,
    TITLE_MAX,
    USERNAME,
    _embed_url,
    _expiry_phrase,
    _text,
    _u16,
    _url_text,
    build_payload,
    format_duration,
)

DESCRIPTION_MAX = 4096
EMBEDS_MAX = 10
TOTAL_MAX = 6000  # title, descriptions and footer across the embeds of one message
NAME_MAX = 100
REASON_MAX = 150
LINK_MAX = 300  # a longer site URL is not linked: one line must not take a tenth of a message

# What the title counts, in this order: (emoji, what).
_DOWN, _UP, _CERT, _PAUSED, _RESUMED, _ENDED, _OFFLINE = (
    ("🔴", "DOWN"),
    ("🟢", "UP"),
    ("🟠", "certificate warning"),
    ("⏸️", "paused"),
    ("▶️", "resumed"),
    ("⚪", "removed"),
    ("📡", "offline"),
)
_ORDER = (_DOWN, _UP, _CERT, _PAUSED, _RESUMED, _ENDED, _OFFLINE)


def render(events: Sequence[Event]) -> list[tuple[dict[str, Any], int]]:
    """The messages for ``events`` in order, each with how many of them (the next ones) it
    holds."""
    if len(events) == 1:
        return [(build_payload(events[0]), 1)]
    lines = [_line(event) for event in events]
    room = TOTAL_MAX - _title_bound(events) - len(FOOTER)
    parts = _pack([_u16(line) for line in lines], room)
    messages = []
    start = 0
    for number, embeds in enumerate(parts, 1):
        count = sum(embeds)
        chunk = events[start : start + count]
        label = f" ({number} of {len(parts)})" if len(parts) > 1 else ""
        payload = _message(chunk, lines[start : start + count], embeds, label)
        messages.append((payload, count))
        start += count
    return messages


def _title_bound(events: Sequence[Event]) -> int:
    """The longest title any part of these events can have: every category present, with
    counts and a part label of as many digits as the whole group has."""
    digits = len(str(len(events)))
    present = {_category(event) for event in events}
    parts = [
        f"{emoji} {'9' * digits} sites {what}" for emoji, what in _ORDER if (emoji, what) in present
    ]
    label = f" ({'9' * digits} of {'9' * digits})"
    return min(TITLE_MAX, _u16(" · ".join(parts) + label))


def _pack(sizes: list[int], room: int) -> list[list[int]]:
    """Lines (by size) into messages of embeds, at most ``room`` characters of lines in one
    message: each message is a list of line counts."""
    messages: list[list[int]] = []
    embeds: list[int] = []
    used = described = count = 0  # the message's lines so far; this embed's; its line count
    for size in sizes:
        fits_embed = count == 0 or described + 1 + size <= DESCRIPTION_MAX
        fits_message = used + (1 if count else 0) + size <= room
        if count and fits_embed and fits_message:
            described, used, count = described + 1 + size, used + 1 + size, count + 1
            continue
        if count and fits_message and len(embeds) + 1 < EMBEDS_MAX:
            embeds.append(count)  # a new embed in this message
        elif count:
            messages.append([*embeds, count])  # a new message
            embeds, used = [], 0
        described, count = size, 1
        used += size
    if count:
        messages.append([*embeds, count])
    return messages


def _message(
    events: Sequence[Event], lines: list[str], embeds: list[int], label: str
) -> dict[str, Any]:
    counts = Counter(_category(event) for event in events)
    color = RED if counts[_DOWN] else ORANGE if counts[_CERT] else GREEN if counts[_UP] else GREY
    parts, first = [], True
    for category in _ORDER:
        if n := counts[category]:
            emoji, what = category
            noun = f" site{'s' if n != 1 else ''}" if first else ""
            if category is _CERT and n != 1:
                what += "s"
            parts.append(f"{emoji} {n}{noun} {what}")
            first = False
    out: list[dict[str, Any]] = []
    start = 0
    for count in embeds:
        out.append({"description": "\n".join(lines[start : start + count]), "color": color})
        start += count
    out[0]["title"] = " · ".join(parts) + label
    out[-1]["footer"] = {"text": FOOTER}
    out[-1]["timestamp"] = iso_ms(events[-1].at)
    return {"username": USERNAME, "embeds": out, "allowed_mentions": {"parse": []}}


def _category(event: Event) -> tuple[str, str]:
    match event.kind:
        case EventKind.DOWN | EventKind.REMINDER:
            return _DOWN
        case EventKind.UP:
            return _UP
        case EventKind.CERTIFICATE:
            return _CERT
        case EventKind.PAUSED:
            return _PAUSED
        case EventKind.RESUMED:
            return _RESUMED
        case EventKind.OFFLINE:
            return _OFFLINE
        case EventKind.STARTED | EventKind.UNMUTED if event.status is Status.DOWN:
            return _DOWN
        case EventKind.STARTED | EventKind.UNMUTED if event.status is Status.UP:
            return _UP
        case _:
            return _ENDED


def _line(event: Event) -> str:
    """One event in one line: emoji, the site (linked), what happened, when."""
    if event.kind is EventKind.OFFLINE:
        since = event.down_since if event.down_since is not None else event.at
        return (
            f"📡 uptimed was offline from <t:{since // 1000}:f> to <t:{event.at // 1000}:T>"
            f" ({format_duration(event.at - since)}) and could not check {event.checks}"
            f" site{'s' if event.checks != 1 else ''}"
        )
    return f"{_category(event)[0]} {_site(event)} — {_what(event)}"


def _site(event: Event) -> str:
    name = _text(event.site_name, NAME_MAX, "(unnamed site)", start=False)
    link = _embed_url(event.site_url)
    if link is not None and len(link) <= LINK_MAX:
        # A parenthesis would end the link early; percent-encoded it means the same to a server.
        return f"[{name}]({link.replace('(', '%28').replace(')', '%29')})"
    if link is None and len(event.site_url) <= LINK_MAX:  # tcp://host:port: shown, not linked
        return f"{name} ({_url_text(event.site_url)})"
    return name


def _what(event: Event) -> str:
    reason = _text(event.reason, REASON_MAX, "unknown", start=False)
    since = event.down_since if event.down_since is not None else event.at
    match event.kind, event.status:
        case EventKind.DOWN, _:
            return reason
        case EventKind.UP, _:
            return f"UP after {format_duration(event.at - since)}"
        case EventKind.REMINDER, _:
            return f"still DOWN after {format_duration(event.at - since)}: {reason}"
        case EventKind.CERTIFICATE, _:
            return f"certificate {_expiry_phrase(event.days_left or 0)}"
        case EventKind.PAUSED, _:
            return "monitoring paused"
        case EventKind.RESUMED, _:
            return "monitoring resumed"
        case EventKind.ENDED, _:
            return "monitoring ended: the site was removed"
        case (EventKind.STARTED | EventKind.UNMUTED) as kind, Status.DOWN:
            return f"{_begun(kind)}: DOWN: {reason}"
        case (EventKind.STARTED | EventKind.UNMUTED) as kind, Status.UP:
            return f"{_begun(kind)}: UP"
        case kind, _:
            return _begun(kind)


def _begun(kind: EventKind) -> str:
    return "alerts unmuted" if kind is EventKind.UNMUTED else "monitoring started"
