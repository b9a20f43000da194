"""launcher.py as a real process supervising stand-in nodes (tests/fleet/fleet_fake_node.py):
restarts, flapping, liveness, reconcile, bad documents, shutdown order, no leftovers."""
from __future__ import annotations

import json
import os
import signal
import time

import psutil
import pytest
from fleet_harness import alive, sim_account, wait_for

from messaging.subscriber import Subscriber

pytestmark = pytest.mark.integration




def test_kill9_restart_hang_exit75_stats_and_sigterm_leaves_nothing(run_launcher):
    run = run_launcher([sim_account("M1", "MASTER", 1001), sim_account("S1"), sim_account("S2", login=2002)])
    for name in ("M1", "S1", "S2"):
        run.wait_state(name, "RUNNING")
    # masters first: S1 started only after M1's first heartbeat
    m_start = run.fake_events("M1")[0]["t"]
    assert run.fake_events("S1")[0]["t"] > m_start

    # kill -9 a slave: back within its backoff, counted as a restart
    old = run.pid_of("S1")
    psutil.Process(old).kill()
    doc = wait_for(lambda: (d := run.node("S1")).get("proc_pid") not in (None, old)
                   and d.get("supervisor_state") == "RUNNING" and d, 10, "S1 restarted")
    assert doc["restarts"] == 1 and doc["last_exit_code"] == -signal.SIGKILL

    # a hung node (no heartbeat, ignores SIGTERM) is killed and restarted
    hung = run.pid_of("S2")
    run.command("S2", "hang")
    wait_for(lambda: run.pid_of("S2") not in (None, hung), 15, "S2 replaced after hanging")
    assert not alive(psutil.Process(hung)) if psutil.pid_exists(hung) else True
    events = run.store.list_events(kind="node_unresponsive", account="S2")
    assert events and "no heartbeat" in events[-1]["data"]["message"]

    # exit 75: restarted at once, not a crash
    before = run.pid_of("M1")
    run.command("M1", "exit75")
    doc = wait_for(lambda: (d := run.node("M1")).get("proc_pid") not in (None, before) and d, 10, "M1 restarted")
    assert doc["last_exit_code"] == 75
    assert not run.store.list_events(kind="node_crashed", account="M1")

    # stats every interval: store and bus
    wait_for(lambda: run.node("S1").get("rss_bytes"), 5, "S1 stats")
    doc = run.node("S1")
    assert doc["cpu_percent"] is not None and doc["uptime_s"] >= 0 and doc["role"] == "slave"
    with Subscriber(run.bus_sub, ["status.launcher"]) as sub:
        msg = sub.recv(5000)
    assert msg is not None and msg.role == "launcher" and {"M1", "S1", "S2"} <= set(msg.info["nodes"])
    assert msg.info["nodes"]["S1"]["supervisor_state"] in ("RUNNING", "STARTING")

    # SIGTERM: exit 0, slaves stopped before the master, nothing left (every node up first:
    # a node signalled before it installed its handlers dies without its "stop" record)
    for name in ("M1", "S1", "S2"):
        run.wait_state(name, "RUNNING")
    run.track()
    assert run.terminate() == 0
    last_slave_stop = max(e["t"] for n in ("S1", "S2") for e in run.fake_events(n) if e["ev"] == "stop")
    master_stop = [e["t"] for e in run.fake_events("M1") if e["ev"] == "stop"][-1]
    assert last_slave_stop <= master_stop
    assert run.leftovers() == []
    assert len(run.seen) >= 6  # proxy + 3 nodes + restarted ones were all tracked
    assert run.state("S1") == "STOPPED"


def test_crash_at_start_becomes_fatal_then_reset_or_account_edit_revives(run_launcher):
    run = run_launcher([sim_account("M1", "MASTER", 1001), sim_account("S1"), sim_account("S2", login=2002)],
                       modes={"S1": "crash", "S2": "crash"})
    doc = run.wait_state("S1", "FATAL", timeout=20)
    assert "flapping" in doc["supervisor_reason"]
    assert len(run.fake_events("S1")) == 2 * 5  # five starts, five exits: then no more
    fatal = run.store.list_events(kind="node_fatal", account="S1")
    assert fatal and fatal[-1]["level"] == "critical"
    run.wait_state("S2", "FATAL", timeout=20)
    assert run.state("M1") == "RUNNING"  # the rest runs on
    time.sleep(1.0)
    assert len(run.fake_events("S1")) == 10  # stays FATAL

    run.set_mode("S1", "normal")
    res = run.cli("reset", "S1")
    assert res.returncode == 0, res.stderr
    run.wait_state("S1", "RUNNING")
    assert run.store.get_flag("reset:S1") is None  # consumed

    run.set_mode("S2", "normal")
    res = run.cli("accounts", "set", "S2", "slippage_tolerance=20")
    assert res.returncode == 0, res.stderr
    run.wait_state("S2", "RUNNING")
    assert run.terminate() == 0 and run.leftovers() == []


