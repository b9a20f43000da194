"""Slave node: mirror the masters this account follows and make the terminal match.

The loop is level-triggered (invariant 4): on every master change and on a timer it
reads the slave's own positions, asks the pure planner (``copier.planner``) what to do,
and hands those actions to its ``ActionRunner`` (``nodes/slave_actions.py``). Every open
is written to the store as a PENDING intent before ``order_send`` and carries the master
ticket in its comment, so a crash, a lost reply or a restart never produces a second copy
(invariant 2).

Run: ``python nodes/slave.py --name Apex_Slave_01``.
"""
from __future__ import annotations

import dataclasses
import sys
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from config import settings  # noqa: E402
from copier.accounts import AccountConfigError, is_master_doc, validate_account  # noqa: E402
from copier.links import KIND_ORDER, OPEN, PENDING, Link  # noqa: E402
from copier.models import Position, Quote, SymbolSpec  # noqa: E402
from copier.order_fates import NO_RECORD, OrderFate, fate_from_record  # noqa: E402
from copier.orders import RetryPolicy  # noqa: E402
from copier.pass_scope import links_to_let_go, only_new_opens  # noqa: E402
from copier.planner import MasterView, PlanContext, plan  # noqa: E402
from copier.reasons import UNKNOWN, Closure, classify_closure  # noqa: E402
from copier.risk import RiskConfigError  # noqa: E402
from copier.symbols import translate_symbol  # noqa: E402
from db import StoreUnavailable  # noqa: E402
from messaging.clone import Mirror, SnapshotRequester  # noqa: E402
from messaging.schema import Control, Delta, Snapshot  # noqa: E402
from monitoring.guardian import Guardian  # noqa: E402
from nodes.bus_guard import BusGuard, limits_from_settings  # noqa: E402
from nodes.execution import Executor  # noqa: E402
from nodes.identity import WrongAccount  # noqa: E402
from nodes.lease import LeaseLost  # noqa: E402
from nodes.link_table import LinkTable  # noqa: E402
from nodes.rates import RateBook, symbol_currencies  # noqa: E402
from nodes.runtime import EXIT_OK, EXIT_RESTART, NodeRuntime, bus_counters, run_node, utc_ms  # noqa: E402
from nodes.slave_actions import ActionRunner, PassData  # noqa: E402
from nodes.slave_held import sync_held  # noqa: E402
from terminals.convert import (  # noqa: E402
    deal_from_mt5,
    estimate_server_offset_ms,
    metrics_from_mt5,
    order_from_mt5,
    position_from_mt5,
    spec_from_mt5,
)

KILL_SWITCH_FILE = "KILL_SWITCH"  # in the data dir: no new opens while it exists
SPEC_TTL_MS = 60_000
METRICS_TTL_MS = 500  # balance/equity for sizing: fresh enough, and not read on every change
# A pass triggered by a master change (the copy path) reads account_info() only when the
# metrics are older than this: the timer's passes (every 1 s) keep them fresher off the hot
# path, and a stream of changes (which postpones the timer) refreshes them this often.
METRICS_MAX_AGE_MS = 2_000
# A change pass reads a fresh tick only for the symbols the change touches; the others reuse
# the last pass's quote while it is younger than this (for SL/TP sync and sizing only: an
# order is always sent with a quote read in its own pass, see fresh_quote()).
QUOTE_REUSE_MS = 1_000
# A change pass that only opens copies (a new master position on a hedging account) plans on
# the positions read by an earlier pass or refresh (refresh_positions) instead of reading
# them again, while that read is younger than this and no order of ours went out since it:
# the copy's one terminal call before order_send is then its fresh tick (issue 14).
POSITIONS_REUSE_MS = 1_500
# After an order of ours the loop reads the positions again (``refresh_positions``) once the
# bus was quiet this long: right after the order the other followers of the same master
# change are still copying it, and the read's terminal call and conversion would take the
# CPU (and, on the simulator, the one queue) they need. A change arriving meanwhile makes
# its pass read the positions itself.
POSITIONS_REFRESH_DELAY_MS = 20
# A finished link (CLOSED, SKIPPED, FAILED) stays in the loop's memory while its master
# ticket is visible and for this long after its last write; then the timer's pass lets it
# go (the store keeps it), so a pass's work does not grow with the account's history.
FINISHED_LINK_KEEP_MS = 3_600_000
# A vanished position whose deals show no closing deal yet is read again on the next passes
# (the history may trail the position list); after this long it is taken as it is (UNKNOWN).
HISTORY_GRACE_MS = 3_000


