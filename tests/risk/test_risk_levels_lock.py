"""Thresholds, actions, margin level, and the lock's persistence and release."""
import json

import pytest
from risk_testkit import snap, srv

from copier.models import Position
from copier.risk import (
    DAILY,
    MARGIN,
    Action,
    Level,
    Lock,
    TrackerState,
    evaluate,
    is_locked,
    level_for,
    positions_to_close_when_locked,
    resolve_risk_config,
)


def ftmo(**kw):
    return resolve_risk_config({"profile": "ftmo_2step", "initial_balance": 100_000, **kw})


def day_started(c, balance=102_000):
    # 01:00:05 server on Nov 20 = 5 s after Prague midnight.
    return evaluate(c, TrackerState(), snap(balance), srv(2026, 11, 20, 1, 0, 5)).state


@pytest.mark.parametrize(
    "equity, level",
    [(99_000, Level.OK), (98_500, Level.WARN), (97_750, Level.PAUSE), (97_250, Level.FLATTEN), (96_000, Level.FLATTEN)],
)
def test_default_thresholds_70_85_95(equity, level):
    c = ftmo()
    ev = evaluate(c, day_started(c), snap(102_000, equity), srv(2026, 11, 20, 12))
    assert ev.rule(DAILY).level == level


def test_level_boundaries_are_inclusive():
    assert level_for(0.70, 0.7, 0.85, 0.95) == Level.WARN
    assert level_for(0.6999, 0.7, 0.85, 0.95) == Level.OK
    assert level_for(0.95, 0.7, 0.85, 0.95) == Level.FLATTEN


def test_overridden_thresholds_turn_the_ftmo_example_into_a_flatten():
    c = ftmo(warn_at=0.5, pause_at=0.6, flatten_at=0.8)
    ev = evaluate(c, day_started(c), snap(101_000, 97_500), srv(2026, 11, 20, 12))
    assert ev.rule(DAILY).used_pct == pytest.approx(90)
    assert ev.level == Level.FLATTEN and Action.FLATTEN_AND_LOCK in ev.actions and ev.locked


def test_master_gets_alerts_only_and_no_lock():
    c = resolve_risk_config({"profile": "ftmo_2step", "initial_balance": 100_000}, is_master=True)
    ev = evaluate(c, day_started(c), snap(101_000, 96_000), srv(2026, 11, 20, 12))
    assert ev.level == Level.FLATTEN
    assert ev.actions == (Action.ALERT,) and not ev.locked and ev.state.lock is None


def test_margin_level_rule():
    c = resolve_risk_config({"profile": "custom", "min_margin_level": 100})
    ev = evaluate(c, TrackerState(), snap(10_000, 10_000, margin=8_000), srv(2026, 11, 20, 12))
    m = ev.rule(MARGIN)
    assert m.value == pytest.approx(125.0)  # equity / margin x 100, not free margin
    assert m.used_pct == pytest.approx(80.0) and m.level == Level.WARN
    ev = evaluate(c, TrackerState(), snap(10_000, 10_300, margin=10_000), srv(2026, 11, 20, 12))
    assert ev.rule(MARGIN).level == Level.FLATTEN  # 103 % with a 100 % minimum
    ev = evaluate(c, TrackerState(), snap(10_000), srv(2026, 11, 20, 12))
    assert ev.rule(MARGIN).value is None and ev.rule(MARGIN).level == Level.OK


def test_lock_persists_through_a_round_trip_and_releases_at_next_reset():
    c = ftmo()
    ev = evaluate(c, day_started(c), snap(101_000, 97_000), srv(2026, 11, 20, 12))
    assert ev.locked
    lock = ev.state.lock
    # Next Prague midnight: Nov 20 23:00 UTC.
    assert lock.until_utc_ms == c.clock.to_utc_ms(srv(2026, 11, 21, 1))
    stored = json.loads(json.dumps(ev.state.to_dict()))
    st = TrackerState.from_dict(stored)
    assert st == ev.state and Lock.from_dict(lock.to_dict()) == lock
    assert is_locked(stored["lock"], lock.until_utc_ms - 1)
    # Node restarts later that day with the account flat: still locked, still flat.
    ev2 = evaluate(c, st, snap(97_000), srv(2026, 11, 20, 18))
    assert ev2.locked and Action.FLATTEN_AND_LOCK in ev2.actions and ev2.level == Level.FLATTEN
    # After the reset the day starts from 97,000: no loss, no lock.
    ev3 = evaluate(c, ev2.state, snap(97_000), srv(2026, 11, 21, 1, 0, 3))
    assert not ev3.locked and ev3.state.lock is None and ev3.actions == ()
    assert ev3.rule(DAILY).reference == 97_000


def test_operator_lock_has_no_end():
    lock = Lock(reason="operator", locked_at_utc_ms=0, until_utc_ms=None, by="operator")
    assert is_locked(lock, 10**13)
    assert not is_locked(None, 0)
    c = ftmo()
    st = TrackerState(lock=lock)
    ev = evaluate(c, st, snap(100_000), srv(2026, 11, 25, 12))
    assert ev.locked and ev.state.lock == lock


def test_positions_to_close_when_locked_is_all_of_them():
    ps = [Position(ticket=i, identifier=i, symbol="EURUSD", side="BUY", volume=1.0, price_open=1.1) for i in (1, 2, 3)]
    assert positions_to_close_when_locked(ps) == ps
    assert positions_to_close_when_locked(()) == []


def test_operator_lock_and_release():
    from copier.risk import operator_lock, release_lock

    c = ftmo()
    st = day_started(c, 100_000)
    st = operator_lock(c, st, srv(2026, 11, 20, 12), "news week")
    assert st.lock.by == "operator" and st.lock.until_utc_ms is None
    ev = evaluate(c, st, snap(100_000), srv(2026, 11, 23, 12))  # survives resets
    assert ev.locked and Action.FLATTEN_AND_LOCK in ev.actions
    ev = evaluate(c, release_lock(ev.state), snap(100_000), srv(2026, 11, 23, 12))
    assert not ev.locked and ev.actions == ()
    st = operator_lock(c, day_started(c), srv(2026, 11, 20, 12), "rest of day", until_next_reset=True)
    assert st.lock.until_utc_ms == c.clock.to_utc_ms(srv(2026, 11, 21, 1))
