"""The monitor node's heartbeat reaches the store, so ``cli.py status`` (which reads only the
store) shows its age like every other node's, instead of ``-``."""
from __future__ import annotations

import json
import subprocess
import sys

import pytest

from testing.harness import LocalFleet, free_port, wait_until
from tests.conftest import ROOT
from tests.integration.conftest import FAST

pytestmark = pytest.mark.integration


def test_cli_status_shows_the_monitor_heartbeat_age(tmp_path):
    f = LocalFleet(tmp_path, tick_hz=0, env=FAST)
    try:
        f.start_proxy()
        f.start_node("monitor", "monitor", args=["--http-port", str(free_port())])
        wait_until(lambda: (f.store.get_node("monitor") or {}).get("heartbeat_ms"), timeout=30,
                   message="the monitor's first heartbeat in the store")
        first = f.store.get_node("monitor")["heartbeat_ms"]
        wait_until(lambda: f.store.get_node("monitor")["heartbeat_ms"] > first, timeout=10, message="a later one")
        doc = f.store.get_node("monitor")
        assert (doc["role"], doc["state"], doc["error"]) == ("monitor", "RUNNING", None)
        out = subprocess.run([sys.executable, str(ROOT / "cli.py"), "--db", f.db_url, "--json", "status"],
                             capture_output=True, text=True, cwd=ROOT, env=f.env, timeout=60)
        assert out.returncode == 0, out.stderr
        [row] = [r for r in json.loads(out.stdout)["nodes"] if r["name"] == "monitor"]
        assert row["heartbeat_age_ms"] is not None and 0 <= row["heartbeat_age_ms"] < 5000
    finally:
        f.close()
