"""Clone pattern: StatePublisher deltas/snapshots and Mirror freshness, gaps, epochs."""
from __future__ import annotations

from dataclasses import replace

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from copier.models import AccountMetrics, PendingOrder, Position
from messaging.clone import Mirror, SnapshotRequester, StatePublisher
from messaging.codec import decode, encode
from messaging.schema import Control, Delta, Snapshot, Status


class Recorder:
    """A publisher that goes through the real codec, so tests see wire-valid messages."""

    def __init__(self):
        self.sent = []

    def publish(self, msg):
        self.sent.append(decode(encode(msg, check=True)))

    def take(self):
        out, self.sent = self.sent, []
        return out


def pos(ident, volume=0.1, sl=0.0, price_current=1.1, profit=0.0):
    return Position(ticket=ident, identifier=ident, symbol="EURUSD", side="BUY", volume=volume,
                    price_open=1.1, sl=sl, price_current=price_current, profit=profit)


def order(ticket, price=1.2):
    return PendingOrder(ticket=ticket, symbol="EURUSD", type="BUY_LIMIT", volume=0.1, price_open=price)


def by_id(*ps):
    return {p.identifier: p for p in ps}


MET = AccountMetrics(login=1, balance=100.0, equity=100.0, margin=0.0, margin_free=100.0, profit=0.0)


# ------------------------------------------------------------------ StatePublisher

def test_first_update_is_a_snapshot_then_deltas_only_on_change():
    rec = Recorder()
    sp = StatePublisher("m1", rec, snapshot_interval_ms=1000, epoch="E")
    assert sp.update(by_id(pos(1)), {}, MET, 0) is None
    [snap] = rec.take()
    assert isinstance(snap, Snapshot) and snap.seq == 0 and snap.positions == (pos(1),)

    assert sp.update(by_id(pos(1)), {}, MET, 10) is None  # nothing changed
    assert rec.take() == []

    d = sp.update(by_id(pos(1, sl=1.0), pos(2)), {5: order(5)}, MET, 20)
    assert [d] == rec.take()
    assert d.seq == 1 and d.epoch == "E"
    assert set(d.upsert_positions) == {pos(1, sl=1.0), pos(2)} and d.upsert_orders == (order(5),)

    d = sp.update(by_id(pos(2)), {}, MET, 30)
    assert d.seq == 2 and d.remove_positions == (1,) and d.remove_orders == (5,)
    assert d.upsert_positions == ()


def test_tick_noise_alone_is_not_a_delta_but_snapshot_carries_it():
    rec = Recorder()
    sp = StatePublisher("m1", rec, snapshot_interval_ms=1000, epoch="E")
    sp.update(by_id(pos(1)), {}, None, 0)
    rec.take()
    assert sp.update(by_id(pos(1, price_current=1.2, profit=5.0)), {}, None, 10) is None
    assert rec.take() == []
    sp.update(by_id(pos(1, price_current=1.3, profit=7.0)), {}, None, 1000)
    [snap] = rec.take()
    assert isinstance(snap, Snapshot) and snap.positions[0].profit == 7.0 and snap.seq == 0


def test_periodic_snapshot_and_request_snapshot():
    rec = Recorder()
    sp = StatePublisher("m1", rec, snapshot_interval_ms=1000, epoch="E")
    sp.update({}, {}, None, 0)
    rec.take()
    sp.update({}, {}, None, 999)
    assert rec.take() == []
    sp.update(by_id(pos(1)), {}, None, 1000)  # delta, then the due snapshot at the same seq
    d, snap = rec.take()
    assert isinstance(d, Delta) and isinstance(snap, Snapshot) and d.seq == snap.seq == 1
    sp.update(by_id(pos(1)), {}, None, 1100)
    assert rec.take() == []
    sp.request_snapshot()
    sp.update(by_id(pos(1)), {}, None, 1200)
    [snap] = rec.take()
    assert isinstance(snap, Snapshot) and snap.seq == 1
    sp.update(by_id(pos(1)), {}, None, 1300)
    assert rec.take() == []  # the request was served once


def test_refuses_non_state_and_wrong_keys():
    rec = Recorder()
    sp = StatePublisher("m1", rec, epoch="E")
    with pytest.raises(ValueError):
        sp.update(None, {}, None, 0)
    with pytest.raises(ValueError):
        sp.update({7: pos(1)}, {}, None, 0)
    with pytest.raises(ValueError):
        sp.update({}, {7: order(8)}, None, 0)
    assert rec.sent == []


def test_refused_message_does_not_advance_state():
    from messaging.schema import MalformedMessage

    rec = Recorder()
    sp = StatePublisher("m1", rec, epoch="E")
    sp.update({}, {}, None, 0)
    rec.take()
    with pytest.raises(MalformedMessage):
        sp.update(by_id(pos(1, volume=-1.0)), {}, None, 10)
    assert sp.seq == 0
    d = sp.update(by_id(pos(1)), {}, None, 20)
    assert d.seq == 1 and d.upsert_positions == (pos(1),)


