"""What a user's trial found in /api/v1/nodes and the release control: a RUNNING node
showing the launcher's reason of an earlier incarnation; a release on an account with no
lock answered as if one were pending."""
from __future__ import annotations

from dashboard.views import node_rows
from db import now_ms

POST = {"X-CopyHub-Request": "1"}
NOW = 1_700_000_000_000
UNMANAGED = ("disabled; 10 open copies left unmanaged (nothing closes or follows them now): "
             "EURUSD.c #7100003 (master FTMO_Master #5100001)")




def _doc(name, reason, **kw):
    return {"name": name, "role": "slave", "kind": "slave", "state": "RUNNING", "pid": 7, "heartbeat_ms": NOW - 900,
            "reason": None, "error": None, "supervisor_state": "RUNNING", "proc_pid": 7, "restarts": 1,
            "last_exit_code": -9, "last_restart_reason": reason, "supervisor_reason": reason, **kw}


def test_a_running_node_row_shows_what_the_node_says_now_not_the_launchers_old_reason():
    docs = [_doc("Net_Risk", UNMANAGED, last_exit_code=0), _doc("Prop_Fixed", "exited with code -9; restart in 1 s"),
            _doc("Silent", "x", heartbeat_ms=NOW - 60_000, supervisor_reason="waiting on the store for 61.0 s"),
            _doc("Held", "exited with code -9; restart in 1 s", state="STOPPED", supervisor_state="BACKOFF")]
    live = {"Prop_Fixed": {"state": "RUNNING", "pid": 7, "ts_ms": NOW - 200, "error": None,
                           "info": {"note": "heard nothing on the bus for 4 s"}},
            "Net_Risk": {"state": "RUNNING", "pid": 7, "ts_ms": NOW - 200, "error": None, "info": {}}}
    rows = {r["name"]: r for r in node_rows(docs, live, NOW)}
    assert {n: (r["state"], r["reason"], r["restarts"], r["last_exit_code"]) for n, r in rows.items()} == {
        "Net_Risk": ("RUNNING", None, 1, 0),
        "Prop_Fixed": ("RUNNING", "heard nothing on the bus for 4 s", 1, -9),
        "Silent": ("RUNNING", "waiting on the store for 61.0 s", 1, -9),
        "Held": ("BACKOFF", "exited with code -9; restart in 1 s", 1, -9)}
    assert rows["Net_Risk"]["last_restart_reason"] == UNMANAGED


def test_api_nodes_after_a_restart(env):
    store, collector, client, _ = env
    store.upsert_node("S1", {"supervisor_reason": UNMANAGED, "last_exit_code": 0, "heartbeat_ms": now_ms()})
    collector.poll(force=True)
    s1 = {n["name"]: n for n in client.get("/api/v1/nodes").json()["nodes"]}["S1"]
    assert (s1["state"], s1["reason"], s1["restarts"], s1["last_exit_code"]) == ("RUNNING", None, 2, 0)


def test_api_release_of_a_locked_account_requests_it(env):
    store, _, client, _ = env
    store.set_flag("risk_lock:S1", {"reason": "daily loss limit", "locked_at_utc_ms": 1, "until_utc_ms": None,
                                    "day_id": "2026-11-20", "by": "guardian"})
    answer = client.post("/api/v1/accounts/S1/release", headers=POST).json()
    assert (answer["locked"], answer["release_requested"], answer["by"]) == (True, True, "dashboard")
    assert answer["lock"]["reason"] == "daily loss limit" and "warning" not in answer
    assert store.get_flag("risk_release:S1")["by"] == "dashboard"


def test_api_release_of_an_account_with_no_lock_says_so(env):
    store, _, client, _ = env
    r = client.post("/api/v1/accounts/S1/release", headers=POST)
    assert r.status_code == 200 and r.json() == {"account": "S1", "locked": False, "release_requested": False,
                                                 "message": "S1 has no risk lock: nothing to release"}
    assert store.get_flag("risk_release:S1") is None
