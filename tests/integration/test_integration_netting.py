"""Flips and the netting net target end to end (issue 9, faults 4 and 9), with real
processes: sim server, bus proxy, master and slave nodes.

Fault 4: a NETTING master (login 1002, added to the demo world for this test) reverses a
position with one INOUT deal; a hedging (2001) and a netting (2002) follower must end on
the new side, with the link still tracking the same master position.
Fault 9: a netting follower (2002, multiplier 0.5) of the hedging master (1001) holds the
rounded signed sum of the sized master positions.
"""
from __future__ import annotations

import time

import pytest

from testing.harness import ROOT, LocalFleet, wait_until
from tests.integration.conftest import FAST, SYMBOL_MAP, TOLERANCE
from tests.integration.mt5ops import close, market

pytestmark = pytest.mark.integration

NETTING_MASTER = 1002
NETTING_MASTER_ACCOUNT = f'''
[[accounts]]
login = {NETTING_MASTER}
broker = "SimFX-Live"
name = "Netting Master"
margin_mode = "netting"
balance = 100000
leverage = 100
'''


def book(mt5, symbol: str) -> list[tuple[str, float]]:
    """(side, volume) of every position on ``symbol``."""
    return sorted(("BUY" if p.type == 0 else "SELL", round(p.volume, 2)) for p in mt5.positions_get(symbol=symbol) or ())


def net(mt5, symbol: str) -> float:
    return round(sum(v if s == "BUY" else -v for s, v in book(mt5, symbol)), 2)


def _start(f: LocalFleet, master: str, slaves: tuple[str, ...]) -> LocalFleet:
    f.start_node("master", master)
    f.wait_node_running(master)
    for name in slaves:
        f.start_node("slave", name)
    for name in slaves:
        f.wait_node_running(name)
    wait_until(lambda: all(f.store.get_flag(f"follow:{s}:{master}") for s in slaves), timeout=10, message="follow records")
    return f


@pytest.fixture
def netting_master_fleet(tmp_path):
    world = tmp_path / "world.toml"
    world.write_text((ROOT / "sim" / "worlds" / "demo.toml").read_text() + NETTING_MASTER_ACCOUNT)
    f = LocalFleet(tmp_path, tick_hz=0, env=FAST)
    try:
        f.start_sim(str(world))
        f.start_proxy()
        f.sim_account("N", "MASTER", NETTING_MASTER)
        f.sim_account("S1", "SLAVE", 2001, suffix=".c", symbol_map=SYMBOL_MAP, slippage_tolerance=TOLERANCE)
        f.sim_account("S2", "SLAVE", 2002, suffix=".c", symbol_map=SYMBOL_MAP, slippage_tolerance=TOLERANCE)
        yield _start(f, "N", ("S1", "S2"))
    finally:
        f.close()


@pytest.fixture
def half_netting_fleet(tmp_path):
    f = LocalFleet(tmp_path, tick_hz=0, env=FAST)
    try:
        f.start_sim()
        f.start_proxy()
        f.sim_account("M", "MASTER", 1001)
        f.sim_account("S2", "SLAVE", 2002, suffix=".c", symbol_map=SYMBOL_MAP, slippage_tolerance=TOLERANCE,
                      sizing={"mode": "multiplier", "multiplier": 0.5})
        yield _start(f, "M", ("S2",))
    finally:
        f.close()


def _flip_events(fleet: LocalFleet, slave: str) -> list[dict]:
    return [e for e in fleet.store.list_events(kind="master_flipped", limit=None) if e.get("node") == slave or e.get("account") == slave]


def test_fault4_netting_master_flip_buy_100_sell_200_both_followers_sell_100(netting_master_fleet):
    fleet = netting_master_fleet
    n, s1, s2 = fleet.terminal(NETTING_MASTER), fleet.terminal(2001), fleet.terminal(2002)
    market(n, "EURUSD", "BUY", 1.00)
    wait_until(lambda: book(s1, "EURUSD.c") == [("BUY", 1.0)] and book(s2, "EURUSD.c") == [("BUY", 1.0)], timeout=10, message="copies")
    (before,) = n.positions_get(symbol="EURUSD")
    market(n, "EURUSD", "SELL", 2.00)  # one deal: INOUT on the netting master
    (after,) = n.positions_get(symbol="EURUSD")
    assert (after.identifier, after.type, after.volume) == (before.identifier, 1, 1.0)
    wait_until(lambda: book(s1, "EURUSD.c") == [("SELL", 1.0)] and book(s2, "EURUSD.c") == [("SELL", 1.0)], timeout=10,
               message="both followers SELL 1.00")
    for slave in ("S1", "S2"):
        wait_until(lambda: [(t["status"], t["direction"]) for t in fleet.trades(slave)] == [("OPEN", "SELL")], timeout=5,
                   message=f"{slave} link follows the flip")
        (link,) = fleet.trades(slave)
        assert link["master_ticket"] == before.identifier
        assert (link["master_direction"], link["master_volume"], link["flip_reason"]) == ("SELL", 1.0, "master flipped")
        assert not link.get("close_reason")  # never "master closed"
        assert _flip_events(fleet, slave), f"no master_flipped event for {slave}"
    # the hedging follower's SELL is a new position of the same link; its BUY is gone
    (s1_sell,) = s1.positions_get(symbol="EURUSD.c")
    assert fleet.trades("S1")[0]["slave_ticket"] == s1_sell.identifier
    # and the master's final close ends both links with "master closed"
    close(n, after.ticket)
    wait_until(lambda: book(s1, "EURUSD.c") == [] and book(s2, "EURUSD.c") == [], timeout=10, message="closes")
    for slave in ("S1", "S2"):
        wait_until(lambda: [t["status"] for t in fleet.trades(slave)] == ["CLOSED"], timeout=5, message="links closed")
        assert fleet.trades(slave)[0]["close_reason"] == "master closed"


