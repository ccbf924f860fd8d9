"""HeapJobStore keeps MemoryJobStore's contract; both run the same cases side by side."""

from __future__ import annotations

import random
from datetime import UTC, datetime, timedelta

import pytest
from apscheduler.job import Job
from apscheduler.jobstores.base import BaseJobStore, ConflictingIdError, JobLookupError
from apscheduler.jobstores.memory import MemoryJobStore
from apscheduler.schedulers.asyncio import AsyncIOScheduler
from apscheduler.triggers.interval import IntervalTrigger

from uptimed.jobstore import HeapJobStore

T0 = datetime(2026, 1, 1, tzinfo=UTC)
SCHEDULER = AsyncIOScheduler(timezone=UTC)  # never started: jobs only need its timezone


def _noop() -> None:
    pass


def job(job_id: str, at: float | None) -> Job:
    return Job(
        SCHEDULER,
        id=job_id,
        func=_noop,
        trigger=IntervalTrigger(seconds=10, start_date=T0, timezone=UTC),
        executor="default",
        args=(),
        kwargs={},
        name=job_id,
        misfire_grace_time=None,
        coalesce=True,
        max_instances=1,
        next_run_time=None if at is None else T0 + timedelta(seconds=at),
    )


def moved(original: Job, at: float | None) -> Job:
    """What the scheduler hands ``update_job``: the same job with a new next run time."""
    copy = job(original.id, None)
    copy.next_run_time = None if at is None else T0 + timedelta(seconds=at)
    return copy


@pytest.fixture(params=[HeapJobStore, MemoryJobStore], ids=["heap", "memory"])
def store(request: pytest.FixtureRequest) -> BaseJobStore:
    return request.param()


def ids(jobs: list[Job]) -> list[str]:
    return [j.id for j in jobs]


def test_due_jobs_come_earliest_first_and_only_when_due(store: BaseJobStore) -> None:
    for job_id, at in [("c", 3), ("a", 1), ("paused", None), ("b", 2), ("later", 50)]:
        store.add_job(job(job_id, at))
    assert ids(store.get_due_jobs(T0)) == []
    assert ids(store.get_due_jobs(T0 + timedelta(seconds=2))) == ["a", "b"]
    # Asking does not consume: the scheduler updates each due job afterwards.
    assert ids(store.get_due_jobs(T0 + timedelta(seconds=3))) == ["a", "b", "c"]
    assert store.get_next_run_time() == T0 + timedelta(seconds=1)
    assert ids(store.get_all_jobs()) == ["a", "b", "c", "later", "paused"]


def test_update_moves_a_job_and_remove_forgets_it(store: BaseJobStore) -> None:
    a, b = job("a", 1), job("b", 2)
    store.add_job(a)
    store.add_job(b)
    store.update_job(moved(a, 11))
    assert ids(store.get_due_jobs(T0 + timedelta(seconds=10))) == ["b"]
    assert store.get_next_run_time() == T0 + timedelta(seconds=2)
    store.remove_job("b")
    assert store.get_next_run_time() == T0 + timedelta(seconds=11)
    assert store.lookup_job("b") is None
    assert store.lookup_job("a").next_run_time == T0 + timedelta(seconds=11)
    store.update_job(moved(a, None))  # paused
    assert store.get_next_run_time() is None
    assert ids(store.get_due_jobs(T0 + timedelta(days=1))) == []


def test_errors_match_the_stock_store(store: BaseJobStore) -> None:
    store.add_job(job("a", 1))
    with pytest.raises(ConflictingIdError):
        store.add_job(job("a", 2))
    with pytest.raises(JobLookupError):
        store.update_job(job("missing", 1))
    with pytest.raises(JobLookupError):
        store.remove_job("missing")
    store.remove_all_jobs()
    assert store.get_all_jobs() == []
    assert store.get_next_run_time() is None


def test_agrees_with_the_stock_store_over_a_random_history() -> None:
    """Thousands of mixed operations, as a scheduler with many sites would make them."""
    heap, memory = HeapJobStore(), MemoryJobStore()
    rng = random.Random(5)
    live: dict[str, Job] = {}
    now = 0.0
    for step in range(5000):
        roll = rng.random()
        if roll < 0.3 or not live:
            j = job(f"site:{step}", rng.choice([None, now + rng.uniform(0, 30)]))
            live[j.id] = j
            for s in (heap, memory):
                s.add_job(j)
        elif roll < 0.4:
            victim = rng.choice(sorted(live))
            del live[victim]
            for s in (heap, memory):
                s.remove_job(victim)
        else:  # run what is due, as _process_jobs does: update each due job
            now += rng.uniform(0, 2)
            due = heap.get_due_jobs(T0 + timedelta(seconds=now))
            assert ids(due) == ids(memory.get_due_jobs(T0 + timedelta(seconds=now)))
            for j in due:
                nxt = moved(j, now + rng.uniform(1, 30))
                live[j.id] = nxt
                for s in (heap, memory):
                    s.update_job(nxt)
        assert heap.get_next_run_time() == memory.get_next_run_time()
    assert ids(heap.get_all_jobs()) == ids(memory.get_all_jobs())
    assert len(heap._heap) <= 2 * len(live) + 1024  # stale entries do not pile up
