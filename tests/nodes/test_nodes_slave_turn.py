"""The slave's turn copies a master change before any periodic work (hub latency).

``nodes.slave._turn`` is driven with stand-ins that record the order of what it does:
a change waiting when the turn starts is copied (fast pass) before the guardian's
evaluation, the heartbeat and the reload; a change that arrives with the timer's full
pass due gets the fast pass first and the full pass on the next turn, unless the full
pass is a whole interval overdue (a stream of changes cannot starve it).
"""
from __future__ import annotations

import time

from nodes.slave import _Timers, _turn


class Sub:
    def __init__(self) -> None:
        self.queue: list[str] = []
        self.log: list[str] = []

    def recv(self, timeout_ms: int = 0):
        return self.queue.pop(0) if self.queue else None


class Loop:
    def __init__(self, log: list[str]) -> None:
        self.log = log
        self.timers = _Timers()
        self.syncing = False
        self.metrics = None
        self.cfg = None

    def on_message(self, msg) -> bool:
        self.log.append(f"msg:{msg}")
        return True

    def reconcile(self, *, full: bool):
        self.log.append("full" if full else "fast")
        return []

    def ask_for_snapshots(self, now_ms: int) -> None:
        pass

    def sync_changed(self) -> bool:
        return False

    def reload(self) -> None:
        self.log.append("reload")

    def refresh_positions(self) -> None:
        self.log.append("refresh")

    def status_info(self) -> dict:
        return {}


class Guardian:
    def __init__(self, log: list[str]) -> None:
        self.log = log

    def tick(self, now_ms: int) -> None:
        self.log.append("guardian")

    def ms_until_due(self, now_ms: int) -> int:
        return 1


class Runtime:
    stopping = False
    last_error = None

    def __init__(self, log: list[str]) -> None:
        self.log = log

    def publish_status(self, metrics, info) -> None:
        self.log.append("heartbeat")


def _kit():
    log: list[str] = []
    loop = Loop(log)
    return log, Runtime(log), loop, Guardian(log), Sub()


def _not_due(loop: Loop) -> None:
    far = time.monotonic() + 60
    loop.timers.next_reconcile = loop.timers.next_heartbeat = loop.timers.next_reload = far


def test_a_change_waiting_at_the_turns_start_is_copied_before_the_periodic_work():
    log, rt, loop, guardian, sub = _kit()
    _not_due(loop)
    loop.timers.next_heartbeat = loop.timers.next_reload = 0  # heartbeat and reload due too
    sub.queue.append("delta")
    _turn(rt, loop, guardian, sub)
    assert log[:2] == ["msg:delta", "fast"]
    assert log.index("fast") < log.index("guardian") < log.index("heartbeat") < log.index("reload")


def test_a_change_with_the_full_pass_due_gets_the_fast_pass_first():
    log, rt, loop, guardian, sub = _kit()
    _not_due(loop)
    loop.timers.next_reconcile = time.monotonic() - 0.01  # the full pass is due, not overdue

    class Arrives(Sub):  # the change arrives while the turn waits on the bus (after the periodic work)
        def recv(self, timeout_ms: int = 0):
            if "guardian" in log and not self.log:
                self.log.append("sent")
                return "delta"
            return None

    sub = Arrives()
    _turn(rt, loop, guardian, sub)
    assert [x for x in log if x in ("fast", "full")] == ["fast"]
    log.clear()
    _turn(rt, loop, guardian, sub)  # the next turn runs the full pass, re-arming the timer
    assert [x for x in log if x in ("fast", "full")] == ["full"]
    assert loop.timers.next_reconcile > time.monotonic()


def test_a_stream_of_changes_cannot_starve_the_full_pass():
    log, rt, loop, guardian, sub = _kit()
    _not_due(loop)
    loop.timers.next_reconcile = time.monotonic() - 2 * loop.timers.reconcile_s  # a whole interval overdue

    class Always(Sub):
        def recv(self, timeout_ms: int = 0):
            self.log.append("r")
            return "delta" if len(self.log) % 2 else None

    _turn(rt, loop, guardian, Always())
    assert "full" in log


def test_without_a_change_the_full_pass_runs_when_due():
    log, rt, loop, guardian, sub = _kit()
    _not_due(loop)
    loop.timers.next_reconcile = time.monotonic() - 0.01
    _turn(rt, loop, guardian, sub)
    assert [x for x in log if x in ("fast", "full")] == ["full"]


def test_the_positions_refresh_runs_after_the_copy_and_before_the_wait_for_the_bus():
    log, rt, loop, guardian, _ = _kit()
    _not_due(loop)

    class Waits(Sub):  # records when the turn blocks on the bus
        def recv(self, timeout_ms: int = 0):
            if timeout_ms:
                log.append("wait")
            return self.queue.pop(0) if self.queue else None

    sub = Waits()
    sub.queue.append("delta")
    _turn(rt, loop, guardian, sub)
    assert log.index("fast") < log.index("refresh") < log.index("wait")


def test_no_positions_refresh_when_the_full_pass_is_due():
    log, rt, loop, guardian, sub = _kit()
    _not_due(loop)
    loop.timers.next_reconcile = time.monotonic() - 0.01  # the full pass reads the positions anyway
    _turn(rt, loop, guardian, sub)
    assert "refresh" not in log and "full" in log
