"""Real nodes say what the operator needs beside their state: a bus they hear nothing on,
and an account document they refused to reload (nodes/notes.py)."""
from __future__ import annotations

import pytest

from nodes.notes import BusSilence
from testing.harness import LocalFleet, wait_until
from tests.integration.conftest import FAST

pytestmark = pytest.mark.integration


def test_bus_silence_is_told_after_a_few_quiet_heartbeats():
    quiet = BusSilence(after_ms=3000)
    assert quiet.observe(0, 1_000) is None
    assert quiet.observe(0, 3_900) is None
    assert quiet.observe(0, 4_000) == 3.0
    assert quiet.observe(1, 4_100) is None  # heard something: not silent
    assert quiet.observe(1, 6_000) is None and quiet.observe(1, 7_100) == 3.0


def test_a_master_started_without_a_bus_proxy_says_so_and_stops_saying_it_once_there_is_one(tmp_path):
    with LocalFleet(tmp_path, tick_hz=0, env=FAST) as fleet:
        fleet.start_sim()
        fleet.sim_account("M", "MASTER", 1001)
        fleet.start_node("master", "M")  # no proxy: publishes into the void, hears nothing

        def reason() -> str:
            return str((fleet.store.get_node("M") or {}).get("reason") or "")

        wait_until(lambda: "heard nothing on the bus" in reason(), timeout=20, message="the silent-bus note")
        doc = fleet.store.get_node("M")
        assert doc["state"] == "RUNNING" and fleet.bus_sub in doc["reason"]
        assert [e["kind"] for e in fleet.store.list_events(account="M", kind="bus_silent")] == ["bus_silent"]
        fleet.start_proxy()
        wait_until(lambda: reason() == "", timeout=20, message="the note to clear once the proxy runs")
        assert fleet.store.list_events(account="M", kind="bus_silent_cleared")


def test_a_refused_reload_is_the_nodes_reason_and_is_raised_once(running):
    running.store.update_account("S1", {"slippage_tolerance": "wide"})  # as a MongoDB GUI would
    wait_until(lambda: "config reload refused" in str((running.store.get_node("S1") or {}).get("reason")),
               timeout=10, message="the refusal as S1's reason")
    doc = running.store.get_node("S1")
    assert doc["state"] == "RUNNING" and "slippage_tolerance" in doc["reason"]
    import time
    time.sleep(2.0)  # four more reload periods (500 ms): still one event
    refused = running.store.list_events(account="S1", kind="config_reload_refused")
    assert len(refused) == 1 and refused[0]["level"] == "error"
    running.store.update_account("S1", {"slippage_tolerance": 300})
    wait_until(lambda: not (running.store.get_node("S1") or {}).get("reason"), timeout=10, message="reason cleared")
    assert running.store.list_events(account="S1", kind="config_reload_refused_cleared")


def test_a_terminal_that_will_not_log_in_is_the_reason_and_a_fixed_account_restarts_the_node(tmp_path):
    """No proxy and no terminal: the reason names the terminal first (not only the bus), the
    failure is in the audit trail, and fixing the login in the store stops the retrying node
    with exit 75 so the launcher starts it on the new document (disabling stops it with 0)."""
    with LocalFleet(tmp_path, tick_hz=0, env=FAST) as fleet:
        fleet.start_sim()
        fleet.sim_account("S", "SLAVE", 2999)  # no such login in the simulated world
        proc = fleet.start_node("slave", "S")

        def doc() -> dict:
            return fleet.store.get_node("S") or {}

        wait_until(lambda: doc().get("state") == "TERMINAL_ERROR" and "heard nothing" in str(doc().get("reason")),
                   timeout=30, message="TERMINAL_ERROR with the bus note")
        reason = str(doc()["reason"])
        assert reason.startswith(str(doc()["error"])), reason
        assert reason.index(str(doc()["error"])) < reason.index("heard nothing")
        [event] = fleet.store.list_events(account="S", kind="terminal_unavailable")
        assert event["data"]["error"] == doc()["error"]
        fleet.sim_account("S", "SLAVE", 2001)  # the operator fixes the login
        wait_until(lambda: not proc.alive(), timeout=30, message="the node to stop for a restart")
        assert proc.popen.returncode == 75
        assert fleet.store.list_events(account="S", kind="config_changed_restart")
