"""Waiting for the infrastructure the fleet starts first: the bus proxy and the simulator."""
from __future__ import annotations

import socket
import time

from fleet.options import Child


def wait_tcp(endpoints: list[str], timeout_s: float, child: Child | None) -> bool:
    """True once every ``tcp://host:port`` accepts connections (the proxy is bound).
    ``child``: the proxy process when we run it (its exit ends the wait), None when it runs elsewhere."""
    deadline = time.monotonic() + timeout_s
    pending = [e for e in endpoints if e.startswith("tcp://")]
    if len(pending) < len(endpoints):  # ipc:// and friends: no cheap probe, give it a moment
        time.sleep(0.5)
    while pending and time.monotonic() < deadline:
        if child is not None and (child.handle is None or child.handle.poll() is not None):
            return False
        host, _, port = pending[0].rpartition("//")[2].rpartition(":")
        try:
            with socket.create_connection((host, int(port)), timeout=0.5):
                pending.pop(0)
        except OSError:
            time.sleep(0.05)
    return not pending


def wait_sim(endpoint: str, timeout_s: float, child: Child) -> bool:
    """True once the simulator server at ``endpoint`` answers a ping; False when ``child``
    (its process) exits first or ``timeout_s`` passes."""
    from sim.client import AdminClient, SimUnavailable
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if child.handle is None or child.handle.poll() is not None:
            return False
        admin = AdminClient(endpoint, timeout_ms=500)
        try:
            admin.ping()
            return True
        except SimUnavailable:
            time.sleep(0.1)
        finally:
            close = getattr(admin, "close", None)
            if close:
                close()
    return False
