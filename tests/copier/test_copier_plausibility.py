"""copier/plausibility.py: each rule with right values (issue 15)."""
from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from copier.models import AccountMetrics, PendingOrder, Position, Quote, SymbolSpec
from copier.plausibility import (
    EQUITY,
    FUTURE,
    IDENTITY,
    PRICE,
    VOLUME_CAP,
    VOLUME_MAX,
    Limits,
    Market,
    check_equity,
    check_identity,
    check_order,
    check_position,
    check_price,
    check_time,
    check_update,
    check_volume,
    position_value,
)

# EURUSD at a USD broker: 5 digits, 100 000 per lot, volume_max 50, tick value 1 USD per 0.00001 per lot
EURUSD = SymbolSpec(name="EURUSD.c", digits=5, point=0.00001, tick_size=0.00001, tick_value=1.0, contract_size=100_000,
                    volume_min=0.01, volume_step=0.01, volume_max=50.0)
# USDJPY for a USD account: 3 digits, tick value ≈ 0.001 × 100 000 / 150 = 0.6667 USD
USDJPY = SymbolSpec(name="USDJPY", digits=3, point=0.001, tick_size=0.001, tick_value=100 / 150, contract_size=100_000,
                    volume_min=0.01, volume_step=0.01, volume_max=100.0)
MKT = Market(spec=EURUSD, quote=Quote(bid=1.08000, ask=1.08002))
L = Limits()
MASTER = AccountMetrics(login=1, balance=10_000, equity=10_000, margin=0, margin_free=10_000, profit=0, currency="USD", leverage=100)


def p(ident=1, volume=0.1, price=1.08, symbol="EURUSD", side="BUY", ticket=None, contract_size=100_000.0, current=None):
    return Position(ticket=ticket or ident, identifier=ident, symbol=symbol, side=side, volume=volume, price_open=price,
                    price_current=price if current is None else current, contract_size=contract_size)


def test_limits_refuse_non_positive_values():
    with pytest.raises(ValueError, match="max_lots"):
        Limits(max_lots=0)
    with pytest.raises(ValueError, match="price_deviation"):
        Limits(price_deviation=-0.1)


def test_volume_cap_is_the_hard_limit_in_lots():
    assert check_volume(1000.0, 100_000, key=1, symbol="EURUSD", market=Market(), limits=L) is None
    r = check_volume(1000.01, 100_000, key=7, symbol="EURUSD", market=Market(), limits=L)
    assert (r.rule, r.field, r.key, r.value, r.limit, r.unit) == (VOLUME_CAP, "volume", 7, 1000.01, 1000.0, "lots")
    assert check_volume(6.0, 1, key=1, symbol="X", market=Market(), limits=Limits(max_lots=5)).rule == VOLUME_CAP


def test_volume_max_compares_units_with_factor_times_the_followers_largest_order():
    # 50 lots × 100 000 × 10 = 50 000 000 units
    assert check_volume(500.0, 100_000, key=1, symbol="EURUSD", market=MKT, limits=L) is None
    r = check_volume(500.01, 100_000, key=1, symbol="EURUSD", market=MKT, limits=L)
    assert r.rule == VOLUME_MAX and r.value == pytest.approx(50_001_000) and r.limit == 50_000_000 and r.unit == "units"
    # a master lot of 1 000 units (a micro-lot broker): 40 000 lots are only 40 000 000 units
    assert check_volume(900.0, 1_000, key=1, symbol="EURUSD", market=MKT, limits=Limits(max_lots=50_000)) is None
    # contract size unknown (0): the follower's own is used
    assert check_volume(600.0, 0, key=1, symbol="EURUSD", market=MKT, limits=L).rule == VOLUME_MAX


def test_position_value_is_in_the_followers_deposit_currency():
    assert position_value(100_000, 1.08, EURUSD) == pytest.approx(108_000)  # 1 lot EURUSD = 108 000 USD
    assert position_value(100_000, 150.0, USDJPY) == pytest.approx(100_000)  # 1 lot USDJPY = 100 000 USD
    assert position_value(1, 1.0, SymbolSpec("X", 2, 0.01, 0.0, 0.0, 1, 0.01, 0.01, 1)) is None


def test_equity_rule_one_position_beyond_equity_times_leverage_times_factor():
    # 10 000 USD × 100 × 10 = 10 000 000 USD: 92 lots EURUSD at 1.08001 = 9 936 092 USD pass, 93 lots do not
    assert check_equity(92, 100_000, 1.08, key=1, symbol="EURUSD", market=MKT, metrics=MASTER, equity_rate=1.0, limits=L) is None
    r = check_equity(93, 100_000, 1.08, key=1, symbol="EURUSD", market=MKT, metrics=MASTER, equity_rate=1.0, limits=L)
    assert r.rule == EQUITY and r.value == pytest.approx(93 * 100_000 * 1.08001) and r.limit == pytest.approx(10_000_000)
    # a EUR master (1 EUR = 1.08 USD) may hold 8 % more
    assert check_equity(93, 100_000, 1.08, key=1, symbol="EURUSD", market=MKT, metrics=MASTER, equity_rate=1.08, limits=L) is None
    # skipped without what it needs: no rate, no metrics, no spec, equity <= 0
    for kw in ({"equity_rate": None}, {"metrics": None}, {"market": Market(quote=MKT.quote)},
               {"metrics": AccountMetrics(1, 0, -5, 0, 0, 0)}):
        args = {"market": MKT, "metrics": MASTER, "equity_rate": 1.0, **kw}
        assert check_equity(10_000, 100_000, 1.08, key=1, symbol="EURUSD", limits=L, **args) is None


