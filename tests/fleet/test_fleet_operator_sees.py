"""What the operator sees, with launcher.py as a real process over stand-in nodes
(tests/fleet/fleet_fake_node.py): graceful stop through the bus first, "disabled" with
the copies left unmanaged, restart counts that survive the launcher, stale rows cleared,
one account-name rule."""
from __future__ import annotations

import json

import pytest
from fleet_harness import LauncherRun, sim_account, wait_for

import cli
import setup_db
from copier.accounts import NAME_RULE, AccountConfigError, is_account_name, validate_account
from db import open_store
from fleet import runner
from messaging.schema import is_valid_name

pytestmark = pytest.mark.integration




def stops(run: LauncherRun, name: str) -> list[str]:
    return [e.get("via") for e in run.fake_events(name) if e["ev"] == "stop"]


def open_copy(store, slave: str, master: str, ticket: int, symbol: str = "EURUSD") -> None:
    store.record_intent({"slave_name": slave, "master_name": master, "master_ticket": ticket, "symbol": symbol,
                         "status": "OPEN", "slave_ticket": 5000 + ticket, "direction": "BUY"})


def test_nodes_are_stopped_through_the_bus_first_then_by_signal(run_launcher):
    run = run_launcher([sim_account("M1", "MASTER", 1001), sim_account("S1"), sim_account("S2")],
                       modes={"S2": "deaf"})
    run.wait_state("S1", "RUNNING")
    run.wait_state("S2", "RUNNING")
    assert run.cli("accounts", "disable", "S1").returncode == 0
    run.wait_state("S1", "STOPPED")
    assert stops(run, "S1") == ["bus"]  # ctl stop on the bus: no signal was needed
    assert run.cli("accounts", "disable", "S2").returncode == 0
    run.wait_state("S2", "STOPPED")
    assert stops(run, "S2") == ["signal"]  # a node that does not hear the bus still stops: the signal follows
    assert run.terminate() == 0 and run.leftovers() == []
    assert stops(run, "M1") == ["bus"]  # the fleet's own shutdown goes through the bus too


def test_disabled_says_disabled_and_names_the_copies_left_unmanaged(run_launcher):
    run = run_launcher([sim_account("M1", "MASTER", 1001), sim_account("S1")])
    run.wait_state("S1", "RUNNING")
    open_copy(run.store, "S1", "M1", 11)
    open_copy(run.store, "S1", "M1", 12, "GBPUSD")
    assert run.cli("accounts", "disable", "S1").returncode == 0
    doc = run.wait_state("S1", "STOPPED")
    reason = doc["supervisor_reason"]
    assert reason.startswith("disabled; 2 open copies left unmanaged")
    assert "EURUSD #5011 (master M1 #11)" in reason and "GBPUSD #5012" in reason
    assert "on its own" not in reason
    warned = [e for e in run.store.list_events(kind="copies_unmanaged") if e["account"] == "S1"]
    assert len(warned) == 1 and warned[0]["data"]["count"] == 2 and warned[0]["level"] == "warning"
    assert not [e for e in run.store.list_events(kind="node_stopped") if e["account"] == "S1"]
    status = json.loads(run.cli("status", "--json").stdout)
    row = next(r for r in status["nodes"] if r["name"] == "S1")
    assert row["state"] == "STOPPED" and row["reason"].startswith("disabled")
    assert run.terminate() == 0


def test_a_node_that_sees_its_account_disabled_first_is_shown_disabled(run_launcher):
    """The node's own reload may notice the disable before the launcher's reconcile and
    exit 0 by itself: still "disabled", not "exited with code 0 on its own"."""
    run = run_launcher([sim_account("M1", "MASTER", 1001), sim_account("S1")],
                       extra_args=["--reconcile-interval", "30"])
    run.wait_state("S1", "RUNNING")
    run.store.update_account("S1", {"enabled": False})
    run.command("S1", "exit0")
    doc = run.wait_state("S1", "STOPPED")
    assert doc["supervisor_reason"] == "disabled"
    assert run.terminate() == 0


