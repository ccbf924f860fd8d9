"""Whether a path can hold uptimed's database, asked of the file system before SQLite is: SQLite
would open a read-only file read-only and fail only at the first write, and its errors do not
name the path."""

from __future__ import annotations

import logging
import os
import tempfile
from pathlib import Path

log = logging.getLogger(__name__)


class DatabaseUnavailable(RuntimeError):
    """The database cannot be opened, read or written at start; ``str(e)`` is one line:
    ``cannot open database /data/uptimed.db: permission denied``."""

    def __init__(self, path: Path, reason: str) -> None:
        super().__init__(f"cannot open database {path.absolute()}: {reason}")
        self.path, self.reason = path, reason


def log_created(path: Path) -> None:
    """At WARNING: a database that vanished (moved, deleted, a wrong DATABASE_URL) would
    otherwise come back empty without a word."""
    log.warning(
        "created a new, empty database %s: none was there (if one should be, it was moved or"
        " deleted, or DATABASE_URL names another file)",
        path.absolute(),
    )


def _os_reason(e: OSError) -> str:
    return (e.strerror or str(e)).lower()


def check_files(path: Path) -> bool:
    """What SQLite needs of the file system, with the OS's reason when it is missing: the
    directory (made if missing: a first start needs no mkdir) takes new files (the ``-wal`` and
    ``-shm`` beside the database), and an existing file opens for writing. Returns whether the
    database is new (no file, or an empty one). ``open`` calls it; the process calls it first,
    before it takes its lock."""
    parent = path.parent
    try:
        parent.mkdir(parents=True, exist_ok=True)
    except FileExistsError:
        raise DatabaseUnavailable(path, f"{parent.absolute()} is not a directory") from None
    except OSError as e:
        reason = f"cannot create {parent.absolute()}: {_os_reason(e)}"
        raise DatabaseUnavailable(path, reason) from e
    try:
        fd, probe = tempfile.mkstemp(dir=parent, prefix=f".{path.name}.probe-")
        os.close(fd)
        os.unlink(probe)
    except OSError as e:
        raise DatabaseUnavailable(
            path, f"{_os_reason(e)} (cannot create files in {parent.absolute()})"
        ) from e
    try:
        fd = os.open(path, os.O_RDWR)
    except FileNotFoundError:
        return True
    except OSError as e:  # EACCES or EROFS (read-only), EISDIR
        raise DatabaseUnavailable(path, _os_reason(e)) from e
    try:
        return os.fstat(fd).st_size == 0  # left empty by a start that failed: new all the same
    finally:
        os.close(fd)