def follow_flag(slave: str, master: str) -> str:
    return f"follow:{slave}:{master}"


MAX_OFFSET_MS = 14 * 3600_000  # a stale weekend tick must not move the clock by days


class SlaveLoop:
    """One slave's state and reconcile pass; ``main`` drives it, tests can too.

    The loop reads (bus, store, terminal) and plans; the ``ActionRunner`` it holds
    (``self.actions``) carries the actions out and records them."""

    def __init__(self, rt: NodeRuntime, mt5: Any, cfg: Any, *, stale_after_ms: int, max_attempts: int) -> None:
        self.rt = rt
        self.store = rt.store
        self.mt5 = mt5
        self.cfg = cfg
        self.log = rt.log
        self.stale_after_ms = stale_after_ms
        self.max_attempts = max_attempts
        self.fence = getattr(rt, "fence", None) or (lambda: None)  # raises LeaseLost when we may not trade
        self.executor = Executor(mt5, RetryPolicy(max_attempts=max_attempts), fence=self.fence)
        # a request sent before the bus connection is up is lost (slow joiner): ask again soon
        self.requester = SnapshotRequester(rt.publisher, rt.name, min_interval_ms=250)
        self.mirrors: dict[str, Mirror] = {}
        self.guard = BusGuard(self, limits_from_settings(settings), self.log)  # issue 15: no message believed blindly
        self.links = LinkTable()  # the runner writes it, the planner reads it; .live: PENDING and OPEN ones
        self._link_cache: dict[tuple[str, int], tuple[dict[str, Any], Link]] = {}
        self.followed: set[str] = set()
        self.specs: dict[str, tuple[int, SymbolSpec]] = {}
        self.available: set[str] | None = None
        self.margin_mode = "hedging"
        self.fifo_close = False  # ACCOUNT_FIFO_CLOSE: closes go oldest first (copier/planner_fifo.py)
        self.server_offset_ms: int | None = None  # server clock - UTC, from the freshest quote
        self.paused = False  # an operator's pause (the paused flag, a pause command) or the kill switch
        self.kill_switch = False
        self.metrics = None
        self._metrics_ms = 0
        self.quotes: dict[str, Quote] = {}
        self._quote_ms: dict[str, int] = {}  # when each quote was read (UTC ms, local clock)
        self._fresh: set[str] = set()  # symbols whose quote was read in the current pass
        self._seen: dict[str, tuple[dict, dict]] = {}  # per master: positions/orders the last pass planned on
        # the last positions_get: (positions, read at UTC ms, executor.sends before the read)
        self._positions_read: tuple[list[Position], int, int] | None = None
        self.rates = RateBook({})  # deposit-currency conversions for ratio sizing (invariant 7)
        self.trigger_ts_ms = 0  # when the master saw the change that triggered this pass
        self.guardian: Guardian | None = None
        self.timers = _Timers()
        self.actions = ActionRunner(name=rt.name, store=self.store, terminal=mt5, executor=self.executor, links=self.links,
                                    log=self.log, event=rt.event, fence=self.fence)
        self._synced: frozenset[str] = frozenset()
        self.closures: dict[int, Closure] = {}  # vanished slave position identifier -> why (reasons from history)
        self._unknown_since: dict[int, int] = {}
        self.order_fates: dict[int, OrderFate] = {}  # netting: vanished pending copy ticket -> what became of it
        self._fate_unknown_since: dict[int, int] = {}
        args = getattr(rt, "args", None)  # tests drive the loop with a runtime that has none
        self.kill_switch_file = Path(getattr(args, "data_dir", None) or settings.DATA_DIR) / KILL_SWITCH_FILE

    # ------------------------------------------------------------------ setup
    def start(self) -> None:
        info = self.mt5.account_info()
        if info is not None:
            self.margin_mode = "hedging" if int(info.margin_mode) == 2 else "netting"
            self.fifo_close = self._fifo_close(info)
            self.metrics = metrics_from_mt5(info)
        symbols = self.mt5.symbols_get()
        self.available = {s.name for s in symbols} if symbols is not None else None
        now = utc_ms()
        for info in symbols or ():  # specs of the Market Watch known before any copy needs them
            if getattr(info, "visible", False):
                self.specs[info.name] = (now, spec_from_mt5(info))
        self.rates = RateBook(symbol_currencies(symbols))
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
        self.kill_switch = bool(self.store.get_flag("kill_switch", False)) or self.kill_switch_file.exists()
        paused = bool(self.store.get_flag(f"paused:{self.rt.name}", False)) or self.kill_switch
        if paused != self.paused:
            self.log.warning("paused" if paused else "resumed")
        self.paused = paused

    def pause_state(self) -> tuple[str | None, str]:
        """Who stops new copies now, and the reason their skip records give.

        ``("risk", "risk: paused by the guardian (daily_loss 87.8% of 500.00, pause at 85%)")``
        while the guardian blocks opens (paused, locked, or blind); ``("kill_switch", "")`` /
        ``("operator", "")`` for an operator's pause (the planner's own wording, "account
        paused when the master opened it"); ``(None, "")`` when copies open. The guardian
        comes first: its reason has the numbers, and it holds even after a resume."""
        g = self.guardian
        if g is not None and g.blocks_opens:
            return "risk", g.block_reason or "risk: opens blocked by the guardian"
        if self.kill_switch or self.kill_switch_file.exists():
            return "kill_switch", ""
        if self.paused:
            return "operator", ""
        return None, ""

    def refresh_masters(self) -> None:
        """Subscribe to every enabled master this account follows; drop the others."""
        masters = {d["name"] for d in self.store.list_accounts() if is_master_doc(d) and d.get("enabled", True)}
        wanted = {m for m in masters if self.cfg.follows_master(m)}
        sub = self.rt.subscriber
        assert sub is not None
        for name in wanted - set(self.mirrors):
            self.mirrors[name] = Mirror(name, stale_after_ms=self.stale_after_ms, check=self.guard.check, on_conflict=self.guard.conflict)
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
        except AccountConfigError as exc:  # keep the old settings; status, event and alert say why (once)
            _config_refused(self.rt, str(exc))
            return
        _config_refused(self.rt, None)
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
                    _config_refused(self.rt, str(exc))
            self.log.info("config_reloaded", fields=changed)
            self.rt.event("config_reloaded", fields=changed)
        self.refresh_flags()
        self.refresh_masters()
        self.flatten_if_requested()

    def use_terminal(self, mt5: Any) -> None:
        """A reconnected terminal: the loop, the Executor and the runner all use it from now on."""
        self.mt5 = self.executor.mt5 = self.actions.terminal = mt5
        self._positions_read = None

    def flatten(self, *, reason: str) -> int:
        """Close every copied position and remove copied pending orders (``ActionRunner.flatten``)."""
        return self.actions.flatten(self.cfg, lambda symbol: self._spec(symbol, utc_ms()), reason=reason)

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
        self.fence()
        now = utc_ms()
        views = {
            name: MasterView(state=mirror.state(now), metrics=mirror.metrics, first_sync=name not in self.followed)
            for name, mirror in self.mirrors.items()
        }
        touched, focus = (None, None) if full else self._touched(views)
        in_play = full or self._orders_in_play(views)
        reused = None if in_play else self._reusable_positions(views, focus, now)
        # orders FIRST, then positions (consistent-snapshot rule, docs/copier.md): a pending
        # copy that fills between the two reads is seen as its position, never as "removed"
        orders = self.mt5.orders_get() if in_play else ()
        if reused is not None:
            slave_positions = reused
        else:
            sends = self.executor.sends
            positions = self.mt5.positions_get() if orders is not None else None
            if positions is None or orders is None:
                code, text = self.mt5.last_error()
                if self.rt.last_error is None:
                    self.log.error("terminal_error", code=code, error=text)
                self.rt.set_error(f"terminal error ({code}, {text})")
                return []
            if self.margin_mode == "netting" and orders:
                # a pending copy that fills between the two reads is in the position's volume and
                # still among the orders (netting: no tagged position of its own shows it): read again
                again = self.mt5.orders_get()
                if again is not None and {int(o.ticket) for o in orders} - {int(o.ticket) for o in again}:
                    self.log.debug("orders_changed_during_read", note="planning on the next pass")
                    return []
            slave_positions = [position_from_mt5(p) for p in positions]
            self._positions_read = (slave_positions, now, sends)
        closures = self._closures(slave_positions, now)
        if closures is None:  # a failed history read is a terminal error: decide nothing this pass
            code, text = self.mt5.last_error()
            if self.rt.last_error is None:
                self.log.error("terminal_error", code=code, error=text, call="history_deals_get")
            self.rt.set_error(f"terminal error reading the deal history ({code}, {text})")
            return []
        slave_orders = [o for o in (order_from_mt5(r) for r in orders) if o is not None]
        order_fates = self._order_fates(slave_orders, slave_positions, now) if self.margin_mode == "netting" else {}
        if order_fates is None:  # a failed history read is a terminal error: decide nothing this pass
            code, text = self.mt5.last_error()
            if self.rt.last_error is None:
                self.log.error("terminal_error", code=code, error=text, call="history_orders_get")
            self.rt.set_error(f"terminal error reading the order history ({code}, {text})")
            return []
        self.rt.set_error(None)
        symbols = self._symbols_in_play(views, slave_positions, slave_orders)
        specs = {s: spec for s in symbols if (spec := self._spec(s, now, refresh=full)) is not None}
        quotes = self._quotes(specs, touched, now)
        self.quotes = quotes
        self._learn_server_offset(quotes, now)
        metrics_age = now - self._metrics_ms
        if self.metrics is None or metrics_age >= (METRICS_TTL_MS if full else METRICS_MAX_AGE_MS):  # off the hot path
            info = self.mt5.account_info()
            if info is not None:
                verify = getattr(self.rt, "verify_account", None)
                if verify is not None:  # the terminal still trades our account (raises WrongAccount)
                    verify(self.mt5, self.cfg, info)
                self.metrics = metrics_from_mt5(info)
                self.fifo_close = self._fifo_close(info)
                self._metrics_ms = now
        paused_by, paused_reason = self.pause_state()
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
            paused=paused_by is not None,
            paused_reason=paused_reason,
            max_attempts=self.max_attempts,
            available_symbols=self.available,
            slave_fifo_close=self.fifo_close,
            slave_server_offset_ms=self.server_offset_ms,
            now_ms=now,
            closures=closures,
            order_fates=order_fates,
            focus_links=focus,
            conversions=self.rates.for_masters(self.mt5, self.cfg.sizing.mode, (v.metrics for v in views.values() if v.fresh), self.metrics, now),
        )
        actions = plan(ctx)
        self._seen = {name: (dict(v.state.positions), dict(v.state.orders)) for name, v in views.items() if v.fresh}
        data = PassData(cfg=self.cfg, views=views, specs=specs, quotes=quotes, fresh=self._fresh, metrics=self.metrics,
                        margin_mode=self.margin_mode, guardian=self.guardian, trigger_ts_ms=self.trigger_ts_ms,
                        positions=list(slave_positions))
        for action in actions:
            try:
                self.actions.execute(action, data)
            except StoreUnavailable as exc:  # never trade without the record: stop this pass
                self.log.error("store_unavailable_pass_aborted", error=str(exc))
                break
        else:
            if full:  # the timer's pass (off the copy path): what each copy holds now, on its link
                sync_held(self.actions, ctx, actions, specs)
                self._prune_finished(views, now)
        for name, view in views.items():
            if view.first_sync and view.fresh:
                self._record_follow(name, now)
        return actions

    def _reusable_positions(self, views: dict[str, MasterView], focus: frozenset[tuple[str, int]] | None,
                            now: int) -> list[Position] | None:
        """The positions of the last read, when a change pass may plan on them instead of
        reading again (else None): a hedging account (netting: every copy shares the one
        position per symbol), a read younger than POSITIONS_REUSE_MS with no ``order_send`` of
        ours since, and a change that only opens copies (``copier.pass_scope.only_new_opens``).
        What can differ from a fresh read is only what no order of ours did (an SL, a
        stop-out, a hand trade) in the last POSITIONS_REUSE_MS; the timer's pass reads again
        every second."""
        read = self._positions_read
        if read is None or self.margin_mode != "hedging":
            return None
        positions, read_ms, sends = read
        if sends != self.executor.sends or not 0 <= now - read_ms < POSITIONS_REUSE_MS:
            return None
        return positions if only_new_opens(focus, views, self.links, self._seen) else None

    def refresh_pending(self) -> bool:
        """True when ``refresh_positions`` would read: a hedging account whose last read
        was taken before an order of ours went out."""
        read = self._positions_read
        return self.margin_mode == "hedging" and read is not None and read[2] != self.executor.sends

    def refresh_positions(self) -> None:
        """Off the copy path (the loop calls it once the bus was quiet for
        POSITIONS_REFRESH_DELAY_MS after our orders): read the positions again, so that the
        next open plans on a read taken after them (``_reusable_positions``). Hedging
        accounts only; one ``positions_get``; a terminal error leaves the next pass to read
        for itself."""
        if not self.refresh_pending():
            return
        sends = self.executor.sends
        positions = self.mt5.positions_get()
        if positions is not None:
            self._positions_read = ([position_from_mt5(p) for p in positions], utc_ms(), sends)

    def _learn_server_offset(self, quotes: dict[str, Quote], now: int) -> None:
        """This broker's server clock minus UTC, from the freshest quote (as the master does,
        terminals/convert.estimate_server_offset_ms): pending-order copies expire by it."""
        fresh = max((q.time_msc for q in quotes.values()), default=0)
        if not fresh:
            return
        offset = estimate_server_offset_ms(fresh, now)
        if abs(offset) <= MAX_OFFSET_MS and offset != self.server_offset_ms:
            self.log.info("server_offset", offset_ms=offset, previous=self.server_offset_ms)
            self.server_offset_ms = offset

    def _fifo_close(self, info: Any) -> bool:
        """``account_info().fifo_close`` (MQL5 ACCOUNT_FIFO_CLOSE; always False on netting)."""
        fifo = bool(getattr(info, "fifo_close", False)) and self.margin_mode == "hedging"
        if fifo != self.fifo_close:
            self.log.info("fifo_close_account" if fifo else "fifo_close_off", note="closes go oldest position first")
        return fifo

    def _closures(self, positions: list, now: int) -> dict[int, Closure] | None:
        """Reasons from history: why each OPEN link's slave position vanished.

        Reads ``history_deals_get(position=identifier)`` once per vanished position (only
        when one vanished: a link's ``slave_ticket`` no longer among the positions), keeps
        the answer while a live link needs it. None when a read fails (terminal error).
        """
        present = {p.identifier for p in positions}
        wanted = {
            int(r.get("slave_ticket") or 0)
            for r in self.links.live.values()
            if r.get("status") == OPEN and r.get("kind", "position") != KIND_ORDER
        } - {0} - present
        for ident in sorted(wanted - self.closures.keys()):
            deals = self.mt5.history_deals_get(position=ident)
            if deals is None:
                return None
            g = self.guardian  # its closes are recorded as the guardian's (cause "risk"), never as by hand
            closure = classify_closure([deal_from_mt5(d) for d in deals], position_id=ident, magic=self.cfg.magic,
                                       risk_notes=g.risk_close_notes if g is not None else None,
                                       risk_context=g.risk_context if g is not None else "")
            if closure.cause == UNKNOWN and now - self._unknown_since.setdefault(ident, now) < HISTORY_GRACE_MS:
                continue  # no closing deal yet: the planner waits, we read again next pass
            self._unknown_since.pop(ident, None)
            self.closures[ident] = closure
            self.log.bind(slave_ticket=ident).info("slave_position_gone", cause=closure.cause, deal=closure.deal,
                                                   deal_reason=closure.deal_reason, magic=closure.magic)
        for ident in [i for i in self.closures if i not in wanted]:
            del self.closures[ident]
        for ident in [i for i in self._unknown_since if i not in wanted]:
            del self._unknown_since[ident]
        return {i: c for i, c in self.closures.items() if i in wanted}

    def _order_fates(self, orders: list, positions: list, now: int) -> dict[int, OrderFate] | None:
        """Netting: what became of each OPEN order link's copy that is gone from the orders
        and opened no position of its own (it may have filled into the symbol's position).

        Reads ``history_orders_get(ticket=)`` once per vanished copy and keeps the answer
        while the link needs it. No record yet: read again next pass (the planner holds the
        symbol), after ``HISTORY_GRACE_MS`` taken as ``NO_RECORD``. None: a read failed.
        """
        present = {o.ticket for o in orders} | {p.identifier for p in positions}
        wanted = {
            int(r.get("slave_ticket") or 0)
            for r in self.links.live.values()
            if r.get("status") == OPEN and r.get("kind") == KIND_ORDER
        } - {0} - present
        for ticket in sorted(wanted - self.order_fates.keys()):
            rows = self.mt5.history_orders_get(ticket=ticket)
            if rows is None:
                return None
            if rows:
                fate = fate_from_record(ticket, rows[0])
            elif now - self._fate_unknown_since.setdefault(ticket, now) < HISTORY_GRACE_MS:
                continue
            else:
                fate = OrderFate(ticket, NO_RECORD)
            self._fate_unknown_since.pop(ticket, None)
            self.order_fates[ticket] = fate
            self.log.bind(slave_ticket=ticket).info("slave_order_gone", state=fate.state, filled=fate.filled,
                                                    position=fate.position_id)
        for ticket in [t for t in self.order_fates if t not in wanted]:
            del self.order_fates[ticket]
        for ticket in [t for t in self._fate_unknown_since if t not in wanted]:
            del self._fate_unknown_since[ticket]
        return {t: f for t, f in self.order_fates.items() if t in wanted}

    def _orders_in_play(self, views: dict[str, MasterView]) -> bool:
        return any(v.fresh and v.state.orders for v in views.values()) or any(
            r.get("kind") == KIND_ORDER for r in self.links.live.values()
        )

    def _record_follow(self, master: str, now: int) -> None:
        try:
            self.store.set_flag(follow_flag(self.rt.name, master), {"since_ms": now})
            self.followed.add(master)
            self.rt.event("follow_started", master=master)
        except StoreUnavailable as exc:
            self.log.warning("follow_not_recorded", master=master, error=str(exc))

    def _prune_finished(self, views: dict[str, MasterView], now: int) -> int:
        """Let go of finished links whose master ticket no master shows and whose last write
        is older than FINISHED_LINK_KEEP_MS (the store keeps them; a copy of such a ticket
        is refused by ``ActionRunner._new_intent``). Only when every master's mirror is
        fresh: a stale one cannot say what is visible. Returns how many went."""
        old = links_to_let_go(self.links, views, now, FINISHED_LINK_KEEP_MS)
        for key in old:
            del self.links[key]
            self._link_cache.pop(key, None)
        return len(old)

    def _relevant_links(self, views: dict[str, MasterView]) -> list[Link]:
        """Live links, plus finished ones whose master ticket is still visible (never recopy)."""
        visible = {(n, t) for n, v in views.items() for t in (*v.state.positions, *v.state.orders)}
        links = self.links
        return [self._link(k, links[k]) for k in links.in_order([*links.live, *visible])]

    def _link(self, key: tuple[str, int], rec: dict[str, Any]) -> Link:
        """``Link.from_record(rec)``, built once per record: every write replaces the record
        (``_save`` stores the store's fresh dict), so the same object means the same link."""
        hit = self._link_cache.get(key)
        if hit is not None and hit[0] is rec:
            return hit[1]
        link = Link.from_record(rec)
        self._link_cache[key] = (rec, link)
        return link

    def _symbols_in_play(self, views: dict[str, MasterView], positions: list, orders: list) -> set[str]:
        out = {p.symbol for p in positions} | {o.symbol for o in orders}
        for view in views.values():
            if not view.fresh:
                continue
            for item in (*view.state.positions.values(), *view.state.orders.values()):
                sym = translate_symbol(item.symbol, self.cfg, self.available)
                if isinstance(sym, str):
                    out.add(sym)
        out |= {r["symbol"] for r in self.links.live.values() if r.get("symbol")}
        return out

    def _spec(self, symbol: str, now: int, *, refresh: bool = True) -> SymbolSpec | None:
        """The symbol's spec, read at most every SPEC_TTL_MS; ``refresh=False`` (a change
        pass, the copy path) uses a known spec however old and leaves the re-read to the
        timer's pass."""
        cached = self.specs.get(symbol)
        if cached is not None and (now - cached[0] < SPEC_TTL_MS or not refresh):
            return cached[1]
        info = self.mt5.symbol_info(symbol)
        if info is None:
            return None
        if not info.visible:
            self.mt5.symbol_select(symbol, True)
        spec = spec_from_mt5(info)
        self.specs[symbol] = (now, spec)
        return spec

    def _touched(self, views: dict[str, MasterView]) -> tuple[set[str], frozenset[tuple[str, int]]]:
        """What changed on the masters since the last pass (new, changed or gone positions and
        orders), plus the links still being opened: their slave symbols (the only ones a change
        pass reads a fresh tick for) and their link keys (the only position links it plans)."""
        out: set[str] = set()
        keys: set[tuple[str, int]] = set()
        seen = self._seen
        for name, view in views.items():
            before_p, before_o = seen.get(name, ({}, {}))
            now_p, now_o = view.state.positions, view.state.orders
            for now_items, before in ((now_p, before_p), (now_o, before_o)):
                for key, item in now_items.items():
                    if before.get(key) != item:
                        out.add(item.symbol)
                        keys.add((name, key))
                for key, item in before.items():
                    if key not in now_items:
                        out.add(item.symbol)
                        keys.add((name, key))
        mapped = {s for m in out if isinstance(s := translate_symbol(m, self.cfg, self.available), str)}
        for key, r in self.links.live.items():
            if r.get("status") == PENDING:
                keys.add(key)
                if r.get("symbol"):
                    mapped.add(r["symbol"])
        return mapped, frozenset(keys)

    def _quotes(self, specs: dict[str, SymbolSpec], touched: set[str] | None, now: int) -> dict[str, Quote]:
        """Quotes for the pass: all fresh on a full pass (``touched`` None), else fresh for
        ``touched`` and the last pass's for the rest while younger than QUOTE_REUSE_MS."""
        out: dict[str, Quote] = {}
        self._fresh = set()
        for s in specs:
            old = self.quotes.get(s)
            if touched is not None and s not in touched and old is not None and now - self._quote_ms.get(s, 0) < QUOTE_REUSE_MS:
                out[s] = old
                continue
            q = self._quote(s)
            if q is not None:
                out[s] = q
                self._quote_ms[s] = now
                self._fresh.add(s)
        return out

    def fresh_quote(self, symbol: str) -> Quote | None:
        """The quote read for ``symbol`` in this pass, or None (the executor reads one):
        an order is never sent at a price reused from an earlier pass."""
        return self.quotes.get(symbol) if symbol in self._fresh else None

    def _quote(self, symbol: str) -> Quote | None:
        q = self.guard.take_quote(symbol)  # the tick the bus guard read for this very change
        if q is not None:
            return q
        tick = self.mt5.symbol_info_tick(symbol)
        return None if tick is None else Quote(bid=float(tick.bid), ask=float(tick.ask), time_msc=int(tick.time_msc))

    # ------------------------------------------------------------------ status
    def status_info(self) -> dict[str, Any]:
        paused_by, pause_reason = self.pause_state()
        return {
            "links_open": sum(1 for r in self.links.live.values() if r.get("status") == OPEN),
            "last_copy_ms": self.actions.last_copy_ms or None,
            "paused": self.paused,
            # who stops new copies: "risk" (the guardian: paused, locked or blind), "kill_switch",
            # "operator", or None; pause_reason: the guardian's reason ("risk: ..."), else ""
            "paused_by": paused_by,
            "pause_reason": pause_reason,
            "masters": {n: m.fresh(utc_ms()) for n, m in self.mirrors.items()},
            "margin_mode": self.margin_mode,
            "fifo_close": self.fifo_close,
            "risk": self.guardian.status_info() if self.guardian is not None else None,
            **bus_counters(self.rt.subscriber),
            **self.guard.status_info(),
            **self.actions.counts,
        }


