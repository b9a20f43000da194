"""Which risk level changes deserve an alert, and the alert text for them (pure).

The guardian evaluates every second; an alert goes out only when a rule's level
*changes*. Escalations (warn -> pause -> flatten) go out at once; a recovery only once
the rule is clearly back below the threshold (``HYSTERESIS`` of the limit), so a value
hovering on a threshold does not send warn / recovery / warn every second.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from copier.risk import Level, RiskConfig, RuleValue, level_for

HYSTERESIS = 0.05  # fraction of the limit a value must fall below a threshold to recover

ALERT_LEVEL = {Level.OK: "info", Level.WARN: "warn", Level.PAUSE: "pause", Level.FLATTEN: "flatten"}


@dataclass(frozen=True)
class LevelChange:
    rule: str
    old: Level
    new: Level
    value: RuleValue

    @property
    def escalation(self) -> bool:
        return self.new > self.old


def sticky_level(config: RiskConfig, previous: Level, used_fraction: float) -> Level:
    """The level to report: up at once, down only with ``HYSTERESIS`` of margin."""
    now = level_for(used_fraction, config.warn_at, config.pause_at, config.flatten_at)
    if now >= previous:
        return now
    with_margin = level_for(used_fraction + HYSTERESIS, config.warn_at, config.pause_at, config.flatten_at)
    return min(previous, with_margin)


class LevelTracker:
    """Last reported level per rule; ``update`` returns the changes worth an alert."""

    def __init__(self) -> None:
        self.levels: dict[str, Level] = {}

    def update(self, config: RiskConfig, rules: tuple[RuleValue, ...] | list[RuleValue]) -> list[LevelChange]:
        changes: list[LevelChange] = []
        for rv in rules:
            prev = self.levels.get(rv.rule, Level.OK)
            new = sticky_level(config, prev, rv.used_pct / 100.0)
            if new != prev:
                changes.append(LevelChange(rv.rule, prev, new, rv))
            self.levels[rv.rule] = new
        return changes

    def forget(self, rule: str | None = None) -> None:
        """Forget levels (at a day roll the daily rule starts again from OK)."""
        if rule is None:
            self.levels.clear()
        else:
            self.levels.pop(rule, None)


def action_text(level: Level, actions_enabled: bool, *, closed: int | None = None, until: str | None = None) -> str:
    """What the node did about it, in the words a trader reads on a phone."""
    if level <= Level.OK:
        return "back within limits"
    if not actions_enabled:
        return "alert only (actions disabled for this account)"
    if level == Level.WARN:
        return "none yet: warning"
    if level == Level.PAUSE:
        return "new copies paused"
    text = "account flattened"
    if closed is not None:
        text += f" ({closed} position{'s' if closed != 1 else ''} closed)"
    return text + (f" and locked until {until}" if until else " and locked")


def alert_fields(rv: RuleValue, currency: str) -> dict[str, Any]:
    """value / limit / unit of an alert for one rule's figures."""
    if rv.rule == "margin_level":
        return {"value": rv.value, "limit": rv.reference, "unit": "%",
                "message": "margin level (equity / margin) against the configured minimum"}
    cost = f" (incl. {rv.closing_cost:,.2f} estimated closing cost)" if rv.closing_cost > 0 else ""
    return {"value": rv.used_money, "limit": rv.limit_money, "unit": currency,
            "message": f"{rv.used_pct:.1f}% of the limit used{cost}; firm floor at equity {rv.floor_equity:,.2f}"
            if rv.floor_equity is not None else ""}
