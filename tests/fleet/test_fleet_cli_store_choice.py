"""Which store a cli.py command uses when --db is not given, and which commands may create one.

While a demo runs (fleet/demo.py ``last_demo``) and the settings' store does not exist,
every command, read or write, uses the demo's store and says so; without a running demo
only ``accounts add`` and ``keys create/allow`` create a missing SQLite store: any other
command fails naming the path, and never leaves an empty store behind that would hide
the demo from the next ``status``."""
from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from fleet_harness import sim_account

import cli
from db import mask_url, open_store
from fleet.demo import RUNNING_DEMO_FILE, announce_demo, free_port
from messaging.security import new_key_pair
from tests.conftest import ROOT

PY = sys.executable


def clean_env(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("COPYHUB_", "PYTHONIOENCODING"))}
    env.update(extra)
    return env


def run_cli(argv: list[str], *, home: Path, cwd: Path) -> subprocess.CompletedProcess:
    # an unreachable bus (nothing listens on a free port): ctl commands fall back to the flag
    return subprocess.run([PY, str(ROOT / "cli.py"), "--bus-pub", f"tcp://127.0.0.1:{free_port()}", *argv],
                          cwd=cwd, env=clean_env(COPYHUB_HOME=str(home)), capture_output=True, text=True, timeout=60)


def demo_store(tmp_path: Path) -> str:
    """A demo's store in its own temporary folder, with the demo's accounts."""
    folder = tmp_path / "copyhub-demo-x"
    folder.mkdir()
    url = "sqlite:///" + (folder / "copyhub.db").as_posix()
    store = open_store(url)
    store.add_account(sim_account("Demo_Master", "MASTER", 1001))
    store.add_account(sim_account("Demo_FX_Ratio", login=2003))
    store.close()
    return url


@pytest.fixture
def home(tmp_path):
    home = tmp_path / "home"
    home.mkdir()
    return home


@pytest.fixture
def elsewhere(tmp_path):
    folder = tmp_path / "elsewhere"
    folder.mkdir()
    return folder


def stopped_demo(home: Path, url: str) -> None:
    """The file a demo leaves, naming a launcher that is gone (a pid that exited)."""
    done = subprocess.run([PY, "-c", "import os; print(os.getpid())"], capture_output=True, text=True, timeout=60)
    (home / "data").mkdir(parents=True, exist_ok=True)
    (home / "data" / RUNNING_DEMO_FILE).write_text(json.dumps({"db_url": url, "pid": int(done.stdout), "created": 1.0}))


# ------------------------------------------------------------------ a running demo
def test_a_write_command_while_a_demo_runs_uses_the_demo_store_and_status_still_finds_it(tmp_path, home, elsewhere):
    url = demo_store(tmp_path)
    announce_demo(home / "data", url)  # this test process plays the demo's launcher: it is running
    default = home / "data" / "copyhub.db"

    proc = run_cli(["pause", "Demo_FX_Ratio"], home=home, cwd=elsewhere)
    assert proc.returncode == 0, proc.stderr
    assert proc.stderr.splitlines()[0] == (f"cli: no store at {default}; using the running demo's store "
                                           f"{mask_url(url)} (--db names another)")
    assert not default.exists()  # no empty store created at the default place
    with open_store(url) as store:
        assert store.get_flag("paused:Demo_FX_Ratio") is True

    proc = run_cli(["accounts", "set", "Demo_FX_Ratio", "slippage_tolerance=70"], home=home, cwd=elsewhere)
    assert proc.returncode == 0, proc.stderr
    assert "using the running demo's store" in proc.stderr and not default.exists()
    with open_store(url) as store:
        assert store.get_account("Demo_FX_Ratio")["slippage_tolerance"] == 70

    proc = run_cli(["status"], home=home, cwd=elsewhere)  # still finds the demo
    assert proc.returncode == 0, proc.stderr
    assert f"showing the running demo's store {mask_url(url)}" in proc.stderr
    assert not default.exists() and list(elsewhere.iterdir()) == []


@pytest.mark.parametrize("argv", [["accounts", "add", json.dumps(sim_account("FTMO_100k", login=7))],
                                  ["keys", "allow", new_key_pair().public, "--name", "VPS-2"]],
                         ids=["accounts add", "keys allow"])
def test_a_store_creating_command_while_a_demo_runs_asks_which_store_and_writes_nowhere(tmp_path, home, elsewhere,
                                                                                         argv):
    """Accounts added to a running demo (real terminals, maybe) would be started by the demo's
    launcher: without --db the command names both stores and does nothing."""
    url = demo_store(tmp_path)
    announce_demo(home / "data", url)
    default = home / "data" / "copyhub.db"
    proc = run_cli(argv, home=home, cwd=elsewhere)
    assert proc.returncode == 2
    name = " ".join(argv[:2])
    assert proc.stderr == (f"cli: error: no store at {default} yet, and a demo is running with its store at "
                           f"{mask_url(url)}: '{name}' does not guess which one you mean. For the demo: python cli.py "
                           f"--db {mask_url(url)} {name} ...; to set up the fleet's own store at {default}: stop the "
                           f"demo first, or pass --db sqlite:///{default.as_posix()}\n")
    assert not default.exists()
    with open_store(url) as store:
        assert sorted(a["name"] for a in store.list_accounts()) == ["Demo_FX_Ratio", "Demo_Master"]
        assert store.list_bus_keys() == []


