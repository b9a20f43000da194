"""Worked examples, one per profile, with the numbers written out.

Server clock: "ny_close" (UTC+2 winter / UTC+3 summer). November 2026 is winter, so
Prague midnight = 23:00 UTC = 01:00 server.
"""
import pytest
from risk_testkit import deal, snap, srv

from copier.risk import (
    DAILY,
    OVERALL,
    Action,
    Level,
    TrackerState,
    evaluate,
    rebuild_state,
    resolve_risk_config,
)


def cfg(profile, **kw):
    return resolve_risk_config({"profile": profile, "initial_balance": 100_000, **kw})


def test_ftmo_2step_pause_not_flatten_rebuilt_mid_day():
    c = cfg("ftmo_2step")
    # History: +2,000 yesterday; today (after 01:00 server) a -1,000 close.
    deals = [deal(srv(2026, 1, 1), 100_000, type="BALANCE", entry=0),
             deal(srv(2026, 11, 19, 15), 2_000),
             deal(srv(2026, 11, 20, 9), -1_000)]
    now = srv(2026, 11, 20, 12)
    m = snap(balance=101_000, equity=97_500)  # floating -3,500
    ev = evaluate(c, rebuild_state(c, m, deals, now), m, now)
    d = ev.rule(DAILY)
    # Balance at Prague midnight 102,000; equity 97,500 -> loss 4,500 = 90 % of 5,000.
    assert d.reference == 102_000
    assert d.used_money == 4_500 and d.limit_money == 5_000
    assert d.used_pct == pytest.approx(90.0)
    assert d.headroom_money == 500 and d.floor_equity == 97_000
    assert d.level == Level.PAUSE
    assert ev.rule(OVERALL).used_money == 2_500 and ev.rule(OVERALL).level == Level.OK
    assert ev.actions == (Action.ALERT, Action.PAUSE)
    assert not ev.locked and ev.state.lock is None


def test_ftmo_prague_reset_differs_from_server_midnight():
    # A -800 close at 00:30 server Nov 20 is 23:30 Prague on Nov 19: yesterday for
    # FTMO, today for a server-midnight firm.
    deals = [deal(srv(2026, 1, 1), 100_000, type="BALANCE", entry=0), deal(srv(2026, 11, 20, 0, 30), -800)]
    now = srv(2026, 11, 20, 10)
    m = snap(99_200)
    ftmo = cfg("ftmo_2step")
    assert rebuild_state(ftmo, m, deals, now).day_start_balance == 99_200
    server = cfg("ftmo_2step", reset_tz="server")
    assert rebuild_state(server, m, deals, now).day_start_balance == 100_000


def test_ftmo_1step_eod_trailing_uses_end_of_day_balances_only():
    c = cfg("ftmo_1step")
    st = TrackerState()
    # Day Nov 2: balance peaks at 105,000 intraday but closes the day at 104,000.
    st = evaluate(c, st, snap(100_000), srv(2026, 11, 2, 1, 0, 5)).state
    st = evaluate(c, st, snap(105_000), srv(2026, 11, 2, 10)).state
    st = evaluate(c, st, snap(104_000), srv(2026, 11, 2, 20)).state
    # Day Nov 3 starts at 104,000 and closes at 103,000.
    st = evaluate(c, st, snap(104_000), srv(2026, 11, 3, 1, 0, 5)).state
    st = evaluate(c, st, snap(103_000), srv(2026, 11, 3, 20)).state
    ev = evaluate(c, st, snap(103_000, equity=100_200), srv(2026, 11, 4, 12))
    assert ev.state.eod_balance_high == 104_000
    o = ev.rule(OVERALL)
    assert o.floor_equity == 94_000  # 104,000 - 10 % of 100,000 (FTMO's own example)
    assert o.used_money == 3_800 and o.level == Level.OK
    d = ev.rule(DAILY)  # 3 % of 100,000 = 3,000 below 103,000
    assert d.used_money == 2_800 and d.used_pct == pytest.approx(93.33, abs=0.01) and d.level == Level.PAUSE


