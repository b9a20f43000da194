"""The trade server: request validation, execution and server-side triggers.

``plan(acct, request, now)`` validates a request and returns a ``Plan`` (what the account
would look like afterwards plus an ``apply`` callable) or raises ``Reject(retcode)``.
``order_send`` applies the plan, ``order_check`` only reports it, so both share one set
of rules. ``on_quotes`` fires SL/TP, pending orders and stop-out after prices move.
"""
from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from . import constants as C
from . import money as M
from .market import Feed, round_price
from .records import TradeRequest
from .state import AccountState, Deal, Ord, Pos, is_buy
from .world import SymbolDef

EPS = 1e-9
LIMIT_TYPES = (C.ORDER_TYPE_BUY_LIMIT, C.ORDER_TYPE_SELL_LIMIT)
STOP_TYPES = (C.ORDER_TYPE_BUY_STOP, C.ORDER_TYPE_SELL_STOP)
STOP_LIMIT_TYPES = (C.ORDER_TYPE_BUY_STOP_LIMIT, C.ORDER_TYPE_SELL_STOP_LIMIT)
PENDING_TYPES = LIMIT_TYPES + STOP_TYPES + STOP_LIMIT_TYPES
ORDER_MODE_BIT = {**{t: 2 for t in LIMIT_TYPES}, **{t: 4 for t in STOP_TYPES}, **{t: 8 for t in STOP_LIMIT_TYPES}}
EXPIRATION_BIT = {C.ORDER_TIME_GTC: 1, C.ORDER_TIME_DAY: 2, C.ORDER_TIME_SPECIFIED: 4, C.ORDER_TIME_SPECIFIED_DAY: 8}
ACTIVE_STATES = (C.ORDER_STATE_PLACED, C.ORDER_STATE_STARTED, C.ORDER_STATE_PARTIAL)


class Reject(Exception):
    """A broker rejection: becomes an OrderSendResult with this retcode."""

    def __init__(self, retcode: int) -> None:
        super().__init__(retcode)
        self.retcode = retcode


@dataclass
class Outcome:
    retcode: int
    deal: int = 0
    order: int = 0
    volume: float = 0.0
    price: float = 0.0


@dataclass
class Plan:
    margin_after: float
    realized: float  # change of balance the request would cause
    apply: Callable[[], Outcome]
    commission: float = 0.0  # part of ``realized`` that also reduces equity


# Who sent a request, as the terminal records it on the deals, orders and positions it makes:
# DEAL_REASON_/ORDER_REASON_/POSITION_REASON_ CLIENT=0, MOBILE=1, WEB=2, EXPERT=3 share values.
SOURCE_REASONS = (C.DEAL_REASON_CLIENT, C.DEAL_REASON_MOBILE, C.DEAL_REASON_WEB, C.DEAL_REASON_EXPERT)


class _Ctx:
    """Per-request view: account, its broker, the server time now and who sent it."""

    def __init__(self, acct: AccountState, now_utc_ms: int, reason: int = C.DEAL_REASON_EXPERT) -> None:
        if reason not in SOURCE_REASONS:
            raise ValueError(f"a request comes from CLIENT/MOBILE/WEB/EXPERT (0..3), got reason {reason!r}")
        self.acct = acct
        self.broker = acct.broker
        self.now_ms = acct.broker.clock.to_server(now_utc_ms)  # server ms
        self.reason = reason  # DEAL_REASON_* (== ORDER_REASON_*, POSITION_REASON_* for 0..3)

    def symbol(self, name: str) -> tuple[SymbolDef, Feed]:
        sym = self.broker.d.symbols.get(name)
        if sym is None:
            raise Reject(C.TRADE_RETCODE_INVALID)
        return sym, self.broker.feeds[name]

    def position(self, ticket: int) -> Pos:
        pos = self.acct.positions.get(ticket)
        if pos is None:
            gone = ticket in self.acct.closed_ids
            raise Reject(C.TRADE_RETCODE_POSITION_CLOSED if gone else C.TRADE_RETCODE_INVALID)
        return pos

    def net_position(self, symbol: str) -> Pos | None:
        return next((p for p in self.acct.positions.values() if p.symbol == symbol), None)


# --- validation helpers ------------------------------------------------------------------
def _check_volume(sym: SymbolDef, v: float) -> None:
    if v <= 0 or v < sym.volume_min - EPS or v > sym.volume_max + EPS:
        raise Reject(C.TRADE_RETCODE_INVALID_VOLUME)
    steps = v / sym.volume_step
    if abs(steps - round(steps)) > 1e-6:
        raise Reject(C.TRADE_RETCODE_INVALID_VOLUME)


