from dataclasses import replace

import pytest
from copier_testkit import spec
from hypothesis import given, settings
from hypothesis import strategies as st

from copier.currency import Conversion, Leg, conversion_path, conversion_rate, mid_price
from copier.decisions import Skip
from copier.models import AccountMetrics
from copier.sizing import (
    SizingConfig,
    contract_factor,
    floor_to_step,
    money_ratio,
    normalize_volume,
    size_copy,
    target_volume,
)

S = spec()
M = AccountMetrics(login=1, balance=100_000, equity=90_000, margin=0, margin_free=0, profit=0)
SL = AccountMetrics(login=2, balance=50_000, equity=60_000, margin=0, margin_free=0, profit=0)


def tv(mode: SizingConfig, master=1.0, *, mm=M, sm=SL, sl=None, s=S, mcs=None, conv=None):
    return target_volume(master, mode, master_metrics=mm, slave_metrics=sm, sl_distance_price=sl, slave_spec=s,
                         master_contract_size=s.contract_size if mcs is None else mcs, conversion=conv)


def test_simple_modes():
    assert tv(SizingConfig("same"), 0.37) == 0.37
    assert tv(SizingConfig("fixed", lot=0.2), 5.0) == 0.2
    assert tv(SizingConfig("multiplier", multiplier=2.5), 0.4) == pytest.approx(1.0)


def test_ratio_modes():
    assert tv(SizingConfig("balance_ratio"), 2.0) == pytest.approx(1.0)
    assert tv(SizingConfig("balance_ratio", multiplier=2), 2.0) == pytest.approx(2.0)
    assert tv(SizingConfig("equity_ratio"), 1.5) == pytest.approx(1.0)
    assert isinstance(tv(SizingConfig("balance_ratio"), mm=None), Skip)
    assert isinstance(tv(SizingConfig("equity_ratio"), sm=None), Skip)
    zero = AccountMetrics(login=1, balance=0, equity=0, margin=0, margin_free=0, profit=0)
    assert "master balance is 0" in tv(SizingConfig("balance_ratio"), mm=zero).reason


def test_risk_percent():
    # 1% of 60k equity = 600; SL 50 pips = 0.00500 = 500 points of 1.0 per lot -> 500/lot -> 1.2 lots
    assert tv(SizingConfig("risk_percent", percent=1.0), sl=0.005) == pytest.approx(1.2)
    gold = spec("GOLD.c", digits=2, tick_value=1.0)  # tick 0.01 worth 1.0 -> $100/1.00 move
    assert tv(SizingConfig("risk_percent", percent=0.5), sl=10.0, s=gold) == pytest.approx(0.3)


def test_risk_percent_without_sl():
    r = tv(SizingConfig("risk_percent", percent=1.0), sl=None)
    assert isinstance(r, Skip) and "stop loss" in r.reason
    assert tv(SizingConfig("risk_percent", percent=1.0, fallback_lot=0.05), sl=0.0) == 0.05
    assert isinstance(tv(SizingConfig("risk_percent", percent=1.0), sl=0.005, sm=None), Skip)


@pytest.mark.parametrize("raw,expected", [
    (0.30000000004, 0.3), (0.29999999, 0.3), (0.299, 0.29), (1.0, 1.0), (0.016, 0.01), (0.1 + 0.2, 0.3), (2.675, 2.67),
])
def test_floor_to_step(raw, expected):
    assert floor_to_step(raw, 0.01) == expected


def test_floor_to_coarse_and_fine_steps():
    assert floor_to_step(0.35, 0.1) == 0.3
    assert floor_to_step(3 * 0.1, 0.1) == 0.3
    assert floor_to_step(7.5, 1.0) == 7.0
    assert floor_to_step(0.0127, 0.001) == 0.012


def test_normalize_rounds_down_and_clamps():
    assert normalize_volume(0.456, S) == 0.45
    assert normalize_volume(250, S) == 100.0
    assert normalize_volume(5, S, max_lot=2.0) == 2.0
    assert normalize_volume(5, S, max_lot=1.555) == 1.55


