"""Rule 8: pending orders on a hedging slave (and the hedging part of a netting one).

Prices are copied absolutely (same level, slave digits); SL/TP follow ``sltp_mode`` from the
order price; ``reverse`` maps BUY_LIMIT<->SELL_STOP and BUY_STOP<->SELL_LIMIT. When the
master's order fills, the link keeps its key (position identifier == order ticket): a filled
slave copy is adopted as a position link, a still-pending copy is replaced by a market copy if
within slippage, else left working. See docs/copier.md.
"""
from __future__ import annotations

from copier.actions import (
    Adopt,
    MarkClosed,
    ModifyPending,
    Open,
    PlacePending,
    RemovePending,
)
from copier.decisions import Skip
from copier.expiry import Expiry, copy_expiry, same_expiry
from copier.links import FAILED, KIND_ORDER, KIND_POSITION, OPEN, PENDING, Link
from copier.models import PendingOrder, Quote, SymbolSpec
from copier.pending_fills import netting_market_copy
from copier.planner_common import (
    SkipFields,
    emit_open,
    filling,
    market_for,
    open_for,
    paused_text,
    scaled_target,
    size,
    sizing_fields,
    skip,
    trade_mode_refusal,
)
from copier.planner_hedging import position_link
from copier.planner_state import (
    MasterView,
    PlanState,
    fresh_view,
    link_orders,
    link_positions,
    master_has,
)
from copier.sizing import normalize_volume
from copier.sltp import translate_sltp
from copier.tags import make_tag

REVERSED_PENDING = {"BUY_LIMIT": "SELL_STOP", "SELL_LIMIT": "BUY_STOP", "BUY_STOP": "SELL_LIMIT", "SELL_STOP": "BUY_LIMIT"}


def new_order(st: PlanState, name: str, view: MasterView, order: PendingOrder) -> None:
    """A master pending order without a link: adopt our tagged copy, or place one (or say why not)."""
    key = (name, order.ticket)
    tagged = st.ord_by_tag.get(key)
    if tagged:
        o = tagged[0]
        st.claimed_ord.add(o.ticket)
        st.out.append(Adopt(name, order.ticket, o.ticket, o.volume, o.price_open, KIND_ORDER, o.symbol, order.symbol,
                            o.side, order.side, order.volume, make_tag(*key)))
        return
    common: SkipFields = {"kind": KIND_ORDER, "master_symbol": order.symbol, "master_volume": order.volume}
    if view.first_sync and not st.cfg.copy_existing:
        skip(st, name, order.ticket, "pending order existed before follow (copy_existing is off)", **common)
        return
    if st.ctx.paused:
        skip(st, name, order.ticket, paused_text(st, "when the master placed it"), **common)
        return
    result = pending_for(st, name, view, order, None, "new")
    if isinstance(result, Skip):
        skip(st, name, order.ticket, result.reason, **common)
    elif result is not None:
        st.out.append(result)


def pending_for(st: PlanState, name: str, view: MasterView, order: PendingOrder, link: Link | None, purpose: str) -> PlacePending | Skip | None:
    """The ``PlacePending`` that copies ``order`` (None = cannot decide yet, e.g. no quote)."""
    cfg = st.cfg
    market = market_for(st, order.symbol, link)
    if market is None or isinstance(market, Skip):
        return market
    symbol, spec, quote = market
    otype = order.type
    if cfg.reverse:
        if otype not in REVERSED_PENDING:
            return Skip(f"reverse copying of {otype} orders is not supported")
        otype = REVERSED_PENDING[otype]
    side = "BUY" if otype.startswith("BUY") else "SELL"
    refused = trade_mode_refusal(spec, side)
    if refused:
        return refused
    price = round(order.price_open, spec.digits)
    stoplimit = round(order.price_stoplimit, spec.digits) if order.price_stoplimit else 0.0
    if not pending_price_valid(otype, price, quote, spec):
        return Skip(f"{otype} at {price} is on the wrong side of, or within the stops level of, the slave's market "
                    f"(bid {quote.bid}, ask {quote.ask})")
    sl, tp = pending_sltp(st, order, side, price, spec)
    expiry = copy_expiry(order, spec, st.ctx.slave_server_offset_ms, st.ctx.now_ms)
    if expiry is None or isinstance(expiry, Skip):
        return expiry  # None: the slave's server offset is not known yet, wait
    target = scaled_target(link, order.volume, spec, cfg.max_lot) if link is not None else None
    sized = None
    if target:
        volume: float | Skip = target
    else:
        raw = size(st, view, order, spec)
        if raw is None or isinstance(raw, Skip):
            return raw
        sized = raw
        volume = normalize_volume(raw.volume, spec, max_lot=cfg.max_lot)
    if isinstance(volume, Skip):
        if st.netting and link is None:
            return None  # netting: not placed; the master's fill joins the net target as a market copy
        return volume
    ratio = sized.volume / order.volume if sized is not None and order.volume > 0 else 0.0
    return PlacePending(name, order.ticket, symbol, otype, volume, price, stoplimit, sl, tp, filling(spec), cfg.magic,
                        make_tag(name, order.ticket), order.symbol, order.side, order.volume, purpose,
                        **sizing_fields(sized, order), type_time=expiry.type_time, expiration=expiry.expiration,
                        lot_ratio=ratio)


