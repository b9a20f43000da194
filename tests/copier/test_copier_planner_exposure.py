"""The planner sizes new copies in exposure (invariant 7): master contract size and the
deposit-currency conversion reach sizing, and what was used is carried on the action."""
from __future__ import annotations

from dataclasses import replace

import pytest
from copier_testkit import MASTER, cfg, context, mpos, quote, spec, view

from copier.actions import Open, PlacePending, RecordSkip
from copier.currency import Conversion, Leg, conversion_path
from copier.models import AccountMetrics, PendingOrder
from copier.planner import plan

DJ30 = replace(spec("DJ30", digits=2, vmin=0.1, step=0.1, vmax=200), contract_size=1)
USDJPY = spec("USDJPY.c", digits=3, vmax=50)


def metrics(balance, currency="USD"):
    return AccountMetrics(login=1, balance=balance, equity=balance, margin=0, margin_free=0, profit=0, currency=currency)


def us30_ctx(mode="balance_ratio", contract_size=10.0, **kw):
    m = mpos(1, symbol="US30", volume=1.0, price=42500.0, contract_size=contract_size)
    return context(cfg(sizing=mode, symbol_map={"US30": "DJ30"}, slippage_tolerance=100000),
                   masters={MASTER: view([m], metrics=metrics(100_000))}, specs={"DJ30": DJ30},
                   quotes={"DJ30": quote(42500.0, 2.5)}, slave_metrics=metrics(100_000), available={"DJ30"}, **kw)


def test_fault1_us30_contract_10_copied_to_dj30_contract_1_as_ten_lots():
    (o,) = plan(us30_ctx())
    assert isinstance(o, Open) and o.symbol == "DJ30"
    assert o.volume == 10.0
    assert (o.master_contract_size, o.contract_factor, o.fx_symbol, o.fx_rate) == (10.0, 10.0, "", 0.0)


@pytest.mark.parametrize("mode", ["same", "equity_ratio"])
def test_us30_to_dj30_siblings(mode):
    (o,) = plan(us30_ctx(mode))
    assert o.volume == 10.0


def test_fixed_lot_is_not_scaled():
    (o,) = plan(us30_ctx({"mode": "fixed", "lot": 0.3}))
    assert o.volume == 0.3 and o.contract_factor == 0.0


def test_unknown_master_contract_size_waits_and_never_copies_raw_lots():
    assert plan(us30_ctx(contract_size=0.0)) == []


def jpy_ctx(conversions, *, mode="balance_ratio"):
    m = mpos(5, symbol="USDJPY", volume=1.0, price=151.2, contract_size=100000)
    ctx = context(cfg(sizing=mode, slippage_tolerance=1000), masters={MASTER: view([m], metrics=metrics(100_000))},
                  specs={"USDJPY.c": USDJPY}, quotes={"USDJPY.c": quote(151.2, 0.004)},
                  slave_metrics=metrics(15_120_000, "JPY"))
    return replace(ctx, conversions=conversions)


def test_fault2_usd_master_jpy_follower_opens_one_lot_and_records_the_conversion():
    c = Conversion("JPY", "USD", 1 / 151.2, (Leg("USDJPY.c", True),))
    (o,) = plan(jpy_ctx({"USD": c}))
    assert isinstance(o, Open) and o.volume == 1.0  # not 50 (the symbol maximum)
    assert o.fx_symbol == "1/USDJPY.c" and o.fx_rate == pytest.approx(1 / 151.2)


def test_fault2_without_a_conversion_symbol_the_copy_is_refused_with_the_reason():
    refused = conversion_path("JPY", "USD", {"EURUSD.c": ("EUR", "USD")})
    (s,) = plan(jpy_ctx({"USD": refused}))
    assert isinstance(s, RecordSkip) and s.status == "SKIPPED"
    assert "no conversion from JPY to USD" in s.reason


def test_rate_not_known_yet_waits():
    assert plan(jpy_ctx({})) == []


def test_same_currency_needs_no_rate():
    ctx = replace(jpy_ctx({}), slave_metrics=metrics(100_000))
    (o,) = plan(ctx)
    assert o.volume == 1.0 and o.fx_symbol == ""


def test_pending_order_is_sized_in_exposure_too():
    order = PendingOrder(ticket=9, symbol="US30", type="BUY_LIMIT", volume=0.5, price_open=42000.0, contract_size=10)
    ctx = context(cfg(sizing="same", symbol_map={"US30": "DJ30"}, copy_pending=True),
                  masters={MASTER: view([], [order], metrics=metrics(100_000))}, specs={"DJ30": DJ30},
                  quotes={"DJ30": quote(42500.0, 2.5)}, slave_metrics=metrics(100_000), available={"DJ30"})
    (p,) = plan(ctx)
    assert isinstance(p, PlacePending) and p.volume == 5.0 and p.contract_factor == 10.0
