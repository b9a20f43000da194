"""The guardian: the risk loop inside every node (master and slave).

Only the node's process owns its terminal, so the loop runs there. Every
``eval_interval_ms`` it reads the account (balance, equity, margin, positions) and the
broker's server time from the freshest tick, folds it into the pure tracker
(``copier.risk.evaluate``), persists the tracker state when it changed, and acts:

* WARN — alert (on a level change only);
* PAUSE — ``blocks_opens`` turns True: the slave opens no new copies (closes still mirror);
* FLATTEN — the lock is persisted first, then every position on the account is closed
  (copies *and* manual trades) and pending orders deleted; while locked, any position
  that appears is closed at once. Every close is an event.

It also writes account snapshots to the store every ``snapshot_interval_ms`` and keeps
a daily report per broker day in the store (``report:<account>:<day>``) so that
``cli.py report`` works without a terminal. See docs/guardian.md.

The state the rules need is rebuilt at start from the deal history and the persisted
state, never from the moment the node happened to start.
"""
from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import replace
from datetime import date, timedelta
from typing import Any

from alerts import Alert
from copier.models import AccountMetrics, SymbolSpec
from copier.orders import RetryPolicy
from copier.risk import (
    DAILY,
    OVERALL,
    AccountRiskState,
    Action,
    Evaluation,
    Level,
    Lock,
    ProposedOpen,
    RiskConfig,
    TrackerState,
    day_bounds,
    evaluate,
    exposure_breaches,
    exposure_of,
    is_locked,
    observe,
    pre_trade_check,
    rebuild_state,
    release_lock,
    resolve_risk_config,
    trades_opened_since,
    with_balance_operations,
)
from copier.risk.clock import ms_from_utc, utc_from_ms
from copier.risk.history_equity import equity_high_bound
from copier.risk.tracker import bars_needed, needs_reset_equity, with_history_equity
from db import StoreUnavailable, now_ms
from nodes.convert import metrics_from_mt5, position_from_mt5, spec_from_mt5

from .daily import REPORT_PREFIX, ReportJob, ReportWriter, report_key, report_request_key  # noqa: F401 (REPORT_PREFIX re-exported)
from .levels import ALERT_LEVEL, LevelTracker, action_text, alert_fields
from .terminal import Closer, CloseResult, DealHistory, ServerTime, read_m1_bars

STATE_PREFIX = "risk_state:"
LOCK_PREFIX = "risk_lock:"
RELEASE_PREFIX = "risk_release:"
REPORT_INTERVAL_MS = 300_000
HISTORY_RETRY_MS = 60_000
SNAPSHOT_SCAN = 50_000
SPEC_TTL_MS = 60_000  # symbol specs (tick value moves with FX rates) re-read once a minute  # stored snapshots read for a lost intraday-trailing peak
BLIND_AFTER = 3
_UNSYNCED = object()
# Fields that change on every evaluation; persisting them alone is not worth a write.
_VOLATILE = ("last_balance", "last_equity", "last_utc_ms")


def state_key(name: str) -> str:
    return STATE_PREFIX + name


def lock_key(name: str) -> str:
    return LOCK_PREFIX + name


def release_key(name: str) -> str:
    return RELEASE_PREFIX + name


