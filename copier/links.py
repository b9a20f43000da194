"""A slave's durable master↔slave map row (the ``trades`` collection), as a value.

One link per (slave, master, master_ticket). ``master_ticket`` is the master position
IDENTIFIER, or the pending-order ticket for ``kind == "order"``; MT5 gives the position
that a filled order creates the same number, so a link keeps its key when an order fills
and only its ``kind`` changes to "position".

Lifecycle: PENDING (intent written before order_send, outcome unknown; or refused for a
transient reason such as 10018 market closed: ``retry_reason`` says why, and the copy is
planned again while the master holds it) -> OPEN (slave ticket known) -> CLOSED. SKIPPED (decided not to copy) and FAILED (gave up after
``max_attempts``) are terminal like CLOSED: such a master ticket is never copied again.
``master_volume``/``slave_volume`` are the volumes when the copy was first opened: the sizing
ratio partial closes and adds scale from, so they never need rewriting - except on a flip (a
netting master's position changed side under the same identifier), when they, ``direction``
and ``master_direction`` are rewritten for the new side (``Flip``). What the follower HOLDS
now is ``held_volume`` (lots; ``copier/held.py``): set by the slave with every fill, partial close,
adoption and flip it records, and corrected by its timer's full pass from the positions it
read (a manual partial close, an SL that took part of a position); views show it, falling
back to ``slave_volume`` for links written before the field existed (None here); a CLOSED
link keeps the volume it last held. ``reduced_to`` (netting) is
the master volume the last reduction booked to this copy followed, so the next reduction of
the shared net position is booked to the master position that shrank since, not to one that
shrank earlier.
"""
from __future__ import annotations

from collections.abc import Mapping
from dataclasses import asdict, dataclass, fields
from typing import Any

PENDING = "PENDING"
OPEN = "OPEN"
CLOSED = "CLOSED"
SKIPPED = "SKIPPED"
FAILED = "FAILED"
STATUSES = (PENDING, OPEN, CLOSED, SKIPPED, FAILED)
LIVE = frozenset({PENDING, OPEN})
TERMINAL = frozenset({CLOSED, SKIPPED, FAILED})
KIND_POSITION = "position"
KIND_ORDER = "order"


@dataclass(frozen=True, slots=True)
class Link:
    slave_name: str
    master_name: str
    master_ticket: int
    kind: str = KIND_POSITION
    status: str = PENDING
    slave_ticket: int = 0  # slave position identifier (or slave order ticket for kind "order")
    symbol: str = ""  # slave symbol
    master_symbol: str = ""
    direction: str = ""  # slave side, "BUY" | "SELL"
    master_direction: str = ""  # master side when the copy was made ("" = same as direction)
    master_volume: float = 0.0
    slave_volume: float = 0.0
    attempts: int = 0
    tag: str = ""
    reason: str = ""
    # slave lots per master lot as sized, before rounding (0 = unknown: use slave/master volume);
    # a netting slave sums these to its net target (docs/copier.md, "Net target")
    lot_ratio: float = 0.0
    reduced_to: float = 0.0  # netting: master volume at the last reduction booked to this copy (0 = none)
    held_volume: float | None = None  # lots the follower holds now (None: not recorded, see copier/held.py)

    @property
    def key(self) -> tuple[str, int]:
        return (self.master_name, self.master_ticket)

    @property
    def live(self) -> bool:
        return self.status in LIVE

    @property
    def master_side(self) -> str:
        return self.master_direction or self.direction

    def to_record(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_record(cls, record: Mapping[str, Any]) -> Link:
        """Build from a store row; unknown keys (``_id``, times, ...) are ignored, and the
        seed's minimal rows (master_ticket, slave_ticket, symbol, direction, status) load."""
        names = {f.name for f in fields(cls)}
        data = {k: v for k, v in record.items() if k in names and v is not None}
        for key in ("master_ticket", "slave_ticket", "attempts"):
            if key in data:
                data[key] = int(data[key])
        for key in ("master_volume", "slave_volume", "lot_ratio", "reduced_to", "held_volume"):
            if key in data:
                data[key] = float(data[key])
        data.setdefault("master_name", "")
        return cls(**data)
