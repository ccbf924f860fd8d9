"""Shields-style SVG badges (pure: text in, SVG out) and the colour each value earns.

The look is shields.io's "flat" style: a grey label box, a coloured value box, 11 px Verdana
with a faint shadow. Widths come from a table of Verdana's approximate advance widths, so no
font is loaded and nothing is measured at run time; a guess a pixel off only widens the
padding. Every text is XML-escaped (badges hold no user text today; a later one might).
"""

from __future__ import annotations

from xml.sax.saxutils import escape, quoteattr

from uptimed.models import Status

# shields.io's named colours
BRIGHTGREEN = "#4c1"
GREEN = "#97ca00"
YELLOW = "#dfb317"
RED = "#e05d44"
LIGHTGREY = "#9f9f9f"
LABEL_GREY = "#555"

HEIGHT = 20
PADDING = 10  # horizontal, both sides together, per box

# Approximate advance widths of 11 px Verdana, in pixels; anything else counts as DEFAULT_WIDTH.
_WIDTHS: dict[str, float] = {
    **dict.fromkeys(" ", 3.9),
    **dict.fromkeys("il.,:;'|!", 3.1),
    **dict.fromkeys("fjrtI()[]", 4.3),
    **dict.fromkeys("0123456789", 7.0),
    **dict.fromkeys("abcdeghknopqsuvxyz", 6.6),
    **dict.fromkeys("mw", 10.0),
    **dict.fromkeys("ABCDEFGHJKLNOPQRSTUVXYZ", 7.6),
    **dict.fromkeys("MW", 9.6),
    "%": 12.0,
    "-": 4.7,
}
DEFAULT_WIDTH = 7.0


def text_width(text: str) -> float:
    return sum(_WIDTHS.get(c, DEFAULT_WIDTH) for c in text)


def render(label: str, value: str, color: str) -> str:
    """A badge reading ``label | value``, the value's box in ``color`` (``#rgb`` or ``#rrggbb``)."""
    lw = round(text_width(label) + PADDING)
    vw = round(text_width(value) + PADDING)
    width = lw + vw
    title = escape(f"{label}: {value}")
    label_x, value_x = lw / 2, lw + vw / 2

    def text(x: float, content: str) -> str:
        body = escape(content)
        return (
            f'<text x="{x:g}" y="15" fill="#010101" fill-opacity=".3">{body}</text>'
            f'<text x="{x:g}" y="14">{body}</text>'
        )

    return (
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{HEIGHT}" role="img"'
        f" aria-label={quoteattr(f'{label}: {value}')}>"
        f"<title>{title}</title>"
        '<linearGradient id="s" x2="0" y2="100%"><stop offset="0" stop-color="#bbb"'
        ' stop-opacity=".1"/><stop offset="1" stop-opacity=".1"/></linearGradient>'
        f'<clipPath id="r"><rect width="{width}" height="{HEIGHT}" rx="3" fill="#fff"/></clipPath>'
        f'<g clip-path="url(#r)"><rect width="{lw}" height="{HEIGHT}" fill="{LABEL_GREY}"/>'
        f'<rect x="{lw}" width="{vw}" height="{HEIGHT}" fill={quoteattr(color)}/>'
        f'<rect width="{width}" height="{HEIGHT}" fill="url(#s)"/></g>'
        '<g fill="#fff" text-anchor="middle"'
        ' font-family="Verdana,Geneva,DejaVu Sans,sans-serif" font-size="11">'
        f"{text(label_x, label)}{text(value_x, value)}</g></svg>"
    )


def status_value(status: Status, *, paused: bool) -> tuple[str, str]:
    """(text, colour): up green, down red, not yet checked or paused grey."""
    if paused:
        return "paused", LIGHTGREY
    if status is Status.UP:
        return "up", BRIGHTGREEN
    if status is Status.DOWN:
        return "down", RED
    return "pending", LIGHTGREY


def uptime_value(percent: float | None) -> tuple[str, str]:
    """(text, colour) of an uptime; shown rounded down, so 99.999 % never reads as 100 %."""
    if percent is None:
        return "no data", LIGHTGREY
    floor = int(percent * 100) / 100
    text = f"{floor:.2f}".rstrip("0").rstrip(".") + "%"
    if percent >= 99.9:
        return text, BRIGHTGREEN
    if percent >= 99:
        return text, GREEN
    if percent >= 95:
        return text, YELLOW
    return text, RED


def response_time_value(ms: float | None) -> tuple[str, str]:
    """(text, colour) of an average response time: under 300 ms green, under 1 s yellow."""
    if ms is None:
        return "no data", LIGHTGREY
    text = f"{round(ms)} ms"
    if ms < 300:
        return text, BRIGHTGREEN
    if ms < 1000:
        return text, YELLOW
    return text, RED
