"""The interval arithmetic behind paused time in /uptime: total overlap of two sets of spans."""

from __future__ import annotations

import pytest

from uptimed.intervals import Paused, Span, overlap


@pytest.mark.parametrize(
    ("spans", "others", "expected"),
    [
        ([], [], 0),
        ([(0, 10)], [], 0),
        ([], [(0, 10)], 0),
        ([(0, 10)], [(0, 10)], 10),  # the same span
        ([(0, 10)], [(10, 20)], 0),  # touching ends share no time (half-open)
        ([(0, 10)], [(5, 20)], 5),  # partial, either side
        ([(5, 20)], [(0, 10)], 5),
        ([(0, 100)], [(10, 20), (30, 40)], 20),  # several inside one
        ([(10, 20), (30, 40)], [(0, 100)], 20),
        ([(0, 10), (20, 30)], [(5, 25)], 10),  # one bridging a gap
        ([(0, 10), (5, 15)], [(0, 100)], 15),  # a set overlapping itself: its union counts
        ([(0, 10), (0, 10)], [(0, 10), (2, 8)], 10),  # duplicates count once
        ([(30, 40), (0, 10)], [(35, 100), (5, 6)], 6),  # unsorted input
        ([(5, 5)], [(0, 10)], 0),  # empty spans count nothing
        ([(10, 0)], [(0, 10)], 0),  # nor do reversed ones
        ([(0, 10), (10, 20)], [(5, 15)], 10),  # adjacent spans merge
    ],
)
def test_overlap(spans: list[Span], others: list[Span], expected: int) -> None:
    assert overlap(spans, others) == expected
    assert overlap(others, spans) == expected  # symmetric


@pytest.mark.parametrize(
    ("pauses", "incidents", "window", "expected"),
    [
        ([], [(0, 50)], (0, 100), (0, 0, 0)),
        ([(20, 40)], [], (0, 100), (20, 0, 0)),
        ([(20, 40)], [(0, 100)], (0, 100), (20, 20, 0)),  # paused mid-incident
        ([(20, 40)], [(25, 35)], (0, 100), (20, 10, 1)),  # an incident wholly paused
        ([(0, 200)], [(0, 200)], (50, 100), (50, 50, 1)),  # the window inside a pause
        ([(20, 40)], [(30, 60)], (50, 100), (0, 0, 0)),  # pause before the window
        ([(90, 200)], [(80, 200)], (0, 100), (10, 10, 0)),  # clipped to the window's end
        ([(10, 20), (30, 40)], [(0, 100)], (15, 35), (10, 10, 0)),
        ([(10, 20)], [(100, 100)], (0, 100), (10, 0, 0)),  # a zero-length incident
    ],
)
def test_paused_within_a_window(
    pauses: list[Span],
    incidents: list[Span],
    window: tuple[int, int],
    expected: tuple[int, int, int],
) -> None:
    """(paused ms, paused down ms, incidents with nothing monitored) inside the window."""
    assert Paused(pauses, incidents).within(*window) == expected
