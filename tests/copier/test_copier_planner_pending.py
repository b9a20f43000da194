"""Rule 8: pending orders on a hedging slave."""
from dataclasses import replace

from copier_testkit import MASTER, SLAVE, SlaveModel, cfg, context, mpos, view

from copier.actions import Adopt, MarkClosed, ModifyPending, Open, PlacePending, RecordSkip, RemovePending
from copier.links import Link
from copier.models import PendingOrder, Position
from copier.planner import plan
from copier.tags import make_tag

TAG = make_tag(MASTER, 5)
MO = PendingOrder(ticket=5, symbol="EURUSD", type="BUY_LIMIT", volume=0.5, price_open=1.09001, sl=1.08, tp=1.1, contract_size=100000)


def olink(status="OPEN", **kw) -> Link:
    base = dict(slave_name=SLAVE, master_name=MASTER, master_ticket=5, kind="order", status=status, slave_ticket=601,
                symbol="EURUSD.c", master_symbol="EURUSD", direction="BUY", master_direction="BUY", master_volume=0.5,
                slave_volume=0.5, attempts=1, tag=TAG)
    base.update(kw)
    return Link(**base)


def sorder(ticket=601, **kw) -> PendingOrder:
    base = dict(ticket=ticket, symbol="EURUSD.c", type="BUY_LIMIT", volume=0.5, price_open=1.09001, sl=1.08, tp=1.1, comment=TAG)
    base.update(kw)
    return PendingOrder(**base)


def types(actions):
    return [type(a).__name__ for a in actions]


def test_new_master_order_is_placed():
    (p,) = plan(context(masters={MASTER: view([], [MO])}))
    assert isinstance(p, PlacePending)
    assert (p.symbol, p.order_type, p.volume, p.price, p.sl, p.tp, p.comment) == ("EURUSD.c", "BUY_LIMIT", 0.5, 1.09001, 1.08, 1.1, TAG)


def test_reverse_maps_order_types_and_refuses_stop_limits():
    (p,) = plan(context(cfg(reverse=True), masters={MASTER: view([], [MO])}))
    assert (p.order_type, p.sl, p.tp) == ("SELL_STOP", 1.1, 1.08)
    sl_order = replace(MO, type="BUY_STOP_LIMIT", price_open=1.11, price_stoplimit=1.105)
    (s,) = plan(context(cfg(reverse=True), masters={MASTER: view([], [sl_order])}))
    assert isinstance(s, RecordSkip) and "not supported" in s.reason and s.kind == "order"


def test_first_sync_pause_and_copy_pending_off():
    (s,) = plan(context(masters={MASTER: view([], [MO], first_sync=True)}))
    assert isinstance(s, RecordSkip) and s.kind == "order" and "existed before follow" in s.reason
    (s,) = plan(context(masters={MASTER: view([], [MO])}, paused=True))
    assert isinstance(s, RecordSkip) and "paused" in s.reason
    assert plan(context(cfg(copy_pending=False), masters={MASTER: view([], [MO])})) == []


def test_price_on_wrong_side_of_slave_market_is_skipped():
    (s,) = plan(context(masters={MASTER: view([], [replace(MO, price_open=1.2)])}))  # buy limit above the ask
    assert isinstance(s, RecordSkip) and "wrong side" in s.reason


def test_modified_master_order_modifies_the_copy():
    (m,) = plan(context(masters={MASTER: view([], [replace(MO, price_open=1.08501, sl=1.075)])}, links=[olink()],
                        slave_orders=[sorder()]))
    assert isinstance(m, ModifyPending) and (m.slave_order_ticket, m.price, m.sl, m.tp) == (601, 1.08501, 1.075, 1.1)
    assert plan(context(masters={MASTER: view([], [MO])}, links=[olink()], slave_orders=[sorder()])) == []


def test_removed_on_fresh_master_removes_copy_but_not_on_stale():
    (r,) = plan(context(masters={MASTER: view([])}, links=[olink()], slave_orders=[sorder()]))
    assert isinstance(r, RemovePending) and r.slave_order_ticket == 601
    assert plan(context(masters={MASTER: view([], fresh=False)}, links=[olink()], slave_orders=[sorder()])) == []


