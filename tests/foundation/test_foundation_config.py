import subprocess
import sys

import pytest

from config import Settings, SettingsError, load_settings, mask_url
from tests.conftest import ROOT


def test_defaults_keep_the_seed_names_and_values():
    s = load_settings({})
    assert s.DATABASE_NAME == "prop_copy_trader"
    assert s.ZMQ_PUB_PORT == 5555
    assert s.DEFAULT_SLIPPAGE_TOLERANCE == 50
    assert s.DEFAULT_MAGIC_NUMBER == 234000
    assert s.MASTER_POLL_INTERVAL_MS == 20
    # the seed's data/copyhub.db, taken from the home folder (here: the project), not the current one
    assert s.database_url == "sqlite:///" + (ROOT / "data" / "copyhub.db").as_posix()


def test_every_setting_is_overridable_by_environment():
    s = load_settings({"COPYHUB_MASTER_POLL_INTERVAL_MS": "5", "COPYHUB_BUS_HOST": "10.0.0.2"})
    assert s.MASTER_POLL_INTERVAL_MS == 5
    assert s.bus_pub_endpoint == "tcp://10.0.0.2:5555"


def test_mongo_uri_given_explicitly_selects_mongodb():
    s = load_settings({"COPYHUB_MONGO_URI": "mongodb://db:27017", "COPYHUB_DATABASE_NAME": "fleet"})
    assert s.database_url == "mongodb://db:27017/fleet"


def test_mongo_uri_with_options_or_database_keeps_them():
    s = load_settings({"COPYHUB_MONGO_URI": "mongodb://a:1,b:2/?replicaSet=rs0"})
    assert s.database_url == "mongodb://a:1,b:2/prop_copy_trader?replicaSet=rs0"
    s = load_settings({"COPYHUB_MONGO_URI": "mongodb://db/mine"})
    assert s.database_url == "mongodb://db/mine"


def test_database_url_wins():
    s = load_settings({"COPYHUB_DATABASE_URL": "sqlite:///x.db", "COPYHUB_MONGO_URI": "mongodb://db"})
    assert s.database_url == "sqlite:///" + (ROOT / "x.db").as_posix()


@pytest.mark.parametrize(
    "key,value,fragment",
    [
        ("COPYHUB_ZMQ_PUB_PORT", "abc", "expected an integer"),
        ("COPYHUB_ZMQ_PUB_PORT", "70000", "TCP port"),
        ("COPYHUB_MASTER_POLL_INTERVAL_MS", "0", ">= 1"),
        ("COPYHUB_DATABASE_URL", "postgres://x", "sqlite:///"),
        ("COPYHUB_LOG_LEVEL", "LOUD", "DEBUG"),
    ],
)
def test_invalid_values_are_refused_with_the_variable_named(key, value, fragment):
    with pytest.raises(SettingsError) as err:
        load_settings({key: value})
    assert key in str(err.value) and fragment in str(err.value)


def test_pub_and_sub_ports_must_differ():
    with pytest.raises(SettingsError):
        load_settings({"COPYHUB_ZMQ_SUB_PORT": "5555"})


def test_secrets_are_masked_when_printed():
    s = load_settings({"COPYHUB_DATABASE_URL": "mongodb://admin:hunter2@db:27017/x"})
    shown = repr(s.describe())
    assert "hunter2" not in shown and "admin:***@" in shown
    assert mask_url("mongodb://u:p@h/db") == "mongodb://u:***@h/db"


def test_bad_environment_exits_2_with_one_line_not_a_traceback():
    env = {"COPYHUB_ZMQ_PUB_PORT": "nope", "PATH": ""}
    proc = subprocess.run([sys.executable, "config.py"], cwd=ROOT, env=env, capture_output=True, text=True)
    assert proc.returncode == 2
    assert "Traceback" not in proc.stderr and "COPYHUB_ZMQ_PUB_PORT" in proc.stderr


def test_settings_object_is_immutable():
    with pytest.raises(AttributeError):  # frozen dataclass: FrozenInstanceError
        Settings().ZMQ_PUB_PORT = 1  # type: ignore[misc]