def test_eod_trailing_locks_at_initial_when_configured():
    c = cfg("ftmo_1step", trail_lock_at="initial")
    st = TrackerState(eod_balance_high=112_000)
    ev = evaluate(c, st, snap(106_000, equity=104_000), srv(2026, 11, 4, 12))
    o = ev.rule(OVERALL)
    assert o.floor_equity == 100_000  # not 102,000: the trail stopped at initial
    assert o.reference == 110_000 and o.used_money == 6_000 and o.used_pct == pytest.approx(60)
    unlocked = evaluate(cfg("ftmo_1step"), st, snap(106_000, equity=104_000), srv(2026, 11, 4, 12))
    assert unlocked.rule(OVERALL).floor_equity == 102_000


def test_the5ers_max_of_balance_and_equity_at_server_midnight():
    c = cfg("the5ers_high_stakes")
    # Snapshot right at server midnight: balance 100,000, equity 103,000 (+3,000 floating).
    st = evaluate(c, TrackerState(), snap(100_000, 103_000), srv(2026, 11, 20, 0, 0, 2)).state
    assert st.day_start_equity == 103_000 and not st.reference_estimated
    ev = evaluate(c, st, snap(100_000, 98_500), srv(2026, 11, 20, 14))
    d = ev.rule(DAILY)
    # Reference 103,000; limit 5 % of it = 5,150; loss 4,500 = 87.4 % -> PAUSE.
    assert d.reference == 103_000 and d.limit_money == pytest.approx(5_150)
    assert d.used_pct == pytest.approx(87.38, abs=0.01) and d.level == Level.PAUSE


def test_the5ers_rebuilt_without_midnight_snapshot_is_flagged_estimated():
    c = cfg("the5ers_high_stakes")
    deals = [deal(srv(2026, 1, 1), 100_000, type="BALANCE", entry=0)]
    now = srv(2026, 11, 20, 14)
    m = snap(100_000, 98_500)
    ev = evaluate(c, rebuild_state(c, m, deals, now), m, now)
    d = ev.rule(DAILY)
    assert d.reference == 100_000 and d.estimated and "reference_estimated" in ev.flags
    assert d.used_pct == pytest.approx(30.0)


def test_fundednext_allowance_grows_with_profit_banked_today():
    c = cfg("fundednext_stellar")
    st = evaluate(c, TrackerState(), snap(100_000), srv(2026, 11, 20, 0, 0, 1)).state
    # +2,000 banked by noon: allowance 5,000 + 2,000 = 7,000, measured from 102,000.
    ev = evaluate(c, st, snap(102_000, 96_000), srv(2026, 11, 20, 12))
    d = ev.rule(DAILY)
    assert d.limit_money == 7_000 and d.used_money == 6_000
    assert d.floor_equity == 95_000  # day start 100,000 - 5 % of initial
    assert d.used_pct == pytest.approx(85.71, abs=0.01) and d.level == Level.PAUSE
    # A realised loss shrinks the allowance: -4,000 closed, -800 floating.
    ev = evaluate(c, st, snap(96_000, 95_200), srv(2026, 11, 20, 13))
    d = ev.rule(DAILY)
    assert d.limit_money == 1_000 and d.used_money == 800 and d.floor_equity == 95_000
    assert d.level == Level.WARN


def test_e8_one_balance_trailing_updates_at_once_and_locks_at_initial():
    c = cfg("e8_one")
    st = evaluate(c, TrackerState(), snap(100_000), srv(2026, 11, 20, 0, 0, 1)).state
    st = evaluate(c, st, snap(103_000), srv(2026, 11, 20, 9)).state  # closed-balance high
    ev = evaluate(c, st, snap(103_000, 98_000), srv(2026, 11, 20, 10))
    o = ev.rule(OVERALL)
    assert o.floor_equity == 97_000 and o.used_money == 5_000  # 6 % of 100,000 below 103,000
    assert o.used_pct == pytest.approx(83.33, abs=0.01) and o.level == Level.WARN
    d = ev.rule(DAILY)  # 3 % of the day's starting balance 100,000
    assert d.limit_money == pytest.approx(3_000) and d.used_money == 2_000
    st = evaluate(c, ev.state, snap(107_000), srv(2026, 11, 20, 11)).state
    ev = evaluate(c, st, snap(107_000, 104_000), srv(2026, 11, 20, 12))
    assert ev.rule(OVERALL).floor_equity == 100_000  # locked at initial, not 101,000


