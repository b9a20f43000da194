import pytest
from copier_testkit import mpos, spec

from copier.models import PendingOrder, Quote
from copier.slippage import slippage_points, within_tolerance
from copier.sltp import enforce_stops, level_valid, translate_sltp

S = spec()  # 5 digits, point 0.00001
Q = Quote(bid=1.10000, ask=1.10020)


def test_slippage_uses_ask_for_buy_and_bid_for_sell():
    assert slippage_points("BUY", Q, 1.10000, S.point) == pytest.approx(20)
    assert slippage_points("SELL", Q, 1.10000, S.point) == pytest.approx(0)
    assert slippage_points("SELL", Q, 1.10050, S.point) == pytest.approx(50)


def test_within_tolerance_is_inclusive():
    assert within_tolerance("BUY", Q, 1.10000, S.point, 20)
    assert not within_tolerance("BUY", Q, 1.10000, S.point, 19)
    assert not within_tolerance("BUY", Q, 1.10000, S.point, 0)
    with pytest.raises(ValueError):
        slippage_points("BUY", Q, 1.1, 0)


def tr(master, side="BUY", entry=1.10020, mode="absolute", reverse=False, quote=Q, s=S):
    return translate_sltp(master, slave_side=side, slave_entry_price=entry, slave_spec=s, quote=quote, mode=mode, reverse=reverse)


def test_absolute_keeps_levels_rounded_to_slave_digits():
    m = mpos(1, price=1.10010, sl=1.0950049, tp=1.1100)
    assert tr(m) == (1.09500, 1.11)
    assert tr(m, s=spec(digits=3)) == (1.095, 1.11)


def test_zero_stays_zero():
    assert tr(mpos(1, sl=0, tp=0)) == (0.0, 0.0)
    assert tr(mpos(1, price=1.1001, sl=1.09, tp=0), mode="distance") == (1.0901, 0.0)


def test_distance_mode_applies_master_distances_from_slave_entry():
    m = mpos(1, price=1.20000, sl=1.19500, tp=1.21000)  # other broker quotes +0.1
    assert tr(m, entry=1.10020, mode="distance") == (1.0952, 1.1102)
    sell = mpos(2, side="SELL", price=1.2, sl=1.205, tp=1.19)
    assert tr(sell, side="SELL", entry=1.1, mode="distance") == (1.105, 1.09)


def test_reverse_swaps_roles():
    m = mpos(1, price=1.1001, sl=1.0950, tp=1.1100)  # master BUY
    sl, tp = tr(m, side="SELL", entry=1.1000, reverse=True)
    assert (sl, tp) == (1.11, 1.095)  # master TP becomes the SELL copy's SL, master SL its TP
    assert tr(m, side="SELL", entry=1.1000, mode="distance", reverse=True) == (1.1099, 1.0949)


def test_stops_level_moves_sl_out_and_drops_tp():
    s = spec(stops_level=100)  # 0.00100
    m = mpos(1, sl=1.0995, tp=1.1005)  # both within 100 points of bid 1.10000
    sl, tp = tr(m, s=s)
    assert sl == pytest.approx(1.0990) and tp == 0.0
    assert level_valid("sl", sl, "BUY", Q, s)


def test_wrong_side_sl_is_moved_to_nearest_valid():
    sl, tp = enforce_stops("SELL", 1.1000, 0.0, Q, S)  # SELL SL below the ask
    assert sl == pytest.approx(1.10021) and tp == 0.0
    assert enforce_stops("BUY", 1.0990, 1.1010, Q, S) == (1.0990, 1.1010)  # valid levels untouched


def test_without_quote_no_stops_adjustment():
    assert translate_sltp(mpos(1, sl=1.0999, tp=1.1001), slave_side="BUY", slave_entry_price=1.1, slave_spec=spec(stops_level=100),
                          quote=None) == (1.0999, 1.1001)


def test_pending_orders_translate_too():
    o = PendingOrder(ticket=5, symbol="EURUSD", type="SELL_LIMIT", volume=1, price_open=1.2, sl=1.21, tp=1.18)
    assert tr(o, side="SELL", entry=1.2, quote=None) == (1.21, 1.18)
