"""Deposits and withdrawals on the simulator: balance deals, as MT5 records them
(`python -m sim balance --login N AMOUNT`, admin ``balance_operation``)."""
from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from sim import Simulator
from sim.client import SimUnavailable, connect, wait_until_up
from tests.sim_server.test_simrpc_cli import free_port

ROOT = Path(__file__).resolve().parents[2]
pytestmark = pytest.mark.timeout(60)


def test_in_process_deposit_withdrawal_credit_and_refusals():
    sim = Simulator.demo(seed=0)
    t = sim.terminal()
    assert t.initialize(login=2004)
    out = sim.balance_operation(2004, -1_500)
    assert out["balance"] == 8_500.0 and out["kind"] == "balance"
    deal = t.history_deals_get(0, 2**31 - 1)[-1]
    assert deal.type == t.DEAL_TYPE_BALANCE and deal.profit == -1_500.0 and deal.symbol == "" \
        and deal.position_id == 0 and deal.entry == t.DEAL_ENTRY_IN and deal.comment == "Withdrawal"
    assert deal.ticket == out["deal"] and deal.time_msc == out["time_msc"]
    assert t.account_info().balance == 8_500.0
    sim.balance_operation(2004, 250, kind="credit")
    info = t.account_info()
    assert info.credit == 250.0 and info.balance == 8_500.0 and info.equity == 8_750.0
    assert t.history_deals_get(0, 2**31 - 1)[-1].type == t.DEAL_TYPE_CREDIT
    sim.balance_operation(2004, -100, kind="correction")
    assert t.history_deals_get(0, 2**31 - 1)[-1].type == t.DEAL_TYPE_CORRECTION
    with pytest.raises(ValueError, match="free margin"):
        sim.balance_operation(2004, -1_000_000)
    with pytest.raises(ValueError, match="credit"):
        sim.balance_operation(2004, -1_000, kind="credit")
    with pytest.raises(ValueError, match="unknown login"):
        sim.balance_operation(999, 10)
    with pytest.raises(ValueError, match="non-zero"):
        sim.balance_operation(2004, 0)


@pytest.fixture(scope="module")
def server():
    ep = f"tcp://127.0.0.1:{free_port()}"
    proc = subprocess.Popen([sys.executable, "-m", "sim", "serve", "--endpoint", ep, "--tick-hz", "0"], cwd=ROOT,
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    try:
        wait_until_up(ep, timeout_s=20)
    except SimUnavailable:
        proc.kill()
        raise AssertionError(proc.stderr.read()) from None
    yield ep
    proc.kill()
    proc.wait(10)


def _cli(*argv):
    return subprocess.run([sys.executable, "-m", "sim", *map(str, argv)], cwd=ROOT, capture_output=True, text=True,
                          timeout=30)


def test_cli_withdraws_as_a_balance_deal(server):
    r = _cli("balance", "--endpoint", server, "--login", 2001, "-4800", "--json")
    assert r.returncode == 0, r.stderr
    out = json.loads(r.stdout)
    assert out["amount"] == -4_800.0 and out["balance"] == 95_200.0
    mt5 = connect(server)
    assert mt5.initialize(login=2001)
    deal = mt5.history_deals_get(0, 2**31 - 1)[-1]
    assert deal.type == mt5.DEAL_TYPE_BALANCE and deal.profit == -4_800.0
    r = _cli("balance", "--endpoint", server, "--login", 2001, "1000", "--kind", "bonus")
    assert r.returncode == 0 and "bonus" in r.stdout and "96200.00" in r.stdout
    r = _cli("balance", "--endpoint", server, "--login", 2001, "-99999999")
    assert r.returncode == 2 and "free margin" in r.stderr and r.stderr.count("\n") == 1
