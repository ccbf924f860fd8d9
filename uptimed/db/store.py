"""The store: all SQL of uptimed, in plain text, one module per thing stored.

``Store`` is the connection (``connection.py``: opening, migrations, transactions) with the
queries of each: ``sites.py``, ``history.py`` (checks, transitions, incidents), ``webhooks.py``,
``outbox.py``, ``alerts.py`` (reminders, mute ends, certificates), ``offline.py`` (the spans
when the monitor itself was offline) and ``declarations.py`` (the config file's sites and
webhooks made to match it). Reports for the API are in ``reports.py``, rollups and pruning in
``maintenance.py``.

Errors: ``NotFound`` (a site or webhook id that does not exist); ``DatabaseUnavailable`` (at
``open``: a path, file or directory that cannot hold a writable database, one line with the
reason); anything else is a bug or a broken disk and propagates.
"""

from __future__ import annotations

from uptimed.db.alerts import AlertQueries
from uptimed.db.declarations import DeclarationQueries
from uptimed.db.history import HistoryQueries
from uptimed.db.offline import OfflineQueries
from uptimed.db.outbox import OutboxQueries
from uptimed.db.webhooks import WebhookQueries


class Store(
    WebhookQueries,
    HistoryQueries,
    OutboxQueries,
    AlertQueries,
    OfflineQueries,
    DeclarationQueries,
):
    """Owns the connections; create with ``await Store.open(path)``, end with ``close()``."""
