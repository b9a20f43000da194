"""Stopping one child (fleet/stopping.py) and the reason its row shows once stopped
(fleet/records.py over fleet/supervision.py), with fakes: no processes."""
from __future__ import annotations

from types import SimpleNamespace

from fleet.options import BUS_STOP_GRACE_S, Child
from fleet.records import FleetRecorder
from fleet.stopping import enforce_stop_deadline, request_stop
from fleet.supervision import Policy, State, Supervised


class Handle:
    pid = 4242

    def __init__(self) -> None:
        self.signalled = 0

    def request_stop(self) -> None:
        self.signalled += 1


class Log:
    def __init__(self) -> None:
        self.lines: list[tuple[str, str, dict]] = []

    def __getattr__(self, level: str):
        return lambda event, **kw: self.lines.append((level, event, kw))


class Bus:
    def __init__(self) -> None:
        self.sent: list = []

    def publish(self, msg) -> None:
        self.sent.append(msg)


def child(name: str = "S1", **kw) -> Child:
    c = Child(name, "slave", Supervised(name, Policy()), **kw)
    c.handle = Handle()
    return c


def test_a_listening_node_gets_the_bus_stop_and_the_signal_only_after_the_grace():
    c, bus, log = child(), Bus(), Log()
    request_stop(c, now=100.0, stop_timeout_s=10, hurry=False, publisher=bus, log=log)
    assert [(m.target, m.command) for m in bus.sent] == [("S1", "stop")]
    assert (c.handle.signalled, c.signal_at) == (0, 100.0 + BUS_STOP_GRACE_S)


def test_a_standby_gets_the_signal_at_once_never_a_bus_stop_that_would_reach_the_lease_holder():
    """A standby is not subscribed while it waits for the lease, and ``ctl.<name> stop``
    goes to every process of that account: the live holder (maybe on another host) would
    stop instead, and the standby would only go after the grace, with a warning."""
    c, bus, log = child(standby=True), Bus(), Log()
    request_stop(c, now=100.0, stop_timeout_s=10, hurry=False, publisher=bus, log=log)
    assert bus.sent == []
    assert (c.handle.signalled, c.signal_at) == (1, None)
    assert log.lines == [("info", "node_stop_sent", {"node": "S1", "pid": 4242, "via": "signal"})]
    enforce_stop_deadline(c, 100.0 + BUS_STOP_GRACE_S + 1, log)
    assert [e for _, e, _ in log.lines] == ["node_stop_sent"]  # no "ignored the bus stop" warning


def test_a_node_that_ignores_the_bus_stop_is_signalled_with_what_it_last_said():
    c, log = child(note="account 'S1': initialize failed: (-10005, 'IPC timeout')"), Log()
    request_stop(c, now=0.0, stop_timeout_s=10, hurry=False, publisher=Bus(), log=log)
    enforce_stop_deadline(c, BUS_STOP_GRACE_S, log)
    assert c.handle.signalled == 1
    assert log.lines[-1] == ("warning", "node_ignored_bus_stop_signalling",
                             {"node": "S1", "pid": 4242, "waited_s": BUS_STOP_GRACE_S,
                              "last_note": "account 'S1': initialize failed: (-10005, 'IPC timeout')"})


def test_a_stopped_row_does_not_keep_the_note_the_node_sent_while_it_ran():
    """The launcher keeps the last ``info.note`` of a node's heartbeat (a terminal error, a
    silent bus); once the node is STOPPED that note is not why it is stopped."""
    c = child(note="heard nothing on the bus for 4 s: is the bus proxy running at tcp://a -> tcp://b? …")
    sup = c.sup
    sup.request_start(0)
    sup.spawned(0, 4242)
    sup.heartbeat(0.5, 4242)
    sup.tick(5)
    rec = FleetRecorder(store=None, opts=SimpleNamespace(host="H1"), log=Log(), pid=1, clock=lambda: 10.0,
                        publisher=lambda: None)
    assert rec.node_fields(c)["supervisor_reason"] == c.note  # alive: what the node says
    sup.request_stop(10)
    sup.exited(11, 0)
    fields = rec.node_fields(c)
    assert (fields["supervisor_state"], fields["supervisor_reason"]) == ("STOPPED", "stopped by the launcher")
    assert sup.state is State.STOPPED
