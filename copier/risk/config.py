"""Per-account risk configuration: a profile plus overrides, validated loudly.

An account document carries ``risk: {...}``; ``resolve_risk_config`` merges it over
the named profile and returns a frozen ``RiskConfig``. A bad value raises
``RiskConfigError`` naming the field, so the node for that account stops with a
clear message while the rest of the fleet runs on.
"""
from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import time
from typing import Any, TypedDict

from .clock import NY_CLOSE, SERVER, OffsetSpec, ServerClock, _zone
from .profiles import PROFILES

REFERENCE_MODES = ("balance", "max_balance_equity", "initial_plus_day_profit", "equity_high")
DRAWDOWN_MODES = ("static", "eod_trailing", "intraday_trailing", "balance_trailing")
LIMIT_BASES = ("initial", "reference", "lower")  # "lower": the smaller of the two (conservative)


class RiskConfigError(ValueError):
    """A ``risk`` setting is wrong: says which field, what was expected, what came."""

    def __init__(self, field: str, expected: str, got: Any) -> None:
        self.field = field
        self.expected = expected
        self.got = got
        super().__init__(f"risk.{field}: expected {expected}, got {got!r}")


@dataclass(frozen=True)
class RiskConfig:
    """Everything the guardian needs to know about one account's limits."""

    profile: str = "custom"
    initial_balance: float | None = None
    reference: str = "balance"
    reset_time: time = time(0, 0)
    reset_tz: str = SERVER
    server_offset: OffsetSpec = NY_CLOSE
    daily_limit_pct: float | None = None
    daily_limit_money: float | None = None
    daily_limit_base: str = "initial"
    overall_limit_pct: float | None = None
    overall_limit_money: float | None = None
    drawdown_mode: str = "static"
    trail_lock_at: float | None = None  # money level; "initial" resolves to initial_balance
    warn_at: float = 0.70
    pause_at: float = 0.85
    flatten_at: float = 0.95
    max_risk_per_trade_pct: float | None = None
    max_lots_per_order: float | None = None
    max_lots_per_symbol: float | None = None
    max_positions: int | None = None
    min_margin_level: float | None = None
    margin_warn_level: float | None = 150.0  # % (equity / margin x 100): an alert below it, no action
    max_total_lots: float | None = None  # all open positions of the account together
    max_trades_per_day: int | None = None  # positions opened per firm trading day (seed 003 MAX_DAILY_TRADES)
    require_sl: bool = False
    actions_enabled: bool = True
    reset_snapshot_tolerance_s: float = 120.0
    clock: ServerClock = field(init=False, compare=False, repr=False)

    def __post_init__(self) -> None:
        # Derived, so a config built directly (tests, tools) cannot disagree with itself.
        object.__setattr__(self, "clock", ServerClock(self.server_offset))

    @property
    def has_daily_limit(self) -> bool:
        return self.daily_limit_pct is not None or self.daily_limit_money is not None

    @property
    def has_overall_limit(self) -> bool:
        return self.overall_limit_pct is not None or self.overall_limit_money is not None

    def daily_limit_amount(self, reference: float) -> float | None:
        """Money size of the daily limit for a day whose reference is ``reference``."""
        if self.daily_limit_money is not None:
            return self.daily_limit_money
        if self.daily_limit_pct is None:
            return None
        base: float | None
        if self.daily_limit_base == "reference":
            base = reference
        elif self.daily_limit_base == "lower":
            base = min(reference, self.initial_balance) if self.initial_balance is not None else reference
        else:
            base = self.initial_balance
        return (base or 0.0) * self.daily_limit_pct / 100.0

    def overall_limit_amount(self) -> float | None:
        if self.overall_limit_money is not None:
            return self.overall_limit_money
        if self.overall_limit_pct is None:
            return None
        return (self.initial_balance or 0.0) * self.overall_limit_pct / 100.0