def _check_filling(sym: SymbolDef, filling: int, order_type: int, pending: bool) -> None:
    if filling == C.ORDER_FILLING_FOK:
        ok = bool(sym.filling_mode & 1)
    elif filling == C.ORDER_FILLING_IOC:
        ok = bool(sym.filling_mode & 2)
    elif filling == C.ORDER_FILLING_BOC:
        ok = bool(sym.filling_mode & 4) and order_type in LIMIT_TYPES
    elif filling == C.ORDER_FILLING_RETURN:
        ok = pending or sym.trade_exemode in (C.SYMBOL_TRADE_EXECUTION_MARKET, C.SYMBOL_TRADE_EXECUTION_EXCHANGE)
    else:
        ok = False
    if not ok:
        raise Reject(C.TRADE_RETCODE_INVALID_FILL)


def _check_trade_mode(sym: SymbolDef, opens_buy: bool | None) -> None:
    """``opens_buy``: None when the request only reduces exposure."""
    mode = sym.trade_mode
    if mode == C.SYMBOL_TRADE_MODE_DISABLED:
        raise Reject(C.TRADE_RETCODE_TRADE_DISABLED)
    if opens_buy is None:
        return
    if mode == C.SYMBOL_TRADE_MODE_CLOSEONLY:
        raise Reject(C.TRADE_RETCODE_CLOSE_ONLY)
    if mode == C.SYMBOL_TRADE_MODE_LONGONLY and not opens_buy:
        raise Reject(C.TRADE_RETCODE_LONG_ONLY)
    if mode == C.SYMBOL_TRADE_MODE_SHORTONLY and opens_buy:
        raise Reject(C.TRADE_RETCODE_SHORT_ONLY)


def _check_session(feed: Feed, now_ms: int) -> None:
    if not feed.is_open(now_ms):
        raise Reject(C.TRADE_RETCODE_MARKET_CLOSED)


def _norm(sym: SymbolDef, price: float) -> float:
    return round_price(price, sym.tick_size, sym.digits) if price else 0.0


def _check_stops(sym: SymbolDef, buy: bool, ref_bid: float, ref_ask: float, sl: float, tp: float) -> None:
    """SL/TP vs the closing-side price (bid for BUY, ask for SELL) and the stops level."""
    if sl < 0 or tp < 0:
        raise Reject(C.TRADE_RETCODE_INVALID_STOPS)
    lvl = sym.stops_level * sym.point - EPS
    if buy:
        bad = (sl and not (sl < ref_bid and ref_bid - sl >= lvl)) or (tp and not (tp > ref_bid and tp - ref_bid >= lvl))
    else:
        bad = (sl and not (sl > ref_ask and sl - ref_ask >= lvl)) or (tp and not (tp < ref_ask and ref_ask - tp >= lvl))
    if bad:
        raise Reject(C.TRADE_RETCODE_INVALID_STOPS)


def _frozen(sym: SymbolDef, market: float, levels: tuple[float, ...]) -> bool:
    if not sym.freeze_level:
        return False
    fz = sym.freeze_level * sym.point - EPS
    return any(lv and abs(market - lv) < fz for lv in levels)


def _check_pending_price(sym: SymbolDef, feed: Feed, otype: int, price: float, stoplimit: float) -> None:
    lvl = sym.stops_level * sym.point - EPS
    bid, ask = feed.bid, feed.ask
    if price <= 0:
        raise Reject(C.TRADE_RETCODE_INVALID_PRICE)
    ok = {
        C.ORDER_TYPE_BUY_LIMIT: price < ask and ask - price >= lvl,
        C.ORDER_TYPE_SELL_LIMIT: price > bid and price - bid >= lvl,
        C.ORDER_TYPE_BUY_STOP: price > ask and price - ask >= lvl,
        C.ORDER_TYPE_SELL_STOP: price < bid and bid - price >= lvl,
        C.ORDER_TYPE_BUY_STOP_LIMIT: price > ask and price - ask >= lvl and 0 < stoplimit < price,
        C.ORDER_TYPE_SELL_STOP_LIMIT: price < bid and bid - price >= lvl and stoplimit > price,
    }[otype]
    if not ok:
        raise Reject(C.TRADE_RETCODE_INVALID_PRICE)


