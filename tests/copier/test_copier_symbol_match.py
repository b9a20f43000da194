"""The symbol-mapping assistant's pure rule (cli.py symbols suggest)."""
from __future__ import annotations

from copier.symbol_match import SymbolFacts, suggest_all, suggest_mapping, symbol_map_patch
from tests.copier.copier_testkit import cfg

FX, CFD = 0, 4
FOLLOWER = [
    SymbolFacts("EURUSD.c", "EUR", "USD", 100000, FX, 1.08503),
    SymbolFacts("GBPUSD.c", "GBP", "USD", 100000, FX, 1.26498),
    SymbolFacts("GOLD", "XAU", "USD", 100, CFD, 2649.85),
    SymbolFacts("DJ30", "USD", "USD", 1, CFD, 42501.5),
    SymbolFacts("SPX500", "USD", "USD", 1, CFD, 5900.0),
]


def test_configured_suffix_and_map():
    c = cfg(symbol_map={"XAUUSD": "GOLD"})
    s = suggest_mapping(SymbolFacts("EURUSD", "EUR", "USD", 100000, FX, 1.085), FOLLOWER, c)
    assert (s.follower_symbol, s.how, s.lot_factor) == ("EURUSD.c", "suffix", 1.0)
    s = suggest_mapping(SymbolFacts("XAUUSD", "XAU", "USD", 100, CFD, 2650.0), FOLLOWER, c)
    assert (s.follower_symbol, s.how, s.master_contract_size, s.follower_contract_size, s.lot_factor) == ("GOLD", "map", 100, 100, 1.0)


def test_unmapped_symbols_are_matched_by_currencies_spec_and_price():
    c = cfg(symbol_map={})
    gold = suggest_mapping(SymbolFacts("XAUUSD", "XAU", "USD", 100, CFD, 2650.0), FOLLOWER, c)
    assert (gold.follower_symbol, gold.how, gold.lot_factor) == ("GOLD", "matched", 1.0)
    assert "XAUUSD.c' not available" in gold.note and "add it to symbol_map" in gold.note
    # US30 (10 units/lot) and DJ30 (1 unit/lot): USD/USD like SPX500, told apart by price
    us30 = suggest_mapping(SymbolFacts("US30", "USD", "USD", 10, CFD, 42500.0), FOLLOWER, c)
    assert (us30.follower_symbol, us30.how, us30.lot_factor) == ("DJ30", "matched", 10.0)


def test_ambiguous_and_unmappable_symbols_are_flagged():
    c = cfg(symbol_map={})
    twin = FOLLOWER + [SymbolFacts("WS30", "USD", "USD", 1, CFD, 42490.0)]
    s = suggest_mapping(SymbolFacts("US30", "USD", "USD", 10, CFD, 42500.0), twin, c)
    assert not s.mapped and "ambiguous: DJ30, WS30" in s.note
    s = suggest_mapping(SymbolFacts("USDJPY", "USD", "JPY", 100000, FX, 151.2), FOLLOWER, c)
    assert not s.mapped and s.lot_factor is None and "no follower symbol with USD/JPY" in s.note


def test_name_breaks_a_tie_and_forex_is_not_matched_to_a_cfd():
    c = cfg(symbol_map={}, suffix=".x")
    follower = [SymbolFacts("EURUSD.raw", "EUR", "USD", 100000, FX, 1.085), SymbolFacts("EURUSD.pro", "EUR", "USD", 100000, FX, 1.085),
                SymbolFacts("EURUSD_CFD", "EUR", "USD", 100000, CFD, 1.085)]
    s = suggest_mapping(SymbolFacts("EURUSD", "EUR", "USD", 100000, FX, 1.085), follower, c)
    assert not s.mapped and "ambiguous: EURUSD.pro, EURUSD.raw" in s.note  # the CFD is not a candidate
    one = [SymbolFacts("EURUSDm", "EUR", "USD", 100000, FX, 1.085), SymbolFacts("FXEUR", "EUR", "USD", 100000, FX, 1.085)]
    assert suggest_mapping(SymbolFacts("EURUSD", "EUR", "USD", 100000, FX, 1.085), one, c).follower_symbol == "EURUSDm"


def test_symbol_map_patch_adds_only_the_matched_ones():
    c = cfg(symbol_map={"XAUUSD": "GOLD"})
    rows = suggest_all([SymbolFacts("US30", "USD", "USD", 10, CFD, 42500.0), SymbolFacts("XAUUSD", "XAU", "USD", 100, CFD, 2650.0),
                        SymbolFacts("USDJPY", "USD", "JPY", 100000, FX, 151.2)], FOLLOWER, c)
    assert [r.master_symbol for r in rows] == ["US30", "USDJPY", "XAUUSD"]
    assert symbol_map_patch(rows, c) == {"XAUUSD": "GOLD", "US30": "DJ30"}
