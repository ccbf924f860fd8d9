"""Storage: all SQL of uptimed. ``store.Store`` is the connection with the daemon's reads and
writes (one module per thing stored: ``sites``, ``history``, ``webhooks``, ``outbox``),
``reports`` the read-only history queries of the API, ``maintenance`` rollups and pruning."""

from uptimed.db.connection import NotFound
from uptimed.db.schema import SCHEMA_VERSION
from uptimed.db.store import Store
from uptimed.models import MAX_SQLITE_INT

__all__ = ["MAX_SQLITE_INT", "SCHEMA_VERSION", "NotFound", "Store"]
