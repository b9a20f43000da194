"""The guardian's state at start (and after a config reload or a history outage): rebuilt
from the deal history and the persisted state, never from the moment the node happened
to start.

Functions over the guardian (its config, terminal, clocks, records and events); they set
``g.state``, ``g.rebuilt`` and ``g.peak_source``.
"""
from __future__ import annotations

from dataclasses import replace
from typing import TYPE_CHECKING, Any

from copier.risk import TrackerState, is_locked, observe, rebuild_state, with_balance_operations
from copier.risk.history_equity import equity_high_bound
from copier.risk.tracker import bars_needed, needs_reset_equity, with_history_equity
from terminals.convert import metrics_from_mt5

from .terminal import read_m1_bars

if TYPE_CHECKING:
    from .guardian import Guardian


def rebuild(g: Guardian, saved: TrackerState) -> bool:
    """State from the deal history, plus what only ``saved`` (the persisted state of
    the same trading day) can know: the equity at the reset and the equity highs.
    False when the terminal cannot even give the account (nothing to evaluate yet)."""
    cfg = g.config
    assert cfg is not None
    mt5 = g.mt5
    info = mt5.account_info()
    positions = mt5.positions_get()
    server_ms = g.server_time.read(mt5, [p.symbol for p in positions or ()])
    if info is None or server_ms is None:
        g.terminal_failed("rebuild")
        return False
    metrics = metrics_from_mt5(info, server_time_msc=server_ms)
    now_ms = cfg.clock.to_utc_ms(server_ms)
    lock = saved.lock if is_locked(saved.lock, now_ms) else None
    if saved.lock is not None and lock is None:
        g.event("risk_lock_expired", reason=saved.lock.reason, until_utc_ms=saved.lock.until_utc_ms)
    deals = g.history.refresh(mt5, server_ms)
    if deals is None:
        # no history: today's start is estimated from the current balance (flagged)
        state = replace(observe(cfg, TrackerState(lock=lock), metrics, server_ms, None), reference_estimated=True)
        g.log.warning("risk_history_unavailable", error=str(mt5.last_error()))
    else:
        state = with_balance_operations(cfg, rebuild_state(cfg, metrics, deals, server_ms, lock=lock), deals)
    if saved.day_id == state.day_id:
        # capital moved while the node was down is not in the saved figures yet
        missed = set(state.day_ops) - set(saved.day_ops)
        shift = sum(d.net for d in deals or () if d.ticket in missed)
        saved = replace(saved,
                        day_start_equity=None if saved.day_start_equity is None else saved.day_start_equity + shift,
                        day_equity_high=None if saved.day_equity_high is None else saved.day_equity_high + shift)
        keep_equity = state.day_start_equity is None and saved.day_start_equity is not None
        if deals is None and saved.day_start_balance is not None:
            state = replace(state, day_start_balance=saved.day_start_balance,
                            reference_estimated=saved.reference_estimated)
        elif keep_equity:
            state = replace(state, reference_estimated=saved.reference_estimated,
                            reference_source=saved.reference_source or "snapshot")
        state = replace(
            state,
            day_start_equity=saved.day_start_equity if keep_equity else state.day_start_equity,
            day_equity_high=max_known(state.day_equity_high, saved.day_equity_high),
        )
    state = replace(state, equity_high=max_known(state.equity_high, saved.equity_high),
                    eod_balance_high=max_known(state.eod_balance_high, saved.eod_balance_high))
    if saved.equity_high is not None:
        g.peak_source = "stored"
    if deals is not None:
        state = history_equity(g, state, deals, metrics.balance, server_ms, peak=saved.equity_high is None)
    g.state = state
    g.rebuilt = deals is not None
    g.event("risk_started", profile=cfg.profile, day=state.day_id, day_start_balance=state.day_start_balance,
            day_start_equity=state.day_start_equity, reference_estimated=state.reference_estimated,
            locked=lock is not None, deals=len(deals) if deals is not None else None,
            server_time_msc=server_ms, actions_enabled=cfg.actions_enabled)
    g.log.info("risk_started", profile=cfg.profile, day=state.day_id, day_start_balance=state.day_start_balance,
               reference_estimated=state.reference_estimated, locked=lock is not None)
    if state.reference_estimated and cfg.has_daily_limit:
        if state.reference_source == "assumed_strictest":
            message = ("equity at the reset could not be rebuilt (no M1 bars for a position open then): "
                       "the strictest reference is assumed (the day's equity high since start)")
        else:
            message = ("day-start reference estimated (no deal history): "
                       "the daily figures may understate the loss")
        g.alert("reference_estimated", "warn", message=message)
    return True


def history_equity(g: Guardian, state: TrackerState, deals: list, balance: float, server_ms: int, *,
                   peak: bool) -> TrackerState:
    """What only equity snapshots could tell, rebuilt from deals and M1 bars: the equity
    at the reset (max(balance, equity) references) and, with ``peak`` (no stored
    peak), the intraday-trailing high-water mark, the strictest value the history
    allows (raised further by any stored snapshot's equity)."""
    cfg = g.config
    assert cfg is not None
    peak = peak and cfg.drawdown_mode == "intraday_trailing" and cfg.has_overall_limit
    if not (needs_reset_equity(cfg, state) or peak):
        return state
    wants = bars_needed(cfg, state, deals, server_ms, peak=peak)
    try:
        market = read_m1_bars(g.mt5, wants)
    except Exception as exc:  # a terminal without bars: priced as "cannot tell"
        g.log.warning("risk_bars_unavailable", error=str(exc))
        market = {}
    had_reset = needs_reset_equity(cfg, state)
    state = with_history_equity(cfg, state, balance, deals, market, server_ms, peak=False)
    data: dict[str, Any] = {}
    if had_reset:
        data.update(reference_source=state.reference_source, day_start_equity=state.day_start_equity,
                    symbols=sorted(wants), priced=sorted(market))
    if peak:
        bound, complete = equity_high_bound(balance, deals, market, until_server_ms=server_ms)
        stored = g.records.snapshot_equity_high()
        state = replace(state, equity_high=max_known(state.equity_high, bound, stored))
        g.peak_source = "rebuilt" if complete else "rebuilt_incomplete"
        data.update(equity_high=state.equity_high, peak_source=g.peak_source, snapshot_high=stored)
    g.event("risk_history_equity", level="warning" if state.reference_source == "assumed_strictest" else "info",
            **data)
    return state


def max_known(*vals: float | None) -> float | None:
    """The largest of the values that are not None (None when all are)."""
    xs = [v for v in vals if v is not None]
    return max(xs) if xs else None
