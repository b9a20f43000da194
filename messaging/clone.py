"""Master state replication after the ZeroMQ Guide's Clone pattern (chapter 5).

Master side, :class:`StatePublisher`: each poll hands it the full current state; it
publishes one *delta* (sequence ``seq + 1``) holding everything that changed, and a
full *snapshot* (carrying the current ``seq``) every ``snapshot_interval_ms`` or when
asked. ``epoch`` identifies one run of the master process, so a restarted master whose
sequence starts again at 0 is recognised instead of being mistaken for old news.

Slave side, :class:`Mirror`: trusts nothing until a snapshot; applies a delta only if
it is exactly the next sequence of the same epoch; on a gap or a new epoch it stops
being fresh and waits for a snapshot (which :class:`SnapshotRequester` asks for). A
master that goes silent leaves the mirror *stale*, never empty, so "absence is not a
close" (ARCHITECTURE.md, invariant 1).

Unlike the Guide, snapshots travel in-band on the same PUB topic as deltas (periodic
plus on request over ``ctl.<master>``) instead of a ROUTER/DEALER side channel: one
socket per node, and every subscriber heals itself within one interval even if its
request is lost.
"""
from __future__ import annotations

import secrets
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import fields
from operator import attrgetter
from typing import Any

from copier.models import AccountMetrics, MasterState, PendingOrder, Position
from messaging.schema import Control, Delta, Message, Snapshot

# Fields that move with every tick. A change in them alone is not worth a delta:
# copying does not depend on them, and the next snapshot carries fresh values.
VOLATILE_POSITION_FIELDS: frozenset[str] = frozenset({"price_current", "profit"})


def new_epoch(now_ms: int | None = None) -> str:
    """A per-process-run id: start time (ms, hex) plus randomness against clashes."""
    ms = time.time_ns() // 1_000_000 if now_ms is None else now_ms
    return f"{ms:x}-{secrets.token_hex(4)}"