def test_below_minimum_is_a_skip_never_rounded_up():
    r = normalize_volume(0.004, S)
    assert isinstance(r, Skip) and r.reason.startswith("volume 0.004 below minimum 0.01")
    coarse = spec(vmin=0.1, step=0.1)
    assert isinstance(normalize_volume(0.09, coarse), Skip)
    assert normalize_volume(0.19, coarse) == 0.1
    assert isinstance(normalize_volume(0.0, S), Skip) and isinstance(normalize_volume(-1, S), Skip)
    assert isinstance(normalize_volume(float("nan"), S), Skip)


# ---------------------------------------------------------------- exposure, not lots (invariant 7)


DJ30 = replace(spec("DJ30", digits=2, vmin=0.1, step=0.1, vmax=200), contract_size=1)
GOLD10 = replace(spec("GOLD", digits=2), contract_size=10)
EQ = AccountMetrics(login=1, balance=100_000, equity=100_000, margin=0, margin_free=0, profit=0)


def usd(balance, equity=None, currency="USD"):
    return AccountMetrics(login=9, balance=balance, equity=balance if equity is None else equity, margin=0,
                          margin_free=0, profit=0, currency=currency)


def test_fault1_balance_ratio_us30_contract_10_to_dj30_contract_1_is_ten_lots():
    # equal balances, 1.0 lot US30 at 10 units/lot = 10 units -> DJ30 at 1 unit/lot: 10.0 lots
    assert tv(SizingConfig("balance_ratio"), 1.0, mm=EQ, sm=EQ, s=DJ30, mcs=10) == pytest.approx(10.0)
    assert normalize_volume(tv(SizingConfig("balance_ratio"), 1.0, mm=EQ, sm=EQ, s=DJ30, mcs=10), DJ30) == 10.0


@pytest.mark.parametrize("mode,expected", [
    (SizingConfig("same"), 1.0),                       # XAUUSD 100/lot -> GOLD 10/lot: x10
    (SizingConfig("multiplier", multiplier=0.5), 0.5),
    (SizingConfig("equity_ratio"), 1.0),
    (SizingConfig("balance_ratio"), 1.0),
])
def test_gold_100_to_gold_10_is_times_ten_in_every_exposure_mode(mode, expected):
    assert tv(mode, 0.1, mm=EQ, sm=EQ, s=GOLD10, mcs=100) == pytest.approx(expected)


def test_equal_contract_sizes_leave_lots_unchanged():
    assert tv(SizingConfig("same"), 0.37, mcs=100000) == 0.37  # EURUSD 100000 vs 100000
    assert tv(SizingConfig("equity_ratio"), 1.5, mcs=100000) == pytest.approx(1.0)


def test_contract_factor_rule():
    assert contract_factor(10, DJ30) == 10.0
    assert contract_factor(1, replace(DJ30, contract_size=10)) == 0.1  # the other way round: a tenth
    assert isinstance(contract_factor(0, DJ30), Skip) and isinstance(contract_factor(None, DJ30), Skip)
    assert "contract size" in contract_factor(10, replace(DJ30, contract_size=0)).reason


def test_fixed_stays_a_fixed_lot_of_the_slave_symbol_whatever_the_contract_sizes():
    assert tv(SizingConfig("fixed", lot=0.2), 5.0, s=DJ30, mcs=10) == 0.2
    assert tv(SizingConfig("fixed", lot=0.2), 5.0, s=DJ30, mcs=0) == 0.2  # needs no master contract size


def test_risk_percent_already_works_in_money_and_ignores_contract_sizes():
    a = tv(SizingConfig("risk_percent", percent=1.0), sl=0.005, mcs=10)
    b = tv(SizingConfig("risk_percent", percent=1.0), sl=0.005, mcs=0)
    assert a == b == pytest.approx(1.2)


