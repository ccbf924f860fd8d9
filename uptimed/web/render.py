"""How the status page shows its figures: Jinja2 filters and the SVG chart's geometry.

Pure functions of the data, so the HTML and its tests need no database. Colours are classes
(``status.css``), never inline styles: the page's CSP allows no inline style or script.
"""

from __future__ import annotations

from datetime import UTC, date, datetime
from typing import Any

from uptimed.db.maintenance import HOUR
from uptimed.web.status import StatusDay, StatusSite

# Daily bar classes by uptime, best first; a day without monitored time is "none" (grey).
BAR_CLASSES = ((99.9, "b-ok"), (99.0, "b-minor"), (95.0, "b-major"), (0.0, "b-bad"))
STATE_WORDS = {"up": "Up", "down": "Down", "pending": "Not checked yet", "paused": "Paused"}
STATE_ICONS = {"up": "\u2713", "down": "\u2715", "pending": "\u2026", "paused": "\u2016"}
CHART_WIDTH, CHART_HEIGHT, CHART_PAD = 240, 48, 4


def percent(value: float | None) -> str:
    """Two decimals, never rounded up to 100% (99.996 is not 100.00: a short outage shows)."""
    if value is None:
        return "no data"
    if value >= 100:
        return "100%"
    return f"{int(value * 100) / 100:.2f}%"


def duration(seconds: float) -> str:
    """The two largest units: ``43s``, ``5m 12s``, ``2h 3m``, ``1d 2h``."""
    total = round(seconds)
    if total < 60:
        return f"{total}s"
    units = [("d", 86400), ("h", 3600), ("m", 60), ("s", 1)]
    top = next(i for i, (_, size) in enumerate(units) if total >= size)
    (big, big_size), (small, small_size) = units[top], units[top + 1]
    rest = total % big_size // small_size
    return f"{total // big_size}{big}" + (f" {rest}{small}" if rest else "")


def day_label(day: StatusDay) -> str:
    """What a bar's tooltip and its screen-reader text say: ``1 Dec 2026: 99.95% up, 43s down``."""
    when = date.fromisoformat(day.date)
    text = f"{when.day} {when:%b %Y}"
    if day.uptime_percent is None:
        return f"{text}: no data"
    return f"{text}: {percent(day.uptime_percent)} up, {duration(day.down_seconds)} down"


def bar_class(day: StatusDay) -> str:
    if day.uptime_percent is None:
        return "b-none"
    return next(cls for floor, cls in BAR_CLASSES if day.uptime_percent >= floor)


def when(ms: int | None) -> str:
    """A time as a person reads it, in UTC (the page says so)."""
    if ms is None:
        return ""
    return datetime.fromtimestamp(ms / 1000, UTC).strftime("%-d %b %Y %H:%M UTC")


def chart(site: StatusSite, now: int) -> dict[str, Any]:
    """The 24 h polyline's points in a 240 x 48 box (one hour per 10 units, the slowest hour at
    the top) and its accessible description. ``points`` is empty with fewer than two hours."""
    times = site.response_times
    if not times:
        return {"points": "", "label": "Response time, last 24 hours: no checks"}
    first_hour = now // HOUR * HOUR - 23 * HOUR
    peak = max(p.avg_ms for p in times) or 1.0
    slot = CHART_WIDTH / 24
    span = CHART_HEIGHT - 2 * CHART_PAD
    points = " ".join(
        f"{(p.hour - first_hour) / HOUR * slot + slot / 2:.1f},"
        f"{CHART_PAD + span * (1 - p.avg_ms / peak):.1f}"
        for p in times
    )
    avg = sum(p.avg_ms for p in times) / len(times)
    label = f"Response time, last 24 hours: average {avg:.0f} ms, slowest hour {peak:.0f} ms"
    return {"points": points if len(times) > 1 else "", "label": label, "peak": peak}


FILTERS = {
    "percent": percent,
    "duration": duration,
    "day_label": day_label,
    "bar_class": bar_class,
    "when": when,
}
WINDOW_LABELS = {"24h": "24 hours", "30d": "30 days", "90d": "90 days"}
# How often the page reloads itself: its script (pausable), or without JavaScript a meta refresh.
REFRESH_SECONDS = 60
GLOBALS = {
    "refresh_seconds": REFRESH_SECONDS,
    "chart": chart,
    "window_labels": WINDOW_LABELS,
    "state_words": STATE_WORDS,
    "state_icons": STATE_ICONS,
}