RISK_KEYS = {
    "profile", "initial_balance", "reference", "reset_time", "reset_tz", "server_offset",
    "daily_limit_pct", "daily_limit_money", "daily_limit_base", "overall_limit_pct",
    "overall_limit_money", "drawdown_mode", "trail_lock_at", "warn_at", "pause_at",
    "flatten_at", "max_risk_per_trade_pct", "max_lots_per_order", "max_lots_per_symbol",
    "max_positions", "min_margin_level", "require_sl", "actions_enabled",
    "reset_snapshot_tolerance_s", "margin_warn_level", "max_total_lots", "max_trades_per_day",
}


def _is_num(v: Any) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool) and v == v  # not NaN


class _NumBounds(TypedDict, total=False):
    """Keyword arguments of ``_num`` shared by several settings."""

    optional: bool
    lo: float | None
    hi: float | None
    lo_open: bool
    what: str


def _num(d: Mapping[str, Any], key: str, *, optional: bool, lo: float | None = None,
         hi: float | None = None, lo_open: bool = True, what: str = "a number") -> float | None:
    v = d.get(key)
    if v is None:
        if optional:
            return None
        raise RiskConfigError(key, what, v)
    if not _is_num(v):
        raise RiskConfigError(key, what, v)
    if lo is not None and (v <= lo if lo_open else v < lo):
        raise RiskConfigError(key, what, v)
    if hi is not None and v > hi:
        raise RiskConfigError(key, what, v)
    return float(v)


def _choice(d: Mapping[str, Any], key: str, choices: tuple[str, ...]) -> str:
    v = d.get(key)
    if v not in choices:
        raise RiskConfigError(key, "one of " + ", ".join(choices), v)
    return v


def _parse_time(v: Any) -> time:
    if isinstance(v, time):
        return v
    if isinstance(v, str):
        parts = v.strip().split(":")
        if len(parts) in (2, 3) and all(p.isdigit() for p in parts):
            h, m = int(parts[0]), int(parts[1])
            s = int(parts[2]) if len(parts) == 3 else 0
            if 0 <= h < 24 and 0 <= m < 60 and 0 <= s < 60:
                return time(h, m, s)
    raise RiskConfigError("reset_time", '"HH:MM" (24 h clock)', v)


