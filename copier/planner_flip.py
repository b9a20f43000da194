"""Flips: a netting master's position that changed side under the same identifier.

On a netting account one opposite deal larger than the position reverses it (an INOUT
deal, MQL5 "Position accounting": the identifier stays, the ticket becomes the reversing
order's). BUY 1.00 then SELL 2.00 leaves SELL 1.00 with the same identifier. That is not
a close: the link keeps tracking the position, on its new side (``Flip``), and the
follower now holds the new side sized as a new copy at the flip:

* hedging slave: close the old side's copies ("master flipped", the link lives on) and
  open the new side for the same master position (link PENDING until it is made, so the
  retry machinery carries it over a refusal such as a closed market);
* netting slave: the link's contribution to the symbol's net target changes sign; the
  net pass (``planner_netting``) trades the difference.

A hedging account never flips (an opposite deal without ``position=`` opens a hedge), so
only netting masters produce flips; a flip may also be partial (BUY 1.00, SELL 1.50 →
SELL 0.50) and may happen any number of times.
"""
from __future__ import annotations

from dataclasses import replace

from copier.actions import Flip
from copier.decisions import Skip
from copier.links import PENDING, Link
from copier.models import Position, SymbolSpec, opposite
from copier.planner_common import (
    close_positions,
    emit_open,
    open_for,
    paused_text,
    size,
    sizing_fields,
    skip,
)
from copier.planner_state import MasterView, PlanState
from copier.sizing import SizedCopy, normalize_volume

FLIPPED = "master flipped"

FlipSizing = tuple[float, float | Skip, SizedCopy | None]  # (lot_ratio, volume | Skip, sized | None)


def link_ratio(link: Link) -> float:
    """Slave lots per master lot for ``link``: the recorded unrounded ratio, else the
    at-open volumes' ratio, else 0 (unknown)."""
    if link.lot_ratio > 0:
        return link.lot_ratio
    if link.master_volume > 0 and link.slave_volume > 0:
        return link.slave_volume / link.master_volume
    return 0.0


def is_flip(link: Link, mpos: Position | None) -> bool:
    """The master position the link copies now stands on the other side."""
    return mpos is not None and bool(link.master_side) and mpos.side != link.master_side


def flip_sizing(st: PlanState, view: MasterView, mpos: Position, link: Link, spec: SymbolSpec) -> FlipSizing | Skip | None:
    """(lot_ratio, volume | Skip, sized | None) for the new side, or Skip, or None (wait).

    The new side is sized as a new copy would be at this moment (a flip is one exposure
    closed and another opened); when the sizing inputs are not known yet (contract size,
    FX rate) the link's own ratio is used rather than waiting with the old side open.
    """
    sized = size(st, view, mpos, spec)
    if isinstance(sized, Skip):
        return sized
    if sized is not None and mpos.volume > 0:
        ratio = sized.volume / mpos.volume
    else:
        ratio, sized = link_ratio(link), None
        if ratio <= 0:
            return None
    return ratio, normalize_volume(ratio * mpos.volume, spec, max_lot=st.cfg.max_lot), sized


def flipped_link(link: Link, mpos: Position, ratio: float, volume: float, status: str) -> Link:
    """``link`` rewritten for the master position's new side (volumes in lots)."""
    direction = opposite(link.direction) if link.direction else mpos.side
    return replace(link, direction=direction, master_direction=mpos.side, master_volume=mpos.volume,
                   slave_volume=volume, lot_ratio=ratio, status=status, attempts=0 if status == PENDING else link.attempts)


def flip_action(old: Link, new: Link, sized: SizedCopy | None = None, mpos: Position | None = None) -> Flip:
    """The ``Flip`` that rewrites ``old`` into ``new``, with how the new side was sized."""
    fields = sizing_fields(sized, mpos) if mpos is not None else {}
    return Flip(new.master_name, new.master_ticket, new.direction, new.master_side, new.master_volume, new.slave_volume,
                new.lot_ratio, new.status, old.direction, FLIPPED, **fields)


def plan_hedging_flip(st: PlanState, link: Link, view: MasterView, mpos: Position, positions: list[Position],
                      *, close_old: bool = True) -> Link | None:
    """Hedging slave, the master flipped: close the old side, open the new one (one pass).

    Returns the link as rewritten by the ``Flip`` (None: nothing decided yet, e.g. the new
    side cannot be sized). ``close_old`` False leaves the old side's closes to the caller
    (a FIFO pool closes oldest first, ``planner_fifo``)."""
    spec = st.ctx.specs.get(link.symbol) if link.symbol else None
    if spec is None:
        return None  # not loaded yet: next pass
    sizing = flip_sizing(st, view, mpos, link, spec)
    if sizing is None:
        return None  # cannot size the new side yet: keep the old copy one more pass rather than guess

    def skip_new_side(new: Link, reason: str) -> None:
        skip(st, link.master_name, link.master_ticket, reason, direction=new.direction, master_symbol=link.master_symbol,
             symbol=link.symbol, master_volume=mpos.volume)

    if isinstance(sizing, Skip):
        new = flipped_link(link, mpos, 0.0, 0.0, link.status)
        st.out.append(flip_action(link, new))
        if close_old:
            close_positions(st, link.key, [p for p in positions if p.side != new.direction], FLIPPED, ends_link=False)
        skip_new_side(new, f"{FLIPPED}; new side not copied: {sizing.reason}")
        return new
    ratio, volume, sized = sizing
    new = flipped_link(link, mpos, ratio, 0.0 if isinstance(volume, Skip) else volume, PENDING)
    st.out.append(flip_action(link, new, sized, mpos))
    old_side = [p for p in positions if p.side != new.direction]
    if close_old:
        close_positions(st, link.key, old_side, FLIPPED, ends_link=False)
    if isinstance(volume, Skip):
        skip_new_side(new, f"{FLIPPED}; new side not copied: {volume.reason}")
        return new
    if any(p.side == new.direction for p in positions):
        return new  # a copy of the new side exists already (flipped back and forth): adopt it next pass
    if st.ctx.paused:  # like a new position while paused: never opened late after a resume
        skip_new_side(new, paused_text(st, "when the master flipped"))
        return new
    result = open_for(st, link.master_name, view, mpos, new, "retry")
    if isinstance(result, Skip):
        skip_new_side(new, f"{FLIPPED}; new side not copied: {result.reason}")
    elif result is not None:
        emit_open(st, result)
    return new
