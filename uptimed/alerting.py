"""The status state machine: pure, no I/O, no clock reads, so a table of cases tests it."""

from __future__ import annotations

from uptimed.models import CheckResult, SiteState, Transition


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
    )
    return SiteState(status=result.status, since=result.checked_at), transition
