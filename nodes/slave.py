"""Slave node: mirror the masters this account follows and make the terminal match.

The loop is level-triggered (invariant 4): on every master change and on a timer it
reads the slave's own positions, asks the pure planner (``copier.planner``) what to do,
and executes those actions. Every open is written to the store as a PENDING intent
before ``order_send`` and carries the master ticket in its comment, so a crash, a lost
reply or a restart never produces a second copy (invariant 2).

Run: ``python nodes/slave.py --name Apex_Slave_01``.
"""
from __future__ import annotations

import dataclasses
import sys
import time
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from nodes.runtime import EXIT_OK, EXIT_RESTART, NodeRuntime, run_node, utc_ms  # noqa: E402
from config import settings  # noqa: E402
from copier.accounts import AccountConfigError, validate_account  # noqa: E402
from copier.actions import Adopt, Close, MarkClosed, ModifyPending, ModifySLTP, Open, PlacePending, RecordSkip, RemovePending  # noqa: E402
from copier.links import CLOSED, FAILED, KIND_ORDER, KIND_POSITION, OPEN, PENDING, SKIPPED, Link  # noqa: E402
from copier.models import Quote, SymbolSpec  # noqa: E402
from copier.orders import RetryPolicy, choose_filling  # noqa: E402
from copier.planner import MasterView, PlanContext, plan  # noqa: E402
from copier.slippage import slippage_points  # noqa: E402
from copier.symbols import translate_symbol  # noqa: E402
from copier.tags import parse_tag  # noqa: E402
from copier.risk import RiskConfigError  # noqa: E402
from db import StoreUnavailable  # noqa: E402
from monitoring.guardian import Guardian  # noqa: E402
from messaging.clone import Mirror, SnapshotRequester  # noqa: E402
from messaging.schema import Control, Delta, Snapshot  # noqa: E402
from nodes.convert import PENDING_TYPE_CODES, metrics_from_mt5, order_from_mt5, position_from_mt5, spec_from_mt5  # noqa: E402
from nodes.execution import DONE, FAILED as OUT_FAILED, SKIPPED as OUT_SKIPPED, UNKNOWN, Executor, Outcome  # noqa: E402

KILL_SWITCH_FILE = "KILL_SWITCH"  # in the data dir: no new opens while it exists
SPEC_TTL_MS = 60_000
INTENT_PURPOSES = ("new", "retry", "replace")  # opens of a new copy: intent written first
RETRY_BACKOFF_MS = (1_000, 60_000)  # a failing close/add/restore is retried at 1 s, 2 s … 60 s
METRICS_TTL_MS = 500  # balance/equity for sizing: fresh enough, and not read on every change


