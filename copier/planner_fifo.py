"""Position links on a hedging slave whose account closes by FIFO (``ACCOUNT_FIFO_CLOSE``).

Broker rule (MQL5 docs, Account Properties, ACCOUNT_FIFO_CLOSE; NFA Compliance Rule 2-43(b)
for US accounts): "each symbol positions will be closed in the same order in which they
are opened, starting with the oldest one"; closing another one first is refused with
TRADE_RETCODE_FIFO_CLOSE (10045). Only hedging accounts can have the flag.

So on such an account the copies of one slave symbol and side are a *pool*: which
position a close takes is the broker's choice (the oldest), not ours. The rule here:

* **Target.** The pool's target is the sum of its links' targets (each scaled from the
  link's at-open volumes as on any hedging slave; 0 once the master closed or reversed
  it). What the pool holds is the volume of its positions: those of its live links (tag or
  slave ticket) plus copyhub-tagged positions of that symbol and side whose link is
  finished (a copy kept in place of another one, see below).
* **Reduce oldest first.** When the pool holds more than its target, the excess is closed
  from the oldest position of the pool on (partial closes included), whichever link's tag it
  carries. The close is booked to a link that holds more than its target (the one whose
  master closed), so the node's record and backoff follow that link.
* **Re-point.** Once the pool holds its target, links whose master closed are marked
  closed ("master closed"), and the positions left behind for them (B' when A' was
  closed in B's place) are handed to the live links that lack a position: ``Adopt`` sets
  the link's ``slave_ticket`` to that position, so A now tracks B'. A position tagged with
  a finished link but inside a pool with live links is never an orphan: the pool owns it.
* **Closed on slave.** A live link left without any position while the pool holds *less*
  than its target lost its copy on the slave (SL, TP, stop out, by hand): marked
  "closed on slave", never reopened (as on any hedging slave).
* **Stale.** If any link of the pool has a master that is not fresh (or whose master only
  holds the pending order of that ticket), the pool is frozen: no close, no re-point.
* A pool cannot be reduced when the oldest position of the symbol is not its own (a manual
  trade, or a copy on the other side): the close is still sent, the broker refuses it with
  10045, and the node logs it each backoff period until that position is gone.
"""
from __future__ import annotations

from collections.abc import Sequence

from copier.actions import Adopt, Close, MarkClosed, Open
from copier.links import KIND_POSITION, OPEN, PENDING, Link
from copier.models import Position
from copier.planner_common import (
    emit_open,
    filling,
    open_for,
    own_close_reason,
    scaled_target,
    sync_sltp,
)
from copier.planner_flip import FLIPPED, is_flip, plan_hedging_flip
from copier.planner_hedging import retry_pending_link
from copier.planner_state import PlanState, closure_of, fresh_view, link_positions
from copier.reasons import Closure
from copier.sizing import floor_to_step
from copier.tags import make_tag

VOL_EPS = 1e-9


