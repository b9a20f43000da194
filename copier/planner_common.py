"""The planner's shared building blocks: functions over one pass's ``PlanState``.

How a new copy is sized and priced (``open_for``: symbol, filters, trade mode, stops,
sizing, slippage), the SL/TP a copy should carry, and the small writers every rule uses
(``skip``, ``emit_open``, ``close_positions``). The rules themselves live above this module
(``planner_hedging``, ``planner_flip``, ``planner_netting``, ``planner_fifo``,
``pending_fills``, ``planner_pending``, ``planner``); this one imports none of them.
"""
from __future__ import annotations

from collections.abc import Iterable
from typing import Any, TypedDict

from copier.actions import Close, ModifySLTP, Open, RecordSkip
from copier.decisions import Skip
from copier.filters import symbol_allowed
from copier.links import KIND_POSITION, Link
from copier.models import PendingOrder, Position, Quote, SymbolSpec, opposite
from copier.orders import EXEMODE_MARKET, choose_filling
from copier.planner_state import LinkKey, MasterView, PlanState
from copier.reasons import Closure
from copier.sizing import (
    EXPOSURE_MODES,
    RATIO_MODES,
    SizedCopy,
    normalize_volume,
    size_copy,
)
from copier.slippage import current_price, slippage_points, within_tolerance
from copier.sltp import adjust_stops, level_valid, raw_sltp, translate_sltp
from copier.symbols import translate_symbol
from copier.tags import make_tag, parse_tag

TRADE_MODE_LONGONLY, TRADE_MODE_SHORTONLY = 1, 2  # SYMBOL_TRADE_MODE_*; DISABLED (0) and CLOSEONLY (3) are transient


class SkipFields(TypedDict, total=False):
    """The optional fields of ``skip`` (what the ``RecordSkip`` row says of the copy)."""

    kind: str
    status: str
    master_symbol: str
    symbol: str
    direction: str
    master_volume: float


def skip(st: PlanState, master: str, ticket: int, reason: str, *, kind: str = KIND_POSITION, status: str = "SKIPPED",
         master_symbol: str = "", symbol: str = "", direction: str = "", master_volume: float = 0.0) -> None:
    """Record that the copy of ``(master, ticket)`` is not made, and why (a ``RecordSkip``)."""
    st.out.append(RecordSkip(master, ticket, reason, kind, status, master_symbol, symbol, direction, master_volume))


def paused_text(st: PlanState, when: str) -> str:
    """The skip reason of a copy not made while the account is paused: ``account paused
    <when>`` for an operator's pause or the kill switch, the guardian's own reason (``risk:
    paused by the guardian (daily_loss 87.8% of 500.00, pause at 85%) <when>``) when it is
    the guardian that stops opens (``PlanContext.paused_reason``)."""
    reason = st.ctx.paused_reason
    return f"{reason} {when}" if reason else f"account paused {when}"


def emit_open(st: PlanState, action: Open) -> None:
    """Add a market open to the plan, at most one per master ticket per pass."""
    key = (action.master_name, action.master_ticket)
    if key in st.opened:  # defensive: never two opens for one master ticket in one plan
        return
    st.opened.add(key)
    st.out.append(action)


def filling(spec: SymbolSpec) -> int:
    """The ``ORDER_FILLING_*`` code the symbol accepts for a market deal."""
    return choose_filling(spec.filling_mode, getattr(spec, "trade_exemode", EXEMODE_MARKET))


def spec_or_skip(st: PlanState, symbol: str) -> SymbolSpec | Skip | None:
    """The slave symbol's spec; Skip when the slave does not offer the symbol; None when
    its spec is not loaded yet (try again next pass)."""
    spec = st.ctx.specs.get(symbol)
    if spec is not None:
        return spec
    avail = st.ctx.available_symbols
    if avail is not None and symbol not in avail:
        return Skip(f"symbol '{symbol}' not available on slave")
    return None  # not loaded yet: try again next pass


def scaled_target(link: Link, master_volume: float, spec: SymbolSpec, max_lot: float | None) -> float | None:
    """Slave volume that keeps the at-open ratio; 0 when under the minimum; None if unknown."""
    if link.master_volume <= 0 or link.slave_volume <= 0:
        return None
    vol = normalize_volume(link.slave_volume * master_volume / link.master_volume, spec, max_lot=max_lot)
    return 0.0 if isinstance(vol, Skip) else vol


