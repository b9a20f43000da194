"""Fault 6 (issue 9): a hedging follower whose account closes by FIFO (ACCOUNT_FIFO_CLOSE).

The broker closes a symbol's positions oldest first and refuses any other close with
10045; the planner closes the oldest copies and re-points the links (copier/planner_fifo.py)."""
from dataclasses import replace

from copier_testkit import MASTER, SLAVE, SlaveModel, cfg, closure, context, mpos, view

from copier.actions import Adopt, Close, MarkClosed, Open
from copier.links import Link
from copier.models import Position
from copier.planner import plan
from copier.tags import make_tag

A, B = 11, 12


def link(ticket, slave_ticket, volume=0.10, master_volume=None, **kw):
    base = dict(slave_name=SLAVE, master_name=MASTER, master_ticket=ticket, kind="position", status="OPEN",
                slave_ticket=slave_ticket, symbol="EURUSD.c", master_symbol="EURUSD", direction="BUY",
                master_direction="BUY", master_volume=master_volume or volume, slave_volume=volume, attempts=1,
                tag=make_tag(MASTER, ticket))
    base.update(kw)
    return Link(**base)


def spos(ident, ticket_of, volume=0.10, t=1, side="BUY", sl=0.0, comment=None):
    return Position(ticket=ident, identifier=ident, symbol="EURUSD.c", side=side, volume=volume, price_open=1.1001,
                    sl=sl, comment=make_tag(MASTER, ticket_of) if comment is None else comment, time_msc=t)


def model(a_vol=0.10, b_vol=0.10, fifo=True):
    return SlaveModel(fifo=fifo, links=[link(A, 901, a_vol), link(B, 902, b_vol)],
                      positions=[spos(901, A, a_vol, t=1), spos(902, B, b_vol, t=2)])


def settle(m, masters, passes=5):
    for _ in range(passes):
        actions = m.plan(cfg(), masters)
        if not actions:
            return
        m.apply(actions)
    raise AssertionError(f"did not settle: {actions}")


def held(m):
    return round(sum(p.volume for p in m.positions.values()), 8)


def test_fault6_master_closes_b_the_follower_closes_its_oldest_copy_and_keeps_0_10():
    m = model()
    masters = {MASTER: view([mpos(A, volume=0.10)])}  # master held A then B, closed B
    actions = m.plan(cfg(), masters)
    (c,) = actions
    assert isinstance(c, Close) and c.slave_ticket == 901 and c.volume == 0.10  # A', the oldest, not B'
    assert c.master_ticket == B and "FIFO" in c.reason
    m.apply(actions)
    assert m.refused == [] and held(m) == 0.10
    actions = m.plan(cfg(), masters)
    assert {type(a) for a in actions} == {MarkClosed, Adopt}
    (mc,) = [a for a in actions if isinstance(a, MarkClosed)]
    (ad,) = [a for a in actions if isinstance(a, Adopt)]
    assert (mc.master_ticket, mc.reason) == (B, "master closed")
    assert (ad.master_ticket, ad.slave_ticket) == (A, 902)  # A now tracks B'
    m.apply(actions)
    assert m.plan(cfg(), masters) == []
    assert held(m) == 0.10 and m.links[(MASTER, A)].status == "OPEN" and m.links[(MASTER, A)].slave_ticket == 902
    assert m.links[(MASTER, B)].status == "CLOSED"
    # the master then closes A: the copy it now tracks (B') goes
    settle(m, {MASTER: view([])})
    assert m.positions == {} and m.links[(MASTER, A)].status == "CLOSED" and m.refused == []


def test_without_fifo_the_copy_of_b_itself_is_closed():
    m = model(fifo=False)
    (c,) = m.plan(cfg(), {MASTER: view([mpos(A, volume=0.10)])})
    assert isinstance(c, Close) and c.slave_ticket == 902 and c.master_ticket == B


def test_the_old_per_link_close_is_refused_on_a_fifo_account():
    # what the follower did before: close B' -> 10045 on every retry, 0.20 kept
    m = model(fifo=True)
    m.apply([Close(MASTER, B, 902, "EURUSD.c", "BUY", 0.10, 0.10, "master closed")])
    assert len(m.refused) == 1 and held(m) == 0.20


