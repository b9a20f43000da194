"""``cli.py status`` shows each account's headroom from the nodes' store documents (info.risk)."""
from __future__ import annotations

import json
from datetime import datetime, timezone

import pytest

import cli
from tests.monitoring.monitor_kit import market
from tests.monitoring.test_monitor_downtime import NoBars, _over_the_reset


def _publish(env, g, name="A"):
    """What the node does every second: its status document with ``info.risk``."""
    env.store.upsert_node(name, {"name": name, "role": "slave", "kind": "slave", "state": "RUNNING",
                                 "info": {"risk": g.status_info()}})


def _status(capsys, env, *extra):
    url = f"sqlite:///{env.store_path}"
    capsys.readouterr()  # the guardian's own log lines
    code = cli.main(["--db", url, "status", *extra])
    out, _err = capsys.readouterr()
    assert code == 0
    return out


@pytest.fixture
def env_path(env, tmp_path):
    env.store_path = (tmp_path / "store.db").as_posix()
    return env


def test_status_shows_used_and_left_reference_source_and_lock(env_path, capsys):
    env = env_path
    mt5, _price = _over_the_reset(env, login=2001, side="BUY", volume=10.0,
                                  reset_utc=datetime(2025, 1, 7, 22, tzinfo=timezone.utc),
                                  move=0.00300, deposit_to=100_000.0)
    g = env.guardian({"profile": "the5ers_high_stakes", "initial_balance": 100_000}, login=2001, mt5=mt5)
    _publish(env, g)
    doc = json.loads(_status(capsys, env, "--json"))
    row, = doc["risk"]
    info = g.status_info()
    assert row["account"] == "A" and row["reference_source"] == "rebuilt"
    assert row["daily"]["used_money"] == pytest.approx(info["daily_used_money"])
    assert row["daily"]["left_money"] == pytest.approx(5_150.0 - info["daily_used_money"])
    assert row["daily"]["used_pct"] + row["daily"]["left_pct"] == pytest.approx(100.0, abs=0.02) \
        or row["daily"]["left_pct"] == 0.0
    assert row["daily"]["reference"] == pytest.approx(103_000.0) and row["daily"]["limit_money"] == pytest.approx(5_150.0)
    assert row["overall"]["limit_money"] == 10_000.0
    text = _status(capsys, env)
    assert "DAILY LEFT" in text and "MAX LOSS LEFT" in text and "103,000.00 (rebuilt)" in text


def test_status_says_locked_until_and_assumed_strictest(env_path, capsys):
    env = env_path
    mt5 = env.terminal(2004)
    g = env.guardian({"profile": "the5ers_high_stakes", "initial_balance": 10_000}, mt5=NoBars(mt5))
    market(mt5, "EURUSD.c", "BUY", 5.0)
    while not g.locked:
        env.sim.move_price("EURUSD.c", -20, broker="SimProp-Server")
        g.tick(env.clock.step())
    _publish(env, g)
    text = _status(capsys, env)
    assert "LOCKED until 20" in text and " UTC" in text
    row, = json.loads(_status(capsys, env, "--json"))["risk"]
    assert row["locked"] and row["lock_until_utc_ms"] == g.state.lock.until_utc_ms
