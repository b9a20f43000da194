"""Balance operations are capital, not profit or loss, at any time of day (issue 10, fault 1).

Deposits, withdrawals, corrections and bonuses (DEAL_TYPE_BALANCE / CORRECTION / BONUS)
shift the day's references by their amount whether the node was running when they
happened (live) or found them in the history (rebuilt). Credit (DEAL_TYPE_CREDIT) is the
broker's money: the rules measure equity without it.
"""
from dataclasses import replace

import pytest
from risk_testkit import deal, snap, srv

from copier.models import AccountMetrics
from copier.risk import Action, TrackerState, evaluate, rebuild_state, resolve_risk_config, with_balance_operations

FTMO_100K = {"profile": "ftmo_2step", "initial_balance": 100_000, "reset_tz": "server"}


def _cfg(risk=FTMO_100K):
    return resolve_risk_config(risk)


def _running(cfg, balance, *, credit=0.0):
    """A guardian that ran through the reset (00:00 server) with ``balance`` on the account."""
    m = AccountMetrics(login=7, balance=balance, equity=balance + credit, margin=0.0, margin_free=balance,
                       profit=0.0, credit=credit)
    st = evaluate(cfg, TrackerState(), m, srv(2026, 11, 19, 23, 59)).state
    return evaluate(cfg, st, m, srv(2026, 11, 20, 0, 0, 10)).state


def test_ftmo_withdrawal_of_4800_while_running_is_0_pct_used_and_no_action():
    cfg = _cfg()
    st = _running(cfg, 104_800.0)
    assert st.day_start_balance == 104_800.0 and st.reference_source == "snapshot"
    now = srv(2026, 11, 20, 14)
    withdrawal = deal(srv(2026, 11, 20, 13, 59), -4_800.0, type="BALANCE", entry=0)
    after = snap(100_000.0, at=now)
    # the bug: without the deal the withdrawal reads as 4,800 of the 5,000 limit
    blind = evaluate(cfg, st, after, now)
    assert blind.rule("daily_loss").used_pct == pytest.approx(96.0)
    assert Action.FLATTEN_AND_LOCK in blind.actions
    ev = evaluate(cfg, st, after, now, deals=[withdrawal])
    daily = ev.rule("daily_loss")
    assert daily.used_pct == 0.0 and daily.used_money == 0.0
    assert daily.reference == 100_000.0 and daily.floor_equity == 95_000.0
    assert ev.actions == () and not ev.locked
    # later evaluations with the same deals do not fold it twice
    ev2 = evaluate(cfg, ev.state, after, now + 1000, deals=[withdrawal])
    assert ev2.rule("daily_loss").used_pct == 0.0 and ev2.state.day_ops_money == -4_800.0


def test_ftmo_withdrawal_rebuilt_from_history_after_a_restart():
    cfg = _cfg()
    now = srv(2026, 11, 20, 14)
    history = [deal(srv(2026, 11, 1), 100_000.0, type="BALANCE", entry=0),
               deal(srv(2026, 11, 18, 10), 4_800.0),  # a winning trade two days ago
               deal(srv(2026, 11, 20, 13, 59), -4_800.0, type="BALANCE", entry=0)]
    st = rebuild_state(cfg, snap(100_000.0, at=now), history, now)
    ev = evaluate(cfg, st, snap(100_000.0, at=now), now)
    assert st.day_start_balance == 100_000.0 and ev.rule("daily_loss").used_pct == 0.0 and ev.actions == ()
    # and a real loss after it still counts in full: 2,500 of 5,000
    assert evaluate(cfg, st, snap(100_000.0, 97_500.0, at=now), now).rule("daily_loss").used_pct == 50.0


def test_deposit_mid_day_is_capital_not_profit():
    cfg = _cfg()
    st = _running(cfg, 100_000.0)
    now = srv(2026, 11, 20, 11)
    deposit = deal(srv(2026, 11, 20, 10), 10_000.0, type="BALANCE", entry=0)
    # equity 107,000 after the 10,000 deposit: a 3,000 loss, 60 % of 5,000 (not "+7,000")
    ev = evaluate(cfg, st, snap(110_000.0, 107_000.0, at=now), now, deals=[deposit])
    assert ev.rule("daily_loss").reference == 110_000.0
    assert ev.rule("daily_loss").used_pct == pytest.approx(60.0)


