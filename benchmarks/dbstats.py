"""Read uptimed's SQLite file from outside (read-only) to count checks and their lateness.

The grid: a site created through the API is scheduled at ``created_at + k * interval`` (its job
starts a few ms after ``created_at``, the insert's commit time, so lateness here is an upper
bound by that much). A check row belongs to grid point ``k = floor((checked_at - created_at +
TOLERANCE) / interval)``; its lateness is ``checked_at`` minus that point. A check more than one
interval late therefore lands on the next point, and the point it belonged to counts as missed.

Works with both history layouts seen so far: status as text ('INITIAL', 'UP', 'DOWN') or as
codes (0, 1, 2), with or without a rowid. Also here: bytes per history row from ``dbstat``, and
writing sites straight into the file for the 100,000-site restart test (the rows
``Store.insert_site`` writes: the site and its INITIAL history row).
"""

from __future__ import annotations

import bisect
import math
import sqlite3
from collections import Counter
from collections.abc import Callable, Collection, Sequence
from pathlib import Path

TOLERANCE_MS = 100  # a check may start a few ms "early" against created_at's grid
NOT_INITIAL = "status NOT IN ('INITIAL', 0)"  # text or code, whichever the schema stores
DOWN = ("DOWN", 2)


def connect_ro(path: Path) -> sqlite3.Connection:
    return sqlite3.connect(f"file:{path}?mode=ro", uri=True, timeout=10)


def percentiles(values: Sequence[float], points: Sequence[float] = (50, 90, 99, 99.9)) -> dict:
    """Nearest-rank percentiles plus max and count; empty input gives Nones."""
    out: dict[str, float | int | None] = {"n": len(values)}
    ordered = sorted(values)
    for p in points:
        key = f"p{p:g}"
        out[key] = ordered[max(0, math.ceil(p / 100 * len(ordered)) - 1)] if ordered else None
    out["max"] = ordered[-1] if ordered else None
    return out


