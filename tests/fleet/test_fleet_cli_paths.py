"""cli.py on a Windows VPS: read-only commands never create a store, output never crashes
on the console's encoding, and <node>.out stays small."""
from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from fleet_harness import sim_account

from db import open_store
from fleet.procs import ProcessHandle, rotate_out
from tests.conftest import ROOT

PY = sys.executable


def clean_env(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("COPYHUB_", "PYTHONIOENCODING"))}
    env.update(extra)
    return env


def cli(argv: list[str], *, cwd: Path, env: dict[str, str]) -> subprocess.CompletedProcess:
    return subprocess.run([PY, str(ROOT / "cli.py"), *argv], cwd=cwd, env=env, capture_output=True, timeout=60)


@pytest.mark.parametrize("argv", [["status"], ["links", "S1"], ["events"], ["report", "--no-live"],
                                  ["accounts", "list"], ["accounts", "show", "S1"]])
def test_a_read_only_command_on_a_missing_store_fails_and_creates_nothing(tmp_path, argv):
    home = tmp_path / "home"
    home.mkdir()
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    proc = cli(argv, cwd=elsewhere, env=clean_env(COPYHUB_HOME=str(home)))
    err = proc.stderr.decode()
    assert proc.returncode == 2, err
    assert "no store at" in err and str(home / "data" / "copyhub.db") in err
    assert not (home / "data" / "copyhub.db").exists() and list(elsewhere.iterdir()) == []
    # and with --db
    missing = tmp_path / "nope.db"
    proc = cli(["--db", "sqlite:///" + missing.as_posix(), *argv], cwd=elsewhere, env=clean_env())
    assert proc.returncode == 2 and "no store at" in proc.stderr.decode() and not missing.exists()


def test_from_another_folder_the_cli_finds_the_store_of_its_home(tmp_path):
    home = tmp_path / "home"
    (home / "data").mkdir(parents=True)
    store = open_store("sqlite:///" + (home / "data" / "copyhub.db").as_posix())
    store.add_account(sim_account("S1"))
    store.close()
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    proc = cli(["accounts", "list", "--json"], cwd=elsewhere, env=clean_env(COPYHUB_HOME=str(home)))
    assert proc.returncode == 0, proc.stderr
    assert [a["name"] for a in json.loads(proc.stdout)["accounts"]] == ["S1"]
    # a write command may create a store where the settings say
    new_home = tmp_path / "new"
    doc = json.dumps(sim_account("S2"))
    proc = cli(["accounts", "add", doc], cwd=elsewhere, env=clean_env(COPYHUB_HOME=str(new_home)))
    assert proc.returncode == 0, proc.stderr
    assert (new_home / "data" / "copyhub.db").exists()


def test_a_cp1252_console_never_crashes_the_output(tmp_path):
    url = "sqlite:///" + (tmp_path / "enc.db").as_posix()
    store = open_store(url)
    store.add_account({"name": "FTMO_100k", "type": "SLAVE", "enabled": True,
                       "path": "C:/Users/Jörg Ωmega/MT5 ✓/terminal64.exe", "description": "Ωmega ✓ 100k"})
    store.close()
    env = clean_env(PYTHONIOENCODING="cp1252")  # a Windows console, or output redirected there
    for argv in (["accounts", "list"], ["accounts", "show", "FTMO_100k"], ["events"], ["status"]):
        proc = cli(["--db", url, *argv], cwd=tmp_path, env=env)
        assert proc.returncode == 0, proc.stderr.decode("cp1252", "replace")
        assert b"Traceback" not in proc.stderr
    listed = cli(["--db", url, "accounts", "list"], cwd=tmp_path, env=env).stdout.decode("cp1252")
    assert "Jörg \\u03a9mega" in listed  # what cp1252 has stays, the rest is escaped, nothing lost
    proc = subprocess.run([PY, str(ROOT / "config.py")], cwd=tmp_path, capture_output=True, timeout=60,
                          env=clean_env(PYTHONIOENCODING="cp1252", COPYHUB_HOME=str(tmp_path / "Ωmega")))
    assert proc.returncode == 0 and b"Traceback" not in proc.stderr


def test_node_out_files_are_rotated_at_start_and_capped_while_running(tmp_path):
    out = tmp_path / "S1.out"
    out.write_bytes(b"x" * 5000)
    assert rotate_out(out, max_bytes=4000) and (tmp_path / "S1.out.1").stat().st_size == 5000
    assert not out.exists() and not rotate_out(out, max_bytes=4000)

    script = "import sys, time\nfor i in range(400): print('line %04d' % i, flush=True)\ntime.sleep(30)\n"
    handle = ProcessHandle("S1", [PY, "-c", script], log_path=out)
    try:
        deadline = 200
        while out.stat().st_size < 3000 and deadline:
            import time
            time.sleep(0.05)
            deadline -= 1
        assert not handle.cap_output(max_bytes=100_000)  # under the cap: untouched
        assert handle.cap_output(max_bytes=1000)
        assert out.stat().st_size < 300 and "output past 1000 bytes" in out.read_text()
        assert "line 0000" in (tmp_path / "S1.out.1").read_text()
    finally:
        handle.kill()


def test_supervised_nodes_log_to_their_file_not_to_their_out(tmp_path):
    """The launcher starts nodes with COPYHUB_LOG_CONSOLE=0: log lines go to <node>.log only."""
    from fleet.runner import Fleet, FleetOptions

    fleet = Fleet(store=None, opts=FleetOptions(db_url="sqlite:///x.db", bus_pub="tcp://127.0.0.1:1",
                                                bus_sub="tcp://127.0.0.1:2", sim_endpoint="tcp://127.0.0.1:3",
                                                log_dir=tmp_path, config_file=str(tmp_path / "copyhub.toml")),
                  log=None)
    env = fleet._env()
    assert env["COPYHUB_LOG_CONSOLE"] == "0" and env["COPYHUB_CONFIG"] == str(tmp_path / "copyhub.toml")
    code = ("from utils.logging import setup_logging; from config import settings; "
            f"log = setup_logging('n', log_dir=r'{tmp_path}', console=bool(settings.LOG_CONSOLE)); log.info('hello_log')")
    proc = subprocess.run([PY, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=60,
                          env=clean_env(COPYHUB_LOG_CONSOLE="0"))
    assert proc.returncode == 0, proc.stderr
    assert "hello_log" not in proc.stderr and "hello_log" in (tmp_path / "n.log").read_text()