def test_price_rule_tolerance_is_a_fraction_of_the_market_with_a_floor_in_points():
    mid = 1.08001
    assert check_price(mid * 1.05, "price_open", key=1, symbol="EURUSD", market=MKT, deviation=0.05, limits=L) is None
    r = check_price(mid * 1.0501, "price_open", key=1, symbol="EURUSD", market=MKT, deviation=0.05, limits=L)
    assert r.rule == PRICE and r.field == "price_open" and r.unit == "points"
    assert r.limit == round(0.05 * mid / 0.00001) and r.value == round(0.0501 * mid / 0.00001)
    # the floor: 100 points of a symbol where 1 % would be fewer
    cheap = Market(spec=EURUSD, quote=Quote(bid=0.0010, ask=0.0010))
    assert check_price(0.0010 + 99 * 0.00001, "price_current", key=1, symbol="X", market=cheap, deviation=0.01, limits=L) is None
    assert check_price(0.0010 + 101 * 0.00001, "price_current", key=1, symbol="X", market=cheap, deviation=0.01, limits=L).rule == PRICE
    # nothing to compare with, or no price: no judgement
    assert check_price(99.0, "price_open", key=1, symbol="X", market=Market(spec=EURUSD), deviation=0.05, limits=L) is None
    assert check_price(0.0, "price_current", key=1, symbol="X", market=MKT, deviation=0.05, limits=L) is None


def test_time_rule_refuses_messages_from_the_future_only():
    assert check_time(1_060_000, 1_000_000, L) is None
    r = check_time(1_060_001, 1_000_000, L)
    assert (r.rule, r.field, r.value, r.limit) == (FUTURE, "ts_ms", 60_001, 60_000)
    assert check_time(0, 10**12, L) is None  # old is not the time rule's business (the sequence is)


def test_identity_rule_a_known_identifier_keeps_its_symbol_and_side_under_one_ticket():
    known = p(5, side="BUY", ticket=5)
    assert check_identity(None, p(5)) is None
    assert check_identity(known, p(5, volume=0.3)) is None
    assert check_identity(known, p(5, symbol="GBPUSD")).field == "symbol"
    r = check_identity(known, p(5, side="SELL", ticket=5))
    assert (r.rule, r.field, r.value, r.limit) == (IDENTITY, "side", "SELL", "BUY")
    assert check_identity(known, p(5, side="SELL", ticket=9)) is None  # a netting reversal: new ticket, same identifier


def test_position_open_price_is_checked_only_for_new_opens():
    old = p(1, price=1.02, current=1.08)  # opened long ago at 1.02, now 1.08: believable
    kw = {"known": None, "market": MKT, "metrics": MASTER, "equity_rate": 1.0, "limits": L}
    assert check_position(old, new_open=False, **kw) is None
    assert check_position(old, new_open=True, **kw).field == "price_open"
    assert check_position(p(1, current=2.0), new_open=False, **kw).field == "price_current"


def test_orders_allow_far_prices_but_not_absurd_ones():
    o = PendingOrder(ticket=3, symbol="EURUSD", type="BUY_LIMIT", volume=0.1, price_open=0.6, contract_size=100_000)
    assert check_order(o, market=MKT, limits=L) is None  # 44 % below: a far limit, still a price of this market
    assert check_order(PendingOrder(3, "EURUSD", "BUY_LIMIT", 0.1, 0.5), market=MKT, limits=L).rule == PRICE
    assert check_order(PendingOrder(3, "EURUSD", "BUY_LIMIT", 5000.0, 1.07), market=MKT, limits=L).rule == VOLUME_CAP


def test_check_update_lists_every_broken_rule_of_a_message():
    msgs = check_update(ts_ms=10**9, now_ms=1, positions=[p(1), p(2, volume=10**6), p(3, current=3.0)],
                        orders=[PendingOrder(4, "EURUSD", "BUY_LIMIT", 2000.0, 1.0)], known={}, is_delta=True,
                        markets={"EURUSD": MKT}, metrics=MASTER, equity_rate=1.0, limits=L)
    assert [(r.rule, r.key) for r in msgs] == [(FUTURE, 0), (VOLUME_CAP, 2), (PRICE, 3), (VOLUME_CAP, 4)]
    assert check_update(ts_ms=1, now_ms=1, positions=[p(1)], orders=[], known={}, is_delta=True, markets={},
                        metrics=None, equity_rate=None, limits=L) == []  # unknown symbol: only the cap applies


@settings(max_examples=200, deadline=None)
@given(volume=st.floats(0.01, 2000.0), price_factor=st.floats(0.5, 1.5), cap=st.integers(1, 1000))
def test_a_position_is_refused_exactly_when_a_rule_says_so(volume, price_factor, cap):
    limits = Limits(max_lots=cap)
    pos = p(1, volume=volume, price=1.08001 * price_factor)
    r = check_position(pos, known=None, new_open=True, market=MKT, metrics=None, equity_rate=None, limits=limits)
    too_big = volume > cap or volume * 100_000 > 50 * 100_000 * 10
    too_far = abs(1.08001 * price_factor - 1.08001) > 0.05 * 1.08001
    assert (r is not None) == (too_big or too_far)
    if r is not None:
        assert r.rule == (VOLUME_CAP if volume > cap else VOLUME_MAX if too_big else PRICE)
        assert r.describe().startswith("EURUSD #1 ")