def pending_sltp(st: PlanState, order: PendingOrder, side: str, price: float, spec: SymbolSpec) -> tuple[float, float]:
    """SL/TP of a pending copy, measured from its own price (0, 0 when ``copy_sltp`` is off)."""
    if not st.cfg.copy_sltp:
        return 0.0, 0.0
    # stops are measured from the order's own price, which is where the position will start
    at_price = Quote(bid=price, ask=price)
    return translate_sltp(order, slave_side=side, slave_entry_price=price, slave_spec=spec, quote=at_price,
                          mode=st.cfg.sltp_mode, reverse=st.cfg.reverse)


def pending_price_valid(otype: str, price: float, quote: Quote, spec: SymbolSpec) -> bool:
    """The order price is on the right side of the slave's market, outside its stops level."""
    dist = max(spec.stops_level, 0) * spec.point
    eps = spec.point * 1e-3
    if otype.startswith("BUY_LIMIT"):
        return price <= quote.ask - dist + eps and price < quote.ask
    if otype.startswith("SELL_LIMIT"):
        return price >= quote.bid + dist - eps and price > quote.bid
    if otype.startswith("BUY_STOP"):
        return price >= quote.ask + dist - eps and price > quote.ask
    if otype.startswith("SELL_STOP"):
        return price <= quote.bid - dist + eps and price < quote.bid
    return False


def order_link(st: PlanState, link: Link) -> None:
    """Plan one live order link: adopt its fill, follow the master order's changes, replace or remove it."""
    orders = link_orders(st, link)
    positions = link_positions(st, link)
    view = fresh_view(st, link.master_name)
    if positions:  # the slave's pending copy filled: from now on it is a position link
        p = positions[0]
        st.out.append(Adopt(link.master_name, link.master_ticket, p.identifier, sum(x.volume for x in positions), p.price_open,
                            KIND_POSITION, p.symbol, link.master_symbol, p.side, link.master_side, link.master_volume,
                            link.tag or make_tag(*link.key)))
        if st.netting:
            return  # the netting pass owns positions; it adopts the volume next pass
        position_link(st, Link(**{**link.to_record(), "kind": KIND_POSITION, "status": OPEN, "slave_ticket": p.identifier}))
        return
    if link.status == PENDING and orders:
        o = orders[0]
        st.out.append(Adopt(link.master_name, link.master_ticket, o.ticket, o.volume, o.price_open, KIND_ORDER, o.symbol,
                            link.master_symbol, o.side, link.master_side, link.master_volume, link.tag or make_tag(*link.key)))
    if not orders:
        if link.status == PENDING:
            retry_pending_order(st, link, view)
        else:
            gone = view is not None and not master_has(view, link.master_ticket)
            fate = st.ctx.order_fates.get(link.slave_ticket) if link.slave_ticket else None
            st.out.append(MarkClosed(link.master_name, link.master_ticket, "master order removed" if gone
                                     else fate.describe() if fate is not None else "pending order removed on slave"))
        return
    if view is None:
        return
    o = orders[0]
    morder = view.state.orders.get(link.master_ticket)
    mpos = view.state.positions.get(link.master_ticket)
    if morder is not None:
        sync_pending(st, link, morder, o)
    elif mpos is not None:
        # master filled, our copy did not: replace it by a market copy if still within slippage,
        # else leave it working (it can only fill at the master's price or better for limits)
        if st.ctx.paused:
            return
        if st.netting:  # only the change of the net target is traded (pending_fills)
            result = netting_market_copy(st, link, view, mpos, o.ticket)
        else:
            result = open_for(st, link.master_name, view, mpos, link, "replace", replaces_order=o.ticket)
        if isinstance(result, (Open, Adopt)):
            st.out.append(RemovePending(link.master_name, link.master_ticket, o.ticket, o.symbol,
                                        "master order filled; replacing with a market copy"))
            if isinstance(result, Open):
                emit_open(st, result)
            else:
                st.out.append(result)
    else:
        for x in orders:
            st.out.append(RemovePending(link.master_name, link.master_ticket, x.ticket, x.symbol, "master order removed"))


