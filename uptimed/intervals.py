"""Time spans and how much of them lie together: pure arithmetic for /uptime's paused time."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field

Span = tuple[int, int]  # [start, end) in epoch milliseconds


def _merged(spans: Iterable[Span]) -> list[Span]:
    """Sorted, non-empty and disjoint: the union of ``spans``."""
    out: list[Span] = []
    for start, end in sorted(s for s in spans if s[1] > s[0]):
        if out and start <= out[-1][1]:
            out[-1] = (out[-1][0], max(out[-1][1], end))
        else:
            out.append((start, end))
    return out


def overlap(spans: Iterable[Span], others: Iterable[Span]) -> int:
    """Milliseconds that lie in both sets; each set may overlap itself (its union counts)."""
    a, b = _merged(spans), _merged(others)
    total = i = j = 0
    while i < len(a) and j < len(b):
        total += max(0, min(a[i][1], b[j][1]) - max(a[i][0], b[j][0]))
        if a[i][1] < b[j][1]:
            i += 1
        else:
            j += 1
    return total


@dataclass
class Paused:
    """A site's pauses that may touch a request's windows, and its incidents that overlap
    them (one query each, read once for every window: a site has few pauses)."""

    spans: list[Span] = field(default_factory=list)
    incidents: list[Span] = field(default_factory=list)

    def within(self, start: int, end: int) -> tuple[int, int, int]:
        """Paused ms in [start, end], the down ms among them, and how many incidents have no
        monitored time in it (all of their part inside it was paused)."""
        paused = overlap(self.spans, [(start, end)])
        down = hidden = 0
        for first, last in self.incidents:
            inside = (max(first, start), min(last, end))
            if inside[1] > inside[0]:
                covered = overlap([inside], self.spans)
                down += covered
                hidden += covered == inside[1] - inside[0]
        return paused, down, hidden
