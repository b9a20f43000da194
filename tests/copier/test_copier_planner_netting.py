"""Rule 5 on a netting slave: one position per symbol, desired net vs actual net."""
from copier_testkit import MASTER, SLAVE, SlaveModel, cfg, closure, context, mpos, view

from copier.actions import Adopt, Close, MarkClosed, Open, RecordSkip
from copier.links import Link
from copier.models import Position
from copier.planner import plan
from copier.tags import make_tag

M2 = "Other_Master"


def link(ticket, master=MASTER, direction="BUY", status="OPEN", mv=1.0, sv=1.0, attempts=1, slave_ticket=700) -> Link:
    return Link(slave_name=SLAVE, master_name=master, master_ticket=ticket, status=status, slave_ticket=slave_ticket,
                symbol="EURUSD.c", master_symbol="EURUSD", direction=direction, master_direction=direction,
                master_volume=mv, slave_volume=sv, attempts=attempts, tag=make_tag(master, ticket))


def net(volume, side="BUY", comment=None, ident=700) -> Position:
    return Position(ticket=ident, identifier=ident, symbol="EURUSD.c", side=side, volume=volume, price_open=1.1001,
                    comment=make_tag(MASTER, 1) if comment is None else comment)


def ctx(masters, links, positions, **kw):
    return context(cfg(**kw.pop("cfg", {})), masters, links, positions, netting=True, **kw)


def test_two_masters_share_one_net_position_and_settle():
    masters = {MASTER: view([mpos(1, volume=1.0)]), M2: view([mpos(2, side="SELL", volume=0.3, price=1.1)], name=M2)}
    links = [link(1), link(2, master=M2, direction="SELL", mv=0.3, sv=0.3)]
    assert plan(ctx(masters, links, [net(0.7)])) == []


def test_one_master_closing_reduces_the_net_by_its_share():
    masters = {MASTER: view([mpos(1, volume=1.0)]), M2: view([], name=M2)}
    links = [link(1), link(2, master=M2, mv=0.5, sv=0.5)]
    (c,) = plan(ctx(masters, links, [net(1.5)]))
    assert isinstance(c, Close) and c.volume == 0.5 and c.master_name == M2 and c.slave_ticket == 700


def test_stale_co_owner_freezes_the_symbol():
    links = [link(1), link(2, master=M2, mv=0.5, sv=0.5)]
    # M2 stale and its mirror lost the position: nothing at all on this symbol
    masters = {MASTER: view([mpos(1, volume=0.4)]), M2: view([], fresh=False, name=M2)}
    assert plan(ctx(masters, links, [net(1.5)])) == []
    # M2 unknown: frozen too
    assert plan(ctx({MASTER: view([mpos(1, volume=0.4)])}, links, [net(1.5)])) == []
    # M2 stale even though its last mirror holds the position: still frozen
    masters = {MASTER: view([mpos(1, volume=0.4)]), M2: view([mpos(2, volume=0.5)], fresh=False, name=M2)}
    assert plan(ctx(masters, links, [net(1.5)])) == []
    # both fresh again: MASTER's partial close goes through
    masters = {MASTER: view([mpos(1, volume=0.4)]), M2: view([mpos(2, volume=0.5)], name=M2)}
    (c,) = plan(ctx(masters, links, [net(1.5)]))
    assert isinstance(c, Close) and c.volume == 0.6


def test_pending_link_is_adopted_when_the_net_already_holds_it():
    masters = {MASTER: view([mpos(1, volume=1.0)]), M2: view([mpos(2, volume=0.5)], name=M2)}
    links = [link(1), link(2, master=M2, status="PENDING", mv=0.5, sv=0.5, slave_ticket=0)]
    (a,) = plan(ctx(masters, links, [net(1.5)]))
    assert isinstance(a, Adopt) and a.master_name == M2 and a.slave_ticket == 700 and a.volume == 0.5


def test_pending_link_missing_from_the_net_is_retried_then_failed():
    masters = {MASTER: view([mpos(1, volume=1.0)]), M2: view([mpos(2, volume=0.5)], name=M2)}
    links = [link(1), link(2, master=M2, status="PENDING", mv=0.5, sv=0.5, slave_ticket=0)]
    (o,) = plan(ctx(masters, links, [net(1.0)]))
    assert isinstance(o, Open) and o.purpose == "retry" and o.volume == 0.5 and o.master_name == M2
    links[1] = link(2, master=M2, status="PENDING", mv=0.5, sv=0.5, slave_ticket=0, attempts=3)
    (s,) = plan(ctx(masters, links, [net(1.0)]))
    assert isinstance(s, RecordSkip) and s.status == "FAILED"