def iso_utc(ms: int) -> str:
    return datetime.fromtimestamp(ms / 1000, tz=timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z"


def _plausible_latency(filled_ms: int, master_open_ms: int) -> int | None:
    """Master open (UTC, from the master's server clock) to slave fill, when both clocks agree.

    A simulator running on its own clock, or a master whose server offset could not be
    learnt, gives nonsense; then no latency is recorded rather than a wrong one.
    """
    if not master_open_ms or not filled_ms:
        return None
    latency = filled_ms - master_open_ms
    return latency if -1000 <= latency <= 3_600_000 else None


def follow_flag(slave: str, master: str) -> str:
    return f"follow:{slave}:{master}"


class SlaveLoop:
    """One slave's state and reconcile pass; ``main`` drives it, tests can too."""

    def __init__(self, rt: NodeRuntime, mt5: Any, cfg: Any, *, stale_after_ms: int, max_attempts: int) -> None:
        self.rt = rt
        self.store = rt.store
        self.mt5 = mt5
        self.cfg = cfg
        self.log = rt.log
        self.stale_after_ms = stale_after_ms
        self.max_attempts = max_attempts
        self.executor = Executor(mt5, RetryPolicy(max_attempts=max_attempts))
        # a request sent before the bus connection is up is lost (slow joiner): ask again soon
        self.requester = SnapshotRequester(rt.publisher, rt.name, min_interval_ms=250)
        self.mirrors: dict[str, Mirror] = {}
        self.links: dict[tuple[str, int], dict[str, Any]] = {}
        self.followed: set[str] = set()
        self.specs: dict[str, tuple[int, SymbolSpec]] = {}
        self.available: set[str] | None = None
        self.margin_mode = "hedging"
        self.paused = False
        self.metrics = None
        self._metrics_ms = 0
        self.quotes: dict[str, Quote] = {}
        self.last_copy_ms = 0
        self.trigger_ts_ms = 0  # when the master saw the change that triggered this pass
        self.counts = {"copied": 0, "skipped": 0, "failed": 0, "closed": 0}
        self.guardian: Guardian | None = None
        self._backoff: dict[tuple[str, str, int], tuple[int, int]] = {}
        self._dry_run_seen: set[tuple[str, str, int]] = set()
        self._synced: frozenset[str] = frozenset()
        args = getattr(rt, "args", None)  # tests drive the loop with a runtime that has none
        self.kill_switch_file = Path(getattr(args, "data_dir", None) or settings.DATA_DIR) / KILL_SWITCH_FILE

    # ------------------------------------------------------------------ setup
    def start(self) -> None:
        info = self.mt5.account_info()
        if info is not None:
            self.margin_mode = "hedging" if int(info.margin_mode) == 2 else "netting"
            self.metrics = metrics_from_mt5(info)
        symbols = self.mt5.symbols_get()
        self.available = {s.name for s in symbols} if symbols is not None else None
        self.refresh_masters()
        only_master = next(iter(self.mirrors)) if len(self.mirrors) == 1 else None
        for rec in self.store.list_trades(slave_name=self.rt.name):
            master = rec.get("master_name") or only_master
            if not master:  # a seed-era row (no master_name) with several masters: cannot be placed
                self.log.warning("link_without_master_ignored", master_ticket=rec.get("master_ticket"))
                continue
            self.links[(master, int(rec["master_ticket"]))] = {**rec, "master_name": master}
        self.followed = {k.rsplit(":", 1)[1] for k in self.store.list_flags(f"follow:{self.rt.name}:")}
        self.refresh_flags()
        self.log.info("slave_started", margin_mode=self.margin_mode, links=len(self.links), masters=sorted(self.mirrors))

    def refresh_flags(self) -> None:
        paused = (
            bool(self.store.get_flag(f"paused:{self.rt.name}", False))
            or bool(self.store.get_flag("kill_switch", False))
            or self.kill_switch_file.exists()
        )
        if paused != self.paused:
            self.log.warning("paused" if paused else "resumed")
        self.paused = paused

    def refresh_masters(self) -> None:
        """Subscribe to every enabled master this account follows; drop the others."""
        masters = {d["name"] for d in self.store.list_accounts() if d.get("type") == "MASTER" and d.get("enabled", True)}
        wanted = {m for m in masters if self.cfg.follows_master(m)}
        sub = self.rt.subscriber
        assert sub is not None
        for name in wanted - set(self.mirrors):
            self.mirrors[name] = Mirror(name, stale_after_ms=self.stale_after_ms)
            sub.subscribe(f"pos.{name}")
            self.requester.request(name, utc_ms())
        for name in set(self.mirrors) - wanted:
            sub.unsubscribe(f"pos.{name}")
            del self.mirrors[name]

    def reload(self) -> None:
        """Apply a changed account document without a restart where possible.

        A store that is down only postpones this: copying goes on with what we know.
        """
        try:
            self._reload()
        except StoreUnavailable as exc:
            self.log.warning("reload_postponed_store_unavailable", error=str(exc))

    def _reload(self) -> None:
        doc = self.rt.read_account_doc()
        if doc is None:
            return
        if not doc.get("enabled", True):
            self.log.warning("account_disabled_stopping")
            self.rt.request_stop(EXIT_OK)
            return
        try:
            new = validate_account(doc, default_slippage=settings.DEFAULT_SLIPPAGE_TOLERANCE, default_magic=settings.DEFAULT_MAGIC_NUMBER)
            if getattr(getattr(self.rt, "args", None), "dry_run", False):  # --dry-run outlives reloads
                new = dataclasses.replace(new, dry_run=True)
        except AccountConfigError as exc:
            self.log.error("config_reload_refused", reason=str(exc))
            self.rt.event("config_reload_refused", level="error", reason=str(exc))
            return
        if new != self.cfg:
            changed = sorted(self.cfg.changed_fields(new))
            if not self.cfg.hot_reloadable_diff(new):
                self.log.warning("config_changed_restart", fields=changed)
                self.rt.event("config_changed_restart", fields=changed)
                self.rt.request_stop(EXIT_RESTART)
                return
            old_risk, self.cfg = self.cfg.risk, new
            if self.guardian is not None and new.risk != old_risk:
                try:
                    self.guardian.update_risk(new.risk, utc_ms())
                except RiskConfigError as exc:  # keep the old limits, say why
                    self.log.error("risk_reload_refused", reason=str(exc))
                    self.rt.event("config_reload_refused", level="error", reason=str(exc))
            self.log.info("config_reloaded", fields=changed)
            self.rt.event("config_reloaded", fields=changed)
        self.refresh_flags()
        self.refresh_masters()
        self.flatten_if_requested()

    def flatten_if_requested(self) -> None:
        """``cli.py flatten`` leaves a flag, so a flatten asked while the bus was down still happens."""
        key = f"flatten:{self.rt.name}"
        if self.store.get_flag(key) is not None:
            self.flatten(reason="operator flatten")
            self.store.delete_flag(key)

    # ------------------------------------------------------------------ bus
    @property
    def syncing(self) -> bool:
        return any(m.needs_snapshot for m in self.mirrors.values())

    def sync_changed(self) -> bool:
        """True once each time the set of masters with a trustworthy mirror changes."""
        now = utc_ms()
        synced = frozenset(n for n, m in self.mirrors.items() if m.fresh(now))
        changed, self._synced = synced != self._synced, synced
        return changed

    def ask_for_snapshots(self, now: int) -> None:
        """Ask each master whose mirror is not trustworthy yet for a snapshot (rate-limited)."""
        for mirror in self.mirrors.values():
            self.requester.maybe_request(mirror, now)

    def on_message(self, msg: Any) -> bool:
        """Feed a bus message; True when a reconcile should run now."""
        now = utc_ms()
        if isinstance(msg, (Snapshot, Delta)):
            mirror = self.mirrors.get(msg.master)
            if mirror is None:
                return False
            changed = mirror.apply(msg, now)
            self.requester.maybe_request(mirror, now)
            if changed:
                self.trigger_ts_ms = msg.ts_ms
            return changed
        if isinstance(msg, Control):
            return self.on_control(msg)
        return False

    def on_control(self, msg: Control) -> bool:
        self.log.info("control", command=msg.command, sender=msg.sender)
        if msg.command == "pause":
            self.paused = True
        elif msg.command == "resume":
            self.refresh_flags()
        elif msg.command == "flatten":
            self.flatten(reason=str(msg.args.get("reason", "operator flatten")))
            self.store.delete_flag(f"flatten:{self.rt.name}")
        elif msg.command == "reload":
            self.reload()
        elif msg.command == "stop":
            self.rt.request_stop(EXIT_OK)
        return msg.command in ("resume", "reload")

    # ------------------------------------------------------------------ reconcile
    def reconcile(self, *, full: bool = True) -> list[Any]:
        """One level-triggered pass. Returns the actions it executed.

        ``full=False`` (a pass triggered by a master change) skips reading the slave's
        pending orders when no pending order is in play: one terminal call less on the
        copy path; the timer's full pass still looks at every order.
        """
        now = utc_ms()
        views = {
            name: MasterView(state=mirror.state(now), metrics=mirror.metrics, first_sync=name not in self.followed)
            for name, mirror in self.mirrors.items()
        }
        positions = self.mt5.positions_get()
        if positions is None:
            orders = None
        elif full or self._orders_in_play(views):
            orders = self.mt5.orders_get()
        else:
            orders = ()
        if positions is None or orders is None:
            code, text = self.mt5.last_error()
            if self.rt.last_error is None:
                self.log.error("terminal_error", code=code, error=text)
            self.rt.set_error(f"terminal error ({code}, {text})")
            return []
        self.rt.set_error(None)
        slave_positions = [position_from_mt5(p) for p in positions]
        slave_orders = [o for o in (order_from_mt5(r) for r in orders) if o is not None]
        symbols = self._symbols_in_play(views, slave_positions, slave_orders)
        specs = {s: spec for s in symbols if (spec := self._spec(s, now)) is not None}
        quotes = {s: q for s in specs if (q := self._quote(s)) is not None}
        self.quotes = quotes
        if self.metrics is None or now - self._metrics_ms >= METRICS_TTL_MS:  # off the hot path
            info = self.mt5.account_info()
            if info is not None:
                self.metrics = metrics_from_mt5(info)
                self._metrics_ms = now
        ctx = PlanContext(
            slave=self.cfg,
            masters=views,
            links=self._relevant_links(views),
            slave_positions=slave_positions,
            slave_orders=slave_orders,
            specs=specs,
            quotes=quotes,
            slave_metrics=self.metrics,
            slave_margin_mode=self.margin_mode,
            paused=self.paused or self.kill_switch_file.exists() or (self.guardian is not None and self.guardian.blocks_opens),
            max_attempts=self.max_attempts,
            available_symbols=self.available,
        )
        actions = plan(ctx)
        removed_orders: set[int] = set()
        for action in actions:
            try:
                self.execute(action, views, removed_orders)
            except StoreUnavailable as exc:  # never trade without the record: stop this pass
                self.log.error("store_unavailable_pass_aborted", error=str(exc))
                break
        for name, view in views.items():
            if view.first_sync and view.fresh:
                self._record_follow(name, now)
        return actions

    def _orders_in_play(self, views: dict[str, MasterView]) -> bool:
        return any(v.fresh and v.state.orders for v in views.values()) or any(
            r.get("kind") == KIND_ORDER and r.get("status") in (PENDING, OPEN) for r in self.links.values()
        )

    def _record_follow(self, master: str, now: int) -> None:
        try:
            self.store.set_flag(follow_flag(self.rt.name, master), {"since_ms": now})
            self.followed.add(master)
            self.rt.event("follow_started", master=master)
        except StoreUnavailable as exc:
            self.log.warning("follow_not_recorded", master=master, error=str(exc))

    def _relevant_links(self, views: dict[str, MasterView]) -> list[Link]:
        """Live links, plus finished ones whose master ticket is still visible (never recopy)."""
        visible = {(n, t) for n, v in views.items() for t in (*v.state.positions, *v.state.orders)}
        return [Link.from_record(r) for k, r in self.links.items() if r.get("status") in (PENDING, OPEN) or k in visible]

    def _symbols_in_play(self, views: dict[str, MasterView], positions: list, orders: list) -> set[str]:
        out = {p.symbol for p in positions} | {o.symbol for o in orders}
        for view in views.values():
            if not view.fresh:
                continue
            for item in (*view.state.positions.values(), *view.state.orders.values()):
                sym = translate_symbol(item.symbol, self.cfg, self.available)
                if isinstance(sym, str):
                    out.add(sym)
        out |= {r["symbol"] for r in self.links.values() if r.get("status") in (PENDING, OPEN) and r.get("symbol")}
        return out

    def _spec(self, symbol: str, now: int) -> SymbolSpec | None:
        cached = self.specs.get(symbol)
        if cached is not None and now - cached[0] < SPEC_TTL_MS:
            return cached[1]
        info = self.mt5.symbol_info(symbol)
        if info is None:
            return None
        if not info.visible:
            self.mt5.symbol_select(symbol, True)
        spec = spec_from_mt5(info)
        self.specs[symbol] = (now, spec)
        return spec

    def _quote(self, symbol: str) -> Quote | None:
        tick = self.mt5.symbol_info_tick(symbol)
        return None if tick is None else Quote(bid=float(tick.bid), ask=float(tick.ask), time_msc=int(tick.time_msc))

    # ------------------------------------------------------------------ execution
    def _trade_log(self, action: Any, **kw: Any):
        return self.log.bind(master=action.master_name, master_ticket=action.master_ticket, **kw)

    def _save(self, key: tuple[str, int], fields: dict[str, Any], *, create: dict[str, Any] | None = None) -> dict[str, Any]:
        """Write a link (creating it if needed) and keep the in-memory copy in step."""
        master, ticket = key
        if key not in self.links and create is not None:
            doc, created = self.store.record_intent({"slave_name": self.rt.name, "master_name": master, "master_ticket": ticket, **create, **fields})
            self.links[key] = doc
            if created:  # one write on the copy path, not two
                return doc
        doc = self.store.update_trade(self.rt.name, master, ticket, fields)
        if doc is None:  # row vanished (operator removed it): recreate it from what we know
            doc, _ = self.store.record_intent({"slave_name": self.rt.name, "master_name": master, "master_ticket": ticket, **(create or {}), **fields})
        self.links[key] = doc
        return doc

    def _backing_off(self, action: Any) -> bool:
        """The planner re-issues a failed close or top-up every pass; space the attempts out."""
        until = self._backoff.get((type(action).__name__, action.master_name, action.master_ticket))
        return until is not None and utc_ms() < until[0]

    def _note_result(self, action: Any, ok: bool) -> None:
        key = (type(action).__name__, action.master_name, action.master_ticket)
        if ok:
            self._backoff.pop(key, None)
            return
        delay = min(self._backoff.get(key, (0, RETRY_BACKOFF_MS[0] // 2))[1] * 2, RETRY_BACKOFF_MS[1])
        self._backoff[key] = (utc_ms() + delay, delay)

    def execute(self, action: Any, views: dict[str, MasterView], removed_orders: set[int]) -> None:
        if self.cfg.dry_run and isinstance(action, (Close, ModifySLTP, ModifyPending, RemovePending)):
            self._dry_run_note(action)
            return
        repeated = isinstance(action, Close) or (isinstance(action, Open) and action.purpose not in INTENT_PURPOSES)
        if repeated and self._backing_off(action):
            return
        if isinstance(action, Open):
            self._open(action, views, removed_orders)
        elif isinstance(action, Close):
            self._close(action)
        elif isinstance(action, ModifySLTP):
            outcome = self.executor.modify_sltp(ticket=action.slave_ticket, symbol=action.symbol, sl=action.sl, tp=action.tp, magic=self.cfg.magic)
            self._report("modify_sltp", action, outcome, slave_ticket=action.slave_ticket, sl=action.sl, tp=action.tp)
        elif isinstance(action, PlacePending):
            self._place_pending(action)
        elif isinstance(action, ModifyPending):
            outcome = self.executor.modify_pending(ticket=action.slave_order_ticket, symbol=action.symbol, price=action.price, stoplimit=action.stoplimit, sl=action.sl, tp=action.tp)
            self._report("modify_pending", action, outcome, slave_ticket=action.slave_order_ticket, price=action.price)
        elif isinstance(action, RemovePending):
            outcome = self.executor.remove_pending(ticket=action.slave_order_ticket, symbol=action.symbol)
            if outcome.ok:
                removed_orders.add(action.slave_order_ticket)
            self._report("remove_pending", action, outcome, slave_ticket=action.slave_order_ticket, reason=action.reason)
        elif isinstance(action, RecordSkip):
            self._record_skip(action)
        elif isinstance(action, Adopt):
            self._save((action.master_name, action.master_ticket), {"status": OPEN, "kind": action.kind, "slave_ticket": action.slave_ticket, "slave_price": action.price}, create=self._intent_fields(action))
            self._trade_log(action, slave_ticket=action.slave_ticket).info("copy_adopted", volume=action.volume)
            self.rt.event("copy_adopted", master=action.master_name, master_ticket=action.master_ticket, slave_ticket=action.slave_ticket)
        elif isinstance(action, MarkClosed):
            self._save((action.master_name, action.master_ticket), {"status": CLOSED, "close_reason": action.reason, "close_time": iso_utc(utc_ms())})
            self.counts["closed"] += 1
            self._trade_log(action).info("link_closed", reason=action.reason)
            self.rt.event("link_closed", master=action.master_name, master_ticket=action.master_ticket, reason=action.reason)

    def _dry_run_note(self, action: Any) -> None:
        """Dry run: say once what would have been sent, send nothing."""
        key = (type(action).__name__, action.master_name, action.master_ticket)
        if key in self._dry_run_seen:
            return
        self._dry_run_seen.add(key)
        kind = f"dry_run_{type(action).__name__.lower()}"
        self._trade_log(action).info(kind, action=repr(action))
        self.rt.event(kind, master=action.master_name, master_ticket=action.master_ticket, action=repr(action))

    @staticmethod
    def _intent_fields(action: Any) -> dict[str, Any]:
        return {
            "kind": getattr(action, "kind", KIND_POSITION),
            "symbol": getattr(action, "symbol", ""),
            "master_symbol": getattr(action, "master_symbol", ""),
            "direction": getattr(action, "direction", getattr(action, "side", "")),
            "master_direction": getattr(action, "master_side", ""),
            "master_volume": getattr(action, "master_volume", 0.0),
            "tag": getattr(action, "comment", getattr(action, "tag", "")),
            # master_ticket is the master's position identifier (or its pending-order ticket,
            # which MT5 reuses as the identifier of the position the order opens)
            "master_position_id": action.master_ticket,
        }

    def _master_open_ms(self, views: dict[str, MasterView], action: Any) -> int:
        view = views.get(action.master_name)
        mpos = view.state.positions.get(action.master_ticket) if view else None
        return int(mpos.time_msc) if mpos is not None else 0

    def _open(self, action: Open, views: dict[str, MasterView], removed_orders: set[int]) -> None:
        key = (action.master_name, action.master_ticket)
        log = self._trade_log(action, symbol=action.symbol, side=action.side, volume=action.volume)
        if action.replaces_order and action.replaces_order not in removed_orders:
            log.info("open_deferred_until_pending_removed", order=action.replaces_order)
            return
        if action.purpose in INTENT_PURPOSES:
            existing = self.links.get(key)
            attempts = int(existing.get("attempts", 0)) + 1 if existing else 1
            intent = {**self._intent_fields(action), "status": PENDING, "attempts": attempts, "master_price": action.master_price, "slave_volume": action.volume}
            self._save(key, intent, create=intent)  # the intent is durable BEFORE order_send
        if self.cfg.dry_run:
            self._save(key, {"status": SKIPPED, "skip_reason": f"dry run: would {action.side} {action.volume:g} {action.symbol}"})
            log.info("dry_run_open")
            return
        if self.guardian is not None:
            refusal = self._risk_refusal(action)
            if refusal:  # recorded like any skip: SKIPPED with the reason, event copy_skipped
                self._after_open(action, Outcome(OUT_SKIPPED, reason=refusal), views, log)
                return
        spec = self.specs.get(action.symbol, (0, None))[1]
        point = spec.point if spec else 0.0

        def guard(q: Quote) -> str | None:
            if not point or action.master_price <= 0:
                return None
            pts = slippage_points(action.side, q, action.master_price, point)
            if pts > self.cfg.slippage_tolerance:
                return f"slippage {pts:.1f} points > tolerance {self.cfg.slippage_tolerance} at send time"
            return None

        outcome = self.executor.open_market(symbol=action.symbol, side=action.side, volume=action.volume, sl=action.sl, tp=action.tp, deviation=action.deviation, magic=action.magic, comment=action.comment, type_filling=action.type_filling, guard=guard, quote=self.quotes.get(action.symbol))
        self._after_open(action, outcome, views, log)

    def _risk_refusal(self, action: Open) -> str | None:
        """The guardian's pre-trade check, counting the new position's risk at its SL."""
        assert self.guardian is not None
        spec = self.specs.get(action.symbol, (0, None))[1]
        if spec is None:
            return None
        quote = self.quotes.get(action.symbol) or self._quote(action.symbol)
        entry = (quote.ask if action.side == "BUY" else quote.bid) if quote else action.master_price
        return self.guardian.pre_trade(action.symbol, action.side, action.volume, entry, action.sl, spec.tick_size, spec.tick_value)

    def _find_tagged(self, symbol: str, tag: str) -> Any | None:
        found = self.mt5.positions_get(symbol=symbol)
        for p in found or ():
            if p.comment.startswith(tag) or (self.margin_mode == "netting" and parse_tag(p.comment) is not None):
                return p
        if self.margin_mode == "netting" and found:
            return found[0]
        return None

    def _after_open(self, action: Open, outcome: Outcome, views: dict[str, MasterView], log: Any) -> None:
        key = (action.master_name, action.master_ticket)
        if action.purpose not in INTENT_PURPOSES:
            self._note_result(action, outcome.status == DONE)
        hub_ms = outcome.sent_ms - self.trigger_ts_ms if self.trigger_ts_ms and outcome.sent_ms else None
        if outcome.status == DONE:
            position = None
            if self.margin_mode == "hedging" and outcome.order:
                slave_ticket = outcome.order
            else:
                position = self._find_tagged(action.symbol, action.comment)
                slave_ticket = int(position.identifier) if position is not None else 0
            fields: dict[str, Any] = {"status": OPEN, "retcode": outcome.retcode, "attempts_sent": outcome.attempts}
            if action.purpose in INTENT_PURPOSES:
                master_open = self._master_open_ms(views, action)
                spec = self.specs.get(action.symbol, (0, None))[1]
                slip = abs(outcome.price - action.master_price) / spec.point if spec and spec.point and action.master_price else None
                fields.update({
                    "slave_ticket": slave_ticket, "slave_price": outcome.price, "slave_volume": outcome.volume or action.volume,
                    "open_time": iso_utc(outcome.filled_ms), "filled_ms": outcome.filled_ms, "sent_ms": outcome.sent_ms, "slippage_points": round(slip, 1) if slip is not None else None,
                    "latency_ms": _plausible_latency(outcome.filled_ms, master_open), "hub_ms": hub_ms,
                })
            self._save(key, fields)
            self.counts["copied"] += 1
            self.last_copy_ms = outcome.filled_ms
            log.bind(slave_ticket=slave_ticket).info("copy_opened", price=outcome.price, retcode=outcome.retcode, attempts=outcome.attempts, purpose=action.purpose, latency_ms=fields.get("latency_ms"), hub_ms=hub_ms)
            self.rt.event("copy_opened", master=action.master_name, master_ticket=action.master_ticket, slave_ticket=slave_ticket, symbol=action.symbol, side=action.side, volume=action.volume, price=outcome.price, retcode=outcome.retcode, latency_ms=fields.get("latency_ms"), purpose=action.purpose)
        elif outcome.status == UNKNOWN:
            position = self._find_tagged(action.symbol, action.comment)
            if position is not None and action.purpose in INTENT_PURPOSES:
                self._save(key, {"status": OPEN, "slave_ticket": int(position.identifier), "slave_price": float(position.price_open), "open_time": iso_utc(utc_ms())})
                log.bind(slave_ticket=int(position.identifier)).warning("copy_found_after_unknown_result", reason=outcome.reason)
            else:
                log.warning("copy_outcome_unknown", reason=outcome.reason)
            self.rt.event("copy_outcome_unknown", level="warning", master=action.master_name, master_ticket=action.master_ticket, reason=outcome.reason, found=position is not None)
        elif outcome.status == OUT_SKIPPED:
            if action.purpose in INTENT_PURPOSES:
                self._save(key, {"status": SKIPPED, "skip_reason": outcome.reason})
            self.counts["skipped"] += 1
            log.warning("copy_skipped", reason=outcome.reason)
            self.rt.event("copy_skipped", level="warning", master=action.master_name, master_ticket=action.master_ticket, reason=outcome.reason)
        else:
            if action.purpose in INTENT_PURPOSES:
                self._save(key, {"status": FAILED, "retcode": outcome.retcode, "skip_reason": outcome.reason})
            self.counts["failed"] += 1
            log.error("copy_failed", retcode=outcome.retcode, reason=outcome.reason, attempts=outcome.attempts)
            self.rt.event("copy_failed", level="error", master=action.master_name, master_ticket=action.master_ticket, retcode=outcome.retcode, reason=outcome.reason)

    def _close(self, action: Close) -> None:
        outcome = self.executor.close_position(ticket=action.slave_ticket, symbol=action.symbol, position_side=action.side_to_close, volume=action.volume, deviation=action.deviation, magic=action.magic, comment=action.comment, type_filling=action.type_filling)
        key = (action.master_name, action.master_ticket)
        log = self._trade_log(action, slave_ticket=action.slave_ticket, symbol=action.symbol, volume=action.volume)
        self._note_result(action, outcome.ok)
        if outcome.ok:
            if not action.partial and key in self.links and self._all_closed(action):
                self._save(key, {"status": CLOSED, "close_reason": action.reason, "close_time": iso_utc(utc_ms()), "close_price": outcome.price})
                self.counts["closed"] += 1
            log.info("copy_closed" if not action.partial else "copy_partially_closed", reason=action.reason, price=outcome.price, retcode=outcome.retcode)
            self.rt.event("copy_closed" if not action.partial else "copy_partially_closed", master=action.master_name, master_ticket=action.master_ticket, slave_ticket=action.slave_ticket, volume=action.volume, reason=action.reason, price=outcome.price)
        else:
            log.error("close_failed", retcode=outcome.retcode, reason=outcome.reason)
            self.rt.event("close_failed", level="error", master=action.master_name, master_ticket=action.master_ticket, slave_ticket=action.slave_ticket, retcode=outcome.retcode, reason=outcome.reason)

    def _all_closed(self, action: Close) -> bool:
        """A hedging link can own several positions (adds); it is closed when none is left."""
        remaining = self.mt5.positions_get(symbol=action.symbol)
        if remaining is None:
            return False
        return not any(p.comment.startswith(action.comment) and int(p.ticket) != action.slave_ticket for p in remaining) if action.comment else True

    def _place_pending(self, action: PlacePending) -> None:
        key = (action.master_name, action.master_ticket)
        existing = self.links.get(key)
        intent = {**self._intent_fields(action), "kind": KIND_ORDER, "direction": "BUY" if action.order_type.startswith("BUY") else "SELL", "status": PENDING, "attempts": int(existing.get("attempts", 0)) + 1 if existing else 1, "slave_volume": action.volume}
        self._save(key, intent, create=intent)
        log = self._trade_log(action, symbol=action.symbol, order_type=action.order_type)
        if self.cfg.dry_run:
            self._save(key, {"status": SKIPPED, "skip_reason": f"dry run: would place {action.order_type} {action.volume:g} {action.symbol}"})
            return
        outcome = self.executor.place_pending(symbol=action.symbol, order_type=PENDING_TYPE_CODES[action.order_type], volume=action.volume, price=action.price, stoplimit=action.stoplimit, sl=action.sl, tp=action.tp, magic=action.magic, comment=action.comment, type_filling=action.type_filling)
        if outcome.status == DONE:
            self._save(key, {"status": OPEN, "slave_ticket": outcome.order, "slave_price": action.price})
            log.bind(slave_ticket=outcome.order).info("pending_copied", price=action.price)
            self.rt.event("pending_copied", master=action.master_name, master_ticket=action.master_ticket, slave_ticket=outcome.order, order_type=action.order_type, price=action.price)
        elif outcome.status == UNKNOWN:
            log.warning("pending_outcome_unknown", reason=outcome.reason)
        else:
            self._save(key, {"status": FAILED if outcome.status == OUT_FAILED else SKIPPED, "retcode": outcome.retcode, "skip_reason": outcome.reason})
            log.error("pending_failed", retcode=outcome.retcode, reason=outcome.reason)
            self.rt.event("pending_failed", level="error", master=action.master_name, master_ticket=action.master_ticket, retcode=outcome.retcode, reason=outcome.reason)

    def _record_skip(self, action: RecordSkip) -> None:
        key = (action.master_name, action.master_ticket)
        fields = {"status": action.status, "skip_reason": action.reason}
        create = {"kind": action.kind, "symbol": action.symbol, "master_symbol": action.master_symbol, "direction": action.direction, "master_volume": action.master_volume, **fields}
        self._save(key, fields, create=create)
        self.counts["skipped" if action.status == SKIPPED else "failed"] += 1
        self._trade_log(action).info("copy_skipped" if action.status == SKIPPED else "copy_failed", reason=action.reason)
        self.rt.event("copy_skipped" if action.status == SKIPPED else "copy_failed", level="warning", master=action.master_name, master_ticket=action.master_ticket, reason=action.reason, master_symbol=action.master_symbol)

    def _report(self, kind: str, action: Any, outcome: Outcome, **data: Any) -> None:
        log = self._trade_log(action, slave_ticket=data.get("slave_ticket"))
        if outcome.ok:
            log.info(kind, retcode=outcome.retcode)
            self.rt.event(kind, master=action.master_name, master_ticket=action.master_ticket, retcode=outcome.retcode, **data)
        else:
            log.error(f"{kind}_failed", retcode=outcome.retcode, reason=outcome.reason)
            self.rt.event(f"{kind}_failed", level="error", master=action.master_name, master_ticket=action.master_ticket, retcode=outcome.retcode, reason=outcome.reason, **data)

    # ------------------------------------------------------------------ operator
    def flatten(self, *, reason: str) -> int:
        """Close every copied position (tagged ones) and remove copied pending orders."""
        positions = self.mt5.positions_get()
        orders = self.mt5.orders_get()
        if positions is None or orders is None:
            self.log.error("flatten_failed_terminal_error", error=str(self.mt5.last_error()))
            return 0
        closed = 0
        for p in positions:
            if parse_tag(p.comment) is None and not self._linked(int(p.identifier)):
                continue  # a manual trade: not ours to close
            info = self._spec(p.symbol, utc_ms())
            filling = choose_filling(info.filling_mode, 2) if info else 1
            side = "BUY" if int(p.type) == 0 else "SELL"
            outcome = self.executor.close_position(ticket=int(p.ticket), symbol=p.symbol, position_side=side, volume=float(p.volume), deviation=self.cfg.slippage_tolerance, magic=self.cfg.magic, comment="", type_filling=filling)
            closed += outcome.ok
            self.log.bind(slave_ticket=int(p.ticket)).info("flatten_close", retcode=outcome.retcode, ok=outcome.ok)
        for o in orders:
            if parse_tag(o.comment) is not None:
                self.executor.remove_pending(ticket=int(o.ticket), symbol=o.symbol)
        for key, rec in list(self.links.items()):
            if rec.get("status") in (PENDING, OPEN):
                self._save(key, {"status": CLOSED, "close_reason": reason, "close_time": iso_utc(utc_ms())})
        self.rt.event("flattened", level="warning", closed=closed, reason=reason)
        return closed

    def _linked(self, identifier: int) -> bool:
        return any(int(r.get("slave_ticket") or 0) == identifier and r.get("status") in (PENDING, OPEN) for r in self.links.values())

    # ------------------------------------------------------------------ status
    def status_info(self) -> dict[str, Any]:
        return {
            "links_open": sum(1 for r in self.links.values() if r.get("status") == OPEN),
            "last_copy_ms": self.last_copy_ms or None,
            "paused": self.paused,
            "masters": {n: m.fresh(utc_ms()) for n, m in self.mirrors.items()},
            "margin_mode": self.margin_mode,
            "risk": self.guardian.status_info() if self.guardian is not None else None,
            **self.counts,
        }


def main(rt: NodeRuntime) -> None:
    cfg = rt.load_account()
    if rt.args.dry_run:
        cfg = dataclasses.replace(cfg, dry_run=True)
    rt.subscribe([f"ctl.{rt.name}", "ctl.all"])
    mt5 = rt.connect_terminal(cfg)
    if mt5 is None:
        return
    loop = SlaveLoop(rt, mt5, cfg, stale_after_ms=settings.STALE_AFTER_MS, max_attempts=settings.ORDER_MAX_ATTEMPTS)
    loop.start()
    guardian, alerts = rt.start_guardian(cfg, mt5, loop.executor)
    loop.guardian = guardian
    rt.state = "RUNNING"
    subscriber = rt.subscriber
    assert subscriber is not None
    reconcile_s = settings.SLAVE_RECONCILE_INTERVAL_MS / 1000
    reload_s = settings.CONFIG_RELOAD_INTERVAL_MS / 1000
    heartbeat_s = settings.HEARTBEAT_INTERVAL_MS / 1000
    now = time.monotonic()
    next_reconcile, next_reload, next_heartbeat = now, now + reload_s, now
    failures = 0
    while not rt.stopping:
        guardian.tick(utc_ms())
        loop.ask_for_snapshots(utc_ms())
        now = time.monotonic()
        if now >= next_heartbeat:
            rt.publish_status(loop.metrics, loop.status_info())
            next_heartbeat = now + heartbeat_s
        if now >= next_reload:
            loop.reload()
            next_reload = now + reload_s
        due = now >= next_reconcile
        wait_ms = int((min(next_reconcile, next_heartbeat, next_reload) - now) * 1000)
        if loop.syncing:  # re-ask for the snapshot we are waiting for
            wait_ms = min(wait_ms, 250)
        msg = subscriber.recv(timeout_ms=0 if due else max(1, min(wait_ms, guardian.ms_until_due(utc_ms()))))
        wants = False
        while msg is not None:  # drain what is queued so one pass sees the latest state
            wants = loop.on_message(msg) or wants
            msg = subscriber.recv(timeout_ms=0)
        if loop.sync_changed():  # a master became trustworthy (or stopped being): say so now
            next_heartbeat = now
        if (due or wants) and not rt.stopping:
            loop.reconcile(full=due)
            next_reconcile = time.monotonic() + reconcile_s
            if rt.last_error is not None:
                failures += 1
                if failures % 10 == 0:  # the terminal keeps failing: reconnect
                    try:
                        mt5.shutdown()
                    except Exception:
                        pass
                    new = rt.connect_terminal(cfg)
                    if new is None:
                        return
                    mt5 = loop.mt5 = loop.executor.mt5 = new
            else:
                failures = 0
    rt.publish_status(loop.metrics, loop.status_info())
    guardian.close(utc_ms())
    alerts.close(timeout=2)


if __name__ == "__main__":
    run_node("slave", main)