def test_restart_counts_and_the_last_reason_survive_the_launcher(run_launcher):
    accounts = [sim_account("M1", "MASTER", 1001), sim_account("S1")]
    run = run_launcher(accounts, sub="first")
    run.wait_state("S1", "RUNNING")
    for expected in (1, 2):
        run.command("S1", "crash")
        wait_for(lambda: (run.node("S1").get("restarts") or 0) >= expected and run.state("S1") == "RUNNING",
                 20, f"restart {expected}")
    assert "exited with code 9" in run.node("S1")["last_restart_reason"]
    assert run.terminate() == 0
    again = run_launcher([], sub="first")  # a new launcher process on the same store
    again.wait_state("S1", "RUNNING")
    assert again.node("S1")["restarts"] == 2  # carried on, not back to zero
    again.command("S1", "crash")
    wait_for(lambda: again.node("S1").get("restarts") == 3 and again.state("S1") == "RUNNING", 20, "restart 3")
    assert "exited with code 9" in again.node("S1")["last_restart_reason"]
    status = json.loads(again.cli("status", "--json").stdout)
    assert next(r for r in status["nodes"] if r["name"] == "S1")["restarts"] == 3
    assert again.terminate() == 0


def test_a_stale_config_error_row_is_cleared_when_the_account_changes(tmp_path, capsys):
    url = "sqlite:///" + (tmp_path / "s.db").as_posix()
    store = open_store(url)
    # a node started by hand before its account existed left this behind (exit 78)
    store.upsert_node("S9", {"role": "slave", "pid": 999999, "state": "CONFIG_ERROR",
                             "reason": "account 'S9' is not in the store", "heartbeat_ms": 1})
    store.close()
    assert cli.main(["--db", url, "accounts", "add", json.dumps(sim_account("S9"))]) == 0
    capsys.readouterr()
    assert cli.main(["--db", url, "status", "--json"]) == 0
    rows = json.loads(capsys.readouterr().out)["nodes"]
    assert not [r for r in rows if r["name"] == "S9"]
    # a launcher-supervised row keeps the launcher's fields, loses the dead node's reason
    store = open_store(url)
    store.upsert_node("S9", {"state": "CONFIG_ERROR", "reason": "field 'risk' is wrong", "supervisor_state": "CONFIG_ERROR",
                             "supervisor_reason": "bad account document (exit 78)", "kind": "slave"})
    store.close()
    assert cli.main(["--db", url, "accounts", "set", "S9", "slippage_tolerance=20"]) == 0
    store = open_store(url)
    doc = store.get_node("S9")
    store.close()
    assert doc["state"] is None and doc["reason"] is None and doc["supervisor_state"] == "CONFIG_ERROR"


def test_the_launcher_clears_a_not_in_the_store_row_once_the_account_exists(run_launcher):
    run = run_launcher([sim_account("M1", "MASTER", 1001)])
    run.wait_state("M1", "RUNNING")
    run.store.upsert_node("S5", {"role": "slave", "pid": 999999, "state": "CONFIG_ERROR",
                                 "reason": "account 'S5' is not in the store", "heartbeat_ms": 1})
    run.store.add_account(sim_account("S5", "SLAVE", host="another-host"))  # added straight into the store
    wait_for(lambda: run.store.get_node("S5") is None, 10, "the stale row to go")
    assert run.terminate() == 0


# ------------------------------------------------------------------ one account-name rule
@pytest.mark.parametrize("name", ["FTMO 100k", "FTMO.100k", "Jörg", "", "x" * 65, "all", "launcher", "bus-proxy",
                                  "FTMO_100k", "Apex-Slave-01", "a", "x" * 64])
def test_one_name_rule_for_the_store_the_bus_and_the_launcher(name):
    doc = {"name": name, "type": "SLAVE", "path": "C:/x/terminal64.exe"}
    try:
        validate_account(doc)
        accepted = True
    except AccountConfigError as exc:
        accepted = False
        assert exc.field == "name"
    assert accepted == is_account_name(name)
    bus_ok = is_valid_name(name) and name not in runner.RESERVED_NAMES
    assert accepted == bus_ok  # what the loader accepts, the bus and the launcher accept
    if not accepted and name:
        assert NAME_RULE in str(AccountConfigError(name, "name", NAME_RULE, name))


def test_a_name_with_a_space_is_refused_by_accounts_add_and_setup_db_check(tmp_path, capsys):
    url = "sqlite:///" + (tmp_path / "n.db").as_posix()
    doc = {"name": "FTMO 100k", "type": "SLAVE", "path": "C:/ftmo/terminal64.exe"}
    assert cli.main(["--db", url, "accounts", "add", json.dumps(doc)]) == 2
    err = capsys.readouterr().err
    assert "field 'name' must be 1-64 letters" in err and "FTMO 100k" in err
    store = open_store(url)
    store.add_account(doc)  # written straight into the store, as a MongoDB GUI would
    store.close()
    assert setup_db.main(["--db", url, "--check", "--json"]) == 1
    problems = json.loads(capsys.readouterr().out)["problems"]
    assert [(p["account"], p["field"]) for p in problems] == [("FTMO 100k", "name")]