def size(st: PlanState, view: MasterView, item: Position | PendingOrder, spec: SymbolSpec) -> SizedCopy | Skip | None:
    """The raw volume of a new copy of ``item`` (invariant 7: exposure, not lots).

    None = cannot decide yet: the master has not published its contract size, or the
    deposit-currency rate has no quote yet. Never falls back to raw lots or balances.
    """
    cfg = st.cfg
    mode = cfg.sizing.mode
    if mode in EXPOSURE_MODES and not item.contract_size > 0:
        return None
    conversion = None
    mm, sm = view.metrics, st.ctx.slave_metrics
    if mode in RATIO_MODES and mm is not None and sm is not None and mm.currency.upper() != sm.currency.upper():
        found = st.ctx.conversions.get(mm.currency.upper())
        if found is None or isinstance(found, Skip):
            return found
        conversion = found
    sl_level = item.tp if cfg.reverse else item.sl
    return size_copy(item.volume, cfg.sizing, master_contract_size=item.contract_size, master_metrics=mm,
                     slave_metrics=sm, sl_distance_price=abs(item.price_open - sl_level) if sl_level else None,
                     slave_spec=spec, conversion=conversion)


def sizing_fields(sized: SizedCopy | None, item: Position | PendingOrder) -> dict[str, Any]:
    """How a new copy was sized, as ``Open`` / ``PlacePending`` fields (empty: not sized here)."""
    if sized is None:
        return {}
    conv = sized.conversion
    return {"master_contract_size": item.contract_size if sized.contract_factor else 0.0,
            "contract_factor": sized.contract_factor, "fx_symbol": conv.symbol if conv else "",
            "fx_rate": conv.rate if conv else 0.0}


def market_for(st: PlanState, master_symbol: str, link: Link | None) -> tuple[str, SymbolSpec, Quote] | Skip | None:
    """The slave symbol, its spec and quote for a master symbol (None: not known yet).

    A new copy passes the allow/deny filters and symbol translation; an existing link
    keeps the symbol it was opened on.
    """
    cfg = st.cfg
    if link is None:
        refused = symbol_allowed(master_symbol, allow=cfg.symbols_allow, deny=cfg.symbols_deny,
                                 master_prefix=cfg.master_prefix, master_suffix=cfg.master_suffix)
        if refused:
            return refused
    symbol = link.symbol if link is not None and link.symbol else translate_symbol(master_symbol, cfg, st.ctx.available_symbols)
    if isinstance(symbol, Skip):
        return symbol
    spec = spec_or_skip(st, symbol)
    if spec is None or isinstance(spec, Skip):
        return spec
    quote = st.ctx.quotes.get(symbol)
    if quote is None or quote.bid <= 0 or quote.ask <= 0:
        return None
    return symbol, spec, quote


def open_for(st: PlanState, name: str, view: MasterView, mpos: Position, link: Link | None, purpose: str,
             *, volume: float | None = None, replaces_order: int = 0) -> Open | Skip | None:
    """The market copy of ``mpos`` (None = cannot decide yet, e.g. no quote)."""
    cfg = st.cfg
    market = market_for(st, mpos.symbol, link)
    if market is None or isinstance(market, Skip):
        return market
    symbol, spec, quote = market
    side = link.direction if link is not None and link.direction else (opposite(mpos.side) if cfg.reverse else mpos.side)
    refused = trade_mode_refusal(spec, side)
    if refused:
        return refused
    if st.netting and link is None:
        manual = manual_netting_position(st, symbol)
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
        target = scaled_target(link, mpos.volume, spec, cfg.max_lot) if link is not None else None
        if target is not None:
            volume = target
        else:
            raw = size(st, view, mpos, spec)
            if raw is None or isinstance(raw, Skip):
                return raw
            sized = raw
            normalized = normalize_volume(raw.volume, spec, max_lot=cfg.max_lot)
            if isinstance(normalized, Skip):
                return normalized
            volume = normalized
        if volume <= 0:
            return Skip(f"volume below minimum {spec.volume_min:g} for {symbol}")
    if link is None and cfg.max_open_positions is not None and st.open_count >= cfg.max_open_positions:
        return Skip(f"max_open_positions {cfg.max_open_positions} reached")
    ref_price = mpos.price_open if purpose != "add" else (mpos.price_current or 0.0)  # "restore": the entry
    if ref_price > 0 and not within_tolerance(side, quote, ref_price, spec.point, cfg.slippage_tolerance):
        pts = slippage_points(side, quote, ref_price, spec.point)
        return Skip(f"slippage {pts:.1f} points > tolerance {cfg.slippage_tolerance} "
                    f"({symbol} {side} at {entry:.{spec.digits}f}, master {ref_price:.{spec.digits}f})")
    ratio = sized.volume / mpos.volume if sized is not None and mpos.volume > 0 else 0.0
    return Open(name, mpos.identifier, symbol, side, volume, sl, tp, filling(spec), cfg.slippage_tolerance,
                cfg.magic, make_tag(name, mpos.identifier), ref_price, entry, mpos.symbol, mpos.side,
                mpos.volume if link is None else link.master_volume or mpos.volume, purpose, replaces_order,
                lot_ratio=ratio, **sizing_fields(sized, mpos), stops_note=stops_note)


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


