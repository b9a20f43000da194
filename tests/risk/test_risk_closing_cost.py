"""The cost to close what is open (exit commission) counts in the loss the rules measure.

The user's FTMO 2-Step 10k trial: 3.1 lots open at $3 per lot and side, equity 9,505.44
at the flatten. Equity alone read 494.56 = 98.9 % of the 500 limit; the closes then
charged 9.30 more and the balance ended past the firm's line. The guardian now measures
494.56 + 9.30 = 503.86 (100.77 %), and fires at the flatten level so that the realised
loss is that level.
"""
import pytest
from risk_testkit import deal, snap, srv

from copier.risk import (
    AccountRiskState,
    ClosingCost,
    Level,
    OpenVolume,
    ProposedOpen,
    TrackerState,
    closing_cost,
    evaluate,
    pre_trade_check,
    resolve_risk_config,
    side_charge,
    symbol_exit_charges,
)
from copier.risk.deals import ENTRY_IN, ENTRY_INOUT, ENTRY_OUT

FTMO_10K = {"profile": "ftmo_2step", "initial_balance": 10_000}
T0 = srv(2026, 11, 20, 9)
NOW = srv(2026, 11, 20, 12)


def _opening(pos_id, volume, commission, symbol="EURUSD", at=T0):
    return deal(at, type="BUY", entry=ENTRY_IN, volume=volume, commission=commission, position_id=pos_id, symbol=symbol)


def _closing(pos_id, volume, commission, symbol="EURUSD", at=T0 + 60_000, profit=0.0):
    return deal(at, profit, type="SELL", entry=ENTRY_OUT, volume=volume, commission=commission, position_id=pos_id,
                symbol=symbol)


def _day_started_at_10k():
    cfg = resolve_risk_config(FTMO_10K)
    st = evaluate(cfg, TrackerState(), snap(10_000), srv(2026, 11, 20, 1, 0, 5)).state  # reset seen at 10,000
    return cfg, st


# ------------------------------------------------------------------ the estimate
def test_the_exit_commission_is_the_opening_deals_charge_per_lot_times_the_open_volume():
    # 3.0 lots (commission -9.00 on the opening deal) and 0.1 lot (-0.30): 3.1 lots x $3 = 9.30
    deals = [_opening(11, 3.0, -9.0), _opening(12, 0.1, -0.3)]
    charges = {p: side_charge(deals, p) for p in (11, 12)}
    assert charges[11].per_lot == pytest.approx(3.0) and charges[11].entry_per_lot == pytest.approx(3.0)
    assert charges[11].exit_per_lot is None
    cost = closing_cost([OpenVolume(11, "EURUSD", 3.0), OpenVolume(12, "EURUSD", 0.1)], charges)
    assert cost == ClosingCost(9.30, 2, ())


def test_a_partly_closed_position_owes_the_exit_side_only_on_what_remains():
    # opened 3 lots (-9.00), 1 lot closed already (its exit side, -3.00, is in the balance):
    # 2 lots remain and owe 6.00 - not the 9.00 of the opening deal, not 9.00 - 3.00 by luck
    deals = [_opening(21, 3.0, -9.0), _closing(21, 1.0, -3.0)]
    ch = side_charge(deals, 21)
    assert ch.entry_per_lot == pytest.approx(3.0) and ch.exit_per_lot == pytest.approx(3.0)
    assert closing_cost([OpenVolume(21, "EURUSD", 2.0)], {21: ch}).money == 6.00
    # closed 2.5 of 3 lots: 0.5 lot remains, 1.50
    deals = [_opening(22, 3.0, -9.0), _closing(22, 2.5, -7.5)]
    assert closing_cost([OpenVolume(22, "EURUSD", 0.5)], {22: side_charge(deals, 22)}).money == 1.50


def test_a_larger_exit_side_seen_on_a_partial_close_is_used():
    # 1 lot opened at $3, half closed for $2.50 (= $5 per lot on exit): 0.5 lot owes 2.50
    deals = [_opening(31, 1.0, -3.0), _closing(31, 0.5, -2.5)]
    ch = side_charge(deals, 31)
    assert ch.per_lot == pytest.approx(5.0)
    assert closing_cost([OpenVolume(31, "EURUSD", 0.5)], {31: ch}).money == 2.50


def test_netting_adds_and_a_reversal_average_the_charge_per_lot():
    # netting: 1 lot at -3.00, an add of 2 lots at -6.00 -> 3.00 per lot; 3 lots owe 9.00
    deals = [_opening(41, 1.0, -3.0), _opening(41, 2.0, -6.0, at=T0 + 1)]
    assert closing_cost([OpenVolume(41, "EURUSD", 3.0)], {41: side_charge(deals, 41)}).money == 9.00
    # a reversal (INOUT 4 lots at -12.00 on a 1-lot position): 3 lots left, 9.00
    rev = [_opening(42, 1.0, -3.0), deal(T0 + 2, type="SELL", entry=ENTRY_INOUT, volume=4.0, commission=-12.0,
                                         position_id=42, symbol="EURUSD")]
    assert closing_cost([OpenVolume(42, "EURUSD", 3.0)], {42: side_charge(rev, 42)}).money == 9.00