def retry_pending_order(st: PlanState, link: Link, view: MasterView | None) -> None:
    """A PENDING order link with no copy on the slave: place it again (bounded), or copy the fill."""
    if view is None:
        return
    morder = view.state.orders.get(link.master_ticket)
    mpos = view.state.positions.get(link.master_ticket)
    if morder is None and mpos is None:
        st.out.append(MarkClosed(link.master_name, link.master_ticket, "master order removed before the copy was placed"))
        return
    if st.ctx.paused:
        return
    if link.attempts >= st.ctx.max_attempts:
        skip(st, link.master_name, link.master_ticket, f"gave up after {link.attempts} attempts", kind=KIND_ORDER,
                 status=FAILED, master_symbol=link.master_symbol, symbol=link.symbol, master_volume=link.master_volume)
        return
    result: PlacePending | Open | Adopt | Skip | None = None
    if morder is not None:
        result = pending_for(st, link.master_name, view, morder, link, "retry")
    elif mpos is not None and st.netting:  # the master's order filled meanwhile: its share joins the net target
        result = netting_market_copy(st, link, view, mpos, 0)
    elif mpos is not None:  # the master's order filled meanwhile: copy the position at market
        result = open_for(st, link.master_name, view, mpos, link, "replace")
    if isinstance(result, Skip):
        skip(st, link.master_name, link.master_ticket, result.reason, kind=KIND_ORDER, master_symbol=link.master_symbol,
                 symbol=link.symbol, master_volume=link.master_volume)
    elif isinstance(result, Open):
        emit_open(st, result)
    elif result is not None:
        st.out.append(result)


def sync_pending(st: PlanState, link: Link, morder: PendingOrder, o: PendingOrder) -> None:
    """Modify the copy ``o`` when the master order's price, stops or expiry moved."""
    spec = st.ctx.specs.get(o.symbol)
    if spec is None:
        return
    price = round(morder.price_open, spec.digits)
    stoplimit = round(morder.price_stoplimit, spec.digits) if morder.price_stoplimit else 0.0
    sl, tp = pending_sltp(st, morder, o.side, price, spec)
    expiry = copy_expiry(morder, spec, st.ctx.slave_server_offset_ms, st.ctx.now_ms)
    if not isinstance(expiry, Expiry):  # not expressible now (or offset unknown): keep the copy's own
        expiry = Expiry(o.type_time, 0, o.expiration_ms)
        expiry_changed = False
    else:
        expiry_changed = not same_expiry(expiry, o)
    half = spec.point / 2
    if expiry_changed or any(abs(a - b) > half for a, b in ((price, o.price_open), (stoplimit, o.price_stoplimit), (sl, o.sl), (tp, o.tp))):
        if not expiry_changed and expiry.type_time in ("SPECIFIED", "SPECIFIED_DAY"):
            # a MODIFY request restates the expiry: keep the one the copy has
            expiry = Expiry(expiry.type_time, o.expiration_ms // 1000 - (expiry.type_time == "SPECIFIED_DAY"), o.expiration_ms)
        st.out.append(ModifyPending(link.master_name, link.master_ticket, o.ticket, o.symbol, price, stoplimit, sl, tp,
                                    expiry.type_time, expiry.expiration))