def test_fifo_partial_close_takes_the_oldest_copy_first():
    m = model(0.20, 0.20)
    masters = {MASTER: view([mpos(A, volume=0.20), mpos(B, volume=0.10)])}  # B partially closed 0.20 -> 0.10
    (c,) = m.plan(cfg(), masters)
    assert (c.slave_ticket, c.volume, c.position_volume, c.partial) == (901, 0.10, 0.20, True)
    m.apply([c])
    assert held(m) == 0.30 and m.plan(cfg(), masters) == []  # the pool holds its target 0.30
    settle(m, {MASTER: view([mpos(B, volume=0.10)])})  # now A closes: 0.30 -> 0.10
    assert m.refused == [] and held(m) == 0.10
    (left,) = m.positions.values()
    assert left.identifier == 902 and m.links[(MASTER, A)].status == "CLOSED" and m.links[(MASTER, B)].status == "OPEN"


def test_three_copies_two_closes_leave_the_newest_tracked_by_the_survivor():
    C = 13
    m = SlaveModel(fifo=True, links=[link(A, 901), link(B, 902), link(C, 903)],
                   positions=[spos(901, A, t=1), spos(902, B, t=2), spos(903, C, t=3)])
    settle(m, {MASTER: view([mpos(A, volume=0.10)])})  # B and C closed on the master
    assert m.refused == [] and held(m) == 0.10 and set(m.positions) == {903}
    assert m.links[(MASTER, A)].slave_ticket == 903 and m.links[(MASTER, A)].status == "OPEN"
    assert m.links[(MASTER, B)].status == m.links[(MASTER, C)].status == "CLOSED"


def test_sltp_follows_the_link_after_re_pointing():
    m = SlaveModel(fifo=True, links=[link(A, 901), link(B, 902)],
                   positions=[spos(901, A, t=1, sl=1.09), spos(902, B, t=2, sl=1.08)])
    masters = {MASTER: view([mpos(A, volume=0.10, sl=1.09)])}
    settle(m, masters)
    (left,) = m.positions.values()
    assert left.identifier == 902 and left.sl == 1.09  # B' now carries A's stop


def test_a_copy_closed_on_the_slave_is_not_reopened_and_not_replaced():
    m = model()
    m.close_on_slave(901)  # A' hit its SL on the slave; the master still holds A and B
    masters = {MASTER: view([mpos(A, volume=0.10), mpos(B, volume=0.10)])}
    (mc,) = m.plan(cfg(), masters)
    assert isinstance(mc, MarkClosed) and (mc.master_ticket, mc.reason, mc.cause) == (A, "closed by SL on slave", "sl")


def test_a_stale_master_freezes_the_pool():
    m = model()
    assert m.plan(cfg(), {MASTER: view([mpos(A, volume=0.10)], fresh=False)}) == []


def test_a_left_behind_copy_is_not_an_orphan():
    # B is CLOSED already and A tracks nothing yet: B' belongs to the pool, it is re-pointed, never closed
    links = [link(A, 901), link(B, 902, status="CLOSED")]
    ctx = context(cfg(), {MASTER: view([mpos(A, volume=0.10)])}, links, [spos(902, B, t=2)], fifo=True)
    assert plan(ctx) == []  # A' is gone and its deals are not read yet: the pool waits
    actions = plan(replace(ctx, closures={901: closure(901, "own")}))  # the copier closed A' (in B's place)
    assert [type(a) for a in actions] == [Adopt] and actions[0].slave_ticket == 902


def test_master_add_tops_up_the_pool():
    m = model()
    masters = {MASTER: view([mpos(A, volume=0.20), mpos(B, volume=0.10)])}  # netting master added 0.10 to A
    (o,) = m.plan(cfg(), masters)
    assert isinstance(o, Open) and o.purpose == "add" and o.volume == 0.10 and o.master_ticket == A


# ---------------------------------------------------------------- flips and reasons from history in a pool
def sides(m):
    return sorted((p.side, p.volume, p.comment) for p in m.positions.values())


