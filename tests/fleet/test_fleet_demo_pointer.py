"""The file that lets a plain ``cli.py status`` find a demo's temporary store."""
from __future__ import annotations

import json
import os
import subprocess
import sys

from fleet.demo import RUNNING_DEMO_FILE, announce_demo, last_demo


def test_a_live_demo_is_found(tmp_path):
    path = announce_demo(tmp_path / "data", "sqlite:////tmp/copyhub-demo-x/copyhub.db")
    assert path == tmp_path / "data" / RUNNING_DEMO_FILE
    assert last_demo(tmp_path / "data") == ("sqlite:////tmp/copyhub-demo-x/copyhub.db", True)


def test_a_stopped_or_reused_pid_is_the_last_demo_not_a_running_one(tmp_path):
    done = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True)
    dead = int(done.stdout)
    (tmp_path / RUNNING_DEMO_FILE).write_text(json.dumps({"db_url": "sqlite:///x.db", "pid": dead, "created": 1.0}))
    assert last_demo(tmp_path) == ("sqlite:///x.db", False)
    # our own pid, but another start time: a reused pid
    (tmp_path / RUNNING_DEMO_FILE).write_text(json.dumps({"db_url": "sqlite:///x.db", "pid": os.getpid(),
                                                          "created": 12345.0}))
    assert last_demo(tmp_path) == ("sqlite:///x.db", False)


def test_a_missing_or_broken_file_is_no_demo(tmp_path):
    assert last_demo(tmp_path) is None
    (tmp_path / RUNNING_DEMO_FILE).write_text("{not json")
    assert last_demo(tmp_path) is None
    (tmp_path / RUNNING_DEMO_FILE).write_text(json.dumps({"pid": os.getpid()}))
    assert last_demo(tmp_path) is None
