"""The reconcile planner: desired (fresh master states + links) vs actual (slave terminal)
-> a list of actions. Pure and idempotent: planning again after the actions were applied
yields no trade action (see docs/copier.md for the rules, numbered as in the tests).

The node must call ``plan`` only with a SUCCESSFUL read of the slave's positions and
orders (``positions_get() is None`` means "unknown", never "flat").
"""
from __future__ import annotations

from collections.abc import Container, Iterable, Mapping, Sequence
from dataclasses import dataclass, field

from copier.accounts import AccountConfig
from copier.actions import Adopt, Close, MarkClosed, ModifySLTP, Open, RecordSkip, RemovePending, sort_actions
from copier.currency import Conversion
from copier.decisions import Skip
from copier.filters import symbol_allowed
from copier.links import FAILED, KIND_ORDER, KIND_POSITION, PENDING, TERMINAL, Link
from copier.models import AccountMetrics, MasterState, PendingOrder, Position, Quote, SymbolSpec, opposite
from copier.orders import EXEMODE_MARKET, choose_filling
from copier.pending_fills import OrderFate, split_netting_links
from copier.planner_flip import FLIPPED, is_flip, plan_hedging_flip
from copier.planner_pending import PendingOrdersMixin
from copier.reasons import Closure
from copier.sizing import EXPOSURE_MODES, RATIO_MODES, SizedCopy, floor_to_step, normalize_volume, size_copy
from copier.slippage import current_price, slippage_points, within_tolerance
from copier.sltp import adjust_stops, level_valid, raw_sltp, translate_sltp
from copier.symbols import translate_symbol
from copier.tags import make_tag, master_hash, parse_tag

VOL_EPS = 1e-9
TRADE_MODE_LONGONLY, TRADE_MODE_SHORTONLY = 1, 2  # SYMBOL_TRADE_MODE_*; DISABLED (0) and CLOSEONLY (3) are transient


@dataclass(frozen=True)
class MasterView:
    """What a slave knows of one master. ``state.positions`` are keyed by identifier."""

    state: MasterState
    metrics: AccountMetrics | None = None
    first_sync: bool = False  # no follow record yet: positions present now existed before following

    @property
    def fresh(self) -> bool:
        return bool(self.state.fresh)


@dataclass(frozen=True)
class PlanContext:
    slave: AccountConfig
    masters: Mapping[str, MasterView]
    links: Sequence[Link]
    slave_positions: Sequence[Position]
    slave_orders: Sequence[PendingOrder] = ()
    specs: Mapping[str, SymbolSpec] = field(default_factory=dict)
    quotes: Mapping[str, Quote] = field(default_factory=dict)
    slave_metrics: AccountMetrics | None = None
    slave_margin_mode: str = "hedging"  # "hedging" | "netting"
    paused: bool = False
    max_attempts: int = 3
    available_symbols: Container[str] | None = None  # the slave's full symbol list, if known
    # slave deposit currency -> a master's deposit currency, keyed by the master's currency
    # (ratio sizing across currencies); a Skip says why none exists, absent = not known yet
    conversions: Mapping[str, Conversion | Skip] = field(default_factory=dict)
    # the slave account's ACCOUNT_FIFO_CLOSE (hedging only): closes go oldest first, see planner_fifo
    slave_fifo_close: bool = False
    # the slave's server clock minus UTC, ms (None = not estimated yet): pending-order expiry
    slave_server_offset_ms: int | None = None
    now_ms: int = 0  # UTC ms of this pass (0 = unknown: no "already expired" check)
    # reasons from history: slave position identifier -> why it is gone (copier/reasons.py),
    # for every OPEN link's ``slave_ticket`` that is no longer among ``slave_positions``.
    # A vanished position without an entry here is not decided yet: the planner waits.
    closures: Mapping[int, Closure] = field(default_factory=dict)
    # netting: slave order ticket -> what became of it (copier/pending_fills.py), for every
    # OPEN order link's ``slave_ticket`` that is no longer among ``slave_orders`` and opened no
    # position of its own. A vanished copy without an entry here holds its symbol (wait).
    order_fates: Mapping[int, OrderFate] = field(default_factory=dict)