def main(rt: NodeRuntime) -> None:
    cfg = rt.load_account()
    if rt.args.dry_run:
        cfg = dataclasses.replace(cfg, dry_run=True)
    if not rt.claim_lease():
        return
    rt.subscribe([f"ctl.{rt.name}", "ctl.all"])
    mt5, held = rt.connect_terminal_holding(cfg)
    if mt5 is None:
        return
    loop = SlaveLoop(rt, mt5, cfg, stale_after_ms=settings.STALE_AFTER_MS, max_attempts=settings.ORDER_MAX_ATTEMPTS)
    loop.start()
    guardian, alerts = rt.start_guardian(cfg, mt5, loop.executor)
    loop.guardian = guardian
    loop.timers = _Timers()
    rt.state = "RUNNING"
    subscriber = rt.subscriber
    assert subscriber is not None
    _apply_held(loop, held)  # commands that came while the terminal was connecting
    while not rt.stopping:
        try:
            _turn(rt, loop, guardian, subscriber)
        except LeaseLost as exc:
            rt.lease_lost(str(exc))
        except WrongAccount:  # the terminal was switched to another account: trade nothing until it is back
            try:
                loop.mt5.shutdown()
            except Exception:
                pass
            if not _reconnect(rt, loop):
                break
    rt.publish_status(loop.metrics, loop.status_info())
    guardian.close(utc_ms())
    alerts.close(timeout=2)