def test_snapshot_requester_rate_limits_per_master():
    rec = Recorder()
    req = SnapshotRequester(rec, "s1", min_interval_ms=500)
    m = Mirror("m1")
    assert req.maybe_request(m, 0)
    assert not req.maybe_request(m, 100)
    assert req.request("m2", 100)
    assert req.maybe_request(m, 600)
    sent = rec.take()
    assert [c.target for c in sent] == ["m1", "m2", "m1"]
    assert all(isinstance(c, Control) and c.command == "snapshot" and c.sender == "s1" for c in sent)
    m.apply(Snapshot(master="m1", epoch="E", seq=0, ts_ms=0), 700)
    assert not req.maybe_request(m, 5000)  # in sync: nothing to ask


# ------------------------------------------------------------------------ Mirror

def snap(seq, *ps, epoch="E", orders=()):
    return Snapshot(master="m1", epoch=epoch, seq=seq, ts_ms=0, positions=ps, orders=orders)


def delta(seq, up=(), rm=(), epoch="E"):
    return Delta(master="m1", epoch=epoch, seq=seq, ts_ms=0, upsert_positions=up, remove_positions=rm)


def test_late_join_trusts_nothing_until_snapshot():
    m = Mirror("m1", stale_after_ms=3000)
    assert m.needs_snapshot
    assert not m.apply(delta(5, up=(pos(1),)), 0)
    st0 = m.state(0)
    assert not st0.fresh and st0.positions == {}
    assert m.apply(snap(5, pos(2)), 10)
    st1 = m.state(10)
    assert st1.fresh and set(st1.positions) == {2} and st1.seq == 5 and not m.needs_snapshot
    assert m.apply(delta(6, up=(pos(3),), rm=(2,)), 20)
    assert set(m.state(20).positions) == {3}


def test_gap_needs_snapshot_and_is_not_fresh():
    m = Mirror("m1")
    m.apply(snap(1, pos(1)), 0)
    assert not m.apply(delta(3, rm=(1,)), 10)  # seq 2 lost
    assert m.needs_snapshot and not m.state(10).fresh
    assert set(m.state(10).positions) == {1}  # kept, not emptied
    assert not m.apply(delta(4, up=(pos(9),)), 20)  # still waiting for a snapshot
    assert not m.apply(snap(4, pos(9)), 30)  # moves a trusted mirror: a candidate until confirmed
    assert m.needs_snapshot and set(m.state(30).positions) == {1}
    assert m.apply(snap(4, pos(9)), 40)  # the next snapshot confirms it
    assert m.state(40).fresh and set(m.state(40).positions) == {9} and m.gaps == 1


def test_duplicate_delta_is_ignored_without_gap():
    m = Mirror("m1")
    m.apply(snap(1), 0)
    assert m.apply(delta(2, up=(pos(1),)), 1)
    assert not m.apply(delta(2, up=(pos(1),)), 2)
    assert not m.apply(delta(1, up=(pos(5),)), 3)
    assert m.state(3).fresh and set(m.state(3).positions) == {1}


def test_new_epoch_resets():
    m = Mirror("m1")
    m.apply(snap(7, pos(1)), 0)
    assert not m.apply(delta(1, up=(pos(2),), epoch="F"), 10)  # master restarted, seq reset
    assert m.needs_snapshot and not m.state(10).fresh
    assert not m.apply(snap(1, pos(2), epoch="F"), 15)  # another epoch: a candidate
    assert m.apply(snap(1, pos(2), epoch="F"), 20)  # confirmed
    s = m.state(20)
    assert s.fresh and s.seq == 1 and set(s.positions) == {2} and m.epoch == "F"
    assert m.apply(delta(2, rm=(2,), epoch="F"), 30) and m.state(30).positions == {}


def test_new_epoch_snapshot_replaces_state_once_confirmed():
    m = Mirror("m1")
    m.apply(snap(50, pos(1)), 0)
    assert not m.apply(snap(0, epoch="F"), 10)  # one message never empties a trusted mirror
    assert m.needs_snapshot and m.state(10).fresh and set(m.state(10).positions) == {1}
    assert m.apply(snap(0, epoch="F"), 20)
    assert m.state(20).fresh and m.state(20).positions == {} and m.seq == 0


def test_stale_after_silence_but_never_empty():
    m = Mirror("m1", stale_after_ms=3000)
    m.apply(snap(1, pos(1)), 1000)
    assert m.state(4000).fresh
    s = m.state(4001)
    assert not s.fresh and set(s.positions) == {1} and s.updated_ms == 1000
    m.apply(snap(1, pos(1)), 5000)  # same snapshot again: refreshes
    assert m.state(5000).fresh


def test_old_snapshot_ignored():
    m = Mirror("m1")
    m.apply(snap(5, pos(1)), 0)
    m.apply(delta(6, up=(pos(2),)), 1)
    assert not m.apply(snap(5, pos(1)), 2)
    assert set(m.state(2).positions) == {1, 2} and m.seq == 6