def manual_netting_position(st: PlanState, symbol: str) -> Position | None:
    """The slave's netting position on ``symbol`` when copyhub does not own it (a manual trade)."""
    owned = {lk.slave_ticket for lk in st.links.values() if lk.live and lk.slave_ticket}
    for p in st.ctx.slave_positions:
        if p.symbol == symbol and parse_tag(p.comment) is None and p.identifier not in owned:
            return p
    return None


def close_positions(st: PlanState, link_key: LinkKey, positions: Iterable[Position], reason: str, *,
                    ends_link: bool = True) -> None:
    """Close each of ``positions`` in full, booked to the link ``link_key``."""
    for p in positions:
        spec = st.ctx.specs.get(p.symbol)
        st.out.append(Close(
          link_key[0], link_key[1], p.ticket, p.symbol, p.side, p.volume, p.volume, reason,
          type_filling=filling(spec) if spec else 1, deviation=st.cfg.slippage_tolerance,
          magic=st.cfg.magic, comment=make_tag(*link_key), ends_link=ends_link,
      ))


def sync_sltp(st: PlanState, link: Link, master: Position, p: Position, spec: SymbolSpec) -> None:
    """Move the copy ``p``'s SL/TP to the master's (translated) levels when they differ by
    more than half a point; nothing without a quote."""
    quote = st.ctx.quotes.get(p.symbol)
    if quote is None:
        return
    sl, tp = desired_sltp(st, master, p, spec, quote)
    half = spec.point / 2
    if abs(sl - p.sl) > half or abs(tp - p.tp) > half:
        st.out.append(ModifySLTP(link.master_name, link.master_ticket, p.ticket, p.symbol, sl, tp))


def desired_sltp(st: PlanState, master: Position, p: Position, spec: SymbolSpec, quote: Quote) -> tuple[float, float]:
    """Target levels, without churn: an unplaceable target keeps a valid current level."""
    raw_sl, raw_tp = raw_sltp(master, slave_side=p.side, slave_entry_price=p.price_open, slave_spec=spec,
                              mode=st.cfg.sltp_mode, reverse=st.cfg.reverse)
    half = spec.point / 2
    sl, tp = p.sl, p.tp
    if abs(raw_sl - p.sl) > half:
        if level_valid("sl", raw_sl, p.side, quote, spec):
            sl = raw_sl
        elif not (p.sl and level_valid("sl", p.sl, p.side, quote, spec)):
            sl = translate_sltp(master, slave_side=p.side, slave_entry_price=p.price_open, slave_spec=spec, quote=quote,
                                mode=st.cfg.sltp_mode, reverse=st.cfg.reverse)[0]
    if abs(raw_tp - p.tp) > half:
        if level_valid("tp", raw_tp, p.side, quote, spec):
            tp = raw_tp
        elif not level_valid("tp", p.tp, p.side, quote, spec):
            tp = 0.0
    return sl, tp


def own_close_reason(st: PlanState, link: Link, view: MasterView | None, closure: Closure) -> str:
    """The record of a copy the copier closed itself but whose result it never saw (a lost
    reply, a crash): the reason its close was sent for, when the master state shows it."""
    if view is None:
        return f"closed by copyhub (deal #{closure.deal})"
    mpos = view.state.positions.get(link.master_ticket)
    if mpos is None:
        return "master closed"
    if link.master_side and mpos.side != link.master_side:
        return "closed by copyhub: master reversed (netting master)"
    spec = st.ctx.specs.get(link.symbol)
    if spec is not None and scaled_target(link, mpos.volume, spec, st.cfg.max_lot) == 0.0:
        return "closed by copyhub: master partial close (copy below minimum: closed)"
    return f"closed by copyhub (deal #{closure.deal})"
