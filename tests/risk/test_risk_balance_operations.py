"""A deposit is capital, not profit: a challenge funded today keeps a real daily reference."""
from risk_testkit import deal, snap, srv

from copier.risk import evaluate, rebuild_state, resolve_risk_config, with_balance_operations


def _cfg():
    return resolve_risk_config({"profile": "ftmo_2step", "initial_balance": 10_000, "reset_tz": "server"})


def test_deposit_after_the_reset_becomes_part_of_the_day_start():
    cfg = _cfg()
    funded = deal(srv(2026, 11, 20, 9), 10_000.0, type="BALANCE", entry=0)
    now = srv(2026, 11, 20, 15)
    raw = rebuild_state(cfg, snap(10_000.0, at=now), [funded], now)
    assert raw.day_start_balance == 0.0  # the deposit looked like today's profit
    fixed = with_balance_operations(cfg, raw, [funded])
    assert fixed.day_start_balance == 10_000.0
    # equity 9,600 after a 400 loss: 80 % of FTMO's 500 daily limit is used, not "+9,600 profit"
    ev = evaluate(cfg, fixed, snap(10_000.0, 9_600.0, at=now), now)
    assert ev.rule("daily_loss").used_money == 400.0 and ev.rule("daily_loss").used_pct == 80.0


def test_withdrawal_lowers_the_reference_instead_of_counting_as_a_loss():
    cfg = _cfg()
    now = srv(2026, 11, 20, 15)
    withdrawal = deal(srv(2026, 11, 20, 10), -1_000.0, type="BALANCE", entry=0)
    state = with_balance_operations(cfg, rebuild_state(cfg, snap(9_000.0, at=now), [withdrawal], now), [withdrawal])
    assert state.day_start_balance == 9_000.0


def test_operations_before_the_reset_change_nothing():
    cfg = _cfg()
    now = srv(2026, 11, 20, 15)
    old = deal(srv(2026, 11, 19, 10), 10_000.0, type="BALANCE", entry=0)
    state = rebuild_state(cfg, snap(10_000.0, at=now), [old], now)
    assert with_balance_operations(cfg, state, [old]) == state