def resolve_risk_config(risk: Mapping[str, Any] | None, *, is_master: bool = False) -> RiskConfig:
    """Merge an account's ``risk`` dict over its profile and validate every field.

    Masters default to alerts only (``actions_enabled`` False); slaves act.
    """
    if risk is None:
        risk = {}
    if not isinstance(risk, Mapping):
        raise RiskConfigError("risk", "a mapping of risk settings", risk)
    risk = dict(risk)
    for key in risk:
        if key not in RISK_KEYS:
            raise RiskConfigError(key, "a known risk key (" + ", ".join(sorted(RISK_KEYS)) + ")", key)
    profile = risk.get("profile", "custom")
    if profile not in PROFILES:
        raise RiskConfigError("profile", "one of " + ", ".join(PROFILES), profile)
    d: dict[str, Any] = {**PROFILES[profile], **risk}

    initial = _num(d, "initial_balance", optional=True, lo=0, what="a positive number")
    reference = _choice(d, "reference", REFERENCE_MODES)
    reset_time = _parse_time(d.get("reset_time", "00:00"))
    tz = d.get("reset_tz", SERVER)
    if not isinstance(tz, str) or not tz:
        raise RiskConfigError("reset_tz", 'an IANA zone name or "server"', tz)
    if tz != SERVER:
        try:
            _zone(tz)
        except ValueError:
            raise RiskConfigError(
                "reset_tz", 'an IANA zone name or "server" (on Windows the tzdata package is needed)', tz
            ) from None
    offset = d.get("server_offset", NY_CLOSE)
    try:
        ServerClock(offset)
    except ValueError:
        raise RiskConfigError(
            "server_offset", 'minutes east of UTC, "ny_close" or an IANA zone name', offset
        ) from None

    pct: _NumBounds = {"optional": True, "lo": 0, "hi": 100, "what": "a percentage in (0, 100]"}
    money: _NumBounds = {"optional": True, "lo": 0, "what": "a positive amount of money"}
    daily_pct = _num(d, "daily_limit_pct", **pct)
    daily_money = _num(d, "daily_limit_money", **money)
    base = _choice(d, "daily_limit_base", LIMIT_BASES)
    overall_pct = _num(d, "overall_limit_pct", **pct)
    overall_money = _num(d, "overall_limit_money", **money)
    mode = _choice(d, "drawdown_mode", DRAWDOWN_MODES)

    lock = d.get("trail_lock_at")
    if lock == "initial":
        if initial is None:
            raise RiskConfigError("initial_balance", 'a positive number (trail_lock_at is "initial")', None)
        lock = initial
    elif lock is not None:
        lock = _num(d, "trail_lock_at", optional=False, lo=0, what='"initial", a positive amount or null')

    needs_initial = (
        (daily_pct is not None and daily_money is None and base == "initial")
        or (overall_pct is not None and overall_money is None)
        or ((overall_pct is not None or overall_money is not None) and mode != "static")
        or (overall_money is not None)
        or reference == "initial_plus_day_profit"
    )
    if needs_initial and initial is None:
        raise RiskConfigError("initial_balance", "a positive number (the account's starting capital)", None)

    frac: _NumBounds = {"optional": True, "lo": 0, "hi": 1.0, "what": "a fraction of the limit in (0, 1]"}
    warn = _num(d, "warn_at", **frac) or 0.70
    pause = _num(d, "pause_at", **frac) or 0.85
    flatten = _num(d, "flatten_at", **frac) or 0.95
    if not warn <= pause:
        raise RiskConfigError("pause_at", f"a fraction >= warn_at ({warn})", pause)
    if not pause <= flatten:
        raise RiskConfigError("flatten_at", f"a fraction >= pause_at ({pause})", flatten)

    max_positions = d.get("max_positions")
    if max_positions is not None and (
        not isinstance(max_positions, int) or isinstance(max_positions, bool) or max_positions < 1
    ):
        raise RiskConfigError("max_positions", "a positive integer", max_positions)

    max_trades = d.get("max_trades_per_day")
    if max_trades is not None and (
        not isinstance(max_trades, int) or isinstance(max_trades, bool) or max_trades < 1
    ):
        raise RiskConfigError("max_trades_per_day", "a positive integer", max_trades)
    margin_warn = _num(d, "margin_warn_level", optional=True, lo=0, what="a margin level in % or null") \
        if "margin_warn_level" in d else 150.0

    tolerance = _num(d, "reset_snapshot_tolerance_s", optional=True, lo=0, lo_open=False,
                     what="seconds >= 0")
    if tolerance is None:
        tolerance = 120.0

    bools = {}
    for key, default in (("require_sl", False), ("actions_enabled", not is_master)):
        v = d.get(key, default)
        if not isinstance(v, bool):
            raise RiskConfigError(key, "true or false", v)
        bools[key] = v

    return RiskConfig(
        profile=profile,
        initial_balance=initial,
        reference=reference,
        reset_time=reset_time,
        reset_tz=tz,
        server_offset=offset,
        daily_limit_pct=daily_pct,
        daily_limit_money=daily_money,
        daily_limit_base=base,
        overall_limit_pct=overall_pct,
        overall_limit_money=overall_money,
        drawdown_mode=mode,
        trail_lock_at=lock,
        warn_at=warn,
        pause_at=pause,
        flatten_at=flatten,
        max_risk_per_trade_pct=_num(d, "max_risk_per_trade_pct", **pct),
        max_lots_per_order=_num(d, "max_lots_per_order", optional=True, lo=0, what="a positive lot size"),
        max_lots_per_symbol=_num(d, "max_lots_per_symbol", optional=True, lo=0, what="a positive lot size"),
        max_positions=max_positions,
        min_margin_level=_num(d, "min_margin_level", optional=True, lo=0, what="a positive margin level in %"),
        margin_warn_level=margin_warn,
        max_total_lots=_num(d, "max_total_lots", optional=True, lo=0, what="a positive lot size"),
        max_trades_per_day=max_trades,
        require_sl=bools["require_sl"],
        actions_enabled=bools["actions_enabled"],
        reset_snapshot_tolerance_s=tolerance,
    )
