"""A SQLite store waits for another writer with its own short tries, not SQLite's busy
handler (which sleeps 1, 2, 5, 10 ms ... between tries; whole 15.6 ms ticks on Windows)."""
from __future__ import annotations

import sqlite3
import threading

import pytest

from db import StoreUnavailable, open_store
from db.sqlite_store import RETRY_FIRST_S, RETRY_MAX_S


def _intent(ticket: int) -> dict:
    return {"slave_name": "S", "master_name": "M", "master_ticket": ticket, "status": "PENDING", "kind": "position"}


def _hold_write_lock(path: str, release: threading.Event, held: threading.Event) -> None:
    other = sqlite3.connect(path, isolation_level=None)
    other.execute("BEGIN IMMEDIATE")
    held.set()
    release.wait(10)
    other.execute("COMMIT")
    other.close()


def test_sqlites_busy_handler_is_off_and_the_store_retries_itself(tmp_path):
    path = str(tmp_path / "s.db")
    store = open_store(f"sqlite:///{path}")
    try:
        assert store._conn.execute("PRAGMA busy_timeout").fetchone()[0] == 0
        begins: list[str] = []
        store._conn.set_trace_callback(lambda sql: begins.append(sql) if sql == "BEGIN IMMEDIATE" else None)
        release, held = threading.Event(), threading.Event()
        holder = threading.Thread(target=_hold_write_lock, args=(path, release, held))
        holder.start()
        assert held.wait(5)
        timer = threading.Timer(0.1, release.set)  # the other writer commits after 100 ms
        timer.start()
        doc, created = store.record_intent(_intent(1))
        holder.join()
        assert created and doc["status"] == "PENDING"
        # with SQLite's handler doing the waiting, the store would issue one BEGIN that blocks;
        # its own tries: 50 µs doubling to 2 ms -> many tries in 100 ms
        assert len(begins) >= 10, begins
        assert store.get_trade("S", "M", 1)["status"] == "PENDING"
    finally:
        store.close()


def test_a_lock_held_past_the_timeout_is_store_unavailable_naming_it(tmp_path):
    path = str(tmp_path / "s.db")
    open_store(f"sqlite:///{path}").close()
    store = open_store(f"sqlite:///{path}?timeout=0.2")
    release, held = threading.Event(), threading.Event()
    holder = threading.Thread(target=_hold_write_lock, args=(path, release, held))
    holder.start()
    try:
        assert held.wait(5)
        with pytest.raises(StoreUnavailable, match="stayed locked for more than 0.2s"):
            store.record_intent(_intent(2))
    finally:
        release.set()
        holder.join()
        store.close()
    assert 0 < RETRY_FIRST_S < RETRY_MAX_S <= 0.005
