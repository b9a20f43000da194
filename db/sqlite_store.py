"""Embedded SQLite backend: one file shared by every process on one machine.

Why it is safe with many writer processes: WAL journal (readers never block the
writer), a busy timeout, every read-modify-write inside ``BEGIN IMMEDIATE`` (the write
lock is taken up front, so two writers never deadlock upgrading a read lock), short
transactions, and a bounded retry on "database is locked". Documents are stored as JSON
text next to the indexed columns that queries and unique keys need.
"""
from __future__ import annotations

import hashlib
import json
import os
import random
import sqlite3
import threading
import time
from collections.abc import Callable
from typing import Any, TypeVar

from .base import (
    Store,
    account_name,
    check_bus_key_args,
    check_field_names,
    check_lease_args,
    lease_clock,
    lease_is_released,
    next_lease,
    now_ms,
    statuses,
    trade_key,
)
from .errors import DuplicateAccount, StoreUnavailable
from .sqlite_checkpoint import Checkpointer

T = TypeVar("T")

SCHEMA_VERSION = 3  # 2: leases, 3: bus_keys
_SCHEMA = """
CREATE TABLE IF NOT EXISTS accounts (
    name TEXT PRIMARY KEY,
    doc  TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS trades (
    id            INTEGER PRIMARY KEY AUTOINCREMENT,
    slave_name    TEXT NOT NULL,
    master_name   TEXT NOT NULL,
    master_ticket NOT NULL,          -- no affinity: stored exactly as given (int stays int)
    status        TEXT,
    created_ms    INTEGER,
    doc           TEXT NOT NULL,
    UNIQUE (slave_name, master_name, master_ticket)
);
CREATE INDEX IF NOT EXISTS trades_created ON trades (created_ms, id);
CREATE INDEX IF NOT EXISTS trades_slave_status ON trades (slave_name, status);
CREATE INDEX IF NOT EXISTS trades_master_status ON trades (master_name, status);
CREATE TABLE IF NOT EXISTS events (
    id      INTEGER PRIMARY KEY AUTOINCREMENT,   -- monotonic in commit order
    ts_ms   INTEGER NOT NULL,
    kind    TEXT NOT NULL,
    node    TEXT,
    account TEXT,
    level   TEXT NOT NULL,
    data    TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS events_ts ON events (ts_ms);
CREATE INDEX IF NOT EXISTS events_account ON events (account, id);
CREATE INDEX IF NOT EXISTS events_kind ON events (kind, id);
CREATE TABLE IF NOT EXISTS nodes (
    name TEXT PRIMARY KEY,
    doc  TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS snapshots (
    id      INTEGER PRIMARY KEY AUTOINCREMENT,
    account TEXT NOT NULL,
    ts_ms   INTEGER NOT NULL,
    metrics TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS snapshots_account_ts ON snapshots (account, ts_ms);
CREATE TABLE IF NOT EXISTS flags (
    key   TEXT PRIMARY KEY,
    value TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS leases (
    account TEXT PRIMARY KEY,
    doc     TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS bus_keys (
    public_key TEXT PRIMARY KEY,
    name       TEXT NOT NULL,
    added_ms   INTEGER NOT NULL
);
"""


def _dumps(value: Any) -> str:
    # No sort_keys: key order is kept as written, like MongoDB does.
    return json.dumps(value, separators=(",", ":"), ensure_ascii=False)


RETRY_FIRST_S = 0.00005  # first wait for a locked store (s); doubles on each try
RETRY_MAX_S = 0.002  # longest wait between tries (s): ~500 cheap tries/s while another process holds the lock


def _is_busy(exc: sqlite3.OperationalError) -> bool:
    msg = str(exc).lower()
    return "locked" in msg or "busy" in msg


