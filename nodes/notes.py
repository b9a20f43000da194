"""What a running node tells the operator about itself, beside its state.

A node can be RUNNING and still need a look: it refused a changed account document and
runs on its previous settings, or it hears nothing on the bus (no proxy, wrong port).
Each such condition is a *note*: shown as the node's reason in ``cli.py status`` (the
node document's ``reason``, and the launcher's ``supervisor_reason``), logged and written
to the audit trail once when it appears and once when it clears.

``BusSilence`` decides "heard nothing": every node subscribes to its own ``status.<name>``
topic, so a working bus echoes each heartbeat back; a node whose subscriber received
nothing for ``heartbeats`` heartbeat intervals is not connected to a live proxy.
"""
from __future__ import annotations

from dataclasses import dataclass

BUS_SILENT_HEARTBEATS = 3


@dataclass
class BusSilence:
    """Pure: fed the subscriber's message count and the time, says whether the bus is silent.

    ``after_ms``: how long without a single message counts as silent (milliseconds).
    """

    after_ms: int
    _count: int = -1
    _last_heard_ms: int | None = None

    def observe(self, received: int, now_ms: int) -> float | None:
        """``received``: messages the subscriber got so far (any topic). Returns the
        seconds of silence when past ``after_ms``, else None."""
        if self._last_heard_ms is None or received != self._count:
            self._count, self._last_heard_ms = received, now_ms
            return None
        silent_ms = now_ms - self._last_heard_ms
        return silent_ms / 1000.0 if silent_ms >= self.after_ms else None


def bus_silent_note(seconds: float, bus_pub: str, bus_sub: str) -> str:
    """The operator's line for a silent bus."""
    return (f"heard nothing on the bus for {seconds:.0f} s: is the bus proxy running at {bus_pub} -> {bus_sub}? "
            "(python launcher.py runs one; a node started by hand needs python -m fleet.busproxy)")