def _expiration(sym: SymbolDef, type_time: int, expiration: int, now_ms: int) -> int:
    """Validated expiration as server seconds (0 = GTC)."""
    bit = EXPIRATION_BIT.get(type_time)
    if bit is None or not sym.expiration_mode & bit:
        raise Reject(C.TRADE_RETCODE_INVALID_EXPIRATION)
    now_s = now_ms // 1000
    if type_time == C.ORDER_TIME_GTC:
        return 0
    if type_time == C.ORDER_TIME_DAY:
        return (now_s // 86400 + 1) * 86400
    if type_time == C.ORDER_TIME_SPECIFIED:
        if expiration <= now_s:
            raise Reject(C.TRADE_RETCODE_INVALID_EXPIRATION)
        return expiration
    end = (expiration // 86400 + 1) * 86400  # SPECIFIED_DAY: end of that server day
    if end <= now_s:
        raise Reject(C.TRADE_RETCODE_INVALID_EXPIRATION)
    return end


def _check_account(acct: AccountState) -> None:
    if not acct.d.trade_allowed:
        raise Reject(C.TRADE_RETCODE_TRADE_DISABLED)
    if not acct.d.trade_expert:
        raise Reject(C.TRADE_RETCODE_SERVER_DISABLES_AT)


def _check_volume_limit(acct: AccountState, sym: SymbolDef, extra: float) -> None:
    if not sym.volume_limit:
        return
    total = sum(p.volume for p in acct.positions.values() if p.symbol == sym.name)
    total += sum(o.volume_current for o in acct.orders.values() if o.symbol == sym.name)
    if total + extra > sym.volume_limit + EPS:
        raise Reject(C.TRADE_RETCODE_LIMIT_VOLUME)


# --- execution primitives ----------------------------------------------------------------
def _add_deal(acct: AccountState, *, order: int, dtype: int, entry: int, pos_id: int, reason: int,
              volume: float, price: float, profit: float, commission: float, swap: float,
              symbol: str, comment: str, magic: int, now_ms: int) -> Deal:
    d = Deal(acct.broker.deal_ticket(), order, now_ms, dtype, entry, magic, pos_id, reason, volume,
             price, commission, swap, profit, 0.0, symbol, comment)
    acct.hist_deals.append(d)
    acct.balance = M.money(acct.balance + profit + commission + swap)
    return d


def _commission(sym: SymbolDef, volume: float) -> float:
    return M.money(-sym.commission_per_lot * volume)  # M.money: a zero charge is 0.0, not -0.0


def _hist_order(acct: AccountState, *, ticket: int, symbol: str, otype: int, volume: float, price_req: float,
                price_exec: float, sl: float, tp: float, filling: int, type_time: int, magic: int,
                comment: str, reason: int, position_id: int, now_ms: int, position_by_id: int = 0) -> Ord:
    o = Ord(ticket, symbol, otype, volume, 0.0, price_req or price_exec, 0.0, sl, tp, type_time, 0,
            filling, C.ORDER_STATE_FILLED, magic, comment, reason, position_id, position_by_id, now_ms,
            now_ms, price_exec)
    acct.hist_orders.append(o)
    return o


def close_part(acct: AccountState, pos: Pos, volume: float, price: float, *, order: int, reason: int,
               comment: str, magic: int, now_ms: int, entry: int = C.DEAL_ENTRY_OUT) -> Deal:
    """Close ``volume`` of ``pos`` at ``price``: one OUT deal, balance updated."""
    sym = acct.broker.d.symbols[pos.symbol]
    buy = pos.type == C.POSITION_TYPE_BUY
    profit = M.money(M.profit(sym, buy, volume, pos.price_open, price, acct.d.currency, acct.broker.rate))
    share = min(1.0, volume / pos.volume)
    swap = M.money(pos.swap * share)
    pos.swap = M.money(pos.swap - swap)
    deal = _add_deal(acct, order=order, dtype=C.DEAL_TYPE_SELL if buy else C.DEAL_TYPE_BUY, entry=entry,
                     pos_id=pos.identifier, reason=reason, volume=volume, price=price, profit=profit,
                     commission=_commission(sym, volume), swap=swap, symbol=pos.symbol, comment=comment,
                     magic=magic, now_ms=now_ms)
    pos.volume = round(pos.volume - volume, 8)
    if pos.volume <= EPS:
        del acct.positions[pos.ticket]
        acct.closed_ids.add(pos.identifier)
    else:
        pos.time_update_msc = now_ms
    return deal


def execute_market(acct: AccountState, sym: SymbolDef, *, order: int, buy: bool, volume: float, price: float,
                   sl: float, tp: float, magic: int, comment: str, reason: int, now_ms: int) -> tuple[Deal, int]:
    """Fill a market deal: hedging opens a position; netting adds/reduces/reverses.

    Returns the deal and the identifier of the position it belongs to.
    """
    ptype = C.POSITION_TYPE_BUY if buy else C.POSITION_TYPE_SELL
    dtype = C.DEAL_TYPE_BUY if buy else C.DEAL_TYPE_SELL
    existing = None if acct.hedging else next((p for p in acct.positions.values() if p.symbol == sym.name), None)
    if existing is None:
        acct.positions[order] = Pos(order, order, sym.name, ptype, volume, price, sl, tp, magic, comment,
                                    reason, now_ms, now_ms)
        deal = _add_deal(acct, order=order, dtype=dtype, entry=C.DEAL_ENTRY_IN, pos_id=order, reason=reason,
                         volume=volume, price=price, profit=0.0, commission=_commission(sym, volume), swap=0.0,
                         symbol=sym.name, comment=comment, magic=magic, now_ms=now_ms)
        return deal, order
    pos = existing
    if pos.type == ptype:  # netting add: volume-weighted average price
        total = round(pos.volume + volume, 8)
        pos.price_open = (pos.price_open * pos.volume + price * volume) / total
        pos.volume = total
        pos.time_update_msc = now_ms
        if sl or tp:
            pos.sl, pos.tp = sl, tp
        deal = _add_deal(acct, order=order, dtype=dtype, entry=C.DEAL_ENTRY_IN, pos_id=pos.identifier,
                         reason=reason, volume=volume, price=price, profit=0.0,
                         commission=_commission(sym, volume), swap=0.0, symbol=sym.name, comment=comment,
                         magic=magic, now_ms=now_ms)
        return deal, pos.identifier
    if volume <= pos.volume + EPS:  # netting reduce / close
        return close_part(acct, pos, min(volume, pos.volume), price, order=order, reason=reason,
                          comment=comment, magic=magic, now_ms=now_ms), pos.identifier
    # netting reversal: one INOUT deal; identifier stays, ticket becomes this order's
    closed = pos.volume
    profit = M.money(M.profit(sym, pos.type == C.POSITION_TYPE_BUY, closed, pos.price_open, price,
                              acct.d.currency, acct.broker.rate))
    deal = _add_deal(acct, order=order, dtype=dtype, entry=C.DEAL_ENTRY_INOUT, pos_id=pos.identifier,
                     reason=reason, volume=volume, price=price, profit=profit,
                     commission=_commission(sym, volume), swap=M.money(pos.swap), symbol=sym.name,
                     comment=comment, magic=magic, now_ms=now_ms)
    del acct.positions[pos.ticket]
    pos.ticket = order
    pos.type = ptype
    pos.volume = round(volume - closed, 8)
    pos.price_open = price
    pos.sl, pos.tp = sl, tp
    pos.swap = 0.0
    pos.time_msc = pos.time_update_msc = now_ms
    pos.magic, pos.comment, pos.reason = magic, comment, reason
    acct.positions[order] = pos
    return deal, pos.identifier


# --- planners per action -----------------------------------------------------------------
def _plan_deal(ctx: _Ctx, req: TradeRequest) -> Plan:
    acct = ctx.acct
    sym, feed = ctx.symbol(req.symbol)
    if req.type not in (C.ORDER_TYPE_BUY, C.ORDER_TYPE_SELL):
        raise Reject(C.TRADE_RETCODE_INVALID_ORDER)
    _check_volume(sym, req.volume)
    if sym.trade_mode == C.SYMBOL_TRADE_MODE_DISABLED:
        raise Reject(C.TRADE_RETCODE_TRADE_DISABLED)
    _check_session(feed, ctx.now_ms)
    _check_filling(sym, req.type_filling, req.type, pending=False)
    buy = req.type == C.ORDER_TYPE_BUY
    volume = req.volume
    pos: Pos | None = None
    if acct.hedging:
        if req.position:
            pos = ctx.position(req.position)
            if pos.symbol != sym.name or (pos.type == C.POSITION_TYPE_BUY) == buy:
                raise Reject(C.TRADE_RETCODE_INVALID)
            if volume > pos.volume + EPS:
                raise Reject(C.TRADE_RETCODE_INVALID_CLOSE_VOLUME)
            if acct.d.fifo_close:
                oldest = min((p for p in acct.positions.values() if p.symbol == sym.name), key=lambda p: p.time_msc)
                if oldest is not pos:
                    raise Reject(C.TRADE_RETCODE_FIFO_CLOSE)
            effect = "close"
        else:
            effect = "open"
    else:
        pos = ctx.net_position(sym.name)
        if pos is None or (pos.type == C.POSITION_TYPE_BUY) == buy:
            effect = "open"
        elif volume <= pos.volume + EPS:
            effect = "close"
        else:
            effect = "reverse"
    _check_trade_mode(sym, None if effect == "close" else buy)
    market = feed.ask if buy else feed.bid
    if sym.trade_exemode in (C.SYMBOL_TRADE_EXECUTION_REQUEST, C.SYMBOL_TRADE_EXECUTION_INSTANT):
        if req.price <= 0:
            raise Reject(C.TRADE_RETCODE_INVALID_PRICE)
        if abs(req.price - market) > req.deviation * sym.point + EPS:
            raise Reject(C.TRADE_RETCODE_REQUOTE)
    if pos is not None and effect == "close" and _frozen(sym, feed.bid if pos.type == 0 else feed.ask, (pos.sl, pos.tp)):
        raise Reject(C.TRADE_RETCODE_FROZEN)
    sl, tp = _norm(sym, req.sl), _norm(sym, req.tp)
    if effect != "close" and (sl or tp):
        _check_stops(sym, buy, feed.bid, feed.ask, sl, tp)
    if effect != "close":
        _check_volume_limit(acct, sym, volume if effect == "open" else volume - 2 * pos.volume)

    _, equity, margin, _, _ = acct.metrics()
    lev, ccy, rate = acct.d.leverage, acct.d.currency, acct.broker.rate
    commission = _commission(sym, volume)
    if effect == "open":
        if pos is None:
            margin_after = margin + M.margin(sym, volume, market, lev, ccy, rate)
        else:
            avg = (pos.price_open * pos.volume + market * volume) / (pos.volume + volume)
            margin_after = margin - acct.pos_margin(pos) + M.margin(sym, pos.volume + volume, avg, lev, ccy, rate)
        realized = commission
    elif effect == "close":
        margin_after = margin - acct.pos_margin(pos) * min(1.0, volume / pos.volume)
        realized = commission + M.profit(sym, pos.type == 0, volume, pos.price_open, market, ccy, rate)
    else:
        margin_after = margin - acct.pos_margin(pos) + M.margin(sym, volume - pos.volume, market, lev, ccy, rate)
        realized = commission + M.profit(sym, pos.type == 0, pos.volume, pos.price_open, market, ccy, rate)
    margin_after = M.money(margin_after)
    if effect != "close" and equity + commission - margin_after < 0:
        raise Reject(C.TRADE_RETCODE_NO_MONEY)

    def apply() -> Outcome:
        ticket = acct.broker.order_ticket()
        if acct.hedging and pos is not None:
            deal = close_part(acct, pos, volume, market, order=ticket, reason=ctx.reason,
                              comment=req.comment, magic=req.magic, now_ms=ctx.now_ms)
            ident = pos.identifier
        else:
            deal, ident = execute_market(acct, sym, order=ticket, buy=buy, volume=volume, price=market, sl=sl,
                                         tp=tp, magic=req.magic, comment=req.comment,
                                         reason=ctx.reason, now_ms=ctx.now_ms)
        _hist_order(acct, ticket=ticket, symbol=sym.name, otype=req.type, volume=volume, price_req=req.price,
                    price_exec=market, sl=sl, tp=tp, filling=req.type_filling, type_time=req.type_time,
                    magic=req.magic, comment=req.comment, reason=ctx.reason, position_id=ident,
                    now_ms=ctx.now_ms)
        return Outcome(C.TRADE_RETCODE_DONE, deal.ticket, ticket, volume, market)

    return Plan(margin_after, realized, apply, commission)


def _plan_sltp(ctx: _Ctx, req: TradeRequest) -> Plan:
    acct = ctx.acct
    if not acct.hedging and req.symbol:  # netting: the symbol identifies the position
        pos = ctx.net_position(req.symbol)
        if pos is None:
            raise Reject(C.TRADE_RETCODE_INVALID)
    elif req.position:
        pos = ctx.position(req.position)
    else:
        raise Reject(C.TRADE_RETCODE_INVALID)
    if req.symbol and req.symbol != pos.symbol:
        raise Reject(C.TRADE_RETCODE_INVALID)
    sym, feed = ctx.symbol(pos.symbol)
    sl, tp = _norm(sym, req.sl), _norm(sym, req.tp)
    if sl == pos.sl and tp == pos.tp:
        raise Reject(C.TRADE_RETCODE_NO_CHANGES)
    if sym.trade_mode == C.SYMBOL_TRADE_MODE_DISABLED:
        raise Reject(C.TRADE_RETCODE_TRADE_DISABLED)
    _check_session(feed, ctx.now_ms)
    buy = pos.type == C.POSITION_TYPE_BUY
    _check_stops(sym, buy, feed.bid, feed.ask, sl, tp)
    if _frozen(sym, feed.bid if buy else feed.ask, (pos.sl, pos.tp)):
        raise Reject(C.TRADE_RETCODE_FROZEN)
    _, _, margin, _, _ = acct.metrics()

    def apply() -> Outcome:
        pos.sl, pos.tp = sl, tp
        pos.time_update_msc = ctx.now_ms
        return Outcome(C.TRADE_RETCODE_DONE)

    return Plan(margin, 0.0, apply)


def _validate_pending(ctx: _Ctx, sym: SymbolDef, feed: Feed, otype: int, price: float, stoplimit: float,
                      sl: float, tp: float) -> None:
    _check_pending_price(sym, feed, otype, price, stoplimit)
    entry = stoplimit if otype in STOP_LIMIT_TYPES else price
    _check_stops(sym, is_buy(otype), entry, entry, sl, tp)


def _plan_pending(ctx: _Ctx, req: TradeRequest) -> Plan:
    acct = ctx.acct
    sym, feed = ctx.symbol(req.symbol)
    if req.type not in PENDING_TYPES or not sym.order_mode & ORDER_MODE_BIT[req.type]:
        raise Reject(C.TRADE_RETCODE_INVALID_ORDER)
    _check_volume(sym, req.volume)
    _check_trade_mode(sym, is_buy(req.type))
    _check_session(feed, ctx.now_ms)
    _check_filling(sym, req.type_filling, req.type, pending=True)
    price, stoplimit = _norm(sym, req.price), _norm(sym, req.stoplimit)
    sl, tp = _norm(sym, req.sl), _norm(sym, req.tp)
    _validate_pending(ctx, sym, feed, req.type, price, stoplimit, sl, tp)
    expiration = _expiration(sym, req.type_time, req.expiration, ctx.now_ms)
    if acct.d.limit_orders and len(acct.orders) >= acct.d.limit_orders:
        raise Reject(C.TRADE_RETCODE_LIMIT_ORDERS)
    _check_volume_limit(acct, sym, req.volume)
    _, _, margin, _, _ = acct.metrics()

    def apply() -> Outcome:
        ticket = acct.broker.order_ticket()
        acct.orders[ticket] = Ord(
            ticket, sym.name, req.type, req.volume, req.volume, price,
            stoplimit if req.type in STOP_LIMIT_TYPES else 0.0, sl, tp, req.type_time, expiration,
            req.type_filling, C.ORDER_STATE_PLACED, req.magic, req.comment, ctx.reason, 0, 0,
            ctx.now_ms,
        )
        return Outcome(C.TRADE_RETCODE_DONE, 0, ticket, req.volume, price)

    return Plan(margin, 0.0, apply)


def _pending_order(ctx: _Ctx, ticket: int) -> Ord:
    o = ctx.acct.orders.get(ticket)
    if o is None:
        raise Reject(C.TRADE_RETCODE_INVALID)
    return o


def _plan_modify(ctx: _Ctx, req: TradeRequest) -> Plan:
    o = _pending_order(ctx, req.order)
    sym, feed = ctx.symbol(o.symbol)
    price, stoplimit = _norm(sym, req.price), _norm(sym, req.stoplimit)
    if o.type not in STOP_LIMIT_TYPES:
        stoplimit = 0.0
    sl, tp = _norm(sym, req.sl), _norm(sym, req.tp)
    expiration = _expiration(sym, req.type_time, req.expiration, ctx.now_ms)
    if (price, stoplimit, sl, tp, req.type_time, expiration) == (
            o.price_open, o.price_stoplimit, o.sl, o.tp, o.type_time, o.time_expiration):
        raise Reject(C.TRADE_RETCODE_NO_CHANGES)
    _check_session(feed, ctx.now_ms)
    if _frozen(sym, feed.ask if is_buy(o.type) else feed.bid, (o.price_open,)):
        raise Reject(C.TRADE_RETCODE_FROZEN)
    _validate_pending(ctx, sym, feed, o.type, price, stoplimit, sl, tp)
    _, _, margin, _, _ = ctx.acct.metrics()

    def apply() -> Outcome:
        o.price_open, o.price_stoplimit, o.sl, o.tp = price, stoplimit, sl, tp
        o.type_time, o.time_expiration = req.type_time, expiration
        return Outcome(C.TRADE_RETCODE_DONE, 0, o.ticket, o.volume_current, price)

    return Plan(margin, 0.0, apply)


def _plan_remove(ctx: _Ctx, req: TradeRequest) -> Plan:
    o = _pending_order(ctx, req.order)
    sym, feed = ctx.symbol(o.symbol)
    _check_session(feed, ctx.now_ms)
    if _frozen(sym, feed.ask if is_buy(o.type) else feed.bid, (o.price_open,)):
        raise Reject(C.TRADE_RETCODE_FROZEN)
    _, _, margin, _, _ = ctx.acct.metrics()

    def apply() -> Outcome:
        finish_order(ctx.acct, o, C.ORDER_STATE_CANCELED, ctx.now_ms)
        return Outcome(C.TRADE_RETCODE_DONE, 0, o.ticket, o.volume_initial, o.price_open)

    return Plan(margin, 0.0, apply)


def _plan_close_by(ctx: _Ctx, req: TradeRequest) -> Plan:
    acct = ctx.acct
    if not acct.hedging:
        raise Reject(C.TRADE_RETCODE_INVALID_ORDER)
    a = ctx.position(req.position)
    b = ctx.position(req.position_by)
    if a is b or a.symbol != b.symbol or a.type == b.type or (req.symbol and req.symbol != a.symbol):
        raise Reject(C.TRADE_RETCODE_INVALID)
    sym, feed = ctx.symbol(a.symbol)
    if not sym.order_mode & 64:
        raise Reject(C.TRADE_RETCODE_INVALID_ORDER)
    if sym.trade_mode == C.SYMBOL_TRADE_MODE_DISABLED:
        raise Reject(C.TRADE_RETCODE_TRADE_DISABLED)
    _check_session(feed, ctx.now_ms)
    volume = min(a.volume, b.volume)
    price = b.price_open
    _, _, margin, _, _ = acct.metrics()
    margin_after = M.money(margin - acct.pos_margin(a) * volume / a.volume - acct.pos_margin(b) * volume / b.volume)
    commission = 2 * _commission(sym, volume)
    realized = commission + M.profit(sym, a.type == 0, volume, a.price_open, price, acct.d.currency, acct.broker.rate)

    def apply() -> Outcome:
        ticket = acct.broker.order_ticket()
        comment = req.comment or f"#{a.ticket} by #{b.ticket}"
        first = close_part(acct, a, volume, price, order=ticket, reason=ctx.reason, comment=comment,
                           magic=req.magic, now_ms=ctx.now_ms, entry=C.DEAL_ENTRY_OUT_BY)
        close_part(acct, b, volume, price, order=ticket, reason=ctx.reason, comment=comment,
                   magic=req.magic, now_ms=ctx.now_ms, entry=C.DEAL_ENTRY_OUT_BY)
        _hist_order(acct, ticket=ticket, symbol=sym.name, otype=C.ORDER_TYPE_CLOSE_BY, volume=volume,
                    price_req=0.0, price_exec=price, sl=0.0, tp=0.0, filling=req.type_filling,
                    type_time=req.type_time, magic=req.magic, comment=comment, reason=ctx.reason,
                    position_id=a.identifier, position_by_id=b.identifier, now_ms=ctx.now_ms)
        return Outcome(C.TRADE_RETCODE_DONE, first.ticket, ticket, volume, price)

    return Plan(margin_after, realized, apply, commission)


_PLANNERS = {
    C.TRADE_ACTION_DEAL: _plan_deal,
    C.TRADE_ACTION_SLTP: _plan_sltp,
    C.TRADE_ACTION_PENDING: _plan_pending,
    C.TRADE_ACTION_MODIFY: _plan_modify,
    C.TRADE_ACTION_REMOVE: _plan_remove,
    C.TRADE_ACTION_CLOSE_BY: _plan_close_by,
}


def plan(acct: AccountState, req: TradeRequest, now_utc_ms: int, reason: int = C.DEAL_REASON_EXPERT) -> Plan:
    """Validate ``req`` against the account and market; raises ``Reject``.

    ``reason``: who sends it, recorded on every deal/order/position it makes: EXPERT (3) for
    ``order_send`` from an API client, CLIENT/MOBILE/WEB (0/1/2) for a trade by hand."""
    planner = _PLANNERS.get(req.action)
    if planner is None:
        raise Reject(C.TRADE_RETCODE_INVALID)
    _check_account(acct)
    return planner(_Ctx(acct, now_utc_ms, reason), req)


# --- server-side events ------------------------------------------------------------------
def finish_order(acct: AccountState, o: Ord, state: int, now_ms: int) -> None:
    """Move a pending order to history in its final state."""
    o.state = state
    o.time_done_msc = now_ms
    f = acct.broker.feeds[o.symbol]
    o.price_current = f.ask if is_buy(o.type) else f.bid
    acct.orders.pop(o.ticket, None)
    acct.hist_orders.append(o)


def _server_close(acct: AccountState, pos: Pos, price: float, reason: int, comment: str, now_ms: int) -> None:
    ticket = acct.broker.order_ticket()
    volume = pos.volume
    otype = C.ORDER_TYPE_SELL if pos.type == C.POSITION_TYPE_BUY else C.ORDER_TYPE_BUY
    close_part(acct, pos, volume, price, order=ticket, reason=reason, comment=comment, magic=pos.magic, now_ms=now_ms)
    _hist_order(acct, ticket=ticket, symbol=pos.symbol, otype=otype, volume=volume, price_req=price, price_exec=price,
                sl=0.0, tp=0.0, filling=C.ORDER_FILLING_FOK, type_time=C.ORDER_TIME_GTC, magic=pos.magic,
                comment=comment, reason=reason, position_id=pos.identifier, now_ms=now_ms)


def _pending_triggered(o: Ord, bid: float, ask: float) -> bool:
    t, p = o.type, o.price_open
    if t == C.ORDER_TYPE_BUY_LIMIT:
        return ask <= p
    if t == C.ORDER_TYPE_SELL_LIMIT:
        return bid >= p
    if t in (C.ORDER_TYPE_BUY_STOP, C.ORDER_TYPE_BUY_STOP_LIMIT):
        return ask >= p
    return bid <= p  # SELL_STOP, SELL_STOP_LIMIT


def _fill_pending(acct: AccountState, o: Ord, feed: Feed, now_ms: int) -> None:
    sym = feed.sym
    buy = is_buy(o.type)
    price = feed.ask if buy else feed.bid
    _, equity, margin, _, _ = acct.metrics()
    if M.margin(sym, o.volume_current, price, acct.d.leverage, acct.d.currency, acct.broker.rate) > equity - margin:
        finish_order(acct, o, C.ORDER_STATE_REJECTED, now_ms)
        return
    _, ident = execute_market(acct, sym, order=o.ticket, buy=buy, volume=o.volume_current, price=price, sl=o.sl,
                              tp=o.tp, magic=o.magic, comment=o.comment, reason=o.reason, now_ms=now_ms)
    o.position_id = ident
    o.volume_current = 0.0
    finish_order(acct, o, C.ORDER_STATE_FILLED, now_ms)
    o.price_current = price


def on_quotes(acct: AccountState, changed: set[str], now_utc_ms: int) -> None:
    """Fire SL/TP, pending orders and stop-out after ``changed`` symbols ticked."""
    now_ms = acct.broker.clock.to_server(now_utc_ms)
    feeds = acct.broker.feeds
    for pos in list(acct.positions.values()):
        if pos.symbol not in changed or pos.ticket not in acct.positions:
            continue
        f = feeds[pos.symbol]
        digits = f.sym.digits
        if pos.type == C.POSITION_TYPE_BUY:
            px = f.bid
            hit_sl, hit_tp = pos.sl and px <= pos.sl, pos.tp and px >= pos.tp
        else:
            px = f.ask
            hit_sl, hit_tp = pos.sl and px >= pos.sl, pos.tp and px <= pos.tp
        if hit_sl:
            _server_close(acct, pos, px, C.DEAL_REASON_SL, f"[sl {pos.sl:.{digits}f}]", now_ms)
        elif hit_tp:
            _server_close(acct, pos, px, C.DEAL_REASON_TP, f"[tp {pos.tp:.{digits}f}]", now_ms)
    for o in list(acct.orders.values()):
        if o.symbol not in changed or o.ticket not in acct.orders:
            continue
        f = feeds[o.symbol]
        if not _pending_triggered(o, f.bid, f.ask):
            continue
        if o.type in STOP_LIMIT_TYPES:  # becomes a limit order at the stop-limit price
            o.type = C.ORDER_TYPE_BUY_LIMIT if o.type == C.ORDER_TYPE_BUY_STOP_LIMIT else C.ORDER_TYPE_SELL_LIMIT
            o.price_open, o.price_stoplimit = o.price_stoplimit, 0.0
            if not _pending_triggered(o, f.bid, f.ask):
                continue
        _fill_pending(acct, o, f, now_ms)
    if acct.positions:
        stop_out(acct, now_ms)


def stop_out(acct: AccountState, now_ms: int) -> None:
    """Close the worst position while margin level < stop-out level (reason SO)."""
    while acct.positions:
        _, equity, margin, _, level = acct.metrics()
        if margin <= 0 or level >= acct.d.margin_so_so:
            return
        worst = min(acct.positions.values(), key=acct.pos_profit)
        _server_close(acct, worst, acct.close_price(worst), C.DEAL_REASON_SO,
                      f"[so {level:.2f}%/{equity:.2f}/{margin:.2f}]", now_ms)


def expire_orders(acct: AccountState, now_utc_ms: int) -> None:
    now_ms = acct.broker.clock.to_server(now_utc_ms)
    now_s = now_ms // 1000
    for o in list(acct.orders.values()):
        if o.time_expiration and now_s >= o.time_expiration:
            finish_order(acct, o, C.ORDER_STATE_EXPIRED, now_ms)


def rollover(acct: AccountState, ended_weekday: int) -> None:
    """Charge one day's swap (points mode) at server midnight; triple on rollover3days."""
    symbols = acct.broker.d.symbols
    for pos in acct.positions.values():
        sym = symbols[pos.symbol]
        if not sym.sessions[ended_weekday]:
            continue
        points = sym.swap_long if pos.type == C.POSITION_TYPE_BUY else sym.swap_short
        if not points:
            continue
        mult = 3 if ended_weekday == sym.swap_rollover3days else 1
        raw = points * sym.point * sym.contract_size * pos.volume * mult
        if sym.currency_profit != acct.d.currency:
            raw *= acct.broker.rate(sym.currency_profit, acct.d.currency)
        pos.swap = M.money(pos.swap + raw)
