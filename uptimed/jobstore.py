"""APScheduler's in-memory job store, rebuilt on a heap for tens of thousands of jobs.

APScheduler's ``MemoryJobStore`` keeps one sorted list and finds a job by a binary search
written in Python, then deletes and re-inserts it: three searches and two list moves each
time a job runs. At 2,000 runs a second over 40,000 jobs that was a tenth of the scheduler's
cost. Here each run is one dict write and one C ``heappush``; entries a job has outgrown stay in
the heap, are recognised by their sequence number and dropped when they reach the top.
"""

from __future__ import annotations

import heapq
from datetime import datetime, timedelta
from itertools import count

from apscheduler.job import Job
from apscheduler.jobstores.base import BaseJobStore, ConflictingIdError, JobLookupError
from apscheduler.triggers.interval import IntervalTrigger


class HeapJobStore(BaseJobStore):
    """Drop-in for ``MemoryJobStore`` (same semantics: no persistence, jobs hold references)."""

    def __init__(self) -> None:
        super().__init__()
        self._jobs: dict[str, tuple[Job, int]] = {}  # id -> (job, sequence of its heap entry)
        self._heap: list[tuple[float, int, str]] = []  # (next run timestamp, sequence, id)
        self._sequence = count()

    def _push(self, job: Job) -> None:
        sequence = next(self._sequence)
        self._jobs[job.id] = (job, sequence)
        if job.next_run_time is not None:  # a paused job waits in the dict only
            heapq.heappush(self._heap, (job.next_run_time.timestamp(), sequence, job.id))
        self._compact_if_bloated()

    def _compact_if_bloated(self) -> None:
        """Rebuild when stale entries outnumber live ones (after many removals or reschedules)."""
        if len(self._heap) > 2 * len(self._jobs) + 1024:
            self._heap = [entry for entry in self._heap if self._is_current(entry)]
            heapq.heapify(self._heap)

    def _is_current(self, entry: tuple[float, int, str]) -> bool:
        current = self._jobs.get(entry[2])
        return current is not None and current[1] == entry[1]

    def _drop_stale_top(self) -> None:
        heap = self._heap
        while heap and not self._is_current(heap[0]):
            heapq.heappop(heap)

    def lookup_job(self, job_id: str) -> Job | None:
        current = self._jobs.get(job_id)
        return current[0] if current else None

    def get_due_jobs(self, now: datetime) -> list[Job]:
        """Due jobs, earliest first. They stay in the heap: the scheduler updates each one next,
        which makes its entry stale."""
        deadline = now.timestamp()
        due: list[tuple[float, int, str]] = []
        heap = self._heap
        while heap and heap[0][0] <= deadline:
            entry = heapq.heappop(heap)
            if self._is_current(entry):
                due.append(entry)
        for entry in due:
            heapq.heappush(heap, entry)
        return [self._jobs[entry[2]][0] for entry in due]

    def get_next_run_time(self) -> datetime | None:
        self._drop_stale_top()
        return self._jobs[self._heap[0][2]][0].next_run_time if self._heap else None

    def get_all_jobs(self) -> list[Job]:
        jobs = [job for job, _ in self._jobs.values()]
        jobs.sort(key=lambda j: (j.next_run_time is None, j.next_run_time or 0, j.id))
        return jobs

    def add_job(self, job: Job) -> None:
        if job.id in self._jobs:
            raise ConflictingIdError(job.id)
        self._push(job)

    def update_job(self, job: Job) -> None:
        if job.id not in self._jobs:
            raise JobLookupError(job.id)
        self._push(job)

    def remove_job(self, job_id: str) -> None:
        if self._jobs.pop(job_id, None) is None:
            raise JobLookupError(job_id)
        self._compact_if_bloated()

    def shift(self, delta: timedelta) -> None:
        """Move every job's next run by ``delta``, and the grid of an interval trigger with it;
        the order of the jobs does not change."""
        heap: list[tuple[float, int, str]] = []
        for job_id, (job, sequence) in self._jobs.items():
            if isinstance(job.trigger, IntervalTrigger):
                job.trigger.start_date += delta
            if job.next_run_time is not None:
                job.next_run_time += delta
                heap.append((job.next_run_time.timestamp(), sequence, job_id))
        heapq.heapify(heap)
        self._heap = heap

    def remove_all_jobs(self) -> None:
        self._jobs.clear()
        self._heap.clear()

    def shutdown(self) -> None:
        self.remove_all_jobs()
