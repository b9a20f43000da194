"""WAL checkpoints off the write path of a SQLite store.

SQLite checkpoints its write-ahead log inside whichever commit pushes the log past
``wal_autocheckpoint`` pages (1,000 by default): that commit copies the log into the
database file and syncs it, which on a node turns one ``record_intent`` of ~50 µs into
several milliseconds, right before an ``order_send``. A store therefore turns automatic
checkpoints off on its own connection and runs this thread instead: every ``interval_s``
it opens a short-lived connection, runs ``PRAGMA wal_checkpoint(PASSIVE)`` (which never
waits for, nor blocks, a reader or a writer) and closes it again, so no file stays open
between runs (Windows can delete a closed store's folder). Durability is unchanged: a
committed transaction is in the WAL file before the commit returns, checkpointed or not.
"""
from __future__ import annotations

import sqlite3
import threading

import structlog

log = structlog.get_logger("db.checkpoint")


class Checkpointer:
    """A daemon thread checkpointing the WAL of the SQLite file at ``path``.

    ``interval_s``: seconds between checkpoints. ``run_once()`` does one checkpoint now and
    returns SQLite's ``(busy, log_frames, checkpointed_frames)`` or None when the file
    could not be opened (the next run tries again; errors are logged once per kind).
    """

    def __init__(self, path: str, *, interval_s: float = 1.0, busy_timeout_ms: int = 200) -> None:
        self.path = path
        self.interval_s = float(interval_s)
        self.busy_timeout_ms = int(busy_timeout_ms)
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._errors: set[str] = set()
        self.runs = 0  # checkpoints attempted by the thread

    def start(self) -> Checkpointer:
        self._thread = threading.Thread(target=self._run, name="sqlite-checkpoint", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        """Stop the thread (returns at once; the thread ends within one checkpoint)."""
        self._stop.set()

    def run_once(self) -> tuple[int, int, int] | None:
        try:
            conn = sqlite3.connect(self.path, timeout=self.busy_timeout_ms / 1000.0, isolation_level=None)
        except sqlite3.Error as exc:
            self._note(exc)
            return None
        try:
            row = conn.execute("PRAGMA wal_checkpoint(PASSIVE)").fetchone()
            return (int(row[0]), int(row[1]), int(row[2])) if row else None
        except sqlite3.Error as exc:
            self._note(exc)
            return None
        finally:
            conn.close()

    def _note(self, exc: sqlite3.Error) -> None:
        kind = f"{type(exc).__name__}: {exc}"
        if kind not in self._errors:  # a store that is gone or locked: say so once, keep trying
            self._errors.add(kind)
            log.warning("wal_checkpoint_failed", path=self.path, error=kind)

    def _run(self) -> None:
        while not self._stop.wait(self.interval_s):
            self.run_once()
            self.runs += 1