def _config_refused(rt: Any, reason: str | None) -> None:
    """The runtime's refused-reload note (nodes/runtime.py); test runtimes may not have one."""
    refuse = getattr(rt, "config_refused", None)
    if refuse is not None:
        refuse(reason)
    elif reason is not None:
        rt.log.error("config_reload_refused", reason=reason)
        rt.event("config_reload_refused", level="error", reason=reason)


class _Timers:
    def __init__(self) -> None:
        now = time.monotonic()
        self.reconcile_s = settings.SLAVE_RECONCILE_INTERVAL_MS / 1000
        self.reload_s = settings.CONFIG_RELOAD_INTERVAL_MS / 1000
        self.heartbeat_s = settings.HEARTBEAT_INTERVAL_MS / 1000
        self.next_reconcile, self.next_reload, self.next_heartbeat = now, now + self.reload_s, now
        self.failures = 0


def _drain(loop: SlaveLoop, subscriber: Any, timeout_ms: int) -> bool:
    """Apply every bus message waiting (the first one waited for up to ``timeout_ms``);
    True when one of them asks for a pass (a master change)."""
    wants = False
    msg = subscriber.recv(timeout_ms=timeout_ms)
    while msg is not None:  # drain what is queued so one pass sees the latest state
        wants = loop.on_message(msg) or wants
        msg = subscriber.recv(timeout_ms=0)
    return wants


