"""Pure pieces of the guardian: alert hysteresis, action wording, snapshot thinning."""
from __future__ import annotations

from copier.risk import Level, RuleValue, resolve_risk_config
from monitoring.daily import thin_snapshots
from monitoring.levels import LevelTracker, action_text, sticky_level

CFG = resolve_risk_config({"profile": "ftmo_2step", "initial_balance": 10000})


def _rv(pct, rule="daily_loss"):
    return RuleValue(rule, pct * 5, 500.0, pct, 500 - pct * 5, Level.OK)


def test_levels_go_up_at_once_and_down_only_clearly():
    assert sticky_level(CFG, Level.OK, 0.71) == Level.WARN
    assert sticky_level(CFG, Level.OK, 0.96) == Level.FLATTEN
    assert sticky_level(CFG, Level.WARN, 0.68) == Level.WARN  # 2 points under: still warn
    assert sticky_level(CFG, Level.WARN, 0.64) == Level.OK
    assert sticky_level(CFG, Level.PAUSE, 0.82) == Level.PAUSE
    assert sticky_level(CFG, Level.PAUSE, 0.79) == Level.WARN


def test_tracker_reports_changes_only():
    t = LevelTracker()
    seq = [10, 72, 75, 69, 86, 84, 96, 50, 20]
    changes = [[(c.old.name, c.new.name) for c in t.update(CFG, [_rv(p)])] for p in seq]
    assert changes == [[], [("OK", "WARN")], [], [], [("WARN", "PAUSE")], [], [("PAUSE", "FLATTEN")],
                       [("FLATTEN", "OK")], []]
    t.forget("daily_loss")
    assert [c.new for c in t.update(CFG, [_rv(72)])] == [Level.WARN]


def test_action_wording():
    assert action_text(Level.PAUSE, True) == "new copies paused"
    assert action_text(Level.FLATTEN, True, closed=3, until="2025-01-06 23:00 UTC") == \
        "account flattened (3 positions closed) and locked until 2025-01-06 23:00 UTC"
    assert action_text(Level.FLATTEN, False).startswith("alert only")
    assert action_text(Level.OK, True) == "back within limits"


def test_thinning_keeps_first_last_highs_and_lows():
    snaps = [{"ts_ms": i, "metrics": {"equity": 1000 + (i % 97) - (400 if i == 5000 else 0)}} for i in range(8000)]
    thin = thin_snapshots(snaps, 1000)
    assert len(thin) <= 1100
    assert thin[0] is snaps[0] and thin[-1] is snaps[-1]
    eq = [s["metrics"]["equity"] for s in thin]
    assert min(eq) == 1000 + (5000 % 97) - 400 and max(eq) == 1096
    assert [s["ts_ms"] for s in thin] == sorted(s["ts_ms"] for s in thin)
    assert thin_snapshots(snaps[:10], 1000) == snaps[:10]
