"""CLI parsing helpers and the report formatting, without processes."""
import pytest

from fleet.operator import (
    apply_assignments,
    map_assignments,
    parse_assignment,
    parse_since,
    parse_value,
    top_level_changes,
)
from fleet.report import percentile, slave_summary, status_row, status_table, summary_text


def test_values_parse_as_json_else_text():
    assert parse_value("30") == 30
    assert parse_value('{"XAUUSD":"GOLD"}') == {"XAUUSD": "GOLD"}
    assert parse_value("true") is True and parse_value("null") is None
    assert parse_value(".c") == ".c" and parse_value("GOLD") == "GOLD"


def test_a_symbol_map_key_keeps_its_dots():
    assert parse_assignment("symbol_map.EURUSD.raw=EURUSD") == (["symbol_map", "EURUSD.raw"], "EURUSD")
    assert parse_assignment("symbol_map.US30=null") == (["symbol_map", "US30"], None)
    assert parse_assignment("sizing.mode=fixed") == (["sizing", "mode"], "fixed")  # other fields nest as before
    doc = apply_assignments({"symbol_map": {"US30": "DJ30"}}, [parse_assignment("symbol_map.XAU.r=GOLD")])
    assert doc == {"symbol_map": {"US30": "DJ30", "XAU.r": "GOLD"}}


@pytest.mark.parametrize("old,new,args", [
    ({}, {"XAUUSD": "GOLD", "US30": "DJ30"}, ["symbol_map.US30=DJ30", "symbol_map.XAUUSD=GOLD"]),
    ({"US30": "DJ30", "GER40": "DE40"}, {"US30": "US30.cash"}, ["symbol_map.US30=US30.cash", "symbol_map.GER40=null"]),
    ({}, {"#US30": "DJ30-x"}, ["symbol_map.#US30=DJ30-x"]),
    ({}, {"US 30": "DJ30"}, []),  # a space: the whole map as JSON instead
    ({}, {"A": "null"}, []), ({}, {"A": "500"}, []),  # a value that would read as JSON
    ({}, {"A": "B&C"}, []),
])
def test_map_assignments_are_shell_safe_entries_or_none(old, new, args):
    assert map_assignments("symbol_map", old, new) == args
    if args:  # and they turn old into new
        doc = apply_assignments({"symbol_map": old}, [parse_assignment(a) for a in args])
        assert doc["symbol_map"] == new


def test_assignments_with_dotted_keys_and_removal():
    doc = {"name": "A", "sizing": {"mode": "same"}, "suffix": ".c"}
    new = apply_assignments(doc, [parse_assignment("sizing.mode=multiplier"),
                                  parse_assignment("sizing.multiplier=0.5"),
                                  parse_assignment("suffix=null"),
                                  parse_assignment("risk.max_daily_loss_pct=4")])
    assert new == {"name": "A", "sizing": {"mode": "multiplier", "multiplier": 0.5},
                   "risk": {"max_daily_loss_pct": 4}}
    assert doc["sizing"] == {"mode": "same"}  # input untouched
    assert top_level_changes(doc, new) == ({"sizing": new["sizing"], "risk": new["risk"]}, ["suffix"])


@pytest.mark.parametrize("bad", ["novalue", "=3", "a..b=1", "name=Other"])
def test_bad_assignments_are_refused(bad):
    with pytest.raises(ValueError):
        parse_assignment(bad)


def test_assignment_into_a_non_object_is_refused():
    with pytest.raises(ValueError, match="not an object"):
        apply_assignments({"suffix": ".c"}, [parse_assignment("suffix.x=1")])


def test_since_accepts_durations_and_iso_times():
    now = 1_000_000_000
    assert parse_since("10m", now) == now - 600_000
    assert parse_since("2h", now) == now - 7_200_000
    assert parse_since("1970-01-01T00:00:01Z", now) == 1000
    assert parse_since("1970-01-01T00:00:02", now) == 2000
    with pytest.raises(ValueError, match="10m"):
        parse_since("yesterday", now)


def test_percentile_nearest_rank():
    assert percentile([], 50) is None
    assert percentile([5.0], 99) == 5.0
    data = list(range(1, 101))
    assert percentile(data, 50) == 50 and percentile(data, 99) == 99 and percentile(data, 100) == 100


def test_slave_summary_counts_copies_skips_by_reason_failures_and_latency():
    trades = [{"status": "OPEN", "latency_ms": 10}, {"status": "CLOSED", "latency_ms": 30},
              {"status": "SKIPPED", "reason": "slippage 80 > 50 points"},
              {"status": "SKIPPED", "reason": "slippage 80 > 50 points"},
              {"status": "SKIPPED", "reason": "symbol US30 unknown"}, {"status": "FAILED", "error": "10019 no money"},
              {"status": "PENDING"}]
    s = slave_summary(trades)
    assert (s["copies"], s["open"], s["closed"], s["skipped"], s["failed"], s["pending"]) == (2, 1, 1, 3, 1, 1)
    assert s["skip_reasons"] == {"slippage 80 > 50 points": 2, "symbol US30 unknown": 1}
    assert s["latency_p50_ms"] == 10 and s["latency_p99_ms"] == 30
    text = summary_text({"S1": s})
    assert "S1 skipped x2: slippage 80 > 50 points" in text and "S1 failed x1: 10019 no money" in text


def test_summary_groups_reasons_that_differ_only_in_their_numbers():
    trades = [{"status": "SKIPPED", "reason": f"slippage {p}.0 points > tolerance 50 (XAUUSD BUY at 20{p}.5)"}
              for p in (61, 72, 72, 93)]
    trades += [{"status": "SKIPPED", "reason": "max_open_positions 3 reached"},
               {"status": "SKIPPED", "reason": "symbol 'US30' not available on slave"}]
    s = slave_summary(trades)
    assert len(s["skip_reasons"]) == 5  # the JSON keeps every reason as it was
    # the example shown is the most frequent reason of the group
    lines = [line for line in summary_text({"S1": s}).splitlines() if line.startswith("  S1")]
    assert lines == [
        "  S1 skipped x4: slippage 72.0 points > tolerance 50 (XAUUSD BUY at 2072.5) (and 2 more like it, other numbers)",
        "  S1 skipped x1: max_open_positions 3 reached",
        "  S1 skipped x1: symbol 'US30' not available on slave",
    ]


def test_status_rows_show_supervisor_verdict_reason_and_slave_columns():
    now = 100_000
    slave = {"name": "S1", "role": "slave", "state": "RUNNING", "pid": 11, "heartbeat_ms": now - 1500,
             "info": {"links_open": 3, "last_copy_ms": now - 4000, "paused": False},
             "supervisor_state": "RUNNING", "proc_pid": 11, "uptime_s": 65.0, "restarts": 2,
             "cpu_percent": 1.5, "rss_bytes": 50 * 1048576}
    bad = {"name": "S2", "role": "slave", "state": "CONFIG_ERROR", "pid": 12, "reason": "field 'sizing' bad",
           "supervisor_state": "CONFIG_ERROR", "proc_pid": None}
    rows = [status_row(d, now_ms=now, flags={"paused:S1": True}) for d in (slave, bad)]
    assert rows[0]["paused"] is True and rows[0]["links_open"] == 3 and rows[0]["heartbeat_age_ms"] == 1500
    assert rows[1]["state"] == "CONFIG_ERROR" and rows[1]["pid"] is None and "sizing" in rows[1]["reason"]
    table = status_table(rows, now_ms=now)
    assert "50.0MB" in table and "4s ago" in table and "field 'sizing' bad" in table
