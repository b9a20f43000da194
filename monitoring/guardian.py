"""The guardian: the risk loop inside every node (master and slave).

Only the node's process owns its terminal, so the loop runs there. Every
``eval_interval_ms`` it reads the account (balance, equity, margin, positions) and the
broker's server time from the freshest tick, folds it into the pure tracker
(``copier.risk.evaluate``), persists the tracker state when it changed, and acts:

* WARN — alert (on a level change only);
* PAUSE — ``blocks_opens`` turns True: the slave opens no new copies (closes still mirror),
  and ``block_reason`` says why (``risk: paused by the guardian (...)``) for its skips;
* FLATTEN — the lock is persisted first, then every position on the account is closed
  (copies *and* manual trades) and pending orders deleted; while locked, any position
  that appears is closed at once. Every close is an event.

It also writes account snapshots to the store every ``snapshot_interval_ms`` and keeps
a daily report per broker day in the store (``report:<account>:<day>``) so that
``cli.py report`` works without a terminal. See docs/guardian.md.

The loss each rule measures includes the estimated cost to close what is open now (the
exit commission, ``copier.risk.costs``, read by ``terminal.ClosingCosts``): a flatten at
the flatten level then realises about that level, not that level plus the commission.

The state the rules need is rebuilt at start from the deal history and the persisted
state, never from the moment the node happened to start.
"""
from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace
from datetime import date, timedelta
from typing import Any

from alerts import Alert
from copier.models import AccountMetrics
from copier.risk import (
    DAILY,
    Action,
    ClosingCost,
    Evaluation,
    Level,
    RiskConfig,
    TrackerState,
    day_bounds,
    evaluate,
    is_locked,
    observe,
    release_lock,
    resolve_risk_config,
    trades_opened_since,
    with_balance_operations,
)
from copier.risk.clock import ms_from_utc, utc_from_ms
from copier.risk.tracker import needs_reset_equity
from db import StoreUnavailable, now_ms
from terminals.convert import metrics_from_mt5

from .daily import REPORT_PREFIX, ReportJob, ReportWriter, report_key  # noqa: F401 (REPORT_PREFIX re-exported)
from .enforce import LockEnforcer, lock_detail
from .exposure_watch import ExposureWatch, has_exposure_limits
from .levels import ALERT_LEVEL, LevelTracker, action_text, alert_fields
from .pretrade import pre_trade_reason
from .rebuild import history_equity, rebuild
from .risk_status import note_day_stats, status_info
from .risk_store import (  # noqa: F401 (keys and prefixes re-exported: monitoring.guardian is where callers find them)
    LOCK_PREFIX,
    RELEASE_PREFIX,
    STATE_PREFIX,
    RiskRecords,
    lock_key,
    release_key,
    state_key,
)
from .terminal import Closer, ClosingCosts, DealHistory, ServerTime

REPORT_INTERVAL_MS = 300_000
HISTORY_RETRY_MS = 60_000
BLIND_AFTER = 3


