"""Balance operations on the simulator while the guardian runs (issue 10, fault 1): a
withdrawal, a deposit, a credit, a correction are capital, never a daily loss."""
from __future__ import annotations

from datetime import datetime, timezone

import pytest

from monitoring.guardian import state_key
from tests.monitoring.monitor_kit import Events, market

FTMO_100K = {"profile": "ftmo_2step", "initial_balance": 100_000}


def _utc(*a):
    return datetime(*a, tzinfo=timezone.utc)


def _across_the_reset(env, events=None):
    """Login 2001 (100k) with 104,800 on the balance at FTMO's midnight Prague, the guardian
    running through it; returns (guardian, terminal)."""
    env.sim.set_time(_utc(2025, 1, 7, 10))
    env.sim.balance_operation(2001, 4_800)  # yesterday's gains, say
    mt5 = env.terminal(2001)
    g = env.guardian(FTMO_100K, login=2001, mt5=mt5, events=events)
    env.sim.set_time(_utc(2025, 1, 7, 23, 0, 30))  # 00:00:30 Prague
    g.tick(env.clock.step())
    info = g.status_info()
    assert info["day"] == "2025-01-08" and info["day_start_balance"] == 104_800.0
    assert info["reference_source"] == "snapshot"
    env.sim.set_time(_utc(2025, 1, 8, 13))
    return g, mt5


def test_ftmo_100k_withdrawal_of_4800_is_0_pct_used_and_no_action(env):
    events = Events()
    g, mt5 = _across_the_reset(env, events)
    g.tick(env.clock.step())
    env.sim.balance_operation(2001, -4_800)  # the payout
    g.tick(env.clock.step())
    info = g.status_info()
    assert mt5.account_info().balance == 100_000.0
    assert info["daily_used_pct"] == 0.0 and info["daily_reference"] == 100_000.0
    assert info["level"] == "OK" and not info["locked"] and not info["blocks_opens"]
    assert "risk_flatten_started" not in events.kinds() and "risk_level" not in events.kinds()
    # and a restart rebuilds the same figure from the history
    env.store.delete_flag(state_key("A"))
    again = env.guardian(FTMO_100K, login=2001)
    assert again.status_info()["daily_used_pct"] == 0.0
    assert again.status_info()["reference_source"] == "rebuilt"


def test_a_real_loss_after_the_withdrawal_still_counts(env):
    g, mt5 = _across_the_reset(env)
    env.sim.balance_operation(2001, -4_800)
    market(mt5, "EURUSD.c", "BUY", 10.0)
    env.sim.move_price("EURUSD.c", -200, broker="SimProp-Server")  # about -2,000 floating
    g.tick(env.clock.step())
    info = g.status_info()
    # used counts the exit commission owed on what is open: 10 lots x $3 per lot and side
    assert info["closing_cost"] == 30.0
    expected = (100_000.0 - mt5.account_info().equity + 30.0) / 5_000.0 * 100.0
    assert info["daily_used_pct"] == pytest.approx(expected, abs=0.01) and 35.0 < expected < 50.0


@pytest.mark.parametrize("kind, amount", [("balance", 20_000.0), ("credit", 3_000.0), ("correction", -250.0),
                                          ("bonus", 500.0)])
def test_deposit_credit_correction_bonus_move_no_daily_figure(env, kind, amount):
    g, mt5 = _across_the_reset(env)
    market(mt5, "EURUSD.c", "BUY", 1.0)
    g.tick(env.clock.step())
    before = g.status_info()["daily_used_pct"]
    env.sim.balance_operation(2001, amount, kind=kind)
    g.tick(env.clock.step())
    assert g.status_info()["daily_used_pct"] == pytest.approx(before, abs=1e-9)


def test_credit_taken_back_is_no_loss(env):
    env.sim.set_time(_utc(2025, 1, 7, 10))
    env.sim.balance_operation(2001, 2_000, kind="credit")
    mt5 = env.terminal(2001)
    g = env.guardian(FTMO_100K, login=2001, mt5=mt5)
    env.sim.set_time(_utc(2025, 1, 7, 23, 0, 30))
    g.tick(env.clock.step())
    env.sim.set_time(_utc(2025, 1, 8, 9))
    env.sim.balance_operation(2001, -2_000, kind="credit")
    g.tick(env.clock.step())
    info = g.status_info()
    assert mt5.account_info().equity == 100_000.0 and info["daily_used_pct"] == 0.0 and info["level"] == "OK"
