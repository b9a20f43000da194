"""Tell "waiting on the store" from "hung".

A node's loop writes to the store (intents, links, heartbeats, events). When the store
is slow or locked — a SQLite writer holding the lock, a MongoDB failover — the loop
waits inside that call, its heartbeat stops, and a supervisor would take it for hung.

``WatchedStore`` wraps the store and notes which call is in progress since when.
``StorePulse`` is a daemon thread with its own bus socket that, while the main thread has
been inside one store call for longer than ``after_s``, publishes a ``STORE_WAIT`` status
every heartbeat interval: "alive, waiting on the store for 12.3 s (record_intent)". A
loop stuck anywhere else sends no pulse, so the launcher still kills a hung node.

Waiting is safe: a slave writes each intent before its ``order_send``, so a node that
cannot record opens nothing.
"""
from __future__ import annotations

import threading
import time
from collections.abc import Callable
from typing import Any

from messaging.schema import STORE_WAIT  # noqa: F401 (re-exported: the state this module publishes)


class WatchedStore:
    """The store, with ``busy()`` telling which call has been running for how long.

    Only public methods are watched; attributes pass through unchanged.
    """

    def __init__(self, store: Any, *, on_slow: Callable[[str, float], None] | None = None, slow_s: float = 1.0) -> None:
        self._store = store
        self._on_slow = on_slow
        self._slow_s = slow_s
        self._since: float | None = None
        self._call = ""

    @property
    def inner(self) -> Any:
        return self._store

    def busy(self, now: float | None = None) -> tuple[str, float] | None:
        """(method name, seconds inside it) while a call is in progress, else None."""
        since = self._since
        if since is None:
            return None
        return self._call, (time.monotonic() if now is None else now) - since

    def __getattr__(self, name: str) -> Any:
        attr = getattr(self._store, name)
        if name.startswith("_") or not callable(attr):
            return attr

        def watched(*args: Any, **kwargs: Any) -> Any:
            outer = self._since is None  # nested calls keep the outer start time
            if outer:
                self._call, self._since = name, time.monotonic()
            try:
                return attr(*args, **kwargs)
            finally:
                if outer:
                    waited = time.monotonic() - (self._since or 0.0)
                    self._since = None
                    if waited >= self._slow_s and self._on_slow is not None:
                        self._on_slow(name, waited)

        self.__dict__[name] = watched  # built once per method
        return watched


class StorePulse:
    """Daemon thread: a ``STORE_WAIT`` status on the bus while the node waits on its store.

    ``make_status(call, waited_s)`` builds the Status message; ``publish(msg)`` must use a
    socket of this thread's own (ZeroMQ sockets are not shared between threads).
    """

    def __init__(self, watched: WatchedStore, make_status: Callable[[str, float], Any], publish: Callable[[Any], None],
                 *, interval_s: float = 1.0, after_s: float = 1.0, close: Callable[[], None] | None = None) -> None:
        self.watched = watched
        self.make_status = make_status
        self.publish = publish
        self.interval_s = interval_s
        self.after_s = after_s
        self.pulses = 0
        self._close = close
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="store-pulse", daemon=True)

    def start(self) -> StorePulse:
        self._thread.start()
        return self

    def beat(self) -> bool:
        """One check; True when a pulse went out (tests call this directly)."""
        busy = self.watched.busy()
        if busy is None or busy[1] < self.after_s:
            return False
        try:
            self.publish(self.make_status(*busy))
        except Exception:  # the bus must never take the node down
            return False
        self.pulses += 1
        return True

    def _run(self) -> None:
        while not self._stop.wait(self.interval_s):
            self.beat()
        if self._close is not None:
            self._close()

    def stop(self) -> None:
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join(timeout=2 * self.interval_s)
