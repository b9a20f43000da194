"""Issue 15: no single forged bus message can make a follower trade or silence its master.

A real fleet on loopback (simulator, bus proxy without CURVE, master M, slaves S1 and
S2). The forger is a plain ZeroMQ PUB socket connected to the proxy's publisher port: it
reads the master's epoch and sequence from the bus like any subscriber could, and sends
well-formed ``pos.M`` deltas. Each test then has the real master open a position and
waits for that copy: the slave handles messages in order, so once the real copy exists
every forged frame sent before it has been handled — the assertions count positions and
links, they do not time anything.
"""
from __future__ import annotations

import time

import pytest
import zmq

from copier.models import Position
from messaging.codec import encode
from messaging.schema import Control, Delta, Snapshot, Status
from messaging.subscriber import Subscriber
from testing.harness import wait_until
from tests.integration.mt5ops import market, volumes

pytestmark = pytest.mark.integration

FORGED_ID = 987_654_321


class Forger:
    """A plain PUB socket on the proxy's publisher port, plus a SUB that sees what the bus carries."""

    def __init__(self, fleet) -> None:
        self.ctx = zmq.Context()
        self.pub = self.ctx.socket(zmq.PUB)
        self.pub.setsockopt(zmq.LINGER, 0)
        self.pub.connect(fleet.bus_pub)
        self.sub = Subscriber(fleet.bus_sub, ["pos.M", "ctl.M", "status.S1"], context=self.ctx)

    def master_snapshot(self) -> Snapshot:
        """The master's latest snapshot: its epoch and current sequence number."""
        def snap():
            msg = self.sub.recv(200)
            return msg if isinstance(msg, Snapshot) and msg.master == "M" else None
        return wait_until(snap, timeout=10, message="a snapshot of M")

    def send(self, delta: Delta) -> None:
        """Publish ``delta`` and wait until the bus has carried it (the SUB saw it): the
        PUB's subscriptions arrive a few ms after it connects, and a frame sent before
        would reach nobody."""
        frames = encode(delta)
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            self.pub.send_multipart(frames)
            end = time.monotonic() + 0.3
            while time.monotonic() < end:
                msg = self.sub.recv(50)
                if msg == delta:
                    return
        raise AssertionError("the forged frame never reached the bus")

    def snapshot_requests(self, sender: str) -> int:
        """Snapshot requests ``sender`` sent to M since the last call (drains the SUB)."""
        n = 0
        msg = self.sub.recv(0)
        while msg is not None:
            n += isinstance(msg, Control) and msg.command == "snapshot" and msg.sender == sender
            msg = self.sub.recv(0)
        return n

    def status_info(self, node: str) -> dict:
        def status():
            msg = self.sub.recv(200)
            return msg.info if isinstance(msg, Status) and msg.node == node else None
        return wait_until(status, timeout=10, message=f"a status of {node}")

    def close(self) -> None:
        self.sub.close()
        self.pub.close()
        self.ctx.term()


@pytest.fixture
def forger(running):
    f = Forger(running)
    try:
        yield f
    finally:
        f.close()


def _forged_delta(snap: Snapshot, seq: int, *, volume: float, price: float, symbol: str = "EURUSD",
                  identifier: int = FORGED_ID) -> Delta:
    now = int(time.time() * 1000)
    pos = Position(ticket=identifier, identifier=identifier, symbol=symbol, side="BUY", volume=volume,
                   price_open=price, time_msc=now, time_update_msc=now, price_current=price,
                   contract_size=100000.0)
    return Delta(master="M", epoch=snap.epoch, seq=seq, ts_ms=now, upsert_positions=(pos,))


def _real_open_is_copied(fleet, symbol: str, volume: float, *expected_slaves) -> int:
    """The real master opens; both slaves copy it. Returns the master ticket."""
    m = fleet.terminal(1001)
    opened = market(m, symbol, "BUY", volume)
    for login in expected_slaves:
        s = fleet.terminal(login)
        wait_until(lambda s=s: volumes(s, symbol + ".c") == [volume], timeout=15, message=f"the real open copied on {login}")
    return opened.order


def _no_forged_trade(fleet) -> None:
    """Neither slave holds, nor ever linked, a forged position (a forged open closed again
    by the next real snapshot still leaves its link)."""
    for login, name in ((2001, "S1"), (2002, "S2")):
        s = fleet.terminal(login)
        assert volumes(s, "EURUSD.c") == [], f"{name} traded a forged position: {volumes(s, 'EURUSD.c')}"
        assert not [t for t in fleet.trades(name) if int(t["master_ticket"]) == FORGED_ID], f"{name} linked the forged ticket"


def test_forged_huge_volume_at_next_seq_is_refused_and_master_not_silenced(running, forger):
    """The issue's reproduction: one delta with the master's epoch, the next seq, 1,000,000 lots."""
    snap = forger.master_snapshot()
    price = running.terminal(1001).symbol_info_tick("EURUSD").ask
    forger.send(_forged_delta(snap, snap.seq + 1, volume=1_000_000.0, price=price))
    _real_open_is_copied(running, "GBPUSD", 0.1, 2001, 2002)
    _no_forged_trade(running)
    info = forger.status_info("S1")
    assert info.get("bus_rejected", 0) >= 1, info


def test_ten_forged_frames_do_not_stop_copying(running, forger):
    """Ten forged frames (seq+1 … seq+10): none trades, and the master's next open is still copied."""
    snap = forger.master_snapshot()
    price = running.terminal(1001).symbol_info_tick("EURUSD").ask
    for k in range(1, 11):
        forger.send(_forged_delta(snap, snap.seq + k, volume=1_000_000.0, price=price, identifier=FORGED_ID + k - 1))
    _real_open_is_copied(running, "GBPUSD", 0.1, 2001, 2002)
    _real_open_is_copied(running, "USDJPY", 0.2, 2001, 2002)  # and the one after it
    for login in (2001, 2002):
        assert volumes(running.terminal(login), "EURUSD.c") == []


def test_forged_far_price_is_refused(running, forger):
    """A plausible volume at a price far from the market (twice the real one) is no trade."""
    snap = forger.master_snapshot()
    price = running.terminal(1001).symbol_info_tick("EURUSD").ask
    forger.send(_forged_delta(snap, snap.seq + 1, volume=0.1, price=round(price * 2, 5)))
    _real_open_is_copied(running, "GBPUSD", 0.1, 2001, 2002)
    _no_forged_trade(running)


def test_jumped_sequence_asks_for_a_snapshot_and_trades_nothing(running, forger):
    """A plausible delta whose seq jumps ahead of the master's is a gap: a snapshot request, no trade."""
    snap = forger.master_snapshot()
    price = running.terminal(1001).symbol_info_tick("EURUSD").ask
    forger.snapshot_requests("S1")  # drain
    forger.send(_forged_delta(snap, snap.seq + 5, volume=0.1, price=price))
    wait_until(lambda: forger.snapshot_requests("S1") >= 1, timeout=10, message="S1 asks M for a snapshot")
    _real_open_is_copied(running, "GBPUSD", 0.1, 2001, 2002)
    _no_forged_trade(running)
