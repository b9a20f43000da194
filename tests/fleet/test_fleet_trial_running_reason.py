"""A node RUNNING again after a disable/enable, or after a kill -9 and the launcher's
restart, shows no reason the launcher gave its earlier incarnation (launcher.py as a
real process over stand-in nodes, tests/fleet/fleet_fake_node.py)."""
from __future__ import annotations

import json
import time

import psutil
import pytest
from fleet_harness import LauncherRun, sim_account, wait_for

pytestmark = pytest.mark.integration




def _settled_row(run: LauncherRun, name: str, since_ms: int) -> dict:
    """``cli.py status --json``'s row of ``name`` once the launcher has written its stats
    (every 0.5 s here) after ``since_ms`` with the node RUNNING."""
    wait_for(lambda: run.node(name).get("supervisor_state") == "RUNNING" and (run.node(name).get("stats_ms") or 0) > since_ms,
             15, f"{name} RUNNING with fresh stats")
    status = run.cli("status", "--json")
    assert status.returncode == 0, status.stderr
    return next(r for r in json.loads(status.stdout)["nodes"] if r["name"] == name)


def test_a_node_running_again_shows_no_reason_of_its_earlier_incarnation(run_launcher):
    run = run_launcher([sim_account("M1", "MASTER", 1001), sim_account("Net_Risk")])
    run.wait_state("Net_Risk", "RUNNING")
    run.store.record_intent({"slave_name": "Net_Risk", "master_name": "M1", "master_ticket": 11, "symbol": "EURUSD.c",
                             "status": "OPEN", "slave_ticket": 7100003, "direction": "BUY"})
    assert run.cli("accounts", "disable", "Net_Risk").returncode == 0
    stopped = run.wait_state("Net_Risk", "STOPPED")
    assert stopped["supervisor_reason"] == ("disabled; 1 open copy left unmanaged (nothing closes or follows it now): "
                                            "EURUSD.c #7100003 (master M1 #11)")
    assert run.cli("accounts", "enable", "Net_Risk").returncode == 0
    run.wait_state("Net_Risk", "RUNNING")
    row = _settled_row(run, "Net_Risk", int(time.time() * 1000) + 600)
    assert (row["state"], row["reason"], row["restarts"]) == ("RUNNING", None, 1)
    assert row["last_restart_reason"].startswith("disabled; 1 open copy left unmanaged")
    assert run.node("Net_Risk")["supervisor_reason"] is None
    table = run.cli("status").stdout
    assert "unmanaged" not in table

    psutil.Process(run.pid_of("Net_Risk")).kill()  # kill -9; the launcher restarts it
    wait_for(lambda: run.node("Net_Risk").get("restarts") == 2 and run.state("Net_Risk") == "RUNNING", 20,
             "the restart after kill -9")
    row = _settled_row(run, "Net_Risk", int(time.time() * 1000) + 600)
    assert (row["state"], row["reason"], row["restarts"], row["last_exit_code"]) == ("RUNNING", None, 2, -9)
    assert row["last_restart_reason"] == "exited with code -9; restart in 0.2 s"
    assert "exited with code" not in run.cli("status").stdout
    assert run.terminate() == 0
