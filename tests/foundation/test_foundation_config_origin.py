"""A settings-file error says where the path came from (``--config`` or COPYHUB_CONFIG), and
an unknown key's hint works while that file is the active one."""
from __future__ import annotations

import os
import subprocess
import sys
from dataclasses import fields
from pathlib import Path

import pytest

from config import Settings, SettingsError, load_settings
from tests.conftest import ROOT

PY = sys.executable
ENTRY_POINTS = [["cli.py", "status"], ["config.py"], ["launcher.py", "--demo"], ["setup_db.py", "--check"]]
KNOWN = ", ".join(sorted(f.name.lower() for f in fields(Settings) if not f.name.startswith("_")))


def clean_env(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("COPYHUB_")}
    env.update(extra)
    return env


def run(argv: list[str], *, cwd: Path, env: dict[str, str]) -> subprocess.CompletedProcess:
    return subprocess.run([PY, str(ROOT / argv[0]), *argv[1:]], cwd=cwd, env=env, capture_output=True, text=True,
                          timeout=60)


@pytest.mark.parametrize("entry", ENTRY_POINTS, ids=lambda e: e[0])
def test_a_missing_config_file_given_with_dash_dash_config_is_blamed_on_the_option(tmp_path, entry):
    missing = tmp_path / "nonexist.toml"
    for argv in ([entry[0], "--config", str(missing), *entry[1:]], [entry[0], f"--config={missing}", *entry[1:]]):
        proc = run(argv, cwd=tmp_path, env=clean_env())
        assert proc.returncode == 2
        assert proc.stderr == f"copyhub: invalid setting: --config {str(missing)!r}: no settings file there\n"
    # a relative path: as typed, and where it was looked for
    proc = run([entry[0], "--config", "fleet.toml", *entry[1:]], cwd=tmp_path, env=clean_env())
    assert proc.returncode == 2
    assert proc.stderr == (f"copyhub: invalid setting: --config 'fleet.toml': no settings file there "
                           f"({tmp_path / 'fleet.toml'})\n")


@pytest.mark.parametrize("entry", ENTRY_POINTS, ids=lambda e: e[0])
def test_a_missing_config_file_named_by_the_variable_is_blamed_on_the_variable(tmp_path, entry):
    missing = tmp_path / "nonexist.toml"
    proc = run(entry, cwd=tmp_path, env=clean_env(COPYHUB_CONFIG=str(missing)))
    assert proc.returncode == 2
    assert proc.stderr == (f"copyhub: invalid setting: the environment variable COPYHUB_CONFIG={str(missing)!r} "
                           "names no settings file: point it at the file, or unset it\n")


def test_dash_dash_config_wins_over_the_variable_and_is_the_one_named(tmp_path):
    good = tmp_path / "good.toml"
    good.write_text("log_level = 'INFO'\n", encoding="utf-8")
    missing = tmp_path / "nonexist.toml"
    proc = run(["config.py", "--config", str(missing)], cwd=tmp_path, env=clean_env(COPYHUB_CONFIG=str(good)))
    assert proc.returncode == 2
    assert proc.stderr == f"copyhub: invalid setting: --config {str(missing)!r}: no settings file there\n"


def test_load_settings_names_its_source(tmp_path):
    missing = tmp_path / "nonexist.toml"
    with pytest.raises(SettingsError) as err:
        load_settings({}, config_file=missing)
    assert str(err.value) == f"--config {str(missing)!r}: no settings file there"
    with pytest.raises(SettingsError) as err:
        load_settings({"COPYHUB_CONFIG": str(missing)})
    assert str(err.value) == (f"the environment variable COPYHUB_CONFIG={str(missing)!r} names no settings file: "
                              "point it at the file, or unset it")


@pytest.mark.parametrize("key,hint", [("colour", ""), ("log_levle", " (did you mean 'log_level'?)")])
def test_an_unknown_key_lists_the_known_ones_instead_of_sending_to_config_py(tmp_path, key, hint):
    """``python config.py`` reads the same file and stops on the same key: the message
    itself must say what the file may hold."""
    f = tmp_path / "copyhub.toml"
    f.write_text(f"{key} = 1\n", encoding="utf-8")
    expected = (f"{key} in {f}: not a copyhub setting{hint}; rename or remove it. "
                f"The settings a file may hold: {KNOWN}")
    with pytest.raises(SettingsError) as err:
        load_settings({}, config_file=f)
    assert str(err.value) == expected
    for env in (clean_env(), clean_env(COPYHUB_CONFIG=str(f))):
        argv = ["config.py", "--config", str(f)] if "COPYHUB_CONFIG" not in env else ["config.py"]
        proc = run(argv, cwd=tmp_path, env=env)
        assert proc.returncode == 2
        assert proc.stderr == f"copyhub: invalid setting: {expected}\n"
        assert "config.py" not in proc.stderr


@pytest.mark.parametrize("script", ["nodes/master.py", "nodes/slave.py", "nodes/monitor.py"])
def test_every_node_takes_dash_dash_config_and_reads_that_file(tmp_path, script):
    """The nodes take --config like the other entry points (the README lists them): a good
    file is accepted (no 'unrecognized arguments'), a bad one is refused, so it was read."""
    good, bad = tmp_path / "fleet.toml", tmp_path / "bad.toml"
    good.write_text("dashboard_port = 18123\n", encoding="utf-8")
    bad.write_text("dashboard_prot = 18123\n", encoding="utf-8")
    proc = run([script, "--config", str(good), "--help"], cwd=tmp_path, env=clean_env())
    assert proc.returncode == 0 and "--config PATH" in proc.stdout, proc.stderr
    proc = run([script, "--config", str(bad), "--help"], cwd=tmp_path, env=clean_env())
    assert proc.returncode == 2 and "dashboard_prot" in proc.stderr and "did you mean 'dashboard_port'" in proc.stderr


@pytest.mark.parametrize("encoding", ["utf-8", "utf-8-sig", "utf-16"])
def test_a_settings_file_saved_by_windows_tools_is_read(tmp_path, encoding):
    """Notepad's UTF-8 (with or without BOM) and PowerShell 5.1's ``>`` (UTF-16 with BOM)."""
    from config import read_config_file

    path = tmp_path / "copyhub.toml"
    path.write_text("# réglages\ndashboard_port = 18123\nlog_dir = 'D:\\copyhub\\logs'\n", encoding=encoding)
    assert read_config_file(path) == {"DASHBOARD_PORT": 18123, "LOG_DIR": "D:\\copyhub\\logs"}


def test_a_settings_file_in_another_encoding_says_to_save_it_as_utf8(tmp_path):
    from config import read_config_file

    path = tmp_path / "copyhub.toml"
    data = "# réglages\ndashboard_port = 18123\n".encode("cp1252")
    path.write_bytes(data)
    with pytest.raises(SettingsError) as exc:
        read_config_file(path)
    at = data.index("é".encode("cp1252"))
    assert str(exc.value) == f"settings file {path}: not UTF-8 or UTF-16 text (byte {at}): save it as UTF-8"
