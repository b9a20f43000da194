"""Publishing onto the bus: a PUB socket connected to the proxy's XSUB endpoint.

Not thread-safe, by design: a ZeroMQ socket belongs to one thread. A node publishes
from its main loop only; a second thread needs its own Publisher.

Slow joiner: PUB drops every message for which it has no matching subscription yet,
and subscriptions travel subscriber -> proxy -> publisher after the TCP connections
are up (typically a few ms, longer across hosts or while the proxy restarts). So the
first messages of a fresh Publisher may reach nobody. The bus is built to live with
that: position state is re-sent as periodic snapshots (Clone), statuses repeat every
heartbeat, and a ``ctl`` sender confirms a command by watching the target's status
rather than assuming delivery.
"""
from __future__ import annotations

import zmq

from messaging.codec import encode
from messaging.schema import Message

PUB_HWM = 100_000  # messages queued per connection before PUB drops (never blocks)
PUB_LINGER_MS = 500  # on close, give queued messages this long to leave
HEARTBEAT_IVL_MS = 1_000  # ZMTP heartbeats detect a dead proxy on a half-open TCP link
HEARTBEAT_TIMEOUT_MS = 3_000
RECONNECT_IVL_MAX_MS = 2_000


def tune_connecting_socket(sock: zmq.Socket) -> None:
    """Reconnect quickly after a proxy restart and notice silent peers."""
    sock.setsockopt(zmq.HEARTBEAT_IVL, HEARTBEAT_IVL_MS)
    sock.setsockopt(zmq.HEARTBEAT_TIMEOUT, HEARTBEAT_TIMEOUT_MS)
    sock.setsockopt(zmq.RECONNECT_IVL_MAX, RECONNECT_IVL_MAX_MS)


class Publisher:
    """``Publisher(endpoint).publish(msg)``; messages are validated before they leave.

    ``check=True`` (default) runs the receivers' validation on every outgoing message
    so a bug raises MalformedMessage here, loudly, instead of being silently dropped by
    every subscriber. It costs a few tens of microseconds per message.
    """

    def __init__(self, endpoint: str, *, context: zmq.Context | None = None,
                 check: bool = True, hwm: int = PUB_HWM) -> None:
        self.endpoint = endpoint
        self.check = check
        self.sent = 0
        self._sock = (context or zmq.Context.instance()).socket(zmq.PUB)
        self._sock.setsockopt(zmq.SNDHWM, hwm)
        self._sock.setsockopt(zmq.LINGER, PUB_LINGER_MS)
        tune_connecting_socket(self._sock)
        self._sock.connect(endpoint)

    @property
    def socket(self) -> zmq.Socket:
        return self._sock

    def publish(self, message: Message) -> None:
        """Send now; never blocks (PUB drops when the peer queue is full)."""
        self._sock.send_multipart(encode(message, check=self.check), copy=True)
        self.sent += 1

    def close(self, linger_ms: int | None = None) -> None:
        if not self._sock.closed:
            self._sock.close(linger=PUB_LINGER_MS if linger_ms is None else linger_ms)

    def __enter__(self) -> Publisher:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