def test_e8_one_daily_basis_is_the_lower_of_initial_and_the_day_start():
    """Unconfirmed on E8's site whether 3 % is of the initial or of the day's balance: the
    smaller of the two, so the guardian is never looser than either reading."""
    c = cfg("e8_one")
    assert c.daily_limit_base == "lower"
    up = evaluate(c, TrackerState(), snap(110_000), srv(2026, 11, 20, 0, 0, 1))
    assert up.rule(DAILY).limit_money == pytest.approx(3_000)  # 3 % of 100,000, not of 110,000
    down = evaluate(c, TrackerState(), snap(95_000), srv(2026, 11, 20, 0, 0, 1))
    assert down.rule(DAILY).limit_money == pytest.approx(2_850)  # 3 % of 95,000, not of 100,000


def test_equity_high_daily_reference_and_flatten_lock():
    c = cfg("custom", daily_limit_pct=4, reference="equity_high", reset_tz="server")
    st = evaluate(c, TrackerState(), snap(100_000), srv(2026, 11, 20, 0, 0, 1)).state
    st = evaluate(c, st, snap(100_000, 103_000), srv(2026, 11, 20, 9)).state
    ev = evaluate(c, st, snap(100_000, 99_000), srv(2026, 11, 20, 10))
    d = ev.rule(DAILY)
    assert d.reference == 103_000 and d.used_money == 4_000 and d.used_pct == pytest.approx(100)
    assert ev.level == Level.FLATTEN
    assert ev.actions == (Action.ALERT, Action.PAUSE, Action.FLATTEN_AND_LOCK)
    assert ev.locked and ev.state.lock is not None


def test_intraday_trailing_follows_the_equity_high():
    c = cfg("custom", overall_limit_pct=5, drawdown_mode="intraday_trailing")
    st = evaluate(c, TrackerState(), snap(100_000, 106_000), srv(2026, 11, 20, 9)).state
    ev = evaluate(c, st, snap(100_000, 102_000), srv(2026, 11, 20, 10))
    o = ev.rule(OVERALL)
    assert o.floor_equity == 101_000 and o.used_money == 4_000 and o.level == Level.WARN
    # With a lock at initial the floor stops at 100,000.
    c2 = cfg("custom", overall_limit_pct=5, drawdown_mode="intraday_trailing", trail_lock_at="initial")
    assert evaluate(c2, st, snap(100_000, 102_000), srv(2026, 11, 20, 10)).rule(OVERALL).floor_equity == 100_000


def test_fundingpips_2step_resets_at_midnight_utc_plus_3_on_the_higher_of_balance_and_equity():
    from datetime import datetime, timezone

    c = cfg("fundingpips_2step")  # server "ny_close": UTC+2 on 2026-01-14 (US winter)
    st = evaluate(c, TrackerState(), snap(100_000, 102_000), srv(2026, 1, 14, 23, 0, 30)).state
    assert st.day_start_utc_ms == int(datetime(2026, 1, 14, 21, tzinfo=timezone.utc).timestamp() * 1000)
    ev = evaluate(c, st, snap(100_000, 98_000), srv(2026, 1, 15, 9))
    d = ev.rule(DAILY)  # 5 % of max(100,000, 102,000) = 5,100; used 4,000
    assert d.reference == 102_000 and d.limit_money == pytest.approx(5_100) and d.used_money == 4_000
    assert ev.rule(OVERALL).floor_equity == 90_000
