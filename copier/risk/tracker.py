"""The guardian's memory of one account, as a pure state machine.

``TrackerState`` holds what a single snapshot cannot tell: the day-start reference,
the day's equity high, the end-of-day balance high-water mark, the all-time equity
and balance highs, and the lock. The node persists ``state.to_dict()`` in the store
and feeds every snapshot through ``observe`` (or ``evaluate``, which calls it).

Starting mid-day, the node calls ``rebuild_state`` with the deal history so the
day-start balance and the trailing marks come from the firm's reset instants, never
from the moment the node happened to start.
"""
from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, replace
from typing import Any

from ..models import AccountMetrics
from .clock import last_reset_instant, ms_from_utc, next_reset_instant, trading_day_of, utc_from_ms
from .config import RiskConfig
from .deals import Deal, balance_delta
from .history_equity import (
    SymbolBars,
    balance_at_server_ms,
    equity_at,
    equity_high_bound,
    position_segments,
    positions_open_at,
)
from .lock import Lock, is_locked
from .reference import deals_in_window, rebuild_balance_high, rebuild_eod_balance_high

# Daily references that need the equity at the reset, not only the balance.
EQUITY_REFERENCES = ("max_balance_equity", "equity_high")


@dataclass(frozen=True)
class TrackerState:
    day_id: str | None = None  # ISO date of the trading day being tracked
    day_start_utc_ms: int | None = None
    next_reset_utc_ms: int | None = None
    day_start_balance: float | None = None
    day_start_equity: float | None = None  # None: no snapshot near the reset
    reference_estimated: bool = False
    day_equity_high: float | None = None
    eod_balance_high: float | None = None  # highest balance at any past reset
    equity_high: float | None = None  # all-time (intraday trailing)
    balance_high: float | None = None  # all-time closed balance (balance trailing)
    last_balance: float | None = None
    last_equity: float | None = None
    last_utc_ms: int | None = None
    lock: Lock | None = None
    # Capital moved since the reset (deposits, withdrawals, corrections, bonuses): their
    # tickets and total, already folded into the day's references (never counted twice).
    day_ops: tuple[int, ...] = ()
    day_ops_money: float = 0.0
    # Where the day's reference came from: "snapshot" (seen at the reset), "rebuilt"
    # (deal history, and M1 bars for equity), "assumed_strictest" (the terminal could
    # not tell: the strictest value it allows is used), "estimated" (no history).
    reference_source: str | None = None

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["lock"] = self.lock.to_dict() if self.lock else None
        return d

    @classmethod
    def from_dict(cls, data: Mapping[str, Any] | None) -> TrackerState:
        if not data:
            return cls()
        names = set(cls.__dataclass_fields__)
        kw = {k: v for k, v in data.items() if k in names}
        if kw.get("lock") is not None:
            kw["lock"] = Lock.from_dict(kw["lock"])
        if kw.get("day_ops") is not None:
            kw["day_ops"] = tuple(int(t) for t in kw["day_ops"])
        return cls(**kw)


def _max(*vals: float | None) -> float | None:
    xs = [v for v in vals if v is not None]
    return max(xs) if xs else None