def test_unknown_master_contract_size_is_refused_never_raw_lots():
    r = tv(SizingConfig("same"), 1.0, s=DJ30, mcs=0)
    assert isinstance(r, Skip) and "master contract size unknown" in r.reason


# ------------------------------------------------------------------ deposit currencies

FOLLOWER = {"USDJPY.c": ("USD", "JPY"), "EURUSD.c": ("EUR", "USD"), "GBPUSD.c": ("GBP", "USD"),
            "DJ30": ("USD", "USD"), "XAUUSD": ("XAU", "USD")}


def conv(source, target, mids, currencies=FOLLOWER):
    legs = conversion_path(source, target, currencies)
    assert not isinstance(legs, Skip), legs
    return conversion_rate(source, target, legs, mids)


def test_fault2_usd_master_jpy_follower_balance_ratio_opens_about_one_lot():
    master, follower = usd(100_000), usd(15_120_000, currency="JPY")
    c = conv("JPY", "USD", {"USDJPY.c": 151.2})
    assert c.legs == (Leg("USDJPY.c", True),) and c.symbol == "1/USDJPY.c" and c.rate == pytest.approx(1 / 151.2)
    usdjpy = spec("USDJPY.c", digits=3)
    raw = tv(SizingConfig("balance_ratio"), 1.0, mm=master, sm=follower, s=usdjpy, mcs=100000, conv=c)
    assert raw == pytest.approx(1.0)
    assert normalize_volume(raw, usdjpy) == 1.0  # not 50 (the symbol maximum)


def test_without_conversion_the_jpy_follower_is_refused_with_the_reason():
    r = tv(SizingConfig("balance_ratio"), 1.0, mm=usd(100_000), sm=usd(15_120_000, currency="JPY"), mcs=100000)
    assert isinstance(r, Skip) and "master deposits in USD, slave in JPY" in r.reason


def test_a_conversion_of_the_wrong_pair_is_refused():
    wrong = Conversion("EUR", "USD", 1.08, (Leg("EURUSD.c"),))
    r = tv(SizingConfig("equity_ratio"), 1.0, mm=usd(100_000), sm=usd(15_120_000, currency="JPY"), mcs=100000, conv=wrong)
    assert isinstance(r, Skip)


def test_eur_master_usd_follower_uses_the_inverse_of_eurusd():
    c = conv("USD", "EUR", {"EURUSD.c": 1.08})
    assert c.symbol == "1/EURUSD.c" and c.rate == pytest.approx(1 / 1.08)
    # follower 108,000 USD = 100,000 EUR = the master's balance: same exposure
    r = tv(SizingConfig("balance_ratio"), 0.5, mm=usd(100_000, currency="EUR"), sm=usd(108_000), mcs=100000, conv=c)
    assert r == pytest.approx(0.5)


def test_usd_master_eur_follower_uses_eurusd_directly():
    c = conv("EUR", "USD", {"EURUSD.c": 1.08})
    assert c.legs == (Leg("EURUSD.c", False),) and c.rate == pytest.approx(1.08)
    r = tv(SizingConfig("equity_ratio"), 1.0, mm=usd(108_000), sm=usd(50_000, currency="EUR"), mcs=100000, conv=c)
    assert r == pytest.approx(0.5)


def test_same_currency_needs_no_conversion():
    assert conversion_path("USD", "usd", FOLLOWER) == ()
    sized = size_copy(1.0, SizingConfig("balance_ratio"), master_contract_size=100000, master_metrics=EQ, slave_metrics=EQ,
                      sl_distance_price=None, slave_spec=S)
    assert sized.volume == pytest.approx(1.0) and sized.conversion is None and sized.contract_factor == 1.0


def test_cross_through_usd_when_no_direct_symbol():
    c = conv("GBP", "JPY", {"GBPUSD.c": 1.25, "USDJPY.c": 150.0})
    assert c.symbol == "GBPUSD.c*USDJPY.c" and c.rate == pytest.approx(187.5)
    c = conv("JPY", "EUR", {"EURUSD.c": 1.25, "USDJPY.c": 150.0})
    assert c.symbol == "1/USDJPY.c*1/EURUSD.c" and c.rate == pytest.approx(1 / 150 / 1.25)