class StatePublisher:
    """Turns successive full states of one master into deltas and snapshots.

    Positions are keyed by ``identifier``, orders by ``ticket``. Call :meth:`update`
    only with a state the terminal actually returned: on a terminal error call
    nothing, so no snapshot goes out and every mirror turns stale rather than empty.
    ``publisher`` is anything with ``publish(message)`` (a messaging Publisher).
    """

    def __init__(self, master: str, publisher: Any, *, snapshot_interval_ms: int = 1000,
                 epoch: str | None = None,
                 volatile_fields: frozenset[str] = VOLATILE_POSITION_FIELDS) -> None:
        self.master = master
        self.publisher = publisher
        self.snapshot_interval_ms = snapshot_interval_ms
        self.epoch = epoch or new_epoch()
        self.seq = 0
        self._sig_fields = tuple(f.name for f in fields(Position) if f.name not in volatile_fields)
        self._sig = attrgetter(*self._sig_fields)  # a position's non-volatile fields as a tuple (C speed)
        self._positions: dict[int, Position] = {}
        self._sigs: dict[int, tuple] = {}  # identifier -> _sig of the published position (not recomputed per poll)
        self._orders: dict[int, PendingOrder] = {}
        self._started = False
        self._last_snapshot_ms: int | None = None
        self._snapshot_requested = False

    def snapshot_due(self, now_ms: int) -> bool:
        """True when the next :meth:`update` publishes a full snapshot (first call, asked
        for, or ``snapshot_interval_ms`` since the last one)."""
        last = self._last_snapshot_ms
        return not self._started or self._snapshot_requested or last is None or not 0 <= now_ms - last < self.snapshot_interval_ms

    def request_snapshot(self) -> None:
        """Publish a full snapshot with the next :meth:`update` (e.g. on ``ctl`` snapshot)."""
        self._snapshot_requested = True

    def update(self, positions: Mapping[int, Position], orders: Mapping[int, PendingOrder],
               metrics: AccountMetrics | None, now_ms: int, *,
               before_change: Callable[[], None] | None = None) -> Delta | None:
        """Publish what changed since the last call; return the delta sent, if any.

        The first call publishes a snapshot (seq 0) and no delta. State is committed
        only after a successful publish, so a refused message (e.g. a NaN price)
        raises and leaves the publisher where it was. ``before_change()`` runs right
        before a change (a delta, or the first snapshot) is published, and only then: it
        may raise to stop the publish (the master confirms its account there).
        """
        if positions is None or orders is None:
            raise ValueError("StatePublisher.update needs the terminal's real state, not None")
        pos = dict(positions)
        ords = dict(orders)
        for k, p in pos.items():
            if k != p.identifier:
                raise ValueError(f"positions must be keyed by identifier: {k} != {p.identifier}")
        for k, o in ords.items():
            if k != o.ticket:
                raise ValueError(f"orders must be keyed by ticket: {k} != {o.ticket}")

        if not self._started:
            if before_change is not None:
                before_change()
            self._send_snapshot(pos, ords, metrics, now_ms)
            self._started = True
            return None

        sig, sigs = self._sig, self._sigs
        new_sigs = {}
        for k, p in pos.items():
            s = sig(p)
            if sigs.get(k) != s:
                new_sigs[k] = s
        up_p = tuple(pos[k] for k in new_sigs)
        up_o = tuple(o for k, o in ords.items() if self._orders.get(k) != o)
        rm_p = tuple(k for k in self._positions if k not in pos)
        rm_o = tuple(k for k in self._orders if k not in ords)
        delta = None
        if up_p or up_o or rm_p or rm_o:
            if before_change is not None:
                before_change()
            delta = Delta(master=self.master, epoch=self.epoch, seq=self.seq + 1, ts_ms=now_ms,
                          upsert_positions=up_p, upsert_orders=up_o,
                          remove_positions=rm_p, remove_orders=rm_o)
            self.publisher.publish(delta)
            self.seq += 1
            # Keep the published values of unchanged positions: the diff baseline is
            # what subscribers hold, not what the terminal says about ticks.
            for p in up_p:
                self._positions[p.identifier] = p
            sigs.update(new_sigs)
            for k in rm_p:
                del self._positions[k]
                sigs.pop(k, None)
            self._orders = ords

        if self.snapshot_due(now_ms):
            self._send_snapshot(pos, ords, metrics, now_ms)
        return delta

    def _send_snapshot(self, pos: dict[int, Position], ords: dict[int, PendingOrder],
                       metrics: AccountMetrics | None, now_ms: int) -> None:
        self.publisher.publish(Snapshot(
            master=self.master, epoch=self.epoch, seq=self.seq, ts_ms=now_ms,
            positions=tuple(pos.values()), orders=tuple(ords.values()), metrics=metrics))
        self._positions = pos
        self._sigs = {k: self._sig(p) for k, p in pos.items()}
        self._orders = ords
        self._last_snapshot_ms = now_ms
        self._snapshot_requested = False


# check(message, known_positions, metrics, now_ms) -> the broken rules (empty: believable)
Check = Callable[[Any, Mapping[int, Position], "AccountMetrics | None", int], Sequence[Any]]


