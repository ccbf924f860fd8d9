"""The schema, as numbered migrations: ``MIGRATIONS[n]`` takes a database from n to n + 1.

Times are epoch milliseconds (INTEGER). Statuses are stored as ``STATUS_CODES``.
Response times in rollups are also counted in ``RT_BUCKETS`` (upper bounds in ms, the last
open-ended), so percentiles over months need no raw rows.
"""

from __future__ import annotations

from uptimed.models import Status

STATUS_CODES = {Status.INITIAL: 0, Status.UP: 1, Status.DOWN: 2}
STATUS_OF_CODE = {code: status for status, code in STATUS_CODES.items()}
RT_BUCKETS = (
    10, 20, 30, 50, 75, 100, 150, 200, 300, 500,
    750, 1000, 1500, 2000, 3000, 5000, 7500, 10000, 30000,
)  # fmt: skip
HIST_COLUMNS = tuple(f"h{i}" for i in range(len(RT_BUCKETS) + 1))


def _rollup_table(name: str) -> str:
    hist = ", ".join(f"{h} INTEGER NOT NULL DEFAULT 0" for h in HIST_COLUMNS)
    return f"""
    CREATE TABLE {name} (
        site_id INTEGER NOT NULL REFERENCES sites(id) ON DELETE CASCADE,
        bucket INTEGER NOT NULL,
        checks INTEGER NOT NULL,
        up INTEGER NOT NULL,
        rt_sum INTEGER NOT NULL,
        rt_max INTEGER NOT NULL,
        {hist},
        PRIMARY KEY (site_id, bucket)
    ) WITHOUT ROWID;
    """


