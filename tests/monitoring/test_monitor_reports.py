"""Stored daily reports read back for the CLI, rendered as table, CSV and JSON."""
from __future__ import annotations

import csv
import io
import json

import pytest

from monitoring.reports import load_reports, main, render, request_release
from tests.monitoring.monitor_kit import drive, market


@pytest.fixture
def stored(env):
    mt5 = env.terminal()
    g = env.guardian(mt5=mt5, snapshot_interval_ms=1000)
    market(mt5, "EURUSD.c", "BUY", 0.5)
    drive(env, g, points=-20, until=lambda g: g.status_info()["daily_used_pct"] > 30)
    g.close(env.clock.now)  # writes today's report
    other = env.guardian(None, name="B", login=2001)
    other.close(env.clock.now)
    env.store.set_flag("report:A:2025-01-03", {**env.store.get_flag("report:A:2025-01-06"), "day": "2025-01-03"})
    return env


def test_load_filters_by_account_day_and_since(stored):
    store = stored.store
    assert [(r["account"], r["day"]) for r in load_reports(store)] == [("A", "2025-01-03"), ("A", "2025-01-06"), ("B", "2025-01-06")]
    assert [r["day"] for r in load_reports(store, account="A")] == ["2025-01-03", "2025-01-06"]
    assert [r["account"] for r in load_reports(store, day="2025-01-06")] == ["A", "B"]
    assert [r["day"] for r in load_reports(store, account="A", since="2025-01-04")] == ["2025-01-06"]
    with pytest.raises(ValueError, match="YYYY-MM-DD"):
        load_reports(store, day="06/01/2025")


def test_the_stored_report_has_the_days_figures(stored):
    [a] = load_reports(stored.store, account="A", day="2025-01-06")
    # funded today: the deposit is a balance operation of the day (the simulator's clock stands
    # still between ticks, so the entry commission shares the first snapshot's millisecond)
    assert a["login"] == 2004 and a["starting_balance"] < 2 and a["balance_ops"] == 10000.0
    assert a["floating_pl"] < -100 and a["ending_equity"] < 9900
    assert a["daily_limit_money"] == 500.0 and a["daily_headroom_min"] < 350  # what the guardian saw
    assert a["max_drawdown_money"] > 100 and a["worst_level"] == "OK" and a["final"] is False


def test_render_table_csv_and_json(stored):
    docs = load_reports(stored.store, day="2025-01-06")
    table = render(docs, "table")
    assert table.splitlines()[0].split()[:2] == ["account", "day"] and "A" in table and "B" in table
    rows = list(csv.DictReader(io.StringIO(render(docs, "csv"))))
    assert [r["account"] for r in rows] == ["A", "B"] and rows[0]["login"] == "2004"
    assert rows[1]["daily_limit_money"] == ""  # B has no risk field: no limit
    data = json.loads(render(docs, "json"))
    assert data[0]["account"] == "A" and data[0]["trades"] == 0 and "profit_factor" in data[0]
    assert render([], "table") == "no reports"
    with pytest.raises(ValueError):
        render(docs, "xml")


def test_cli_entry_point(stored, tmp_path, capsys):
    url = f"sqlite:///{tmp_path / 'store.db'}"
    assert main(["--db", url, "--account", "A", "--format", "csv"]) == 0
    out = capsys.readouterr().out
    assert out.splitlines()[0].startswith("account,login,day") and len(out.splitlines()) == 3
    assert main(["--db", url, "--date", "bad"]) == 2


def test_request_release_writes_the_flag_the_guardian_polls(env):
    req = request_release(env.store, "A", by="alice")
    assert env.store.get_flag("risk_release:A") == req and req["by"] == "alice"


def test_reports_are_computed_off_the_trading_loop(env):
    import threading

    g = env.guardian(report_in_background=True, snapshot_interval_ms=1000)
    g.tick(env.clock.step(300_000))  # the periodic refresh is due
    worker = g.reports.worker
    assert worker is not None and worker.daemon and worker is not threading.current_thread()
    g.close(env.clock.now)  # drains the queue, then writes today's report itself
    assert g.reports.worker is None and not worker.is_alive()
    assert env.store.get_flag("report:A:2025-01-06")["login"] == 2004


def test_the_table_shows_the_days_deposits_so_start_and_end_add_up(stored):
    """Funded the same day: start ≈ 0, end ≈ 10,000 — the deposits column says why."""
    [a] = load_reports(stored.store, account="A", day="2025-01-06")
    lines = [ln for ln in render([a], "table").splitlines() if not set(ln) <= {"-", " "}]
    head = [h.strip() for h in lines[0].split("  ") if h.strip()]
    cells = [c.strip() for c in lines[1].split("  ") if c.strip()]
    row = dict(zip(head, cells, strict=True))
    assert row["deposits"] == "10,000.00"
    money = {k: float(row[k].replace(",", "")) for k in ("start bal", "realised", "deposits", "end bal")}
    assert money["start bal"] + money["realised"] + money["deposits"] == pytest.approx(money["end bal"], abs=0.01)
