"""Feed an in-process slave loop as a master does: a change is a delta, then the snapshot.

Tests build the master's state as a ``Snapshot``. A real master publishes every change as
a delta (``seq + 1``) before its next snapshot, and a trusted mirror adopts a snapshot that
takes something away only when a second one confirms it (issue 15, messaging/clone.py).
``feed`` delivers what the master would: the delta from the mirror's state to the
snapshot's when the snapshot is the mirror's next seq, then the snapshot itself.
"""
from __future__ import annotations

from messaging.schema import Delta, Snapshot


def master_messages(loop, snap: Snapshot, now_ms: int) -> list:
    """The messages a master sends to reach ``snap`` from what ``loop``'s mirror holds."""
    mirror = loop.mirrors.get(snap.master)
    if mirror is None or not mirror.has_snapshot or mirror.epoch != snap.epoch or snap.seq != mirror.seq + 1:
        return [snap]
    held = mirror.state(now_ms)
    positions = {p.identifier: p for p in snap.positions}
    orders = {o.ticket: o for o in snap.orders}
    delta = Delta(master=snap.master, epoch=snap.epoch, seq=snap.seq, ts_ms=snap.ts_ms,
                  upsert_positions=tuple(p for k, p in positions.items() if held.positions.get(k) != p),
                  upsert_orders=tuple(o for k, o in orders.items() if held.orders.get(k) != o),
                  remove_positions=tuple(k for k in held.positions if k not in positions),
                  remove_orders=tuple(k for k in held.orders if k not in orders))
    return [delta, snap]


def feed(loop, snap: Snapshot) -> bool:
    """``loop.on_message`` for each message of :func:`master_messages`; True if any asked for a pass."""
    from nodes.runtime import utc_ms

    wants = False
    for msg in master_messages(loop, snap, utc_ms()):
        wants = loop.on_message(msg) or wants
    return wants