MIGRATIONS: list[str] = [
    # 0 -> 1: sites, their check history and their Discord webhooks.
    """
    CREATE TABLE sites (
        id INTEGER PRIMARY KEY,
        url TEXT NOT NULL,
        name TEXT NOT NULL,
        check_interval_seconds INTEGER NOT NULL,
        expected_status_code INTEGER NOT NULL,
        created_at INTEGER NOT NULL,
        status TEXT NOT NULL DEFAULT 'INITIAL',
        status_since INTEGER NOT NULL,
        last_checked INTEGER
    );
    CREATE TABLE history (
        id INTEGER PRIMARY KEY,
        site_id INTEGER NOT NULL REFERENCES sites(id) ON DELETE CASCADE,
        status TEXT NOT NULL,
        response_time_ms INTEGER,
        checked_at INTEGER NOT NULL,
        status_since INTEGER NOT NULL,
        reason TEXT
    );
    CREATE INDEX history_site_time ON history (site_id, checked_at);
    CREATE TABLE webhooks (
        id INTEGER PRIMARY KEY,
        site_id INTEGER NOT NULL REFERENCES sites(id) ON DELETE CASCADE,
        url TEXT NOT NULL,
        created_at INTEGER NOT NULL
    );
    CREATE INDEX webhooks_site ON webhooks (site_id);
    """,
    # 1 -> 2: the outbox. A message row is written in the transaction of the transition it tells
    # about, with a snapshot of the URL and the payload, so it survives a crash, a restart and
    # the deletion of its site and webhook. It is delivered in id order per URL.
    """
    CREATE TABLE outbox (
        id INTEGER PRIMARY KEY,
        webhook_id INTEGER REFERENCES webhooks(id) ON DELETE SET NULL,
        url TEXT NOT NULL,
        payload TEXT NOT NULL,
        created_at INTEGER NOT NULL,
        attempts INTEGER NOT NULL DEFAULT 0,
        last_error TEXT,
        delivered_at INTEGER,
        failed_at INTEGER
    );
    CREATE INDEX outbox_pending ON outbox (url, id)
        WHERE delivered_at IS NULL AND failed_at IS NULL;
    CREATE INDEX outbox_webhook ON outbox (webhook_id);
    ALTER TABLE webhooks ADD COLUMN last_delivery_at INTEGER;
    ALTER TABLE webhooks ADD COLUMN last_error TEXT;
    """,
    # 2 -> 3: history clustered by (site, time) with no separate index (about 30 bytes a row
    # instead of about 60: a range of one site's rows is one run of pages), status as a small
    # integer (STATUS_CODES), incidents, and minute/hour/day rollups for long windows.
    f"""
    CREATE TABLE history_v3 (
        site_id INTEGER NOT NULL REFERENCES sites(id) ON DELETE CASCADE,
        checked_at INTEGER NOT NULL,
        status INTEGER NOT NULL,
        response_time_ms INTEGER,
        status_since INTEGER NOT NULL,
        reason TEXT,
        PRIMARY KEY (site_id, checked_at)
    ) WITHOUT ROWID;
    INSERT OR IGNORE INTO history_v3
        SELECT site_id, checked_at, CASE status WHEN 'INITIAL' THEN 0 WHEN 'UP' THEN 1 ELSE 2 END,
               response_time_ms, status_since, reason
        FROM history ORDER BY site_id, checked_at;
    DROP TABLE history;
    ALTER TABLE history_v3 RENAME TO history;
    CREATE TABLE incidents (
        id INTEGER PRIMARY KEY,
        site_id INTEGER NOT NULL REFERENCES sites(id) ON DELETE CASCADE,
        started_at INTEGER NOT NULL,
        ended_at INTEGER,
        reason TEXT,
        checks_failed INTEGER NOT NULL DEFAULT 1
    );
    INSERT INTO incidents (site_id, started_at, ended_at, reason, checks_failed)
        SELECT d.site_id, d.status_since,
               (SELECT min(u.status_since) FROM history u
                 WHERE u.site_id = d.site_id AND u.status <> 2 AND u.checked_at > d.status_since),
               (SELECT f.reason FROM history f
                 WHERE f.site_id = d.site_id AND f.checked_at = d.status_since),
               count(*)
        FROM history d WHERE d.status = 2
        GROUP BY d.site_id, d.status_since ORDER BY d.status_since;
    CREATE INDEX incidents_site ON incidents (site_id, id);
    CREATE UNIQUE INDEX incidents_open ON incidents (site_id) WHERE ended_at IS NULL;
    CREATE TABLE meta (key TEXT PRIMARY KEY, value INTEGER NOT NULL) WITHOUT ROWID;
    {_rollup_table("rollup_minute")}
    {_rollup_table("rollup_hour")}
    {_rollup_table("rollup_day")}
    """,
    # 3 -> 4: per-site keep-alive (NULL: the global setting).
    """
    ALTER TABLE sites ADD COLUMN keep_alive INTEGER;
    """,
    # 4 -> 5: ids that only grow. Without AUTOINCREMENT SQLite hands the highest id out again
    # once its row is deleted, and bookmarks, dashboards and scripts then name another site.
    # The tables are rebuilt (SQLite cannot add AUTOINCREMENT in place) with foreign keys off
    # (see Store._migrate), so the rows that reference them stay; sqlite_sequence starts at
    # the highest id present.
    """
    CREATE TABLE sites_v5 (
        id INTEGER PRIMARY KEY AUTOINCREMENT,
        url TEXT NOT NULL,
        name TEXT NOT NULL,
        check_interval_seconds INTEGER NOT NULL,
        expected_status_code INTEGER NOT NULL,
        created_at INTEGER NOT NULL,
        status TEXT NOT NULL DEFAULT 'INITIAL',
        status_since INTEGER NOT NULL,
        last_checked INTEGER,
        keep_alive INTEGER
    );
    INSERT INTO sites_v5 (id, url, name, check_interval_seconds, expected_status_code,
                          created_at, status, status_since, last_checked, keep_alive)
        SELECT id, url, name, check_interval_seconds, expected_status_code,
               created_at, status, status_since, last_checked, keep_alive FROM sites;
    DROP TABLE sites;
    ALTER TABLE sites_v5 RENAME TO sites;
    CREATE TABLE webhooks_v5 (
        id INTEGER PRIMARY KEY AUTOINCREMENT,
        site_id INTEGER NOT NULL REFERENCES sites(id) ON DELETE CASCADE,
        url TEXT NOT NULL,
        created_at INTEGER NOT NULL,
        last_delivery_at INTEGER,
        last_error TEXT
    );
    INSERT INTO webhooks_v5 (id, site_id, url, created_at, last_delivery_at, last_error)
        SELECT id, site_id, url, created_at, last_delivery_at, last_error FROM webhooks;
    DROP TABLE webhooks;
    ALTER TABLE webhooks_v5 RENAME TO webhooks;
    CREATE INDEX webhooks_site ON webhooks (site_id);
    """,
    # 5 -> 6: an outbox row names its site and webhook as a snapshot, like its URL, for the
    # delivery log. No foreign key: "Monitoring ended" outlives the webhook rows its site's
    # deletion removes, while deleting one webhook drops its messages explicitly
    # (Store.delete_webhook). A webhook shows when its last error happened. Ids only grow: a
    # worker that still holds a dropped message's id must not find another message under it.
    """
    CREATE TABLE outbox_v5 (
        id INTEGER PRIMARY KEY AUTOINCREMENT,
        site_id INTEGER,
        webhook_id INTEGER,
        url TEXT NOT NULL,
        payload TEXT NOT NULL,
        created_at INTEGER NOT NULL,
        attempts INTEGER NOT NULL DEFAULT 0,
        last_error TEXT,
        delivered_at INTEGER,
        failed_at INTEGER
    );
    INSERT INTO outbox_v5
        SELECT o.id, w.site_id, o.webhook_id, o.url, o.payload, o.created_at, o.attempts,
               o.last_error, o.delivered_at, o.failed_at
        FROM outbox o LEFT JOIN webhooks w ON w.id = o.webhook_id ORDER BY o.id;
    DROP TABLE outbox;
    ALTER TABLE outbox_v5 RENAME TO outbox;
    CREATE INDEX outbox_pending ON outbox (url, id)
        WHERE delivered_at IS NULL AND failed_at IS NULL;
    CREATE INDEX outbox_webhook ON outbox (webhook_id);
    ALTER TABLE webhooks ADD COLUMN last_error_at INTEGER;
    """,
    # 6 -> 7: what a check asks and asserts (models.SiteIn; NULL: not set, and JSON text for
    # headers, accepted_status_codes and json_expected), pausing, and the paused spans, which
    # are not monitored time in /uptime.
    """
    ALTER TABLE sites ADD COLUMN paused INTEGER NOT NULL DEFAULT 0;
    ALTER TABLE sites ADD COLUMN method TEXT NOT NULL DEFAULT 'GET';
    ALTER TABLE sites ADD COLUMN headers TEXT;
    ALTER TABLE sites ADD COLUMN body TEXT;
    ALTER TABLE sites ADD COLUMN accepted_status_codes TEXT;
    ALTER TABLE sites ADD COLUMN body_contains TEXT;
    ALTER TABLE sites ADD COLUMN body_not_contains TEXT;
    ALTER TABLE sites ADD COLUMN json_query TEXT;
    ALTER TABLE sites ADD COLUMN json_expected TEXT;
    ALTER TABLE sites ADD COLUMN max_response_time_ms INTEGER;
    ALTER TABLE sites ADD COLUMN timeout_seconds REAL;
    ALTER TABLE sites ADD COLUMN follow_redirects INTEGER NOT NULL DEFAULT 1;
    ALTER TABLE sites ADD COLUMN verify_tls INTEGER NOT NULL DEFAULT 1;
    CREATE TABLE pauses (
        id INTEGER PRIMARY KEY,
        site_id INTEGER NOT NULL REFERENCES sites(id) ON DELETE CASCADE,
        started_at INTEGER NOT NULL,
        ended_at INTEGER
    );
    CREATE INDEX pauses_site ON pauses (site_id, started_at);
    """,
    # 7 -> 8: TCP checks (tls), when a state changes and who hears of it (thresholds, retry
    # interval, reminders, certificate warnings, mutes); the certificate the site's latest TLS
    # check saw and the lowest warning threshold sent for it; the status its webhooks were
    # last told (a mute holds messages back: the sites_untold index finds the sites to tell
    # when it ends); when an open incident was last reminded of.
    """
    ALTER TABLE sites ADD COLUMN tls INTEGER NOT NULL DEFAULT 0;
    ALTER TABLE sites ADD COLUMN failure_threshold INTEGER NOT NULL DEFAULT 1;
    ALTER TABLE sites ADD COLUMN success_threshold INTEGER NOT NULL DEFAULT 1;
    ALTER TABLE sites ADD COLUMN retry_interval_seconds INTEGER;
    ALTER TABLE sites ADD COLUMN renotify_every_seconds INTEGER;
    ALTER TABLE sites ADD COLUMN tls_expiry_warn_days TEXT NOT NULL DEFAULT '[14, 7, 3, 1]';
    ALTER TABLE sites ADD COLUMN alerts_muted_until INTEGER;
    ALTER TABLE sites ADD COLUMN tls_subject TEXT;
    ALTER TABLE sites ADD COLUMN tls_issuer TEXT;
    ALTER TABLE sites ADD COLUMN tls_expires_at INTEGER;
    ALTER TABLE sites ADD COLUMN tls_warned_days INTEGER;
    ALTER TABLE sites ADD COLUMN told_status TEXT NOT NULL DEFAULT 'INITIAL';
    UPDATE sites SET told_status = status;
    CREATE INDEX sites_untold ON sites (id) WHERE told_status <> status;
    ALTER TABLE incidents ADD COLUMN reminded_at INTEGER;
    """,
    # 8 -> 9: the outbox holds what happened (``event``: models.Event as JSON), rendered when
    # it is sent, so that events to one URL can share a message; a body rendered before this
    # version (``payload``: pending at the upgrade) is carried over and sent as it is. The
    # id sequence carries over too (ids only grow, see 5 -> 6). A webhook that failed for good
    # (404, 401) is disabled and takes no events until it is enabled again. The spans when
    # the monitor itself was offline (its connectivity checks failed: nothing was checked),
    # and the sites whose failed checks it set aside then, whose webhooks hear of the span.
    """
    CREATE TABLE outbox_v9 (
        id INTEGER PRIMARY KEY AUTOINCREMENT,
        site_id INTEGER,
        webhook_id INTEGER,
        url TEXT NOT NULL,
        event TEXT,
        payload TEXT,
        created_at INTEGER NOT NULL,
        attempts INTEGER NOT NULL DEFAULT 0,
        last_error TEXT,
        delivered_at INTEGER,
        failed_at INTEGER,
        CHECK ((event IS NULL) <> (payload IS NULL))
    );
    INSERT INTO outbox_v9 (id, site_id, webhook_id, url, event, payload, created_at, attempts,
                           last_error, delivered_at, failed_at)
        SELECT id, site_id, webhook_id, url, NULL, payload, created_at, attempts, last_error,
               delivered_at, failed_at
        FROM outbox ORDER BY id;
    DELETE FROM sqlite_sequence WHERE name = 'outbox_v9';
    INSERT INTO sqlite_sequence (name, seq)
        SELECT 'outbox_v9', seq FROM sqlite_sequence WHERE name = 'outbox';
    DROP TABLE outbox;
    ALTER TABLE outbox_v9 RENAME TO outbox;
    CREATE INDEX outbox_pending ON outbox (url, id)
        WHERE delivered_at IS NULL AND failed_at IS NULL;
    CREATE INDEX outbox_webhook ON outbox (webhook_id);
    ALTER TABLE webhooks ADD COLUMN enabled INTEGER NOT NULL DEFAULT 1;
    ALTER TABLE webhooks ADD COLUMN disabled_at INTEGER;
    CREATE TABLE offline (
        id INTEGER PRIMARY KEY,
        started_at INTEGER NOT NULL,
        last_seen_at INTEGER NOT NULL,
        ended_at INTEGER
    );
    CREATE TABLE offline_sites (
        offline_id INTEGER NOT NULL REFERENCES offline(id) ON DELETE CASCADE,
        site_id INTEGER NOT NULL,
        PRIMARY KEY (offline_id, site_id)
    ) WITHOUT ROWID;
    """,
    # 9 -> 10: what the public status page and the badges show (models.SiteIn.public, show_url).
    """
    ALTER TABLE sites ADD COLUMN public INTEGER NOT NULL DEFAULT 0;
    ALTER TABLE sites ADD COLUMN show_url INTEGER NOT NULL DEFAULT 0;
    """,
    # 10 -> 11: sites and webhooks declared in the config file (source 'config', named by
    # their key: a [[sites]] key, a [webhooks.NAME] name) beside those made through the API
    # ('api'); a webhook without a site hears every site, present and future. The webhooks
    # table is rebuilt for its nullable site_id, with its id sequence (ids only grow, 5 -> 6).
    """
    ALTER TABLE sites ADD COLUMN source TEXT NOT NULL DEFAULT 'api';
    ALTER TABLE sites ADD COLUMN key TEXT;
    CREATE UNIQUE INDEX sites_key ON sites (key) WHERE key IS NOT NULL;
    CREATE TABLE webhooks_v11 (
        id INTEGER PRIMARY KEY AUTOINCREMENT,
        site_id INTEGER REFERENCES sites(id) ON DELETE CASCADE,
        url TEXT NOT NULL,
        created_at INTEGER NOT NULL,
        last_delivery_at INTEGER,
        last_error TEXT,
        last_error_at INTEGER,
        enabled INTEGER NOT NULL DEFAULT 1,
        disabled_at INTEGER,
        source TEXT NOT NULL DEFAULT 'api',
        key TEXT
    );
    INSERT INTO webhooks_v11 (id, site_id, url, created_at, last_delivery_at, last_error,
                              last_error_at, enabled, disabled_at)
        SELECT id, site_id, url, created_at, last_delivery_at, last_error, last_error_at,
               enabled, disabled_at
        FROM webhooks ORDER BY id;
    DELETE FROM sqlite_sequence WHERE name = 'webhooks_v11';
    INSERT INTO sqlite_sequence (name, seq)
        SELECT 'webhooks_v11', seq FROM sqlite_sequence WHERE name = 'webhooks';
    DROP TABLE webhooks;
    ALTER TABLE webhooks_v11 RENAME TO webhooks;
    CREATE INDEX webhooks_site ON webhooks (site_id);
    CREATE INDEX webhooks_url ON webhooks (url);
    """,
]
SCHEMA_VERSION = len(MIGRATIONS)


def rt_bucket_sql(column: str) -> str:
    """SQL giving the RT_BUCKETS index of a response time (the last bucket is open-ended)."""
    cases = " ".join(f"WHEN {column} < {bound} THEN {i}" for i, bound in enumerate(RT_BUCKETS))
    return f"CASE {cases} ELSE {len(RT_BUCKETS)} END"
