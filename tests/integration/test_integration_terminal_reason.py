"""A node that cannot open its terminal, under a real launcher with a running bus proxy:
its reason is the terminal's error (not a silent-bus note it made up because it did not
read its bus while retrying), it stops at once on the launcher's bus stop, and once
STOPPED no row goes on showing what it said while it ran (nodes/runtime.py
``wait_serving_bus``, ``record_stopped``; fleet/supervision.py)."""
from __future__ import annotations

import json
import signal
import subprocess
import sys
import time

import pytest

from testing.harness import ROOT, LocalFleet, wait_until
from tests.integration.conftest import FAST

pytestmark = pytest.mark.integration

MT5_ON_LINUX = ("account 'M': the MetaTrader5 package runs only on Windows. On this machine use terminal kind "
                "'mt5linux' (MT5 under Wine) or 'sim' (the copyhub simulator).")
NO_SUCH_LOGIN = "account 'S': initialize failed: (-6, 'Terminal: Authorization failed')"


def _status_rows(fleet: LocalFleet) -> dict[str, dict]:
    out = subprocess.run([sys.executable, "cli.py", "status", "--json", "--db", fleet.db_url], capture_output=True,
                         text=True, timeout=30, cwd=str(ROOT))
    assert out.returncode == 0, out.stderr
    return {r["name"]: r for r in json.loads(out.stdout)["nodes"]}


@pytest.mark.skipif(sys.platform == "win32", reason="kind 'mt5' opens on Windows")
def test_a_node_that_cannot_open_its_terminal_shows_the_terminal_error_and_stops_on_the_bus(tmp_path):
    with LocalFleet(tmp_path, tick_hz=0, env=FAST) as fleet:
        fleet.start_sim()
        fleet.start_proxy()  # the bus works: nothing may say it does not
        fleet.store.upsert_account({"name": "M", "type": "MASTER", "enabled": True,
                                    "terminal": {"kind": "mt5", "path": "C:/MT5/terminal64.exe"}})
        fleet.sim_account("S", "SLAVE", 2999)  # no such login in the simulated world
        launcher = fleet.start_launcher("H1", args=["--stats-interval", "0.5", "--min-uptime", "0.3"])
        expected = {"M": MT5_ON_LINUX, "S": NO_SUCH_LOGIN}

        def shown() -> dict[str, tuple]:
            docs = {n: fleet.store.get_node(n) or {} for n in expected}
            return {n: (d.get("state"), d.get("reason"), d.get("supervisor_reason"), (d.get("info") or {}).get("note"))
                    for n, d in docs.items()}

        want = {n: ("TERMINAL_ERROR", text, text, text) for n, text in expected.items()}
        try:
            wait_until(lambda: shown() == want, timeout=40, message="the terminal errors as the reasons")
        except TimeoutError:
            assert shown() == want  # shows what the rows said instead
        time.sleep(5.0)  # retries 2 s, 4 s apart: many more than the 3 heartbeats (750 ms) of a silent bus
        assert shown() == want
        rows = _status_rows(fleet)
        assert {n: (rows[n]["state"], rows[n]["reason"]) for n in expected} == \
               {n: ("TERMINAL_ERROR", text) for n, text in expected.items()}
        assert [e for n in expected for e in fleet.store.list_events(account=n, kind="bus_silent")] == []
        stopping = time.monotonic()
        launcher.popen.send_signal(signal.SIGTERM)
        assert launcher.popen.wait(30) == 0
        took = time.monotonic() - stopping
        docs = {n: fleet.store.get_node(n) for n in expected}
        assert {n: (d["supervisor_state"], d["supervisor_reason"], d["state"], d["reason"], d["error"],
                    "note" in (d.get("info") or {})) for n, d in docs.items()} == \
               {n: ("STOPPED", "stopped by the launcher", "STOPPED", None, None, False) for n in expected}
        rows = _status_rows(fleet)
        assert {n: (rows[n]["state"], rows[n]["reason"]) for n in expected} == \
               {n: ("STOPPED", "stopped by the launcher") for n in expected}
        lines = [json.loads(line) for p in (fleet.log_dir / "H1").glob("launcher*.log")
                 for line in p.read_text().splitlines() if line.startswith("{")]
        stops = [(e["node"], e.get("via")) for e in lines if e["event"] in ("node_stop_sent", "node_ignored_bus_stop_signalling")]
        assert stops == [("S", "bus"), ("M", "bus")]  # slaves first; each acted on the bus stop, no signal
        assert took < 3.0, took  # not a 2 s signal grace per group


@pytest.mark.parametrize("role", ["master", "slave"])
def test_a_node_retrying_its_terminal_stops_on_a_ctl_stop_and_leaves_no_stale_reason(tmp_path, role):
    """Started by hand (no launcher): the ``ctl stop`` ends its terminal retries at once
    (exit 0), and its document then says STOPPED without the error of the running node."""
    from messaging.publisher import Publisher
    from messaging.schema import Control

    with LocalFleet(tmp_path, tick_hz=0, env=FAST) as fleet:
        fleet.start_sim()
        fleet.start_proxy()
        fleet.sim_account("N", role.upper(), 2999)  # no such login
        proc = fleet.start_node(role, "N")
        wait_until(lambda: (fleet.store.get_node("N") or {}).get("state") == "TERMINAL_ERROR", timeout=30,
                   message="TERMINAL_ERROR")
        time.sleep(2.0)  # into the longer retry delays (2 s, 4 s)
        assert (fleet.store.get_node("N") or {})["reason"] == "account 'N': initialize failed: (-6, 'Terminal: Authorization failed')"
        pub = Publisher(fleet.bus_pub)
        try:
            deadline = time.monotonic() + 1.5
            while proc.alive() and time.monotonic() < deadline:  # resent: a fresh socket's first may be lost
                pub.publish(Control(target="N", command="stop", sender="test", ts_ms=int(time.time() * 1000)))
                time.sleep(0.1)
        finally:
            pub.close()
        assert proc.popen.wait(5) == 0
        doc = fleet.store.get_node("N")
        assert (doc["state"], doc["reason"], doc["error"], "note" in (doc.get("info") or {})) == ("STOPPED", None, None, False)
