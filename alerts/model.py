"""The alert value type and its phone-readable rendering (pure, no I/O)."""
from __future__ import annotations

import dataclasses
import time
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Any

# Ordered by severity: the order is what escalation / recovery is judged by.
LEVELS: tuple[str, ...] = ("info", "warn", "pause", "flatten", "critical")
_RANK = {name: i for i, name in enumerate(LEVELS)}

_ICON = {
    "info": "ℹ️",
    "warn": "⚠️",
    "pause": "⏸️",
    "flatten": "🛑",
    "critical": "🚨",
}

# Telegram rejects messages longer than 4096 characters; keep a margin.
MAX_TEXT_CHARS = 4000


def level_rank(level: str) -> int:
    """Severity rank of a level (info=0 … critical=4); raises on an unknown level."""
    try:
        return _RANK[level]
    except KeyError:
        raise ValueError(f"unknown alert level {level!r}; expected one of {', '.join(LEVELS)}") from None


def _now_ms() -> int:
    return int(time.time() * 1000)


@dataclass(frozen=True)
class Alert:
    """One alert raised by a risk loop or the launcher.

    `value`/`limit` are what the rule measured and its threshold (same `unit`);
    `action_taken` says what the node already did ("copying paused"), so the reader
    on a phone knows whether they still have to act.
    """

    account: str
    rule: str
    level: str
    value: float | None = None
    limit: float | None = None
    unit: str = ""
    action_taken: str = ""
    message: str = ""
    ts_ms: int = field(default_factory=_now_ms)
    node: str = ""

    def __post_init__(self) -> None:
        if not self.account:
            raise ValueError("alert.account must not be empty")
        if not self.rule:
            raise ValueError("alert.rule must not be empty")
        level = str(self.level).strip().lower()
        level_rank(level)
        object.__setattr__(self, "level", level)

    @property
    def rank(self) -> int:
        return _RANK[self.level]

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


def _fmt_number(x: float) -> str:
    return f"{x:,.2f}"


def _fmt_quantity(x: float, unit: str) -> str:
    if unit == "%":
        return f"{_fmt_number(x)}%"
    return f"{_fmt_number(x)} {unit}".rstrip()


def _measure_line(alert: Alert) -> str:
    if alert.value is None and alert.limit is None:
        return ""
    if alert.limit is None:
        return _fmt_quantity(alert.value, alert.unit)  # type: ignore[arg-type]
    if alert.value is None:
        return f"limit {_fmt_quantity(alert.limit, alert.unit)}"
    line = f"{_fmt_quantity(alert.value, alert.unit)} of {_fmt_quantity(alert.limit, alert.unit)} limit"
    if alert.limit:
        line += f" ({alert.value / alert.limit * 100:.1f}%)"
    return line


def _footer(alert: Alert) -> str:
    stamp = datetime.fromtimestamp(alert.ts_ms / 1000, tz=timezone.utc).strftime("%Y-%m-%d %H:%M:%S UTC")
    return f"{alert.node} · {stamp}" if alert.node else ""


def format_text(alert: Alert) -> str:
    """Plain text (no markup, so nothing needs escaping) short enough for a phone.

    Line 1: icon, account, rule; then the measurement against its limit, the free
    text, the action already taken, and node + UTC time when a node is set.
    """
    lines = [f"{_ICON[alert.level]} {alert.account} · {alert.rule.replace('_', ' ')}"]
    measure = _measure_line(alert)
    if measure:
        lines.append(measure)
    if alert.message:
        lines.append(alert.message)
    if alert.action_taken:
        lines.append(f"Action: {alert.action_taken}")
    footer = _footer(alert)
    if footer:
        lines.append(footer)
    text = "\n".join(lines)
    if len(text) > MAX_TEXT_CHARS:
        text = text[: MAX_TEXT_CHARS - 1] + "…"
    return text


def to_payload(alert: Alert) -> dict[str, Any]:
    """Webhook body: every alert field plus the rendered `text`."""
    payload = alert.to_dict()
    payload["text"] = format_text(alert)
    return payload
