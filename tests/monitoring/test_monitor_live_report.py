"""``cli.py report`` computes today's report live on request (issue 10): a running node
answers ``report_request:<account>`` at its next evaluation; past days stay stored."""
from __future__ import annotations

import json
import threading

import cli
from monitoring.daily import report_key, report_request_key
from tests.monitoring.monitor_kit import market
from tests.monitoring.test_monitor_rebuild import _close_all


def _publish(env, g, name="A"):
    env.store.upsert_node(name, {"name": name, "role": "slave", "kind": "slave", "state": "RUNNING",
                                 "info": {"risk": g.status_info()}})


def test_report_is_current_on_request_not_five_minutes_old(env, tmp_path, capsys):
    mt5 = env.terminal(2004)
    g = env.guardian({"profile": "ftmo_2step", "initial_balance": 10_000}, mt5=mt5)
    day = g.state.day_id
    stale = env.store.get_flag(report_key("A", day))
    assert stale["trades"] == 0
    for _ in range(3):  # three closed trades after the last scheduled refresh
        env.sim.advance(1.0)
        market(mt5, "EURUSD.c", "BUY", 0.1)
        env.sim.move_price("EURUSD.c", 5, broker="SimProp-Server")
        _close_all(mt5)
        g.tick(env.clock.step())
    assert env.store.get_flag(report_key("A", day))["trades"] == 0  # the 5-minute refresh is not due
    _publish(env, g)
    capsys.readouterr()
    out: dict = {}

    def run_cli():
        out["code"] = cli.main(["--db", f"sqlite:///{(tmp_path / 'store.db').as_posix()}", "report", "--json",
                                "--wait", "20"])

    t = threading.Thread(target=run_cli)
    t.start()
    while t.is_alive():  # the node's loop keeps evaluating meanwhile
        g.tick(env.clock.step())
        t.join(0.05)
    assert out["code"] == 0
    rows = json.loads(capsys.readouterr().out)
    row, = [r for r in rows if r["day"] == day]
    assert row["trades"] == 3 and row["ending_balance"] == mt5.account_info().balance
    assert env.store.get_flag(report_request_key("A")) is None  # consumed


def test_a_node_that_does_not_answer_leaves_the_stored_report(env, tmp_path, capsys):
    mt5 = env.terminal(2004)
    g = env.guardian({"profile": "ftmo_2step", "initial_balance": 10_000}, mt5=mt5)
    _publish(env, g)
    capsys.readouterr()
    code = cli.main(["--db", f"sqlite:///{(tmp_path / 'store.db').as_posix()}", "report", "--wait", "0.2"])
    captured = capsys.readouterr()
    assert code == 0 and "no live answer from A" in captured.err and "A" in captured.out
    assert env.store.get_flag(report_request_key("A")) is None
