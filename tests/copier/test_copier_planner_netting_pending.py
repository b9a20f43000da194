"""Pending orders on a NETTING follower (copier/pending_fills.py): mirrored like on a hedging
follower, and a fill joins the net target whatever it did to the net position (add, reduce,
close, reverse)."""
from __future__ import annotations

from dataclasses import replace

from copier.actions import Adopt, Close, MarkClosed, ModifyPending, Open, PlacePending, RemovePending
from copier.links import Link
from copier.models import PendingOrder
from copier.order_fates import (
    ORDER_STATE_CANCELED,
    ORDER_STATE_EXPIRED,
    ORDER_STATE_FILLED,
    OrderFate,
    fate_from_record,
)
from copier.planner import plan
from tests.copier.copier_testkit import MASTER, SLAVE, SlaveModel, cfg, context, mpos, quote, view

TRADES = (Open, Close)


def order(ticket: int, otype: str = "SELL_LIMIT", volume: float = 0.50, price: float = 1.1050, **kw) -> PendingOrder:
    return PendingOrder(ticket=ticket, symbol="EURUSD", type=otype, volume=volume, price_open=price, contract_size=100000, **kw)


def settle(model: SlaveModel, c, masters, **kw) -> None:
    for _ in range(4):
        acts = model.plan(c, masters, **kw)
        if not acts:
            return
        model.apply(acts)
    assert model.plan(c, masters, **kw) == []


def net(model: SlaveModel) -> float:
    return round(sum(p.volume if p.side == "BUY" else -p.volume for p in model.positions.values()), 8)


def trades(acts) -> list:
    return [a for a in acts if isinstance(a, TRADES)]


def test_master_pending_orders_are_placed_modified_and_removed_on_a_netting_follower():
    model, c = SlaveModel(netting=True), cfg()
    settle(model, c, {MASTER: view([], [order(2)])})
    (o,) = model.orders.values()
    assert (o.type, o.volume, o.price_open, o.comment) == ("SELL_LIMIT", 0.5, 1.105, model.links[(MASTER, 2)].tag)
    assert model.links[(MASTER, 2)].lot_ratio == 1.0
    (m,) = model.plan(c, {MASTER: view([], [order(2, price=1.1070)])})
    assert isinstance(m, ModifyPending) and m.price == 1.107
    model.apply([m])
    (r,) = model.plan(c, {MASTER: view([], [])})
    assert isinstance(r, RemovePending) and r.reason == "master order removed"


def test_expiry_of_a_netting_copy_is_the_masters_instant_at_the_followers_clock():
    utc_16h = 1736179200000  # 2025-01-06 16:00 UTC
    ctx = context(cfg(), {MASTER: view([], [order(2, type_time="SPECIFIED", expiration_ms=utc_16h)])}, netting=True)
    (a,) = plan(replace(ctx, slave_server_offset_ms=3 * 3_600_000))
    assert isinstance(a, PlacePending) and a.type_time == "SPECIFIED" and a.expiration == utc_16h // 1000 + 3 * 3600


def test_fill_that_reverses_the_net_position_is_adopted_without_a_correction():
    """BUY 0.30 held; the SELL_LIMIT 0.50 copy fills first (the follower's broker triggered):
    one INOUT deal leaves SELL 0.20 under the same identifier, which IS the net target
    (+0.30 - 0.50). The master's fill and its later close of the BUY are then followed."""
    model, c = SlaveModel(netting=True), cfg()
    buy = mpos(1, volume=0.30)
    masters = {MASTER: view([buy], [order(2)])}
    settle(model, c, masters)
    (p,) = model.positions.values()
    ident = p.identifier
    (t,) = model.orders
    model.fill_order(t)
    (p,) = model.positions.values()
    assert (p.identifier, p.side, p.volume) == (ident, "SELL", 0.2)
    acts = model.plan(c, masters)
    assert trades(acts) == []
    (a,) = [x for x in acts if isinstance(x, Adopt)]
    assert (a.master_ticket, a.kind, a.slave_ticket) == (2, "position", ident)
    model.apply(acts)
    assert model.plan(c, masters) == []
    assert model.links[(MASTER, 2)].kind == "position" and model.links[(MASTER, 2)].status == "OPEN"
    # the master's own order fills: nothing to do
    masters = {MASTER: view([buy, mpos(2, side="SELL", volume=0.50, price=1.1050)])}
    assert model.plan(c, masters) == []
    # the master closes the BUY: the follower sells 0.30 more, to -0.50
    masters = {MASTER: view([mpos(2, side="SELL", volume=0.50, price=1.1050)])}
    at_entry = {"EURUSD.c": quote(1.1050)}
    (o,) = trades(model.plan(c, masters, quotes=at_entry))
    assert isinstance(o, Open) and (o.side, o.volume, o.master_ticket) == ("SELL", 0.3, 2)
    settle(model, c, masters, quotes=at_entry)
    assert net(model) == -0.5
    assert {k: l.status for k, l in model.links.items()} == {(MASTER, 1): "CLOSED", (MASTER, 2): "OPEN"}