def test_flat_slave_restores_only_own_closes_near_the_master_entry():
    own = {700: closure(700, "own", deal=5)}
    # netted away by our own deal while the price is still at the entry: restored
    (o,) = plan(ctx({MASTER: view([mpos(1, price=1.1001)])}, [link(1)], [], closures=own))
    assert isinstance(o, Open) and o.purpose == "restore" and o.volume == 1.0
    # netted away, but the market has left the entry: no late entry
    (m,) = plan(ctx({MASTER: view([mpos(1, price=1.0950)])}, [link(1)], [], closures=own))
    assert isinstance(m, MarkClosed) and m.reason.startswith("netted away on slave; not re-opened (slippage")
    # stopped by its SL, even right at the entry price: closed for good (fault 3 of issue 9)
    (m,) = plan(ctx({MASTER: view([mpos(1, price=1.1001)])}, [link(1)], [], closures={700: closure(700, "sl", deal=5)}))
    assert isinstance(m, MarkClosed) and (m.reason, m.cause, m.deal) == ("closed by SL on slave", "sl", 5)
    # its deals not read yet: nothing at all on the symbol
    assert plan(ctx({MASTER: view([mpos(1, price=1.1001)])}, [link(1)], [])) == []


def test_offsetting_copies_flat_is_consistent():
    masters = {MASTER: view([mpos(1, volume=1.0)]), M2: view([mpos(2, side="SELL", volume=1.0, price=1.1)], name=M2)}
    links = [link(1), link(2, master=M2, direction="SELL")]
    netted = {700: closure(700, "own", deal=5)}  # the second copy's deal closed the first's position
    assert plan(ctx(masters, links, [], closures=netted)) == []
    # one side closes on its master: the other side's share appears on the slave
    masters[MASTER] = view([])
    acts = plan(ctx(masters, links, [], closures=netted))
    assert [(type(a).__name__, a.master_name) for a in acts] == [("Open", M2)] and acts[0].side == "SELL"


def test_master_add_grows_the_net():
    masters = {MASTER: view([mpos(1, volume=1.5, price_current=1.1001)])}
    (o,) = plan(ctx(masters, [link(1)], [net(1.0)]))
    assert isinstance(o, Open) and o.purpose == "add" and o.volume == 0.5 and o.side == "BUY"


def test_net_direction_change_closes_then_opens():
    masters = {MASTER: view([]), M2: view([mpos(2, side="SELL", volume=0.3, price=1.1, price_current=1.1)], name=M2)}
    links = [link(1, mv=0.5, sv=0.5), link(2, master=M2, direction="SELL", mv=0.3, sv=0.3)]
    acts = plan(ctx(masters, links, [net(0.2)]))
    assert [type(a).__name__ for a in acts] == ["Close", "Open"]
    assert acts[0].volume == 0.2 and (acts[1].side, acts[1].volume) == ("SELL", 0.3)


def test_manual_net_position_is_left_alone_and_not_traded_into():
    manual = net(2.0, comment="hand trade", ident=999)
    (s,) = plan(ctx({MASTER: view([mpos(1)])}, [], [manual]))
    assert isinstance(s, RecordSkip) and "does not own" in s.reason
    acts = plan(ctx({MASTER: view([mpos(1)])}, [link(1)], [manual], closures={700: closure(700, "own")}))
    assert [type(a).__name__ for a in acts] == ["MarkClosed"]


def test_pending_orders_are_mirrored_on_netting_slaves_unless_copy_pending_is_off():
    from copier.actions import PlacePending
    from copier.models import PendingOrder

    order = PendingOrder(ticket=5, symbol="EURUSD", type="BUY_LIMIT", volume=1.0, price_open=1.09, contract_size=100000)
    (a,) = plan(ctx({MASTER: view([], [order])}, [], []))
    assert isinstance(a, PlacePending) and (a.symbol, a.order_type, a.volume, a.price) == ("EURUSD.c", "BUY_LIMIT", 1.0, 1.09)
    assert plan(ctx({MASTER: view([], [order])}, [], [], cfg={"copy_pending": False})) == []


