"""One uptimed per database: an OS lock on ``<database>.lock`` held for the life of the process.

Two processes on one database would both check and both deliver every message. ``flock`` is
released by the kernel when the holder exits in any way (``kill -9`` included), so a stale lock
file never blocks a start; the file is left in place (deleting it would race with a starting
process). It holds the holder's pid, for the second process' one-line refusal.
"""

from __future__ import annotations

import errno
import os
from pathlib import Path


class AlreadyRunning(Exception):
    """Another process holds the lock; ``str(e)`` is the line to print."""


def lock_path(database: Path) -> Path:
    return database.with_name(database.name + ".lock")


def acquire(database: Path) -> int:
    """Lock ``database`` for this process and return the lock's descriptor: keep it open (it is
    not inherited by children: ``O_CLOEXEC``). Raises ``AlreadyRunning``, or ``OSError`` when the
    lock file cannot be created (a missing or unwritable directory)."""
    import fcntl  # POSIX only: process.py does not lock on Windows

    path = lock_path(database)
    fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o644)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError as e:
        holder = os.pread(fd, 32, 0).decode(errors="replace").strip() or "unknown"
        os.close(fd)
        if e.errno in (errno.EWOULDBLOCK, errno.EAGAIN):
            raise AlreadyRunning(
                f"database {database.absolute()} is in use by another uptimed (pid {holder});"
                f" one process per database (lock: {path.absolute()})"
            ) from None
        raise
    os.ftruncate(fd, 0)
    os.pwrite(fd, f"{os.getpid()}\n".encode(), 0)
    return fd
