"""The planner with reasons from history: a vanished copy is closed for the reason its deals
give (never reopened while its master position lives), except the copier's own closes."""
import pytest
from copier_testkit import MASTER, SLAVE, SlaveModel, cfg, closure, context, mpos, view

from copier.actions import Close, MarkClosed, Open, Rebind
from copier.links import Link
from copier.models import Position
from copier.planner import plan
from copier.reasons import (
    DEAL_REASON_CLIENT,
    DEAL_REASON_EXPERT,
    DEAL_REASON_MOBILE,
    DEAL_REASON_SL,
    DEAL_REASON_SO,
    DEAL_REASON_TP,
    DEAL_REASON_WEB,
)
from copier.tags import make_tag

M2 = "Other_Master"
TRADE = (Open, Close)

# (deal reason, magic of the closing deal, expected close_reason, cause)
SLAVE_SIDE = [
    (DEAL_REASON_SL, 234000, "closed by SL on slave", "sl"),
    (DEAL_REASON_TP, 234000, "closed by TP on slave", "tp"),
    (DEAL_REASON_SO, 234000, "stopped out on slave", "so"),
    (DEAL_REASON_CLIENT, 234000, "closed by hand on slave", "manual"),
    (DEAL_REASON_MOBILE, 234000, "closed by hand on slave (mobile)", "manual"),
    (DEAL_REASON_WEB, 234000, "closed by hand on slave (web)", "manual"),
    (DEAL_REASON_EXPERT, 4242, "closed on slave by another expert or script (magic 4242)", "manual"),
]


def settle(model, c, masters, passes=3):
    for _ in range(passes):
        model.apply(model.plan(c, masters))


@pytest.mark.parametrize("netting", [False, True], ids=["hedging", "netting"])
@pytest.mark.parametrize("reason, magic, text, cause", SLAVE_SIDE, ids=[s[3] + str(s[0]) for s in SLAVE_SIDE])
def test_a_slave_side_close_is_recorded_and_never_reopened(netting, reason, magic, text, cause):
    model = SlaveModel(netting=netting)
    c = cfg(slippage_tolerance=300)
    masters = {MASTER: view([mpos(1, volume=0.10)])}
    settle(model, c, masters)
    (p,) = model.positions.values()
    model.close_on_slave(p.identifier, reason=reason, magic=magic, comment="[sl]" if reason == DEAL_REASON_SL else "")
    acts = model.plan(c, masters)
    assert [type(a) for a in acts] == [MarkClosed]
    assert (acts[0].reason, acts[0].cause) == (text, cause) and acts[0].deal > 0
    model.apply(acts)
    for _ in range(3):  # the master still holds its position: nothing is ever opened again
        acts = model.plan(c, masters)
        assert not [a for a in acts if isinstance(a, TRADE)], acts
        model.apply(acts)
    assert model.positions == {} and model.links[(MASTER, 1)].status == "CLOSED"


def test_netting_sl_closes_every_copy_sharing_the_position():
    model = SlaveModel(netting=True)
    c = cfg(slippage_tolerance=300)
    masters = {MASTER: view([mpos(1, volume=0.5)]), M2: view([mpos(2, volume=0.3)], name=M2)}
    settle(model, c, masters)
    (p,) = model.positions.values()
    assert p.volume == 0.8
    model.close_on_slave(p.identifier)
    acts = model.plan(c, masters)
    assert sorted((a.master_name, a.reason) for a in acts) == [(MASTER, "closed by SL on slave"), (M2, "closed by SL on slave")]
    model.apply(acts)
    assert model.plan(c, masters) == []