class SQLiteStore(Store):
    """The Store API on one SQLite file (``:memory:`` for throwaway stores).

    One connection per store object guarded by a re-entrant lock, so a store may be
    shared by threads; each process opens its own store.
    """

    def __init__(self, path: str, *, lock_timeout_s: float = 30.0, synchronous: str = "NORMAL",
                 label: str | None = None) -> None:
        self.path = path
        self.label = label or f"sqlite:///{path}"
        self.lock_timeout_s = float(lock_timeout_s)
        self._lock = threading.RLock()
        if synchronous.upper() not in ("OFF", "NORMAL", "FULL", "EXTRA"):
            raise ValueError(f"synchronous must be OFF, NORMAL, FULL or EXTRA, not {synchronous!r}")
        self._conn: sqlite3.Connection | None = None
        try:
            if path != ":memory:":
                parent = os.path.dirname(os.path.abspath(path))
                os.makedirs(parent, exist_ok=True)
            # timeout=0: SQLite's own busy handler is off; _retry waits (see there)
            self._conn = sqlite3.connect(path, timeout=0, isolation_level=None, check_same_thread=False)
        except (OSError, sqlite3.Error) as exc:
            raise StoreUnavailable(f"cannot open SQLite store {self.label}: "
                                   f"{type(exc).__name__}: {exc}") from None
        self.journal_mode = self._retry(lambda: self._setup(synchronous.upper()))
        self.ensure_indexes()
        # WAL checkpoints run in a background thread, never inside a trade's record (db/sqlite_checkpoint.py)
        self._checkpointer = Checkpointer(path).start() if self.journal_mode == "wal" else None

    def __repr__(self) -> str:
        return f"SQLiteStore({self.label!r})"

    # -- plumbing --------------------------------------------------------------------
    def _setup(self, synchronous: str) -> str:
        conn = self._require()
        conn.execute("PRAGMA busy_timeout=0")
        mode = conn.execute("PRAGMA journal_mode=WAL").fetchone()[0]
        conn.execute(f"PRAGMA synchronous={synchronous}")
        if str(mode).lower() == "wal":
            conn.execute("PRAGMA wal_autocheckpoint=0")  # the Checkpointer thread does it off the write path
        return str(mode).lower()

    def _require(self) -> sqlite3.Connection:
        if self._conn is None:
            raise StoreUnavailable(f"store {self.label} is closed")
        return self._conn

    def _retry(self, fn: Callable[[], T], *, write: bool = False) -> T:
        """Run ``fn`` (inside ``BEGIN IMMEDIATE`` when ``write``), retrying while the
        database is locked, up to ``lock_timeout_s``; map driver errors to StoreUnavailable.

        The wait is ours, not SQLite's busy handler: that one sleeps 1, 2, 5, 10, 15 ms ...
        between tries (whole 15.6 ms timer ticks on Windows), so a slave whose intent meets
        another node's 100 µs write waited a millisecond or more before its ``order_send``.
        Here the tries start RETRY_FIRST_S apart and double to RETRY_MAX_S, jittered
        (docs/store.md; ``bench/store_write.py --writers 10``).
        """
        deadline = time.monotonic() + self.lock_timeout_s
        delay = RETRY_FIRST_S
        with self._lock:
            while True:
                conn = self._require()
                try:
                    if write:
                        conn.execute("BEGIN IMMEDIATE")
                        try:
                            result = fn()
                            conn.execute("COMMIT")
                        except BaseException:
                            if conn.in_transaction:
                                conn.execute("ROLLBACK")
                            raise
                        return result
                    return fn()
                except sqlite3.OperationalError as exc:
                    if _is_busy(exc) and time.monotonic() < deadline:
                        time.sleep(delay * (0.5 + random.random()))
                        delay = min(delay * 2, RETRY_MAX_S)
                        continue
                    raise StoreUnavailable(self._describe(exc)) from None
                except sqlite3.IntegrityError:
                    raise
                except sqlite3.Error as exc:
                    raise StoreUnavailable(self._describe(exc)) from None

    def _describe(self, exc: Exception) -> str:
        text = str(exc)
        if isinstance(exc, sqlite3.OperationalError) and _is_busy(exc):
            return (f"SQLite store {self.label} stayed locked for more than "
                    f"{self.lock_timeout_s:g}s ({text})")
        return f"SQLite store {self.label} failed: {type(exc).__name__}: {text}"

    def _read(self, sql: str, args: tuple = ()) -> list[tuple]:
        return self._retry(lambda: self._require().execute(sql, args).fetchall())

    def _write(self, fn: Callable[[sqlite3.Connection], T]) -> T:
        return self._retry(lambda: fn(self._require()), write=True)

    # -- lifecycle -------------------------------------------------------------------
    def ensure_indexes(self) -> None:
        def create(conn: sqlite3.Connection) -> None:
            for stmt in _SCHEMA.split(";"):
                if stmt.strip():
                    conn.execute(stmt)
            conn.execute(f"PRAGMA user_version={SCHEMA_VERSION}")
        self._write(create)

    def close(self) -> None:
        if getattr(self, "_checkpointer", None) is not None:
            self._checkpointer.stop()
        with self._lock:
            if self._conn is not None:
                try:
                    self._conn.close()
                finally:
                    self._conn = None

    def ping(self) -> bool:
        try:
            return self._read("SELECT 1")[0][0] == 1
        except Exception:
            return False

    # -- accounts --------------------------------------------------------------------
    def list_accounts(self) -> list[dict]:
        return [json.loads(d) for (d,) in self._read("SELECT doc FROM accounts ORDER BY name")]

    def get_account(self, name: str) -> dict | None:
        rows = self._read("SELECT doc FROM accounts WHERE name=?", (name,))
        return json.loads(rows[0][0]) if rows else None

    def add_account(self, doc: dict) -> None:
        name = account_name(doc)
        check_field_names(doc)
        try:
            self._write(lambda c: c.execute("INSERT INTO accounts(name, doc) VALUES (?, ?)",
                                            (name, _dumps(doc))))
        except sqlite3.IntegrityError:
            raise DuplicateAccount(f"account {name!r} already exists") from None

    def upsert_account(self, doc: dict) -> bool:
        name = account_name(doc)
        check_field_names(doc)
        text = _dumps(doc)

        def upsert(conn: sqlite3.Connection) -> bool:
            row = conn.execute("SELECT doc FROM accounts WHERE name=?", (name,)).fetchone()
            if row is not None and json.loads(row[0]) == doc:
                return False
            conn.execute("INSERT INTO accounts(name, doc) VALUES (?, ?) "
                         "ON CONFLICT(name) DO UPDATE SET doc=excluded.doc", (name, text))
            return True
        return self._write(upsert)

    def _modify_account(self, name: str, change: Callable[[dict], dict]) -> bool:
        def modify(conn: sqlite3.Connection) -> bool:
            row = conn.execute("SELECT doc FROM accounts WHERE name=?", (name,)).fetchone()
            if row is None:
                return False
            old = json.loads(row[0])
            new = change(dict(old))
            if new == old:
                return False
            new_name = account_name(new)
            conn.execute("UPDATE accounts SET name=?, doc=? WHERE name=?",
                         (new_name, _dumps(new), name))
            return True
        try:
            return self._write(modify)
        except sqlite3.IntegrityError:
            raise DuplicateAccount("cannot rename account "
                                   f"{name!r}: the new name already exists") from None

    def update_account(self, name: str, fields: dict) -> bool:
        check_field_names(fields)
        if not fields:
            return False
        return self._modify_account(name, lambda d: {**d, **fields})

    def unset_account_fields(self, name: str, keys: list[str]) -> bool:
        keys = list(keys)
        check_field_names(keys)
        if "name" in keys:
            raise ValueError("cannot unset an account's 'name'")
        return self._modify_account(name, lambda d: {k: v for k, v in d.items() if k not in keys})

    def remove_account(self, name: str) -> bool:
        return self._write(lambda c: c.execute("DELETE FROM accounts WHERE name=?",
                                               (name,)).rowcount > 0)

    def accounts_version(self) -> str:
        h = hashlib.sha1()
        for name, doc in self._read("SELECT name, doc FROM accounts ORDER BY name"):
            h.update(name.encode() + b"\0" + doc.encode() + b"\n")
        return h.hexdigest()

    # -- trades ----------------------------------------------------------------------
    def record_intent(self, trade: dict) -> tuple[dict, bool]:
        slave, master, ticket = trade_key(trade)
        check_field_names(trade)
        t = now_ms()
        doc = {**trade}
        doc.setdefault("status", "PENDING")
        doc.setdefault("created_ms", t)
        doc.setdefault("updated_ms", t)

        def insert(conn: sqlite3.Connection) -> tuple[dict, bool]:
            cur = conn.execute(
                "INSERT INTO trades(slave_name, master_name, master_ticket, status, created_ms, doc)"
                " VALUES (?, ?, ?, ?, ?, ?) ON CONFLICT DO NOTHING",
                (slave, master, ticket, doc["status"], doc["created_ms"], _dumps(doc)))
            if cur.rowcount == 1:
                return doc, True
            row = conn.execute("SELECT doc FROM trades WHERE slave_name=? AND master_name=? "
                               "AND master_ticket=?", (slave, master, ticket)).fetchone()
            return json.loads(row[0]), False
        return self._write(insert)

    def update_trade(self, slave_name: str, master_name: str, master_ticket: Any,
                     fields: dict) -> dict | None:
        check_field_names(fields)
        for k in ("slave_name", "master_name", "master_ticket"):
            if k in fields and fields[k] != {"slave_name": slave_name, "master_name": master_name,
                                             "master_ticket": master_ticket}[k]:
                raise ValueError(f"update_trade cannot change the key field {k!r}")

        def update(conn: sqlite3.Connection) -> dict | None:
            row = conn.execute("SELECT id, doc FROM trades WHERE slave_name=? AND master_name=? "
                               "AND master_ticket=?", (slave_name, master_name, master_ticket)
                               ).fetchone()
            if row is None:
                return None
            doc = {**json.loads(row[1]), **fields}
            if "updated_ms" not in fields:
                doc["updated_ms"] = now_ms()
            conn.execute("UPDATE trades SET status=?, created_ms=?, doc=? WHERE id=?",
                         (doc.get("status"), doc.get("created_ms"), _dumps(doc), row[0]))
            return doc
        return self._write(update)

    def get_trade(self, slave_name: str, master_name: str, master_ticket: Any) -> dict | None:
        rows = self._read("SELECT doc FROM trades WHERE slave_name=? AND master_name=? "
                          "AND master_ticket=?", (slave_name, master_name, master_ticket))
        return json.loads(rows[0][0]) if rows else None

    @staticmethod
    def _trade_where(slave_name: str | None, master_name: str | None,
                     status: str | list[str] | None) -> tuple[str, list]:
        clauses, args = [], []
        if slave_name is not None:
            clauses.append("slave_name=?")
            args.append(slave_name)
        if master_name is not None:
            clauses.append("master_name=?")
            args.append(master_name)
        wanted = statuses(status)
        if wanted is not None:
            if not wanted:
                clauses.append("0")
            else:
                clauses.append(f"status IN ({','.join('?' * len(wanted))})")
                args.extend(wanted)
        return (" WHERE " + " AND ".join(clauses)) if clauses else "", args

    def list_trades(self, *, slave_name: str | None = None, master_name: str | None = None,
                    status: str | list[str] | None = None, limit: int | None = None) -> list[dict]:
        where, args = self._trade_where(slave_name, master_name, status)
        sql = f"SELECT doc FROM trades{where} ORDER BY created_ms, id"
        if limit is not None:
            sql += " LIMIT ?"
            args.append(int(limit))
        return [json.loads(d) for (d,) in self._read(sql, tuple(args))]

    def count_trades(self, *, slave_name: str | None = None, master_name: str | None = None,
                     status: str | list[str] | None = None) -> int:
        where, args = self._trade_where(slave_name, master_name, status)
        return int(self._read(f"SELECT COUNT(*) FROM trades{where}", tuple(args))[0][0])

    # -- events ----------------------------------------------------------------------
    def add_event(self, kind: str, *, node: str | None = None, account: str | None = None,
                  level: str = "info", **data: Any) -> None:
        check_field_names(data, what="event data")
        text = _dumps(data)
        self._write(lambda c: c.execute(
            "INSERT INTO events(ts_ms, kind, node, account, level, data) VALUES (?, ?, ?, ?, ?, ?)",
            (now_ms(), kind, node, account, level, text)))

    def list_events(self, *, since_ms: int | None = None, account: str | None = None,
                    kind: str | None = None, after_id: int | None = None, limit: int | None = 500,
                    tail: bool = False) -> list[dict]:
        clauses, args = [], []
        for col, op, val in (("ts_ms", ">=", since_ms), ("account", "=", account),
                             ("kind", "=", kind), ("id", ">", after_id)):
            if val is not None:
                clauses.append(f"{col}{op}?")
                args.append(val)
        where = (" WHERE " + " AND ".join(clauses)) if clauses else ""
        sql = (f"SELECT id, ts_ms, kind, node, account, level, data FROM events{where} "
               f"ORDER BY id {'DESC' if tail else 'ASC'}")
        if limit is not None:
            sql += " LIMIT ?"
            args.append(int(limit))
        rows = self._read(sql, tuple(args))
        if tail:
            rows.reverse()
        return [{"id": r[0], "ts_ms": r[1], "kind": r[2], "node": r[3], "account": r[4],
                 "level": r[5], "data": json.loads(r[6])} for r in rows]

    # -- nodes -----------------------------------------------------------------------
    def upsert_node(self, name: str, fields: dict) -> None:
        check_field_names(fields)

        def merge(conn: sqlite3.Connection) -> None:
            row = conn.execute("SELECT doc FROM nodes WHERE name=?", (name,)).fetchone()
            doc = json.loads(row[0]) if row else {}
            doc.update(fields)
            doc["name"] = name
            conn.execute("INSERT INTO nodes(name, doc) VALUES (?, ?) "
                         "ON CONFLICT(name) DO UPDATE SET doc=excluded.doc", (name, _dumps(doc)))
        self._write(merge)

    def get_node(self, name: str) -> dict | None:
        rows = self._read("SELECT doc FROM nodes WHERE name=?", (name,))
        return json.loads(rows[0][0]) if rows else None

    def list_nodes(self) -> list[dict]:
        return [json.loads(d) for (d,) in self._read("SELECT doc FROM nodes ORDER BY name")]

    def remove_node(self, name: str) -> bool:
        return self._write(lambda c: c.execute("DELETE FROM nodes WHERE name=?",
                                               (name,)).rowcount > 0)

    # -- snapshots -------------------------------------------------------------------
    def add_snapshot(self, account: str, ts_ms: int, metrics: dict) -> None:
        check_field_names(metrics, what="metric")
        text = _dumps(metrics)
        self._write(lambda c: c.execute(
            "INSERT INTO snapshots(account, ts_ms, metrics) VALUES (?, ?, ?)",
            (account, int(ts_ms), text)))

    def list_snapshots(self, account: str, *, since_ms: int | None = None,
                       until_ms: int | None = None, limit: int | None = None,
                       tail: bool = False) -> list[dict]:
        sql, args = "SELECT ts_ms, metrics FROM snapshots WHERE account=?", [account]
        if since_ms is not None:
            sql += " AND ts_ms>=?"
            args.append(since_ms)
        if until_ms is not None:
            sql += " AND ts_ms<=?"
            args.append(until_ms)
        order = "DESC" if tail else "ASC"
        sql += f" ORDER BY ts_ms {order}, id {order}"
        if limit is not None:
            sql += " LIMIT ?"
            args.append(int(limit))
        rows = self._read(sql, tuple(args))
        if tail:
            rows.reverse()
        return [{"account": account, "ts_ms": ts, "metrics": json.loads(m)} for ts, m in rows]

    # -- control flags ---------------------------------------------------------------
    def get_flag(self, key: str, default: Any = None) -> Any:
        rows = self._read("SELECT value FROM flags WHERE key=?", (key,))
        return json.loads(rows[0][0]) if rows else default

    def set_flag(self, key: str, value: Any) -> None:
        text = _dumps(value)
        self._write(lambda c: c.execute("INSERT INTO flags(key, value) VALUES (?, ?) "
                                        "ON CONFLICT(key) DO UPDATE SET value=excluded.value",
                                        (key, text)))

    def delete_flag(self, key: str) -> bool:
        return self._write(lambda c: c.execute("DELETE FROM flags WHERE key=?",
                                               (key,)).rowcount > 0)

    def list_flags(self, prefix: str = "") -> dict[str, Any]:
        rows = self._read("SELECT key, value FROM flags WHERE substr(key, 1, ?)=? ORDER BY key",
                          (len(prefix), prefix))
        return {k: json.loads(v) for k, v in rows}

    # -- leases ----------------------------------------------------------------------
    # Each operation reads and writes inside one BEGIN IMMEDIATE transaction (via
    # ``_write``), so the decision and the write are atomic across processes.
    @staticmethod
    def _lease_row(conn: sqlite3.Connection, account: str) -> dict | None:
        row = conn.execute("SELECT doc FROM leases WHERE account=?", (account,)).fetchone()
        return json.loads(row[0]) if row else None

    @staticmethod
    def _put_lease(conn: sqlite3.Connection, lease: dict) -> None:
        conn.execute("INSERT INTO leases(account, doc) VALUES (?, ?) "
                     "ON CONFLICT(account) DO UPDATE SET doc=excluded.doc",
                     (lease["account"], _dumps(lease)))

    def get_lease(self, account: str) -> dict | None:
        check_lease_args(account)
        rows = self._read("SELECT doc FROM leases WHERE account=?", (account,))
        return json.loads(rows[0][0]) if rows else None

    def list_leases(self) -> list[dict]:
        return [json.loads(d) for (d,) in self._read("SELECT doc FROM leases ORDER BY account")]

    def acquire_lease(self, account: str, holder_id: str, holder: dict, *, ttl_ms: int,
                      now_ms: int | None = None,
                      steal_epoch: int | None = None) -> tuple[dict, bool]:
        now = lease_clock(now_ms)
        check_lease_args(account, holder_id, ttl_ms=ttl_ms, now=now, steal_epoch=steal_epoch,
                         holder=holder)

        def acquire(conn: sqlite3.Connection) -> tuple[dict, bool]:
            current = self._lease_row(conn, account)
            lease = next_lease(current, account, holder_id, holder, ttl_ms=ttl_ms, now=now,
                               steal_epoch=steal_epoch)
            if lease is None:
                return current, False  # type: ignore[return-value]  # refused: it exists
            self._put_lease(conn, lease)
            return lease, True
        return self._write(acquire)

    def renew_lease(self, account: str, holder_id: str, epoch: int, *, ttl_ms: int,
                    now_ms: int | None = None) -> dict | None:
        now = lease_clock(now_ms)
        check_lease_args(account, holder_id, ttl_ms=ttl_ms, now=now, epoch=epoch)

        def renew(conn: sqlite3.Connection) -> dict | None:
            lease = self._lease_row(conn, account)
            if (lease is None or lease["holder_id"] != holder_id or lease["epoch"] != epoch
                    or lease_is_released(lease)):
                return None
            lease.update(renewed_ms=now, expires_ms=now + ttl_ms)
            self._put_lease(conn, lease)
            return lease
        return self._write(renew)

    def release_lease(self, account: str, holder_id: str, epoch: int) -> bool:
        check_lease_args(account, holder_id, epoch=epoch)

        def release(conn: sqlite3.Connection) -> bool:
            lease = self._lease_row(conn, account)
            if (lease is None or lease["holder_id"] != holder_id or lease["epoch"] != epoch
                    or lease_is_released(lease)):
                return False
            lease["expires_ms"] = 0
            self._put_lease(conn, lease)
            return True
        return self._write(release)

    # -- bus keys --------------------------------------------------------------------
    def allow_bus_key(self, public_key: str, name: str, *, now_ms: int | None = None) -> bool:
        check_bus_key_args(public_key, name)
        added = lease_clock(now_ms)

        def allow(conn: sqlite3.Connection) -> bool:
            row = conn.execute("SELECT name FROM bus_keys WHERE public_key=?", (public_key,)).fetchone()
            if row is None:
                conn.execute("INSERT INTO bus_keys(public_key, name, added_ms) VALUES (?, ?, ?)",
                             (public_key, name, added))
                return True
            if row[0] == name:
                return False
            conn.execute("UPDATE bus_keys SET name=? WHERE public_key=?", (name, public_key))
            return True
        return self._write(allow)

    def revoke_bus_key(self, public_key: str) -> bool:
        return self._write(lambda c: c.execute("DELETE FROM bus_keys WHERE public_key=?",
                                               (public_key,)).rowcount > 0)

    def list_bus_keys(self) -> list[dict]:
        rows = self._read("SELECT public_key, name, added_ms FROM bus_keys ORDER BY name, public_key")
        return [{"public_key": k, "name": n, "added_ms": a} for k, n, a in rows]
