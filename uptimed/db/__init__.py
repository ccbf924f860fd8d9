"""Storage: all SQL of uptimed. ``store`` holds the connection and the writes of the daemon,
``reports`` the read-only history queries of the API, ``maintenance`` rollups and pruning."""

from uptimed.db.schema import SCHEMA_VERSION
from uptimed.db.store import MAX_SQLITE_INT, NotFound, Store

__all__ = ["MAX_SQLITE_INT", "SCHEMA_VERSION", "NotFound", "Store"]