def test_fees_count_rebates_do_not_and_no_commission_costs_nothing():
    with_fee = [deal(T0, type="BUY", entry=ENTRY_IN, volume=2.0, commission=-4.0, fee=-1.0, position_id=51)]
    assert closing_cost([OpenVolume(51, "EURUSD", 2.0)], {51: side_charge(with_fee, 51)}).money == 5.00
    rebate = [_opening(52, 1.0, +0.5)]
    assert closing_cost([OpenVolume(52, "EURUSD", 1.0)], {52: side_charge(rebate, 52)}).money == 0.0
    free = [_opening(53, 1.0, 0.0)]
    assert closing_cost([OpenVolume(53, "EURUSD", 1.0)], {53: side_charge(free, 53)}) == ClosingCost(0.0, 1, ())


def test_a_broker_that_charges_on_exit_only_is_read_from_the_symbols_past_closes():
    # nothing on the opening deals, $7 per lot taken on exits (latest close of each symbol)
    history = [_opening(61, 1.0, 0.0), _closing(61, 1.0, -7.0), _opening(62, 1.0, 0.0, symbol="GBPUSD"),
               _closing(62, 1.0, 0.0, symbol="GBPUSD")]
    rates = symbol_exit_charges(history)
    assert rates == {"EURUSD": pytest.approx(7.0)}
    open_now = [_opening(63, 2.0, 0.0)]
    assert closing_cost([OpenVolume(63, "EURUSD", 2.0)], {63: side_charge(open_now, 63)}, rates).money == 14.00


def test_a_position_whose_deals_are_not_read_yet_is_listed_and_takes_its_symbols_charge():
    cost = closing_cost([OpenVolume(71, "EURUSD", 2.0), OpenVolume(72, "XAUUSD", 1.0)], {}, {"EURUSD": 3.0})
    assert cost.money == 6.00 and cost.unknown == (71, 72) and cost.incomplete


# ------------------------------------------------------------------ the rule
def test_the_users_trial_reads_100_77_pct_with_the_exit_commission_and_flattens():
    cfg, st = _day_started_at_10k()
    ev = evaluate(cfg, st, snap(10_000.0 - 9.30, 9_505.44), NOW, closing_cost=9.30)
    rv = ev.rule("daily_loss")
    assert rv.used_money == pytest.approx(503.86) and rv.used_pct == pytest.approx(100.772)
    assert rv.closing_cost == 9.30 and rv.headroom_money == pytest.approx(-3.86)
    assert rv.floor_equity == 9_500.0  # the firm's line on equity does not move
    assert rv.level == Level.FLATTEN and ev.locked
    assert ev.state.lock.reason == ("flatten level reached: daily_loss 100.8% "
                                    "(used includes 9.30 estimated closing cost)")
    # equity alone read 494.56 = 98.9 %
    assert evaluate(cfg, st, snap(10_000.0 - 9.30, 9_505.44), NOW).rule("daily_loss").used_pct == pytest.approx(98.912)


def test_the_flatten_level_is_reached_where_the_realised_loss_would_be_95_pct():
    # 3.1 lots, 9.30 to close: equity 9,534.30 reads (465.70 + 9.30) / 500 = 95.00 % -> flatten;
    # closed there (no slippage) the balance ends at 9,525.00 = a realised 475.00 = 95 %
    cfg, st = _day_started_at_10k()
    at = evaluate(cfg, st, snap(9_990.70, 9_534.30), NOW, closing_cost=9.30).rule("daily_loss")
    assert at.used_money == pytest.approx(475.00) and at.level == Level.FLATTEN
    above = evaluate(cfg, st, snap(9_990.70, 9_534.31), NOW, closing_cost=9.30).rule("daily_loss")
    assert above.level == Level.PAUSE
    # without the cost the same equity read 93.14 %: the flatten would come 9.30 later, at 96.86 % realised
    assert evaluate(cfg, st, snap(9_990.70, 9_534.30), NOW).rule("daily_loss").used_pct == pytest.approx(93.14)


def test_the_entry_commission_in_the_equity_is_not_counted_twice():
    # 3 lots opened flat: the entry side (-9.00) is in the balance and the equity already;
    # used = 9.00 paid + 9.00 owed = 18.00, the round turn, not 27.00
    cfg, st = _day_started_at_10k()
    rv = evaluate(cfg, st, snap(9_991.0, 9_991.0), NOW, closing_cost=9.0).rule("daily_loss")
    assert rv.used_money == pytest.approx(18.0) and rv.used_pct == pytest.approx(3.6)


def test_the_overall_rule_counts_it_too():
    cfg, st = _day_started_at_10k()
    rv = evaluate(cfg, st, snap(9_100.0, 9_050.0), NOW, closing_cost=10.0).rule("overall_loss")
    assert rv.used_money == pytest.approx(960.0) and rv.closing_cost == 10.0 and rv.used_pct == pytest.approx(96.0)


def test_the_pre_trade_check_counts_the_closing_cost_in_what_is_used():
    cfg, st = _day_started_at_10k()
    # used on equity 400.00; an SL 20 points away on 1 lot risks 20.00: 420 = 84 % < 85 % pause
    proposed = ProposedOpen("EURUSD", "BUY", 1.0, 1.10000, 1.09980, 0.00001, 1.0)
    free = AccountRiskState(cfg, st, snap(9_700.0, 9_600.0), NOW)
    assert pre_trade_check(free, proposed).allowed
    # with 9.30 to close what is open: 429.30 = 85.9 % -> refused
    costly = AccountRiskState(cfg, st, snap(9_700.0, 9_600.0), NOW, closing_cost=9.30)
    d = pre_trade_check(costly, proposed)
    assert not d.allowed and "daily_loss after SL hit would be 429.30 = 85.9% of 500.00" in d.reason
