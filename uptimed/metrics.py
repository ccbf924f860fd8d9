"""The Prometheus series of one app: a registry of its own, fed by the parts that do the work.

No global state: each ``Metrics`` has its own ``CollectorRegistry`` (tests run many apps in
one process, and prometheus_client's default registry would mix them). The monitor, scheduler,
history batcher, outbox dispatcher and API middleware get the ``Metrics`` object as a
constructor argument and call its counters directly.

Hot-path cost: at 2,000 checks a second a ``labels()`` lookup per check is too slow, so every
labelled child is made once and kept (``_requests``), and the per-site series are not
prometheus_client metrics at all: a check adds to a small list per site (``checked``), and
``SiteCollector`` turns a snapshot of those lists, the monitor's states and the certificates
into metric families only when Prometheus scrapes. ``snapshot`` runs in the event loop (it
reads dicts the loop changes); ``generate_latest`` may then run in a thread, reading only the
snapshot and the thread-safe counters.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass

from prometheus_client import CollectorRegistry, Counter, Histogram, ProcessCollector
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from uptimed.models import SiteState, Status

# Check durations: from a fast local answer to the longest timeout.
DURATION_BUCKETS = (0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0)
# Lateness: the goal is p99 <= 0.5 s; the 10 ms scheduler tick is the floor.
LATENESS_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0)
SNAPSHOT_CHUNK = 5000  # sites copied between two yields to the loop
_METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"})

# Per site: checks up, checks down, last response time (ms, -1: none yet).
_UP, _DOWN, _RTT = 0, 1, 2


@dataclass(frozen=True, slots=True)
class SiteSample:
    """One site's series as the snapshot holds them (None: no value to export)."""

    site_id: str
    name: str
    up: int | None
    response_seconds: float | None
    tls_days_left: int | None
    checks_up: int
    checks_down: int


class SiteCollector(Collector):
    """Yields the per-site families from the last snapshot; reads nothing else, so it is safe
    in a thread while the loop goes on changing the monitor's state."""

    def __init__(self) -> None:
        self.samples: list[SiteSample] = []
        self.pending: int | None = None

    def collect(self) -> Iterator[Metric]:
        samples, labels = self.samples, ["site_id", "name"]  # one read: a new snapshot may come
        up = GaugeMetricFamily(
            "uptimed_site_up",
            "1 if the site is UP, 0 if DOWN; absent while INITIAL or paused",
            labels=labels,
        )
        rtt = GaugeMetricFamily(
            "uptimed_site_response_time_seconds",
            "Response time of the site's last recorded check",
            labels=labels,
        )
        tls = GaugeMetricFamily(
            "uptimed_site_tls_days_left",
            "Whole days until the site's TLS certificate expires (negative: expired)",
            labels=labels,
        )
        checks = CounterMetricFamily(
            "uptimed_site_checks",
            "Checks recorded since the start, by result",
            labels=[*labels, "result"],
        )
        for s in samples:
            pair = [s.site_id, s.name]
            if s.up is not None:
                up.add_metric(pair, s.up)
            if s.response_seconds is not None:
                rtt.add_metric(pair, s.response_seconds)
            if s.tls_days_left is not None:
                tls.add_metric(pair, s.tls_days_left)
            checks.add_metric([*pair, "up"], s.checks_up)
            checks.add_metric([*pair, "down"], s.checks_down)
        yield from (up, rtt, tls, checks)
        if self.pending is not None:
            yield GaugeMetricFamily(
                "uptimed_discord_messages_pending",
                "Outbox rows not yet delivered nor failed (as GET /webhooks counts them)",
                value=self.pending,
            )


class Metrics:
    """Counters and histograms the daemon's parts update, and the registry ``/metrics`` reads.

    Attributes meant for the parts: ``check_duration``, ``lateness``, ``skipped``,
    ``history_rows``, ``history_updates``, ``discord_sent``, ``discord_retried``,
    ``discord_failed``; methods ``checked`` (monitor), ``forget`` (a deleted site) and
    ``request`` (API middleware).
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
        self.sites = SiteCollector()
        registry.register(self.sites)
        if process:
            ProcessCollector(registry=registry)
        self._per_site: dict[int, list[int]] = {}
        self._observe_duration = self.check_duration.observe

    def checked(self, site_id: int, up: bool, response_time_ms: int, seconds: float) -> None:
        """A check was recorded: about a microsecond, no label lookup."""
        counts = self._per_site.get(site_id)
        if counts is None:
            counts = self._per_site[site_id] = [0, 0, -1]
        counts[_UP if up else _DOWN] += 1
        counts[_RTT] = response_time_ms
        self._observe_duration(seconds)

    def forget(self, site_id: int) -> None:
        self._per_site.pop(site_id, None)

    def request(self, route: str, method: str, status: int) -> None:
        """One API answer; ``route`` must be a route pattern (bounded), never the raw path."""
        key = (route, method, status // 100)
        child = self._requests.get(key)
        if child is None:
            method = method if method in _METHODS else "OTHER"
            child = self._requests[key] = self._api.labels(route, method, f"{key[2]}xx")
        child.inc()

    async def snapshot(
        self,
        sites: Iterable[tuple[int, str, bool]],
        states: Mapping[int, SiteState],
        expiry: Callable[[int], int | None],
        *,
        now_ms: int,
        pending: int | None,
    ) -> None:
        """Copy what the per-site series show, in the loop, yielding every few thousand sites.

        ``sites``: (id, name, paused) of every site; ``states``: the monitor's; ``expiry``: a
        site's certificate expiry (epoch ms) or None; ``pending``: outbox rows pending."""
        samples: list[SiteSample] = []
        per_site = self._per_site
        for n, (site_id, name, paused) in enumerate(sites, 1):
            state = states.get(site_id)
            status = None if state is None else state.status
            up = None
            if not paused and status is Status.UP:
                up = 1
            elif not paused and status is Status.DOWN:
                up = 0
            counts = per_site.get(site_id)
            expires = expiry(site_id)
            samples.append(
                SiteSample(
                    str(site_id),
                    name,
                    up,
                    counts[_RTT] / 1000 if counts is not None and counts[_RTT] >= 0 else None,
                    None if expires is None else (expires - now_ms) // 86_400_000,
                    counts[_UP] if counts else 0,
                    counts[_DOWN] if counts else 0,
                )
            )
            if n % SNAPSHOT_CHUNK == 0:
                await asyncio.sleep(0)
        self.sites.samples = samples
        self.sites.pending = pending
