"""Invariant 6 on real processes: one account, one writer, the right account.

Each test would fail without its mechanism: without the lease a second process copies
every master open again (and the planner then closes the extra copy); without the local
lease deadline a frozen-then-resumed holder trades on; without the pulse a launcher kills
nodes that wait on a locked store.
"""
from __future__ import annotations

import json
import signal
import sqlite3
import sys
import threading
import time
from datetime import datetime

import pytest

from testing.harness import wait_until
from tests.integration.mt5ops import market, volumes

pytestmark = pytest.mark.integration
FAR_PAST, FAR_FUTURE = datetime(2000, 1, 1), datetime(2100, 1, 1)
POSIX = sys.platform != "win32"


def trade_deals(mt5) -> dict[str, int]:
    """Opening and closing deals of BUY/SELL type on one account (balance deals left out)."""
    deals = mt5.history_deals_get(FAR_PAST, FAR_FUTURE) or ()
    trades = [d for d in deals if int(d.type) in (mt5.DEAL_TYPE_BUY, mt5.DEAL_TYPE_SELL)]
    return {"in": sum(1 for d in trades if int(d.entry) == mt5.DEAL_ENTRY_IN),
            "out": sum(1 for d in trades if int(d.entry) in (mt5.DEAL_ENTRY_OUT, mt5.DEAL_ENTRY_OUT_BY))}


def lease_pid(store, account: str) -> int | None:
    lease = store.get_lease(account)
    if not lease or int(lease["expires_ms"]) <= time.time() * 1000:
        return None
    return int(lease["holder"]["pid"])


def test_second_process_for_one_account_sends_nothing_and_says_why(running):
    m, s1 = running.terminal(1001), running.terminal(2001)
    holder = running.procs["S1"]
    second = running.start_node("slave", "S1", proc_name="S1-second")
    code = second.popen.wait(timeout=20)
    out = second.output()
    assert code == 73, out[-2000:]
    assert "already traded by another process" in out and f"pid {holder.pid}" in out
    standby = running.start_node("slave", "S1", proc_name="S1-standby", args=["--standby"])
    time.sleep(1.5)
    assert standby.alive(), standby.output()[-2000:]
    for _ in range(5):
        market(m, "EURUSD", "BUY", 0.10)
    wait_until(lambda: volumes(s1) == [0.1] * 5, timeout=15, message="five copies on S1")
    time.sleep(2.0)  # several reconcile passes of both processes
    assert volumes(s1) == [0.1] * 5
    assert trade_deals(s1) == {"in": 5, "out": 0}  # one opening deal per master position, no corrective close
    assert lease_pid(running.store, "S1") == holder.pid
    assert "copy_opened" not in standby.output()


@pytest.mark.skipif(not POSIX, reason="SIGSTOP/SIGCONT freeze a process on POSIX only")
def test_frozen_holder_is_replaced_by_the_standby_and_sends_nothing_when_resumed(running):
    m, s1 = running.terminal(1001), running.terminal(2001)
    market(m, "EURUSD", "BUY", 0.10)
    wait_until(lambda: volumes(s1) == [0.1], timeout=10, message="first copy")
    holder = running.procs["S1"]
    standby = running.start_node("slave", "S1", proc_name="S1-standby", args=["--standby"])
    time.sleep(1.0)
    holder.popen.send_signal(signal.SIGSTOP)
    try:
        wait_until(lambda: lease_pid(running.store, "S1") == standby.pid, timeout=15, message="the standby takes the lease")
        market(m, "GBPUSD", "SELL", 0.20)
        market(m, "EURUSD", "BUY", 0.30)
        wait_until(lambda: sorted(volumes(s1)) == [0.1, 0.2, 0.3], timeout=15, message="the new holder copies")
    finally:
        holder.popen.send_signal(signal.SIGCONT)
    code = holder.popen.wait(timeout=20)  # resumed: it finds its lease gone and leaves (restart = standby)
    assert code == 75, holder.output()[-2000:]
    time.sleep(1.0)
    assert sorted(volumes(s1)) == [0.1, 0.2, 0.3]
    assert trade_deals(s1) == {"in": 3, "out": 0}
    events = running.store.list_events(account="S1", kind="lease_lost")
    assert events and "lost to" in events[-1]["data"]["reason"]
    lease = running.store.get_lease("S1")
    assert lease["holder"]["pid"] == standby.pid and lease["epoch"] >= 2