def plan_fifo_links(st: PlanState, links: list[Link]) -> None:
    """Plan every live position link of a FIFO hedging slave, pool by pool."""
    groups: dict[tuple[str, str], list[Link]] = {}
    leavers: dict[tuple[str, str], list[Link]] = {}  # links whose positions on that side are a flip's old side
    held: set[tuple[str, str]] = set()  # pools with a flip not decided yet
    for link in links:
        view = fresh_view(st, link.master_name)
        mpos = view.state.positions.get(link.master_ticket) if view is not None else None
        flipped = False
        if view is not None and mpos is not None and is_flip(link, mpos):  # a netting master reversed: the link follows it
            new = plan_hedging_flip(st, link, view, mpos, link_positions(st, link), close_old=False)
            if new is None:
                held.add((link.symbol, link.direction))  # cannot size the new side yet: touch nothing
                continue
            link, flipped = new, True
        for p in link_positions(st, link):
            if link.direction and p.side != link.direction and link not in leavers.get((p.symbol, p.side), []):
                leavers.setdefault((p.symbol, p.side), []).append(link)  # closed by its old pool, oldest first
        if flipped and link.status != PENDING:
            continue  # the new side was refused (skipped): nothing more for it
        if link.status == PENDING:
            positions = [p for p in link_positions(st, link) if not link.direction or p.side == link.direction]
            if not positions:
                if not flipped:  # (a flip opened the new side above)
                    retry_pending_link(st, link, view)
                continue
            p = positions[0]
            st.out.append(Adopt(link.master_name, link.master_ticket, p.identifier, sum(x.volume for x in positions),
                                p.price_open, KIND_POSITION, p.symbol, link.master_symbol, p.side, link.master_side,
                                link.master_volume, link.tag or make_tag(*link.key)))
        groups.setdefault((link.symbol, link.direction), []).append(link)
    for symbol, side in sorted(set(groups) | set(leavers)):
        if (symbol, side) in held:
            st.claimed_pos.update(p.identifier for ps in st.pos_by_tag.values() for p in ps if p.symbol == symbol and p.side == side)
            continue
        _plan_pool(st, symbol, side, groups.get((symbol, side), []), leavers.get((symbol, side), []))


