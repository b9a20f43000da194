"""The slave's turn copies a master change before any periodic work (hub latency).

``nodes.slave._turn`` is driven with stand-ins that record the order of what it does:
a change waiting when the turn starts is copied (fast pass) before the guardian's
evaluation, the heartbeat and the reload; a change that arrives with the timer's full
pass due gets the fast pass first and the full pass on the next turn, unless the full
pass is a whole interval overdue (a stream of changes cannot starve it).
"""
from __future__ import annotations

import time

from nodes.slave import POSITIONS_REFRESH_DELAY_MS, _Timers, _turn


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
        self.pending = False  # refresh_pending(): an order of ours went out since the last read

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

    def refresh_pending(self) -> bool:
        return self.pending

    def refresh_positions(self) -> None:
        self.log.append("refresh")
        self.pending = False

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


class Waits(Sub):
    """Records each blocking wait on the bus (``wait:<timeout ms>``); ``arrive`` is what
    comes during the first wait."""

    def __init__(self, log: list[str]) -> None:
        super().__init__()
        self.log = log
        self.arrive: list[str] = []

    def recv(self, timeout_ms: int = 0):
        if timeout_ms:
            self.log.append(f"wait:{timeout_ms}")
            self.queue.extend(self.arrive)
            self.arrive = []
        return self.queue.pop(0) if self.queue else None


def _waits(log: list[str]) -> list[int]:
    return [int(x.split(":")[1]) for x in log if x.startswith("wait:")]


def _copying_kit():
    log, rt, loop, guardian, _ = _kit()
    _not_due(loop)
    guardian.ms_until_due = lambda now_ms: 60_000
    loop.reconcile = lambda *, full: (log.append("full" if full else "fast"), setattr(loop, "pending", True))[0]
    return log, rt, loop, guardian, Waits(log)


def test_after_a_copy_the_positions_are_read_once_the_bus_was_quiet_a_little():
    log, rt, loop, guardian, sub = _copying_kit()
    sub.queue.append("delta")
    _turn(rt, loop, guardian, sub)
    assert log.index("fast") < log.index(f"wait:{POSITIONS_REFRESH_DELAY_MS}") < log.index("refresh")
    log.clear()
    _turn(rt, loop, guardian, sub)  # nothing sent since: the next turn waits the whole interval, no read
    assert "refresh" not in log and _waits(log) and min(_waits(log)) > 50_000  # the whole interval (60 s)


def test_a_change_arriving_before_the_read_is_copied_at_once_without_it():
    """Its pass reads the positions itself (the read is stale): no refresh ahead of the copy."""
    log, rt, loop, guardian, sub = _copying_kit()
    sub.queue.append("delta")
    sub.arrive.append("next delta")
    _turn(rt, loop, guardian, sub)
    after_wait = log[log.index(f"wait:{POSITIONS_REFRESH_DELAY_MS}"):]
    assert "msg:next delta" in after_wait and "fast" in after_wait and "refresh" not in log


def test_without_an_order_of_ours_nothing_is_read_and_the_wait_is_whole():
    log, rt, loop, guardian, sub = _copying_kit()
    loop.reconcile = lambda *, full: log.append("full" if full else "fast")  # a pass that sent nothing
    sub.queue.append("delta")
    _turn(rt, loop, guardian, sub)
    assert "refresh" not in log and _waits(log) and min(_waits(log)) > 50_000  # the whole interval (60 s)


def test_no_positions_refresh_when_the_full_pass_is_due():
    log, rt, loop, guardian, sub = _kit()
    _not_due(loop)
    loop.timers.next_reconcile = time.monotonic() - 0.01  # the full pass reads the positions anyway
    _turn(rt, loop, guardian, sub)
    assert "refresh" not in log and "full" in log
