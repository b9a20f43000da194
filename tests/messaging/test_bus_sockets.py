"""Real sockets: proxy subprocess on free ports, Publisher/Subscriber, drops, shutdown."""
from __future__ import annotations

import logging
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import zmq

from copier.models import Position
from messaging.clone import Mirror, StatePublisher
from messaging.publisher import Publisher
from messaging.schema import Control, Delta, Event, Snapshot, Status
from messaging.subscriber import Subscriber

ROOT = Path(__file__).resolve().parents[2]
pytestmark = pytest.mark.timeout(60)


def start_proxy(*extra: str) -> tuple[subprocess.Popen, str, str]:
    """Start the proxy on OS-chosen ports and read its READY line."""
    env = dict(os.environ, PYTHONPATH=str(ROOT) + os.pathsep + os.environ.get("PYTHONPATH", ""))
    proc = subprocess.Popen(
        [sys.executable, "-m", "messaging.proxy", "--xsub", "tcp://127.0.0.1:*",
         "--xpub", "tcp://127.0.0.1:*", *extra],
        cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    line = proc.stdout.readline().split()
    assert line and line[0] == "READY", proc.stderr.read() if proc.poll() is not None else line
    fields = dict(part.split("=", 1) for part in line[1:])
    return proc, fields["xsub"], fields["xpub"]


@pytest.fixture
def proxy():
    proc, xsub, xpub = start_proxy()
    yield proc, xsub, xpub
    if proc.poll() is None:
        proc.kill()
    proc.wait(10)
    proc.stdout.close()
    proc.stderr.close()


def until_received(send, sub: Subscriber, *, timeout_s: float = 10.0):
    """Slow joiner: repeat ``send`` until the subscriber gets something."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        send()
        msg = sub.recv(50)
        if msg is not None:
            return msg
    raise AssertionError("nothing arrived through the proxy")


def status(node="s1", state="running"):
    return Status(node=node, role="slave", state=state, pid=os.getpid(), ts_ms=1)


def test_messages_flow_through_proxy(proxy):
    _, xsub, xpub = proxy
    ctx = zmq.Context()
    with Publisher(xsub, context=ctx) as pub, Subscriber(xpub, ["status.s1", "pos.m1"], context=ctx) as sub:
        assert until_received(lambda: pub.publish(status()), sub) == status()
        sub.drain()
        pos = Position(1, 1, "EURUSD", "SELL", 0.2, 1.1)
        sent = [
            Snapshot(master="m1", epoch="E", seq=0, ts_ms=2, positions=(pos,)),
            Delta(master="m1", epoch="E", seq=1, ts_ms=3, remove_positions=(1,)),
            Snapshot(master="m10", epoch="E", seq=0, ts_ms=2),  # prefix near-miss: filtered
            Event(node="s1", ts_ms=4, event="x"),  # not subscribed
            status(state="paused"),
        ]
        for m in sent:
            pub.publish(m)
        got = [sub.recv(2000) for _ in range(3)]
        assert got == [sent[0], sent[1], sent[4]]
        assert sub.recv(100) is None
        assert sub.dropped == 0
    ctx.term()


def test_runtime_subscribe_unsubscribe_and_poller(proxy):
    _, xsub, xpub = proxy
    ctx = zmq.Context()
    with Publisher(xsub, context=ctx) as pub, Subscriber(xpub, ["status."], context=ctx) as sub:
        until_received(lambda: pub.publish(status()), sub)
        sub.subscribe("ctl.s1")
        ctl = Control(target="s1", command="pause", sender="cli", ts_ms=1)
        assert until_received(lambda: pub.publish(ctl), sub) in (ctl, status())
        sub.unsubscribe("status.")
        time.sleep(0.3)  # let the unsubscription reach the publisher
        sub.drain()
        pub.publish(status())
        pub.publish(ctl)
        poller = zmq.Poller()
        poller.register(sub.socket, zmq.POLLIN)
        assert dict(poller.poll(2000)).get(sub.socket) == zmq.POLLIN
        assert sub.recv(0) == ctl
        assert sub.recv(200) is None
        assert isinstance(sub.fileno(), int)
    ctx.term()


def test_malformed_is_dropped_counted_and_next_valid_arrives(proxy, caplog):
    _, xsub, xpub = proxy
    ctx = zmq.Context()
    raw = ctx.socket(zmq.PUB)
    raw.setsockopt(zmq.LINGER, 0)
    raw.connect(xsub)
    good = [b"status.s1", b'{"v":3,"kind":"status","node":"s1","role":"slave","state":"ok",'
                          b'"pid":1,"ts_ms":1,"account":null,"error":null,"info":{}}']
    with Subscriber(xpub, ["status.s1", "pos.m1"], context=ctx) as sub:
        until_received(lambda: raw.send_multipart(good), sub)
        sub.drain()
        with caplog.at_level(logging.WARNING, logger="messaging.subscriber"):
            raw.send_multipart([b"pos.m1", b"{not json"])
            raw.send_multipart([b"status.s1", good[1], b"extra frame"])
            raw.send_multipart([b"status.s1", good[1].replace(b'"pid":1', b'"pid":-1')])
            raw.send_multipart([b"pos.m1", b'{"v":3,"kind":"snapshot","master":"m1","epoch":"e","seq":1,'
                                           b'"ts_ms":1,"positions":[{"ticket":1,"identifier":1,'
                                           b'"symbol":"X","side":"BUY","volume":NaN,"price_open":1}],'
                                           b'"orders":[],"metrics":null}'])
            raw.send_multipart(good)
            msg = sub.recv(2000)
        assert isinstance(msg, Status) and msg.state == "ok"
        assert sub.dropped == 4
        assert "malformed" in caplog.text and sub.last_error
        assert sub.wrong_version == 0
        # a node of the previous bus version: refused loudly (error log), counted, never read
        old = [good[0], good[1].replace(b'"v":3', b'"v":2')]
        with caplog.at_level(logging.ERROR, logger="messaging.subscriber"):
            raw.send_multipart(old)
            raw.send_multipart(good)
            msg = sub.recv(2000)
        assert isinstance(msg, Status) and sub.recv(0) is None
        assert sub.dropped == 5 and sub.wrong_version == 1
        assert "another schema version" in caplog.text and "this node speaks v3" in caplog.text
    raw.close()
    ctx.term()


def test_clone_over_real_bus(proxy):
    _, xsub, xpub = proxy
    ctx = zmq.Context()
    with Publisher(xsub, context=ctx) as pub, Subscriber(xpub, ["pos.m1"], context=ctx) as sub:
        sp = StatePublisher("m1", pub, snapshot_interval_ms=1000)
        mirror = Mirror("m1")
        now = [0]

        def poll():
            now[0] += 1000  # each call is a snapshot interval: resend until joined
            sp.update({1: Position(1, 1, "EURUSD", "BUY", 0.1, 1.1)}, {}, None, now[0])

        mirror.apply(until_received(poll, sub), now[0])
        assert mirror.state(now[0]).fresh
        sp.update({}, {}, None, now[0] + 1)
        msg = sub.recv(2000)
        assert isinstance(msg, Delta)
        assert mirror.apply(msg, now[0] + 1) and mirror.state(now[0] + 1).positions == {}
    ctx.term()


@pytest.mark.skipif(os.name == "nt", reason="POSIX signals")
@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT])
def test_proxy_exits_zero_on_signal(sig):
    proc, _, _ = start_proxy()
    proc.send_signal(sig)
    try:
        assert proc.wait(10) == 0
    finally:
        proc.kill() if proc.poll() is None else None
        proc.stdout.close()
        proc.stderr.close()


def test_proxy_exits_when_parent_dies():
    parent = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    proc, _, _ = start_proxy("--parent-pid", str(parent.pid))
    try:
        time.sleep(1.2)
        assert proc.poll() is None  # parent alive: proxy stays
        parent.kill()
        parent.wait(10)
        assert proc.wait(10) == 0
    finally:
        for p in (parent, proc):
            if p.poll() is None:
                p.kill()
        proc.stdout.close()
        proc.stderr.close()


def test_proxy_reports_bind_failure():
    proc, xsub, _ = start_proxy()
    try:
        env = dict(os.environ, PYTHONPATH=str(ROOT))
        second = subprocess.run([sys.executable, "-m", "messaging.proxy", "--xsub", xsub,
                                 "--xpub", "tcp://127.0.0.1:*"], cwd=ROOT, env=env,
                                capture_output=True, text=True, timeout=20)
        assert second.returncode == 2 and "cannot bind" in second.stderr
    finally:
        proc.kill()
        proc.wait(10)
        proc.stdout.close()
        proc.stderr.close()
