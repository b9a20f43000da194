"""A copy closed by the risk guardian is recorded as the guardian's (cause ``risk``), final
like a close by hand, never as "closed by another expert or script (magic 234000)"; and a
copy not made while the guardian pauses the account says so (``risk: ...``)."""
from dataclasses import replace

import pytest
from copier_testkit import MASTER, SlaveModel, cfg, context, mpos, view

from copier.actions import Close, MarkClosed, Open, RecordSkip
from copier.models import PendingOrder
from copier.planner import plan
from copier.reasons import (
    CAUSES,
    DEAL_ENTRY_IN,
    DEAL_ENTRY_OUT,
    DEAL_REASON_EXPERT,
    DEAL_TYPE_BUY,
    DEAL_TYPE_SELL,
    MANUAL,
    OWN,
    RISK,
    DealRecord,
    classify_closure,
    risk_close_comment,
)
from copier.tags import make_tag

MAGIC = 234000
POS = 701
TAG = make_tag("FTMO_Master", 12345678)


def _deals(close_comment, *, magic=MAGIC):
    return [DealRecord(1, POS, DEAL_ENTRY_IN, DEAL_REASON_EXPERT, 3.0, DEAL_TYPE_BUY, MAGIC, TAG, time_msc=1000),
            DealRecord(2, POS, DEAL_ENTRY_OUT, DEAL_REASON_EXPERT, 3.0, DEAL_TYPE_SELL, magic, close_comment,
                       time_msc=2000)]


def test_the_guardians_comments():
    assert risk_close_comment("flatten") == "copyhub risk flatten"
    assert risk_close_comment("locked") == "copyhub risk locked"
    assert all(len(risk_close_comment(w)) <= 27 for w in ("flatten", "locked"))  # every MT5 build accepts it
    assert RISK == "risk" and RISK in CAUSES


def test_a_close_with_the_guardians_comment_and_magic_is_the_guardians():
    c = classify_closure(_deals("copyhub risk flatten"), position_id=POS, magic=MAGIC,
                         risk_notes={POS: "flatten (daily_loss 98.9%)"})
    assert (c.cause, c.final, c.own, c.deal) == (RISK, True, False, 2)
    assert c.describe() == "closed by the guardian: flatten (daily_loss 98.9%)"
    # a node restarted since: the comment says why, the lock says which rule
    c = classify_closure(_deals("copyhub risk locked"), position_id=POS, magic=MAGIC, risk_context="daily_loss 98.9%")
    assert c.describe() == "closed by the guardian: locked (daily_loss 98.9%)"
    # no lock any more (the next day): what the comment says
    c = classify_closure(_deals("copyhub risk flatten"), position_id=POS, magic=MAGIC)
    assert (c.cause, c.describe()) == (RISK, "closed by the guardian: flatten")
    # a deal written by an older copyhub ("copyhub risk close")
    c = classify_closure(_deals("copyhub risk close"), position_id=POS, magic=MAGIC, risk_context="daily_loss 96.1%")
    assert (c.cause, c.describe()) == (RISK, "closed by the guardian: daily_loss 96.1%")


def test_a_comment_the_broker_rewrote_is_the_guardians_when_the_running_guardian_closed_it():
    notes = {POS: "flatten (overall_loss 95.4%)"}
    c = classify_closure(_deals("[risk]"), position_id=POS, magic=MAGIC, risk_notes=notes)
    assert (c.cause, c.describe()) == (RISK, "closed by the guardian: flatten (overall_loss 95.4%)")
    # without the guardian's word it stays what the deal alone says: another program
    assert classify_closure(_deals("[risk]"), position_id=POS, magic=MAGIC).cause == MANUAL


def test_other_programs_and_the_copiers_own_closes_are_not_the_guardians():
    notes = {POS: "flatten (daily_loss 98.9%)"}
    # another EA writing the guardian's comment with its own magic
    assert classify_closure(_deals("copyhub risk flatten", magic=4242), position_id=POS, magic=MAGIC,
                            risk_notes=notes).cause == MANUAL
    # the copier's own close (its tag): OWN, restorable, whatever the notes say
    assert classify_closure(_deals(TAG), position_id=POS, magic=MAGIC, risk_notes=notes).cause == OWN


@pytest.mark.parametrize("netting", [False, True], ids=["hedging", "netting"])
def test_a_guardian_close_ends_the_link_for_good(netting):
    model = SlaveModel(netting=netting)
    c = cfg(slippage_tolerance=300)
    masters = {MASTER: view([mpos(1, volume=0.10)])}
    for _ in range(3):
        model.apply(model.plan(c, masters))
    (p,) = model.positions.values()
    model.close_on_slave(p.identifier, reason=DEAL_REASON_EXPERT, magic=c.magic, comment="copyhub risk flatten")
    acts = model.plan(c, masters)
    assert [type(a) for a in acts] == [MarkClosed]
    assert (acts[0].reason, acts[0].cause) == ("closed by the guardian: flatten", "risk")
    model.apply(acts)
    for _ in range(3):  # the master still holds its position: the guardian's close is final
        acts = model.plan(c, masters)
        assert not [a for a in acts if isinstance(a, (Open, Close))], acts
        model.apply(acts)
    assert model.positions == {} and model.links[(MASTER, 1)].status == "CLOSED"


def test_a_skip_while_the_guardian_pauses_says_so_and_an_operator_pause_keeps_its_text():
    guardian = "risk: paused by the guardian (daily_loss 87.8% of 500.00, pause at 85%)"
    ctx = context(masters={MASTER: view([mpos(1)])}, paused=True)
    (s,) = plan(replace(ctx, paused_reason=guardian))
    assert isinstance(s, RecordSkip)
    assert s.reason == "risk: paused by the guardian (daily_loss 87.8% of 500.00, pause at 85%) when the master opened it"
    (s,) = plan(ctx)
    assert s.reason == "account paused when the master opened it"
    # a pending order the master placed meanwhile: the same
    order = PendingOrder(ticket=9, symbol="EURUSD", type="BUY_LIMIT", volume=0.5, price_open=1.09001, contract_size=100000)
    ctx = context(masters={MASTER: view([], [order])}, paused=True)
    (s,) = plan(replace(ctx, paused_reason=guardian))
    assert s.reason == guardian + " when the master placed it"
    (s,) = plan(ctx)
    assert s.reason == "account paused when the master placed it"
