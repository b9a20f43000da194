"""Pending orders on a netting follower, with real processes (issue 9, "What to build"):
the master's SELL_LIMIT is mirrored on S2 (netting) as a SELL_LIMIT; the follower's broker
triggers first and the copy's fill reverses S2's BUY (one INOUT deal): the planner adopts
the fill as the copy's share of the net target and makes no correction; the master's own
fill and its later close of the BUY are then followed."""
from __future__ import annotations

import time

import pytest

from testing.harness import wait_until
from tests.integration.mt5ops import close, market

pytestmark = pytest.mark.integration

MASTER_SERVER = "SimFX-Live"
EVER = (0, 4_000_000_000)
DEAL_ENTRY = {0: "IN", 1: "OUT", 2: "INOUT"}


def net(mt5, symbol: str) -> float:
    return round(sum(p.volume if p.type == 0 else -p.volume for p in mt5.positions_get(symbol=symbol) or ()), 2)


def deals(mt5, symbol: str) -> list[tuple[str, str, float]]:
    """(entry, side, volume) of every trade deal on ``symbol``, in order."""
    return [(DEAL_ENTRY[d.entry], "BUY" if d.type == 0 else "SELL", round(d.volume, 2))
            for d in mt5.history_deals_get(*EVER) if d.symbol == symbol]


def link(fleet, slave: str, ticket: int) -> dict:
    return next((t for t in fleet.trades(slave) if int(t["master_ticket"]) == ticket), None) or {}


def test_pending_copy_on_a_netting_follower_fills_into_the_net_and_is_not_corrected(running):
    fleet, admin = running, running.admin
    m, s2 = fleet.terminal(1001), fleet.terminal(2002)
    buy = market(m, "EURUSD", "BUY", 0.30)
    wait_until(lambda: net(s2, "EURUSD.c") == 0.30, timeout=15, message="S2 copies the BUY")
    limit = round(m.symbol_info_tick("EURUSD").bid + 0.00050, 5)
    r = m.order_send({"action": m.TRADE_ACTION_PENDING, "symbol": "EURUSD", "volume": 0.50, "type": m.ORDER_TYPE_SELL_LIMIT,
                      "price": limit, "type_filling": m.ORDER_FILLING_RETURN, "type_time": m.ORDER_TIME_GTC})
    assert r.retcode == m.TRADE_RETCODE_DONE, r
    wait_until(lambda: len(s2.orders_get() or ()) == 1, timeout=15, message="S2 mirrors the pending order")
    (copy,) = s2.orders_get()
    assert (copy.symbol, copy.type, copy.volume_current, copy.price_open) == ("EURUSD.c", s2.ORDER_TYPE_SELL_LIMIT, 0.5, limit)

    # EURUSD.c quotes 0.00003 over the master's EURUSD: master bid 2 points under the limit,
    # follower bid 1 point over it -> only the follower's copy fills
    admin.set_price("EURUSD", round(limit - 0.00002, 5), broker=MASTER_SERVER)
    assert m.orders_get()[0].ticket == r.order and s2.orders_get() == ()
    assert net(s2, "EURUSD.c") == -0.20  # +0.30 - 0.50: one INOUT deal reversed it
    wait_until(lambda: link(fleet, "S2", r.order).get("kind") == "position", timeout=15, message="fill adopted")
    time.sleep(1.5)  # several reconcile passes: no correction of the fill
    assert net(s2, "EURUSD.c") == -0.20
    assert deals(s2, "EURUSD.c") == [("IN", "BUY", 0.3), ("INOUT", "SELL", 0.5)]
    row = link(fleet, "S2", r.order)
    assert row["status"] == "OPEN" and row["slave_ticket"] == s2.positions_get()[0].identifier, row

    admin.set_price("EURUSD", round(limit + 0.00010, 5), broker=MASTER_SERVER)  # the master's order fills
    assert m.orders_get() == () and len(m.positions_get()) == 2
    time.sleep(1.5)
    assert deals(s2, "EURUSD.c") == [("IN", "BUY", 0.3), ("INOUT", "SELL", 0.5)]  # nothing to do

    close(m, buy.order)  # the master's net is now SELL 0.50
    wait_until(lambda: net(s2, "EURUSD.c") == -0.50, timeout=15, message="S2 follows the master's close")
    wait_until(lambda: link(fleet, "S2", buy.order).get("status") == "CLOSED", timeout=10, message="BUY link closed")
    assert link(fleet, "S2", buy.order)["close_reason"] == "master closed"
    assert deals(s2, "EURUSD.c") == [("IN", "BUY", 0.3), ("INOUT", "SELL", 0.5), ("IN", "SELL", 0.3)]
    assert link(fleet, "S2", r.order)["status"] == "OPEN"
