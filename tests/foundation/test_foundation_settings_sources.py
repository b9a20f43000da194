"""One source of settings: copyhub.toml (--config / COPYHUB_CONFIG), then COPYHUB_*, then
defaults; paths from one home folder; every entry point reads the same value."""
from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
from pathlib import Path

import pytest

from config import SettingsError, load_settings
from fleet.demo import DemoPortBusy, free_port, plan_demo_endpoints
from tests.conftest import ROOT

PY = sys.executable


def clean_env(**extra: str) -> dict[str, str]:
    """The environment without any COPYHUB_* the developer may have set."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("COPYHUB_")}
    env.update(extra)
    return env


def write_toml(path: Path, **values) -> Path:
    lines = [f"{k} = {json.dumps(v)}" for k, v in values.items()]
    path.write_text("# test settings\n" + "\n".join(lines) + "\n", encoding="utf-8")
    return path


# ------------------------------------------------------------------ the lookup order
def test_file_then_environment_then_default_and_each_source_is_told(tmp_path):
    f = write_toml(tmp_path / "copyhub.toml", zmq_pub_port=6101, LOG_LEVEL="debug")
    s = load_settings({"COPYHUB_ZMQ_PUB_PORT": "7000", "COPYHUB_ZMQ_SUB_PORT": "7001"}, config_file=f)
    assert s.ZMQ_PUB_PORT == 6101 and s.source("ZMQ_PUB_PORT") == f"file {f}"  # the file wins
    assert s.ZMQ_SUB_PORT == 7001 and s.source("ZMQ_SUB_PORT") == "env COPYHUB_ZMQ_SUB_PORT"
    assert s.LOG_LEVEL == "DEBUG"
    assert s.MASTER_POLL_INTERVAL_MS == 20 and s.source("MASTER_POLL_INTERVAL_MS") == "default"
    rows = {name: where for name, _value, where in s.describe_sources()}
    assert "overrides COPYHUB_ZMQ_PUB_PORT" in rows["ZMQ_PUB_PORT"]
    assert rows["settings file"] == "read"


def test_config_variable_names_the_file_and_a_missing_named_file_is_an_error(tmp_path):
    f = write_toml(tmp_path / "fleet.toml", sim_endpoint="tcp://127.0.0.1:6200")
    assert load_settings({"COPYHUB_CONFIG": str(f)}).SIM_ENDPOINT == "tcp://127.0.0.1:6200"
    with pytest.raises(SettingsError, match="COPYHUB_CONFIG"):
        load_settings({"COPYHUB_CONFIG": str(tmp_path / "absent.toml")})


@pytest.mark.parametrize("body,fragment", [
    ("zmq_pub_prot = 5555\n", "did you mean 'zmq_pub_port'"),
    ("zmq_pub_port = 'abc'\n", "zmq_pub_port in"),
    ("zmq_pub_port = 70000\n", "TCP port"),
    ("log_level = 3\n", "expected a string"),
    ("this is not toml\n", "not valid TOML"),
])
def test_a_bad_settings_file_exits_2_naming_the_setting_and_the_file(tmp_path, body, fragment):
    f = tmp_path / "copyhub.toml"
    f.write_text(body, encoding="utf-8")
    with pytest.raises(SettingsError, match=fragment):
        load_settings({}, config_file=f)
    proc = subprocess.run([PY, "config.py", "--config", str(f)], cwd=ROOT, env=clean_env(), capture_output=True,
                          text=True, timeout=60)
    assert proc.returncode == 2 and "Traceback" not in proc.stderr
    assert fragment in proc.stderr and str(f) in proc.stderr or "TOML" in fragment


def test_python_config_py_shows_each_value_and_where_it_came_from(tmp_path):
    f = write_toml(tmp_path / "copyhub.toml", sim_endpoint="tcp://127.0.0.1:6300")
    proc = subprocess.run([PY, "config.py", "--json"], cwd=ROOT, capture_output=True, text=True, timeout=60,
                          env=clean_env(COPYHUB_CONFIG=str(f), COPYHUB_STALE_AFTER_MS="4000"))
    assert proc.returncode == 0, proc.stderr
    shown = json.loads(proc.stdout)
    assert shown["SIM_ENDPOINT"] == {"value": "tcp://127.0.0.1:6300", "source": f"file {f}"}
    assert shown["STALE_AFTER_MS"] == {"value": 4000, "source": "env COPYHUB_STALE_AFTER_MS"}
    assert shown["HEARTBEAT_INTERVAL_MS"]["source"] == "default"
    assert shown["home"]["value"] == str(tmp_path)


# ------------------------------------------------------------------ one home folder
def test_relative_paths_come_from_the_settings_files_folder_not_the_current_one(tmp_path):
    home = tmp_path / "fleet"
    home.mkdir()
    f = write_toml(home / "copyhub.toml", log_dir="logs", database_url="sqlite:///store/copyhub.db")
    s = load_settings({}, config_file=f)
    assert Path(s.LOG_DIR) == home / "logs" and Path(s.DATA_DIR) == home / "data"
    assert s.database_url == "sqlite:///" + (home / "store" / "copyhub.db").as_posix()


def test_copyhub_home_wins_and_without_a_file_home_is_the_project_folder(tmp_path):
    s = load_settings({"COPYHUB_HOME": str(tmp_path)})
    assert Path(s.SQLITE_PATH) == tmp_path / "data" / "copyhub.db" and s.home == tmp_path
    s = load_settings({})
    assert s.home == ROOT and Path(s.LOG_DIR) == ROOT / "logs"
    abs_url = "sqlite:///" + (tmp_path / "x.db").as_posix()
    assert load_settings({"COPYHUB_DATABASE_URL": abs_url}).database_url == abs_url
    assert load_settings({"COPYHUB_DATABASE_URL": "sqlite:///C:/fleet/x.db"}).database_url == "sqlite:///C:/fleet/x.db"


# ------------------------------------------------------------------ every entry point, one setting
def _probe(code: str, env: dict[str, str]) -> str:
    proc = subprocess.run([PY, "-c", code], cwd=ROOT, env=env, capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0, proc.stderr
    return proc.stdout.strip()


def _first_line(argv: list[str], env: dict[str, str], cwd: Path) -> str:
    """Start a server entry point, read its first line, stop it."""
    proc = subprocess.Popen(argv, cwd=cwd, env={**env, "PYTHONPATH": str(ROOT)}, stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, text=True)
    try:
        return proc.stdout.readline().strip()
    finally:
        proc.terminate()
        proc.wait(10)


@pytest.fixture(params=["file", "env"])
def one_setting(request, tmp_path):
    """SIM_ENDPOINT and the bus ports set once, in a settings file or in the environment."""
    sim, pub, sub = free_port(), free_port(), free_port()
    while len({sim, pub, sub}) < 3:
        sub = free_port()
    values = {"SIM_ENDPOINT": f"tcp://127.0.0.1:{sim}", "ZMQ_PUB_PORT": pub, "ZMQ_SUB_PORT": sub,
              "DATABASE_URL": "sqlite:///" + (tmp_path / "one.db").as_posix()}
    if request.param == "file":
        f = write_toml(tmp_path / "copyhub.toml", **{k.lower(): v for k, v in values.items()})
        env = clean_env(COPYHUB_CONFIG=str(f))
    else:
        env = clean_env(**{f"COPYHUB_{k}": str(v) for k, v in values.items()})
    return values, env


def test_every_entry_point_honours_one_setting(one_setting, tmp_path):
    values, env = one_setting
    sim = values["SIM_ENDPOINT"]
    pub, sub = f"tcp://127.0.0.1:{values['ZMQ_PUB_PORT']}", f"tcp://127.0.0.1:{values['ZMQ_SUB_PORT']}"
    elsewhere = tmp_path / "elsewhere"  # started from another folder
    elsewhere.mkdir()
    # config.py
    shown = json.loads(_probe("import config,sys; sys.argv=['config.py','--json']; config.main(['--json'])", env))
    assert shown["SIM_ENDPOINT"]["value"] == sim
    # launcher.py --demo (the issue: it served the simulator on 5570 whatever the setting said)
    got = _probe("import launcher; from config import settings; "
                 "print(launcher.endpoints(launcher.build_parser().parse_args(['--demo']), settings)[:3])", env)
    assert got == str((pub, sub, sim))
    got = _probe("import launcher; from config import settings; "
                 "print(launcher.endpoints(launcher.build_parser().parse_args([]), settings)[:3])", env)
    assert got == str((pub, sub, sim))
    # the nodes
    got = _probe("from nodes.runtime import node_arguments; a = node_arguments('slave').parse_args(['--name', 'X']); "
                 "print((a.bus_pub, a.bus_sub, a.sim_endpoint))", env)
    assert got == str((pub, sub, sim))
    # cli.py: the bus it publishes ctl on, the simulator its sizing/symbols commands read
    got = _probe("import cli; a = cli.build_parser().parse_args(['sizing', 'F']); print(a.sim_endpoint)", env)
    assert got == sim
    # setup_db.py --demo: the store and the demo accounts' simulator
    proc = subprocess.run([PY, str(ROOT / "setup_db.py"), "--demo", "--json"], cwd=elsewhere, env=env,
                          capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0, proc.stderr
    assert json.loads(proc.stdout)["store"] == values["DATABASE_URL"]
    from db import open_store
    store = open_store(values["DATABASE_URL"])
    assert {d["terminal"]["endpoint"] for d in store.list_accounts()} == {sim}
    store.close()
    # python -m sim serve and python -m messaging.proxy
    assert _first_line([PY, "-m", "sim", "serve", "--tick-hz", "0"], env, elsewhere).startswith(
        f"sim server listening on {sim} ")
    assert _first_line([PY, "-m", "messaging.proxy"], env, elsewhere) == f"READY xsub={pub} xpub={sub}"


# ------------------------------------------------------------------ the demo's ports
def test_demo_moves_a_busy_default_port_and_says_so_but_refuses_a_busy_explicit_one():
    holder = socket.socket()
    holder.bind(("127.0.0.1", 0))
    holder.listen(1)
    busy = holder.getsockname()[1]
    try:
        free = free_port()
        explicit = load_settings({"COPYHUB_SIM_ENDPOINT": f"tcp://127.0.0.1:{busy}", "COPYHUB_ZMQ_PUB_PORT": str(free),
                                  "COPYHUB_ZMQ_SUB_PORT": str(free_port(avoid={free}))})
        with pytest.raises(DemoPortBusy) as err:
            plan_demo_endpoints(explicit)
        assert "SIM_ENDPOINT" in str(err.value) and "env COPYHUB_SIM_ENDPOINT" in str(err.value)
        import config
        defaults = load_settings({})
        object.__setattr__(defaults, "SIM_ENDPOINT", f"tcp://127.0.0.1:{busy}")  # a default that happens to be busy
        plan = plan_demo_endpoints(defaults)
        assert plan.sim_endpoint != f"tcp://127.0.0.1:{busy}"
        assert any(f"port {busy} (SIM_ENDPOINT default) is in use" in n for n in plan.notes)
        assert config.settings is not defaults
    finally:
        holder.close()


def test_a_misspelled_environment_variable_is_named_with_the_setting_it_resembles(capsys, monkeypatch):
    import config
    from config import misspelled_environment

    env = {"COPYHUB_LOG_LEVLE": "DEBUG", "COPYHUB_ZMQ_PUB_PROT": "6000", "COPYHUB_LOG_LEVEL": "INFO",
           "COPYHUB_TEST_MONGO_URI": "mongodb://x", "COPYHUB_TELEGRAM_TOKEN": "t", "COPYHUB_SIM_SEED": "3",
           "COPYHUB_CONFIG": "x.toml", "COPYHUB_SOMETHING_ELSE": "1", "PATH": "/bin"}
    assert misspelled_environment(env) == [("COPYHUB_LOG_LEVLE", "COPYHUB_LOG_LEVEL"),
                                           ("COPYHUB_ZMQ_PUB_PROT", "COPYHUB_ZMQ_PUB_PORT")]
    monkeypatch.setenv("COPYHUB_LOG_LEVLE", "DEBUG")
    assert config.main([]) == 0
    err = capsys.readouterr().err
    assert "COPYHUB_LOG_LEVLE" in err and "did you mean COPYHUB_LOG_LEVEL" in err
