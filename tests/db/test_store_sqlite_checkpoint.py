"""WAL checkpoints run beside the write path of the SQLite store, never inside a commit.

SQLite's automatic checkpoint runs inside whichever commit crosses ``wal_autocheckpoint``:
on a node that is a ``record_intent`` right before ``order_send`` taking milliseconds. The
store turns it off on its connection and a ``db.sqlite_checkpoint.Checkpointer`` thread does
it instead (bench figures in docs/benchmarks.md).
"""
from __future__ import annotations

import os
import sqlite3
import time

from db import open_store
from db.sqlite_checkpoint import Checkpointer


def _write(store, start: int, n: int) -> None:
    for i in range(start, start + n):
        store.record_intent({"slave_name": "S", "master_name": "M", "master_ticket": i, "status": "PENDING",
                             "kind": "position", "symbol": "EURUSD", "side": "BUY", "slave_volume": 0.1,
                             "comment": "x" * 200})


def _wal_frames(path: str) -> int:
    """Frames in the WAL file (32-byte header, then 24 + page size bytes per frame)."""
    size = os.path.getsize(path + "-wal") if os.path.exists(path + "-wal") else 0
    page = sqlite3.connect(path).execute("PRAGMA page_size").fetchone()[0]
    return max(0, (size - 32) // (24 + page))


def test_commits_never_checkpoint_on_the_store_connection(tmp_path):
    path = str(tmp_path / "s.db")
    store = open_store(f"sqlite:///{path}")
    try:
        store._checkpointer.stop()  # nothing but the commits themselves from here
        assert store._conn.execute("PRAGMA wal_autocheckpoint").fetchone()[0] == 0
        _write(store, 0, 1500)  # far past the default 1,000-page threshold
        # every frame is still in the log: no commit copied it into the database file
        busy, log_frames, done = Checkpointer(path).run_once()
        assert log_frames > 1000 and done == log_frames and busy == 0
    finally:
        store.close()


def test_the_thread_checkpoints_and_the_log_is_reused(tmp_path):
    path = str(tmp_path / "s.db")
    store = open_store(f"sqlite:///{path}")
    try:
        cp = store._checkpointer
        assert cp is not None and cp._thread is not None and cp._thread.is_alive()
        cp.stop()
        _write(store, 0, 600)
        first = _wal_frames(path)
        assert first > 0
        assert cp.run_once()[2] > 0  # the frames were copied into the database file
        _write(store, 600, 600)  # the next writes start the log again from its beginning
        assert _wal_frames(path) <= first * 1.2
        assert len(store.list_trades(slave_name="S")) == 1200
    finally:
        store.close()


def test_the_thread_runs_until_the_store_closes(tmp_path):
    store = open_store(f"sqlite:///{tmp_path / 's.db'}")
    cp = store._checkpointer
    cp.interval_s = 0.01
    cp._stop.set()  # restart the running thread with the short interval
    cp._thread.join(5)
    cp._stop.clear()
    cp.start()
    deadline = time.monotonic() + 10
    while cp.runs < 3 and time.monotonic() < deadline:
        time.sleep(0.01)
    assert cp.runs >= 3
    store.close()
    cp._thread.join(5)
    assert not cp._thread.is_alive()


def test_a_missing_file_is_reported_once_and_retried(tmp_path):
    cp = Checkpointer(str(tmp_path / "no" / "such.db"))
    assert cp.run_once() is None
    assert cp.run_once() is None
    assert len(cp._errors) == 1


def test_memory_stores_have_no_checkpointer():
    store = open_store("sqlite:///:memory:")
    assert store._checkpointer is None
    store.close()
