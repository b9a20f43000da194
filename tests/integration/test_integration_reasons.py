"""Reasons from history with real processes (issue 9, faults 3 and 11): a follower position that
went away is classified from its deals, on hedging and netting followers alike."""
from __future__ import annotations

import time

import pytest

from testing.harness import wait_until
from tests.integration.mt5ops import market, volumes

pytestmark = pytest.mark.integration

EVER = (0, 4_000_000_000)  # history_deals_get(date_from, date_to): every deal (server-time seconds)


def _start(fleet, slaves):
    fleet.start_node("master", "M")
    fleet.wait_node_running("M")
    for name in slaves:
        fleet.start_node("slave", name)
    for name in slaves:
        fleet.wait_node_running(name)
    wait_until(lambda: all(fleet.store.get_flag(f"follow:{n}:M") for n in slaves), timeout=10, message="follow records")


def _deals(mt5, symbol):
    """(entry, reason) of every deal on ``symbol``, in time order."""
    return [(d.entry, d.reason) for d in mt5.history_deals_get(*EVER) if d.symbol == symbol]


def test_fault3_netting_follower_stays_flat_after_its_own_sl(fleet):
    """Netting follower, tolerance 300: its own SL fires 150 points under its entry while the master
    holds; the price comes back near the entry. Deals: IN, OUT by SL - and no second IN. The
    hedging follower stays flat too, and both links say why."""
    for name in ("S1", "S2"):  # the SL below is the followers' own (set by hand), not the master's
        fleet.store.update_account(name, {"copy_sltp": False})
    _start(fleet, ("S1", "S2"))
    m, s1, s2 = fleet.terminal(1001), fleet.terminal(2001), fleet.terminal(2002)
    assert s2.account_info().margin_mode == s2.ACCOUNT_MARGIN_MODE_RETAIL_NETTING
    market(m, "EURUSD", "BUY", 0.10)
    wait_until(lambda: volumes(s1) == [0.1] and volumes(s2) == [0.1], timeout=10, message="copies")
    positions = {}
    for login, mt5 in ((2001, s1), (2002, s2)):
        (p,) = mt5.positions_get()
        positions[login] = p
        sl = round(p.price_open - 150 * 0.00001, 5)  # 150 points under the entry
        r = fleet.admin.manual_trade(login, {"action": mt5.TRADE_ACTION_SLTP, "symbol": p.symbol, "position": p.ticket,
                                             "sl": sl, "tp": 0.0})
        assert r.retcode == mt5.TRADE_RETCODE_DONE
    fleet.admin.move_price("EURUSD", -250)  # both followers' SLs fire; the master has none
    wait_until(lambda: volumes(s1) == [] and volumes(s2) == [], timeout=5, message="SLs hit")
    fleet.admin.move_price("EURUSD", +200)  # back within 300 points of the master's entry
    wait_until(lambda: len(fleet.trades("S1", "CLOSED")) == 1, timeout=10, message="hedging link closed")
    time.sleep(2.0)  # about ten reconcile passes later (200 ms each): still flat
    IN, OUT, EXPERT, SL = s2.DEAL_ENTRY_IN, s2.DEAL_ENTRY_OUT, s2.DEAL_REASON_EXPERT, s2.DEAL_REASON_SL
    assert _deals(s2, "EURUSD.c") == [(IN, EXPERT), (OUT, SL)]  # no second IN
    assert _deals(s1, "EURUSD.c") == [(IN, EXPERT), (OUT, SL)]
    assert volumes(s1) == [] and volumes(s2) == [] and len(m.positions_get()) == 1
    for name, login in (("S1", 2001), ("S2", 2002)):
        (link,) = fleet.trades(name)
        assert (link["status"], link["close_reason"], link["close_cause"]) == ("CLOSED", "closed by SL on slave", "sl")
        assert link["slave_ticket"] == positions[login].identifier


def test_fault11_lost_reply_on_own_close_is_recorded_as_the_copiers(fleet):
    """copyhub closes a below-minimum remainder (master 0.10 -> 0.05 at multiplier 0.1: 0.005 < 0.01);
    the close executes but its reply is lost. The link says the copier closed it."""
    fleet.store.update_account("S1", {"sizing": {"mode": "multiplier", "multiplier": 0.1}})
    _start(fleet, ("S1",))
    m, s1 = fleet.terminal(1001), fleet.terminal(2001)
    opened = market(m, "EURUSD", "BUY", 0.10)
    wait_until(lambda: volumes(s1) == [0.01], timeout=10, message="copy 0.01")
    (p,) = s1.positions_get()
    fleet.admin.inject_fault(2001, "reply_lost", count=1)  # the copier's close executes, its reply is lost
    market(m, "EURUSD", "SELL", 0.05, position=opened.order)
    wait_until(lambda: volumes(s1) == [], timeout=10, message="the remainder closed")
    wait_until(lambda: fleet.trades("S1", "CLOSED"), timeout=10, message="link closed")
    (link,) = fleet.trades("S1")
    assert link["close_reason"] == "closed by copyhub: master partial close (copy below minimum: closed)"
    assert link["close_cause"] == "own"
    out = s1.history_deals_get(position=p.identifier)[-1]
    assert (out.entry, out.reason, out.magic, out.comment) == (s1.DEAL_ENTRY_OUT, s1.DEAL_REASON_EXPERT, 234000, p.comment)
    assert link["close_deal"] == out.ticket
    assert len(m.positions_get()) == 1 and volumes(m) == [0.05]