def window_stats(
    path: Path,
    ids: tuple[int, int],
    interval_s: int,
    w0: int,
    w1: int,
    grace: int,
    buckets: int = 10,
    origins: dict[int, int] | None = None,
    spans: Sequence[tuple[int, int]] = (),
) -> dict:
    """Scheduled, done, missed and late checks of sites ``ids`` (inclusive) in ``[w0, w1)`` ms.

    Rows up to ``w1 + grace`` are read, so a late check of a point inside the window counts.
    ``done_all_sites`` counts every check row that started inside the window (for CPU/check).
    ``origins`` (site id -> a point of its grid, ms) limits the analysis to those sites (the
    healthy ones of ``--hung``) and gives their grids (default: every site, from created_at).
    ``spans`` (start, end) ms, sorted, apart: the lateness of the checks whose grid point lies
    in one of them is also given alone (``in_spans``: e.g. the checks due during a scrape).
    """
    step = interval_s * 1000
    conn = connect_ro(path)
    try:
        created = origins or dict(
            conn.execute("SELECT id, created_at FROM sites WHERE id BETWEEN ? AND ?", ids)
        )
        scheduled = sum(
            max(0, math.ceil((w1 - c) / step) - math.ceil((w0 - c) / step))
            for c in created.values()
        )
        rows = conn.execute(
            "SELECT site_id, checked_at, status, response_time_ms, reason FROM history"
            f" WHERE site_id BETWEEN ? AND ? AND {NOT_INITIAL}"
            " AND checked_at >= ? AND checked_at < ?",
            (*ids, w0 - step, w1 + grace),
        ).fetchall()
    finally:
        conn.close()
    done_all = count_checks(path, w0, w1)
    seen: set[tuple[int, int]] = set()
    late: list[int] = []
    rtt: list[int] = []
    reasons: Counter[str] = Counter()
    duplicates = down = done_in_window = 0
    width = max(1, (w1 - w0) // buckets)
    per_bucket: list[list[int]] = [[] for _ in range(buckets)]
    span_starts = [a for a, _ in spans]
    in_spans: list[int] = []
    for site_id, checked_at, status, response_ms, reason in rows:
        if (c := created.get(site_id)) is None:
            continue
        k = (checked_at - c + TOLERANCE_MS) // step
        point = c + k * step
        if w0 <= checked_at < w1:
            done_in_window += 1
        if not w0 <= point < w1:
            continue
        if (site_id, k) in seen:
            duplicates += 1
            continue
        seen.add((site_id, k))
        lateness = checked_at - point
        late.append(lateness)
        per_bucket[min(buckets - 1, (point - w0) // width)].append(lateness)
        j = bisect.bisect_right(span_starts, point) - 1 if spans else -1
        if j >= 0 and point < spans[j][1]:
            in_spans.append(lateness)
        rtt.append(response_ms)
        if status in DOWN:
            down += 1
            reasons[reason] += 1
    seconds = (w1 - w0) / 1000
    return {
        "window_s": seconds,
        "sites": len(created),
        "scheduled": scheduled,
        "scheduled_per_s": scheduled / seconds,
        "done": len(seen),
        "done_started_in_window": done_in_window,
        "done_per_s": done_in_window / seconds,
        "done_all_sites": done_all,
        "missed": scheduled - len(seen),
        "duplicates": duplicates,
        "down": down,
        "down_reasons": dict(reasons.most_common(3)),
        "lateness_ms": percentiles(late),
        "late_over_500ms": sum(1 for x in late if x > 500),
        "response_time_ms": percentiles(rtt),
        **({"in_spans": {**percentiles(in_spans), "spans": len(spans)}} if spans else {}),
        "buckets": [
            {"start_s": i * width / 1000, "n": len(b), "p99_ms": percentiles(b)["p99"]}
            for i, b in enumerate(per_bucket)
        ],
    }


def created_at(path: Path, ids: tuple[int, int], skip: Collection[int] = ()) -> dict[int, int]:
    """``created_at`` of the sites ``ids`` (inclusive) but ``skip``: their grids' origin."""
    conn = connect_ro(path)
    try:
        rows = conn.execute("SELECT id, created_at FROM sites WHERE id BETWEEN ? AND ?", ids)
        return {i: c for i, c in rows if i not in skip}
    finally:
        conn.close()


def sites_with_url(path: Path, ids: tuple[int, int], fragment: str) -> set[int]:
    """Ids of the sites ``ids`` (inclusive) whose URL contains ``fragment``."""
    conn = connect_ro(path)
    try:
        rows = conn.execute(
            "SELECT id FROM sites WHERE id BETWEEN ? AND ? AND instr(url, ?) > 0", (*ids, fragment)
        )
        return {i for (i,) in rows}
    finally:
        conn.close()


def last_status(path: Path, ids: set[int], before: int) -> dict[int, str]:
    """Per site of ``ids``: the status of its last check started before ``before`` (ms),
    as text; sites never checked by then are absent."""
    if not ids:
        return {}
    names = {0: "INITIAL", 1: "UP", 2: "DOWN"}
    conn = connect_ro(path)
    try:
        # SQLite gives the bare column (status) of the row holding max(checked_at).
        rows = conn.execute(
            "SELECT site_id, status, max(checked_at) FROM history"
            f" WHERE site_id BETWEEN ? AND ? AND {NOT_INITIAL} AND checked_at < ?"
            " GROUP BY site_id",
            (min(ids), max(ids), before),
        ).fetchall()
    finally:
        conn.close()
    return {i: names.get(st, str(st)) for i, st, _ in rows if i in ids}


def alerts(path: Path, ids: set[int], start: int, end: int) -> dict[str, int]:
    """DOWN checks and incidents of the sites ``ids`` in ``[start, end)`` ms (an incident
    counts when it started then), and how many of the sites had either: false alerts when
    the sites are healthy. ``sites_whole_run`` counts them at any time."""
    if not ids:
        return {"sites": 0, "down_rows": 0, "incidents": 0, "sites_whole_run": 0}
    span = (min(ids), max(ids))
    conn = connect_ro(path)
    try:
        down = conn.execute(
            "SELECT site_id, checked_at FROM history WHERE site_id BETWEEN ? AND ?"
            " AND status IN (?, ?)",
            (*span, *DOWN),
        ).fetchall()
        try:
            incidents = conn.execute(
                "SELECT site_id, started_at FROM incidents WHERE site_id BETWEEN ? AND ?", span
            ).fetchall()
        except sqlite3.OperationalError:  # a build without the table
            incidents = []
    finally:
        conn.close()
    down = [(i, t) for i, t in down if i in ids]
    incidents = [(i, t) for i, t in incidents if i in ids]
    in_window = [(i, t) for i, t in down + incidents if start <= t < end]
    return {
        "sites": len({i for i, _ in in_window}),
        "down_rows": sum(1 for _, t in down if start <= t < end),
        "incidents": sum(1 for _, t in incidents if start <= t < end),
        "sites_whole_run": len({i for i, _ in down + incidents}),
    }


def grid_origins(
    path: Path, ids: tuple[int, int], interval_s: int, start: int, end: int
) -> dict[int, int]:
    """Per site of ``ids``: its least-late check in ``[start, end)`` ms, as the origin of its
    grid. For sites whose grid the harness did not set (uptimed may resume a seeded grid or
    respread a site), the phase is the one with the least lateness among the site's checks:
    lateness measured from it misses what all of a site's checks share (a steady backlog
    shows as missed checks and checks/s instead)."""
    step = interval_s * 1000
    conn = connect_ro(path)
    try:
        rows = conn.execute(
            "SELECT site_id, checked_at FROM history WHERE site_id BETWEEN ? AND ?"
            f" AND {NOT_INITIAL} AND checked_at >= ? AND checked_at < ? ORDER BY checked_at",
            (*ids, start, end),
        ).fetchall()
    finally:
        conn.close()
    first: dict[int, int] = {}
    least: dict[int, int] = {}
    for site_id, at in rows:
        ref = first.setdefault(site_id, at)
        d = (at - ref) % step
        d = d - step if d > step // 2 else d  # in (-step/2, step/2]: the phase around ref's
        least[site_id] = min(least.get(site_id, 0), d)
    return {i: first[i] + d for i, d in least.items()}


def count_checks(path: Path, start: int, end: int) -> int:
    """Check rows (any site) that started in ``[start, end)`` ms."""
    conn = connect_ro(path)
    try:
        (n,) = conn.execute(
            f"SELECT count(*) FROM history WHERE {NOT_INITIAL}"
            " AND checked_at >= ? AND checked_at < ?",
            (start, end),
        ).fetchone()
    finally:
        conn.close()
    return n


def first_check_delays(path: Path, ids: tuple[int, int]) -> dict:
    """Per site: first check minus creation, in ms (the start-up of a new site)."""
    conn = connect_ro(path)
    try:
        delays = [
            d
            for (d,) in conn.execute(
                "SELECT min(h.checked_at) - s.created_at FROM sites s JOIN history h"
                f" ON h.site_id = s.id AND h.{NOT_INITIAL}"
                " WHERE s.id BETWEEN ? AND ? GROUP BY s.id",
                ids,
            )
        ]
    finally:
        conn.close()
    return percentiles(delays, (50, 99))


def storage(path: Path) -> dict:
    """Bytes of the history table and its indexes per history row (pages, so on-disk bytes)."""
    conn = connect_ro(path)
    try:
        (rows,) = conn.execute("SELECT count(*) FROM history").fetchone()
        names = ["history"] + [
            n
            for (n,) in conn.execute(
                "SELECT name FROM sqlite_master WHERE type = 'index' AND tbl_name = 'history'"
            )
        ]
        try:
            sizes = dict(conn.execute("SELECT name, sum(pgsize) FROM dbstat GROUP BY name"))
            method = "dbstat: pages of the history table and its indexes"
            history_bytes = sum(sizes.get(n, 0) for n in names)
        except sqlite3.OperationalError:
            sizes = {}
            method = "file size (dbstat not available in this SQLite build)"
            history_bytes = path.stat().st_size
    finally:
        conn.close()
    wal = path.with_name(path.name + "-wal")
    return {
        "method": method,
        "history_rows": rows,
        "history_bytes": history_bytes,
        "bytes_per_row": history_bytes / rows if rows else None,
        "by_object": {n: sizes.get(n) for n in names},
        "all_objects_bytes": sum(sizes.values()) if sizes else None,
        "file_bytes": path.stat().st_size,
        "wal_bytes": wal.stat().st_size if wal.exists() else 0,
    }


def insert_sites_direct(
    path: Path,
    count: int,
    interval_s: int,
    url_for: Callable[[int], str],
    now_ms: int | Callable[[], int],
    *,
    checked_before: bool = True,
) -> tuple[int, int]:
    """Write ``count`` sites straight into the file (uptimed must be stopped).

    Each site gets the rows ``Store.insert_site`` writes (the site, its INITIAL history row,
    created a day ago). With ``checked_before`` it also has one UP check in the last interval
    before ``now_ms`` (spread evenly over it), as if uptimed had just been stopped; without,
    it was never checked. Returns the inclusive id range; the schema must already exist.
    A callable ``now_ms`` is read once the sites are written, just before their checks, so
    the last check of each lies in the interval that ends as the insertion does.
    """
    started_ms = now_ms() if callable(now_ms) else now_ms
    created = started_ms - 86_400_000
    step = interval_s * 1000
    conn = sqlite3.connect(path, isolation_level=None)
    try:
        conn.execute("BEGIN IMMEDIATE")
        (last,) = conn.execute("SELECT coalesce(max(id), 0) FROM sites").fetchone()
        types = {row[1]: row[2].upper() for row in conn.execute("PRAGMA table_info(history)")}
        codes = types.get("status") == "INTEGER"
        initial, up = (0, 1) if codes else ("INITIAL", "UP")
        conn.executemany(
            "INSERT INTO sites (url, name, check_interval_seconds, expected_status_code,"
            " created_at, status, status_since) VALUES (?, ?, ?, 200, ?, 'INITIAL', ?)",
            ((url_for(i), f"direct-{i}", interval_s, created, created) for i in range(count)),
        )
        conn.execute(
            "INSERT INTO history (site_id, status, response_time_ms, checked_at, status_since)"
            " SELECT id, ?, NULL, created_at, created_at FROM sites WHERE id > ?",
            (initial, last),
        )
        if checked_before:
            # The last check of site k lies (k * golden ratio mod 1) of an interval before now.
            now_ms = now_ms() if callable(now_ms) else now_ms
            checks = [
                (site_id, now_ms - 1 - int((k * 0.6180339887498949) % 1.0 * step))
                for k, site_id in enumerate(
                    r[0] for r in conn.execute("SELECT id FROM sites WHERE id > ?", (last,))
                )
            ]
            conn.executemany(
                "INSERT INTO history"
                " (site_id, status, response_time_ms, checked_at, status_since)"
                " VALUES (?, ?, 1, ?, ?)",
                ((site_id, up, at, created + 1) for site_id, at in checks),
            )
            conn.executemany(
                "UPDATE sites SET status = 'UP', status_since = ?, last_checked = ? WHERE id = ?",
                ((created + 1, at, site_id) for site_id, at in checks),
            )
            site_columns = {row[1] for row in conn.execute("PRAGMA table_info(sites)")}
            if "told_status" in site_columns:  # schema 8: their webhooks were told (they have none)
                conn.execute("UPDATE sites SET told_status = status WHERE id > ?", (last,))
        conn.execute("COMMIT")
        (first, end) = conn.execute(
            "SELECT min(id), max(id) FROM sites WHERE id > ?", (last,)
        ).fetchone()
    finally:
        conn.close()
    return first, end


class CheckWatcher:
    """Sees when every site of ``ids`` has a check row newer than ``since`` (epoch ms).

    The history rows are the truth (a daemon may update ``sites`` lazily). ``checked()`` counts
    sites with such a row through the ``(site_id, checked_at)`` index, one seek per site and no
    rows to Python, so polling every couple of seconds stays cheap at 100,000 sites.
    ``first_checks()`` reads each site's first check after ``since``; call it once uptimed has
    stopped (rows it batches are then written).
    """

    def __init__(self, path: Path, ids: tuple[int, int], since: int) -> None:
        self._path = path
        self._ids = ids
        self._since = since
        conn = connect_ro(path)
        try:
            (self.sites,) = conn.execute(
                "SELECT count(*) FROM sites WHERE id BETWEEN ? AND ?", ids
            ).fetchone()
        finally:
            conn.close()

    def checked(self) -> int:
        conn = connect_ro(self._path)
        try:
            (n,) = conn.execute(
                "SELECT count(*) FROM sites s WHERE s.id BETWEEN ? AND ? AND EXISTS"
                " (SELECT 1 FROM history h WHERE h.site_id = s.id AND h.checked_at > ?"
                f" AND h.{NOT_INITIAL})",
                (*self._ids, self._since),
            ).fetchone()
        finally:
            conn.close()
        return n

    def first_checks(self) -> dict[int, int]:
        conn = connect_ro(self._path)
        try:
            return dict(
                conn.execute(
                    "SELECT s.id, (SELECT min(h.checked_at) FROM history h WHERE h.site_id = s.id"
                    f" AND h.checked_at > ? AND h.{NOT_INITIAL}) FROM sites s"
                    " WHERE s.id BETWEEN ? AND ?",
                    (self._since, *self._ids),
                )
            )
        finally:
            conn.close()
