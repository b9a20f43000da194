"""Pending orders on a NETTING follower: mirrored like on a hedging follower, and a fill joins
the symbol's net target.

A netting account holds one position per symbol, so a pending order that fills there does
not open a position of its own: it adds to the position of its side, or reduces, closes or
reverses the position of the other side (one deal: IN, OUT or INOUT; the position keeps
its identifier; MQL5 "Position accounting"; reference mt5-python-api.md §Netting). Only
when the symbol was flat does the fill open a new position (identifier = the order's
ticket, comment = the order's). So the fill of a copy cannot be found by its tag; the
follower reads what became of a vanished copy in its order history
(``history_orders_get(ticket=)``: ``ORDER_STATE_FILLED`` / ``_CANCELED`` / ``_EXPIRED`` /
``_REJECTED``; ``copier/order_fates.py``), and the planner gets it as ``PlanContext.order_fates``.

The rule (docs/copier.md, *Pending orders on netting followers*):

* placing, modifying, removing and expiry are those of a hedging follower
  (``planner_pending``, ``expiry``); the copy is sized on its own (as a new copy);
* a copy that **filled** (its tagged position, or its history says FILLED, partly filled
  included) turns its link into a position link (``Adopt``, ``kind`` position,
  ``slave_ticket`` = the net position or 0 when the fill left the symbol flat) in the same
  pass, and its share joins the net target: ``lot_ratio`` × the master's position volume,
  or × the master's *order* volume while the master's own order has not filled yet (the
  follower's broker triggered first). Whatever the fill did to the net (add, reduce, close,
  reverse), the planner's view is the signed sum of the shares, so a fill that reverses a
  position is no correction to make: the net already equals the target;
* a copy that vanished and whose history is not read yet holds its symbol: no deal on
  that symbol this pass (a correction could undo the fill);
* a copy cancelled, expired or rejected on the follower: "pending order removed on slave"
  (never re-placed), as on a hedging follower;
* the master's order filled while the copy still waits: within slippage the copy is
  removed and the master position copied at market as a *new netting copy* (only the change
  of the rounded net target, ``planner_netting.new_netting_copy``), else left working;
* a copy whose volume would be below the symbol's minimum is not placed: the master's fill
  then joins the net like any market copy (a netting target adds shares before rounding).
"""
from __future__ import annotations

from dataclasses import replace

from copier.actions import Adopt, Open
from copier.decisions import Skip
from copier.links import KIND_ORDER, KIND_POSITION, OPEN, Link
from copier.models import Position
from copier.planner_netting import new_netting_copy
from copier.planner_state import MasterView, PlanState, link_orders
from copier.tags import make_tag


def split_netting_links(st: PlanState, live: list[Link]) -> tuple[list[Link], list[Link], set[str]]:
    """(position links, including order links whose copy filled, now position links;
    order links whose copy still waits or went away unfilled; symbols held this pass).

    Emits the ``Adopt`` that turns a filled copy's link into a position link and updates
    the planner's link table, so the net pass counts its share in this very pass.
    """
    positions: list[Link] = []
    orders: list[Link] = []
    hold: set[str] = set()
    for link in live:
        if link.kind != KIND_ORDER:
            positions.append(link)
            continue
        filled = _copy_filled(st, link)
        if filled is None:
            hold.add(link.symbol)  # vanished, history not read yet: touch nothing on the symbol
            continue
        if not filled:
            orders.append(link)
            continue
        net = _filled_into(st, link)
        ticket = net.identifier if net is not None else 0
        st.out.append(Adopt(link.master_name, link.master_ticket, ticket, link.slave_volume,
                            net.price_open if net is not None else 0.0, KIND_POSITION, link.symbol, link.master_symbol,
                            link.direction, link.master_side, link.master_volume, link.tag or make_tag(*link.key)))
        converted = replace(link, kind=KIND_POSITION, status=OPEN, slave_ticket=ticket)
        st.links[link.key] = converted
        positions.append(converted)
    return positions, orders, hold


def _filled_into(st: PlanState, link: Link) -> Position | None:
    """The position a filled copy's volume lives in (None: the fill left the symbol flat)."""
    tagged = st.pos_by_tag.get(link.key)
    if tagged:
        return tagged[0]
    if link.slave_ticket in st.pos_by_id:
        return st.pos_by_id[link.slave_ticket]
    fate = st.ctx.order_fates.get(link.slave_ticket)
    return st.pos_by_id.get(fate.position_id) if fate is not None else None


def _copy_filled(st: PlanState, link: Link) -> bool | None:
    """True: the link's copy filled; False: it waits (or never was placed, or went unfilled);
    None: it vanished and its history is not known yet."""
    if st.pos_by_tag.get(link.key) or (link.slave_ticket and link.slave_ticket in st.pos_by_id):
        return True  # the symbol was flat: the fill opened a position (identifier = order ticket, our tag)
    if link_orders(st, link) or link.status != OPEN or not link.slave_ticket:
        return False
    fate = st.ctx.order_fates.get(link.slave_ticket)
    if fate is None:
        return None
    return fate.filled


def netting_market_copy(st: PlanState, link: Link, view: MasterView, mpos: Position,
                        replaces_order: int) -> Open | Adopt | Skip | None:
    """The master's order filled and the copy did not: the market copy that replaces it on a
    netting follower trades only the change it makes to the net target (an ``Open`` with
    purpose "replace"), or registers it without a deal (``Adopt``); Skip / None as
    ``new_netting_copy``."""
    result = new_netting_copy(st, link.master_name, view, mpos)
    if isinstance(result, Open):
        return replace(result, purpose="replace", replaces_order=replaces_order)
    return result
