"""Stopping one child: ``ctl stop`` on the bus first, the OS request (CTRL_BREAK on Windows,
SIGTERM elsewhere) ``BUS_STOP_GRACE_S`` later if it is still up, a kill of the process tree
at the stop deadline.

A master or slave reads its bus in every wait, its terminal retries included
(``NodeRuntime.wait_serving_bus``), so it acts on the bus stop within a heartbeat; one
that does not was blocked (inside a terminal or store call): a warning. A standby waiting
for its account's lease gets the OS request at once: it is not subscribed yet, and a
``ctl stop`` to its name would reach the lease holder, maybe on another host."""
from __future__ import annotations

from typing import Any

from db import now_ms
from fleet.options import BUS_STOP_GRACE_S, BUS_STOP_KINDS, LAUNCHER_NODE, Child
from messaging.schema import Control


def request_stop(child: Child, *, now: float, stop_timeout_s: float, hurry: bool, publisher: Any, log: Any) -> None:
    """Start stopping ``child`` (which has a process) at monotonic ``now``: the bus stop to
    a node that listens on the bus (not in a hurry, bus up, not a standby), else the OS
    request at once.
    Sets ``child.stop_deadline`` (``stop_timeout_s``, 1 s in a hurry) and ``child.signal_at``."""
    assert child.handle is not None
    child.stop_deadline = now + (1.0 if hurry else stop_timeout_s)
    sent = False
    if child.kind in BUS_STOP_KINDS and publisher is not None and not hurry and not child.standby:
        try:
            publisher.publish(Control(target=child.name, command="stop", sender=LAUNCHER_NODE, ts_ms=now_ms(),
                                      args={"reason": child.stop_label or "launcher stop"}))
            sent = True
        except Exception as exc:  # the bus must never stop supervision
            log.warning("ctl_stop_not_published", node=child.name, error=str(exc))
    if sent:
        child.signal_at = now + BUS_STOP_GRACE_S
        log.info("node_stop_sent", node=child.name, pid=child.handle.pid, via="bus")
    else:
        child.signal_at = None
        child.handle.request_stop()
        log.info("node_stop_sent", node=child.name, pid=child.handle.pid, via="signal")


def enforce_stop_deadline(child: Child, now: float, log: Any) -> None:
    """The bus stop was ignored past its grace: the OS request; past the stop deadline: kill."""
    if child.handle is not None and child.signal_at is not None and now >= child.signal_at:
        child.signal_at = None
        log.warning("node_ignored_bus_stop_signalling", node=child.name, pid=child.handle.pid,
                    waited_s=BUS_STOP_GRACE_S, last_note=child.note)
        child.handle.request_stop()
    if child.handle is not None and child.stop_deadline is not None and now >= child.stop_deadline:
        log.warning("stop_deadline_passed_killing", node=child.name, pid=child.handle.pid)
        child.handle.kill()
