"""The safety invariants of ARCHITECTURE.md, each proven with real processes on loopback."""
from __future__ import annotations

import time

import pytest

from testing.harness import wait_until
from tests.integration.mt5ops import close, market, volumes

pytestmark = pytest.mark.integration


def _copied(fleet, s1, s2, expected):
    wait_until(lambda: volumes(s1) == expected and volumes(s2) == expected, timeout=10, message=f"copies {expected}")


def test_master_outage_closes_nothing(running):
    """Invariant 1: a terminal error, then a dead master, never make a slave close."""
    m, s1, s2 = running.terminal(1001), running.terminal(2001), running.terminal(2002)
    market(m, "EURUSD", "BUY", 0.10)
    market(m, "GBPUSD", "SELL", 0.20)
    _copied(running, s1, s2, [0.1, 0.2])

    running.admin.inject_fault(1001, "disconnect")  # positions_get() now returns None on the master
    wait_until(lambda: (running.node_state("M") or {}).get("state") == "TERMINAL_ERROR", timeout=10, message="master reports the error")
    time.sleep(2.5)  # well past STALE_AFTER_MS: every mirror is stale now
    assert volumes(s1) == [0.1, 0.2] and volumes(s2) == [0.1, 0.2]

    running.procs["M"].kill()  # and the master process dies
    time.sleep(2.5)
    assert volumes(s1) == [0.1, 0.2] and volumes(s2) == [0.1, 0.2]
    assert {t["status"] for t in running.trades("S1") + running.trades("S2")} == {"OPEN"}

    running.admin.inject_fault(1001, "reconnect")
    running.start_node("master", "M")  # a fresh master still holds both positions: nothing changes
    running.wait_node_running("M")
    time.sleep(1.5)
    assert volumes(s1) == [0.1, 0.2] and volumes(s2) == [0.1, 0.2]


def test_bus_outage_closes_nothing_then_heals(running):
    """Invariant 1 and 3: no close while the bus is down; the close lands once it is back."""
    m, s1, s2 = running.terminal(1001), running.terminal(2001), running.terminal(2002)
    opened = market(m, "USDJPY", "BUY", 0.10)
    _copied(running, s1, s2, [0.1])
    running.procs["proxy"].kill()
    close(m, opened.order)
    time.sleep(2.5)
    assert volumes(s1) == [0.1] and volumes(s2) == [0.1]  # they cannot know: they must not guess
    running.start_proxy()
    wait_until(lambda: volumes(s1) == [] and volumes(s2) == [], timeout=15, message="close after the bus is back")


def test_master_closes_while_slave_down(running):
    """Invariant 3: a copy whose master position closed during downtime is closed on restart."""
    m, s1, s2 = running.terminal(1001), running.terminal(2001), running.terminal(2002)
    opened = market(m, "EURUSD", "SELL", 0.30)
    kept = market(m, "GBPUSD", "BUY", 0.10)
    _copied(running, s1, s2, [0.1, 0.3])
    running.procs["S1"].stop()
    close(m, opened.order)
    wait_until(lambda: volumes(s2) == [0.1], timeout=10, message="running slave closes")
    assert volumes(s1) == [0.1, 0.3]
    running.start_node("slave", "S1")
    wait_until(lambda: volumes(s1) == [0.1], timeout=15, message="restarted slave closes its orphan")
    wait_until(lambda: running.trades("S1", "CLOSED"), timeout=5, message="the link recorded as closed")
    links = {t["master_ticket"]: t for t in running.trades("S1")}
    assert links[opened.order]["status"] == "CLOSED" and links[opened.order]["close_reason"] == "master closed"
    assert links[kept.order]["status"] == "OPEN"


def test_reply_lost_then_killed_and_restarted_no_duplicate(running):
    """Invariant 2: the order executed but the reply was lost; kill -9; restart: one copy only."""
    m, s1 = running.terminal(1001), running.terminal(2001)
    running.admin.inject_fault(2001, "reply_lost", count=1)
    opened = market(m, "EURUSD", "BUY", 0.10)
    wait_until(lambda: volumes(s1) == [0.1], timeout=10, message="the lost-reply order exists")
    running.procs["S1"].kill()
    running.start_node("slave", "S1")
    running.wait_node_running("S1")
    time.sleep(2.0)  # several reconcile passes
    assert volumes(s1) == [0.1]
    link = [t for t in running.trades("S1") if t["master_ticket"] == opened.order][0]
    assert link["status"] == "OPEN" and link["slave_ticket"] == s1.positions_get()[0].identifier


def test_master_restart_and_slave_restart_cause_no_duplicate(running):
    """Invariant 2: bus replays after restarts (new epoch, new snapshots) copy nothing twice."""
    m, s1, s2 = running.terminal(1001), running.terminal(2001), running.terminal(2002)
    market(m, "EURUSD", "BUY", 0.10)
    _copied(running, s1, s2, [0.1])
    running.procs["M"].kill()
    running.start_node("master", "M")
    running.wait_node_running("M")
    for name in ("S1", "S2"):
        running.procs[name].kill()
        running.start_node("slave", name)
        running.wait_node_running(name)
    time.sleep(2.0)
    assert volumes(s1) == [0.1] and volumes(s2) == [0.1]


def test_sl_hit_on_slave_is_not_reopened(fleet):
    """A copy closed on the slave side (its own SL) stays closed while the master holds on."""
    fleet.store.update_account("S1", {"copy_sltp": False})
    fleet.start_node("master", "M")
    fleet.wait_node_running("M")
    fleet.start_node("slave", "S1")
    fleet.wait_node_running("S1")
    wait_until(lambda: fleet.store.get_flag("follow:S1:M"), timeout=10, message="follow record")
    m, s1 = fleet.terminal(1001), fleet.terminal(2001)
    market(m, "EURUSD", "BUY", 0.10)
    wait_until(lambda: volumes(s1) == [0.1], timeout=10, message="copy")
    pos = s1.positions_get()[0]
    sl = round(pos.price_current - 0.0020, 5)
    r = s1.order_send({"action": s1.TRADE_ACTION_SLTP, "symbol": pos.symbol, "position": pos.ticket, "sl": sl, "tp": 0.0})
    assert r.retcode == s1.TRADE_RETCODE_DONE
    fleet.admin.move_price("EURUSD", -300)  # the slave's SL fires; the master has none
    wait_until(lambda: volumes(s1) == [], timeout=5, message="SL hit")
    deals = s1.history_deals_get(position=pos.identifier)
    assert deals[-1].reason == s1.DEAL_REASON_SL
    wait_until(lambda: fleet.trades("S1", "CLOSED"), timeout=10, message="link closed")
    time.sleep(2.0)  # many reconcile passes later: still not reopened
    assert volumes(s1) == [] and len(m.positions_get()) == 1
    assert fleet.trades("S1")[0]["close_reason"] == "closed by SL on slave"  # reasons from history