def test_a_flip_on_a_fifo_follower_follows_the_master_to_its_new_side():
    """Netting master: BUY 0.10 -> one SELL 0.20 deal -> SELL 0.10, same identifier. The FIFO
    follower closes its BUY copy and opens SELL 0.10 for the same link (not just a close)."""
    m = SlaveModel(fifo=True, links=[link(A, 901)], positions=[spos(901, A, t=1)])
    masters = {MASTER: view([mpos(A, side="SELL", volume=0.10)])}
    actions = m.plan(cfg(), masters)
    (fl,) = [a for a in actions if type(a).__name__ == "Flip"]
    (c,) = [a for a in actions if isinstance(a, Close)]
    (o,) = [a for a in actions if isinstance(a, Open)]
    assert (fl.direction, fl.status) == ("SELL", "PENDING")
    assert (c.slave_ticket, c.master_ticket, c.ends_link) == (901, A, False) and c.reason.startswith("master flipped")
    assert (o.side, o.volume, o.master_ticket, o.purpose) == ("SELL", 0.1, A, "retry")
    settle(m, masters)
    assert m.refused == [] and sides(m) == [("SELL", 0.1, make_tag(MASTER, A))]
    assert (m.links[(MASTER, A)].status, m.links[(MASTER, A)].direction) == ("OPEN", "SELL")


def test_a_flip_behind_an_older_copy_closes_the_oldest_and_re_points():
    """A' (oldest) and F' are BUY copies; F's master flips to SELL. The broker only lets the
    oldest BUY go: A' is closed (booked to F, which lives on), F' is re-pointed to A, and F
    is opened on the SELL side."""
    F = 13
    m = SlaveModel(fifo=True, links=[link(A, 901), link(F, 903)], positions=[spos(901, A, t=1), spos(903, F, t=2)])
    masters = {MASTER: view([mpos(A, volume=0.10), mpos(F, side="SELL", volume=0.10)])}
    actions = m.plan(cfg(), masters)
    (c,) = [a for a in actions if isinstance(a, Close)]
    assert (c.slave_ticket, c.master_ticket, c.ends_link) == (901, F, False) and "FIFO" in c.reason
    settle(m, masters)
    assert m.refused == []
    assert sides(m) == [("BUY", 0.1, make_tag(MASTER, F)), ("SELL", 0.1, make_tag(MASTER, F))]
    a, f = m.links[(MASTER, A)], m.links[(MASTER, F)]
    assert (a.status, a.slave_ticket) == ("OPEN", 903)  # A now tracks F'
    assert (f.status, f.direction) == ("OPEN", "SELL")
    # the master then closes A: F' goes, the SELL stays
    masters = {MASTER: view([mpos(F, side="SELL", volume=0.10)])}
    settle(m, masters)
    assert sides(m) == [("SELL", 0.1, make_tag(MASTER, F))] and m.links[(MASTER, A)].status == "CLOSED"


def test_a_pool_records_a_slave_side_close_with_its_cause_and_never_reopens():
    from copier.reasons import DEAL_REASON_CLIENT, DEAL_REASON_TP

    for reason, text, cause in ((DEAL_REASON_TP, "closed by TP on slave", "tp"),
                                (DEAL_REASON_CLIENT, "closed by hand on slave", "manual")):
        m = model()
        m.close_on_slave(902, reason=reason, comment="")
        masters = {MASTER: view([mpos(A, volume=0.10), mpos(B, volume=0.10)])}
        (mc,) = m.plan(cfg(), masters)
        assert (mc.master_ticket, mc.reason, mc.cause) == (B, text, cause)
        settle(m, masters)
        assert held(m) == 0.10 and m.links[(MASTER, B)].status == "CLOSED" and m.links[(MASTER, A)].status == "OPEN"


def test_a_pool_own_close_is_re_pointed_or_recorded_never_reopened():
    # the copier closed A' itself (its reply lost) and nothing is left to re-point: recorded as the copier's
    m = SlaveModel(fifo=True, links=[link(A, 901)], positions=[spos(901, A, t=1)])
    m.close_on_slave(901, reason=3, magic=234000, comment=make_tag(MASTER, A))  # DEAL_REASON_EXPERT, our magic and tag
    masters = {MASTER: view([mpos(A, volume=0.10)])}
    (mc,) = m.plan(cfg(), masters)
    assert mc.cause == "own" and mc.reason.startswith("closed by copyhub (deal #")
    m.apply([mc])
    assert m.plan(cfg(), masters) == []  # not reopened
    # a vanished copy whose deals are not read yet: the pool waits
    m = model()
    del m.positions[901]
    assert m.plan(cfg(), {MASTER: view([mpos(A, volume=0.10), mpos(B, volume=0.10)])}, closures={}) == []