class Guardian:
    """One account's risk loop. The node calls ``start`` once, then ``tick`` often.

    ``mt5`` is read through ``executor.mt5``, so a node that reconnects its terminal (and
    swaps ``executor.mt5``) needs to tell nobody else. ``executor`` is the node's order
    sender (``nodes.execution.Executor``): the guardian's closes go through it.

    Its parts, one job each: ``records`` (the store documents, ``risk_store``),
    ``enforcer`` (flatten and keep flat, ``enforce``), ``exposure`` (exposure limits,
    ``exposure_watch``); the rebuild at start (``rebuild``), the pre-trade check
    (``pretrade``) and the status block (``risk_status``) are functions over it.
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
        executor: Any,
        alerts: Any | None = None,
        eval_interval_ms: int = 1000,
        snapshot_interval_ms: int = 10_000,
        report_interval_ms: int = REPORT_INTERVAL_MS,
        report_in_background: bool = True,
        magic: int = 0,
        close_deviation: int = 200,
    ) -> None:
        if role not in ("master", "slave"):
            raise ValueError(f"role must be 'master' or 'slave', got {role!r}")
        if executor is None:
            raise ValueError("executor is required: the node's order sender (nodes.execution.Executor)")
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
        self.executor = executor
        self.records = RiskRecords(name, store, log)
        self.enforcer = LockEnforcer(Closer(executor, deviation=close_deviation, magic=magic), log=log,
                                     event=self.event, alert=self.alert)
        self.exposure = ExposureWatch(lambda: self.mt5, log=log, event=self.event, alert=self.alert)
        self.config: RiskConfig | None = None
        self.state = TrackerState()
        self.ev: Evaluation | None = None
        self.metrics: AccountMetrics | None = None
        self.server_time = ServerTime()
        self.history = DealHistory()
        self.costs = ClosingCosts()
        self.closing_cost = ClosingCost()  # the estimate the last evaluation counted
        self.tracker = LevelTracker()
        self.started = False
        self.rebuilt = False
        self.terminal_error: str | None = None
        self.paused_by_risk = False
        self._next_eval = 0
        self._next_snapshot = 0
        self._next_report = 0
        self._next_rebuild = 0
        self._positions_count = 0
        self.day_stats: dict[str, dict[str, Any]] = {}  # per trading day: what the guardian itself saw
        self.blind = 0  # consecutive evaluations that could not run (terminal error, bug)
        self.peak_source: str | None = None  # intraday trailing: stored / rebuilt / rebuilt_incomplete

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
    def has_exposure_limits(self) -> bool:
        return has_exposure_limits(self.config)

    @property
    def blocks_opens(self) -> bool:
        """True while the account is paused by risk or locked: open no new copies. Also
        while the guardian has been unable to evaluate ``BLIND_AFTER`` times in a row on
        an account with limits: no new risk on an account nobody is watching."""
        if not self.actions_enabled:
            return False
        return self.paused_by_risk or self.locked or (self.blind >= BLIND_AFTER and self.has_limits)

    @property
    def block_reason(self) -> str | None:
        """Why ``blocks_opens`` is true, for the slave's skip records (``risk: ...``), or
        None when opens are not blocked. E.g. ``risk: paused by the guardian (daily_loss
        87.8% of 500.00, pause at 85%)``, ``risk: account locked by the guardian
        (daily_loss 98.9%) until 2025-01-06 23:00 UTC``."""
        if not self.blocks_opens:
            return None
        lock = self.state.lock
        if self.locked and lock is not None:
            who = "the guardian" if lock.by == "guardian" else f"the {lock.by}"
            until = _until_text(lock.until_utc_ms)
            return f"risk: account locked by {who} ({lock_detail(lock.reason)}) {until}"
        if self.locked:
            return "risk: account locked by the guardian"
        if self.paused_by_risk and self.ev is not None and self.config is not None:
            cfg = self.config
            worst = [r for r in self.ev.rules if r.level >= Level.PAUSE]
            parts = []
            for r in worst:
                of = f" of {r.limit_money:,.2f}" if r.limit_money is not None else ""
                parts.append(f"{r.rule} {r.used_pct:.1f}%{of}")
            return f"risk: paused by the guardian ({', '.join(parts or ['limits'])}, pause at {cfg.pause_at * 100:g}%)"
        return (f"risk: the guardian cannot read the account ({self.blind} evaluations failed"
                f"{': ' + self.terminal_error if self.terminal_error else ''})")

    @property
    def risk_close_notes(self) -> dict[int, str]:
        """Position identifier -> what the guardian closed it for (``"flatten (daily_loss
        98.9%)"``): the slave records its copies closed that way (``copier.reasons``)."""
        return self.enforcer.closed

    @property
    def risk_context(self) -> str:
        """What the lock says about the rules (``daily_loss 98.9%``), "" when not locked: the
        detail of a guardian close that this process did not see (made before a restart)."""
        lock = self.state.lock
        return lock_detail(lock.reason) if lock is not None else ""

    @property
    def last_flatten(self) -> dict[str, Any] | None:
        return self.enforcer.last_flatten

    @property
    def lock_closes(self) -> int:
        return self.enforcer.lock_closes

    @property
    def exposure_breaches(self) -> dict[str, str]:
        return self.exposure.breaches

    @property
    def next_due_ms(self) -> int:
        """Wall-clock ms of the next evaluation: a node that blocks on its bus must wake by then."""
        return self._next_eval

    def ms_until_due(self, now_utc_ms: int) -> int:
        return max(0, self._next_eval - now_utc_ms)

    # ------------------------------------------------------------------ events
    def event(self, kind: str, *, level: str = "info", **data: Any) -> None:
        """Audit trail (store + bus, through the node); never raises."""
        try:
            self._event(kind, level=level, **data)
        except Exception as exc:  # the audit trail must never break the loop
            self.log.warning("risk_event_failed", kind=kind, error=str(exc))

    def alert(self, rule: str, level: str, **kw: Any) -> None:
        """An alert to the operator's channels (when the node has any); never raises."""
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
        persisted = self.records.load()
        self.started = True
        saved = TrackerState.from_dict((persisted or {}).get("state"))
        stats = (persisted or {}).get("day_stats")
        self.day_stats = dict(stats) if isinstance(stats, dict) else {}
        self._next_rebuild = now_utc_ms + HISTORY_RETRY_MS
        rebuild(self, saved)
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
        rebuild(self, self.state)
        self.event("risk_config_reloaded", profile=new.profile)
        return True

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

    def terminal_failed(self, where: str) -> None:
        """Note a terminal error (``mt5.last_error()``) met in ``where``; logged once per outage."""
        code, text = self.mt5.last_error()
        error = f"terminal error ({code}, {text}) in {where}"
        if self.terminal_error is None:
            self.log.warning("risk_terminal_error", error=error)
        self.terminal_error = error

    def _evaluate_once(self, now_utc_ms: int) -> bool:
        cfg = self.config
        assert cfg is not None
        if self.state.day_id is None:  # the terminal never answered at start: try again now
            if not rebuild(self, self.state):
                return False
        elif not self.rebuilt and now_utc_ms >= self._next_rebuild:  # history was unavailable
            self._next_rebuild = now_utc_ms + HISTORY_RETRY_MS
            rebuild(self, self.state)
        mt5 = self.mt5
        info = mt5.account_info()
        positions = mt5.positions_get()
        if info is None or positions is None:
            self.terminal_failed("evaluate")  # absence of data is not a signal: do nothing
            return False
        server_ms = self.server_time.read(mt5, [p.symbol for p in positions])
        if server_ms is None:
            self.terminal_failed("server time")
            return False
        self.terminal_error = None
        was_locked = self.locked or is_locked(self.state.lock, cfg.clock.to_utc_ms(server_ms))
        if self._poll_release(server_ms):
            was_locked = False
        metrics = metrics_from_mt5(info, server_time_msc=server_ms)
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
                st = history_equity(self, rolled, deals, metrics.balance, server_ms, peak=False)
        cost = self._closing_cost(positions)
        ev = evaluate(cfg, st, metrics, server_ms, deals, closing_cost=cost.money)
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
            self.records.mirror_lock(ev.state.lock)
            self.enforcer.flatten(positions, ev, now_utc_ms, equity=metrics.equity, currency=metrics.currency,
                                  tracker=self.tracker)
        elif ev.locked and self.actions_enabled:
            self.enforcer.enforce(positions, self.risk_context)
        self._update_pause(ev)
        if self.has_exposure_limits:
            self.exposure.check(cfg, positions, metrics, server_ms, lambda: self.trades_today(server_ms))
        note_day_stats(self.day_stats, ev)
        self._alerts_for(ev)
        self._persist(now_utc_ms)
        if self.records.lock_differs(ev.state.lock):
            self.records.mirror_lock(ev.state.lock)
        if now_utc_ms >= self._next_snapshot:
            self._next_snapshot = now_utc_ms + self.snapshot_interval_ms
            self._snapshot(metrics, ev, now_utc_ms)
        if now_utc_ms >= self._next_report:
            self._next_report = now_utc_ms + self.report_interval_ms
            self._schedule_report(ev.state.day_id, server_ms, final=False)
        self._poll_report_request(server_ms)
        return True

    def _closing_cost(self, positions: Any) -> ClosingCost:
        """The estimated cost to close ``positions`` (exit commission), on an account with a
        loss limit; reads the deals of the positions it does not know yet."""
        cfg = self.config
        if cfg is None or not (cfg.has_daily_limit or cfg.has_overall_limit):
            self.closing_cost = ClosingCost()
        else:
            self.closing_cost = self.costs.estimate(self.mt5, positions, self.history.deals if self.history.loaded else None)
        return self.closing_cost

    def _poll_report_request(self, server_ms: int) -> None:
        """``cli.py report`` wrote ``report_request:<name>``: compute today's report now
        (deals read here, the rest on the report worker) and echo the request id."""
        asked, rid = self.records.take_report_request()
        if not asked:
            return
        job = self._report_job(self.state.day_id, server_ms, False)
        if job is not None:
            self.reports.submit(replace(job, request_id=rid))

    def trades_today(self, server_ms: int) -> int | None:
        """Opening deals since today's reset, on an account with ``max_trades_per_day``
        (one incremental history read), else None."""
        cfg = self.config
        if cfg is None or cfg.max_trades_per_day is None or self.state.day_start_utc_ms is None:
            return None
        deals = self.history.refresh(self.mt5, server_ms)
        return None if deals is None else trades_opened_since(deals, self.state.day_start_utc_ms, cfg.clock)

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
            self.alert(change.rule, level, action_taken=action, **alert_fields(change.value, currency))

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
        self.records.mirror_lock(None)
        self.log.warning("risk_lock_released", by=by, reason=old.reason)
        self.event("risk_lock_released", level="warning", by=by, reason=old.reason)
        self.alert("account_lock", "info", message=f"lock released by {by}", action_taken="copying may resume")
        return True

    def _poll_release(self, server_ms: int) -> bool:
        """The CLI cannot reach this process's memory: it writes ``risk_release:<name>``.
        A request that finds no lock is consumed too (recorded), so it cannot release a
        lock set later."""
        by = self.records.take_release_request()
        if by is None:
            return False
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
        return pre_trade_reason(self, symbol, side, volume, entry, sl, tick_size, tick_value,
                                metrics=metrics, positions=positions, server_ms=server_ms)

    # ------------------------------------------------------------------ records
    def _persist(self, now_utc_ms: int, *, force: bool = False) -> None:
        self.records.persist(self.state.to_dict(), self.day_stats, self.config.profile if self.config else None,
                             now_utc_ms, self.server_time.latest_ms, force=force)

    def _snapshot(self, metrics: AccountMetrics, ev: Evaluation, now_utc_ms: int) -> None:
        cfg = self.config
        assert cfg is not None
        doc = {**metrics.to_dict(), "wall_ms": now_utc_ms, "level": ev.level.name, "locked": ev.locked,
               "paused_by_risk": self.paused_by_risk, "positions": self._positions_count,
               "closing_cost": self.closing_cost.money}
        for rv in ev.rules:
            doc[f"{rv.rule}_used_pct"] = round(rv.used_pct, 3)
        # ts_ms is the broker time converted to UTC: the axis reports and lock times use
        self.records.add_snapshot(cfg.clock.to_utc_ms(metrics.server_time_msc), doc)

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
        """For the status heartbeat (``info["risk"]``) and the monitor (``risk_status.status_info``)."""
        return status_info(self)

    def close(self, now_utc_ms: int, timeout: float = 5.0) -> None:
        """At shutdown: finish queued reports, then write today's so the CLI has the latest."""
        self.reports.close(timeout)
        if self.started and self.server_time.latest_ms is not None:
            try:
                self.write_report(self.state.day_id, self.server_time.latest_ms, final=False)
            except Exception as exc:
                self.log.warning("report_not_saved", error=str(exc))


def _until_text(until_utc_ms: int | None) -> str:
    if until_utc_ms is None:
        return "until released"
    return "until " + utc_from_ms(until_utc_ms).strftime("%Y-%m-%d %H:%M UTC")