def _pass(rt: NodeRuntime, loop: SlaveLoop, *, full: bool) -> None:
    """One reconcile pass; the timer's full pass re-arms the timer; a terminal that keeps
    failing (10 passes in a row) is reconnected."""
    t: _Timers = loop.timers
    loop.reconcile(full=full)
    if full:
        t.next_reconcile = time.monotonic() + t.reconcile_s
    if rt.last_error is None:
        t.failures = 0
        return
    t.failures += 1
    if t.failures % 10 == 0:  # the terminal keeps failing: reconnect
        try:
            loop.mt5.shutdown()
        except Exception:
            pass
        _reconnect(rt, loop)


def _reconnect(rt: NodeRuntime, loop: SlaveLoop) -> bool:
    """Connect the terminal again (``NodeRuntime.connect_terminal_holding``: it serves the
    bus while it retries and stops on a ``ctl stop``); the bus messages it kept meanwhile
    (the masters' states, commands such as flatten that need the terminal) are applied
    once the terminal is back. False when the node was stopped instead."""
    new, held = rt.connect_terminal_holding(loop.cfg)
    if new is None:
        return False
    loop.use_terminal(new)
    _apply_held(loop, held)
    return True


def _apply_held(loop: SlaveLoop, held: list[Any]) -> None:
    """Bus messages kept while the terminal was connecting, in order; a master change
    among them makes the next turn pass at once."""
    wants = False
    for msg in held:
        wants = loop.on_message(msg) or wants
    if wants and getattr(loop, "timers", None) is not None:
        loop.timers.next_reconcile = time.monotonic()