def test_model_round_trip_two_masters():
    model = SlaveModel(netting=True)
    c = cfg()
    masters = {MASTER: view([mpos(1, volume=1.0)]), M2: view([mpos(2, side="SELL", volume=0.4, price=1.1)], name=M2)}
    for _ in range(3):
        model.apply(model.plan(c, masters))
    (p,) = model.positions.values()
    assert (p.side, p.volume) == ("BUY", 0.6)
    masters = {MASTER: view([]), M2: view([mpos(2, side="SELL", volume=0.4, price=1.1, price_current=1.1)], name=M2)}
    model.apply(model.plan(c, masters))
    (p,) = model.positions.values()
    assert (p.side, p.volume) == ("SELL", 0.4)
    model.apply(model.plan(c, masters))
    assert model.plan(c, masters) == []
    assert {k: l.status for k, l in model.links.items()} == {(MASTER, 1): "CLOSED", (M2, 2): "OPEN"}


def test_paused_netting_reduces_but_never_grows():
    masters = {MASTER: view([mpos(1, volume=0.5)])}
    (c,) = plan(ctx(masters, [link(1)], [net(1.0)], paused=True))
    assert isinstance(c, Close) and c.volume == 0.5
    masters = {MASTER: view([mpos(1, volume=1.5, price_current=1.1001)])}
    assert plan(ctx(masters, [link(1)], [net(1.0)], paused=True)) == []


def test_offsetting_pending_copies_on_a_flat_slave_are_adopted():
    masters = {MASTER: view([mpos(1, volume=1.0)]), M2: view([mpos(2, side="SELL", volume=1.0, price=1.1)], name=M2)}
    links = [link(1, status="PENDING", slave_ticket=0), link(2, master=M2, direction="SELL", status="PENDING", slave_ticket=0)]
    acts = plan(ctx(masters, links, []))
    assert [type(a).__name__ for a in acts] == ["Adopt", "Adopt"] and all(a.slave_ticket == 0 for a in acts)


def test_restore_outside_slippage_keeps_a_partly_held_share():
    # manual partial close on the slave while the price moved away: accept the shortfall, keep managing
    masters = {MASTER: view([mpos(1, volume=1.0, price=1.0950)])}
    assert plan(ctx(masters, [link(1)], [net(0.6)])) == []
    (c,) = plan(ctx({MASTER: view([])}, [link(1)], [net(0.6)]))
    assert isinstance(c, Close) and c.volume == 0.6


def test_all_stale_masters_never_trade_a_netting_symbol():
    masters = {MASTER: view([mpos(1, volume=0.5)], fresh=False)}
    assert plan(ctx(masters, [link(1)], [net(1.0)])) == []


def test_new_copies_still_open_on_a_frozen_symbol():
    masters = {MASTER: view([mpos(1), mpos(3, volume=0.2)]), M2: view([], fresh=False, name=M2)}
    links = [link(1), link(2, master=M2, mv=0.5, sv=0.5)]
    (o,) = plan(ctx(masters, links, [net(1.5)]))
    assert isinstance(o, Open) and o.master_ticket == 3 and o.purpose == "new"


def reduced(ticket, to, **kw) -> Link:
    from dataclasses import replace
    return replace(link(ticket, **kw), reduced_to=to)


def test_a_partial_close_names_the_master_position_that_shrank_now_not_one_that_shrank_before():
    # the master's position #1 went 1.0 -> 0.5 earlier and that reduction was booked
    # (reduced_to 0.5); now its position #2 goes 1.0 -> 0.6: the deal follows #2, not #1
    masters = {MASTER: view([mpos(1, volume=0.5), mpos(2, volume=0.6)])}
    links = [reduced(1, 0.5), link(2)]
    (c,) = plan(ctx(masters, links, [net(1.5)]))
    assert isinstance(c, Close) and c.partial and round(c.volume, 2) == 0.4
    assert (c.master_name, c.master_ticket) == (MASTER, 2) and c.master_volume_now == 0.6
    assert c.reason == "net target reduced (master partial close to 0.6)" and not c.ends_link
    # before the first reduction was booked both qualify: the bigger drop is named
    links = [link(2, master=M2), link(1)]
    masters = {M2: view([mpos(2, volume=0.9)], name=M2), MASTER: view([mpos(1, volume=0.6)])}
    (c,) = plan(ctx(masters, links, [net(2.0)]))
    assert (c.master_name, c.master_ticket, c.master_volume_now) == (MASTER, 1, 0.6)


def test_a_reduction_no_master_made_does_not_claim_a_master_partial_close():
    # the net holds more than the copies want though no master position shrank (an extra
    # 0.2 left over): booked to a copy, but the reason says no master reduced anything
    masters = {MASTER: view([mpos(1, volume=1.0)])}
    (c,) = plan(ctx(masters, [link(1)], [net(1.2)]))
    assert isinstance(c, Close) and c.master_volume_now == 0.0
    assert "no master position was reduced" in c.reason and "master partial close" not in c.reason
