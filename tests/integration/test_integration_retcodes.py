"""Fault 5 (a transient reject is not final) and fault 10 (invalid stops never end a copy)
on real processes: sim server, bus proxy, master and slave nodes."""
from __future__ import annotations

import pytest

from testing.harness import wait_until
from tests.integration.mt5ops import market

pytestmark = pytest.mark.integration

PROP = "SimProp-Server"


def _link(fleet, slave, ticket):
    return next((t for t in fleet.trades(slave) if t["master_ticket"] == ticket), None)


def _events(fleet, kind, slave="S1"):
    return [e for e in fleet.store.list_events(account=slave) if e.get("kind") == kind]


def test_fault5_market_closed_then_opens_at_the_same_price_is_copied(running):
    m, s1 = running.terminal(1001), running.terminal(2001)
    running.admin.set_session("EURUSD.c", PROP, False)
    opened = market(m, "EURUSD", "BUY", 0.3)
    link = wait_until(lambda: (l := _link(running, "S1", opened.order)) and l.get("retcode") == 10018 and l,
                      timeout=15, message="10018 recorded on the link")
    assert link["status"] == "PENDING" and link["retry_reason"].startswith("10018 MARKET_CLOSED")
    assert _events(running, "copy_deferred")
    # several backoff rounds later it is still waiting, never FAILED
    wait_until(lambda: (_link(running, "S1", opened.order) or {}).get("deferrals", 0) >= 3, timeout=20, message="three deferrals")
    assert _link(running, "S1", opened.order)["status"] == "PENDING" and s1.positions_get(symbol="EURUSD.c") == ()
    running.admin.set_session("EURUSD.c", PROP, True)
    wait_until(lambda: _link(running, "S1", opened.order)["status"] == "OPEN", timeout=30, message="copy made once the market opened")
    assert [round(p.volume, 2) for p in s1.positions_get(symbol="EURUSD.c")] == [0.3]


def test_fault5_market_opens_after_the_price_moved_beyond_tolerance_is_skipped(running):
    m, s1 = running.terminal(1001), running.terminal(2001)
    running.admin.set_session("EURUSD.c", PROP, False)
    opened = market(m, "EURUSD", "BUY", 0.3)
    wait_until(lambda: (_link(running, "S1", opened.order) or {}).get("retcode") == 10018, timeout=15, message="10018 on the link")
    running.admin.move_price("EURUSD", 600, broker="SimFX-Live")  # tolerance is 300 points
    running.admin.set_session("EURUSD.c", PROP, True)
    link = wait_until(lambda: (l := _link(running, "S1", opened.order)) and l["status"] == "SKIPPED" and l,
                      timeout=30, message="skipped by the slippage guard")
    assert link["skip_reason"].startswith("slippage ") and "> tolerance 300" in link["skip_reason"]
    assert s1.positions_get(symbol="EURUSD.c") == ()


def test_fault10_gold_sl_inside_the_stops_level_is_copied_with_the_sl_50_points_away(running):
    m, s1 = running.terminal(1001), running.terminal(2001)
    running.admin.set_price("XAUUSD", 2650.00)  # GOLD bid 2649.850 (0.15 under), stops level 50 points
    assert s1.symbol_info_tick("GOLD").bid == 2649.850
    running.admin.inject_fault(2001, "retcode", code=10016, count=1)  # and the server refuses the first stops
    opened = market(m, "XAUUSD", "BUY", 0.1, sl=2649.83)  # 20 GOLD points under the follower's bid
    wait_until(lambda: (_link(running, "S1", opened.order) or {}).get("status") == "OPEN", timeout=15, message="GOLD copy open")
    wait_until(lambda: [p.sl for p in s1.positions_get(symbol="GOLD")] == [2649.800], timeout=15, message="SL set 50 points away")
    assert _link(running, "S1", opened.order)["status"] == "OPEN"
    (event,) = _events(running, "stops_adjusted")
    assert event["data"]["dropped"] is True and "10016 INVALID_STOPS" in event["data"]["adjustment"]