def _turn(rt: NodeRuntime, loop: SlaveLoop, guardian: Guardian, subscriber: Any) -> None:
    """One turn of the slave's loop: a waiting master change, then risk, heartbeat, reload,
    bus, and the timer's full pass when due.

    A master change is copied before any periodic work: a change that arrived while the
    last turn ran gets its fast pass (``full=False``) before the guardian's evaluation, the
    heartbeat and the config reload, and a change that arrives with the full pass due gets
    the fast pass first, the full pass following on the next turn (unless it is a whole
    interval overdue, so a stream of changes cannot starve it). The copy never waits for
    the periodic work; the periodic work waits at most one fast pass (hub latency, docs/benchmarks.md).
    """
    t: _Timers = loop.timers
    if _drain(loop, subscriber, 0) and not rt.stopping:
        _pass(rt, loop, full=False)
    guardian.tick(utc_ms())
    loop.ask_for_snapshots(utc_ms())
    now = time.monotonic()
    if now >= t.next_heartbeat:
        rt.publish_status(loop.metrics, loop.status_info())
        t.next_heartbeat = now + t.heartbeat_s
    if now >= t.next_reload:
        loop.reload()
        t.next_reload = now + t.reload_s
    due = now >= t.next_reconcile
    wait_ms = int((min(t.next_reconcile, t.next_heartbeat, t.next_reload) - now) * 1000)
    if loop.syncing:  # re-ask for the snapshot we are waiting for
        wait_ms = min(wait_ms, 250)
    timeout = 0 if due else max(1, min(wait_ms, guardian.ms_until_due(utc_ms())))
    # after our own orders the positions are read again once the bus was quiet a little
    # (POSITIONS_REFRESH_DELAY_MS), so the next open needs no read; the next turn waits the rest
    refresh = not due and not rt.stopping and loop.refresh_pending()
    if refresh:
        timeout = min(timeout, POSITIONS_REFRESH_DELAY_MS)
    wants = _drain(loop, subscriber, timeout)
    if refresh and not wants and not rt.stopping:
        loop.refresh_positions()
    if loop.sync_changed():  # a master became trustworthy (or stopped being): say so now
        t.next_heartbeat = now
    if (due or wants) and not rt.stopping:
        overdue = time.monotonic() >= t.next_reconcile + t.reconcile_s
        _pass(rt, loop, full=due and (not wants or overdue))

if __name__ == "__main__":
    run_node("slave", main)
