from types import SimpleNamespace

import pytest
from copier_testkit import cfg

from copier.decisions import Skip
from copier.filters import follows, matches, strip_master_symbol, symbol_allowed
from copier.symbols import translate_symbol


def test_seed_examples():
    c = cfg()
    assert translate_symbol("EURUSD", c, None) == "EURUSD.c"
    assert translate_symbol("XAUUSD", c, None) == "GOLD.c"
    assert translate_symbol("XAUUSD", c, {"GOLD"}) == "GOLD"  # bare mapped name when only it exists
    assert translate_symbol("XAUUSD", c, {"GOLD", "GOLD.c"}) == "GOLD.c"


def test_mapped_value_already_suffixed_is_not_suffixed_twice():
    assert translate_symbol("US30", cfg(symbol_map={"US30": "DJ30.c"}), None) == "DJ30.c"


def test_no_suffix():
    assert translate_symbol("EURUSD", cfg(suffix=""), None) == "EURUSD"
    assert translate_symbol("XAUUSD", cfg(suffix=""), None) == "GOLD"


def test_master_prefix_and_suffix_are_stripped_before_mapping():
    c = cfg(master_suffix=".raw", master_prefix="m_")
    assert translate_symbol("m_EURUSD.raw", c, None) == "EURUSD.c"
    assert translate_symbol("XAUUSD.raw", c, None) == "GOLD.c"  # map key tried on the stripped name
    assert translate_symbol("EURUSD", c, None) == "EURUSD.c"  # nothing to strip
    # a raw key wins over the stripped one
    c2 = cfg(master_suffix=".raw", symbol_map={"XAUUSD.raw": "XAU.c", "XAUUSD": "GOLD"})
    assert translate_symbol("XAUUSD.raw", c2, None) == "XAU.c"


def test_unavailable_symbol_is_a_skip_naming_both():
    r = translate_symbol("US30", cfg(symbol_map={"US30": "DJ30"}), {"EURUSD.c"})
    assert isinstance(r, Skip)
    assert r.reason == "symbol 'DJ30.c' not available on slave (mapped from 'US30')"


@pytest.mark.parametrize("master,options,reason", [
    ("XAUUSD", {}, "symbol 'XAUUSD' not available on slave (master 'XAUUSD'; no symbol_map entry for 'XAUUSD')"),
    ("XAUUSD", {"suffix": ".c"},
     "symbol 'XAUUSD.c' not available on slave (master 'XAUUSD', suffix '.c' added; no symbol_map entry for 'XAUUSD')"),
    ("XAUUSD.raw", {"master_suffix": ".raw"},
     "symbol 'XAUUSD' not available on slave (master 'XAUUSD.raw', stripped to 'XAUUSD'; no symbol_map entry for 'XAUUSD')"),
    ("XAUUSD.raw", {"master_suffix": ".raw", "symbol_map": {"XAUUSD": "GOLD"}},
     "symbol 'GOLD' not available on slave (mapped from 'XAUUSD.raw')"),
])
def test_an_unavailable_symbol_says_how_its_name_was_made(master, options, reason):
    """Only a map entry is called a mapping; without one the Skip says none exists (the fix)."""
    r = translate_symbol(master, SimpleNamespace(**{"suffix": "", "symbol_map": {}, **options}), {"EURUSD"})
    assert isinstance(r, Skip) and r.reason == reason


def test_strip_keeps_a_name_that_is_only_the_suffix():
    assert strip_master_symbol(".raw", "", ".raw") == ".raw"


@pytest.mark.parametrize("pattern,symbol,ok", [
    ("EURUSD", "eurusd", True), ("EUR*", "EURJPY", True), ("*USD", "XAUUSD", True), ("*", "X", True),
    ("EUR*", "GBPEUR", False), ("EUR.USD", "EURxUSD", False), ("US30", "US300", False),
])
def test_wildcards(pattern, symbol, ok):
    assert matches(pattern, symbol) is ok


def test_allow_deny_match_master_names():
    assert symbol_allowed("EURUSD", allow=None, deny=None) is None
    assert symbol_allowed("EURUSD", allow=["EUR*"], deny=None) is None
    assert "symbols_allow" in symbol_allowed("GBPUSD", allow=["EUR*"], deny=None).reason
    assert "denied" in symbol_allowed("XAUUSD", allow=["*"], deny=["xau*"]).reason  # deny wins, case-insensitive
    # the stripped master name matches too
    assert symbol_allowed("EURUSD.raw", allow=["EURUSD"], deny=None, master_suffix=".raw") is None
    assert symbol_allowed("EURUSD.raw", allow=None, deny=["EURUSD"], master_suffix=".raw") is not None


def test_follows():
    assert follows(None, "A") and follows(("A",), "A") and not follows(("A",), "B") and not follows((), "A")
