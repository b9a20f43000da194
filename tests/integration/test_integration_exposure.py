"""Exposure sizing end to end (invariant 7), with real processes: sim server, bus proxy,
master and slave nodes. US30 at 10 units/lot copied to DJ30 at 1 unit/lot, and a USD
master copied to a JPY-deposit follower with balance_ratio."""
from __future__ import annotations

import pytest

from testing.harness import ROOT, LocalFleet, wait_until
from tests.integration.conftest import FAST
from tests.integration.mt5ops import market, volumes

pytestmark = pytest.mark.integration

JPY_LOGIN = 2101
# about the master's 100,000 USD at USDJPY 151.2
# A JPY broker: the simulator converts every symbol's currencies into the deposit
# currency directly, so a JPY account lives at a broker whose symbols all convert to JPY.
JPY_ACCOUNT = f'''
[brokers.SimJP-Server]
company = "SimJP Securities"
utc_offset = 2
dst = "eu"
first_order_ticket = 8100001
first_deal_ticket = 6200001
sessions = "24/7"

[brokers.SimJP-Server.symbols."USDJPY.c"]
underlying = "USDJPY"
description = "US Dollar vs Japanese Yen"
path = "Forex\\\\USDJPY.c"
digits = 3
contract_size = 100000
volume_min = 0.01
volume_step = 0.01
volume_max = 50
filling_mode = 2
trade_exemode = "market"
spread = 4
calc_mode = "forex"
currency_base = "USD"
currency_profit = "JPY"

[[accounts]]
login = {JPY_LOGIN}
broker = "SimJP-Server"
name = "Prop Slave JPY"
currency = "JPY"
margin_mode = "hedging"
balance = 15120000
leverage = 100
'''


@pytest.fixture
def exposure_fleet(tmp_path):
    world = tmp_path / "world.toml"  # the demo world plus a JPY-deposit follower (test only)
    world.write_text((ROOT / "sim" / "worlds" / "demo.toml").read_text() + JPY_ACCOUNT)
    f = LocalFleet(tmp_path, tick_hz=0, env=FAST)
    try:
        f.start_sim(str(world))
        f.start_proxy()
        f.sim_account("M", "MASTER", 1001)
        # 2001: 100,000 USD like the master; DJ30 sits ~1.5 over US30 with a 2.5 spread
        f.sim_account("S1", "SLAVE", 2001, suffix=".c", symbol_map={"US30": "DJ30"}, slippage_tolerance=2000,
                      sizing="balance_ratio")
        f.sim_account("J", "SLAVE", JPY_LOGIN, suffix=".c", slippage_tolerance=300, sizing="balance_ratio")
        f.start_node("master", "M")
        f.wait_node_running("M")
        for name in ("S1", "J"):
            f.start_node("slave", name)
        for name in ("S1", "J"):
            f.wait_node_running(name)
        wait_until(lambda: f.store.get_flag("follow:S1:M") and f.store.get_flag("follow:J:M"), timeout=10, message="follow records")
        yield f
    finally:
        f.close()


def test_fault1_us30_contract_10_is_copied_as_ten_lots_of_dj30_contract_1(exposure_fleet):
    m, s1 = exposure_fleet.terminal(1001), exposure_fleet.terminal(2001)
    assert m.symbol_info("US30").trade_contract_size == 10 and s1.symbol_info("DJ30").trade_contract_size == 1
    opened = market(m, "US30", "BUY", 1.0)
    wait_until(lambda: volumes(s1, "DJ30") == [10.0], timeout=15, message="DJ30 copy of 10 lots")
    # the link becomes OPEN just after the fill (the slave writes it once order_send returns)
    wait_until(lambda: exposure_fleet.trades("S1", "OPEN"), timeout=5, message="the link recorded as open")
    link = next(t for t in exposure_fleet.trades("S1") if t["master_ticket"] == opened.order)
    assert link["status"] == "OPEN" and link["symbol"] == "DJ30" and link["slave_volume"] == 10.0
    assert link["master_contract_size"] == 10.0 and link["lot_factor"] == 10.0
    assert "fx_symbol" not in link or not link["fx_symbol"]  # same deposit currency: no conversion


def test_fault2_usd_master_to_jpy_follower_balance_ratio_is_about_one_lot(exposure_fleet):
    m, j = exposure_fleet.terminal(1001), exposure_fleet.terminal(JPY_LOGIN)
    assert j.account_info().currency == "JPY"
    opened = market(m, "USDJPY", "BUY", 1.0)
    wait_until(lambda: volumes(j, "USDJPY.c"), timeout=15, message="USDJPY.c copy")
    (vol,) = volumes(j, "USDJPY.c")
    assert 0.99 <= vol <= 1.01, vol  # was 50 lots (the symbol maximum) when balances were compared raw
    link = next(t for t in exposure_fleet.trades("J") if t["master_ticket"] == opened.order)
    assert link["status"] == "OPEN"
    assert link["fx_symbol"] == "1/USDJPY.c" and link["fx_rate"] == pytest.approx(1 / 151.2, rel=0.01)


def test_cli_sizing_shows_lot_factor_and_conversion_per_mapped_symbol(exposure_fleet, capsys):
    import json

    import cli

    assert cli.main(["sizing", "S1", "--db", exposure_fleet.db_url, "--json"]) == 0
    rows = {r["master_symbol"]: r for r in json.loads(capsys.readouterr().out)["rows"]}
    us30 = rows["US30"]
    assert (us30["follower_symbol"], us30["master_contract_size"], us30["follower_contract_size"], us30["lot_factor"],
            us30["volume"]) == ("DJ30", 10.0, 1.0, 10.0, 10.0)
    assert rows["EURUSD"]["follower_symbol"] == "EURUSD.c" and rows["EURUSD"]["lot_factor"] == 1.0

    assert cli.main(["sizing", "J", "--master", "M", "--db", exposure_fleet.db_url, "--json"]) == 0
    rows = {r["master_symbol"]: r for r in json.loads(capsys.readouterr().out)["rows"]}
    assert rows["USDJPY"]["fx"] == "1/USDJPY.c" and 0.99 <= rows["USDJPY"]["volume"] <= 1.01
    assert "not available" in rows["EURUSD"]["note"]  # the JPY broker lists USDJPY.c only
    assert cli.main(["sizing", "J", "--db", exposure_fleet.db_url]) == 0
    assert "LOT FACTOR" in capsys.readouterr().out
