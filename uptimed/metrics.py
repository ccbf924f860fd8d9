"""The Prometheus series of one app: a registry of its own, fed by the parts that do the work.

No global state: each ``Metrics`` has its own ``CollectorRegistry`` (tests run many apps in
one process, and prometheus_client's default registry would mix them). The monitor, scheduler,
history batcher, outbox dispatcher and API middleware get the ``Metrics`` object as a
constructor argument and call its counters directly.

Hot-path cost: at 2,000 checks a second a ``labels()`` lookup per check is too slow, so every
labelled child is made once and kept (``_requests``), and the per-site series are not
prometheus_client metrics at all. Each site has one small record (``_Site``: its rendered
labels, paused, checks up and down, last response time), kept from the Site objects the
monitor already sees (``follow``: added, restored at start-up, changed) and dropped with the
site (``forget``); a check adds to it (``checked``).

Scrape cost at 40,000 sites (168,000 lines, 11 MiB): a scrape reads no site from the database
and builds no object per site. ``write_sites`` renders the per-site families straight from the
records, ``SCRAPE_CHUNK`` sites at a time (a few ms each, on the loop), and hands each chunk to
the response before yielding to the loop, so no whole answer is ever held. The text used to be
built in one piece in a thread: that held the GIL against the loop for its whole 0.1 s, and the
answer, its lines and the snapshot it came from made RSS grow by 40 MiB.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Mapping, Sequence

from prometheus_client import (
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    ProcessCollector,
    generate_latest,
)

from uptimed.models import Site, SiteState, Status

# Check durations: from a fast local answer to the longest timeout.
DURATION_BUCKETS = (0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0)
# Lateness: the goal is p99 <= 0.5 s; the 10 ms scheduler tick is the floor.
LATENESS_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0)
SCRAPE_CHUNK = 2000  # sites rendered and written between two yields to the loop (a few ms)
_METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"})
_DAY_MS = 86_400_000


class _Site:
    """One site's per-site series as kept between scrapes. ``labels`` is the rendered
    ``site_id="7",name="Shop"``, escaped once per name; ``rtt_ms`` is -1 before a check."""

    __slots__ = ("down", "id", "labels", "name", "paused", "rtt_ms", "up")

    def __init__(self, site_id: int) -> None:
        self.id = site_id
        self.name: str | None = None
        self.labels = ""
        self.paused = False
        self.up = 0
        self.down = 0
        self.rtt_ms = -1


def _escape(value: str) -> str:
    """A label value in the text format: backslash, double quote and newline escaped."""
    return value.replace("\\", "\\\\").replace("\n", "\\n").replace('"', '\\"')


def _header(name: str, kind: str, text: str) -> str:
    return f"# HELP {name} {text}\n# TYPE {name} {kind}\n"


_UP_HEADER = _header(
    "uptimed_site_up", "gauge", "1 if the site is UP, 0 if DOWN; absent while INITIAL or paused"
)
_RTT_HEADER = _header(
    "uptimed_site_response_time_seconds",
    "gauge",
    "Response time of the site's last recorded check",
)
_TLS_HEADER = _header(
    "uptimed_site_tls_days_left",
    "gauge",
    "Whole days until the site's TLS certificate expires (negative: expired)",
)
_CHECKS_HEADER = _header(
    "uptimed_site_checks_total", "counter", "Checks recorded since the start, by result"
)


def _up_lines(sites: Sequence[_Site], states: Mapping[int, SiteState], _: object) -> list[str]:
    out = []
    for s in sites:
        state = states.get(s.id)
        if state is None or s.paused:
            continue
        if state.status is Status.UP:
            out.append(f"uptimed_site_up{{{s.labels}}} 1\n")
        elif state.status is Status.DOWN:
            out.append(f"uptimed_site_up{{{s.labels}}} 0\n")
    return out


def _rtt_lines(sites: Sequence[_Site], _: object, __: object) -> list[str]:
    # "123e-3" parses to the same float as 123 / 1000 (both are correctly rounded) and takes a
    # third of the time of formatting that float: this family was the slowest to render.
    return [
        f"uptimed_site_response_time_seconds{{{s.labels}}} {s.rtt_ms}e-3\n"
        for s in sites
        if s.rtt_ms >= 0
    ]


def _tls_lines(
    sites: Sequence[_Site], _: object, days_left: Callable[[int], int | None]
) -> list[str]:
    out = []
    for s in sites:
        days = days_left(s.id)
        if days is not None:
            out.append(f"uptimed_site_tls_days_left{{{s.labels}}} {days}\n")
    return out


def _checks_lines(sites: Sequence[_Site], _: object, __: object) -> list[str]:
    return [
        f'uptimed_site_checks_total{{{s.labels},result="up"}} {s.up}\n'
        f'uptimed_site_checks_total{{{s.labels},result="down"}} {s.down}\n'
        for s in sites
    ]


# The per-site families in the order they are written: each one's HELP and TYPE, then all its
# samples (the text format wants a family's samples together).
_FAMILIES = (
    (_UP_HEADER, _up_lines),
    (_RTT_HEADER, _rtt_lines),
    (_TLS_HEADER, _tls_lines),
    (_CHECKS_HEADER, _checks_lines),
)


class Metrics:
    """Counters and histograms the daemon's parts update, and the registry ``/metrics`` reads.

    Attributes meant for the parts: ``check_duration``, ``lateness``, ``skipped``,
    ``history_rows``, ``history_updates``, ``discord_sent``, ``discord_retried``,
    ``discord_failed``; methods ``follow`` (a site added, restored or changed: the monitor),
    ``checked`` (monitor), ``forget`` (a deleted site) and ``request`` (API middleware).
    """

    def __init__(self, *, process: bool = True) -> None:
        self.registry = registry = CollectorRegistry(auto_describe=False)
        self.check_duration = Histogram(
            "uptimed_check_duration_seconds",
            "Time a check took, tries included",
            buckets=DURATION_BUCKETS,
            registry=registry,
        )
        self.lateness = Histogram(
            "uptimed_scheduler_lateness_seconds",
            "How long after its due time a site's check job was started",
            buckets=LATENESS_BUCKETS,
            registry=registry,
        )
        self.skipped = Counter(
            "uptimed_checks_skipped",
            "Check runs skipped because the site's previous check was still running",
            registry=registry,
        )
        self.history_rows = Counter(
            "uptimed_history_rows_written",
            "History rows appended (batched checks and status changes)",
            registry=registry,
        )
        self.history_updates = Counter(
            "uptimed_history_rows_updated",
            "History rows updated in place (OPTIMISATION=1: an unchanged check moves the latest)",
            registry=registry,
        )
        self.discord_sent = Counter(
            "uptimed_discord_messages_sent",
            "Discord messages (POSTs) accepted; a grouped message counts once",
            registry=registry,
        )
        self.discord_retried = Counter(
            "uptimed_discord_messages_retried",
            "Failed POST attempts that were retried (429, 5xx, network errors)",
            registry=registry,
        )
        self.discord_failed = Counter(
            "uptimed_discord_messages_failed",
            "Discord messages given up on (permanent error or past the give-up time)",
            registry=registry,
        )
        self._api = Counter(
            "uptimed_api_requests",
            "API requests by route pattern, method and status class",
            ["route", "method", "status"],
            registry=registry,
        )
        self._requests: dict[tuple[str, str, int], Counter] = {}
        self._pending = Gauge(
            "uptimed_discord_messages_pending",
            "Outbox rows neither delivered nor failed (as GET /webhooks counts them)",
            registry=registry,
        )
        if process:
            ProcessCollector(registry=registry)
        self._sites: dict[int, _Site] = {}
        self._observe_duration = self.check_duration.observe

    def follow(self, site: Site) -> None:
        """The site as now stored (added, restored at start-up, changed): its series carry its
        name, and it is neither up nor down while paused. Cheap when nothing changed."""
        record = self._sites.get(site.id)
        if record is None:
            record = self._sites[site.id] = _Site(site.id)
        record.paused = site.paused
        if record.name != site.name:
            record.name = site.name
            record.labels = f'site_id="{site.id}",name="{_escape(site.name)}"'

    def checked(self, site_id: int, up: bool, response_time_ms: int, seconds: float) -> None:
        """A check was recorded: about a microsecond, no label lookup."""
        record = self._sites.get(site_id)
        if record is not None:  # None: a site deleted meanwhile, or never followed
            if up:
                record.up += 1
            else:
                record.down += 1
            record.rtt_ms = response_time_ms
        self._observe_duration(seconds)

    def forget(self, site_id: int) -> None:
        self._sites.pop(site_id, None)

    def request(self, route: str, method: str, status: int) -> None:
        """One API answer; ``route`` must be a route pattern (bounded), never the raw path."""
        key = (route, method, status // 100)
        child = self._requests.get(key)
        if child is None:
            method = method if method in _METHODS else "OTHER"
            child = self._requests[key] = self._api.labels(route, method, f"{key[2]}xx")
        child.inc()

    def registry_text(self, *, pending: int) -> bytes:
        """The registry's families (histograms, counters, process): small, written first.
        ``pending``: outbox rows pending."""
        self._pending.set(pending)
        return generate_latest(self.registry)

    async def write_sites(
        self,
        write: Callable[[bytes], Awaitable[None]],
        states: Mapping[int, SiteState],
        expiry: Callable[[int], int | None],
        *,
        now_ms: int,
    ) -> None:
        """Render the per-site families in the loop, ``SCRAPE_CHUNK`` sites at a time, and pass
        each chunk to ``write`` (the response), yielding to the loop after each.

        ``states``: the monitor's; ``expiry``: a site's certificate expiry (epoch ms) or None.
        The sites are those followed when the scrape starts; the values are read as each chunk
        is rendered (a check landing meanwhile may show in one family and not yet in another,
        as with any scrape of live counters)."""

        def days_left(site_id: int) -> int | None:
            expires = expiry(site_id)
            return None if expires is None else (expires - now_ms) // _DAY_MS

        sites = list(self._sites.values())  # the records, not copies: no object per site
        for header, lines in _FAMILIES:
            await write(header.encode())
            for start in range(0, len(sites), SCRAPE_CHUNK):
                # Only the chunk's bytes stay alive while the write waits, not its lines.
                data = "".join(
                    lines(sites[start : start + SCRAPE_CHUNK], states, days_left)
                ).encode()
                if data:
                    await write(data)
                await asyncio.sleep(0)
