"""The guardian's pre-trade check: may this open go out, given the account's risk state?"""
from __future__ import annotations

from dataclasses import replace
from typing import TYPE_CHECKING

from copier.models import AccountMetrics
from copier.risk import AccountRiskState, ProposedOpen, pre_trade_check
from terminals.convert import metrics_from_mt5, position_from_mt5

if TYPE_CHECKING:
    from .guardian import Guardian


def pre_trade_reason(g: Guardian, symbol: str, side: str, volume: float, entry: float, sl: float,
                     tick_size: float, tick_value: float, *, metrics: AccountMetrics | None = None,
                     positions: list | None = None, server_ms: int | None = None) -> str | None:
    """A reason to refuse this open (``risk: …``), or None (counts the new position's
    risk at SL). ``volume`` in lots, prices in the symbol's quote, ``tick_value`` in the
    account currency per lot. See ``Guardian.pre_trade`` for ``metrics``/``positions``/``server_ms``.
    """
    cfg = g.config
    if cfg is None or not cfg.actions_enabled:
        return None
    if metrics is not None and positions is not None:
        g.server_time.observe(server_ms)
        server_ms = g.server_time.latest_ms
        if server_ms is None:
            return "risk: no server time yet (no tick seen), not opening blind"
        metrics = replace(metrics, server_time_msc=server_ms)
    else:
        mt5 = g.mt5
        info = mt5.account_info()
        raw = mt5.positions_get()
        server_ms = g.server_time.read(mt5, [symbol])
        if info is None or raw is None or server_ms is None:
            return "risk: account state unreadable (terminal error), not opening blind"
        metrics = metrics_from_mt5(info, server_time_msc=server_ms)
        positions = [position_from_mt5(p) for p in raw]
    if g.state.day_id is None:
        return "risk: the guardian has no state yet (terminal not read at start), not opening blind"
    # max_trades_per_day counts today's opening deals: one incremental history read per
    # open, only on an account with that limit (the copy path's third call there)
    # the exit commission owed on what is open counts as used, as in the loop (from the
    # charges the loop read already: no terminal call here)
    state = AccountRiskState(cfg, g.state, metrics, server_ms, list(positions), g.trades_today(server_ms),
                             closing_cost=g.costs.cached(positions).money)
    try:
        decision = pre_trade_check(state, ProposedOpen(symbol, side, float(volume), float(entry), float(sl or 0.0),
                                                       float(tick_size), float(tick_value)))
    except ValueError as exc:
        return f"risk: cannot check this open ({exc})"
    return None if decision.allowed else f"risk: {decision.reason}"
