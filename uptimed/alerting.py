"""The status state machine: pure, no I/O, no clock reads, so a table of cases tests it."""

from __future__ import annotations

from uptimed.models import (
    CheckResult,
    Event,
    EventKind,
    HistoryRow,
    Site,
    SiteIn,
    SiteState,
    Status,
    Transition,
)


def next_state(
    site_id: int, previous: SiteState, result: CheckResult
) -> tuple[SiteState, Transition | None]:
    """The site's state after ``result``, and the transition it caused (None: no change).

    Any status change is a transition, ``INITIAL -> UP/DOWN`` included: that one starts monitoring.
    """
    if result.status == previous.status:
        return previous, None
    transition = Transition(
        site_id=site_id,
        previous=previous.status,
        current=result.status,
        at=result.checked_at,
        previous_since=previous.since,
        reason=result.reason,
        response_time_ms=result.response_time_ms,
        http_status=result.http_status,
        previous_reason=previous.reason,
    )
    reason = result.reason if result.status is Status.DOWN else None
    return SiteState(status=result.status, since=result.checked_at, reason=reason), transition


def event_for(site: Site, transition: Transition) -> Event:
    """What to tell Discord about a transition: start of monitoring, outage, or recovery."""
    if transition.previous is Status.INITIAL:
        kind = EventKind.STARTED
    elif transition.current is Status.DOWN:
        kind = EventKind.DOWN
    else:
        kind = EventKind.UP
    if kind is EventKind.UP:
        down_since: int | None = transition.previous_since
        reason = transition.previous_reason  # what the outage was
    else:
        down_since = transition.at if transition.current is Status.DOWN else None
        reason = transition.reason if transition.current is Status.DOWN else None
    # A time with no answer (a timeout, a refused connection) is not a response time.
    answered = transition.http_status is not None
    return Event(
        kind=kind,
        site_name=site.name,
        site_url=site.url,
        at=transition.at,
        status=transition.current,
        reason=reason,
        response_time_ms=transition.response_time_ms if answered else None,
        down_since=down_since,
    )


def started_event(site: Site, latest: HistoryRow) -> Event:
    """ "Monitoring started" for a webhook added after the site's first check."""
    is_down = latest.status is Status.DOWN
    return Event(
        kind=EventKind.STARTED,
        site_name=site.name,
        site_url=site.url,
        at=latest.last_status_change,
        status=latest.status,
        reason=latest.reason if is_down else None,
        # The row does not say whether a DOWN check got an answer; its reason says why.
        response_time_ms=None if is_down else latest.response_time_ms,
        down_since=latest.last_status_change if is_down else None,
    )


def ended_event(site: Site, now: int) -> Event:
    return Event(kind=EventKind.ENDED, site_name=site.name, site_url=site.url, at=now)


def paused_event(site: SiteIn, now: int, *, paused: bool) -> Event:
    kind = EventKind.PAUSED if paused else EventKind.RESUMED
    return Event(kind=kind, site_name=site.name, site_url=site.url, at=now)


def trial_event(site: Site, now: int) -> Event:
    return Event(kind=EventKind.TEST, site_name=site.name, site_url=site.url, at=now)
