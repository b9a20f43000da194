"""Daily report on the firm's clock: FTMO day Nov 20 = 01:00 server Nov 20 .. 01:00 Nov 21."""
import csv
import io
import json
from datetime import date

import pytest
from risk_testkit import deal, snap, srv

from copier.report import COLUMNS, daily_report, to_csv, to_json
from copier.risk import resolve_risk_config

CFG = resolve_risk_config({"profile": "ftmo_2step", "initial_balance": 100_000})


def history():
    return [
        deal(srv(2026, 11, 1), 100_000, type="BALANCE", entry=0),
        # Nov 19: position 11, +2,000 less 2 x 7 commission.
        deal(srv(2026, 11, 19, 10), 0, entry=0, commission=-7, position_id=11),
        deal(srv(2026, 11, 19, 15), 2_000, commission=-7, position_id=11),
        # 00:30 server Nov 20 = 23:30 Prague Nov 19: yesterday's trade.
        deal(srv(2026, 11, 19, 20), 0, entry=0, position_id=12),
        deal(srv(2026, 11, 20, 0, 30), 100, position_id=12),
        # Nov 20 (Prague): three positions closed, one still open, a withdrawal.
        deal(srv(2026, 11, 20, 2), 0, entry=0, commission=-5, position_id=13),
        deal(srv(2026, 11, 20, 4), 1_500, commission=-5, position_id=13),
        deal(srv(2026, 11, 20, 5), 0, entry=0, commission=-5, position_id=14),
        deal(srv(2026, 11, 20, 6), -500, commission=-5, position_id=14),
        deal(srv(2026, 11, 20, 7), 0, entry=0, commission=-10, position_id=15),
        deal(srv(2026, 11, 20, 8), 200, commission=-5, position_id=15, volume=0.5),
        deal(srv(2026, 11, 20, 9), 300, commission=-5, position_id=15, volume=0.5),
        deal(srv(2026, 11, 20, 10), -1_000, type="BALANCE", entry=0),
        deal(srv(2026, 11, 20, 11), 0, entry=0, commission=-5, position_id=16),
        # 02:00 server Nov 21 is Nov 21 for FTMO.
        deal(srv(2026, 11, 21, 2), 50, position_id=16),
    ]


SNAPS = [
    snap(102_086, 102_086, at=srv(2026, 11, 20, 1, 0, 10)),
    snap(102_081, 103_000, at=srv(2026, 11, 20, 3)),
    snap(103_571, 102_900, at=srv(2026, 11, 20, 5, 30)),
    snap(102_541, 101_800, at=srv(2026, 11, 20, 12)),
    snap(102_541, 102_341, at=srv(2026, 11, 20, 23)),
]


def test_daily_report_figures():
    r = daily_report(history(), SNAPS, CFG, date(2026, 11, 20))
    assert r.login == 7 and r.day == "2026-11-20"
    assert r.start_utc_ms == CFG.clock.to_utc_ms(srv(2026, 11, 20, 1))
    assert r.starting_balance == 102_086  # includes the 00:30 server close
    assert r.realised_pl == 1_455 and r.balance_ops == -1_000
    assert r.ending_balance == 102_541
    assert (r.starting_equity, r.ending_equity, r.floating_pl) == (102_086, 102_341, -200)
    # Trades: +1,490, -510, +480 (partial closes merged, entry commission charged).
    assert (r.trades, r.wins, r.losses) == (3, 2, 1)
    assert r.win_rate == pytest.approx(2 / 3)
    assert r.profit_factor == pytest.approx(1_970 / 510)
    assert r.max_drawdown_money == 1_200  # 103,000 -> 101,800
    assert r.max_drawdown_pct == pytest.approx(1_200 / 103_000 * 100)
    # Daily: reference 102,086, limit 5,000; worst at 12:00 (equity 101,800).
    assert r.daily_limit_money == 5_000
    assert r.daily_headroom_min == pytest.approx(4_714) and r.daily_headroom_end == pytest.approx(5_255)
    assert r.overall_headroom_min == pytest.approx(11_800) and r.overall_headroom_end == pytest.approx(12_341)
    assert r.worst_level == "OK" and not r.reference_estimated


def test_report_from_deals_alone():
    r = daily_report(history(), [], CFG, date(2026, 11, 20), login=42)
    assert (r.login, r.starting_balance, r.ending_balance) == (42, 102_086, 102_541)
    assert r.starting_equity is None and r.max_drawdown_money is None and r.daily_headroom_min is None
    prev = daily_report(history(), [], CFG, date(2026, 11, 19))
    assert prev.realised_pl == 2_086 and prev.trades == 2 and prev.ending_balance == 102_086


def test_csv_and_json_exports():
    reports = [daily_report(history(), SNAPS, CFG, date(2026, 11, d)) for d in (19, 20)]
    rows = list(csv.DictReader(io.StringIO(to_csv(reports))))
    assert [r["day"] for r in rows] == ["2026-11-19", "2026-11-20"]
    assert list(rows[0]) == COLUMNS
    assert rows[0]["starting_equity"] == ""  # no snapshot on Nov 19
    assert float(rows[1]["ending_balance"]) == 102_541
    data = json.loads(to_json(reports))
    assert data[1]["trades"] == 3 and data[1]["worst_level"] == "OK"