class Mirror:
    """A subscriber's copy of one master, fed with that master's pos messages.

    No single message may make it trade or silence the real master (issue 15):

    * ``check`` (optional, the follower's plausibility rules, copier/plausibility.py) runs
      on every snapshot and delta first; a refused delta that would have been the next one
      makes a gap (snapshot requested), a refused snapshot is ignored.
    * Only an *applied* message moves the sequence: a delta that jumps ahead is a gap and
      leaves ``seq`` where the master's last believable message put it, so the master's
      next snapshot is accepted rather than taken for old news.
    * The same sequence number with other content (a delta, or a snapshot at the mirror's
      own seq), or a snapshot older than the mirror in its epoch, proves that one of the
      two was not the master's: a *conflict* — the mirror stops being fresh until a
      snapshot is confirmed.
    * A snapshot that would take anything away from a trusted mirror (remove or change a
      position or order), or that comes from another epoch, or contradicts the mirror, is
      a *candidate*: adopted only when the next snapshot confirms it (same epoch, seq not
      lower). The mirror asks for that snapshot at once (``needs_snapshot``); a master
      heals within one request round trip, a forger's lone snapshot closes nothing and is
      forgotten. A later snapshot of the same epoch that only adds is adopted as it comes
      (what it adds is checked like a delta), and so is the very first snapshot.
    """

    _DELTAS_KEPT = 64  # recent applied deltas, to tell a duplicate from a conflicting one

    def __init__(self, master: str, *, stale_after_ms: int = 3000, check: Check | None = None,
                 on_conflict: Callable[[Message, str], None] | None = None) -> None:
        self.master = master
        self.stale_after_ms = stale_after_ms
        self.check = check
        self.on_conflict = on_conflict  # told (message, why) of every conflict, e.g. to log it
        self.epoch: str | None = None
        self.seq = -1
        self.has_snapshot = False
        self.metrics: AccountMetrics | None = None
        self.last_msg_ms = 0
        self.gaps = 0  # how often a gap or a new epoch forced a resync
        self.rejected = 0  # messages the check refused
        self.conflicts = 0  # messages that contradicted another of the same seq, or went backwards
        self.last_rejection: Sequence[Any] = ()
        self._gap = False
        self._candidate: tuple[str, int] | None = None  # (epoch, seq) of an unconfirmed snapshot
        self._positions: dict[int, Position] = {}
        self._orders: dict[int, PendingOrder] = {}
        self._applied: dict[int, Delta] = {}  # seq -> delta applied at that seq (this epoch)

    @property
    def needs_snapshot(self) -> bool:
        """True until a snapshot is adopted, after a gap or a conflict, and while a
        candidate snapshot waits for its confirmation."""
        return not self.has_snapshot or self._gap or self._candidate is not None

    def _lose_sync(self) -> None:
        if not self._gap:
            self._gap = True
            self.gaps += 1

    def _conflict(self, msg: Message, why: str) -> None:
        self.conflicts += 1
        self._lose_sync()
        if self.on_conflict is not None:
            self.on_conflict(msg, why)

    def apply(self, msg: Message, now_ms: int) -> bool:
        """Feed one message; True when positions/orders changed or became trustworthy.

        Messages for other masters, and non-pos kinds, are ignored.
        """
        if not isinstance(msg, (Snapshot, Delta)) or msg.master != self.master:
            return False
        if self.check is not None:
            problems = self.check(msg, self._positions, self.metrics, now_ms)
            if problems:
                self.rejected += 1
                self.last_rejection = tuple(problems)
                if (isinstance(msg, Delta) and self.has_snapshot and msg.epoch == self.epoch
                        and msg.seq == self.seq + 1):
                    self._lose_sync()  # had it been the master's, we would now be behind
                return False
        if isinstance(msg, Snapshot):
            return self._apply_snapshot(msg, now_ms)
        return self._apply_delta(msg, now_ms)

    def _same_state(self, positions: dict[int, Position], orders: dict[int, PendingOrder]) -> bool:
        """Equal to the mirror, ticking fields (price_current, profit) aside."""
        if orders != self._orders or positions.keys() != self._positions.keys():
            return False
        mine = self._positions
        return all(_steady(p) == _steady(mine[k]) for k, p in positions.items())

    def _only_adds(self, positions: dict[int, Position], orders: dict[int, PendingOrder]) -> bool:
        """Everything the mirror holds is still there, unchanged (ticking fields aside)."""
        mine_o = self._orders
        if any(orders.get(k) != o for k, o in mine_o.items()):
            return False
        return all(k in positions and _steady(positions[k]) == _steady(p) for k, p in self._positions.items())

    def _apply_snapshot(self, s: Snapshot, now_ms: int) -> bool:
        positions = {p.identifier: p for p in s.positions}
        orders = {o.ticket: o for o in s.orders}
        if self.has_snapshot and s.epoch == self.epoch and s.seq == self.seq and self._same_state(positions, orders):
            # the master confirms what we hold: refresh the ticking fields, clear any doubt
            changed = self._gap
            self._positions, self._orders, self.metrics = positions, orders, s.metrics
            self._gap, self._candidate = False, None
            self.last_msg_ms = now_ms
            return changed
        cand = self._candidate
        confirmed = cand is not None and cand[0] == s.epoch and s.seq >= cand[1]
        adds_only = s.epoch == self.epoch and s.seq > self.seq and self._only_adds(positions, orders)
        if self.has_snapshot and not confirmed and not adds_only:
            if s.epoch == self.epoch and s.seq < self.seq:
                self._conflict(s, f"snapshot at seq {s.seq} after seq {self.seq} of the same epoch")
            elif s.epoch == self.epoch and s.seq == self.seq:
                self._conflict(s, f"snapshot at seq {s.seq} holds another state than the mirror at that seq")
            self._candidate = (s.epoch, s.seq)
            return False
        changed = self.needs_snapshot or positions != self._positions or orders != self._orders
        if s.epoch != self.epoch:
            self._applied = {}
        self._positions, self._orders = positions, orders
        self.epoch, self.seq = s.epoch, s.seq
        self.metrics = s.metrics
        self.has_snapshot = True
        self._gap, self._candidate = False, None
        self._applied = {k: d for k, d in self._applied.items() if k <= s.seq}
        self.last_msg_ms = now_ms
        return changed

    def _apply_delta(self, d: Delta, now_ms: int) -> bool:
        if not self.has_snapshot:
            return False  # joined late: nothing to apply a delta to
        if d.epoch != self.epoch:
            self._lose_sync()  # master restarted (or a stranger): our state may be arbitrarily old
            return False
        if d.seq <= self.seq:
            before = self._applied.get(d.seq)
            if before is not None and before != d:
                self._conflict(d, f"two different deltas for seq {d.seq}")  # one is not the master's
            return False  # duplicate/old
        if self._gap:
            return False  # waiting for a snapshot anyway
        if d.seq != self.seq + 1:
            self._lose_sync()  # a jump: trust nothing until a snapshot says where the master is
            return False
        changed = False
        for p in d.upsert_positions:
            changed |= self._positions.get(p.identifier) != p
            self._positions[p.identifier] = p
        for o in d.upsert_orders:
            changed |= self._orders.get(o.ticket) != o
            self._orders[o.ticket] = o
        for k in d.remove_positions:
            changed |= self._positions.pop(k, None) is not None
        for k in d.remove_orders:
            changed |= self._orders.pop(k, None) is not None
        self.seq = d.seq
        self._applied[d.seq] = d
        if len(self._applied) > self._DELTAS_KEPT:
            del self._applied[min(self._applied)]
        self.last_msg_ms = now_ms
        return changed

    def fresh(self, now_ms: int) -> bool:
        return (self.has_snapshot and not self._gap
                and now_ms - self.last_msg_ms <= self.stale_after_ms)

    def state(self, now_ms: int) -> MasterState:
        """A copy of the mirrored state; act on closes only when ``fresh``."""
        return MasterState(master=self.master, seq=self.seq, positions=dict(self._positions),
                           orders=dict(self._orders), fresh=self.fresh(now_ms),
                           updated_ms=self.last_msg_ms)