class Guardian:
    """One account's risk loop. The node calls ``start`` once, then ``tick`` often.

    ``mt5`` is read through ``executor.mt5`` when an executor is given, so a node that
    reconnects its terminal (and swaps ``executor.mt5``) needs to tell nobody else.
    """

    def __init__(
        self,
        name: str,
        role: str,
        risk: dict | None,
        mt5: Any,
        store: Any,
        *,
        log: Any,
        event: Callable[..., None],
        alerts: Any | None = None,
        eval_interval_ms: int = 1000,
        snapshot_interval_ms: int = 10_000,
        executor: Any | None = None,
        report_interval_ms: int = REPORT_INTERVAL_MS,
        report_in_background: bool = True,
        magic: int = 0,
        close_deviation: int = 200,
    ) -> None:
        if role not in ("master", "slave"):
            raise ValueError(f"role must be 'master' or 'slave', got {role!r}")
        self.name = name
        self.role = role
        self.risk = risk
        self.store = store
        self.log = log
        self._event = event
        self.alerts = alerts
        self.eval_interval_ms = int(eval_interval_ms)
        self.snapshot_interval_ms = int(snapshot_interval_ms)
        self.report_interval_ms = int(report_interval_ms)
        self.reports = ReportWriter(name, store, log, in_background=report_in_background)
        if executor is None:
            from nodes.execution import Executor  # the node's order sender (lazy: monitoring is importable alone)

            executor = Executor(mt5, RetryPolicy(max_attempts=3))
        self.executor = executor
        self.closer = Closer(executor, deviation=close_deviation, magic=magic)
        self.config: RiskConfig | None = None
        self.state = TrackerState()
        self.ev: Evaluation | None = None
        self.metrics: AccountMetrics | None = None
        self.server_time = ServerTime()
        self.history = DealHistory()
        self.tracker = LevelTracker()
        self.started = False
        self.rebuilt = False
        self.terminal_error: str | None = None
        self.paused_by_risk = False
        self.last_flatten: dict[str, Any] | None = None
        self.lock_closes = 0
        self._persisted: dict[str, Any] | None = None
        self._next_eval = 0
        self._next_snapshot = 0
        self._next_report = 0
        self._next_rebuild = 0
        self._mirrored_lock: Any = _UNSYNCED  # first evaluation writes or clears the mirror
        self._positions_count = 0
        self.day_stats: dict[str, dict[str, Any]] = {}  # per trading day: what the guardian itself saw
        self.blind = 0  # consecutive evaluations that could not run (terminal error, bug)
        self._close_failures: dict[int, int] = {}
        self.peak_source: str | None = None  # intraday trailing: stored / rebuilt / rebuilt_incomplete
        self.exposure_breaches: dict[str, str] = {}
        self._specs: dict[str, tuple[int, SymbolSpec]] = {}

    # ------------------------------------------------------------------ properties
    @property
    def mt5(self) -> Any:
        return self.executor.mt5

    @property
    def actions_enabled(self) -> bool:
        return bool(self.config and self.config.actions_enabled)

    @property
    def locked(self) -> bool:
        return bool(self.ev and self.ev.locked)

    @property
    def has_limits(self) -> bool:
        c = self.config
        return bool(c and (c.has_daily_limit or c.has_overall_limit or c.min_margin_level is not None))

    @property
    def blocks_opens(self) -> bool:
        """True while the account is paused by risk or locked: open no new copies. Also
        while the guardian has been unable to evaluate ``BLIND_AFTER`` times in a row on
        an account with limits: no new risk on an account nobody is watching."""
        if not self.actions_enabled:
            return False
        return self.paused_by_risk or self.locked or (self.blind >= BLIND_AFTER and self.has_limits)

    @property
    def next_due_ms(self) -> int:
        """Wall-clock ms of the next evaluation: a node that blocks on its bus must wake by then."""
        return self._next_eval

    def ms_until_due(self, now_utc_ms: int) -> int:
        return max(0, self._next_eval - now_utc_ms)

    # ------------------------------------------------------------------ events
    def event(self, kind: str, *, level: str = "info", **data: Any) -> None:
        try:
            self._event(kind, level=level, **data)
        except Exception as exc:  # the audit trail must never break the loop
            self.log.warning("risk_event_failed", kind=kind, error=str(exc))

    def _alert(self, rule: str, level: str, **kw: Any) -> None:
        if self.alerts is None:
            return
        try:
            self.alerts.send(Alert(account=self.name, rule=rule, level=level, node=f"{self.role}-{self.name}", **kw))
        except Exception as exc:
            self.log.warning("risk_alert_failed", rule=rule, error=str(exc))

    # ------------------------------------------------------------------ start
    def start(self, now_utc_ms: int) -> None:
        """Resolve the config (RiskConfigError propagates: the node exits 78 naming the
        field) and rebuild the tracker from deal history and the persisted state/lock."""
        self.config = resolve_risk_config(self.risk, is_master=self.role == "master")
        self._persisted = self._load_persisted()
        self.started = True
        saved = TrackerState.from_dict((self._persisted or {}).get("state"))
        stats = (self._persisted or {}).get("day_stats")
        self.day_stats = dict(stats) if isinstance(stats, dict) else {}
        self._next_rebuild = now_utc_ms + HISTORY_RETRY_MS
        self._rebuild(saved)
        self._next_eval = 0
        self.tick(now_utc_ms)  # act at once: a node restarted while locked closes positions now
        self._backfill_previous_day()

    def update_risk(self, risk: dict | None, now_utc_ms: int) -> bool:
        """Apply a changed ``risk`` field (config hot reload). RiskConfigError leaves the
        old config in force. True when the config changed (the state is rebuilt)."""
        new = resolve_risk_config(risk, is_master=self.role == "master")
        if new == self.config:
            return False
        self.risk, self.config = risk, new
        self._rebuild(self.state)
        self.event("risk_config_reloaded", profile=new.profile)
        return True

    def _load_persisted(self) -> dict[str, Any] | None:
        try:
            data = self.store.get_flag(state_key(self.name))
        except StoreUnavailable as exc:
            self.log.warning("risk_state_unreadable", error=str(exc))
            return None
        return data if isinstance(data, dict) else None

    def _rebuild(self, saved: TrackerState) -> bool:
        """State from the deal history, plus what only ``saved`` (the persisted state of
        the same trading day) can know: the equity at the reset and the equity highs.
        False when the terminal cannot even give the account (nothing to evaluate yet)."""
        cfg = self.config
        assert cfg is not None
        mt5 = self.mt5
        info = mt5.account_info()
        positions = mt5.positions_get()
        server_ms = self.server_time.read(mt5, [p.symbol for p in positions or ()])
        if info is None or server_ms is None:
            self._terminal_failed("rebuild")
            return False
        metrics = _metrics(info, server_ms)
        now_ms = cfg.clock.to_utc_ms(server_ms)
        lock = saved.lock if is_locked(saved.lock, now_ms) else None
        if saved.lock is not None and lock is None:
            self.event("risk_lock_expired", reason=saved.lock.reason, until_utc_ms=saved.lock.until_utc_ms)
        deals = self.history.refresh(mt5, server_ms)
        if deals is None:
            # no history: today's start is estimated from the current balance (flagged)
            state = replace(observe(cfg, TrackerState(lock=lock), metrics, server_ms, None), reference_estimated=True)
            self.log.warning("risk_history_unavailable", error=str(mt5.last_error()))
        else:
            state = with_balance_operations(cfg, rebuild_state(cfg, metrics, deals, server_ms, lock=lock), deals)
        if saved.day_id == state.day_id:
            # capital moved while the node was down is not in the saved figures yet
            missed = set(state.day_ops) - set(saved.day_ops)
            shift = sum(d.net for d in deals or () if d.ticket in missed)
            saved = replace(saved, day_start_equity=None if saved.day_start_equity is None else saved.day_start_equity + shift,
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
                day_equity_high=_max(state.day_equity_high, saved.day_equity_high),
            )
        state = replace(state, equity_high=_max(state.equity_high, saved.equity_high),
                        eod_balance_high=_max(state.eod_balance_high, saved.eod_balance_high))
        if saved.equity_high is not None:
            self.peak_source = "stored"
        if deals is not None:
            state = self._history_equity(state, deals, metrics.balance, server_ms, peak=saved.equity_high is None)
        self.state = state
        self.rebuilt = deals is not None
        self.event("risk_started", profile=cfg.profile, day=state.day_id, day_start_balance=state.day_start_balance,
                   day_start_equity=state.day_start_equity, reference_estimated=state.reference_estimated,
                   locked=lock is not None, deals=len(deals) if deals is not None else None,
                   server_time_msc=server_ms, actions_enabled=cfg.actions_enabled)
        self.log.info("risk_started", profile=cfg.profile, day=state.day_id, day_start_balance=state.day_start_balance,
                      reference_estimated=state.reference_estimated, locked=lock is not None)
        if state.reference_estimated and cfg.has_daily_limit:
            if state.reference_source == "assumed_strictest":
                message = ("equity at the reset could not be rebuilt (no M1 bars for a position open then): "
                           "the strictest reference is assumed (the day's equity high since start)")
            else:
                message = ("day-start reference estimated (no deal history): "
                           "the daily figures may understate the loss")
            self._alert("reference_estimated", "warn", message=message)
        return True

    def _history_equity(self, state: TrackerState, deals: list, balance: float, server_ms: int, *,
                        peak: bool) -> TrackerState:
        """What only equity snapshots could tell, rebuilt from deals and M1 bars: the equity
        at the reset (max(balance, equity) references) and, with ``peak`` (no stored
        peak), the intraday-trailing high-water mark, the strictest value the history
        allows (raised further by any stored snapshot's equity)."""
        cfg = self.config
        assert cfg is not None
        peak = peak and cfg.drawdown_mode == "intraday_trailing" and cfg.has_overall_limit
        if not (needs_reset_equity(cfg, state) or peak):
            return state
        wants = bars_needed(cfg, state, deals, server_ms, peak=peak)
        try:
            market = read_m1_bars(self.mt5, wants)
        except Exception as exc:  # a terminal without bars: priced as "cannot tell"
            self.log.warning("risk_bars_unavailable", error=str(exc))
            market = {}
        had_reset = needs_reset_equity(cfg, state)
        state = with_history_equity(cfg, state, balance, deals, market, server_ms, peak=False)
        data: dict[str, Any] = {}
        if had_reset:
            data.update(reference_source=state.reference_source, day_start_equity=state.day_start_equity,
                        symbols=sorted(wants), priced=sorted(market))
        if peak:
            bound, complete = equity_high_bound(balance, deals, market, until_server_ms=server_ms)
            stored = self._snapshot_equity_high()
            state = replace(state, equity_high=_max(state.equity_high, bound, stored))
            self.peak_source = "rebuilt" if complete else "rebuilt_incomplete"
            data.update(equity_high=state.equity_high, peak_source=self.peak_source, snapshot_high=stored)
        self.event("risk_history_equity", level="warning" if state.reference_source == "assumed_strictest" else "info",
                   **data)
        return state

    def _snapshot_equity_high(self) -> float | None:
        """Highest equity (without credit) in this account's stored snapshots, if any."""
        try:
            snaps = self.store.list_snapshots(self.name, limit=SNAPSHOT_SCAN, tail=True)
        except StoreUnavailable:
            return None
        vals = [float(m.get("equity", 0.0)) - float(m.get("credit", 0.0) or 0.0)
                for m in (s.get("metrics") or {} for s in snaps) if m.get("equity") is not None]
        return max(vals) if vals else None

    def _backfill_previous_day(self) -> None:
        """A node down at the day roll never wrote yesterday's final report: write it now
        if the guardian was running yesterday (its snapshots are in the store)."""
        cfg, day, server_ms = self.config, self.state.day_id, self.server_time.latest_ms
        if cfg is None or day is None or server_ms is None:
            return
        prev = (date.fromisoformat(day) - timedelta(days=1)).isoformat()
        start, end = day_bounds(date.fromisoformat(prev), cfg.reset_time, cfg.reset_tz, cfg.clock)
        try:
            existing = self.store.get_flag(report_key(self.name, prev))
            if existing is not None and existing.get("final"):
                return
            if not self.store.list_snapshots(self.name, since_ms=ms_from_utc(start), until_ms=ms_from_utc(end), limit=1):
                return
        except StoreUnavailable:
            return
        self._schedule_report(prev, server_ms, final=True)

    # ------------------------------------------------------------------ loop
    def tick(self, now_utc_ms: int) -> None:
        """Cheap unless due; at most one evaluation per ``eval_interval_ms``."""
        if not self.started or now_utc_ms < self._next_eval:
            return
        self._next_eval = now_utc_ms + self.eval_interval_ms
        try:
            ok = self._evaluate_once(now_utc_ms)
        except StoreUnavailable as exc:  # the rules ran; only the record failed: retry next time
            self.log.warning("risk_store_unavailable", error=str(exc))
            ok = True
        except Exception:  # a bug must not stop copying's closes; opens stop (blind) until it clears
            self.log.exception("risk_loop_error")
            ok = False
        self.blind = 0 if ok else self.blind + 1
        if self.blind == BLIND_AFTER and self.has_limits:
            self.event("risk_blind", level="error", evaluations=self.blind, error=self.terminal_error)

    def _terminal_failed(self, where: str) -> None:
        code, text = self.mt5.last_error()
        error = f"terminal error ({code}, {text}) in {where}"
        if self.terminal_error is None:
            self.log.warning("risk_terminal_error", error=error)
        self.terminal_error = error

    def _evaluate_once(self, now_utc_ms: int) -> bool:
        cfg = self.config
        assert cfg is not None
        if self.state.day_id is None:  # the terminal never answered at start: try again now
            if not self._rebuild(self.state):
                return False
        elif not self.rebuilt and now_utc_ms >= self._next_rebuild:  # history was unavailable
            self._next_rebuild = now_utc_ms + HISTORY_RETRY_MS
            self._rebuild(self.state)
        mt5 = self.mt5
        info = mt5.account_info()
        positions = mt5.positions_get()
        if info is None or positions is None:
            self._terminal_failed("evaluate")  # absence of data is not a signal: do nothing
            return False
        server_ms = self.server_time.read(mt5, [p.symbol for p in positions])
        if server_ms is None:
            self._terminal_failed("server time")
            return False
        self.terminal_error = None
        was_locked = self.locked or is_locked(self.state.lock, cfg.clock.to_utc_ms(server_ms))
        if self._poll_release(server_ms):
            was_locked = False
        metrics = _metrics(info, server_ms)
        deals = None
        st = self.state
        if st.next_reset_utc_ms is not None and cfg.clock.to_utc_ms(server_ms) >= st.next_reset_utc_ms:
            deals = self.history.refresh(mt5, server_ms)  # exact day roll even if this tick is late
        elif st.last_balance is not None and metrics.balance != st.last_balance:
            # the balance moved: a close, or a deposit/withdrawal/correction, which is capital
            # and must shift today's reference before equity is judged against it
            deals = self.history.refresh(mt5, server_ms)
        prev_day = st.day_id
        if deals is not None and st.next_reset_utc_ms is not None and cfg.clock.to_utc_ms(server_ms) >= st.next_reset_utc_ms:
            rolled = observe(cfg, st, metrics, server_ms, deals)
            if needs_reset_equity(cfg, rolled):  # no snapshot near the reset: rebuild it before judging
                st = self._history_equity(rolled, deals, metrics.balance, server_ms, peak=False)
        ev = evaluate(cfg, st, metrics, server_ms, deals)
        self.ev, self.state, self.metrics = ev, ev.state, metrics
        self._positions_count = len(positions)
        if deals is not None and ev.state.day_id != prev_day:
            ev = replace(ev, state=with_balance_operations(cfg, ev.state, deals))
            self.ev, self.state = ev, ev.state
        if prev_day is not None and ev.state.day_id != prev_day:
            self._day_rolled(prev_day, ev, server_ms)
        if was_locked and not ev.locked:
            self.event("risk_lock_expired", day=ev.state.day_id)
        if ev.locked and not was_locked and self.actions_enabled:
            self._persist(now_utc_ms, force=True)  # the lock is durable before the first close
            self._mirror_lock(ev.state.lock)
            self._flatten(positions, ev, now_utc_ms)
        elif ev.locked and self.actions_enabled:
            self._enforce_lock(positions)
        self._update_pause(ev)
        self._check_exposure(positions, metrics, server_ms)
        self._note_day_stats(ev)
        self._alerts_for(ev)
        self._persist(now_utc_ms)
        if ev.state.lock != self._mirrored_lock:
            self._mirror_lock(ev.state.lock)
        if now_utc_ms >= self._next_snapshot:
            self._next_snapshot = now_utc_ms + self.snapshot_interval_ms
            self._snapshot(metrics, ev, now_utc_ms)
        if now_utc_ms >= self._next_report:
            self._next_report = now_utc_ms + self.report_interval_ms
            self._schedule_report(ev.state.day_id, server_ms, final=False)
        self._poll_report_request(server_ms)
        return True

    def _poll_report_request(self, server_ms: int) -> None:
        """``cli.py report`` wrote ``report_request:<name>``: compute today's report now
        (deals read here, the rest on the report worker) and echo the request id."""
        try:
            req = self.store.get_flag(report_request_key(self.name))
            if req is None:
                return
            self.store.delete_flag(report_request_key(self.name))
        except StoreUnavailable:
            return
        rid = str(req.get("id")) if isinstance(req, dict) and req.get("id") is not None else None
        job = self._report_job(self.state.day_id, server_ms, False)
        if job is not None:
            self.reports.submit(replace(job, request_id=rid))

    # ------------------------------------------------------------------ actions
    def _flatten(self, positions: Any, ev: Evaluation, now_utc_ms: int) -> None:
        lock = ev.state.lock
        until = _iso(lock.until_utc_ms) if lock and lock.until_utc_ms else None
        self.log.error("risk_flatten", reason=lock.reason if lock else "", positions=len(positions))
        self.event("risk_flatten_started", level="error", reason=lock.reason if lock else "", positions=len(positions),
                   until_utc_ms=lock.until_utc_ms if lock else None, equity=self.metrics.equity if self.metrics else None)
        results = self.closer.close_positions(positions, lambda r: self._record_close(r, "flatten"))
        orders = self.mt5.orders_get()
        removed = self.closer.remove_orders(orders or ())
        for ticket, ok, reason in removed:
            self.event("risk_order_removed", level="warning" if ok else "error", order=ticket, ok=ok, reason=reason)
        closed = sum(1 for r in results if r.ok)
        self.last_flatten = {
            "started_ms": now_utc_ms,
            "last_close_sent_ms": max((r.sent_ms for r in results), default=None),
            "closed": closed,
            "failed": sum(1 for r in results if not r.ok),
            "orders_removed": sum(1 for _t, ok, _r in removed if ok),
        }
        self.event("risk_locked", level="error", reason=lock.reason if lock else "", until_utc_ms=lock.until_utc_ms if lock else None,
                   **self.last_flatten)
        worst = [r for r in ev.rules if r.level >= Level.FLATTEN] or list(ev.rules)
        if worst:
            rv = worst[0]
            fields = alert_fields(rv, self.metrics.currency if self.metrics else "")
            self._alert(rv.rule, "flatten", action_taken=action_text(Level.FLATTEN, True, closed=closed, until=until), **fields)
            self.tracker.levels[rv.rule] = Level.FLATTEN

    def _enforce_lock(self, positions: Any) -> None:
        """Locked: whatever opens (a copy, a manual trade, an EA) is closed at once."""
        if positions:
            self.log.warning("risk_lock_closing", positions=len(positions))
            self.closer.close_positions(positions, lambda r: self._record_close(r, "locked"))
        orders = self.mt5.orders_get()
        if orders:
            for ticket, ok, reason in self.closer.remove_orders(orders):
                self.event("risk_order_removed", level="warning" if ok else "error", order=ticket, ok=ok, reason=reason)

    def _record_close(self, r: CloseResult, why: str) -> None:
        data = dict(ticket=r.ticket, symbol=r.symbol, side=r.side, volume=r.volume, copied=r.copied, ok=r.ok,
                    retcode=r.retcode, price=r.price, reason=r.reason, why=why, sent_ms=r.sent_ms)
        if why == "locked" and r.ok:
            self.lock_closes += 1
        if why == "locked" and self._close_failures.get(r.ticket, 0) == 0:
            self._alert("lock_enforced", "warn", message=(
                f"{'copied' if r.copied else 'manual'} position #{r.ticket} {r.side} {r.volume:g} {r.symbol} "
                f"opened while locked: {'closed' if r.ok else 'close FAILED, retrying'}"),
                action_taken="position closed" if r.ok else "close retried every evaluation")
        if r.ok:
            self._close_failures.pop(r.ticket, None)
            self.log.warning("risk_position_closed", **data)
            self.event("risk_position_closed", level="warning", **data)
        else:  # retried every evaluation; recorded at the 1st, then every 60th failure
            n = self._close_failures[r.ticket] = self._close_failures.get(r.ticket, 0) + 1
            self.log.error("risk_close_failed", failures=n, **data)
            if n == 1 or n % 60 == 0:
                self.event("risk_close_failed", level="error", failures=n, **data)

    @property
    def has_exposure_limits(self) -> bool:
        c = self.config
        return bool(c and (c.require_sl or c.max_risk_per_trade_pct is not None or c.max_lots_per_order is not None
                           or c.max_lots_per_symbol is not None or c.max_positions is not None
                           or c.max_total_lots is not None or c.max_trades_per_day is not None))

    def _trades_today(self, server_ms: int) -> int | None:
        cfg = self.config
        if cfg is None or cfg.max_trades_per_day is None or self.state.day_start_utc_ms is None:
            return None
        deals = self.history.refresh(self.mt5, server_ms)
        return None if deals is None else trades_opened_since(deals, self.state.day_start_utc_ms, cfg.clock)

    def _spec(self, symbol: str, now_ms: int) -> SymbolSpec | None:
        hit = self._specs.get(symbol)
        if hit is not None and hit[0] > now_ms:
            return hit[1]
        info = self.mt5.symbol_info(symbol)
        if info is None:
            return hit[1] if hit else None
        spec = spec_from_mt5(info)
        self._specs[symbol] = (now_ms + SPEC_TTL_MS, spec)
        return spec

    def _check_exposure(self, positions: Any, metrics: AccountMetrics, server_ms: int) -> None:
        """Per-trade and per-account limits on every position (copies, hand-opened trades,
        other EAs): an alert and a ``risk_exposure_breach`` event when a breach appears,
        ``risk_exposure_ok`` when the last one clears. Nothing is closed for it."""
        if not self.has_exposure_limits:
            return
        cfg = self.config
        assert cfg is not None
        pos = [position_from_mt5(p) for p in positions]
        specs = {p.symbol: sp for p in pos if (sp := self._spec(p.symbol, server_ms)) is not None}
        breaches = exposure_breaches(cfg, exposure_of(pos, specs, metrics.equity), self._trades_today(server_ms))
        keys = {_breach_key(b): b for b in breaches}
        new = [b for k, b in keys.items() if k not in self.exposure_breaches]
        if new:
            self.log.warning("risk_exposure_breach", breaches=new)
            self.event("risk_exposure_breach", level="warning", breaches=new)
            self._alert("exposure", "warn", message="; ".join(new), action_taken="alert only: positions kept")
        elif self.exposure_breaches and not keys:
            self.event("risk_exposure_ok")
        self.exposure_breaches = keys

    def _update_pause(self, ev: Evaluation) -> None:
        paused = Action.PAUSE in ev.actions and self.actions_enabled
        if paused != self.paused_by_risk:
            self.paused_by_risk = paused
            reasons = ", ".join(f"{r.rule} {r.used_pct:.1f}%" for r in ev.rules if r.level >= Level.PAUSE)
            self.log.warning("risk_paused" if paused else "risk_resumed", reasons=reasons)
            self.event("risk_paused" if paused else "risk_resumed", level="warning" if paused else "info",
                       reasons=reasons, locked=ev.locked)

    def _alerts_for(self, ev: Evaluation) -> None:
        cfg = self.config
        assert cfg is not None
        currency = self.metrics.currency if self.metrics else ""
        for change in self.tracker.update(cfg, ev.rules):
            level = ALERT_LEVEL[change.new]
            acted = change.new if not (ev.locked and change.new >= Level.FLATTEN) else Level.FLATTEN
            action = action_text(acted, self.actions_enabled)
            self.event("risk_level", level="warning" if change.escalation else "info", rule=change.rule,
                       old=change.old.name, new=change.new.name, used_pct=round(change.value.used_pct, 2),
                       used_money=change.value.used_money, limit_money=change.value.limit_money)
            self._alert(change.rule, level, action_taken=action, **alert_fields(change.value, currency))

    def _note_day_stats(self, ev: Evaluation) -> None:
        """Worst level and headroom of the day as seen at every evaluation (the stored
        snapshots are only every 10 s): merged into the daily report."""
        day = ev.state.day_id
        if day is None:
            return
        st = self.day_stats.setdefault(day, {"worst_level": Level.OK.name})
        if ev.level > Level[st["worst_level"]]:
            st["worst_level"] = ev.level.name
        for rv in ev.rules:
            if rv.rule in (DAILY, OVERALL) and rv.headroom_money is not None:
                prefix = "daily" if rv.rule == DAILY else "overall"
                low = st.get(f"{prefix}_headroom_min")
                st[f"{prefix}_headroom_min"] = rv.headroom_money if low is None else min(low, rv.headroom_money)
                st[f"{prefix}_headroom_end"] = rv.headroom_money
                st[f"{prefix}_limit_money"] = rv.limit_money
        for old in sorted(self.day_stats)[:-2]:  # keep today and yesterday
            del self.day_stats[old]

    def _day_rolled(self, prev_day: str, ev: Evaluation, server_ms: int) -> None:
        self.tracker.forget(DAILY)
        if self.alerts is not None:
            try:
                self.alerts.reset_dedup(self.name)
            except Exception:
                pass
        self.event("risk_day_rolled", old_day=prev_day, day=ev.state.day_id, day_start_balance=ev.state.day_start_balance,
                   reference_estimated=ev.state.reference_estimated)
        self._schedule_report(prev_day, server_ms, final=True)

    # ------------------------------------------------------------------ operator release
    def release_lock(self, *, by: str = "operator") -> bool:
        """Operator release: opens may resume at once; the rules still apply (an account
        still past its flatten level is locked again at the next evaluation)."""
        if self.state.lock is None:
            return False
        old = self.state.lock
        self.state = release_lock(self.state)
        if self.ev is not None:
            self.ev = replace(self.ev, locked=False, state=self.state)
        self._persist(now_ms(), force=True)
        self._mirror_lock(None)
        self.log.warning("risk_lock_released", by=by, reason=old.reason)
        self.event("risk_lock_released", level="warning", by=by, reason=old.reason)
        self._alert("account_lock", "info", message=f"lock released by {by}", action_taken="copying may resume")
        return True

    def _poll_release(self, server_ms: int) -> bool:
        """The CLI cannot reach this process's memory: it writes ``risk_release:<name>``.
        A request that finds no lock is consumed too (recorded), so it cannot release a
        lock set later."""
        try:
            req = self.store.get_flag(release_key(self.name))
            if req is None:
                return False
            self.store.delete_flag(release_key(self.name))
        except StoreUnavailable:
            return False
        by = str(req.get("by", "operator")) if isinstance(req, dict) else "operator"
        if self.state.lock is None:
            self.event("risk_release_ignored", by=by, reason="not locked")
            return False
        return self.release_lock(by=by)

    # ------------------------------------------------------------------ pre-trade
    def pre_trade(self, symbol: str, side: str, volume: float, entry: float, sl: float,
                  tick_size: float, tick_value: float, *, metrics: AccountMetrics | None = None,
                  positions: list | None = None, server_ms: int | None = None) -> str | None:
        """A reason to refuse this open, or None (counts the new position's risk at SL).

        The slave passes what its reconcile pass already read: ``metrics`` (the account,
        at most the loop's METRICS_MAX_AGE_MS old), ``positions`` (copier Positions read by
        the pass) and ``server_ms`` (the freshest tick time of the pass, broker ms): then no
        terminal call is made on the copy path. Without them it reads the account, the
        positions and a tick fresh (3 calls), as a caller outside a pass must.
        """
        cfg = self.config
        if cfg is None or not cfg.actions_enabled:
            return None
        if metrics is not None and positions is not None:
            self.server_time.observe(server_ms)
            server_ms = self.server_time.latest_ms
            if server_ms is None:
                return "risk: no server time yet (no tick seen), not opening blind"
            metrics = replace(metrics, server_time_msc=server_ms)
        else:
            mt5 = self.mt5
            info = mt5.account_info()
            raw = mt5.positions_get()
            server_ms = self.server_time.read(mt5, [symbol])
            if info is None or raw is None or server_ms is None:
                return "risk: account state unreadable (terminal error), not opening blind"
            metrics, positions = _metrics(info, server_ms), [position_from_mt5(p) for p in raw]
        if self.state.day_id is None:
            return "risk: the guardian has no state yet (terminal not read at start), not opening blind"
        # max_trades_per_day counts today's opening deals: one incremental history read per
        # open, only on an account with that limit (the copy path's third call there)
        state = AccountRiskState(cfg, self.state, metrics, server_ms, list(positions), self._trades_today(server_ms))
        try:
            decision = pre_trade_check(state, ProposedOpen(symbol, side, float(volume), float(entry), float(sl or 0.0),
                                                           float(tick_size), float(tick_value)))
        except ValueError as exc:
            return f"risk: cannot check this open ({exc})"
        return None if decision.allowed else f"risk: {decision.reason}"

    # ------------------------------------------------------------------ records
    def _persist(self, now_utc_ms: int, *, force: bool = False) -> None:
        data = self.state.to_dict()
        core = {k: v for k, v in data.items() if k not in _VOLATILE}
        core["worst"] = {d: s.get("worst_level") for d, s in self.day_stats.items()}
        if not force and self._persisted is not None and self._persisted.get("core") == core:
            return
        doc = {"state": data, "core": core, "day_stats": self.day_stats, "profile": self.config.profile if self.config else None,
               "updated_ms": now_utc_ms, "server_time_msc": self.server_time.latest_ms}
        try:
            self.store.set_flag(state_key(self.name), doc)
            self._persisted = doc
        except StoreUnavailable as exc:
            self.log.warning("risk_state_not_saved", error=str(exc))

    def _mirror_lock(self, lock: Lock | None) -> None:
        """``risk_lock:<name>``: the lock on its own, for the CLI and the monitor."""
        try:
            if lock is None:
                self.store.delete_flag(lock_key(self.name))
            else:
                self.store.set_flag(lock_key(self.name), lock.to_dict())
            self._mirrored_lock = lock
        except StoreUnavailable as exc:
            self.log.warning("risk_lock_not_mirrored", error=str(exc))

    def _snapshot(self, metrics: AccountMetrics, ev: Evaluation, now_utc_ms: int) -> None:
        cfg = self.config
        assert cfg is not None
        doc = {**metrics.to_dict(), "wall_ms": now_utc_ms, "level": ev.level.name, "locked": ev.locked,
               "paused_by_risk": self.paused_by_risk, "positions": self._positions_count}
        for rv in ev.rules:
            doc[f"{rv.rule}_used_pct"] = round(rv.used_pct, 3)
        try:
            # ts_ms is the broker time converted to UTC: the axis reports and lock times use
            self.store.add_snapshot(self.name, cfg.clock.to_utc_ms(metrics.server_time_msc), doc)
        except StoreUnavailable as exc:
            self.log.warning("snapshot_not_saved", error=str(exc))

    def write_report(self, day: str | None, server_ms: int, *, final: bool) -> dict[str, Any] | None:
        """Compute and upsert the daily report of ``day`` (a trading-day label), now."""
        job = self._report_job(day, server_ms, final)
        return self.reports.compute(job) if job is not None else None

    def _schedule_report(self, day: str | None, server_ms: int, *, final: bool) -> None:
        """Like ``write_report``, but computed on the report worker thread, off the loop.
        The deals are read here: the terminal belongs to the loop's thread."""
        if self.reports.busy and not final:
            return  # a refresh is already waiting; final reports always queue
        job = self._report_job(day, server_ms, final)
        if job is not None:
            self.reports.submit(job)

    def _report_job(self, day: str | None, server_ms: int, final: bool) -> ReportJob | None:
        if self.config is None or day is None:
            return None
        deals = self.history.refresh(self.mt5, server_ms)
        if deals is None:
            return None
        login = self.metrics.login if self.metrics else None
        return ReportJob(self.config, day, server_ms, final, deals, dict(self.day_stats.get(day) or {}), login)

    # ------------------------------------------------------------------ status
    def status_info(self) -> dict[str, Any]:
        """For the status heartbeat (``info["risk"]``) and the monitor."""
        ev, st, cfg = self.ev, self.state, self.config
        out: dict[str, Any] = {
            "profile": cfg.profile if cfg else None,
            "actions_enabled": self.actions_enabled,
            "level": ev.level.name if ev else None,
            "locked": self.locked,
            "paused_by_risk": self.paused_by_risk,
            "blocks_opens": self.blocks_opens,
            "day": st.day_id,
            "day_start_balance": st.day_start_balance,
            "day_start_equity": st.day_start_equity,
            "reference_estimated": st.reference_estimated,
            "reference_source": st.reference_source,
            "peak_source": self.peak_source,
            "equity_high": st.equity_high,
            "server_time_msc": self.server_time.latest_ms,
            "terminal_error": self.terminal_error,
            "blind": self.blind,
            "lock_closes": self.lock_closes,
        }
        if st.lock is not None:
            out.update(lock_reason=st.lock.reason, lock_until_utc_ms=st.lock.until_utc_ms, lock_by=st.lock.by)
        if ev is not None:
            for rv in ev.rules:
                prefix = {DAILY: "daily", OVERALL: "overall"}.get(rv.rule, "margin")
                out[f"{prefix}_used_pct"] = round(rv.used_pct, 2)
                out[f"{prefix}_level"] = rv.level.name
                if rv.rule in (DAILY, OVERALL):
                    out[f"{prefix}_used_money"] = rv.used_money
                    out[f"{prefix}_left_pct"] = round(max(0.0, 100.0 - rv.used_pct), 2)
                    out[f"{prefix}_reference"] = rv.reference
                    out[f"{prefix}_limit"] = rv.limit_money
                    out[f"{prefix}_headroom"] = rv.headroom_money
                    out[f"{prefix}_floor_equity"] = rv.floor_equity
                else:
                    out["margin_level"] = rv.value
        if self.metrics is not None:
            out["equity"] = self.metrics.equity
            out["balance"] = self.metrics.balance
        if self.last_flatten is not None:
            out["last_flatten"] = self.last_flatten
        if self.exposure_breaches:
            out["exposure_breaches"] = sorted(self.exposure_breaches.values())
        return out

    def close(self, now_utc_ms: int, timeout: float = 5.0) -> None:
        """At shutdown: finish queued reports, then write today's so the CLI has the latest."""
        self.reports.close(timeout)
        if self.started and self.server_time.latest_ms is not None:
            try:
                self.write_report(self.state.day_id, self.server_time.latest_ms, final=False)
            except Exception as exc:
                self.log.warning("report_not_saved", error=str(exc))


def _metrics(info: Any, server_ms: int) -> AccountMetrics:
    return metrics_from_mt5(info, server_time_msc=server_ms)


def _max(*vals: float | None) -> float | None:
    xs = [v for v in vals if v is not None]
    return max(xs) if xs else None


def _breach_key(text: str) -> str:
    """A breach without its changing figures (risk %, lots), to alert once per breach."""
    head, sep, tail = text.partition(":")
    return head + sep + re.sub(r"[\d.,]+%?", "#", tail) if sep else re.sub(r"[\d.,]+", "#", text)


def _iso(utc_ms: int) -> str:
    return utc_from_ms(utc_ms).strftime("%Y-%m-%d %H:%M UTC")

