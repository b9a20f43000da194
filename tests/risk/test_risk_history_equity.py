"""Equity-based references after downtime, rebuilt from deal history and M1 bars
(issue 10, faults 2 and 3)."""
import pytest
from risk_testkit import deal, snap, srv

from copier.risk import DAILY, OVERALL, Action, evaluate, rebuild_state, resolve_risk_config
from copier.risk.history_equity import (
    Bar,
    SymbolBars,
    equity_at,
    equity_high_bound,
    position_segments,
    positions_open_at,
    price_at,
)
from copier.risk.tracker import bars_needed

EURUSD_MPU = 100_000.0  # 1 lot EURUSD: 100,000 USD per 1.0 of price


def bars(*rows, spread=0):
    """(server ms of the minute, open, high, low, close) -> Bars."""
    return [Bar(t // 1000, o, h, lo, c, spread) for t, o, h, lo, c in rows]


def market(rows, spread=0):
    return {"EURUSD": SymbolBars(bars(*rows, spread=spread), point=0.00001, money_per_unit=EURUSD_MPU)}


THE5ERS = {"profile": "the5ers_high_stakes", "initial_balance": 100_000}
RESET = srv(2026, 11, 20)  # 00:00 server


def _the5ers_history():
    funded = deal(srv(2026, 11, 1), 100_000.0, type="BALANCE", entry=0)
    buy = deal(srv(2026, 11, 19, 15), 0.0, type="BUY", entry=0, volume=10.0, position_id=501, symbol="EURUSD")
    buy = buy.__class__(**{**buy.to_dict(), "price": 1.10000})
    return [funded, buy]


def test_the5ers_reset_equity_rebuilt_from_m1_bars_gives_97_09_pct_and_a_flatten():
    """Balance 100,000 at the reset with +3,000 floating (10 lots bought at 1.10000, last bar
    before the reset closes at 1.10300): reference = max(100,000, 103,000) = 103,000, limit
    5 % = 5,150. Later equity 98,000: used 5,000 / 5,150 = 97.09 % -> flatten (>= 95 %).
    Balance alone (the bug) read 2,000 / 5,000 = 40 %."""
    cfg = resolve_risk_config(THE5ERS)
    history = _the5ers_history()
    now = srv(2026, 11, 20, 10)
    m = market([(RESET - 120_000, 1.1029, 1.1031, 1.1028, 1.1030), (RESET - 60_000, 1.1030, 1.1032, 1.1029, 1.10300),
                (RESET, 1.1030, 1.1030, 1.1020, 1.1025)])
    later = snap(100_000.0, 98_000.0, at=now)
    blind = rebuild_state(cfg, later, history, now)
    assert blind.reference_source == "assumed_strictest" and blind.reference_estimated
    st = rebuild_state(cfg, later, history, now, market=m)
    assert st.day_start_equity == pytest.approx(103_000.0) and st.reference_source == "rebuilt"
    assert not st.reference_estimated
    ev = evaluate(cfg, st, later, now)
    daily = ev.rule(DAILY)
    assert daily.reference == pytest.approx(103_000.0) and daily.limit_money == pytest.approx(5_150.0)
    assert daily.used_pct == pytest.approx(97.087, abs=0.001) and round(daily.used_pct, 2) == 97.09
    assert Action.FLATTEN_AND_LOCK in ev.actions
    # what balance alone reads (the fault): 40 %, no action
    old = evaluate(cfg, st.__class__(**{**st.__dict__, "day_start_equity": 100_000.0}), later, now)
    assert old.rule(DAILY).used_pct == pytest.approx(40.0) and Action.FLATTEN_AND_LOCK not in old.actions


def test_bars_needed_names_the_positions_open_at_the_reset():
    cfg = resolve_risk_config(THE5ERS)
    history = _the5ers_history()
    now = srv(2026, 11, 20, 10)
    st = rebuild_state(cfg, snap(100_000.0, 98_000.0, at=now), history, now)
    want = bars_needed(cfg, st, history, now)
    assert list(want) == ["EURUSD"]
    lo, hi = want["EURUSD"]
    assert lo < RESET // 1000 < hi


def test_no_bars_assumes_the_strictest_reference():
    """The terminal cannot price the position at the reset: the reference is the highest
    equity seen since the node started (never below the balance then), flagged."""
    cfg = resolve_risk_config(THE5ERS)
    history = _the5ers_history()
    now = srv(2026, 11, 20, 10)
    st = rebuild_state(cfg, snap(100_000.0, 101_500.0, at=now), history, now, market={})
    assert st.reference_source == "assumed_strictest" and st.reference_estimated
    ev = evaluate(cfg, st, snap(100_000.0, 99_000.0, at=now + 60_000), now + 60_000)
    assert ev.rule(DAILY).reference == 101_500.0  # not 100,000
    assert ev.rule(DAILY).used_pct == pytest.approx(2_500.0 / 5_075.0 * 100)


def test_sell_position_is_priced_at_the_ask():
    sell = deal(srv(2026, 11, 19, 15), 0.0, type="SELL", entry=0, volume=2.0, position_id=9, symbol="EURUSD")
    sell = sell.__class__(**{**sell.to_dict(), "price": 1.10000})
    seg, = positions_open_at([sell], RESET)
    m = market([(RESET - 60_000, 1.0990, 1.0991, 1.0989, 1.09900)], spread=20)
    eq, missing = equity_at(50_000.0, [seg], RESET, m)
    # closes at the ask 1.09920: (1.10000 - 1.09920) x 2 lots x 100,000 = 160
    assert missing == () and eq == pytest.approx(50_160.0)


def test_fundingpips_and_other_equity_references_after_downtime():
    """FundingPips: 5 % of the higher of balance and equity at 00:00 UTC+3 (server time here)."""
    cfg = resolve_risk_config({"profile": "fundingpips_2step", "initial_balance": 100_000,
                               "server_offset": 180})
    history = _the5ers_history()
    reset_srv = srv(2026, 11, 20)  # 00:00 UTC+3 = server midnight with a UTC+3 server
    now = srv(2026, 11, 20, 10)
    m = market([(reset_srv - 60_000, 1.1030, 1.1032, 1.1029, 1.10300)])
    st = rebuild_state(cfg, snap(100_000.0, 98_000.0, at=now), history, now, market=m)
    ev = evaluate(cfg, st, snap(100_000.0, 98_000.0, at=now), now)
    assert ev.rule(DAILY).reference == pytest.approx(103_000.0)
    assert ev.rule(DAILY).used_pct == pytest.approx(97.087, abs=0.001)


def test_a_deal_exactly_at_the_reset_belongs_to_the_new_day():
    buy = deal(RESET, 0.0, type="BUY", entry=0, volume=1.0, position_id=77, symbol="EURUSD")
    assert positions_open_at([buy], RESET) == []


def test_partial_close_segments():
    pid = 88
    opened = deal(srv(2026, 11, 19, 10), 0.0, type="BUY", entry=0, volume=3.0, position_id=pid, symbol="EURUSD")
    part = deal(srv(2026, 11, 19, 12), 50.0, type="SELL", entry=1, volume=1.0, position_id=pid, symbol="EURUSD")
    segs = position_segments([opened, part])
    assert [(s.volume, s.end_ms is None) for s in segs] == [(3.0, False), (2.0, True)]
    assert positions_open_at([opened, part], RESET)[0].volume == 2.0


# ---------------------------------------------------------------- intraday trailing peak
APEX_STYLE = {"profile": "custom", "initial_balance": 50_000, "overall_limit_money": 2_000,
              "drawdown_mode": "intraday_trailing"}


def _apex_history():
    funded = deal(srv(2026, 11, 16), 50_000.0, type="BALANCE", entry=0)
    buy = deal(srv(2026, 11, 18, 10, 0, 5), 0.0, type="BUY", entry=0, volume=1.0, position_id=601, symbol="EURUSD")
    return [funded, buy.__class__(**{**buy.to_dict(), "price": 1.10000})]


def _apex_market():
    t0 = srv(2026, 11, 18, 10)
    return market([(t0, 1.1000, 1.1004, 1.0999, 1.1003), (t0 + 60_000, 1.1003, 1.11500, 1.1002, 1.1100),
                   (t0 + 120_000, 1.1100, 1.1101, 1.0995, 1.0996)])


def test_intraday_trailing_peak_after_a_restart_with_no_stored_state_is_the_strictest_history_allows():
    """Initial 50,000, trailing 2,000 on peak equity. 1 lot bought at 1.10000 reached
    1.11500 (+1,500 floating: peak equity 51,500), now floating -400 (equity 49,600).
    Balance high alone (the bug): threshold 48,000, used 400 / 2,000 = 20 %. From the bars:
    threshold 51,500 - 2,000 = 49,500, used 1,900 / 2,000 = 95 % -> flatten."""
    cfg = resolve_risk_config(APEX_STYLE)
    history = _apex_history()
    now = srv(2026, 11, 20, 10)
    m_now = snap(50_000.0, 49_600.0, at=now)
    blind = evaluate(cfg, rebuild_state(cfg, m_now, history, now), m_now, now).rule(OVERALL)
    assert blind.floor_equity == 48_000.0 and blind.used_pct == pytest.approx(20.0)
    st = rebuild_state(cfg, m_now, history, now, market=_apex_market())
    assert st.equity_high == pytest.approx(51_500.0)
    ev = evaluate(cfg, st, m_now, now)
    overall = ev.rule(OVERALL)
    assert overall.floor_equity == pytest.approx(49_500.0) and overall.used_pct == pytest.approx(95.0)
    assert Action.FLATTEN_AND_LOCK in ev.actions


def test_equity_high_bound_without_bars_is_incomplete_and_keeps_the_closed_balance_high():
    bound, complete = equity_high_bound(50_000.0, _apex_history(), {}, until_server_ms=srv(2026, 11, 20))
    assert bound == 50_000.0 and not complete
    bound, complete = equity_high_bound(50_000.0, _apex_history(), _apex_market(), until_server_ms=srv(2026, 11, 20))
    assert bound == pytest.approx(51_500.0) and complete


def test_price_at_uses_the_last_bar_before_the_instant():
    bs = bars((RESET - 120_000, 1, 1, 1, 1.5), (RESET - 60_000, 2, 2, 2, 2.5), (RESET, 3, 3, 3, 3.5))
    assert price_at(bs, RESET // 1000, "BUY", 0.1) == 2.5
    assert price_at(bs[2:], RESET // 1000, "BUY", 0.1) == 3  # only after: the first open
    assert price_at([], RESET // 1000, "BUY", 0.1) is None
