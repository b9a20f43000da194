import pytest

from copier.decisions import Skip
from copier.models import AccountMetrics
from copier.sizing import SizingConfig, floor_to_step, normalize_volume, target_volume
from copier_testkit import spec

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
