"""The status state machine: pure, no I/O, no clock reads, so a table of cases tests it."""

from __future__ import annotations

from dataclasses import replace

from uptimed.models import (
    Certificate,
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
    site_id: int,
    previous: SiteState,
    result: CheckResult,
    *,
    failure_threshold: int = 1,
    success_threshold: int = 1,
) -> tuple[SiteState, Transition | None]:
    """The site's state after ``result``, and the transition it caused (None: no change).

    A check that disagrees with the status counts towards its threshold (``streak``); a
    check that agrees ends the count. ``failure_threshold`` failures in a row turn an UP or
    INITIAL site DOWN, ``success_threshold`` good checks in a row a DOWN site UP. The first
    good check of a new site turns it UP: there is no outage to confirm the end of. Any status
    change is a transition, ``INITIAL -> UP/DOWN`` included: that one starts monitoring.
    """
    if result.status == previous.status:
        return (previous if previous.streak == 0 else replace(previous, streak=0)), None
    if previous.status is Status.DOWN:
        needed, streak = success_threshold, previous.streak + 1
    elif result.status is Status.UP:  # INITIAL -> UP; a count of failures ends
        needed, streak = 1, 1
    else:
        needed, streak = failure_threshold, previous.streak + 1
    if streak < needed:
        return replace(previous, streak=streak), None
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
        checks=streak,
    )
    reason = result.reason if result.status is Status.DOWN else None
    return SiteState(status=result.status, since=result.checked_at, reason=reason), transition


def muted(until: int | None, now: int) -> bool:
    """A site's alerts are held back at ``now`` (epoch ms) by its ``alerts_muted_until``."""
    return until is not None and now < until


def failing(state: SiteState) -> bool:
    """DOWN, or its last check failed: its next check may well hang until its timeout."""
    return state.status is Status.DOWN or counting_failures(state)


def counting_failures(state: SiteState) -> bool:
    """Failures are being counted towards the threshold: retry_interval_seconds applies."""
    return state.streak > 0 and state.status is not Status.DOWN


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
    answered = transition.http_status is not None or transition.current is Status.UP
    return Event(
        kind=kind,
        site_name=site.name,
        site_url=site.url,
        at=transition.at,
        status=transition.current,
        reason=reason,
        response_time_ms=transition.response_time_ms if answered else None,
        down_since=down_since,
        checks=transition.checks,
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


def reminder_event(site: Site, down_since: int, reason: str | None, now: int) -> Event:
    """ "Still DOWN", every ``renotify_every_seconds`` of an outage."""
    return Event(
        kind=EventKind.REMINDER,
        site_name=site.name,
        site_url=site.url,
        at=now,
        status=Status.DOWN,
        reason=reason,
        down_since=down_since,
    )


def certificate_event(site: Site, certificate: Certificate, days_left: int, now: int) -> Event:
    return Event(
        kind=EventKind.CERTIFICATE,
        site_name=site.name,
        site_url=site.url,
        at=now,
        certificate=certificate,
        days_left=days_left,
    )


def unmuted_event(site: Site, state: SiteState, now: int) -> Event:
    """The state a mute kept quiet, told when it ends."""
    is_down = state.status is Status.DOWN
    return Event(
        kind=EventKind.UNMUTED,
        site_name=site.name,
        site_url=site.url,
        at=now,
        status=state.status,
        reason=state.reason if is_down else None,
        down_since=state.since if is_down else None,
    )


def warning_due(days: int, thresholds: list[int], warned: int | None) -> int | None:
    """The threshold to warn of now, or None: the lowest one ``days`` has reached, unless one
    as low was warned of already for this certificate (``warned``)."""
    reached = [t for t in thresholds if days <= t]
    if not reached:
        return None
    lowest = min(reached)
    return lowest if warned is None or lowest < warned else None