def test_disable_enable_add_remove_follow_the_store(run_launcher):
    run = run_launcher([sim_account("M1", "MASTER", 1001), sim_account("S1")])
    run.wait_state("S1", "RUNNING")
    first = run.pid_of("S1")
    assert run.cli("accounts", "disable", "S1").returncode == 0
    run.wait_state("S1", "STOPPED")
    assert not psutil.pid_exists(first) or not alive(psutil.Process(first))
    assert [e["ev"] for e in run.fake_events("S1")][-1] == "stop"  # graceful, not killed
    assert run.cli("accounts", "enable", "S1").returncode == 0
    run.wait_state("S1", "RUNNING")
    assert run.pid_of("S1") != first

    new = sim_account("S3", login=2003)
    assert run.cli("accounts", "add", json.dumps(new)).returncode == 0
    run.wait_state("S3", "RUNNING")
    assert run.cli("accounts", "remove", "S3", "--yes").returncode == 0
    wait_for(lambda: run.store.get_node("S3") is None, 10, "S3's node document dropped")
    assert run.fake_events("S3")[-1]["ev"] == "stop"

    # another host's account is not ours
    assert run.cli("accounts", "add", json.dumps(sim_account("Elsewhere", host="no-such-host"))).returncode == 0
    time.sleep(1.0)
    assert run.store.get_node("Elsewhere") is None
    assert run.terminate() == 0 and run.leftovers() == []


def test_bad_account_documents_keep_one_node_down_with_the_reason(run_launcher):
    bad = sim_account("Bad1", sizing={"mode": "multiplier"})  # multiplier missing
    run = run_launcher([sim_account("M1", "MASTER", 1001), sim_account("S1"), bad, sim_account("S78", login=2003)],
                       modes={"S78": "exit78"})
    run.wait_state("S1", "RUNNING")
    doc = run.wait_state("Bad1", "CONFIG_ERROR")
    assert "sizing.multiplier" in doc["supervisor_reason"]
    assert run.fake_events("Bad1") == []  # refused before any process start
    doc = run.wait_state("S78", "CONFIG_ERROR")
    assert doc["last_exit_code"] == 78 and "risk" in doc["supervisor_reason"]
    time.sleep(1.0)
    assert len([e for e in run.fake_events("S78") if e["ev"] == "start"]) == 1  # not restarted

    res = run.cli("status", "--json")
    assert res.returncode == 0, res.stderr
    rows = {r["name"]: r for r in json.loads(res.stdout)["nodes"]}
    assert rows["Bad1"]["state"] == "CONFIG_ERROR" and "sizing.multiplier" in rows["Bad1"]["reason"]
    assert rows["S78"]["state"] == "CONFIG_ERROR" and rows["M1"]["state"] == "RUNNING"
    assert "sizing.multiplier" in run.cli("status").stdout

    # fixing the document starts it (the cli refuses to write a bad one)
    assert run.cli("accounts", "set", "Bad1", "sizing.multiplier=-1").returncode == 2
    assert run.cli("accounts", "set", "Bad1", "sizing.multiplier=0.5").returncode == 0
    run.wait_state("Bad1", "RUNNING")
    assert run.terminate() == 0 and run.leftovers() == []


def test_nodes_and_bus_exit_by_themselves_when_the_launcher_is_killed(run_launcher):
    run = run_launcher([sim_account("M1", "MASTER", 1001), sim_account("S1")])
    run.wait_state("S1", "RUNNING")
    run.track()
    children = list(run.seen.values())
    assert len(children) == 3
    os.kill(run.proc.pid, signal.SIGKILL)
    run.proc.wait(5)
    wait_for(lambda: not any(alive(p) for p in children), 10, "orphans to exit")


def test_two_accounts_on_one_terminal_are_refused_naming_both(run_launcher):
    """Invariant 6: the launcher never starts two accounts on one terminal; disabling one frees the other."""
    a = sim_account("TA")
    b = sim_account("TB")
    a["terminal"]["path"] = "C:\\MT5\\Shared\\terminal64.exe"
    b["terminal"]["path"] = "c:/mt5/shared//TERMINAL64.EXE"
    run = run_launcher([sim_account("M1", "MASTER", 1001), sim_account("S1"), a, b])
    run.wait_state("S1", "RUNNING")
    for name in ("TA", "TB"):
        doc = run.wait_state(name, "CONFIG_ERROR")
        assert "'TA'" in doc["supervisor_reason"] and "'TB'" in doc["supervisor_reason"], doc
        assert run.fake_events(name) == []  # refused before any process start
    assert run.cli("accounts", "disable", "TB").returncode == 0
    run.wait_state("TA", "RUNNING")
    assert run.terminate() == 0 and run.leftovers() == []
