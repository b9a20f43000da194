"""How a slave carries out the planner's actions and records each one.

The slave loop (``nodes/slave.py``) decides *when* to reconcile and reads what a pass
needs; it holds an ``ActionRunner`` and hands it each action with the pass's data
(``PassData``). The runner does the rest: build the MT5 request through the Executor,
write the link before and after (intent first, so nothing is copied twice), and leave an
event and a log line with the account, master ticket and slave ticket for every trade.
The lease ``fence()`` runs before every action and again (in the Executor) right before
every ``order_send``.
"""
from __future__ import annotations

from collections.abc import Callable, Mapping
from collections.abc import Set as AbstractSet
from dataclasses import dataclass, field, replace
from datetime import datetime, timezone
from typing import Any

from copier import retcodes as R
from copier.accounts import AccountConfig
from copier.actions import (
    Adopt,
    Close,
    Flip,
    MarkClosed,
    ModifyPending,
    ModifySLTP,
    Open,
    PlacePending,
    Rebind,
    RecordSkip,
    RemovePending,
)
from copier.expiry import TIME_CODES
from copier.held import added_held, recorded_held, reduced_held
from copier.links import CLOSED, FAILED, KIND_ORDER, KIND_POSITION, OPEN, PENDING, SKIPPED, TERMINAL
from copier.models import AccountMetrics, Position, Quote, SymbolSpec
from copier.orders import choose_filling
from copier.planner import MasterView
from copier.slippage import slippage_points
from copier.sltp import adjust_stops
from copier.tags import parse_tag
from nodes.execution import DEFERRED, DONE, UNKNOWN, Executor, Outcome
from nodes.execution import FAILED as OUT_FAILED
from nodes.execution import SKIPPED as OUT_SKIPPED
from nodes.runtime import utc_ms
from terminals.convert import PENDING_TYPE_CODES

INTENT_PURPOSES = ("new", "retry", "replace")  # opens of a new copy: intent written first
RETRY_BACKOFF_MS = (1_000, 60_000)  # a failing close/add/restore is retried at 1 s, 2 s … 60 s


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


def _sizing_fields(action: Any) -> dict[str, Any]:
    """How a new copy was sized (invariant 7), for the link: contract sizes, factor, FX."""
    factor = getattr(action, "contract_factor", 0.0)
    fx = getattr(action, "fx_symbol", "")
    out: dict[str, Any] = {}
    if factor:
        out.update(master_contract_size=action.master_contract_size, lot_factor=factor)
    if fx:
        out.update(fx_symbol=fx, fx_rate=action.fx_rate)
    return out


@dataclass
class PassData:
    """What one reconcile pass read, and what its actions have done so far.

    Built by the slave loop after its reads and before the first action; the runner reads
    it and adds to ``positions`` (fills), ``closed`` (slave tickets closed in full) and
    ``removed_orders`` (pending copies removed), so a later action of the same pass sees
    them without another terminal call.
    """

    cfg: AccountConfig
    views: Mapping[str, MasterView]
    specs: Mapping[str, SymbolSpec]  # the pass's symbol specs (every symbol an action names)
    quotes: Mapping[str, Quote]
    fresh: AbstractSet[str]  # symbols whose quote this pass read (an order is only sent at those)
    metrics: AccountMetrics | None = None  # the slave account's, at most METRICS_MAX_AGE_MS old
    margin_mode: str = "hedging"  # "hedging" | "netting"
    guardian: Any = None  # monitoring.guardian.Guardian: the pre-trade check (None: no check)
    trigger_ts_ms: int = 0  # UTC ms the master saw the change that triggered this pass (0: timer)
    positions: list[Position] = field(default_factory=list)  # as read, plus this pass's fills
    closed: set[int] = field(default_factory=set)  # slave tickets this pass closed in full
    removed_orders: set[int] = field(default_factory=set)  # slave order tickets this pass removed

    def fresh_quote(self, symbol: str) -> Quote | None:
        """The quote read for ``symbol`` in this pass, or None (the executor reads one)."""
        return self.quotes.get(symbol) if symbol in self.fresh else None


