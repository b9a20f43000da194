"""A node starting mid-day rebuilds exactly what a node running all along tracked."""
from datetime import timedelta

from hypothesis import given, settings
from hypothesis import strategies as st
from risk_testkit import deal, snap, srv

from copier.risk import (
    DAILY,
    TrackerState,
    evaluate,
    last_reset_instant,
    next_reset_instant,
    rebuild_state,
    resolve_risk_config,
)

CONFIGS = {
    "ftmo_prague": {"profile": "ftmo_1step", "initial_balance": 100_000},
    "server_midnight": {"profile": "e8_one", "initial_balance": 100_000},
    "ny_1700": {"profile": "ftmo_2step", "initial_balance": 100_000, "reset_time": "17:00",
                "reset_tz": "America/New_York"},
    "athens_server": {"profile": "the5ers_high_stakes", "initial_balance": 100_000,
                      "server_offset": "Europe/Athens"},
}


def resets_between(c, start_ms, end_ms):
    """Server ms of every reset in (start, end]."""
    clock = c.clock
    out = []
    t = next_reset_instant(clock.to_utc(start_ms), c.reset_time, c.reset_tz, clock)
    while clock.to_server_ms(t) <= end_ms:
        out.append(clock.to_server_ms(t))
        t = next_reset_instant(t, c.reset_time, c.reset_tz, clock)
    return out


def run_tracker(c, deals, start_ms, end_ms, initial=100_000):
    """Feed snapshots after every deal and one at every reset, as a live node would."""
    events = sorted([d.time_msc for d in deals] + resets_between(c, start_ms, end_ms) + [end_ms])
    state = TrackerState()
    state = evaluate(c, state, snap(initial), start_ms).state
    for t in events:
        bal = initial + sum(d.net for d in deals if d.time_msc <= t and d.affects_balance)
        # the node passes the deals when the balance moved (balance operations are capital)
        state = evaluate(c, state, snap(bal, bal - 50.0), t, deals=[d for d in deals if d.time_msc <= t]).state
    return state, bal


def test_mid_day_start_on_a_dst_day_matches_the_tracked_state():
    # Mar 10 2026: US already on DST, EU not -> Prague midnight is 02:00 server.
    c = resolve_risk_config(CONFIGS["ftmo_prague"])
    start = srv(2026, 3, 8, 12)
    deposit = deal(start, 100_000, type="BALANCE", entry=0)
    trades = [
        deal(srv(2026, 3, 9, 15), 1_500),
        deal(srv(2026, 3, 10, 1, 30), -700),  # before the 02:00 server reset: Mar 9
        deal(srv(2026, 3, 10, 2, 30), 300, commission=-7),  # after: Mar 10
        deal(srv(2026, 3, 10, 3), 0, type="COMMISSION", commission=-12),
    ]
    now = srv(2026, 3, 10, 9)
    tracked, bal = run_tracker(c, trades, start, now)
    assert tracked.day_start_balance == 100_800  # 100,000 + 1,500 - 700
    rebuilt = rebuild_state(c, snap(bal, bal - 50.0), [deposit] + trades, now)
    assert rebuilt.day_start_balance == tracked.day_start_balance
    # Intraday the balance touched 101,500, but the day closed at 100,800.
    assert rebuilt.eod_balance_high == tracked.eod_balance_high == 100_800
    assert rebuilt.day_id == tracked.day_id == "2026-03-10"
    # Both give the same daily figure.
    m = snap(bal, bal - 2_000)
    assert evaluate(c, rebuilt, m, now).rule(DAILY) == evaluate(c, tracked, m, now).rule(DAILY)


def test_start_from_history_with_late_first_snapshot_and_no_deals_is_estimated():
    c = resolve_risk_config(CONFIGS["ftmo_prague"])
    st = evaluate(c, TrackerState(), snap(101_000), srv(2026, 11, 20, 12)).state
    assert st.reference_estimated
    st = rebuild_state(c, snap(101_000), [deal(srv(2026, 11, 1), 101_000, type="BALANCE", entry=0)],
                       srv(2026, 11, 20, 12))
    assert not st.reference_estimated


kinds = st.sampled_from(["close", "commission", "balance", "credit", "swap"])
events = st.lists(
    st.tuples(st.integers(min_value=1, max_value=4 * 24 * 60 - 2), st.integers(-3_000, 3_000), kinds),
    max_size=25,
    unique_by=lambda e: e[0],  # a snapshot cannot fall between two deals of the same ms
)
starts = st.sampled_from([(2026, 3, 6), (2026, 3, 27), (2026, 10, 23), (2026, 10, 30), (2026, 11, 18)])


@settings(max_examples=60, deadline=None)
@given(events=events, start=starts, which=st.sampled_from(sorted(CONFIGS)))
def test_rebuilt_reference_equals_tracked_for_random_deal_sequences(events, start, which):
    c = resolve_risk_config(CONFIGS[which])
    start_ms = srv(*start, 12)
    deposit = deal(start_ms, 100_000, type="BALANCE", entry=0)
    deals = []
    for minute, amount, kind in events:
        at = start_ms + minute * 60_000 + 500  # never exactly on a reset instant
        if kind == "close":
            deals.append(deal(at, amount, commission=-3.5, swap=-1.25))
        elif kind == "commission":
            deals.append(deal(at, 0, type="COMMISSION", commission=-abs(amount) / 100))
        elif kind == "balance":
            deals.append(deal(at, amount, type="BALANCE", entry=0))
        elif kind == "credit":
            deals.append(deal(at, abs(amount), type="CREDIT", entry=0))
        else:
            deals.append(deal(at, 0, swap=amount / 50))
    end_ms = start_ms + 4 * 24 * 3_600_000
    tracked, bal = run_tracker(c, deals, start_ms, end_ms)
    rebuilt = rebuild_state(c, snap(bal, bal - 50.0), [deposit] + deals, end_ms)
    assert rebuilt.day_id == tracked.day_id
    assert abs(rebuilt.day_start_balance - tracked.day_start_balance) < 1e-6
    assert abs(rebuilt.eod_balance_high - tracked.eod_balance_high) < 1e-6
    assert abs(rebuilt.balance_high - tracked.balance_high) < 1e-6
    assert rebuilt.day_start_utc_ms == tracked.day_start_utc_ms
    # The reset really is the firm's: the day started at the last reset before now.
    now_utc = c.clock.to_utc(end_ms)
    assert rebuilt.day_start_utc_ms == int(
        (last_reset_instant(now_utc, c.reset_time, c.reset_tz, c.clock) - now_utc) / timedelta(milliseconds=1)
    ) + c.clock.to_utc_ms(end_ms)