def test_fill_that_reduces_or_closes_the_net_position_is_adopted_without_a_correction():
    for held, expected in ((0.50, 0.30), (0.20, 0.0)):
        model, c = SlaveModel(netting=True), cfg()
        masters = {MASTER: view([mpos(1, volume=held)], [order(2, volume=0.20)])}
        settle(model, c, masters)
        (t,) = model.orders
        model.fill_order(t)
        assert net(model) == expected
        acts = model.plan(c, masters)
        assert trades(acts) == [], acts
        assert [(a.master_ticket, a.slave_ticket) for a in acts if isinstance(a, Adopt)] == \
            [(2, next(iter(model.positions.values())).identifier if model.positions else 0)]
        model.apply(acts)
        assert model.plan(c, masters) == []
        assert {k: l.status for k, l in model.links.items()} == {(MASTER, 1): "OPEN", (MASTER, 2): "OPEN"}


def test_fill_on_a_flat_symbol_opens_the_tagged_position_and_is_adopted():
    model, c = SlaveModel(netting=True), cfg()
    masters = {MASTER: view([], [order(2, "BUY_LIMIT", 0.40, 1.0950)])}
    settle(model, c, masters)
    (t,) = model.orders
    model.fill_order(t)
    (p,) = model.positions.values()
    assert p.identifier == t and p.comment == model.links[(MASTER, 2)].tag  # MT5: identifier = the order's ticket
    acts = model.plan(c, masters)
    assert trades(acts) == [] and [(a.kind, a.slave_ticket) for a in acts if isinstance(a, Adopt)] == [("position", t)]
    model.apply(acts)
    assert model.plan(c, masters) == []


def test_an_unknown_fate_holds_the_symbol():
    """The copy vanished and its history is not read yet: no deal on the symbol (a correction
    could undo its fill), no record; a new master position there waits too."""
    model, c = SlaveModel(netting=True), cfg()
    settle(model, c, {MASTER: view([mpos(1, volume=0.50)], [order(2, volume=0.20)])})
    (t,) = model.orders
    model.fill_order(t)  # reduces BUY 0.50 to 0.30: the position keeps #1's tag, nothing shows the fill
    del model.order_fates[t]  # not read yet
    masters = {MASTER: view([mpos(3, volume=0.10, price=1.1050)], [order(2, volume=0.20)])}  # closed #1, opened #3
    assert model.plan(c, masters) == []
    model.order_fates[t] = OrderFate(t, ORDER_STATE_FILLED, next(iter(model.positions)), 0.2, 0.0)
    settle(model, c, masters, quotes={"EURUSD.c": quote(1.1050)})  # (a restore is checked against the order's price)
    assert net(model) == -0.1  # -0.20 (its fill) + 0.10 (#3)


