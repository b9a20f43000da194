"""Receiving from the bus: a SUB socket connected to the proxy's XPUB endpoint.

Every message is validated (``schema.decode``); a malformed one is logged, counted in
``dropped`` and never returned, so callers only see typed, checked messages.

Topics: ``"pos.m1"`` is one exact topic, a string ending in ``"."`` (``"pos."``) is a
prefix, ``""`` is everything. ZeroMQ filters by byte prefix, so a ``pos.m1``
subscription also lets ``pos.m10`` through the socket; this class removes such
near-misses (counted in ``filtered``) so "exact" means exact.

Poller integration: register ``sub.socket`` in a ``zmq.Poller`` with your other
sockets, and call ``recv(0)`` until it returns None when it is readable.
"""
from __future__ import annotations

import logging
import time
from collections.abc import Iterable
from typing import Any

import zmq

from messaging.publisher import tune_connecting_socket
from messaging.schema import MalformedMessage, Message, VersionMismatch, decode

SUB_HWM = 100_000
_LOG_FIRST = 20  # malformed messages logged one by one; after that every 100th


class Subscriber:
    def __init__(self, endpoint: str, topics: Iterable[str], *,
                 context: zmq.Context | None = None, logger: Any = None,
                 hwm: int = SUB_HWM) -> None:
        self.endpoint = endpoint
        self.log = logger or logging.getLogger("messaging.subscriber")
        self.dropped = 0
        self.wrong_version = 0  # of ``dropped``: messages of another bus schema version
        self.filtered = 0
        self.received = 0
        self.last_error: str | None = None
        self._exact: set[str] = set()
        self._prefixes: set[str] = set()
        self._sock = (context or zmq.Context.instance()).socket(zmq.SUB)
        self._sock.setsockopt(zmq.RCVHWM, hwm)
        self._sock.setsockopt(zmq.LINGER, 0)
        tune_connecting_socket(self._sock)
        self._sock.connect(endpoint)
        self._poller = zmq.Poller()
        self._poller.register(self._sock, zmq.POLLIN)
        for t in topics:
            self.subscribe(t)

    # -- topics
    @property
    def topics(self) -> set[str]:
        return self._exact | self._prefixes

    def subscribe(self, topic: str) -> None:
        if topic in self.topics:
            return  # ZeroMQ counts duplicate subscriptions; keep one per topic
        (self._prefixes if topic == "" or topic.endswith(".") else self._exact).add(topic)
        self._sock.setsockopt(zmq.SUBSCRIBE, topic.encode("ascii"))

    def unsubscribe(self, topic: str) -> None:
        if topic not in self.topics:
            return
        self._exact.discard(topic)
        self._prefixes.discard(topic)
        self._sock.setsockopt(zmq.UNSUBSCRIBE, topic.encode("ascii"))

    def _wanted(self, topic: bytes) -> bool:
        try:
            t = topic.decode("ascii")
        except UnicodeDecodeError:
            return True  # let decode() refuse and count it
        return t in self._exact or any(t.startswith(p) for p in self._prefixes)

    # -- receiving
    @property
    def socket(self) -> zmq.Socket:
        """The SUB socket, for a caller's own zmq.Poller."""
        return self._sock

    def fileno(self) -> int:
        """ZMQ_FD: edge-triggered; after it fires, drain with ``recv(0)`` until None."""
        return self._sock.getsockopt(zmq.FD)

    def recv(self, timeout_ms: int | None = 0) -> Message | None:
        """Next valid message, or None after ``timeout_ms`` (None = wait forever)."""
        deadline = None if timeout_ms is None else _mono_ms() + max(timeout_ms, 0)
        while True:
            try:
                frames = self._sock.recv_multipart(zmq.NOBLOCK)
            except zmq.Again:
                wait = None if deadline is None else deadline - _mono_ms()
                if wait is not None and wait <= 0:
                    return None
                if not self._poller.poll(wait):
                    return None
                continue
            msg = self._accept(frames)
            if msg is not None:
                return msg

    def drain(self, limit: int = 10_000) -> list[Message]:
        """Everything already queued (up to ``limit``), without waiting."""
        out: list[Message] = []
        while len(out) < limit:
            msg = self.recv(0)
            if msg is None:
                break
            out.append(msg)
        return out

    def _accept(self, frames: list[bytes]) -> Message | None:
        if frames and not self._wanted(frames[0]):
            self.filtered += 1
            return None
        try:
            msg = decode(frames)
        except VersionMismatch as exc:  # another bus version: never mis-read, say it loudly
            self.dropped += 1
            self.wrong_version += 1
            self.last_error = exc.reason
            if self.wrong_version <= _LOG_FIRST or self.wrong_version % 100 == 0:
                topic = frames[0][:80] if frames else b""
                self.log.error("refused bus message #%d of another schema version on %r: %s",
                               self.wrong_version, topic, exc.reason)
            return None
        except MalformedMessage as exc:
            self.dropped += 1
            self.last_error = exc.reason
            if self.dropped <= _LOG_FIRST or self.dropped % 100 == 0:
                topic = frames[0][:80] if frames else b""
                self.log.warning("dropped malformed bus message #%d on %r: %s",
                                 self.dropped, topic, exc.reason)
            return None
        self.received += 1
        return msg

    def close(self) -> None:
        if not self._sock.closed:
            self._poller.unregister(self._sock)
            self._sock.close(linger=0)

    def __enter__(self) -> Subscriber:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def _mono_ms() -> int:
    """Monotonic milliseconds for timeouts (wall-clock jumps must not stretch them)."""
    return time.monotonic_ns() // 1_000_000
