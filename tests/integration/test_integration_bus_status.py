"""A node of another bus schema version is refused loudly, and `cli.py status` says so."""
from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path

import zmq

from testing.harness import wait_until

ROOT = Path(__file__).resolve().parents[2]


def _status_rows(fleet) -> dict:
    out = subprocess.run([sys.executable, "cli.py", "status", "--json", "--db", fleet.db_url], capture_output=True,
                         text=True, timeout=30, cwd=str(ROOT))
    assert out.returncode == 0, out.stderr
    return {r["name"]: r for r in json.loads(out.stdout)["nodes"]}


def test_wrong_version_messages_are_counted_in_node_status(running):
    fleet = running
    rows = _status_rows(fleet)
    assert rows["M"]["bus_wrong_version"] == 0 and rows["S1"]["bus_wrong_version"] == 0
    ctx = zmq.Context()
    pub = ctx.socket(zmq.PUB)
    pub.setsockopt(zmq.LINGER, 0)
    pub.connect(fleet.bus_pub)
    # what a copyhub of the previous bus version would send to every node: a v2 control message
    old = [b"ctl.all", b'{"v":2,"kind":"ctl","target":"all","command":"ping","args":{},"ts_ms":1}']
    try:
        def counted():
            pub.send_multipart(old)  # a PUB drops what it sends before the proxy has it: repeat
            docs = {n: (fleet.node_state(n) or {}).get("info") or {} for n in ("M", "S1", "S2")}
            return all(int(d.get("bus_wrong_version") or 0) >= 1 for d in docs.values())

        wait_until(counted, timeout=20, interval=0.2, message="wrong-version messages counted by every node")
    finally:
        pub.close()
        ctx.term()
    time.sleep(0.5)  # the next store heartbeat
    rows = _status_rows(fleet)
    for name in ("M", "S1", "S2"):
        assert rows[name]["bus_wrong_version"] >= 1, rows[name]
    text = subprocess.run([sys.executable, "cli.py", "status", "--db", fleet.db_url], capture_output=True, text=True,
                          timeout=30, cwd=str(ROOT)).stdout
    assert "bus message(s) of another schema version" in text
    # the nodes still work: a copy is made as before
    assert fleet.node_state("S1")["state"] == "RUNNING"
