"""Reasons from history: classifying a vanished slave position from its deals (copier/reasons.py)."""
import pytest

from copier.reasons import (
    BROKER,
    DEAL_ENTRY_IN,
    DEAL_ENTRY_INOUT,
    DEAL_ENTRY_OUT,
    DEAL_ENTRY_OUT_BY,
    DEAL_REASON_CLIENT,
    DEAL_REASON_EXPERT,
    DEAL_REASON_MOBILE,
    DEAL_REASON_ROLLOVER,
    DEAL_REASON_SL,
    DEAL_REASON_SO,
    DEAL_REASON_TP,
    DEAL_REASON_WEB,
    DEAL_TYPE_BUY,
    DEAL_TYPE_SELL,
    MANUAL,
    OWN,
    SL,
    SO,
    TP,
    UNKNOWN,
    Closure,
    DealRecord,
    classify_closure,
    is_own_deal,
)
from copier.tags import make_tag

MAGIC = 234000
TAG = make_tag("FTMO_Master", 12345678)  # cH66ye:7clzi
POS = 501


def deal(ticket, entry, reason, *, side="BUY", volume=0.10, magic=MAGIC, comment=TAG, pos=POS, t=None):
    return DealRecord(ticket=ticket, position_id=pos, entry=entry, reason=reason, volume=volume,
                      type=DEAL_TYPE_BUY if side == "BUY" else DEAL_TYPE_SELL, magic=magic, comment=comment,
                      time_msc=ticket * 1000 if t is None else t)


def opened(volume=0.10):
    """Our copy: a BUY opened by the copier (EXPERT, its magic, its tag)."""
    return deal(1, DEAL_ENTRY_IN, DEAL_REASON_EXPERT, volume=volume)


def classify(*deals):
    return classify_closure(deals, position_id=POS, magic=MAGIC)


def test_sl_tp_so_are_the_servers_closes():
    c = classify(opened(), deal(2, DEAL_ENTRY_OUT, DEAL_REASON_SL, side="SELL", comment="[sl 1.09850]"))
    assert (c.cause, c.deal, c.deal_reason, c.final) == (SL, 2, DEAL_REASON_SL, True)
    assert c.describe() == "closed by SL on slave"
    c = classify(opened(), deal(2, DEAL_ENTRY_OUT, DEAL_REASON_TP, side="SELL", comment="[tp 1.11000]"))
    assert (c.cause, c.describe()) == (TP, "closed by TP on slave")
    c = classify(opened(), deal(2, DEAL_ENTRY_OUT, DEAL_REASON_SO, side="SELL", comment="[so 49.80%/...]"))
    assert (c.cause, c.describe()) == (SO, "stopped out on slave")


@pytest.mark.parametrize("reason, text", [
    (DEAL_REASON_CLIENT, "closed by hand on slave"),
    (DEAL_REASON_MOBILE, "closed by hand on slave (mobile)"),
    (DEAL_REASON_WEB, "closed by hand on slave (web)"),
])
def test_a_close_by_hand_is_manual(reason, text):
    # a hand close keeps the position's magic and may carry any comment: the reason decides
    c = classify(opened(), deal(2, DEAL_ENTRY_OUT, reason, side="SELL", magic=MAGIC, comment=TAG))
    assert (c.cause, c.describe(), c.final) == (MANUAL, text, True)


def test_another_experts_close_is_manual():
    c = classify(opened(), deal(2, DEAL_ENTRY_OUT, DEAL_REASON_EXPERT, side="SELL", magic=777, comment=TAG))
    assert (c.cause, c.describe()) == (MANUAL, "closed on slave by another expert or script (magic 777)")
    # a script with magic 0 (e.g. the integration tests' own close)
    assert classify(opened(), deal(2, DEAL_ENTRY_OUT, DEAL_REASON_EXPERT, side="SELL", magic=0, comment="")).cause == MANUAL
    # the copier's magic without its tag is not enough: another EA may share the number
    assert classify(opened(), deal(2, DEAL_ENTRY_OUT, DEAL_REASON_EXPERT, side="SELL", comment="my ea")).cause == MANUAL