def test_no_symbol_available_is_refused_with_the_reason():
    r = conversion_path("JPY", "CHF", {"EURUSD.c": ("EUR", "USD")})
    assert isinstance(r, Skip)
    assert "no conversion from JPY to CHF" in r.reason and "cross through USD" in r.reason
    assert isinstance(conversion_path("USD", "JPY", {"EURUSD.c": ("EUR", "USD")}), Skip)


def test_the_plain_pair_is_preferred_and_a_missing_price_is_not_a_rate():
    legs = conversion_path("USD", "JPY", {"USDJPY.x": ("USD", "JPY"), "USDJPY": ("USD", "JPY"), "ZUSDJPYFUT": ("USD", "JPY")})
    assert legs == (Leg("USDJPY"),)
    assert conversion_rate("USD", "JPY", legs, {}) is None
    assert conversion_rate("USD", "JPY", legs, {"USDJPY": 0.0}) is None
    assert mid_price(151.1, 151.3) == pytest.approx(151.2) and mid_price(0, 0) is None


def test_money_ratio_records_what_it_used():
    c = Conversion("JPY", "USD", 1 / 151.2, (Leg("USDJPY.c", True),))
    assert money_ratio("balance", usd(100_000), usd(15_120_000, currency="JPY"), c) == pytest.approx(1.0)
    sized = size_copy(1.0, SizingConfig("balance_ratio"), master_contract_size=100000, master_metrics=usd(100_000),
                      slave_metrics=usd(15_120_000, currency="JPY"), sl_distance_price=None, slave_spec=S, conversion=c)
    assert sized.conversion == c and sized.ratio == pytest.approx(1.0)


# exposure in units is preserved, up to one volume step of the follower (never more)
@settings(max_examples=300, deadline=None)
@given(mode=st.sampled_from(["same", "balance_ratio", "equity_ratio"]),
       master_lots=st.integers(1, 500).map(lambda n: n / 100),
       master_cs=st.sampled_from([1, 10, 100, 1000, 100000]),
       slave_cs=st.sampled_from([1, 10, 100, 1000, 100000]),
       step=st.sampled_from([0.01, 0.1, 1.0]))
def test_property_exposure_in_units_is_preserved_up_to_one_step(mode, master_lots, master_cs, slave_cs, step):
    s = replace(spec("X", vmin=step, step=step, vmax=1e9), contract_size=slave_cs)
    raw = tv(SizingConfig(mode), master_lots, mm=EQ, sm=EQ, s=s, mcs=master_cs)
    master_units = master_lots * master_cs
    assert raw * slave_cs == pytest.approx(master_units)
    vol = normalize_volume(raw, s)
    if isinstance(vol, Skip):
        assert master_units < step * slave_cs * (1 + 1e-9)  # too small to copy at all: refused, not rounded up
        return
    assert vol * slave_cs <= master_units * (1 + 1e-9)  # never more exposure than the master
    assert master_units - vol * slave_cs < step * slave_cs * (1 + 1e-9)  # less by under one step


@settings(max_examples=200, deadline=None)
@given(rate=st.floats(0.5, 300), master_bal=st.floats(1000, 1e7), lots=st.integers(1, 100).map(lambda n: n / 10))
def test_property_balance_ratio_across_currencies_equals_same_currency_at_the_rate(rate, master_bal, lots):
    # a follower holding the master's balance converted at ``rate`` copies the master's exposure exactly
    c = Conversion("JPY", "USD", 1 / rate, (Leg("USDJPY", True),))
    r = tv(SizingConfig("balance_ratio"), lots, mm=usd(master_bal), sm=usd(master_bal * rate, currency="JPY"),
           mcs=100000, conv=c)
    assert r == pytest.approx(lots)
