"""cli.py report and release: the guardian's stored daily reports, read without a terminal."""
from __future__ import annotations

import json

from fleet_harness import sim_account

import cli
from db import open_store
from monitoring.guardian import REPORT_PREFIX, release_key


def _db(tmp_path):
    url = "sqlite:///" + (tmp_path / "r.db").as_posix()
    store = open_store(url)
    store.add_account(sim_account("S1"))
    store.add_account(sim_account("S2"))
    for account, day, pl in (("S1", "2026-11-19", -120.5), ("S1", "2026-11-20", 300.0), ("S2", "2026-11-20", 10.0)):
        store.set_flag(f"{REPORT_PREFIX}{account}:{day}", {"starting_balance": 10000.0, "ending_balance": 10000.0 + pl, "realised_pl": pl, "trades": 3})
    return url, store


def test_report_filters_by_account_and_day_as_json(tmp_path, capsys):
    url, store = _db(tmp_path)
    assert cli.main(["report", "--db", url, "--account", "S1", "--json"]) == 0
    rows = json.loads(capsys.readouterr().out)
    assert [(r["account"], r["day"]) for r in rows] == [("S1", "2026-11-19"), ("S1", "2026-11-20")]
    assert cli.main(["report", "--db", url, "--date", "2026-11-20", "--json"]) == 0
    rows = json.loads(capsys.readouterr().out)
    assert sorted(r["account"] for r in rows) == ["S1", "S2"]
    store.close()


def test_report_exports_csv_to_a_file(tmp_path, capsys):
    url, store = _db(tmp_path)
    out = tmp_path / "r.csv"
    assert cli.main(["report", "--db", url, "--format", "csv", "--output", str(out)]) == 0
    lines = out.read_text().strip().splitlines()
    assert lines[0].startswith("account,") and len(lines) == 4
    assert any("-120.5" in line for line in lines)
    store.close()


def test_report_bad_date_is_one_line_exit_2(tmp_path, capsys):
    url, store = _db(tmp_path)
    assert cli.main(["report", "--db", url, "--date", "yesterday"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "YYYY-MM-DD" in err
    store.close()


def test_release_writes_the_request_and_an_audit_event(tmp_path, capsys):
    url, store = _db(tmp_path)
    assert cli.main(["release", "S1", "--yes", "--db", url]) == 0
    assert store.get_flag(release_key("S1")) is not None
    assert any(e["data"].get("command") == "release" for e in store.list_events(kind="operator_command"))
    store.close()
