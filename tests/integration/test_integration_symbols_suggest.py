"""``cli.py symbols suggest FOLLOWER`` against a simulator server (the terminals a user has)."""
from __future__ import annotations

import json

import pytest

import cli
from testing.harness import ROOT, LocalFleet
from tests.integration.mt5ops import close, market
from tests.integration.test_integration_exposure import JPY_ACCOUNT, JPY_LOGIN

pytestmark = pytest.mark.integration


@pytest.fixture
def suggest_fleet(tmp_path):
    world = tmp_path / "world.toml"  # the demo world plus a JPY broker that lists USDJPY.c only
    world.write_text((ROOT / "sim" / "worlds" / "demo.toml").read_text() + JPY_ACCOUNT)
    f = LocalFleet(tmp_path, tick_hz=0)
    try:
        f.start_sim(str(world))
        f.sim_account("M", "MASTER", 1001)
        f.sim_account("P", "SLAVE", 2004, suffix=".c")  # no symbol_map yet
        f.sim_account("J", "SLAVE", JPY_LOGIN, suffix=".c")
        m = f.terminal(1001)
        for symbol, volume in (("EURUSD", 0.1), ("XAUUSD", 0.1), ("US30", 1.0)):
            market(m, symbol, "BUY", volume)  # open now: seen
        gone = market(m, "USDJPY", "BUY", 0.1)
        close(m, gone.order)  # closed: seen in the master's deal history
        yield f
    finally:
        f.close()


def _run(fleet, capsys, *args):
    assert cli.main(["symbols", "suggest", *args, "--db", fleet.db_url, "--sim-endpoint", fleet.sim_endpoint, "--json"]) == 0
    return json.loads(capsys.readouterr().out)


def test_suggest_maps_by_suffix_and_matches_gold_and_dj30_by_currency_and_spec(suggest_fleet, capsys):
    out = _run(suggest_fleet, capsys, "P")
    rows = {r["master_symbol"]: r for r in out["rows"]}
    assert sorted(rows) == ["EURUSD", "US30", "USDJPY", "XAUUSD"]  # seen, not every symbol of the terminal
    assert (rows["EURUSD"]["follower_symbol"], rows["EURUSD"]["how"], rows["EURUSD"]["lot_factor"]) == ("EURUSD.c", "suffix", 1.0)
    us30 = rows["US30"]
    assert (us30["follower_symbol"], us30["how"], us30["master_contract_size"], us30["follower_contract_size"],
            us30["lot_factor"]) == ("DJ30", "matched", 10.0, 1.0, 10.0)
    gold = rows["XAUUSD"]
    assert (gold["follower_symbol"], gold["how"], gold["lot_factor"]) == ("GOLD", "matched", 1.0)
    assert out["symbol_map"] == {"US30": "DJ30", "XAUUSD": "GOLD"} and out["unmapped"] == []


def test_suggest_flags_what_it_cannot_map(suggest_fleet, capsys):
    out = _run(suggest_fleet, capsys, "J")
    rows = {r["master_symbol"]: r for r in out["rows"]}
    assert rows["USDJPY"]["follower_symbol"] == "USDJPY.c" and rows["USDJPY"]["mapped"]
    assert sorted(out["unmapped"]) == ["EURUSD", "US30", "XAUUSD"]
    assert "no follower symbol with EUR/USD" in rows["EURUSD"]["note"]


def test_suggest_all_and_the_table(suggest_fleet, capsys):
    out = _run(suggest_fleet, capsys, "P", "--all")
    assert {r["master_symbol"] for r in out["rows"]} == {"EURUSD", "GBPUSD", "USDJPY", "XAUUSD", "US30"}
    assert cli.main(["symbols", "suggest", "P", "--db", suggest_fleet.db_url, "--sim-endpoint", suggest_fleet.sim_endpoint]) == 0
    text = capsys.readouterr().out
    assert "LOT FACTOR" in text and "matched" in text and "accounts set P symbol_map.US30=DJ30 symbol_map.XAUUSD=GOLD\n" in text + "\n"