def _plan_pool(st: PlanState, symbol: str, side: str, members: list[Link], leavers: Sequence[Link] = ()) -> None:
    spec = st.ctx.specs.get(symbol)
    own: dict[tuple[str, int], list[Position]] = {
        lk.key: [p for p in link_positions(st, lk) if p.symbol == symbol and p.side == side] for lk in members}
    owned_ids = {p.identifier for ps in own.values() for p in ps}
    live_keys = {lk.key for lk in members}
    # copies left behind for finished links (or missing rows) on this symbol and side
    unowned = sorted((p for key, ps in st.pos_by_tag.items() if key not in live_keys for p in ps
                      if p.symbol == symbol and p.side == side and p.identifier not in owned_ids),
                     key=lambda p: (p.time_msc, p.identifier))
    pool = sorted([p for ps in own.values() for p in ps] + unowned, key=lambda p: (p.time_msc, p.identifier))
    st.claimed_pos.update(p.identifier for p in pool)  # the pool owns them: never orphans
    if spec is None:
        return
    tol = spec.volume_step / 2 if spec.volume_step > 0 else VOL_EPS
    if any(fresh_view(st, lk.master_name) is None for lk in leavers):
        return  # a flip's old side is closed only on a fresh master state (rule 1)
    # reasons from history: a member whose own position vanished is classified from its deals
    own_closures: dict[tuple[str, int], Closure] = {}
    kept: list[Link] = []
    for link in members:
        if own[link.key] or link.status != OPEN or not link.slave_ticket or link.slave_ticket in st.pos_by_id:
            kept.append(link)
            continue
        closure = closure_of(st, link.slave_ticket)
        if closure is False:
            return  # its deals are not read yet: decide nothing in this pool this pass
        if closure.final:  # SL, TP, stop out, by hand, another program: final, never reopened
            st.out.append(MarkClosed(link.master_name, link.master_ticket, closure.describe(), closure.cause, closure.deal))
            continue
        own_closures[link.key] = closure  # the copier's own close (often A' closed in B's place): re-pointed below
        kept.append(link)
    members = kept

    targets: dict[tuple[str, int], float] = {}
    masters = {}
    frozen = False
    for link in members:
        view = fresh_view(st, link.master_name)
        held = sum(p.volume for p in own[link.key])
        if view is None:
            frozen = True
            continue
        mpos = view.state.positions.get(link.master_ticket)
        if mpos is None and link.master_ticket in view.state.orders:
            frozen = True  # the slave's pending copy filled first: wait for the master
            continue
        if mpos is None or (link.master_side and mpos.side != link.master_side):
            targets[link.key] = 0.0
            continue
        masters[link.key] = (view, mpos)
        target = scaled_target(link, mpos.volume, spec, st.cfg.max_lot)
        targets[link.key] = held if target is None else target
    if frozen:
        return
    held_total = sum(p.volume for p in pool)
    desired = sum(targets.values())
    closing: dict[int, float] = {}

    if held_total - desired > tol:  # reduce, oldest position first (the broker's order)
        ends_link = True
        if leavers:  # a flip's old side: booked to the flipped link, which lives on (new side)
            debtor, why, ends_link = leavers[0], FLIPPED, False
        elif members:
            debtor = max(members, key=lambda lk: (sum(p.volume for p in own[lk.key]) - targets[lk.key], -lk.master_ticket))
            why = "master closed" if targets[debtor.key] == 0 and debtor.key not in masters else "master partial close"
        else:
            return
        reason = f"{why} (FIFO account: oldest position first)"
        excess = held_total - desired
        for p in pool:
            if excess <= tol:
                break
            take = min(p.volume, floor_to_step(excess + tol, spec.volume_step))
            left = p.volume - take
            if 0 < left < spec.volume_min - VOL_EPS:
                take = p.volume
            if take < spec.volume_min - VOL_EPS:
                break  # less than one minimum lot over: kept
            closing[p.identifier] = take
            excess -= take
            st.out.append(Close(debtor.master_name, debtor.master_ticket, p.ticket, p.symbol, p.side, take, p.volume, reason,
                                filling(spec), st.cfg.slippage_tolerance, st.cfg.magic, make_tag(*debtor.key),
                                ends_link=ends_link))
    else:
        # the pool holds its target (or less): bookkeeping, then re-point left-behind copies
        for link in members:
            if targets[link.key] == 0.0 and link.key not in masters:
                gone = own_closures.get(link.key)
                st.out.append(MarkClosed(link.master_name, link.master_ticket, "master closed",
                                         gone.cause if gone else "", gone.deal if gone else 0))
                unowned.extend(own[link.key])
                own[link.key] = []
        unowned.sort(key=lambda p: (p.time_msc, p.identifier))
        short = desired - held_total > tol
        for link in members:
            if link.key not in masters or own[link.key]:
                continue
            if unowned:
                p = unowned.pop(0)
                own[link.key] = [p]
                st.out.append(Adopt(link.master_name, link.master_ticket, p.identifier, p.volume, p.price_open, KIND_POSITION,
                                    p.symbol, link.master_symbol, p.side, link.master_side, link.master_volume,
                                    link.tag or make_tag(*link.key)))
            elif short:
                gone = own_closures.get(link.key)
                if gone is not None:  # the copier closed it itself and nothing is left to re-point: recorded, not reopened
                    st.out.append(MarkClosed(link.master_name, link.master_ticket,
                                             own_close_reason(st, link, masters[link.key][0], gone), gone.cause, gone.deal))
                else:  # a seed-era row without a slave ticket: nothing to read
                    st.out.append(MarkClosed(link.master_name, link.master_ticket, "closed on slave"))
                masters.pop(link.key)
        if short and not st.ctx.paused:  # a master add (netting master grew) tops its copy up
            room = desired - held_total
            for link in members:
                if link.key not in masters or room <= tol:
                    continue
                view, mpos = masters[link.key]
                if mpos.volume <= link.master_volume + VOL_EPS:
                    continue
                add = floor_to_step(min(targets[link.key] - sum(p.volume for p in own[link.key]), room) + tol, spec.volume_step)
                if add >= spec.volume_min - VOL_EPS:
                    result = open_for(st, link.master_name, view, mpos, link, "add", volume=add)
                    if isinstance(result, Open):
                        emit_open(st, result)
                        room -= add
    if st.cfg.copy_sltp:
        for link in members:
            if link.key not in masters:
                continue
            _, mpos = masters[link.key]
            for p in own[link.key]:
                if closing.get(p.identifier, 0.0) < p.volume - VOL_EPS:
                    sync_sltp(st, link, mpos, p, spec)
