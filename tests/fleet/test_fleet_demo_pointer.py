"""The file that lets a plain ``cli.py status`` find a running demo's temporary store."""
from __future__ import annotations

import json
import os
import subprocess
import sys

from fleet.demo import RUNNING_DEMO_FILE, announce_demo, running_demo_store, withdraw_demo


def test_a_live_demo_is_found_and_withdrawn(tmp_path):
    path = announce_demo(tmp_path / "data", "sqlite:////tmp/copyhub-demo-x/copyhub.db")
    assert path == tmp_path / "data" / RUNNING_DEMO_FILE
    assert running_demo_store(tmp_path / "data") == "sqlite:////tmp/copyhub-demo-x/copyhub.db"
    withdraw_demo(path)
    assert not path.exists() and running_demo_store(tmp_path / "data") is None


def test_a_dead_or_reused_pid_is_not_a_running_demo(tmp_path):
    done = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True)
    dead = int(done.stdout)
    (tmp_path / RUNNING_DEMO_FILE).write_text(json.dumps({"db_url": "sqlite:///x.db", "pid": dead, "created": 1.0}))
    assert running_demo_store(tmp_path) is None
    # our own pid, but another start time: a reused pid
    (tmp_path / RUNNING_DEMO_FILE).write_text(json.dumps({"db_url": "sqlite:///x.db", "pid": os.getpid(),
                                                          "created": 12345.0}))
    assert running_demo_store(tmp_path) is None


def test_a_broken_file_is_ignored_and_another_demos_file_is_kept(tmp_path):
    (tmp_path / RUNNING_DEMO_FILE).write_text("{not json")
    assert running_demo_store(tmp_path) is None
    (tmp_path / RUNNING_DEMO_FILE).write_text(json.dumps({"pid": os.getpid()}))
    assert running_demo_store(tmp_path) is None
    path = announce_demo(tmp_path, "sqlite:///a.db")
    withdraw_demo(path, pid=os.getpid() + 1)  # not ours: stays
    assert path.exists()
    assert running_demo_store(tmp_path) == "sqlite:///a.db"