def test_wrong_login_gets_no_order_and_the_reason_is_shown(fleet):
    """S3's terminal is logged into 2002 although the document asks for 2003: nothing is
    traded on either account, the reason is in the status; once the terminal is on 2003
    again new master positions are copied."""
    fleet.sim_account("S3", "SLAVE", 2003, slippage_tolerance=300)
    m, s2, s3 = fleet.terminal(1001), fleet.terminal(2002), fleet.terminal(2003)  # before the fault: the test's views are right
    fleet.admin.inject_fault(2003, "wrong_login", actual=2002)
    fleet.start_node("master", "M")
    fleet.wait_node_running("M")
    fleet.start_node("slave", "S3")
    wait_until(lambda: (fleet.node_state("S3") or {}).get("state") == "WRONG_ACCOUNT", timeout=20,
               message="S3 refuses to trade the wrong account")
    market(m, "EURUSD", "BUY", 0.10)
    time.sleep(3.0)
    assert trade_deals(s2) == {"in": 0, "out": 0} and trade_deals(s3) == {"in": 0, "out": 0}
    state = fleet.node_state("S3")
    assert "login 2002 (expected 2003)" in (state.get("error") or ""), state
    assert fleet.store.list_events(account="S3", kind="wrong_account")
    fleet.admin.clear_faults(2003)
    fleet.wait_node_running("S3", timeout=30)
    wait_until(lambda: fleet.store.get_flag("follow:S3:M"), timeout=10, message="S3 follows M")
    market(m, "GBPUSD", "SELL", 0.20)  # (the first one existed before S3 followed: not copied, by design)
    wait_until(lambda: volumes(s3) == [0.2], timeout=15, message="copied once the terminal is on the right account")
    assert trade_deals(s2) == {"in": 0, "out": 0}


def test_store_write_locked_15s_kills_no_node_and_loses_nothing(fleet):
    fleet.start_launcher("H1", extra_env={"COPYHUB_STALE_AFTER_MS": "30000"})
    for name in ("M", "S1", "S2"):
        fleet.wait_node_running(name, timeout=40)
    wait_until(lambda: fleet.store.get_flag("follow:S1:M") and fleet.store.get_flag("follow:S2:M"), timeout=15,
               message="follow records")
    pids = {n: fleet.store.get_node(n)["pid"] for n in ("M", "S1", "S2")}
    m, s1, s2 = fleet.terminal(1001), fleet.terminal(2001), fleet.terminal(2002)
    locked = threading.Event()

    def hold_lock() -> None:
        conn = sqlite3.connect(fleet.db_url.removeprefix("sqlite:///"), timeout=30)
        conn.execute("BEGIN IMMEDIATE")  # the write lock: every writer waits
        locked.set()
        time.sleep(15)
        conn.rollback()
        conn.close()

    t = threading.Thread(target=hold_lock)
    t.start()
    locked.wait(10)
    for _ in range(3):
        market(m, "EURUSD", "BUY", 0.10)
        time.sleep(0.5)
    t.join()
    # S2 is a netting account: one position that grew three times
    wait_until(lambda: volumes(s1) == [0.1] * 3 and volumes(s2) == [0.3], timeout=30,
               message="copies after the lock")
    time.sleep(2.0)
    assert trade_deals(s1) == {"in": 3, "out": 0} and trade_deals(s2) == {"in": 3, "out": 0}
    for name, pid in pids.items():
        doc = fleet.store.get_node(name)
        assert doc["pid"] == pid and doc.get("restarts") == 0, (name, doc)
    launcher_log = "\n".join(p.read_text() for p in (fleet.log_dir / "H1").glob("launcher*.log"))
    assert "killing_unresponsive_node" not in launcher_log
    assert "node_blocked_on_store" in launcher_log  # it knew why the heartbeats changed


def test_two_launchers_one_store_hostless_accounts_copy_once(fleet):
    fleet.start_launcher("HA")
    fleet.start_launcher("HB")
    for name in ("M", "S1", "S2"):
        fleet.wait_node_running(name, timeout=40)
    wait_until(lambda: fleet.store.get_flag("follow:S1:M") and fleet.store.get_flag("follow:S2:M"), timeout=20,
               message="follow records")
    m, s1, s2 = fleet.terminal(1001), fleet.terminal(2001), fleet.terminal(2002)
    for _ in range(5):
        market(m, "EURUSD", "BUY", 0.10)
    wait_until(lambda: volumes(s1) == [0.1] * 5 and volumes(s2) == [0.5], timeout=20, message="copies (S2 nets)")
    time.sleep(2.0)
    assert trade_deals(s1) == {"in": 5, "out": 0} and trade_deals(s2) == {"in": 5, "out": 0}
    hosts = {n: fleet.store.get_lease(n)["holder"]["host"] for n in ("M", "S1", "S2")}
    assert set(hosts.values()) <= {"HA", "HB"}
    rows = {r["name"]: r for r in _cli_status(fleet)["nodes"]}
    for name, host in hosts.items():
        assert rows[name]["host"] == host


def _cli_status(fleet) -> dict:
    import subprocess

    out = subprocess.run([sys.executable, "cli.py", "status", "--json", "--db", fleet.db_url], capture_output=True,
                         text=True, timeout=30, cwd=str(fleet_root()))
    assert out.returncode == 0, out.stderr
    return json.loads(out.stdout)


def fleet_root():
    from pathlib import Path

    return Path(__file__).resolve().parents[2]