# ------------------------------------------------------------------ no demo, no store
NEEDS_A_STORE = [
    ["pause", "Demo_FX_Ratio"], ["resume", "Demo_FX_Ratio"], ["flatten", "Demo_FX_Ratio", "--yes"],
    ["kill-switch", "on"], ["reset", "Demo_FX_Ratio"], ["release", "Demo_FX_Ratio", "--yes"],
    ["accounts", "set", "Demo_FX_Ratio", "suffix=.c"], ["accounts", "enable", "Demo_FX_Ratio"],
    ["accounts", "disable", "Demo_FX_Ratio"], ["accounts", "remove", "Demo_FX_Ratio", "--yes"],
    ["accounts", "pin", "Demo_FX_Ratio", "--login", "5"], ["keys", "revoke", "VPS-2"],
]


@pytest.mark.parametrize("argv", NEEDS_A_STORE, ids=lambda a: " ".join(a[:2]))
def test_a_write_command_on_a_missing_store_fails_naming_it_and_creates_nothing(home, elsewhere, argv):
    default = home / "data" / "copyhub.db"
    proc = run_cli(argv, home=home, cwd=elsewhere)
    assert proc.returncode == 2, proc.stderr
    name = " ".join(argv[:2]) if argv[0] in ("accounts", "keys") else argv[0]
    assert proc.stderr == (
        f"cli: error: no store at {default} (settings: SQLITE_PATH, default, home {home}); '{name}' acts on a "
        "fleet's store and does not create an empty one. Point --db / --config at the fleet's store (a demo "
        "started with --db or another home: use the store its banner prints), or set the fleet up first: "
        "python cli.py accounts add (or python setup_db.py)\n")
    assert not default.exists() and not (home / "data").exists() and list(elsewhere.iterdir()) == []


def test_a_write_command_on_a_missing_db_url_fails_too(tmp_path, capsys):
    missing = tmp_path / "nope.db"
    assert cli.main(["--db", "sqlite:///" + missing.as_posix(), "kill-switch", "on"]) == 2
    err = capsys.readouterr().err
    assert err.startswith(f"cli: error: no store at {missing} (--db); 'kill-switch' acts on a fleet's store")
    assert not missing.exists()


def test_accounts_add_and_keys_allow_still_create_the_store(home, elsewhere):
    """README "Windows": ``accounts add`` is how a new fleet's store comes to be."""
    default = home / "data" / "copyhub.db"
    proc = run_cli(["accounts", "add", json.dumps(sim_account("My_Master", "MASTER", 7))], home=home, cwd=elsewhere)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout == "added account My_Master\n" and default.exists()

    other = home / "other"
    proc = run_cli(["keys", "allow", new_key_pair().public, "--name", "VPS-2"], home=other, cwd=elsewhere)
    assert proc.returncode == 0, proc.stderr
    assert (other / "data" / "copyhub.db").exists()


def test_after_a_demo_stopped_a_write_command_names_its_store_and_accounts_add_starts_a_fleet(tmp_path, home, elsewhere):
    url = demo_store(tmp_path)
    stopped_demo(home, url)
    default = home / "data" / "copyhub.db"
    proc = run_cli(["pause", "Demo_FX_Ratio"], home=home, cwd=elsewhere)
    assert proc.returncode == 2
    assert proc.stderr == (f"cli: error: no store at {default}; the demo that ran here has stopped and its store "
                           f"stays at {mask_url(url)}: add --db to use it (python cli.py --db {mask_url(url)} pause ...)\n")
    assert not default.exists()
    # the user now sets up the real fleet (README "Windows", step 4): the default store is created
    proc = run_cli(["accounts", "add", json.dumps(sim_account("My_Master", "MASTER", 7))], home=home, cwd=elsewhere)
    assert proc.returncode == 0, proc.stderr
    with open_store("sqlite:///" + default.as_posix()) as store:
        assert [d["name"] for d in store.list_accounts()] == ["My_Master"]


# ------------------------------------------------------------------ which store was looked in
@pytest.mark.parametrize("argv", [["pause", "Nobody"], ["resume", "Nobody"], ["flatten", "Nobody", "--yes"],
                                  ["accounts", "show", "Nobody"], ["accounts", "set", "Nobody", "suffix=.c"],
                                  ["links", "Nobody"], ["reset", "Nobody"], ["release", "Nobody", "--yes"]],
                         ids=lambda a: " ".join(a[:2]))
def test_no_account_named_x_names_the_store_it_looked_in(tmp_path, capsys, argv):
    url = "sqlite:///" + (tmp_path / "fleet.db").as_posix()
    with open_store(url) as store:
        store.add_account(sim_account("S1"))
    assert cli.main(["--db", url, "--bus-pub", f"tcp://127.0.0.1:{free_port()}", *argv]) == 2
    assert capsys.readouterr().err == f"cli: error: no account named 'Nobody' in the store {url} (known: S1)\n"


def test_an_empty_store_says_so_and_masks_a_password(capsys):
    url = "mongomock://cli_store_choice_empty"
    assert cli.main(["--db", url, "accounts", "show", "Demo_FX_Ratio"]) == 2
    assert capsys.readouterr().err == (
        "cli: error: no account named 'Demo_FX_Ratio' in the store mongomock://cli_store_choice_empty "
        "(known: none); is this the fleet's store? (--db, --config or COPYHUB_CONFIG name another)\n")


def test_the_store_label_masks_credentials():
    class Store:
        label = "mongodb://copy:s3cret@db.example:27017/prop"

    assert cli.store_label(Store()) == "mongodb://copy:***@db.example:27017/prop"