def test_flip_with_partial_volume_then_back_again(netting_master_fleet):
    fleet = netting_master_fleet
    n, s1, s2 = fleet.terminal(NETTING_MASTER), fleet.terminal(2001), fleet.terminal(2002)
    market(n, "GBPUSD", "BUY", 1.00)
    wait_until(lambda: net(s1, "GBPUSD.c") == 1.0 and net(s2, "GBPUSD.c") == 1.0, timeout=10, message="copies")
    market(n, "GBPUSD", "SELL", 1.50)  # BUY 1.00 -> SELL 0.50
    wait_until(lambda: book(s1, "GBPUSD.c") == [("SELL", 0.5)] and book(s2, "GBPUSD.c") == [("SELL", 0.5)], timeout=10,
               message="SELL 0.50 on both")
    market(n, "GBPUSD", "BUY", 0.80)  # SELL 0.50 -> BUY 0.30: the hedging follower flips twice
    wait_until(lambda: book(s1, "GBPUSD.c") == [("BUY", 0.3)] and book(s2, "GBPUSD.c") == [("BUY", 0.3)], timeout=10,
               message="BUY 0.30 on both")
    market(n, "GBPUSD", "SELL", 0.10)  # a reduce is not a flip
    wait_until(lambda: book(s1, "GBPUSD.c") == [("BUY", 0.2)] and book(s2, "GBPUSD.c") == [("BUY", 0.2)], timeout=10,
               message="partial close")
    for slave in ("S1", "S2"):
        (link,) = fleet.trades(slave)
        assert (link["status"], link["direction"], link.get("flips")) == ("OPEN", "BUY", 2)


def test_fault9a_netting_follower_half_of_buy_020_sell_060_then_sell_closed_050_holds_plus_005(half_netting_fleet):
    fleet = half_netting_fleet
    m, s2 = fleet.terminal(1001), fleet.terminal(2002)
    market(m, "EURUSD", "BUY", 0.20)
    wait_until(lambda: net(s2, "EURUSD.c") == 0.10, timeout=10, message="+0.10")
    sell = market(m, "EURUSD", "SELL", 0.60)
    wait_until(lambda: net(s2, "EURUSD.c") == -0.20, timeout=10, message="-0.20")
    close(m, sell.order, 0.50)
    wait_until(lambda: net(s2, "EURUSD.c") == 0.05, timeout=10, message="+0.05 (seed: +0.10)")
    wait_until(lambda: sorted(t["status"] for t in fleet.trades("S2")) == ["OPEN", "OPEN"], timeout=5, message="both links open")
    assert net(s2, "EURUSD.c") == 0.05


def test_fault9b_netting_follower_half_of_buy_020_sell_010_then_buy_closed_010_is_flat(half_netting_fleet):
    fleet = half_netting_fleet
    m, s2 = fleet.terminal(1001), fleet.terminal(2002)
    buy = market(m, "GBPUSD", "BUY", 0.20)
    wait_until(lambda: net(s2, "GBPUSD.c") == 0.10, timeout=10, message="+0.10")
    sell = market(m, "GBPUSD", "SELL", 0.10)
    wait_until(lambda: net(s2, "GBPUSD.c") == 0.05, timeout=10, message="+0.05")
    close(m, buy.order, 0.10)
    wait_until(lambda: net(s2, "GBPUSD.c") == 0.0, timeout=10, message="flat (seed: -0.05)")
    links = {t["master_ticket"]: t for t in fleet.trades("S2")}
    assert {k: v["status"] for k, v in links.items()} == {buy.order: "OPEN", sell.order: "OPEN"}
    assert not any(v.get("close_reason") for v in links.values())  # never "master closed" while it is open
    time.sleep(1.0)  # several reconcile passes (200 ms): the seed's -0.05 never comes back
    assert net(s2, "GBPUSD.c") == 0.0
    close(m, buy.order)
    close(m, sell.order)
    wait_until(lambda: sorted(t["status"] for t in fleet.trades("S2")) == ["CLOSED", "CLOSED"], timeout=10, message="links closed")
    assert net(s2, "GBPUSD.c") == 0.0


def test_every_netting_partial_close_event_names_the_master_position_it_acts_for(half_netting_fleet):
    """Two master positions on one symbol: the first is reduced, then the second. Each of
    the follower's partial-close events names the master position that was reduced then."""
    fleet = half_netting_fleet
    m, s2 = fleet.terminal(1001), fleet.terminal(2002)
    first = market(m, "EURUSD", "BUY", 1.00).order
    second = market(m, "EURUSD", "BUY", 1.00).order
    wait_until(lambda: net(s2, "EURUSD.c") == 1.0, timeout=10, message="half of 2.00")
    close(m, first, 0.40)
    wait_until(lambda: net(s2, "EURUSD.c") == 0.8, timeout=10, message="first reduced")
    wait_until(lambda: (fleet.trades("S2") and all("reduced_to" in t for t in fleet.trades("S2")
                                                   if t["master_ticket"] == first)), timeout=5, message="booked")
    close(m, second, 0.60)
    wait_until(lambda: net(s2, "EURUSD.c") == 0.5, timeout=10, message="second reduced")

    def partials():
        return [(e["data"]["master_ticket"], e["data"].get("master_volume"))
                for e in fleet.store.list_events(kind="copy_partially_closed", limit=None) if e.get("account") == "S2"]

    wait_until(lambda: len(partials()) == 2, timeout=5, message="two partial-close events")
    assert partials() == [(first, 0.6), (second, 0.4)]