class ActionRunner:
    """Carries out the planner's actions for one slave account and records each one.

    Holds what outlives a pass: the retry backoff of failing actions, the dry-run notes
    already made, the counters ``status`` shows, the time of the last copy. ``links`` is
    the slave loop's table of link records (master name, master ticket) -> record: the
    runner keeps it in step with every write.
    """

    def __init__(self, *, name: str, store: Any, terminal: Any, executor: Executor, links: dict[tuple[str, int], dict[str, Any]],
                 log: Any, event: Callable[..., Any], fence: Callable[[], None]) -> None:
        """``name``: the slave account; ``store``: the trade store (``db``); ``terminal``: the
        MT5 module or an adapter (reads only: positions after an unknown outcome, flatten);
        ``executor``: the only ``order_send`` caller; ``log``: a structlog logger; ``event``:
        the runtime's event writer; ``fence()`` raises ``nodes.lease.LeaseLost`` when this
        process may no longer trade the account."""
        self.name = name
        self.store = store
        self.terminal = terminal
        self.executor = executor
        self.links = links
        self.log = log
        self.event = event
        self.fence = fence
        self.counts = {"copied": 0, "skipped": 0, "failed": 0, "closed": 0, "deferred": 0}
        self.last_copy_ms = 0
        self.backoff: dict[tuple[str, str, int], tuple[int, int]] = {}  # (action, master, ticket) -> (until ms, delay ms)
        self._dry_run_seen: set[tuple[str, str, int]] = set()

    def _trade_log(self, action: Any, **kw: Any) -> Any:
        return self.log.bind(master=action.master_name, master_ticket=action.master_ticket, **kw)

    def _record(self, key: tuple[str, int], fields: dict[str, Any]) -> tuple[dict[str, Any], bool]:
        """``store.record_intent`` for this link (the store's record, and whether it is new),
        kept in the in-memory table."""
        master, ticket = key
        doc, created = self.store.record_intent({"slave_name": self.name, "master_name": master, "master_ticket": ticket, **fields})
        self.links[key] = doc
        return doc, created

    def _save(self, key: tuple[str, int], fields: dict[str, Any], *, create: dict[str, Any] | None = None) -> dict[str, Any]:
        """Write a link (creating it if needed) and keep the in-memory copy in step."""
        if key not in self.links and create is not None:
            doc, created = self._record(key, {**create, **fields})
            if created:  # one write on the copy path, not two
                return doc
        doc = self.store.update_trade(self.name, key[0], key[1], fields)
        if doc is None:  # row vanished (operator removed it): recreate it from what we know
            return self._record(key, {**(create or {}), **fields})[0]
        self.links[key] = doc
        return doc

    def _new_intent(self, key: tuple[str, int], intent: dict[str, Any], log: Any) -> bool:
        """Record the intent of a copy the loop holds no link for. False (and nothing
        sent) when the store already has a finished link (CLOSED, SKIPPED, FAILED) for
        this master ticket — one the loop let go of (``SlaveLoop._prune_finished``): the
        record is taken back, and the master position is not copied a second time."""
        doc, created = self._record(key, intent)
        if created:
            return True
        if doc.get("status") in TERMINAL:
            log.warning("copy_not_repeated", status=doc.get("status"), note="the store already holds this master ticket's link")
            return False
        self._save(key, intent)  # a live record the loop did not hold: the intent updates it
        return True

    def _backing_off(self, action: Any) -> bool:
        """The planner re-issues a failed close or top-up every pass; space the attempts out."""
        until = self.backoff.get((type(action).__name__, action.master_name, action.master_ticket))
        return until is not None and utc_ms() < until[0]

    def _note_result(self, action: Any, ok: bool) -> None:
        key = (type(action).__name__, action.master_name, action.master_ticket)
        if ok:
            self.backoff.pop(key, None)
            return
        delay = min(self.backoff.get(key, (0, RETRY_BACKOFF_MS[0] // 2))[1] * 2, RETRY_BACKOFF_MS[1])
        self.backoff[key] = (utc_ms() + delay, delay)

    def execute(self, action: Any, p: PassData) -> None:
        """Carry out one planner action (``copier.actions``) with the pass's data ``p``.

        Raises ``LeaseLost`` (from ``fence``) before any write or send when the lease is
        gone, and ``db.StoreUnavailable`` when a record cannot be written (the caller stops
        the pass: never trade without the record)."""
        self.fence()  # no record and no order for an account whose lease we no longer hold
        if p.cfg.dry_run and isinstance(action, (Close, ModifySLTP, ModifyPending, RemovePending)):
            self._dry_run_note(action)
            return
        # a failed (or transiently refused) trade action is re-planned every pass: space them out
        repeated = isinstance(action, (Close, Open, PlacePending, ModifySLTP, ModifyPending, RemovePending))
        if repeated and self._backing_off(action):
            return
        if isinstance(action, Open):
            self._open(action, p)
        elif isinstance(action, Close):
            self._close(action, p)
        elif isinstance(action, ModifySLTP):
            outcome = self.executor.modify_sltp(ticket=action.slave_ticket, symbol=action.symbol, sl=action.sl, tp=action.tp, magic=p.cfg.magic)
            self._note_result(action, outcome.ok)
            self._report("modify_sltp", action, outcome, slave_ticket=action.slave_ticket, sl=action.sl, tp=action.tp)
        elif isinstance(action, PlacePending):
            self._place_pending(action, p)
        elif isinstance(action, ModifyPending):
            outcome = self.executor.modify_pending(ticket=action.slave_order_ticket, symbol=action.symbol, price=action.price, stoplimit=action.stoplimit, sl=action.sl, tp=action.tp, type_time=TIME_CODES[action.type_time], expiration=action.expiration)
            self._note_result(action, outcome.ok)
            self._report("modify_pending", action, outcome, slave_ticket=action.slave_order_ticket, price=action.price, type_time=action.type_time, expiration=action.expiration)
        elif isinstance(action, RemovePending):
            outcome = self.executor.remove_pending(ticket=action.slave_order_ticket, symbol=action.symbol)
            self._note_result(action, outcome.ok)
            if outcome.ok:
                p.removed_orders.add(action.slave_order_ticket)
            self._report("remove_pending", action, outcome, slave_ticket=action.slave_order_ticket, reason=action.reason)
        elif isinstance(action, RecordSkip):
            self._record_skip(action)
        elif isinstance(action, Adopt):
            fields = {"status": OPEN, "kind": action.kind, "slave_ticket": action.slave_ticket, "slave_price": action.price}
            if action.kind == KIND_POSITION:  # what the adopted copy holds (a pending copy holds nothing yet)
                fields["held_volume"] = action.volume
            self._save((action.master_name, action.master_ticket), fields, create={**self._intent_fields(action), "slave_volume": action.volume})
            self._trade_log(action, slave_ticket=action.slave_ticket).info("copy_adopted", volume=action.volume)
            self.event("copy_adopted", master=action.master_name, master_ticket=action.master_ticket, slave_ticket=action.slave_ticket)
        elif isinstance(action, Flip):
            self._flip(action)
        elif isinstance(action, MarkClosed):
            fields = {"status": CLOSED, "close_reason": action.reason, "close_time": iso_utc(utc_ms())}
            if action.cause:  # reasons from history: what the deal that closed the copy says
                fields.update(close_cause=action.cause, close_deal=action.deal)
            self._save((action.master_name, action.master_ticket), fields)
            self.counts["closed"] += 1
            self._trade_log(action).info("link_closed", reason=action.reason, cause=action.cause, deal=action.deal)
            self.event("link_closed", master=action.master_name, master_ticket=action.master_ticket, reason=action.reason, cause=action.cause)
        elif isinstance(action, Rebind):
            self._save((action.master_name, action.master_ticket), {"slave_ticket": action.slave_ticket})
            self._trade_log(action, slave_ticket=action.slave_ticket).info("link_rebound")

    def _flip(self, action: Flip) -> None:
        """The master position changed side under its identifier: the link follows it."""
        key = (action.master_name, action.master_ticket)
        fields = {"direction": action.direction, "master_direction": action.master_side, "master_volume": action.master_volume,
                  "slave_volume": action.slave_volume, "lot_ratio": action.lot_ratio, "status": action.status,
                  "flip_reason": action.reason, "flip_time": iso_utc(utc_ms()), **_sizing_fields(action)}
        if action.status == PENDING:
            fields["attempts"] = 0
        # hedging: the new side is still to be opened (its fill sets what it holds); netting:
        # the share moved to the new side (the full pass corrects it from the position)
        fields["held_volume"] = 0.0 if action.status == PENDING else action.slave_volume
        existing = self.links.get(key) or {}
        fields["flips"] = int(existing.get("flips", 0) or 0) + 1
        self._save(key, fields)
        self._trade_log(action, slave_ticket=existing.get("slave_ticket")).info(
            "master_flipped", old_direction=action.old_direction, direction=action.direction, master_volume=action.master_volume,
            slave_volume=action.slave_volume, reason=action.reason)
        self.event("master_flipped", master=action.master_name, master_ticket=action.master_ticket,
                      old_direction=action.old_direction, direction=action.direction, master_volume=action.master_volume,
                      slave_volume=action.slave_volume, reason=action.reason)

    def _dry_run_note(self, action: Any) -> None:
        """Dry run: say once what would have been sent, send nothing."""
        key = (type(action).__name__, action.master_name, action.master_ticket)
        if key in self._dry_run_seen:
            return
        self._dry_run_seen.add(key)
        kind = f"dry_run_{type(action).__name__.lower()}"
        self._trade_log(action).info(kind, action=repr(action))
        self.event(kind, master=action.master_name, master_ticket=action.master_ticket, action=repr(action))

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
            **_sizing_fields(action),
            **({"lot_ratio": action.lot_ratio} if getattr(action, "lot_ratio", 0.0) else {}),
        }

    @staticmethod
    def _master_open_ms(views: Mapping[str, MasterView], action: Any) -> int:
        view = views.get(action.master_name)
        mpos = view.state.positions.get(action.master_ticket) if view else None
        return int(mpos.time_msc) if mpos is not None else 0

    def _open(self, action: Open, p: PassData) -> None:
        key = (action.master_name, action.master_ticket)
        log = self._trade_log(action, symbol=action.symbol, side=action.side, volume=action.volume)
        if action.replaces_order and action.replaces_order not in p.removed_orders:
            log.info("open_deferred_until_pending_removed", order=action.replaces_order)
            return
        if action.purpose in INTENT_PURPOSES:
            existing = self.links.get(key)
            attempts = int(existing.get("attempts", 0)) + 1 if existing else 1
            intent = {**self._intent_fields(action), "status": PENDING, "attempts": attempts, "master_price": action.master_price, "slave_volume": action.volume}
            # the intent is durable BEFORE order_send (one write for a new copy)
            if existing is not None:
                self._save(key, intent, create=intent)
            elif not self._new_intent(key, intent, log):
                return  # the store already holds a finished link for this master ticket: never copied twice
        if p.cfg.dry_run:
            self._save(key, {"status": SKIPPED, "skip_reason": f"dry run: would {action.side} {action.volume:g} {action.symbol}"})
            log.info("dry_run_open")
            return
        if p.guardian is not None:
            refusal = self._risk_refusal(action, p)
            if refusal:  # recorded like any skip: SKIPPED with the reason, event copy_skipped
                self._after_open(action, Outcome(OUT_SKIPPED, reason=refusal), p, log)
                return
        spec = p.specs.get(action.symbol)
        point = spec.point if spec else 0.0
        tolerance = p.cfg.slippage_tolerance

        def guard(q: Quote) -> str | None:
            if not point or action.master_price <= 0:
                return None
            pts = slippage_points(action.side, q, action.master_price, point)
            if pts > tolerance:
                return f"slippage {pts:.1f} points > tolerance {tolerance} at send time"
            return None

        stops = (lambda q, sl, tp: adjust_stops(action.side, sl, tp, q, spec)) if spec is not None else None
        outcome = self.executor.open_market(symbol=action.symbol, side=action.side, volume=action.volume, sl=action.sl, tp=action.tp, deviation=action.deviation, magic=action.magic, comment=action.comment, type_filling=action.type_filling, guard=guard, quote=p.fresh_quote(action.symbol), stops=stops)
        self._after_open(action, outcome, p, log)

    @staticmethod
    def _risk_refusal(action: Open, p: PassData) -> str | None:
        """The guardian's pre-trade check, counting the new position's risk at its SL.

        No terminal call: it runs on the pass's data (the positions this pass read, its
        quote, the account metrics the loop keeps fresh off the hot path, at most
        METRICS_MAX_AGE_MS old), plus this pass's own fills so far (``pass_positions``).
        """
        spec = p.specs.get(action.symbol)
        if spec is None or p.guardian is None:
            return None
        quote = p.quotes.get(action.symbol)
        entry = (quote.ask if action.side == "BUY" else quote.bid) if quote else action.master_price
        return p.guardian.pre_trade(action.symbol, action.side, action.volume, entry, action.sl, spec.tick_size, spec.tick_value,
                                    metrics=p.metrics, positions=[x for x in p.positions if x.ticket not in p.closed],
                                    server_ms=max((q.time_msc for q in p.quotes.values()), default=0) or None)

    def _find_tagged(self, symbol: str, tag: str, margin_mode: str) -> Any | None:
        """Our position on ``symbol`` after an unknown outcome (by tag; netting: the symbol's)."""
        found = self.terminal.positions_get(symbol=symbol)
        for pos in found or ():
            if pos.comment.startswith(tag) or (margin_mode == "netting" and parse_tag(pos.comment) is not None):
                return pos
        if margin_mode == "netting" and found:
            return found[0]
        return None

    def _after_open(self, action: Open, outcome: Outcome, p: PassData, log: Any) -> None:
        key = (action.master_name, action.master_ticket)
        if outcome.status == UNKNOWN and not R.counts_as_attempt(outcome.retcode):
            position = self._find_tagged(action.symbol, action.comment, p.margin_mode)  # 10031: not delivered, but look first
            if position is None:
                outcome = replace(outcome, status=DEFERRED)
        if action.purpose not in INTENT_PURPOSES or outcome.status == DEFERRED:
            self._note_result(action, outcome.status == DONE)
        hub_ms = outcome.sent_ms - p.trigger_ts_ms if p.trigger_ts_ms and outcome.sent_ms else None
        if outcome.status == DONE:
            position = None
            if p.margin_mode == "hedging" and outcome.order:
                slave_ticket = outcome.order
            else:
                position = self._find_tagged(action.symbol, action.comment, p.margin_mode)
                slave_ticket = int(position.identifier) if position is not None else 0
            fields: dict[str, Any] = {"status": OPEN, "retcode": outcome.retcode, "attempts_sent": outcome.attempts}
            filled = outcome.volume or action.volume
            # a new copy holds its fill; an add or a restore adds its fill to what the copy held
            fields["held_volume"] = filled if action.purpose in INTENT_PURPOSES else added_held(recorded_held(self.links.get(key) or {}), filled)
            if action.purpose in INTENT_PURPOSES:
                master_open = self._master_open_ms(p.views, action)
                spec = p.specs.get(action.symbol)
                slip = abs(outcome.price - action.master_price) / spec.point if spec and spec.point and action.master_price else None
                fields.update({
                    "slave_ticket": slave_ticket, "slave_price": outcome.price, "slave_volume": filled,
                    "open_time": iso_utc(outcome.filled_ms), "filled_ms": outcome.filled_ms, "sent_ms": outcome.sent_ms, "slippage_points": round(slip, 1) if slip is not None else None,
                    "latency_ms": _plausible_latency(outcome.filled_ms, master_open), "hub_ms": hub_ms,
                })
            elif p.margin_mode == "netting" and slave_ticket:  # add/restore: the share lives in this position now
                fields["slave_ticket"] = slave_ticket
            if (self.links.get(key) or {}).get("retry_reason"):
                fields["retry_reason"] = ""
            self._save(key, fields)
            self._note_fill(action, outcome, slave_ticket, p)
            self._report_stops(action, outcome, slave_ticket, log)
            self.counts["copied"] += 1
            self.last_copy_ms = outcome.filled_ms
            log.bind(slave_ticket=slave_ticket).info("copy_opened", price=outcome.price, retcode=outcome.retcode, attempts=outcome.attempts, purpose=action.purpose, latency_ms=fields.get("latency_ms"), hub_ms=hub_ms)
            self.event("copy_opened", master=action.master_name, master_ticket=action.master_ticket, slave_ticket=slave_ticket, symbol=action.symbol, side=action.side, volume=action.volume, price=outcome.price, retcode=outcome.retcode, latency_ms=fields.get("latency_ms"), purpose=action.purpose)
        elif outcome.status == UNKNOWN:
            position = self._find_tagged(action.symbol, action.comment, p.margin_mode)
            if position is not None and action.purpose in INTENT_PURPOSES:
                found = {"status": OPEN, "slave_ticket": int(position.identifier), "slave_price": float(position.price_open), "open_time": iso_utc(utc_ms())}
                if p.margin_mode == "hedging":  # our tagged position (netting: the shared one; the full pass values the share)
                    found["held_volume"] = float(position.volume)
                self._save(key, found)
                log.bind(slave_ticket=int(position.identifier)).warning("copy_found_after_unknown_result", reason=outcome.reason)
            else:
                log.warning("copy_outcome_unknown", reason=outcome.reason)
            self.event("copy_outcome_unknown", level="warning", master=action.master_name, master_ticket=action.master_ticket, reason=outcome.reason, found=position is not None)
        elif outcome.status == DEFERRED:
            self._defer(key, action, outcome, log, "copy_deferred")
        elif outcome.status == OUT_SKIPPED:
            if action.purpose in INTENT_PURPOSES:
                self._save(key, {"status": SKIPPED, "skip_reason": outcome.reason})
            self.counts["skipped"] += 1
            log.warning("copy_skipped", reason=outcome.reason)
            self.event("copy_skipped", level="warning", master=action.master_name, master_ticket=action.master_ticket, reason=outcome.reason)
        else:
            if action.purpose in INTENT_PURPOSES:
                self._save(key, {"status": FAILED, "retcode": outcome.retcode, "skip_reason": outcome.reason})
            self.counts["failed"] += 1
            log.error("copy_failed", retcode=outcome.retcode, reason=outcome.reason, attempts=outcome.attempts)
            self.event("copy_failed", level="error", master=action.master_name, master_ticket=action.master_ticket, retcode=outcome.retcode, reason=outcome.reason)

    @staticmethod
    def _note_fill(action: Open, outcome: Outcome, slave_ticket: int, p: PassData) -> None:
        """This pass's fill joins its positions: the next open's risk check and a close's
        link bookkeeping in the same pass see it without reading the terminal again."""
        p.positions.append(Position(
            ticket=slave_ticket or outcome.order, identifier=slave_ticket or outcome.order, symbol=action.symbol, side=action.side,
            volume=outcome.volume or action.volume, price_open=outcome.price, sl=outcome.sl, tp=outcome.tp, magic=action.magic,
            comment=action.comment))

    def _defer(self, key: tuple[str, int], action: Any, outcome: Outcome, log: Any, kind: str) -> None:
        """A transient reject (invariant 8): the link stays PENDING with the reason, the
        attempt is not counted, and the planner plans the copy again after a backoff while
        the master still holds it (SKIPPED only by the slippage guard or the master)."""
        reason = f"{R.describe(outcome.retcode or None)}; planned again while the master holds it"
        until = self.backoff.get((type(action).__name__, action.master_name, action.master_ticket), (0, 0))[0]
        rec = self.links.get(key)
        if rec is not None and rec.get("status") == PENDING and getattr(action, "purpose", "new") in INTENT_PURPOSES:
            attempts = int(rec.get("attempts", 0))
            if not R.counts_as_attempt(outcome.retcode or None):
                attempts = max(0, attempts - 1)  # the intent counted this send; a transient reject is no attempt
            self._save(key, {"attempts": attempts, "retcode": outcome.retcode, "retry_reason": reason,
                             "deferrals": int(rec.get("deferrals", 0)) + 1, "next_try_ms": until})
        self.counts["deferred"] = self.counts.get("deferred", 0) + 1
        log.warning(kind, retcode=outcome.retcode, reason=reason, detail=outcome.reason, next_try_ms=until)
        self.event(kind, level="warning", master=action.master_name, master_ticket=action.master_ticket,
                      retcode=outcome.retcode, reason=reason, retcode_class=R.retcode_class(outcome.retcode or None))

    def _report_stops(self, action: Any, outcome: Outcome, slave_ticket: int, log: Any) -> None:
        """Say how the stops were moved to valid levels, or that they were left for later."""
        notes = [n for n in (getattr(action, "stops_note", ""), outcome.stops_note) if n]
        if not notes:
            return
        text = "; ".join(notes)
        if outcome.stops_dropped:
            text += "; the slave sets the stops it may set on its next pass"
        log.bind(slave_ticket=slave_ticket).warning("stops_adjusted", adjustment=text, sl=outcome.sl, tp=outcome.tp,
                                                    dropped=outcome.stops_dropped)
        self.event("stops_adjusted", level="warning", master=action.master_name, master_ticket=action.master_ticket,
                      slave_ticket=slave_ticket, symbol=action.symbol, adjustment=text, sl=outcome.sl, tp=outcome.tp,
                      dropped=outcome.stops_dropped)

    def _close(self, action: Close, p: PassData) -> None:
        outcome = self.executor.close_position(ticket=action.slave_ticket, symbol=action.symbol, position_side=action.side_to_close, volume=action.volume, deviation=action.deviation, magic=action.magic, comment=action.comment, type_filling=action.type_filling, quote=p.fresh_quote(action.symbol))
        if outcome.ok and not action.partial:
            p.closed.add(action.slave_ticket)
        key = (action.master_name, action.master_ticket)
        log = self._trade_log(action, slave_ticket=action.slave_ticket, symbol=action.symbol, volume=action.volume)
        self._note_result(action, outcome.ok)
        if outcome.ok:
            if not action.partial and action.ends_link and key in self.links and self._all_closed(action, p):
                self._save(key, {"status": CLOSED, "close_reason": action.reason, "close_time": iso_utc(utc_ms()), "close_price": outcome.price})
                self.counts["closed"] += 1
            elif key in self.links and (action.master_volume_now > 0 or self.links[key].get("status") == OPEN):  # the link lives on: what it holds now
                fields: dict[str, Any] = {"held_volume": reduced_held(recorded_held(self.links[key]), action.volume)}
                if action.master_volume_now > 0:  # netting: this reduction followed that master volume
                    fields["reduced_to"] = action.master_volume_now
                self._save(key, fields)
            log.info("copy_closed" if not action.partial else "copy_partially_closed", reason=action.reason, price=outcome.price, retcode=outcome.retcode)
            self.event("copy_closed" if not action.partial else "copy_partially_closed", master=action.master_name, master_ticket=action.master_ticket, slave_ticket=action.slave_ticket, volume=action.volume, reason=action.reason, price=outcome.price,
                          **({"master_volume": action.master_volume_now} if action.master_volume_now > 0 else {}))
        else:
            log.error("close_failed", retcode=outcome.retcode, reason=outcome.reason)
            self.event("close_failed", level="error", master=action.master_name, master_ticket=action.master_ticket, slave_ticket=action.slave_ticket, retcode=outcome.retcode, reason=outcome.reason)

    @staticmethod
    def _all_closed(action: Close, p: PassData) -> bool:
        """A hedging link can own several positions (adds); it is closed when none is left.

        Judged from the positions this pass read less those it closed (no terminal call
        after the close); the next regular pass confirms it like any other state.
        """
        if not action.comment:
            return True
        return not any(x.comment.startswith(action.comment) and x.ticket != action.slave_ticket and x.ticket not in p.closed
                       and x.symbol == action.symbol for x in p.positions)

    def _place_pending(self, action: PlacePending, p: PassData) -> None:
        key = (action.master_name, action.master_ticket)
        existing = self.links.get(key)
        intent = {**self._intent_fields(action), "kind": KIND_ORDER, "direction": "BUY" if action.order_type.startswith("BUY") else "SELL", "status": PENDING, "attempts": int(existing.get("attempts", 0)) + 1 if existing else 1, "slave_volume": action.volume}
        self._save(key, intent, create=intent)
        log = self._trade_log(action, symbol=action.symbol, order_type=action.order_type)
        if p.cfg.dry_run:
            self._save(key, {"status": SKIPPED, "skip_reason": f"dry run: would place {action.order_type} {action.volume:g} {action.symbol}"})
            return
        outcome = self.executor.place_pending(symbol=action.symbol, order_type=PENDING_TYPE_CODES[action.order_type], volume=action.volume, price=action.price, stoplimit=action.stoplimit, sl=action.sl, tp=action.tp, magic=action.magic, comment=action.comment, type_filling=action.type_filling, type_time=TIME_CODES[action.type_time], expiration=action.expiration)
        self._note_result(action, outcome.status == DONE)
        if outcome.status == DONE:
            fields = {"status": OPEN, "slave_ticket": outcome.order, "slave_price": action.price, "type_time": action.type_time, "expiration": action.expiration}
            if (self.links.get(key) or {}).get("retry_reason"):
                fields["retry_reason"] = ""
            self._save(key, fields)
            log.bind(slave_ticket=outcome.order).info("pending_copied", price=action.price, type_time=action.type_time, expiration=action.expiration)
            self.event("pending_copied", master=action.master_name, master_ticket=action.master_ticket, slave_ticket=outcome.order, order_type=action.order_type, price=action.price, type_time=action.type_time, expiration=action.expiration)
            self._report_stops(action, outcome, outcome.order, log)
        elif outcome.status == DEFERRED or (outcome.status == UNKNOWN and not R.counts_as_attempt(outcome.retcode)):
            self._defer(key, action, replace(outcome, status=DEFERRED), log, "pending_deferred")
        elif outcome.status == UNKNOWN:
            log.warning("pending_outcome_unknown", reason=outcome.reason)
        else:
            self._save(key, {"status": FAILED if outcome.status == OUT_FAILED else SKIPPED, "retcode": outcome.retcode, "skip_reason": outcome.reason})
            log.error("pending_failed", retcode=outcome.retcode, reason=outcome.reason)
            self.event("pending_failed", level="error", master=action.master_name, master_ticket=action.master_ticket, retcode=outcome.retcode, reason=outcome.reason)

    def _record_skip(self, action: RecordSkip) -> None:
        key = (action.master_name, action.master_ticket)
        fields = {"status": action.status, "skip_reason": action.reason}
        create = {"kind": action.kind, "symbol": action.symbol, "master_symbol": action.master_symbol, "direction": action.direction, "master_volume": action.master_volume, **fields}
        self._save(key, fields, create=create)
        self.counts["skipped" if action.status == SKIPPED else "failed"] += 1
        self._trade_log(action).info("copy_skipped" if action.status == SKIPPED else "copy_failed", reason=action.reason)
        self.event("copy_skipped" if action.status == SKIPPED else "copy_failed", level="warning", master=action.master_name, master_ticket=action.master_ticket, reason=action.reason, master_symbol=action.master_symbol)

    def _report(self, kind: str, action: Any, outcome: Outcome, **data: Any) -> None:
        log = self._trade_log(action, slave_ticket=data.get("slave_ticket"))
        if outcome.ok:
            log.info(kind, retcode=outcome.retcode)
            self.event(kind, master=action.master_name, master_ticket=action.master_ticket, retcode=outcome.retcode, **data)
        else:
            log.error(f"{kind}_failed", retcode=outcome.retcode, reason=outcome.reason)
            self.event(f"{kind}_failed", level="error", master=action.master_name, master_ticket=action.master_ticket, retcode=outcome.retcode, reason=outcome.reason, **data)

    # ------------------------------------------------------------------ operator
    def flatten(self, cfg: AccountConfig, spec_of: Callable[[str], SymbolSpec | None], *, reason: str) -> int:
        """Close every copied position (tagged ones) and remove copied pending orders; the
        live links are closed with ``reason``. ``spec_of(symbol)`` gives a symbol's spec
        (its filling mode). Returns how many positions were closed (0 on a terminal error)."""
        positions = self.terminal.positions_get()
        orders = self.terminal.orders_get()
        if positions is None or orders is None:
            self.log.error("flatten_failed_terminal_error", error=str(self.terminal.last_error()))
            return 0
        closed = 0
        for p in positions:
            if parse_tag(p.comment) is None and not self._linked(int(p.identifier)):
                continue  # a manual trade: not ours to close
            info = spec_of(p.symbol)
            filling = choose_filling(info.filling_mode, 2) if info else 1
            side = "BUY" if int(p.type) == 0 else "SELL"
            outcome = self.executor.close_position(ticket=int(p.ticket), symbol=p.symbol, position_side=side, volume=float(p.volume), deviation=cfg.slippage_tolerance, magic=cfg.magic, comment="", type_filling=filling)
            closed += outcome.ok
            self.log.bind(slave_ticket=int(p.ticket)).info("flatten_close", retcode=outcome.retcode, ok=outcome.ok)
        for o in orders:
            if parse_tag(o.comment) is not None:
                self.executor.remove_pending(ticket=int(o.ticket), symbol=o.symbol)
        for key, rec in list(self.links.items()):
            if rec.get("status") in (PENDING, OPEN):
                self._save(key, {"status": CLOSED, "close_reason": reason, "close_time": iso_utc(utc_ms())})
        self.event("flattened", level="warning", closed=closed, reason=reason)
        return closed

    def _linked(self, identifier: int) -> bool:
        return any(int(r.get("slave_ticket") or 0) == identifier and r.get("status") in (PENDING, OPEN) for r in self.links.values())
