"""Per-trade and per-account exposure limits watched on every position of the account
(copies, hand-opened trades, other EAs): an alert when a breach appears, an event when
the last one clears. Nothing is closed for it (the pre-trade check stops new ones)."""
from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

from copier.models import AccountMetrics, SymbolSpec
from copier.risk import RiskConfig, exposure_breaches, exposure_of
from terminals.convert import position_from_mt5, spec_from_mt5

SPEC_TTL_MS = 60_000  # symbol specs (tick value moves with FX rates) re-read once a minute


def has_exposure_limits(cfg: RiskConfig | None) -> bool:
    """True when ``cfg`` sets any exposure limit (SL required, risk per trade, lots, counts)."""
    c = cfg
    return bool(c and (c.require_sl or c.max_risk_per_trade_pct is not None or c.max_lots_per_order is not None
                       or c.max_lots_per_symbol is not None or c.max_positions is not None
                       or c.max_total_lots is not None or c.max_trades_per_day is not None))


class ExposureWatch:
    """The breaches seen last time (``breaches``: key without figures -> text) and a
    symbol-spec cache read from the terminal (``mt5()`` gives the current module)."""

    def __init__(self, mt5: Callable[[], Any], *, log: Any, event: Callable[..., None],
                 alert: Callable[..., None]) -> None:
        self._mt5 = mt5
        self.log = log
        self.event = event
        self.alert = alert
        self.breaches: dict[str, str] = {}
        self._specs: dict[str, tuple[int, SymbolSpec]] = {}

    def spec(self, symbol: str, now_ms: int) -> SymbolSpec | None:
        """``symbol``'s spec, re-read after ``SPEC_TTL_MS``; the last one known when the terminal fails."""
        hit = self._specs.get(symbol)
        if hit is not None and hit[0] > now_ms:
            return hit[1]
        info = self._mt5().symbol_info(symbol)
        if info is None:
            return hit[1] if hit else None
        spec = spec_from_mt5(info)
        self._specs[symbol] = (now_ms + SPEC_TTL_MS, spec)
        return spec

    def check(self, cfg: RiskConfig, positions: Any, metrics: AccountMetrics, server_ms: int,
              trades_today: Callable[[], int | None]) -> None:
        """Judge the terminal's ``positions`` (TradePosition records) against ``cfg``:
        ``risk_exposure_breach`` event + alert for a new breach, ``risk_exposure_ok`` when
        the last one clears. A breach is new when its text without figures is new.
        ``trades_today()`` counts today's opening deals (None: unknown), read after the specs."""
        pos = [position_from_mt5(p) for p in positions]
        specs = {p.symbol: sp for p in pos if (sp := self.spec(p.symbol, server_ms)) is not None}
        found = exposure_breaches(cfg, exposure_of(pos, specs, metrics.equity), trades_today())
        keys = {breach_key(b): b for b in found}
        new = [b for k, b in keys.items() if k not in self.breaches]
        if new:
            self.log.warning("risk_exposure_breach", breaches=new)
            self.event("risk_exposure_breach", level="warning", breaches=new)
            self.alert("exposure", "warn", message="; ".join(new), action_taken="alert only: positions kept")
        elif self.breaches and not keys:
            self.event("risk_exposure_ok")
        self.breaches = keys


def breach_key(text: str) -> str:
    """A breach without its changing figures (risk %, lots), to alert once per breach."""
    head, sep, tail = text.partition(":")
    return head + sep + re.sub(r"[\d.,]+%?", "#", tail) if sep else re.sub(r"[\d.,]+", "#", text)