def test_deposit_funding_the_challenge_today_rebuilt_from_history():
    cfg = resolve_risk_config({"profile": "ftmo_2step", "initial_balance": 10_000, "reset_tz": "server"})
    funded = deal(srv(2026, 11, 20, 9), 10_000.0, type="BALANCE", entry=0)
    now = srv(2026, 11, 20, 15)
    st = rebuild_state(cfg, snap(10_000.0, at=now), [funded], now)
    assert st.day_start_balance == 10_000.0
    # equity 9,600 after a 400 loss: 80 % of FTMO's 500 daily limit, not "+9,600 profit"
    ev = evaluate(cfg, st, snap(10_000.0, 9_600.0, at=now), now)
    assert ev.rule("daily_loss").used_money == 400.0 and ev.rule("daily_loss").used_pct == 80.0
    assert with_balance_operations(cfg, st, [funded]) == st  # idempotent


def test_correction_is_capital():
    cfg = _cfg()
    st = _running(cfg, 100_000.0)
    now = srv(2026, 11, 20, 12)
    fix = deal(srv(2026, 11, 20, 11), -300.0, type="CORRECTION", entry=0)
    ev = evaluate(cfg, st, snap(99_700.0, at=now), now, deals=[fix])
    assert ev.rule("daily_loss").used_pct == 0.0


def test_bonus_is_capital():
    cfg = _cfg()
    st = _running(cfg, 100_000.0)
    now = srv(2026, 11, 20, 12)
    bonus = deal(srv(2026, 11, 20, 11), 1_000.0, type="DEAL_TYPE_BONUS", entry=0)
    ev = evaluate(cfg, st, snap(101_000.0, 100_000.0, at=now), now, deals=[bonus])
    assert ev.rule("daily_loss").used_pct == pytest.approx(20.0)  # 1,000 floating loss, not 0


def test_credit_given_or_taken_back_moves_nothing():
    cfg = _cfg()
    st = _running(cfg, 100_000.0, credit=2_000.0)
    now = srv(2026, 11, 20, 12)
    taken = deal(srv(2026, 11, 20, 11), -2_000.0, type="CREDIT", entry=0)
    gone = AccountMetrics(login=7, balance=100_000.0, equity=100_000.0, margin=0.0, margin_free=100_000.0,
                          profit=0.0, credit=0.0)
    ev = evaluate(cfg, st, gone, now, deals=[taken])
    assert ev.rule("daily_loss").used_pct == 0.0 and ev.actions == ()
    # credit granted mid-day is no profit either: a 1,000 floating loss stays 20 %
    given = deal(srv(2026, 11, 20, 12, 30), 5_000.0, type="CREDIT", entry=0)
    m = AccountMetrics(login=7, balance=100_000.0, equity=104_000.0, margin=0.0, margin_free=104_000.0,
                       profit=-1_000.0, credit=5_000.0)
    assert evaluate(cfg, ev.state, m, now + 3_600_000, deals=[taken, given]).rule("daily_loss").used_pct == 20.0


def test_charges_and_commissions_are_losses_not_capital():
    cfg = _cfg()
    st = _running(cfg, 100_000.0)
    now = srv(2026, 11, 20, 12)
    fee = deal(srv(2026, 11, 20, 11), -500.0, type="CHARGE", entry=0)
    ev = evaluate(cfg, st, snap(99_500.0, at=now), now, deals=[fee])
    assert ev.rule("daily_loss").used_pct == 10.0


def test_the5ers_withdrawal_shifts_the_equity_reference_too():
    cfg = resolve_risk_config({"profile": "the5ers_high_stakes", "initial_balance": 100_000})
    st = _running(cfg, 100_000.0)
    st = replace(st, day_start_equity=103_000.0)  # floating profit at the reset
    now = srv(2026, 11, 20, 12)
    out = deal(srv(2026, 11, 20, 11), -1_000.0, type="BALANCE", entry=0)
    ev = evaluate(cfg, st, snap(99_000.0, 102_000.0, at=now), now, deals=[out])
    assert ev.rule("daily_loss").reference == 102_000.0 and ev.rule("daily_loss").used_pct == 0.0


def test_fundednext_withdrawal_is_not_a_realised_loss():
    cfg = resolve_risk_config({"profile": "fundednext_stellar", "initial_balance": 100_000})
    st = _running(cfg, 106_000.0)
    now = srv(2026, 11, 20, 12)
    payout = deal(srv(2026, 11, 20, 11), -6_000.0, type="BALANCE", entry=0)
    ev = evaluate(cfg, st, snap(100_000.0, at=now), now, deals=[payout])
    assert ev.rule("daily_loss").limit_money == 5_000.0 and ev.rule("daily_loss").used_pct == 0.0


def test_operations_before_the_reset_change_nothing():
    cfg = _cfg()
    now = srv(2026, 11, 20, 15)
    old = deal(srv(2026, 11, 19, 10), 10_000.0, type="BALANCE", entry=0)
    state = rebuild_state(cfg, snap(10_000.0, at=now), [old], now)
    assert state.day_ops == () and with_balance_operations(cfg, state, [old]) == state
