"""CPU time and memory of other processes, read from ``/proc`` (Linux only, no dependencies).

CPU times come from ``utime + stime`` in clock ticks (usually 10 ms), so they are meant for
windows of seconds, not milliseconds.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

CLK_TCK = os.sysconf("SC_CLK_TCK")


def _stat_fields(path: str) -> list[str]:
    """The fields after ``comm`` (which may contain spaces): index 0 is field 3, ``state``."""
    with open(path) as f:
        data = f.read()
    return data[data.rindex(")") + 2 :].split()


def cpu_seconds(pid: int, tid: int | None = None) -> float:
    """CPU time (user + system) of a whole process, or of one of its threads."""
    path = f"/proc/{pid}/stat" if tid is None else f"/proc/{pid}/task/{tid}/stat"
    fields = _stat_fields(path)
    return (int(fields[11]) + int(fields[12])) / CLK_TCK


def thread_cpu(pid: int) -> dict[int, float]:
    """CPU seconds per thread id; threads that ended since are simply missing."""
    out: dict[int, float] = {}
    for entry in Path(f"/proc/{pid}/task").iterdir():
        try:
            out[int(entry.name)] = cpu_seconds(pid, int(entry.name))
        except (FileNotFoundError, ProcessLookupError):
            continue
    return out


def memory(pid: int) -> tuple[int, int]:
    """``(VmRSS, VmHWM)`` in bytes: resident now, and the peak so far."""
    values = {"VmRSS": 0, "VmHWM": 0}
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            key, _, rest = line.partition(":")
            if key in values:
                values[key] = int(rest.split()[0]) * 1024
    return values["VmRSS"], values["VmHWM"]


def open_files_limit(pid: int) -> dict[str, str]:
    """``Max open files`` of a process from ``/proc/PID/limits``: its soft and hard limits."""
    with open(f"/proc/{pid}/limits") as f:
        for line in f:
            if line.startswith("Max open files"):
                soft, hard = line.split()[3:5]
                return {"soft": soft, "hard": hard}
    return {"soft": "?", "hard": "?"}


def children(pid: int) -> list[int]:
    """Direct children of ``pid`` (nginx workers of their master)."""
    kids = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            if int(_stat_fields(f"/proc/{entry.name}/stat")[1]) == pid:
                kids.append(int(entry.name))
        except (FileNotFoundError, ProcessLookupError, ValueError):
            continue
    return kids


def schedstat(pid: int, tid: int) -> tuple[float, float]:
    """``(on-CPU, waiting on a run queue)`` seconds of one thread, from the scheduler (ns)."""
    try:
        with open(f"/proc/{pid}/task/{tid}/schedstat") as f:
            run, wait, _ = f.read().split()
    except (FileNotFoundError, ProcessLookupError, ValueError):
        return 0.0, 0.0
    return int(run) / 1e9, int(wait) / 1e9


@dataclass(frozen=True)
class CpuSample:
    """CPU seconds of a process (and per thread) at one wall-clock moment, and the scheduler's
    view of its main thread: time on a CPU and time runnable but waiting for one."""

    wall: float
    total: float
    threads: dict[int, float]
    main_sched: tuple[float, float] = (0.0, 0.0)


def sample(pid: int, wall: float) -> CpuSample:
    return CpuSample(
        wall=wall, total=cpu_seconds(pid), threads=thread_cpu(pid), main_sched=schedstat(pid, pid)
    )


def group_cpu(pids: list[int]) -> dict[int, float]:
    """CPU seconds of each pid that still exists."""
    out: dict[int, float] = {}
    for pid in pids:
        try:
            out[pid] = cpu_seconds(pid)
        except (FileNotFoundError, ProcessLookupError):
            continue
    return out


def cpu_report(before: CpuSample, after: CpuSample, main_tid: int) -> dict[str, float]:
    """Seconds used between two samples: total, the main (event-loop) thread, other threads."""
    main = after.threads.get(main_tid, 0.0) - before.threads.get(main_tid, 0.0)
    total = after.total - before.total
    wall = after.wall - before.wall
    on_cpu = after.main_sched[0] - before.main_sched[0]
    runnable = after.main_sched[1] - before.main_sched[1]
    return {
        "wall_s": wall,
        "cpu_s": total,
        "main_thread_s": main,
        "other_threads_s": total - main,
        # The event-loop thread: on a CPU, ready but waiting for a CPU (other processes), and
        # neither (idle in epoll, or blocked, e.g. waiting for the GIL), in % of the wall time.
        "main_on_cpu_pct": 100 * on_cpu / wall if wall else 0.0,
        "main_runqueue_pct": 100 * runnable / wall if wall else 0.0,
        "main_blocked_or_idle_pct": 100 * (wall - on_cpu - runnable) / wall if wall else 0.0,
    }


def machine_jiffies() -> tuple[int, int]:
    """``(busy, total)`` jiffies over all CPUs since boot, from ``/proc/stat``."""
    with open("/proc/stat") as f:
        values = [int(x) for x in f.readline().split()[1:9]]
    idle = values[3] + values[4]  # idle + iowait
    return sum(values) - idle, sum(values)


def machine_busy_pct(before: tuple[int, int], after: tuple[int, int]) -> float:
    """Busy share of all CPUs between two readings, in % of one core (2 cores: up to 200)."""
    busy, total = after[0] - before[0], after[1] - before[1]
    return 100 * (os.cpu_count() or 1) * busy / total if total else 0.0


def all_processes() -> dict[int, tuple[str, float]]:
    """``pid -> (command name, CPU seconds)`` for every process readable now."""
    out: dict[int, tuple[str, float]] = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            with open(f"/proc/{entry.name}/stat") as f:
                data = f.read()
            name = data[data.index("(") + 1 : data.rindex(")")]
            fields = data[data.rindex(")") + 2 :].split()
            out[int(entry.name)] = (name, (int(fields[11]) + int(fields[12])) / CLK_TCK)
        except (FileNotFoundError, ProcessLookupError, ValueError):
            continue
    return out


def busiest_others(
    before: dict[int, tuple[str, float]],
    after: dict[int, tuple[str, float]],
    wall: float,
    exclude: set[int],
    n: int = 3,
) -> list[str]:
    """The ``n`` processes (not in ``exclude``) that used most CPU: ``"name[pid] 42%"``."""
    used = [
        (after[pid][1] - before.get(pid, (name, 0.0))[1], name, pid)
        for pid, (name, _) in after.items()
        if pid not in exclude
    ]
    used.sort(reverse=True)
    return [f"{name}[{pid}] {100 * cpu / wall:.0f}%" for cpu, name, pid in used[:n] if cpu > 0]