_STEADY = attrgetter(*(f.name for f in fields(Position) if f.name not in VOLATILE_POSITION_FIELDS))


def _steady(p: Position) -> tuple[Any, ...]:
    """A position's fields that only a delta changes."""
    return _STEADY(p)


class SnapshotRequester:
    """Asks masters for a snapshot (``ctl.<master>`` ``snapshot``) when a mirror needs one.

    Rate-limited per master, because every slave of a master sees the same gap and a
    lost request is repaired by the periodic snapshot anyway.
    """

    def __init__(self, publisher: Any, sender: str, *, min_interval_ms: int = 1000) -> None:
        self.publisher = publisher
        self.sender = sender
        self.min_interval_ms = min_interval_ms
        self._last: dict[str, int] = {}

    def request(self, master: str, now_ms: int) -> bool:
        last = self._last.get(master)
        if last is not None and 0 <= now_ms - last < self.min_interval_ms:
            return False
        self.publisher.publish(Control(target=master, command="snapshot", sender=self.sender,
                                       ts_ms=now_ms, args={}))
        self._last[master] = now_ms
        return True

    def maybe_request(self, mirror: Mirror, now_ms: int) -> bool:
        """Send a request if ``mirror`` needs a snapshot and the rate limit allows."""
        return mirror.needs_snapshot and self.request(mirror.master, now_ms)
