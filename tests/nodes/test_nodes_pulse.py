"""nodes/pulse.py: WatchedStore tells which store call is in progress; StorePulse
publishes STORE_WAIT only while a call has been busy long enough."""
from __future__ import annotations

import threading
import time

import pytest

import nodes.pulse as pulse
from nodes.pulse import StorePulse, WatchedStore


class FakeTime:
    """Stands in for the ``time`` module inside nodes.pulse."""

    def __init__(self) -> None:
        self.now = 1000.0

    def monotonic(self) -> float:
        return self.now


@pytest.fixture
def fake_time(monkeypatch):
    ft = FakeTime()
    monkeypatch.setattr(pulse, "time", ft)
    return ft


class StubStore:
    def __init__(self) -> None:
        self.gate = threading.Event()
        self.entered = threading.Event()
        self.watched: WatchedStore | None = None
        self.seen: list = []
        self.version = 7
        self._private_calls = 0

    def slow_call(self, x):
        self.entered.set()
        assert self.gate.wait(5), "test never released the gate"
        return x * 2

    def fast(self):
        return "ok"

    def boom(self):
        raise RuntimeError("store said no")

    def outer(self):
        self.seen.append(self.watched.busy())
        return self.watched.inner_call()

    def inner_call(self):
        self.seen.append(self.watched.busy())
        return "inner"

    def _private(self):
        self._private_calls += 1
        return self.watched.busy()


def test_busy_is_none_outside_calls_and_names_the_call_inside():
    stub = StubStore()
    ws = WatchedStore(stub)
    assert ws.busy() is None
    assert ws.fast() == "ok"
    assert ws.busy() is None
    result = {}
    t = threading.Thread(target=lambda: result.setdefault("v", ws.slow_call(21)))
    t.start()
    try:
        assert stub.entered.wait(5)
        busy = ws.busy()
        assert busy is not None and busy[0] == "slow_call" and busy[1] >= 0
        later = ws.busy(now=time.monotonic() + 5.0)  # an injected "now" five seconds on
        assert later[0] == "slow_call" and later[1] >= 5.0
    finally:
        stub.gate.set()
        t.join(5)
    assert result["v"] == 42
    assert ws.busy() is None


def test_busy_is_cleared_when_the_call_raises():
    ws = WatchedStore(StubStore())
    with pytest.raises(RuntimeError, match="store said no"):
        ws.boom()
    assert ws.busy() is None


def test_nested_calls_keep_the_outer_name_and_start(fake_time):
    stub = StubStore()
    slow = []
    ws = WatchedStore(stub, on_slow=lambda name, s: slow.append((name, s)), slow_s=1.0)
    stub.watched = ws

    real_inner = stub.inner_call

    def inner_later():
        fake_time.now += 3.0
        return real_inner()
    stub.inner_call = inner_later

    assert ws.outer() == "inner"
    assert stub.seen[0] == ("outer", 0.0)
    assert stub.seen[1] == ("outer", 3.0)  # the outer start time, not the inner one
    assert ws.busy() is None
    assert slow == [("outer", 3.0)]  # reported once, under the outer name


def test_on_slow_called_only_when_a_call_exceeds_slow_s(fake_time):
    calls = []
    stub = StubStore()

    def took(seconds):
        def method():
            fake_time.now += seconds
            return seconds
        return method
    stub.quick = took(0.5)
    stub.slow = took(2.5)
    ws = WatchedStore(stub, on_slow=lambda name, s: calls.append((name, s)), slow_s=1.0)
    assert ws.quick() == 0.5
    assert calls == []
    assert ws.slow() == 2.5
    assert calls == [("slow", 2.5)]


def test_private_and_non_callable_attributes_pass_through_unwatched():
    stub = StubStore()
    ws = WatchedStore(stub)
    stub.watched = ws
    assert ws.version == 7
    assert ws._private() is None  # not watched: busy() stays None inside it
    assert ws.inner is stub


# ------------------------------------------------------------------ StorePulse
def test_beat_publishes_only_while_busy_longer_than_after_s(fake_time):
    stub = StubStore()
    ws = WatchedStore(stub)
    published = []
    pl = StorePulse(ws, make_status=lambda call, waited: (pulse.STORE_WAIT, call, waited),
                    publish=published.append, after_s=1.0)
    beats = []

    def record_intent():
        beats.append(pl.beat())  # 0 s in
        fake_time.now += 0.5
        beats.append(pl.beat())  # 0.5 s in
        fake_time.now += 1.0
        beats.append(pl.beat())  # 1.5 s in
        fake_time.now += 1.0
        beats.append(pl.beat())  # 2.5 s in
    stub.record_intent = record_intent

    assert pl.beat() is False  # idle
    ws.record_intent()
    assert beats == [False, False, True, True]
    assert published == [(pulse.STORE_WAIT, "record_intent", 1.5), (pulse.STORE_WAIT, "record_intent", 2.5)]
    assert pl.pulses == 2
    fake_time.now += 100
    assert pl.beat() is False  # the call is over: no pulse however long ago it began
    assert len(published) == 2


def test_publish_raising_does_not_propagate(fake_time):
    stub = StubStore()
    ws = WatchedStore(stub)

    def publish(msg):
        raise OSError("bus gone")
    pl = StorePulse(ws, make_status=lambda c, w: (c, w), publish=publish, after_s=0.5)
    out = []

    def add_event():
        fake_time.now += 1.0
        out.append(pl.beat())
    stub.add_event = add_event
    ws.add_event()
    assert out == [False] and pl.pulses == 0


def test_make_status_raising_does_not_propagate(fake_time):
    stub = StubStore()
    ws = WatchedStore(stub)
    pl = StorePulse(ws, make_status=lambda c, w: 1 / 0, publish=lambda m: None, after_s=0.0)
    out = []
    stub.upsert = lambda: out.append(pl.beat())
    ws.upsert()
    assert out == [False]


def test_pulse_thread_publishes_during_a_blocked_call_and_closes_on_stop():
    stub = StubStore()
    ws = WatchedStore(stub)
    got = threading.Event()
    published, closed = [], []

    def publish(msg):
        published.append(msg)
        got.set()
    pl = StorePulse(ws, make_status=lambda c, w: c, publish=publish, interval_s=0.01, after_s=0.0,
                    close=lambda: closed.append(True)).start()
    t = threading.Thread(target=ws.slow_call, args=(1,))
    t.start()
    try:
        assert got.wait(5), "no pulse while the main thread waited on the store"
    finally:
        stub.gate.set()
        t.join(5)
        pl.stop()
    assert published and set(published) == {"slow_call"}
    assert closed == [True]
