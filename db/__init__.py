"""The store: one repository API (``Store``) over embedded SQLite or MongoDB.

``open_store(url)`` is the only constructor the rest of copyhub needs; see docs/store.md.
"""
from __future__ import annotations

from .base import TRADE_STATUSES, Store, now_ms
from .errors import DuplicateAccount, StoreError, StoreUnavailable
from .urls import DEFAULT_MONGO_DB, mask_url, parse_store_url

__all__ = ["open_store", "Store", "StoreError", "StoreUnavailable", "DuplicateAccount",
           "TRADE_STATUSES", "DEFAULT_MONGO_DB", "mask_url", "now_ms"]


def open_store(url: str, *, ensure_indexes: bool = True) -> Store:
    """Open a store from its URL and (by default) create tables/indexes.

    - ``sqlite:///relative/path.db``, ``sqlite:////abs/path.db``, ``sqlite:///C:/x.db``,
      ``sqlite:///:memory:``; query options ``timeout`` (seconds to keep retrying a
      locked database, default 30) and ``synchronous`` (NORMAL|FULL).
    - ``mongodb://[user:pass@]host[:port][,host2...]/[db][?options]`` and
      ``mongodb+srv://``; db defaults to ``prop_copy_trader``.
    - ``mongomock://db`` — in-memory, shared by every store opened in this process.

    Raises StoreUnavailable when the backend cannot be reached or written, ValueError
    for a malformed URL. With MongoDB the connection check happens here because
    ``ensure_indexes`` talks to the server.
    """
    parsed = parse_store_url(url)
    if parsed.scheme == "sqlite":
        from .sqlite_store import SQLiteStore
        opts = parsed.options
        try:
            timeout = float(opts.get("timeout", 30))
        except ValueError:
            raise ValueError(f"sqlite URL option timeout must be a number, got {opts['timeout']!r}") from None
        return SQLiteStore(parsed.path, lock_timeout_s=timeout,
                           synchronous=opts.get("synchronous", "NORMAL"), label=parsed.masked)
    from .mongo_store import MongoStore, shared_mongomock_client
    if parsed.scheme == "mongomock":
        store = MongoStore(client=shared_mongomock_client(), db_name=parsed.db_name,
                           replica_set=any(k.lower() == "replicaset" for k in parsed.options))
        store.label = parsed.masked
    else:
        store = MongoStore(parsed.raw, db_name=parsed.db_name, secrets=parsed.secrets)
    if ensure_indexes:
        try:
            store.ensure_indexes()
        except BaseException:
            store.close()
            raise
    return store