def test_a_copy_cancelled_or_expired_on_the_follower_is_recorded_and_never_replaced():
    for state, words in ((ORDER_STATE_CANCELED, "cancelled"), (ORDER_STATE_EXPIRED, "expired")):
        model, c = SlaveModel(netting=True), cfg()
        masters = {MASTER: view([mpos(1, volume=0.30)], [order(2)])}
        settle(model, c, masters)
        model.cancel_order(next(iter(model.orders)), state)
        acts = model.plan(c, masters)
        assert [(type(a), a.reason) for a in acts] == [(MarkClosed, f"pending order {words} on slave")]
        model.apply(acts)
        assert model.plan(c, masters) == [] and net(model) == 0.3


def test_master_fill_first_replaces_the_copy_with_the_change_of_the_net_target():
    model, c = SlaveModel(netting=True), cfg()
    buy = mpos(1, volume=0.30)
    settle(model, c, {MASTER: view([buy], [order(2)])})
    masters = {MASTER: view([buy, mpos(2, side="SELL", volume=0.50, price=1.1050)])}
    at_entry = {"EURUSD.c": quote(1.1050)}
    acts = model.plan(c, masters, quotes=at_entry)
    (rm,) = [a for a in acts if isinstance(a, RemovePending)]
    (o,) = trades(acts)
    assert isinstance(o, Open) and (o.side, o.volume, o.purpose, o.replaces_order) == ("SELL", 0.5, "replace", rm.slave_order_ticket)
    settle(model, c, masters, quotes=at_entry)
    assert net(model) == -0.2 and model.orders == {}
    # outside slippage the copy is left working, as on a hedging follower
    model, c = SlaveModel(netting=True), cfg()
    settle(model, c, {MASTER: view([buy], [order(2)])})
    assert trades(model.plan(c, masters)) == [] and len(model.orders) == 1


def test_copy_filled_but_the_master_cancels_its_order_the_fill_is_closed():
    model, c = SlaveModel(netting=True), cfg()
    settle(model, c, {MASTER: view([], [order(2, "BUY_LIMIT", 0.10, 1.0950)])})
    model.fill_order(next(iter(model.orders)))
    model.apply(model.plan(c, {MASTER: view([], [order(2, "BUY_LIMIT", 0.10, 1.0950)])}))
    (cl,) = trades(model.plan(c, {MASTER: view([], [])}))
    assert isinstance(cl, Close) and cl.volume == 0.1 and cl.reason == "master closed" and cl.ends_link
    settle(model, c, {MASTER: view([], [])})
    assert model.positions == {} and model.links[(MASTER, 2)].status == "CLOSED"


def test_a_copy_below_the_minimum_is_not_placed_and_its_fill_joins_the_net():
    c = cfg(sizing={"mode": "multiplier", "multiplier": 0.01})
    model = SlaveModel(netting=True)
    orders = [order(2, "BUY_LIMIT", 0.50, 1.0950), order(3, "BUY_LIMIT", 0.50, 1.0950)]
    assert model.plan(c, {MASTER: view([], orders)}) == []  # 0.005 lot each: nothing placed, nothing recorded
    filled = {MASTER: view([mpos(2, volume=0.50, price=1.1001), mpos(3, volume=0.50, price=1.1001)])}
    settle(model, c, filled)
    assert net(model) == 0.01  # 0.005 + 0.005, rounded once


def test_fate_from_a_history_record_and_partial_fills():
    class Row:
        state, position_id, volume_initial, volume_current = ORDER_STATE_CANCELED, 77, 0.5, 0.2

    fate = fate_from_record(9, Row())
    assert fate == OrderFate(9, ORDER_STATE_CANCELED, 77, 0.5, 0.2) and fate.filled  # partly filled, then cancelled
    assert not OrderFate(9, ORDER_STATE_CANCELED, 0, 0.5, 0.5).filled
    assert OrderFate(9, ORDER_STATE_FILLED).filled


def test_hedging_followers_are_unchanged_by_fates():
    link = Link(slave_name=SLAVE, master_name=MASTER, master_ticket=2, kind="order", status="OPEN", symbol="EURUSD.c",
                direction="SELL", master_volume=0.5, slave_volume=0.5, slave_ticket=900)
    acts = plan(context(cfg(), {MASTER: view([], [order(2)])}, [link], [], []))
    assert [(type(a), a.reason) for a in acts] == [(MarkClosed, "pending order removed on slave")]