def observe(
    config: RiskConfig,
    state: TrackerState,
    metrics: AccountMetrics,
    now_server_ms: int,
    deals: Sequence[Deal] | None = None,
) -> TrackerState:
    """Fold one account snapshot into the state; rolls the day at the firm's reset.

    ``deals`` (history covering at least the current day) makes a roll exact even
    when the first snapshot of the day comes late; without them a late first
    snapshot is used as is and the reference is flagged estimated.
    """
    clock = config.clock
    now_utc = clock.to_utc(now_server_ms)
    now_ms = ms_from_utc(now_utc)
    st = state
    same_day = (
        st.day_id is not None
        and st.day_start_utc_ms is not None
        and st.next_reset_utc_ms is not None
        and st.day_start_utc_ms <= now_ms < st.next_reset_utc_ms
    )
    day = st.day_id if same_day else trading_day_of(now_utc, config.reset_time, config.reset_tz, clock).isoformat()

    if st.day_id != day:
        reset = last_reset_instant(now_utc, config.reset_time, config.reset_tz, clock)
        reset_ms = ms_from_utc(reset)
        nxt = ms_from_utc(next_reset_instant(now_utc, config.reset_time, config.reset_tz, clock))
        near_reset = now_ms - reset_ms <= config.reset_snapshot_tolerance_s * 1000
        if deals is not None:
            todays = deals_in_window(deals, reset_ms, None, clock)
            start_balance = metrics.balance - balance_delta(todays)
            balance_exact = True
            moved = any(d.affects_balance for d in todays)
        else:
            start_balance = metrics.balance
            balance_exact = near_reset
            moved = False
        equity = trading_equity(metrics)
        start_equity = equity if near_reset and not moved else None
        needs_equity = config.reference in EQUITY_REFERENCES
        estimated = not balance_exact or (needs_equity and start_equity is None)
        if not balance_exact:
            source = "estimated"
        elif near_reset and (start_equity is not None or not needs_equity):
            source = "snapshot"
        elif needs_equity and start_equity is None:
            source = "assumed_strictest"  # until the node rebuilds it (M1 bars), see equity_at_reset
        else:
            source = "rebuilt"
        initial = config.initial_balance
        eod_high = st.eod_balance_high if st.eod_balance_high is not None else initial
        if st.day_id is not None:
            # We tracked an earlier day: the balance at this reset closed it.
            eod_high = _max(eod_high, start_balance)
            if deals is not None and st.day_start_utc_ms is not None and initial is not None:
                eod_high = _max(eod_high, rebuild_eod_balance_high(
                    initial, metrics.balance,
                    [d for d in deals if clock.to_utc_ms(d.time_msc) >= st.day_start_utc_ms],
                    now_utc, config.reset_time, config.reset_tz, clock))
        st = replace(
            st,
            day_id=day,
            day_start_utc_ms=reset_ms,
            next_reset_utc_ms=nxt,
            day_start_balance=start_balance,
            day_start_equity=start_equity,
            reference_estimated=estimated,
            reference_source=source,
            day_equity_high=start_equity if start_equity is not None else start_balance,
            eod_balance_high=eod_high,
            day_ops=(),
            day_ops_money=0.0,
        )
    if deals is not None:
        st = with_balance_operations(config, st, deals)

    lock = st.lock if is_locked(st.lock, now_ms) else None
    equity = trading_equity(metrics)
    return replace(
        st,
        day_equity_high=_max(st.day_equity_high, equity),
        equity_high=_max(st.equity_high, config.initial_balance, equity),
        balance_high=_max(st.balance_high, config.initial_balance, metrics.balance),
        last_balance=metrics.balance,
        last_equity=metrics.equity,
        last_utc_ms=now_ms,
        lock=lock,
    )


def rebuild_state(
    config: RiskConfig,
    metrics: AccountMetrics,
    deals: Sequence[Deal],
    now_server_ms: int,
    lock: Lock | None = None,
    market: Mapping[str, SymbolBars] | None = None,
) -> TrackerState:
    """A state for a node starting now, rebuilt from the full deal history.

    With ``market`` (M1 bars of the symbols ``bars_needed`` names), the equity-based
    figures are rebuilt too (``with_history_equity``): the equity at the reset and the
    intraday-trailing peak. Without it the all-time equity high starts from the highest
    closed balance and an equity reference is assumed strictest (flagged).
    """
    clock = config.clock
    now_utc = clock.to_utc(now_server_ms)
    initial = config.initial_balance
    eod_high = bal_high = None
    if initial is not None:
        eod_high = rebuild_eod_balance_high(
            initial, metrics.balance, deals, now_utc, config.reset_time, config.reset_tz, clock
        )
        bal_high = rebuild_balance_high(initial, metrics.balance, deals, clock)
    fresh = TrackerState(
        eod_balance_high=eod_high,
        balance_high=bal_high,
        equity_high=bal_high,
        lock=lock,
    )
    st = observe(config, fresh, metrics, now_server_ms, deals)
    if market is not None:
        st = with_history_equity(config, st, metrics.balance, deals, market, now_server_ms)
    return st


def _reset_server_ms(config: RiskConfig, state: TrackerState) -> int | None:
    if state.day_start_utc_ms is None:
        return None
    return config.clock.to_server_ms(utc_from_ms(state.day_start_utc_ms))


RESET_BARS_BEFORE_S = 3 * 86_400  # over a weekend the last quote before the reset is Friday's
RESET_BARS_AFTER_S = 300


def needs_reset_equity(config: RiskConfig, state: TrackerState) -> bool:
    """True when today's reference needs the equity at the reset and no snapshot gave it."""
    return config.reference == "max_balance_equity" and state.day_start_equity is None \
        and state.day_start_utc_ms is not None


