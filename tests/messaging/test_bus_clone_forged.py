"""Mirror against foreign messages (issue 15): no single message makes a follower act on a
state the master never had, and none silences the real master.

The master is a real StatePublisher; the forger writes messages by hand with the master's
epoch and sequence numbers, as anyone who can read the bus could.
"""
from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from messaging.clone import Mirror, StatePublisher
from messaging.schema import Delta, Snapshot
from tests.messaging.test_bus_clone import Recorder, by_id, pos


class Master:
    """A real StatePublisher and its stream."""

    def __init__(self, positions=()):
        self.rec = Recorder()
        self.sp = StatePublisher("m1", self.rec, snapshot_interval_ms=10**9, epoch="E")
        self.positions = by_id(*positions)
        self.sp.update(self.positions, {}, None, 0)

    def change(self, positions, t=1):
        self.positions = by_id(*positions)
        self.sp.update(self.positions, {}, None, t)
        return self.rec.take()

    def snapshot(self, t=2):
        self.sp.request_snapshot()
        self.sp.update(self.positions, {}, None, t)
        return self.rec.take()


def synced(master):
    m = Mirror("m1", stale_after_ms=10**9)
    for msg in master.rec.take():
        m.apply(msg, 0)
    assert m.fresh(0)
    return m


def feed(m, msgs, t=1):
    return [m.apply(x, t) for x in msgs]


def forged_delta(seq, *positions, remove=(), epoch="E"):
    return Delta(master="m1", epoch=epoch, seq=seq, ts_ms=1, upsert_positions=positions, remove_positions=remove)


def forged_snapshot(seq, *positions, epoch="E"):
    return Snapshot(master="m1", epoch=epoch, seq=seq, ts_ms=1, positions=positions)


def test_a_jumped_delta_does_not_move_the_sequence_and_the_next_snapshot_heals():
    master = Master([pos(1)])
    m = synced(master)
    assert not m.apply(forged_delta(10, pos(9)), 1)  # a jump: gap, nothing applied
    assert m.needs_snapshot and not m.fresh(1) and m.seq == 0 and set(m.state(1).positions) == {1}
    feed(m, master.snapshot())  # the master's own snapshot, seq 0: accepted (not "older than 10")
    assert m.fresh(2) and not m.needs_snapshot and set(m.state(2).positions) == {1}
    feed(m, master.change([pos(1), pos(2)]))  # and its next change applies as usual
    assert set(m.state(3).positions) == {1, 2} and m.seq == 1


def test_ten_jumped_deltas_do_not_silence_the_master():
    master = Master([pos(1)])
    m = synced(master)
    for k in range(1, 11):
        m.apply(forged_delta(k + 1, pos(100 + k)), 1)
    feed(m, master.snapshot())
    feed(m, master.change([pos(1), pos(2)]))
    assert m.fresh(3) and set(m.state(3).positions) == {1, 2}


def test_a_forged_next_delta_then_the_real_one_is_a_conflict_and_the_master_wins():
    master = Master([pos(1)])
    m = synced(master)
    assert m.apply(forged_delta(1, pos(66)), 1)  # believable, next seq: applied (only CURVE tells)
    feed(m, master.change([pos(1), pos(2)]))  # the master's own seq 1: same seq, other content
    assert m.conflicts == 1 and not m.fresh(1) and m.needs_snapshot
    assert not any(feed(m, master.snapshot()))  # contradicts the mirror at seq 1: a candidate
    assert set(m.state(2).positions) == {1, 66} and not m.fresh(2)
    feed(m, master.snapshot(3))  # the confirmation
    assert m.fresh(3) and set(m.state(3).positions) == {1, 2}


def test_a_forged_next_delta_then_the_masters_unchanged_snapshot_recovers():
    master = Master([pos(1)])
    m = synced(master)
    m.apply(forged_delta(1, pos(66)), 1)
    feed(m, master.snapshot())  # seq 0 after seq 1 in one epoch: someone lies
    assert m.conflicts == 1 and not m.fresh(2)
    feed(m, master.snapshot(3))
    assert m.fresh(3) and set(m.state(3).positions) == {1} and m.seq == 0


def test_a_single_snapshot_never_takes_positions_away_from_a_trusted_mirror():
    master = Master([pos(1), pos(2)])
    m = synced(master)
    for forged in (forged_snapshot(5), forged_snapshot(0, pos(1)), forged_snapshot(0, epoch="F"),
                   forged_snapshot(7, pos(1), pos(2, volume=0.01))):
        assert not m.apply(forged, 1)
        assert set(m.state(1).positions) == {1, 2} and m.state(1).positions[2].volume == 0.1
        feed(m, master.snapshot())  # the master's next snapshot clears the doubt
        assert m.fresh(2) and not m.needs_snapshot