def test_the_copiers_own_close_is_own():
    c = classify(opened(), deal(2, DEAL_ENTRY_OUT, DEAL_REASON_EXPERT, side="SELL"))
    assert (c.cause, c.own, c.final, c.describe()) == (OWN, True, False, "closed by copyhub")
    # a broker appending to the comment does not hide the tag
    assert classify(opened(), deal(2, DEAL_ENTRY_OUT, DEAL_REASON_EXPERT, side="SELL", comment=TAG + " [x]")).own
    assert is_own_deal(deal(2, DEAL_ENTRY_OUT, DEAL_REASON_EXPERT), MAGIC)
    assert not is_own_deal(deal(2, DEAL_ENTRY_OUT, DEAL_REASON_CLIENT), MAGIC)


def test_the_last_closing_deal_decides():
    # our own partial close, then the SL takes the rest: stopped by SL
    c = classify(opened(0.30), deal(2, DEAL_ENTRY_OUT, DEAL_REASON_EXPERT, side="SELL", volume=0.10),
                 deal(3, DEAL_ENTRY_OUT, DEAL_REASON_SL, side="SELL", volume=0.20, comment="[sl]"))
    assert (c.cause, c.deal) == (SL, 3)
    # a hand partial close, then the copier closes the rest (its master closed): own
    c = classify(opened(0.30), deal(2, DEAL_ENTRY_OUT, DEAL_REASON_CLIENT, side="SELL", volume=0.10, comment=""),
                 deal(3, DEAL_ENTRY_OUT, DEAL_REASON_EXPERT, side="SELL", volume=0.20))
    assert c.cause == OWN
    # order by time, not by the order the terminal returned them
    c = classify(deal(3, DEAL_ENTRY_OUT, DEAL_REASON_SL, side="SELL", volume=0.20, comment="[sl]"), opened(0.30),
                 deal(2, DEAL_ENTRY_OUT, DEAL_REASON_EXPERT, side="SELL", volume=0.10))
    assert c.cause == SL


def test_netting_reversal_then_sl():
    # netting: IN BUY 0.10, one SELL 0.30 reverses (INOUT, same identifier), then the SL closes SELL 0.20
    c = classify(opened(), deal(2, DEAL_ENTRY_INOUT, DEAL_REASON_EXPERT, side="SELL", volume=0.30),
                 deal(3, DEAL_ENTRY_OUT, DEAL_REASON_SL, side="BUY", volume=0.20, comment="[sl]"))
    assert c.cause == SL


def test_close_by_is_classified_by_its_reason():
    assert classify(opened(), deal(2, DEAL_ENTRY_OUT_BY, DEAL_REASON_CLIENT, side="SELL", comment="#501 by #502")).cause == MANUAL


def test_broker_closes():
    c = classify(opened(), deal(2, DEAL_ENTRY_OUT, DEAL_REASON_ROLLOVER, side="SELL", magic=0, comment=""))
    assert (c.cause, c.final, c.describe()) == (BROKER, True, "closed by the broker on slave (ROLLOVER)")


def test_no_closing_deal_is_unknown():
    assert classify().cause == UNKNOWN
    # the history lags the position list: only the IN deal so far
    c = classify(opened())
    assert (c.cause, c.final, c.deal_reason) == (UNKNOWN, True, None)
    assert c.describe() == "closed on slave (no closing deal in its history)"
    # volume still open after the OUT deals seen so far
    assert classify(opened(0.30), deal(2, DEAL_ENTRY_OUT, DEAL_REASON_SL, side="SELL", volume=0.10)).cause == UNKNOWN


def test_deals_of_other_positions_are_ignored():
    other = deal(2, DEAL_ENTRY_OUT, DEAL_REASON_SL, side="SELL", pos=999)
    mine = deal(3, DEAL_ENTRY_OUT, DEAL_REASON_CLIENT, side="SELL")
    assert classify(opened(), other, mine).cause == MANUAL


def test_closure_is_a_plain_value():
    assert Closure(1, SL) == Closure(1, SL)
