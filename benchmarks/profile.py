"""Optional: sample uptimed with py-spy during the window and list where its CPU goes.

``py-spy record --nonblocking`` reads the process's memory without stopping it, so the
profile costs the target little; py-spy itself uses CPU on the other core.
"""

from __future__ import annotations

import asyncio
import json
import shutil
import sys
from collections import Counter
from pathlib import Path

REPO = str(Path(__file__).resolve().parent.parent) + "/"


def py_spy() -> str | None:
    return shutil.which("py-spy", path=str(Path(sys.executable).parent)) or shutil.which("py-spy")


async def record(pid: int, seconds: int, out: Path) -> Path | None:
    """Record a speedscope profile of ``pid`` for ``seconds``; None if py-spy is missing."""
    exe = py_spy()
    if exe is None:
        return None
    proc = await asyncio.create_subprocess_exec(
        exe, "record", "--pid", str(pid), "--duration", str(seconds), "--rate", "100",
        "--nonblocking", "--format", "speedscope", "--output", str(out),
        stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.PIPE,
    )  # fmt: skip
    try:
        _, err = await asyncio.wait_for(proc.communicate(), timeout=seconds + 30)
    except TimeoutError:
        proc.kill()
        await proc.wait()
        return None
    if proc.returncode != 0:
        print(f"py-spy failed: {err.decode(errors='replace').strip()[-300:]}", file=sys.stderr)
        return None
    return out


def summarise(path: Path, n: int = 15) -> dict[str, dict]:
    """Per thread: samples, and functions by own and by total samples (% of that thread's).

    py-spy attributes time spent in C (extensions, syscalls) to the Python frame calling it,
    and with ``--nonblocking`` it cannot always tell a thread waiting (``select``, a queue's
    ``get``) from one running, so read those wait frames as partly idle. ``/proc`` gives the
    exact CPU per thread; this gives the shape inside it.
    """
    doc = json.loads(path.read_text())
    frames = doc["shared"]["frames"]
    out: dict[str, dict] = {}
    for prof in doc["profiles"]:
        own: Counter[str] = Counter()
        own_lines: Counter[str] = Counter()
        total: Counter[str] = Counter()
        samples = 0
        for stack, weight in zip(prof["samples"], prof["weights"], strict=True):
            if not stack:
                continue
            samples += weight
            own[_func(frames[stack[-1]])] += weight
            own_lines[_func(frames[stack[-1]], by_line=True)] += weight
            for name in {_func(frames[i]) for i in stack}:
                total[name] += weight
        if not samples:
            continue

        def pct(counter: Counter[str], k: int, total_samples: float = samples) -> list:
            return [(round(100 * c / total_samples, 1), f) for f, c in counter.most_common(k)]

        name = prof["name"].split('"')[1] if '"' in prof["name"] else prof["name"]
        out[name] = {
            "samples": len(prof["samples"]),
            "own": pct(own, n),
            "own_lines": pct(own_lines, n),
            "total": pct(total, n),
        }
    return out


def _func(frame: dict, by_line: bool = False) -> str:
    file = frame.get("file") or ""
    for marker in ("site-packages/", f"python{sys.version_info[0]}.{sys.version_info[1]}/", REPO):
        if marker in file:
            file = file.split(marker, 1)[1]
            break
    line = f":{frame.get('line')}" if by_line else ""
    return f"{frame.get('name', '?')} ({file}{line})"
