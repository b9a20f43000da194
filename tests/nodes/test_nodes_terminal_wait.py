"""A node whose terminal cannot be used yet serves its bus while it waits
(``NodeRuntime.wait_serving_bus``): a ctl stop ends the wait at once, its heartbeat goes
on, and the other messages are kept for the loop (``connect_terminal_holding``), which a
reconnected slave applies once its terminal is back (``nodes/slave.py _reconnect``)."""
from __future__ import annotations

import dataclasses
import threading
import time

import pytest

from config import settings
from messaging.schema import Control, Status
from nodes import slave as slave_node
from nodes.runtime import NodeRuntime
from tests.nodes.test_nodes_slave_inprocess import FakeRuntime, _buy, _loop, _snapshot, _terminal, world  # noqa: F401


class Sub:
    """A subscriber fake: ``recv`` hands out the queued messages, else waits (a little)."""

    def __init__(self, messages=()) -> None:
        self.queue = list(messages)
        self.received = 0
        self.dropped = 0

    def recv(self, timeout_ms=0):
        if self.queue:
            self.received += 1
            return self.queue.pop(0)
        time.sleep(min(timeout_ms, 20) / 1000)
        return None


class Waiting:
    """The parts of NodeRuntime the wait uses, with the real methods under test."""

    wait_serving_bus = NodeRuntime.wait_serving_bus
    _serve_bus = NodeRuntime._serve_bus
    connect_terminal_holding = NodeRuntime.connect_terminal_holding
    request_stop = NodeRuntime.request_stop
    stopping = NodeRuntime.stopping

    def __init__(self, messages=()) -> None:
        import structlog

        self.subscriber = Sub(messages)
        self.stop_event = threading.Event()
        self.exit_code = 0
        self.state = "TERMINAL_ERROR"
        self.log = structlog.get_logger("test")
        self.beats: list[float] = []

    def publish_status(self) -> None:
        self.beats.append(time.monotonic())


def ctl(command: str) -> Control:
    return Control(target="S", command=command, sender="launcher", ts_ms=1)


def echo() -> Status:
    return Status(node="S", role="slave", state="TERMINAL_ERROR", pid=1, ts_ms=1)


@pytest.fixture
def fast_heartbeat(monkeypatch):
    from nodes import runtime

    monkeypatch.setattr(runtime, "settings", dataclasses.replace(settings, HEARTBEAT_INTERVAL_MS=100))


def test_a_ctl_stop_ends_the_retry_wait_at_once_and_the_rest_is_handed_on(fast_heartbeat):
    rt, kept = Waiting([echo(), ctl("pause"), ctl("stop"), ctl("flatten")]), []
    started = time.monotonic()
    rt.wait_serving_bus(10.0, kept.append)
    assert time.monotonic() - started < 1.0  # not the 10 s retry delay
    assert (rt.stopping, rt.exit_code) == (True, 0)
    assert [m.command for m in kept] == ["pause"]  # its own echo only counted; after the stop: nothing
    assert rt.subscriber.received == 3


def test_the_heartbeat_goes_on_through_a_long_retry_wait(fast_heartbeat):
    rt = Waiting()
    started = time.monotonic()
    rt.wait_serving_bus(1.0)
    took = time.monotonic() - started
    assert 0.95 <= took < 1.5 and not rt.stopping
    assert 9 <= len(rt.beats) <= 12  # one now, then every 100 ms (before: one per retry, up to 10 s apart)
    assert max(b - a for a, b in zip(rt.beats, rt.beats[1:])) < 0.2


def test_connecting_keeps_the_messages_for_the_loop():
    rt = Waiting()

    def connect_terminal(cfg, *, on_message=None):
        for msg in (ctl("flatten"), ctl("snapshot")):
            on_message(msg)
        return "terminal"

    rt.connect_terminal = connect_terminal
    mt5, held = rt.connect_terminal_holding(None)
    assert mt5 == "terminal" and [m.command for m in held] == ["flatten", "snapshot"]
    rt.connect_terminal = lambda cfg, *, on_message=None: (on_message(ctl("flatten")), None)[1]
    assert rt.connect_terminal_holding(None) == (None, [])  # stopped: nothing to apply


def test_a_reconnected_slave_applies_what_came_meanwhile_on_the_new_terminal(world):  # noqa: F811
    sim, store, master = world
    _buy(master)
    loop = _loop(store, _terminal(sim, 2001))
    loop.use_terminal(None)  # the terminal is gone: nothing may touch it while reconnecting
    store.set_flag("flatten:S", {"by": "test"})
    snapshot = _snapshot(master)

    class Reconnecting(FakeRuntime):
        connect_terminal_holding = NodeRuntime.connect_terminal_holding

        def connect_terminal(self, cfg, *, on_message=None):
            for msg in (snapshot, ctl("flatten")):
                on_message(msg)
            return _terminal(sim, 2001)

    loop.rt = rt = Reconnecting("S", store)
    assert slave_node._reconnect(rt, loop) is True
    assert loop.mirrors["M"].has_snapshot and len(loop.mirrors["M"].state(snapshot.ts_ms).positions) == 1
    assert store.get_flag("flatten:S") is None  # the flatten ran, on the new terminal