def test_netting_share_netted_away_by_own_deals_is_restored():
    """Own netting effect: FTMO BUY 1.0, Other SELL 1.0 -> flat; FTMO closes -> SELL 1.0 restored."""
    model = SlaveModel(netting=True)
    c = cfg(slippage_tolerance=300)
    masters = {MASTER: view([mpos(1, volume=1.0)])}
    settle(model, c, masters)
    masters[M2] = view([mpos(2, side="SELL", volume=1.0, price=1.1)], name=M2)
    settle(model, c, masters)
    assert model.positions == {}  # the SELL copy's deal closed the BUY copy's position: our own close
    masters[MASTER] = view([])
    acts = model.plan(c, masters)
    (o,) = [a for a in acts if isinstance(a, Open)]
    assert (o.master_name, o.purpose, o.side, o.volume) == (M2, "restore", "SELL", 1.0)
    model.apply(acts)
    # the restored share now lives in a new position: the link follows it (Rebind) ...
    acts = model.plan(c, masters)
    (p,) = model.positions.values()
    assert Rebind(M2, 2, p.identifier) in acts
    model.apply(acts)
    model.apply(model.plan(c, masters))
    assert model.plan(c, masters) == []
    # ... so when that position is stopped out, the copy is closed, not restored again
    model.close_on_slave(p.identifier)
    acts = model.plan(c, masters)
    assert [(type(a), a.reason) for a in acts] == [(MarkClosed, "closed by SL on slave")]


def test_netting_wait_while_a_vanished_positions_deals_are_unknown():
    model = SlaveModel(netting=True)
    c = cfg(slippage_tolerance=300)
    masters = {MASTER: view([mpos(1, volume=0.10)])}
    settle(model, c, masters)
    (p,) = model.positions.values()
    model.close_on_slave(p.identifier)
    assert model.plan(c, masters, closures={}) == []  # the node has not read them (or the read failed)


def test_hedging_lost_reply_on_own_below_minimum_close_is_recorded_as_own():
    """Fault 11 of issue 9: the copier closed a below-minimum remainder; the reply was lost."""
    link = Link(slave_name=SLAVE, master_name=MASTER, master_ticket=1, status="OPEN", slave_ticket=501, symbol="EURUSD.c",
                master_symbol="EURUSD", direction="BUY", master_volume=1.0, slave_volume=0.01, tag=make_tag(MASTER, 1))
    masters = {MASTER: view([mpos(1, volume=0.5)])}
    held = Position(ticket=501, identifier=501, symbol="EURUSD.c", side="BUY", volume=0.01, price_open=1.1001,
                    comment=make_tag(MASTER, 1))
    (c,) = plan(context(masters=masters, links=[link], slave_positions=[held]))
    assert c.reason == "master partial close (copy below minimum: closed)" and c.volume == 0.01
    # the close went through, the node never saw the reply: next pass the position is gone
    (m,) = plan(context(masters=masters, links=[link], closures={501: closure(501, "own", deal=77)}))
    assert (m.reason, m.cause, m.deal) == ("closed by copyhub: master partial close (copy below minimum: closed)", "own", 77)
    # own close that no master state explains
    big = masters | {MASTER: view([mpos(1, volume=1.0)])}
    (m,) = plan(context(masters=big, links=[link], closures={501: closure(501, "own", deal=77)}))
    assert m.reason == "closed by copyhub (deal #77)"
    # a stale master: the planner still records the slave-side fact
    (m,) = plan(context(masters={MASTER: view([mpos(1, volume=0.5)], fresh=False)}, links=[link],
                        closures={501: closure(501, "own", deal=77)}))
    assert m.reason == "closed by copyhub (deal #77)"


def test_hedging_unknown_history_is_final():
    link = Link(slave_name=SLAVE, master_name=MASTER, master_ticket=1, status="OPEN", slave_ticket=501, symbol="EURUSD.c",
                master_symbol="EURUSD", direction="BUY", master_volume=1.0, slave_volume=1.0)
    (m,) = plan(context(masters={MASTER: view([mpos(1)])}, links=[link], closures={501: closure(501, "unknown")}))
    assert m.reason == "closed on slave (no closing deal in its history)"
