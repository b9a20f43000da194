"""Issue 10 with real processes: a withdrawal made with ``python -m sim balance`` while the
slave runs is no daily loss, and an intraday-trailing peak survives a kill -9."""
from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from testing.harness import wait_until
from tests.integration.mt5ops import market
from tests.integration.test_integration_risk import SLAVE, _events, _fleet, _risk_info, _start

pytestmark = pytest.mark.integration
ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture
def fleet(tmp_path):
    f = _fleet(tmp_path)
    try:
        yield f
    finally:
        f.close()


def test_withdrawal_by_the_sim_cli_while_running_is_0_pct_and_no_action(fleet):
    fleet.admin.balance_operation(2001, 4_800)  # 104,800 before the node starts
    fleet.sim_account("P", "SLAVE", 2001, risk={"profile": "ftmo_2step", "initial_balance": 100_000}, **SLAVE)
    _start(fleet, "P")
    wait_until(lambda: _risk_info(fleet, "P").get("daily_reference") == 104_800.0, timeout=10, message="status")
    r = subprocess.run([sys.executable, "-m", "sim", "balance", "--endpoint", fleet.sim_endpoint, "--login", "2001",
                        "-4800"], cwd=ROOT, capture_output=True, text=True, timeout=30)
    assert r.returncode == 0, r.stderr
    wait_until(lambda: _risk_info(fleet, "P").get("balance") == 100_000.0, timeout=10, message="withdrawal seen")
    info = _risk_info(fleet, "P")
    assert info["daily_used_pct"] == 0.0 and info["daily_reference"] == 100_000.0 and info["level"] == "OK"
    assert not _events(fleet, "P", "risk_flatten_started") and not _events(fleet, "P", "risk_level")


def test_intraday_trailing_peak_survives_a_kill_9(fleet):
    risk = {"profile": "custom", "initial_balance": 50_000, "overall_limit_money": 2_000,
            "drawdown_mode": "intraday_trailing"}
    fleet.sim_account("P", "SLAVE", 2002, risk=risk, **SLAVE)
    _start(fleet, "P")
    p = fleet.terminal(2002)
    market(p, "EURUSD.c", "BUY", 1.0)  # opened by hand on the prop account
    fleet.admin.move_price("EURUSD", 120)
    peak = p.account_info().equity
    assert peak > 50_000.0
    wait_until(lambda: (fleet.store.get_flag("risk_state:P") or {}).get("state", {}).get("equity_high") == peak,
               timeout=10, message="peak stored")
    fleet.procs["P"].kill()  # SIGKILL: no shutdown code runs
    fleet.admin.move_price("EURUSD", -150)
    fleet.start_node("slave", "P")
    wait_until(lambda: len(_events(fleet, "P", "risk_started")) == 2, timeout=20, message="restarted guardian")
    wait_until(lambda: (fleet.store.get_node("P") or {}).get("pid") == fleet.procs["P"].pid and _risk_info(fleet, "P"),
               timeout=10, message="status of the new process")
    info = _risk_info(fleet, "P")
    assert info["peak_source"] == "stored" and info["equity_high"] == peak
    assert info["overall_floor_equity"] == pytest.approx(peak - 2_000.0)
