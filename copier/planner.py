"""The reconcile planner: desired (fresh master states + links) vs actual (slave terminal)
-> a list of actions. Pure and idempotent: planning again after the actions were applied
yields no trade action (see docs/copier.md for the rules, numbered as in the tests).

The node must call ``plan`` only with a SUCCESSFUL read of the slave's positions and
orders (``positions_get() is None`` means "unknown", never "flat").

The planner is plain functions over one pass's state (``planner_state.PlanState``), in
layers that import only downwards, never in a circle:

* ``planner_state``: ``PlanContext``, ``MasterView``, ``PlanState`` and read-only lookups;
* ``planner_common``: sizing, pricing and the small writers every rule uses;
* ``planner_flip``, ``planner_hedging``, ``planner_netting``, ``planner_fifo``,
  ``pending_fills``, ``planner_pending``: the rules (flips, hedging position links, netting
  symbols, FIFO pools, pending copies on netting followers, pending orders);
* this module: the pass itself (``plan``), new master positions and orphans.
"""
from __future__ import annotations

from copier.actions import Action, Adopt, Open, RemovePending, sort_actions
from copier.decisions import Skip
from copier.links import KIND_ORDER, KIND_POSITION, TERMINAL, Link
from copier.models import Position
from copier.pending_fills import split_netting_links
from copier.planner_common import SkipFields, close_positions, emit_open, open_for, paused_text, skip
from copier.planner_fifo import plan_fifo_links
from copier.planner_flip import FLIPPED
from copier.planner_hedging import position_link
from copier.planner_netting import new_netting_copy, plan_netting_links
from copier.planner_pending import new_order, order_link
from copier.planner_state import (
    MasterView,
    PlanContext,
    PlanState,
    fresh_view,
    link_orders,
    link_positions,
    master_has,
)
from copier.tags import make_tag

__all__ = ["MasterView", "PlanContext", "plan"]


def plan(ctx: PlanContext) -> list[Action]:
    """All actions for one reconcile pass, in execution order (``actions.sort_actions``).

    ``ctx`` is not changed; each call works on a fresh ``PlanState``."""
    return sort_actions(run(PlanState(ctx)))


def run(st: PlanState) -> list[Action]:
    """Every rule once, in order: live links (hedging, FIFO pools or the netting pass, and
    pending orders), new master positions and orders, orphans. The actions, unsorted."""
    live = sorted((lk for lk in st.links.values() if lk.live), key=lambda lk: lk.key)
    if st.netting:
        position_links, order_links, st.net_hold = split_netting_links(st, live)
        plan_netting_links(st, position_links)
        for link in order_links:
            order_link(st, link)
    else:
        fifo_links: list[Link] = []
        focus = st.ctx.focus_links
        for link in live:
            if link.kind == KIND_ORDER:
                order_link(st, link)
            elif st.ctx.slave_fifo_close:
                fifo_links.append(link)
            elif focus is None or link.key in focus:
                position_link(st, link)
        if fifo_links:
            plan_fifo_links(st, fifo_links)
    for link in live:
        for p in link_positions(st, link):
            st.claimed_pos.add(p.identifier)
        for o in link_orders(st, link):
            st.claimed_ord.add(o.ticket)
    for name in sorted(st.ctx.masters):
        view = st.ctx.masters[name]
        if not view.fresh or not st.cfg.follows_master(name):
            continue  # rule 1: only fresh, followed masters start anything
        for ticket in sorted(view.state.positions):
            if (name, ticket) not in st.links:
                new_position(st, name, view, view.state.positions[ticket])
        if st.cfg.copy_pending:
            for ticket in sorted(view.state.orders):
                if (name, ticket) not in st.links and ticket not in view.state.positions:
                    new_order(st, name, view, view.state.orders[ticket])
    orphans(st)
    return st.out


def new_position(st: PlanState, name: str, view: MasterView, mpos: Position) -> None:
    """A master position without a link (rules 2, 3): adopt our tagged copy, open one, or say why not."""
    key = (name, mpos.identifier)
    tagged = st.pos_by_tag.get(key)
    if tagged:  # our copy exists but its row is missing (store lost/reset): adopt, never re-open
        p = tagged[0]
        st.claimed_pos.update(x.identifier for x in tagged)
        st.out.append(Adopt(name, mpos.identifier, p.identifier, sum(x.volume for x in tagged), p.price_open,
                            KIND_POSITION, p.symbol, mpos.symbol, p.side, mpos.side, mpos.volume, make_tag(*key)))
        return
    common: SkipFields = {"kind": KIND_POSITION, "master_symbol": mpos.symbol, "master_volume": mpos.volume}
    if view.first_sync and not st.cfg.copy_existing:
        skip(st, name, mpos.identifier, "existed before follow (copy_existing is off)", **common)
        return
    if st.ctx.paused:
        skip(st, name, mpos.identifier, paused_text(st, "when the master opened it"), **common)
        return
    if st.netting:
        result: Open | Adopt | Skip | None = new_netting_copy(st, name, view, mpos)
    else:
        result = open_for(st, name, view, mpos, None, "new")
    if isinstance(result, Adopt):  # netting: counted in the net target, no deal needed now
        st.out.append(result)
        st.open_count += 1
    elif isinstance(result, Skip):
        skip(st, name, mpos.identifier, result.reason, **common)
    elif result is not None:
        emit_open(st, result)
        st.open_count += 1


def orphans(st: PlanState) -> None:
    """Tagged slave positions/orders no live link claims: close them once their master is
    fresh and lacks the ticket. Untagged positions are never touched (rule 9)."""
    for key, positions in sorted(st.pos_by_tag.items()):
        rest = [p for p in positions if p.identifier not in st.claimed_pos]
        view = fresh_view(st, key[0])
        if rest and view is not None and not master_has(view, key[1]):
            link = st.links.get(key)
            if link is None or link.status in TERMINAL:
                close_positions(st, key, rest, "orphan copy: master position gone")
        elif rest and view is not None and not st.netting:
            link = st.links.get(key)  # a flip's old side left behind by a link that ended since
            if link is not None and link.status in TERMINAL and link.direction and key[1] in view.state.positions:
                close_positions(st, key, [p for p in rest if p.side != link.direction], FLIPPED)
    for key, orders in sorted(st.ord_by_tag.items()):
        left = [o for o in orders if o.ticket not in st.claimed_ord]
        view = fresh_view(st, key[0])
        if left and view is not None and not master_has(view, key[1]):
            for o in left:
                st.out.append(RemovePending(key[0], key[1], o.ticket, o.symbol, "orphan copy: master order gone"))