def test_a_snapshot_that_only_adds_is_adopted_at_once():
    master = Master([pos(1)])
    m = synced(master)
    master.change([pos(1), pos(2)])  # the delta is lost
    assert m.apply(master.snapshot()[0], 2)
    assert m.fresh(2) and set(m.state(2).positions) == {1, 2}


def test_a_real_master_restart_is_followed_after_one_confirming_snapshot():
    old = Master([pos(1)])
    m = synced(old)
    new = Master.__new__(Master)  # the restarted process: another epoch, seq from 0
    new.rec = Recorder()
    new.sp = StatePublisher("m1", new.rec, snapshot_interval_ms=10**9, epoch="F")
    new.positions = {}
    new.sp.update({}, {}, None, 0)
    assert not any(feed(m, new.rec.take()))  # a candidate
    assert m.needs_snapshot and set(m.state(1).positions) == {1}
    assert any(feed(m, new.snapshot()))
    assert m.epoch == "F" and m.state(2).positions == {}


class Refuse:
    """A check that refuses messages carrying a position of identifier 666."""

    def __init__(self):
        self.seen = []

    def __call__(self, msg, known, metrics, now_ms):
        self.seen.append((msg.kind, msg.seq, dict(known)))
        ps = msg.positions if isinstance(msg, Snapshot) else msg.upsert_positions
        return ["bad"] if any(p.identifier == 666 for p in ps) else []


def test_a_refused_next_delta_is_a_gap_and_a_refused_snapshot_is_ignored():
    master = Master([pos(1)])
    check = Refuse()
    m = Mirror("m1", stale_after_ms=10**9, check=check)
    feed(m, master.rec.take(), 0)
    assert not m.apply(forged_delta(1, pos(666)), 1)
    assert m.rejected == 1 and m.needs_snapshot and not m.fresh(1) and 666 not in m.state(1).positions
    assert check.seen[-1] == ("delta", 1, {1: pos(1)})  # the check sees what the mirror held
    feed(m, master.snapshot())
    assert m.fresh(2)
    assert not m.apply(forged_snapshot(0, pos(1), pos(666)), 3)
    assert m.rejected == 2 and m.fresh(3) and not m.needs_snapshot  # ignored: nothing to resync
    assert not m.apply(forged_delta(9, pos(666)), 4)  # refused, and not the next seq: no gap either
    assert m.fresh(4) and m.last_rejection == ("bad",)


def test_conflicts_are_reported():
    master = Master([pos(1)])
    told = []
    m = Mirror("m1", stale_after_ms=10**9, on_conflict=lambda msg, why: told.append((msg.kind, why)))
    feed(m, master.rec.take(), 0)
    m.apply(forged_delta(1, pos(5)), 1)
    m.apply(forged_delta(1, pos(6)), 1)
    assert told == [("delta", "two different deltas for seq 1")]


positions = st.lists(st.integers(1, 6), unique=True, max_size=4).map(lambda ids: [pos(i) for i in ids])


@settings(max_examples=200, deadline=None)
@given(st.lists(positions, min_size=1, max_size=6), st.integers(0, 5),
       st.lists(st.tuples(st.sampled_from(["delta", "snapshot"]), st.integers(0, 12), positions), min_size=1, max_size=3))
def test_one_forged_message_anywhere_never_leaves_the_mirror_on_a_state_the_master_never_had(history, at, forged):
    """Whatever short run of forged frames (any kind, any seq) lands anywhere in the stream,
    after the master's next two snapshots the mirror is fresh and holds exactly the master's
    state: no forged seq outlasts the master's own sequence."""
    master = Master([])
    stream = []
    for positions_now in history:
        stream += master.change(positions_now)
    frames = [forged_delta(seq, *ps) if kind == "delta" else forged_snapshot(seq, *ps) for kind, seq, ps in forged]
    at = min(at, len(stream))
    m = Mirror("m1", stale_after_ms=10**9)
    m.apply(Snapshot(master="m1", epoch="E", seq=0, ts_ms=0), 0)  # the master's first snapshot (it starts empty)
    for msg in stream[:at] + frames + stream[at:]:
        m.apply(msg, 1)
    for snap in (master.snapshot(5), master.snapshot(6)):
        feed(m, snap, 2)
    assert m.fresh(2) and m.state(2).positions == master.positions