def plan(ctx: PlanContext) -> list:
    """All actions for one reconcile pass, in execution order."""
    return sort_actions(_Planner(ctx).run())


class _Planner(PendingOrdersMixin):
    def __init__(self, ctx: PlanContext) -> None:
        self.ctx = ctx
        self.cfg = ctx.slave
        self.out: list = []
        self.opened: set[tuple[str, int]] = set()  # one Open per master ticket per plan
        self.net_new: dict[str, float] = {}  # netting: signed raw shares of this plan's new copies per symbol
        self.net_expected: dict[str, float] = {}  # netting: signed net per symbol once this plan's deals are done
        self.net_hold: set[str] = set()  # netting: symbols where a vanished pending copy's fate is not known yet
        self.netting = ctx.slave_margin_mode == "netting"
        self.links: dict[tuple[str, int], Link] = {}
        for link in ctx.links:
            self.links.setdefault(link.key, link)
        names = set(ctx.masters) | {l.master_name for l in ctx.links}
        self.by_hash = {master_hash(n): n for n in names}
        self.pos_by_tag: dict[tuple[str, int], list[Position]] = {}
        self.pos_by_id: dict[int, Position] = {}
        for p in ctx.slave_positions:
            self.pos_by_id[p.identifier] = p
            key = self._tag_key(p.comment)
            if key:
                self.pos_by_tag.setdefault(key, []).append(p)
        self.ord_by_tag: dict[tuple[str, int], list[PendingOrder]] = {}
        self.ord_by_ticket = {o.ticket: o for o in ctx.slave_orders}
        for o in ctx.slave_orders:
            key = self._tag_key(o.comment)
            if key:
                self.ord_by_tag.setdefault(key, []).append(o)
        self.claimed_pos: set[int] = set()
        self.claimed_ord: set[int] = set()
        self.open_count = sum(1 for l in self.links.values() if l.live and l.kind == KIND_POSITION)

    # ------------------------------------------------------------------ helpers
    def _tag_key(self, comment: str) -> tuple[str, int] | None:
        parsed = parse_tag(comment)
        if parsed is None or parsed[0] not in self.by_hash:
            return None
        return (self.by_hash[parsed[0]], parsed[1])

    def _fresh_view(self, name: str) -> MasterView | None:
        view = self.ctx.masters.get(name)
        return view if view is not None and view.fresh else None

    def link_positions(self, link: Link) -> list[Position]:
        found = {p.identifier: p for p in self.pos_by_tag.get(link.key, [])}
        if link.slave_ticket and link.slave_ticket in self.pos_by_id:
            found.setdefault(link.slave_ticket, self.pos_by_id[link.slave_ticket])
        return sorted(found.values(), key=lambda p: (p.time_msc, p.identifier))

    def link_orders(self, link: Link) -> list[PendingOrder]:
        found = {o.ticket: o for o in self.ord_by_tag.get(link.key, [])}
        if link.slave_ticket and link.slave_ticket in self.ord_by_ticket:
            found.setdefault(link.slave_ticket, self.ord_by_ticket[link.slave_ticket])
        return sorted(found.values(), key=lambda o: o.ticket)

    def closure_for(self, link: Link) -> Closure | None | bool:
        """Why the link's slave position (``slave_ticket``) is gone: a Closure; None when the
        link names no position (a seed-era row: nothing to read); False = not known yet (wait)."""
        if not link.slave_ticket:
            return None
        found = self.ctx.closures.get(link.slave_ticket)
        return False if found is None else found

    def own_close_reason(self, link: Link, view: MasterView | None, closure: Closure) -> str:
        """The record of a copy the copier closed itself but whose result it never saw (a lost
        reply, a crash): the reason its close was sent for, when the master state shows it."""
        if view is None:
            return f"closed by copyhub (deal #{closure.deal})"
        mpos = view.state.positions.get(link.master_ticket)
        if mpos is None:
            return "master closed"
        if link.master_side and mpos.side != link.master_side:
            return "closed by copyhub: master reversed (netting master)"
        spec = self.ctx.specs.get(link.symbol)
        if spec is not None and self.scaled_target(link, mpos.volume, spec, self.cfg.max_lot) == 0.0:
            return "closed by copyhub: master partial close (copy below minimum: closed)"
        return f"closed by copyhub (deal #{closure.deal})"

    def filling(self, spec: SymbolSpec) -> int:
        return choose_filling(spec.filling_mode, getattr(spec, "trade_exemode", EXEMODE_MARKET))

    def spec_or_skip(self, symbol: str) -> SymbolSpec | Skip | None:
        spec = self.ctx.specs.get(symbol)
        if spec is not None:
            return spec
        avail = self.ctx.available_symbols
        if avail is not None and symbol not in avail:
            return Skip(f"symbol '{symbol}' not available on slave")
        return None  # not loaded yet: try again next pass

    def skip(self, master: str, ticket: int, reason: str, *, kind: str = KIND_POSITION, status: str = "SKIPPED",
             master_symbol: str = "", symbol: str = "", direction: str = "", master_volume: float = 0.0) -> None:
        self.out.append(RecordSkip(master, ticket, reason, kind, status, master_symbol, symbol, direction, master_volume))

    def close_positions(self, link_key: tuple[str, int], positions: Iterable[Position], reason: str, *,
                        ends_link: bool = True) -> None:
        for p in positions:
            spec = self.ctx.specs.get(p.symbol)
            self.out.append(Close(
                link_key[0], link_key[1], p.ticket, p.symbol, p.side, p.volume, p.volume, reason,
                type_filling=self.filling(spec) if spec else 1, deviation=self.cfg.slippage_tolerance,
                magic=self.cfg.magic, comment=make_tag(*link_key), ends_link=ends_link,
            ))

    @staticmethod
    def scaled_target(link: Link, master_volume: float, spec: SymbolSpec, max_lot: float | None) -> float | None:
        """Slave volume that keeps the at-open ratio; 0 when under the minimum; None if unknown."""
        if link.master_volume <= 0 or link.slave_volume <= 0:
            return None
        vol = normalize_volume(link.slave_volume * master_volume / link.master_volume, spec, max_lot=max_lot)
        return 0.0 if isinstance(vol, Skip) else vol

    def size(self, view: MasterView, item: Position | PendingOrder, spec: SymbolSpec) -> SizedCopy | Skip | None:
        """The raw volume of a new copy of ``item`` (invariant 7: exposure, not lots).

        None = cannot decide yet: the master has not published its contract size, or the
        deposit-currency rate has no quote yet. Never falls back to raw lots or balances.
        """
        cfg = self.cfg
        mode = cfg.sizing.mode
        if mode in EXPOSURE_MODES and not item.contract_size > 0:
            return None
        conversion = None
        mm, sm = view.metrics, self.ctx.slave_metrics
        if mode in RATIO_MODES and mm is not None and sm is not None and mm.currency.upper() != sm.currency.upper():
            found = self.ctx.conversions.get(mm.currency.upper())
            if found is None or isinstance(found, Skip):
                return found
            conversion = found
        sl_level = item.tp if cfg.reverse else item.sl
        return size_copy(item.volume, cfg.sizing, master_contract_size=item.contract_size, master_metrics=mm,
                         slave_metrics=sm, sl_distance_price=abs(item.price_open - sl_level) if sl_level else None,
                         slave_spec=spec, conversion=conversion)

    @staticmethod
    def sizing_fields(sized: SizedCopy | None, item: Position | PendingOrder) -> dict:
        if sized is None:
            return {}
        conv = sized.conversion
        return {"master_contract_size": item.contract_size if sized.contract_factor else 0.0,
                "contract_factor": sized.contract_factor, "fx_symbol": conv.symbol if conv else "",
                "fx_rate": conv.rate if conv else 0.0}

    # ------------------------------------------------------------------ main
    def run(self) -> list:
        live = sorted((l for l in self.links.values() if l.live), key=lambda l: l.key)
        if self.netting:
            from copier.planner_netting import plan_netting_links

            position_links, order_links, self.net_hold = split_netting_links(self, live)
            plan_netting_links(self, position_links)
            for link in order_links:
                self.order_link(link)
        else:
            fifo_links = []
            for link in live:
                if link.kind == KIND_ORDER:
                    self.order_link(link)
                elif self.ctx.slave_fifo_close:
                    fifo_links.append(link)
                else:
                    self.position_link(link)
            if fifo_links:
                from copier.planner_fifo import plan_fifo_links

                plan_fifo_links(self, fifo_links)
        for link in live:
            for p in self.link_positions(link):
                self.claimed_pos.add(p.identifier)
            for o in self.link_orders(link):
                self.claimed_ord.add(o.ticket)
        for name in sorted(self.ctx.masters):
            view = self.ctx.masters[name]
            if not view.fresh or not self.cfg.follows_master(name):
                continue  # rule 1: only fresh, followed masters start anything
            for ticket in sorted(view.state.positions):
                if (name, ticket) not in self.links:
                    self.new_position(name, view, view.state.positions[ticket])
            if self.cfg.copy_pending:
                for ticket in sorted(view.state.orders):
                    if (name, ticket) not in self.links and ticket not in view.state.positions:
                        self.new_order(name, view, view.state.orders[ticket])
        self.orphans()
        return self.out

    # ------------------------------------------------------------------ new master positions (rules 2, 3)
    def new_position(self, name: str, view: MasterView, mpos: Position) -> None:
        key = (name, mpos.identifier)
        tagged = self.pos_by_tag.get(key)
        if tagged:  # our copy exists but its row is missing (store lost/reset): adopt, never re-open
            p = tagged[0]
            self.claimed_pos.update(x.identifier for x in tagged)
            self.out.append(Adopt(name, mpos.identifier, p.identifier, sum(x.volume for x in tagged), p.price_open,
                                  KIND_POSITION, p.symbol, mpos.symbol, p.side, mpos.side, mpos.volume, make_tag(*key)))
            return
        common = dict(kind=KIND_POSITION, master_symbol=mpos.symbol, master_volume=mpos.volume)
        if view.first_sync and not self.cfg.copy_existing:
            self.skip(name, mpos.identifier, "existed before follow (copy_existing is off)", **common)
            return
        if self.ctx.paused:
            self.skip(name, mpos.identifier, "account paused when the master opened it", **common)
            return
        if self.netting:
            from copier.planner_netting import new_netting_copy

            result = new_netting_copy(self, name, view, mpos)
        else:
            result = self.open_for(name, view, mpos, None, "new")
        if isinstance(result, Adopt):  # netting: counted in the net target, no deal needed now
            self.out.append(result)
            self.open_count += 1
        elif isinstance(result, Skip):
            self.skip(name, mpos.identifier, result.reason, **common)
        elif result is not None:
            self.emit_open(result)
            self.open_count += 1

    def emit_open(self, action: Open) -> None:
        key = (action.master_name, action.master_ticket)
        if key in self.opened:  # defensive: never two opens for one master ticket in one plan
            return
        self.opened.add(key)
        self.out.append(action)

    def market_for(self, master_symbol: str, link: Link | None) -> tuple[str, SymbolSpec, Quote] | Skip | None:
        """The slave symbol, its spec and quote for a master symbol (None: not known yet).

        A new copy passes the allow/deny filters and symbol translation; an existing link
        keeps the symbol it was opened on.
        """
        cfg = self.cfg
        if link is None:
            refused = symbol_allowed(master_symbol, allow=cfg.symbols_allow, deny=cfg.symbols_deny,
                                     master_prefix=cfg.master_prefix, master_suffix=cfg.master_suffix)
            if refused:
                return refused
        symbol = link.symbol if link is not None and link.symbol else translate_symbol(master_symbol, cfg, self.ctx.available_symbols)
        if isinstance(symbol, Skip):
            return symbol
        spec = self.spec_or_skip(symbol)
        if spec is None or isinstance(spec, Skip):
            return spec
        quote = self.ctx.quotes.get(symbol)
        if quote is None or quote.bid <= 0 or quote.ask <= 0:
            return None
        return symbol, spec, quote

    def open_for(self, name: str, view: MasterView, mpos: Position, link: Link | None, purpose: str,
                 *, volume: float | None = None, replaces_order: int = 0) -> Open | Skip | None:
        """The market copy of ``mpos`` (None = cannot decide yet, e.g. no quote)."""
        cfg = self.cfg
        market = self.market_for(mpos.symbol, link)
        if market is None or isinstance(market, Skip):
            return market
        symbol, spec, quote = market
        side = link.direction if link is not None and link.direction else (opposite(mpos.side) if cfg.reverse else mpos.side)
        refused = self.trade_mode_refusal(spec, side)
        if refused:
            return refused
        if self.netting and link is None:
            manual = self.manual_netting_position(symbol)
            if manual:
                return Skip(f"slave has a netting position on {symbol} that copyhub does not own (manual trade); not mixing with it")
        entry = current_price(side, quote)
        sl, tp, stops_note = 0.0, 0.0, ""
        if cfg.copy_sltp:  # stops the broker refuses are moved to the nearest valid level, and said so
            raw_sl, raw_tp = raw_sltp(mpos, slave_side=side, slave_entry_price=entry, slave_spec=spec,
                                      mode=cfg.sltp_mode, reverse=cfg.reverse)
            adjusted = adjust_stops(side, raw_sl, raw_tp, quote, spec)
            sl, tp, stops_note = adjusted.sl, adjusted.tp, adjusted.note
        sized: SizedCopy | None = None
        if volume is None:
            target = self.scaled_target(link, mpos.volume, spec, cfg.max_lot) if link is not None else None
            if target is not None:
                volume = target
            else:
                raw = self.size(view, mpos, spec)
                if raw is None or isinstance(raw, Skip):
                    return raw
                sized = raw
                volume = normalize_volume(raw.volume, spec, max_lot=cfg.max_lot)
            if isinstance(volume, Skip):
                return volume
            if volume <= 0:
                return Skip(f"volume below minimum {spec.volume_min:g} for {symbol}")
        if link is None and cfg.max_open_positions is not None and self.open_count >= cfg.max_open_positions:
            return Skip(f"max_open_positions {cfg.max_open_positions} reached")
        ref_price = mpos.price_open if purpose != "add" else (mpos.price_current or 0.0)  # "restore": the entry
        if ref_price > 0 and not within_tolerance(side, quote, ref_price, spec.point, cfg.slippage_tolerance):
            pts = slippage_points(side, quote, ref_price, spec.point)
            return Skip(f"slippage {pts:.1f} points > tolerance {cfg.slippage_tolerance} "
                        f"({symbol} {side} at {entry:.{spec.digits}f}, master {ref_price:.{spec.digits}f})")
        ratio = sized.volume / mpos.volume if sized is not None and mpos.volume > 0 else 0.0
        return Open(name, mpos.identifier, symbol, side, volume, sl, tp, self.filling(spec), cfg.slippage_tolerance,
                    cfg.magic, make_tag(name, mpos.identifier), ref_price, entry, mpos.symbol, mpos.side,
                    mpos.volume if link is None else link.master_volume or mpos.volume, purpose, replaces_order,
                    lot_ratio=ratio, **self.sizing_fields(sized, mpos), stops_note=stops_note)

    @staticmethod
    def trade_mode_refusal(spec: SymbolSpec, side: str) -> Skip | None:
        """A side the symbol never takes (long-only, short-only) is a broker constraint: Skip.

        Disabled and close-only are *transient* (invariant 8; brokers switch symbols to
        close-only before rollover, expiry or news and back): the open is planned and the
        server's 10017 / 10044 defers it, retried while the master still holds the position.
        """
        mode = spec.trade_mode
        if (mode == TRADE_MODE_LONGONLY and side == "SELL") or (mode == TRADE_MODE_SHORTONLY and side == "BUY"):
            return Skip(f"{spec.name} is {'long' if mode == 1 else 'short'}-only at the slave broker")
        return None

    def manual_netting_position(self, symbol: str) -> Position | None:
        owned = {l.slave_ticket for l in self.links.values() if l.live and l.slave_ticket}
        for p in self.ctx.slave_positions:
            if p.symbol == symbol and parse_tag(p.comment) is None and p.identifier not in owned:
                return p
        return None

    # ------------------------------------------------------------------ hedging position links (rules 4-6)
    def position_link(self, link: Link) -> None:
        positions = self.link_positions(link)
        view = self._fresh_view(link.master_name)
        mpos_now = view.state.positions.get(link.master_ticket) if view is not None else None
        if is_flip(link, mpos_now):  # netting master reversed under the same identifier
            plan_hedging_flip(self, link, view, mpos_now, positions)
            return
        if link.direction and any(p.side != link.direction for p in positions):
            old_side = [p for p in positions if p.side != link.direction]  # an earlier flip's old side
            positions = [p for p in positions if p.side == link.direction]
            if view is not None:
                self.close_positions(link.key, old_side, FLIPPED, ends_link=False)
        if link.status == PENDING:
            if positions:  # rule 4: the intent executed (we crashed or timed out): adopt
                p = positions[0]
                self.out.append(Adopt(link.master_name, link.master_ticket, p.identifier, sum(x.volume for x in positions),
                                      p.price_open, KIND_POSITION, p.symbol, link.master_symbol, p.side, link.master_side,
                                      link.master_volume, link.tag or make_tag(*link.key)))
            else:
                self.retry_pending_link(link, view)
                return
        if not positions:  # reasons from history: why did the copy go away?
            closure = self.closure_for(link)
            if closure is False:
                return  # its deals are not read yet: decide nothing about it this pass
            gone = view is not None and not self.master_has(view, link.master_ticket)
            if closure is None:
                reason = "master closed" if gone else "closed on slave"
            elif closure.own:
                reason = self.own_close_reason(link, view, closure)
            else:
                reason = closure.describe()  # SL/TP/SO/by hand: final, never reopened
            self.out.append(MarkClosed(link.master_name, link.master_ticket, reason,
                                       closure.cause if closure else "", closure.deal if closure else 0))
            return
        if view is None:
            return  # rule 1
        mpos = view.state.positions.get(link.master_ticket)
        if mpos is None:
            if link.master_ticket in view.state.orders:
                return  # slave's pending copy filled before the master's: wait for the master
            self.close_positions(link.key, positions, "master closed")  # rule 6
            return
        if link.master_side and mpos.side != link.master_side:
            self.close_positions(link.key, positions, "master reversed (netting master)")
            return
        self.manage_volume(link, view, mpos, positions)

    def master_has(self, view: MasterView, ticket: int) -> bool:
        return ticket in view.state.positions or ticket in view.state.orders

    def retry_pending_link(self, link: Link, view: MasterView | None) -> None:
        if view is None:
            return  # rule 1: no retry on stale state
        mpos = view.state.positions.get(link.master_ticket)
        if mpos is None:
            if link.master_ticket not in view.state.orders:
                self.out.append(MarkClosed(link.master_name, link.master_ticket, "master closed before the copy was made"))
            return
        if link.master_side and mpos.side != link.master_side:
            self.out.append(MarkClosed(link.master_name, link.master_ticket, "master reversed before the copy was made"))
            return
        if self.ctx.paused:
            return
        if link.attempts >= self.ctx.max_attempts:
            self.skip(link.master_name, link.master_ticket, f"gave up after {link.attempts} attempts", status=FAILED,
                      master_symbol=link.master_symbol, symbol=link.symbol, direction=link.direction, master_volume=link.master_volume)
            return
        result = self.open_for(link.master_name, view, mpos, link, "retry")
        if isinstance(result, Skip):
            self.skip(link.master_name, link.master_ticket, result.reason, master_symbol=link.master_symbol,
                      symbol=link.symbol, direction=link.direction, master_volume=link.master_volume)
        elif result is not None:
            self.emit_open(result)

    def manage_volume(self, link: Link, view: MasterView, mpos: Position, positions: list[Position]) -> None:
        """Rule 5: proportional partial closes, adds on master volume increase, SL/TP sync."""
        spec = self.ctx.specs.get(positions[0].symbol)
        if spec is None:
            return
        actual = sum(p.volume for p in positions)
        target = self.scaled_target(link, mpos.volume, spec, self.cfg.max_lot)
        tol = spec.volume_step / 2 if spec.volume_step > 0 else VOL_EPS
        closing: dict[int, float] = {}
        if target is not None and actual - target > tol:
            reason = "master partial close" if target > 0 else "master partial close (copy below minimum: closed)"
            excess = actual - target
            for p in sorted(positions, key=lambda p: (p.time_msc, p.identifier), reverse=True):  # newest first
                if excess <= tol:
                    break
                take = p.volume if target == 0 else min(p.volume, floor_to_step(excess + tol, spec.volume_step))
                left = p.volume - take
                if 0 < left < spec.volume_min - VOL_EPS or take < spec.volume_min - VOL_EPS:
                    take = p.volume
                if take <= VOL_EPS:
                    break
                closing[p.identifier] = take
                excess -= take
                self.out.append(Close(link.master_name, link.master_ticket, p.ticket, p.symbol, p.side, take, p.volume, reason,
                                      self.filling(spec), self.cfg.slippage_tolerance, self.cfg.magic, make_tag(*link.key)))
        elif (target is not None and target - actual > tol and mpos.volume > link.master_volume + VOL_EPS
              and not self.ctx.paused):
            add = floor_to_step(target - actual + tol, spec.volume_step)
            if add >= spec.volume_min - VOL_EPS:
                result = self.open_for(link.master_name, view, mpos, link, "add", volume=add)
                if isinstance(result, Open):
                    self.emit_open(result)
        if self.cfg.copy_sltp:
            for p in positions:
                if closing.get(p.identifier, 0.0) >= p.volume - VOL_EPS:
                    continue
                self.sync_sltp(link, mpos, p, spec)

    def sync_sltp(self, link: Link, master: Position, p: Position, spec: SymbolSpec) -> None:
        quote = self.ctx.quotes.get(p.symbol)
        if quote is None:
            return
        sl, tp = self.desired_sltp(master, p, spec, quote)
        half = spec.point / 2
        if abs(sl - p.sl) > half or abs(tp - p.tp) > half:
            self.out.append(ModifySLTP(link.master_name, link.master_ticket, p.ticket, p.symbol, sl, tp))

    def desired_sltp(self, master: Position, p: Position, spec: SymbolSpec, quote: Quote) -> tuple[float, float]:
        """Target levels, without churn: an unplaceable target keeps a valid current level."""
        raw_sl, raw_tp = raw_sltp(master, slave_side=p.side, slave_entry_price=p.price_open, slave_spec=spec,
                                  mode=self.cfg.sltp_mode, reverse=self.cfg.reverse)
        half = spec.point / 2
        sl, tp = p.sl, p.tp
        if abs(raw_sl - p.sl) > half:
            if level_valid("sl", raw_sl, p.side, quote, spec):
                sl = raw_sl
            elif not (p.sl and level_valid("sl", p.sl, p.side, quote, spec)):
                sl = translate_sltp(master, slave_side=p.side, slave_entry_price=p.price_open, slave_spec=spec, quote=quote,
                                    mode=self.cfg.sltp_mode, reverse=self.cfg.reverse)[0]
        if abs(raw_tp - p.tp) > half:
            if level_valid("tp", raw_tp, p.side, quote, spec):
                tp = raw_tp
            elif not level_valid("tp", p.tp, p.side, quote, spec):
                tp = 0.0
        return sl, tp

    # ------------------------------------------------------------------ orphans (invariant 3)
    def orphans(self) -> None:
        """Tagged slave positions/orders no live link claims: close them once their master is
        fresh and lacks the ticket. Untagged positions are never touched (rule 9)."""
        for key, positions in sorted(self.pos_by_tag.items()):
            rest = [p for p in positions if p.identifier not in self.claimed_pos]
            view = self._fresh_view(key[0])
            if rest and view is not None and not self.master_has(view, key[1]):
                link = self.links.get(key)
                if link is None or link.status in TERMINAL:
                    self.close_positions(key, rest, "orphan copy: master position gone")
            elif rest and view is not None and not self.netting:
                link = self.links.get(key)  # a flip's old side left behind by a link that ended since
                if link is not None and link.status in TERMINAL and link.direction and key[1] in view.state.positions:
                    self.close_positions(key, [p for p in rest if p.side != link.direction], FLIPPED)
        for key, orders in sorted(self.ord_by_tag.items()):
            rest = [o for o in orders if o.ticket not in self.claimed_ord]
            view = self._fresh_view(key[0])
            if rest and view is not None and not self.master_has(view, key[1]):
                for o in rest:
                    self.out.append(RemovePending(key[0], key[1], o.ticket, o.symbol, "orphan copy: master order gone"))