def test_one_snapshot_after_a_gap_does_not_heal_it():
    m = Mirror("m1")
    m.apply(snap(1, pos(1)), 0)
    m.apply(delta(4, up=(pos(4),)), 1)  # gap: 2, 3 lost (or a stranger's jump)
    assert not m.apply(snap(2, pos(2)), 2)  # it takes position 1 away: a second snapshot must confirm
    assert m.needs_snapshot
    assert m.apply(snap(4, pos(4)), 3) and not m.needs_snapshot


def test_other_masters_and_kinds_ignored():
    m = Mirror("m1")
    assert not m.apply(Snapshot(master="m2", epoch="E", seq=1, ts_ms=0), 0)
    assert not m.apply(Status(node="m1", role="master", state="ok", pid=1, ts_ms=0), 0)
    assert m.needs_snapshot


def test_state_is_a_copy():
    m = Mirror("m1")
    m.apply(snap(1, pos(1)), 0)
    m.state(0).positions.clear()
    assert set(m.state(0).positions) == {1}


# ------------------------------------------------ property: lossy delivery converges

states = st.lists(
    st.tuples(
        st.dictionaries(st.integers(1, 8), st.sampled_from([0.1, 0.2, 0.3]), max_size=6),
        st.dictionaries(st.integers(1, 4), st.sampled_from([1.1, 1.2]), max_size=3),
    ),
    min_size=1, max_size=15,
)


@settings(max_examples=200, deadline=None)
@given(states, st.data())
def test_lossy_reordered_delivery_then_snapshot_converges(history, data):
    rec = Recorder()
    sp = StatePublisher("m1", rec, snapshot_interval_ms=10**9, epoch="E")
    sp.update({}, {}, None, 0)
    initial = rec.take()
    truth = {0: ({}, {})}  # master state at each seq
    for t, (vols, prices) in enumerate(history, start=1):
        want_p = {i: pos(i, volume=v) for i, v in vols.items()}
        want_o = {k: order(k, p) for k, p in prices.items()}
        sp.update(want_p, want_o, None, t)
        truth[sp.seq] = (want_p, want_o)
    stream = rec.take()
    # the network: drop, duplicate, reorder; the joiner may or may not see the first snapshot
    delivered = []
    for msg in stream:
        delivered.extend([msg] * data.draw(st.sampled_from([0, 1, 1, 1, 2])))
    if data.draw(st.booleans()):
        delivered = data.draw(st.permutations(delivered))
    if data.draw(st.booleans()):
        delivered = initial + delivered
    m = Mirror("m1", stale_after_ms=10**9)
    for msg in delivered:
        m.apply(msg, 1)
        s = m.state(1)
        if s.fresh:  # whenever it claims freshness, it holds exactly the master's state at s.seq
            assert (s.positions, s.orders) == truth[s.seq]
    last_vols, last_prices = history[-1]
    for extra in (1, 2):  # a snapshot that moves the mirror is adopted when the next one confirms it
        sp.request_snapshot()
        sp.update({i: pos(i, volume=v) for i, v in last_vols.items()},
                  {k: order(k, p) for k, p in last_prices.items()}, None, len(history) + extra)
        for msg in rec.take():
            m.apply(msg, 2)
    s = m.state(2)
    assert s.fresh and s.seq == sp.seq
    assert s.positions == {i: pos(i, volume=v) for i, v in last_vols.items()}
    assert s.orders == {k: order(k, p) for k, p in last_prices.items()}


@settings(max_examples=100, deadline=None)
@given(states)
def test_perfect_delivery_tracks_every_state_without_snapshots(history):
    rec = Recorder()
    sp = StatePublisher("m1", rec, snapshot_interval_ms=10**9, epoch="E")
    m = Mirror("m1", stale_after_ms=10**9)
    sp.update({}, {}, None, 0)
    for msg in rec.take():
        m.apply(msg, 0)
    for t, (vols, prices) in enumerate(history, start=1):
        want_p = {i: pos(i, volume=v) for i, v in vols.items()}
        want_o = {k: order(k, p) for k, p in prices.items()}
        sp.update(want_p, want_o, None, t)
        msgs = rec.take()
        assert all(isinstance(x, Delta) for x in msgs) and len(msgs) <= 1
        for msg in msgs:
            m.apply(msg, t)
        s = m.state(t)
        assert s.fresh and s.positions == want_p and s.orders == want_o


def test_mirror_ignores_tick_only_changes_until_snapshot():
    rec = Recorder()
    sp = StatePublisher("m1", rec, snapshot_interval_ms=100, epoch="E")
    m = Mirror("m1")
    sp.update(by_id(pos(1)), {}, None, 0)
    for msg in rec.take():
        m.apply(msg, 0)
    sp.update(by_id(replace(pos(1), profit=9.0)), {}, None, 100)
    for msg in rec.take():
        m.apply(msg, 100)
    assert m.state(100).positions[1].profit == 9.0