def test_both_filled_link_becomes_a_position_link():
    filled = mpos(5, volume=0.5, price=1.09001)
    spos = Position(ticket=601, identifier=601, symbol="EURUSD.c", side="BUY", volume=0.5, price_open=1.09001, sl=1.08, tp=1.1,
                    comment=TAG)
    acts = plan(context(masters={MASTER: view([replace(filled, sl=1.08, tp=1.1)])}, links=[olink()], slave_positions=[spos]))
    assert types(acts) == ["Adopt"] and acts[0].kind == "position" and acts[0].slave_ticket == 601


def test_master_filled_slave_still_pending_is_replaced_at_market():
    filled = mpos(5, volume=0.5, price=1.1000)
    acts = plan(context(masters={MASTER: view([filled])}, links=[olink()], slave_orders=[sorder()]))
    assert types(acts) == ["RemovePending", "Open"]
    assert acts[1].replaces_order == 601 and acts[1].purpose == "replace" and acts[1].comment == TAG and acts[1].volume == 0.5


def test_master_filled_out_of_slippage_leaves_the_copy_working():
    filled = mpos(5, volume=0.5, price=1.0900)  # far from the slave's ask 1.1001
    assert plan(context(masters={MASTER: view([filled])}, links=[olink()], slave_orders=[sorder()])) == []


def test_copy_cancelled_on_slave_is_not_replaced():
    (m,) = plan(context(masters={MASTER: view([], [MO])}, links=[olink()], slave_orders=[]))
    assert isinstance(m, MarkClosed) and "removed on slave" in m.reason


def test_pending_order_intent_is_adopted_or_retried():
    (a,) = plan(context(masters={MASTER: view([], [MO])}, links=[olink(status="PENDING", slave_ticket=0)], slave_orders=[sorder()]))
    assert isinstance(a, Adopt) and a.kind == "order" and a.slave_ticket == 601
    (p,) = plan(context(masters={MASTER: view([], [MO])}, links=[olink(status="PENDING", slave_ticket=0)]))
    assert isinstance(p, PlacePending) and p.purpose == "retry"
    (s,) = plan(context(masters={MASTER: view([], [MO])}, links=[olink(status="PENDING", slave_ticket=0, attempts=3)]))
    assert isinstance(s, RecordSkip) and s.status == "FAILED"
    # master filled while our placement was unknown: copy at market
    (o,) = plan(context(masters={MASTER: view([mpos(5, volume=0.5)])}, links=[olink(status="PENDING", slave_ticket=0)]))
    assert isinstance(o, Open) and o.purpose == "replace"


def test_skipped_order_fill_is_never_copied():
    link = olink(status="SKIPPED", slave_ticket=0)
    assert plan(context(masters={MASTER: view([mpos(5)])}, links=[link])) == []


def test_orphan_tagged_order_is_removed_when_master_fresh_lacks_it():
    (r,) = plan(context(masters={MASTER: view([])}, slave_orders=[sorder()]))
    assert isinstance(r, RemovePending) and "orphan" in r.reason


def test_model_lifecycle_place_fill_replace_close():
    model = SlaveModel()
    c = cfg()
    model.apply(model.plan(c, {MASTER: view([], [MO])}))
    assert list(model.orders) and model.links[(MASTER, 5)].status == "OPEN"
    assert model.plan(c, {MASTER: view([], [MO])}) == []
    filled = {MASTER: view([mpos(5, volume=0.5, price=1.1000, sl=1.08, tp=1.1)])}
    model.apply(model.plan(c, filled))
    assert not model.orders and len(model.positions) == 1
    assert model.links[(MASTER, 5)].kind == "position" and model.links[(MASTER, 5)].status == "OPEN"
    assert model.plan(c, filled) == []
    model.apply(model.plan(c, {MASTER: view([])}))
    assert not model.positions
    model.apply(model.plan(c, {MASTER: view([])}))
    assert model.links[(MASTER, 5)].status == "CLOSED" and model.plan(c, {MASTER: view([])}) == []
