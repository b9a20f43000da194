"""Position links on a hedging slave (rules 4-6): each link owns its own positions.

A PENDING link whose copy exists is adopted, one without a copy is retried (rule 4); a copy
whose master closed or reversed is closed (rule 6); otherwise its volume follows the
master's proportionally (partial closes, adds) and its SL/TP follow the master's (rule 5).
A copy that went away on the slave is classified from its deals (``PlanContext.closures``).
FIFO accounts pool their links instead (``planner_fifo``); netting slaves net them
(``planner_netting``).
"""
from __future__ import annotations

from copier.actions import Adopt, Close, MarkClosed, Open
from copier.decisions import Skip
from copier.links import FAILED, KIND_POSITION, PENDING, Link
from copier.models import Position
from copier.planner_common import (
    close_positions,
    emit_open,
    filling,
    open_for,
    own_close_reason,
    scaled_target,
    skip,
    sync_sltp,
)
from copier.planner_flip import FLIPPED, is_flip, plan_hedging_flip
from copier.planner_state import (
    MasterView,
    PlanState,
    closure_for,
    fresh_view,
    link_positions,
    master_has,
)
from copier.sizing import floor_to_step
from copier.tags import make_tag

VOL_EPS = 1e-9


def position_link(st: PlanState, link: Link) -> None:
    """Plan one live position link on a hedging slave (rules 4-6; a flip: ``planner_flip``)."""
    positions = link_positions(st, link)
    view = fresh_view(st, link.master_name)
    mpos_now = view.state.positions.get(link.master_ticket) if view is not None else None
    if view is not None and mpos_now is not None and is_flip(link, mpos_now):  # netting master reversed, same identifier
        plan_hedging_flip(st, link, view, mpos_now, positions)
        return
    if link.direction and any(p.side != link.direction for p in positions):
        old_side = [p for p in positions if p.side != link.direction]  # an earlier flip's old side
        positions = [p for p in positions if p.side == link.direction]
        if view is not None:
            close_positions(st, link.key, old_side, FLIPPED, ends_link=False)
    if link.status == PENDING:
        if positions:  # rule 4: the intent executed (we crashed or timed out): adopt
            p = positions[0]
            st.out.append(Adopt(link.master_name, link.master_ticket, p.identifier, sum(x.volume for x in positions),
                                p.price_open, KIND_POSITION, p.symbol, link.master_symbol, p.side, link.master_side,
                                link.master_volume, link.tag or make_tag(*link.key)))
        else:
            retry_pending_link(st, link, view)
            return
    if not positions:  # reasons from history: why did the copy go away?
        closure = closure_for(st, link)
        if closure is False:
            return  # its deals are not read yet: decide nothing about it this pass
        gone = view is not None and not master_has(view, link.master_ticket)
        if closure is None:
            reason = "master closed" if gone else "closed on slave"
        elif closure.own:
            reason = own_close_reason(st, link, view, closure)
        else:
            reason = closure.describe()  # SL/TP/SO/by hand: final, never reopened
        st.out.append(MarkClosed(link.master_name, link.master_ticket, reason,
                                 closure.cause if closure else "", closure.deal if closure else 0))
        return
    if view is None:
        return  # rule 1
    mpos = view.state.positions.get(link.master_ticket)
    if mpos is None:
        if link.master_ticket in view.state.orders:
            return  # slave's pending copy filled before the master's: wait for the master
        close_positions(st, link.key, positions, "master closed")  # rule 6
        return
    if link.master_side and mpos.side != link.master_side:
        close_positions(st, link.key, positions, "master reversed (netting master)")
        return
    manage_volume(st, link, view, mpos, positions)


def retry_pending_link(st: PlanState, link: Link, view: MasterView | None) -> None:
    """A PENDING position link with no copy on the slave: open it again (bounded by
    ``max_attempts``), or close the link when its master position is gone or reversed."""
    if view is None:
        return  # rule 1: no retry on stale state
    mpos = view.state.positions.get(link.master_ticket)
    if mpos is None:
        if link.master_ticket not in view.state.orders:
            st.out.append(MarkClosed(link.master_name, link.master_ticket, "master closed before the copy was made"))
        return
    if link.master_side and mpos.side != link.master_side:
        st.out.append(MarkClosed(link.master_name, link.master_ticket, "master reversed before the copy was made"))
        return
    if st.ctx.paused:
        return
    if link.attempts >= st.ctx.max_attempts:
        skip(st, link.master_name, link.master_ticket, f"gave up after {link.attempts} attempts", status=FAILED,
                 master_symbol=link.master_symbol, symbol=link.symbol, direction=link.direction, master_volume=link.master_volume)
        return
    result = open_for(st, link.master_name, view, mpos, link, "retry")
    if isinstance(result, Skip):
        skip(st, link.master_name, link.master_ticket, result.reason, master_symbol=link.master_symbol,
                 symbol=link.symbol, direction=link.direction, master_volume=link.master_volume)
    elif result is not None:
        emit_open(st, result)


def manage_volume(st: PlanState, link: Link, view: MasterView, mpos: Position, positions: list[Position]) -> None:
    """Rule 5: proportional partial closes, adds on master volume increase, SL/TP sync."""
    spec = st.ctx.specs.get(positions[0].symbol)
    if spec is None:
        return
    actual = sum(p.volume for p in positions)
    target = scaled_target(link, mpos.volume, spec, st.cfg.max_lot)
    tol = spec.volume_step / 2 if spec.volume_step > 0 else VOL_EPS
    closing: dict[int, float] = {}
    if target is not None and actual - target > tol:
        reason = "master partial close" if target > 0 else "master partial close (copy below minimum: closed)"
        excess = actual - target
        for p in sorted(positions, key=lambda p: (p.time_msc, p.identifier), reverse=True):  # newest first
            if excess <= tol:
                break
            take = p.volume if target == 0 else min(p.volume, floor_to_step(excess + tol, spec.volume_step))
            left = p.volume - take
            if 0 < left < spec.volume_min - VOL_EPS or take < spec.volume_min - VOL_EPS:
                take = p.volume
            if take <= VOL_EPS:
                break
            closing[p.identifier] = take
            excess -= take
            st.out.append(Close(link.master_name, link.master_ticket, p.ticket, p.symbol, p.side, take, p.volume, reason,
                                filling(spec), st.cfg.slippage_tolerance, st.cfg.magic, make_tag(*link.key)))
    elif (target is not None and target - actual > tol and mpos.volume > link.master_volume + VOL_EPS
          and not st.ctx.paused):
        add = floor_to_step(target - actual + tol, spec.volume_step)
        if add >= spec.volume_min - VOL_EPS:
            result = open_for(st, link.master_name, view, mpos, link, "add", volume=add)
            if isinstance(result, Open):
                emit_open(st, result)
    if st.cfg.copy_sltp:
        for p in positions:
            if closing.get(p.identifier, 0.0) >= p.volume - VOL_EPS:
                continue
            sync_sltp(st, link, mpos, p, spec)