def bars_needed(config: RiskConfig, state: TrackerState, deals: Sequence[Deal], now_server_ms: int,
                *, peak: bool = False) -> dict[str, tuple[int, int]]:
    """{symbol: (from, to) in server seconds} of the M1 bars ``with_history_equity``
    needs: around the reset for the positions open then (when the equity at the reset
    is unknown), and, with ``peak`` (intraday trailing without a stored peak), over
    every position's life."""
    want: dict[str, tuple[int, int]] = {}

    def add(sym: str, lo: int, hi: int) -> None:
        old = want.get(sym)
        want[sym] = (lo, hi) if old is None else (min(old[0], lo), max(old[1], hi))

    reset = _reset_server_ms(config, state)
    if reset is not None and needs_reset_equity(config, state):
        for seg in positions_open_at(deals, reset):
            add(seg.symbol, reset // 1000 - RESET_BARS_BEFORE_S, reset // 1000 + RESET_BARS_AFTER_S)
    if peak and config.drawdown_mode == "intraday_trailing":
        for seg in position_segments(deals):
            end = seg.end_ms if seg.end_ms is not None else now_server_ms
            add(seg.symbol, seg.start_ms // 1000 - 60, end // 1000 + 60)
    return want


def with_history_equity(config: RiskConfig, state: TrackerState, current_balance: float, deals: Sequence[Deal],
                        market: Mapping[str, SymbolBars], now_server_ms: int, *, peak: bool = True) -> TrackerState:
    """Rebuild, from the deal history and M1 bars, what only equity snapshots could tell.

    * Equity at the reset (``max_balance_equity``, e.g. The5ers, FundingPips) when no
      snapshot near the reset has it: balance then + the positions open then, priced at
      the last M1 bar before the reset (``history_equity.equity_at``); source "rebuilt".
      If a position's symbol has no bars the terminal cannot tell: the reference stays
      the strictest value it allows (the day's equity high-water mark since the node
      started, never below the balance at the reset), source "assumed_strictest",
      flagged estimated.
    * With ``peak`` and ``intraday_trailing``: the all-time equity high is raised to the
      highest equity the history allows (``equity_high_bound``).
    """
    reset = _reset_server_ms(config, state)
    if reset is not None and needs_reset_equity(config, state):
        bal_then = balance_at_server_ms(current_balance, deals, reset)
        eq, _missing = equity_at(bal_then, positions_open_at(deals, reset), reset, market)
        if eq is not None:
            start_eq = eq + state.day_ops_money  # capital moved since is folded like the balance
            state = replace(state, day_start_equity=start_eq, reference_source="rebuilt",
                            reference_estimated=state.reference_source == "estimated",
                            day_equity_high=_max(state.day_equity_high, start_eq))
        else:
            state = replace(state, reference_source="assumed_strictest", reference_estimated=True)
    if peak and config.drawdown_mode == "intraday_trailing":
        bound, _complete = equity_high_bound(current_balance, deals, market, until_server_ms=now_server_ms)
        state = replace(state, equity_high=_max(state.equity_high, bound))
    return state


def operator_lock(
    config: RiskConfig,
    state: TrackerState,
    now_server_ms: int,
    reason: str,
    until_next_reset: bool = False,
) -> TrackerState:
    """Lock on an operator's order: until the next reset, or until released."""
    now_utc = config.clock.to_utc(now_server_ms)
    until = (
        ms_from_utc(next_reset_instant(now_utc, config.reset_time, config.reset_tz, config.clock))
        if until_next_reset
        else None
    )
    return replace(state, lock=Lock(reason=reason, locked_at_utc_ms=ms_from_utc(now_utc),
                                    until_utc_ms=until, day_id=state.day_id or "", by="operator"))


def release_lock(state: TrackerState) -> TrackerState:
    """Operator release: copying may resume at once (the rules still apply)."""
    return replace(state, lock=None)


def with_balance_operations(cfg: RiskConfig, state: TrackerState, deals: Sequence[Deal]) -> TrackerState:
    """Fold the capital moved since the reset into today's references; idempotent.

    Deposits, withdrawals, corrections and bonuses (``DEAL_TYPE_BALANCE``,
    ``DEAL_TYPE_CORRECTION``, ``DEAL_TYPE_BONUS``) are capital, not profit or loss, at any
    time of day: each one shifts the day-start balance, the equity at the reset and the
    day's equity high by its amount, so a 4,800 withdrawal reads as 0 % of the daily
    limit used, not 96 % (FTMO 2-Step 100k). Folded tickets are remembered in
    ``state.day_ops``: calling it again with the same deals changes nothing, so the node
    may pass the whole history on every evaluation. Credit (``DEAL_TYPE_CREDIT``) is not
    folded: it is the broker's money, and the rules measure equity without it
    (``trading_equity``).
    """
    if state.day_start_utc_ms is None or state.day_start_balance is None:
        return state
    done = set(state.day_ops)
    new = [d for d in deals if d.is_balance_op and d.ticket not in done
           and cfg.clock.to_utc_ms(d.time_msc) >= state.day_start_utc_ms]
    if not new:
        return state
    ops = sum(d.net for d in new)
    return replace(
        state,
        day_start_balance=state.day_start_balance + ops,
        day_start_equity=None if state.day_start_equity is None else state.day_start_equity + ops,
        day_equity_high=None if state.day_equity_high is None else state.day_equity_high + ops,
        day_ops=tuple(sorted(done | {d.ticket for d in new})),
        day_ops_money=state.day_ops_money + ops,
    )


def trading_equity(metrics: AccountMetrics) -> float:
    """Equity the loss rules measure: MT5 equity without the broker's credit.

    Credit is the broker's money (``AccountInfo.credit``): granting or removing it moves
    MT5's equity but is neither a profit nor a loss of the trader.
    """
    return metrics.equity - (metrics.credit or 0.0)
