"""Terminal records → copier value types, at the edge of the node.

The copier core never sees MT5 namedtuples; these functions are the only place that
knows both shapes. Bus times are UTC: ``to_utc_ms`` removes the broker's server offset.
"""
from __future__ import annotations

import time
from collections.abc import Callable, Iterable
from typing import Any

from copier.models import AccountMetrics, PendingOrder, Position, Quote, SymbolSpec
from copier.reasons import DealRecord

# MT5 ORDER_TYPE_* values for pending orders (see the reference, §4).
_PENDING_TYPE_NAMES = {2: "BUY_LIMIT", 3: "SELL_LIMIT", 4: "BUY_STOP", 5: "SELL_STOP", 6: "BUY_STOP_LIMIT", 7: "SELL_STOP_LIMIT"}
PENDING_TYPE_CODES = {name: code for code, name in _PENDING_TYPE_NAMES.items()}


def position_from_mt5(p: Any, *, offset_ms: int = 0, contract_size: float = 0.0) -> Position:
    """A TradePosition as a copier Position (times shifted by ``offset_ms`` to UTC).

    ``contract_size``: the symbol's ``trade_contract_size`` (a master publishes it, v2).
    """
    return Position(
        ticket=int(p.ticket),
        identifier=int(p.identifier),
        symbol=str(p.symbol),
        side="BUY" if int(p.type) == 0 else "SELL",
        volume=float(p.volume),
        price_open=float(p.price_open),
        sl=float(p.sl),
        tp=float(p.tp),
        time_msc=int(p.time_msc) - offset_ms,
        time_update_msc=int(p.time_update_msc) - offset_ms,
        magic=int(p.magic),
        comment=str(p.comment),
        price_current=float(p.price_current),
        profit=float(p.profit),
        contract_size=float(contract_size),
    )


TIME_TYPE_NAMES = {0: "GTC", 1: "DAY", 2: "SPECIFIED", 3: "SPECIFIED_DAY"}  # ORDER_TIME_*
TIME_TYPE_CODES = {name: code for code, name in TIME_TYPE_NAMES.items()}
DAY_MS = 86_400_000


def expiration_instant_ms(type_time: int, time_expiration_s: int, time_setup_msc: int) -> int:
    """The instant an order expires, in its server's time (ms); 0 for GTC.

    ORDER_TIME_SPECIFIED: ``time_expiration``. ORDER_TIME_DAY: the end of the server day the
    order was placed in ("till the end of the current trading day"). ORDER_TIME_SPECIFIED_DAY:
    the end of the server day of ``time_expiration`` ("till 23:59:59 of the specified day");
    a ``time_expiration`` already on a midnight is that end. Source: MQL5 docs,
    ENUM_ORDER_TYPE_TIME.
    """
    exp_ms = int(time_expiration_s or 0) * 1000
    if type_time == 2:
        return exp_ms
    if type_time == 1:
        return exp_ms or (int(time_setup_msc) // DAY_MS + 1) * DAY_MS
    if type_time == 3:
        base = exp_ms or int(time_setup_msc)
        return base if base and base % DAY_MS == 0 else (base // DAY_MS + 1) * DAY_MS
    return 0
def deal_from_mt5(d: Any) -> DealRecord:
    """A TradeDeal (``history_deals_get``) as the plain record the reasons classifier reads
    (times stay in the broker's server ms: only their order matters there)."""
    return DealRecord(
        ticket=int(d.ticket),
        position_id=int(d.position_id),
        entry=int(d.entry),
        reason=int(d.reason),
        volume=float(d.volume),
        type=int(d.type),
        magic=int(d.magic),
        comment=str(d.comment),
        price=float(d.price),
        time_msc=int(d.time_msc),
        order=int(d.order),
        symbol=str(d.symbol),
    )


def order_from_mt5(o: Any, *, offset_ms: int = 0, contract_size: float = 0.0) -> PendingOrder | None:
    """A TradeOrder as a PendingOrder; None for order types that are not pending orders.

    ``expiration_ms`` is the instant it expires (``expiration_instant_ms``) minus
    ``offset_ms``: UTC on a master (its estimated server offset), server time on a slave.
    """
    name = _PENDING_TYPE_NAMES.get(int(o.type))
    if name is None:
        return None
    type_time = int(getattr(o, "type_time", 0) or 0)
    expires = expiration_instant_ms(type_time, int(getattr(o, "time_expiration", 0) or 0), int(o.time_setup_msc))
    return PendingOrder(
        ticket=int(o.ticket),
        symbol=str(o.symbol),
        type=name,
        volume=float(o.volume_current),
        price_open=float(o.price_open),
        price_stoplimit=float(o.price_stoplimit),
        sl=float(o.sl),
        tp=float(o.tp),
        time_setup_msc=int(o.time_setup_msc) - offset_ms,
        magic=int(o.magic),
        comment=str(o.comment),
        contract_size=float(contract_size),
        type_time=TIME_TYPE_NAMES.get(type_time, "GTC"),
        expiration_ms=expires - offset_ms if expires else 0,
    )


def _no_size(symbol: str) -> float:
    return 0.0


def positions_by_identifier(records: Iterable[Any], *, offset_ms: int = 0,
                            contract_size: Callable[[str], float] = _no_size) -> dict[int, Position]:
    """Positions keyed by identifier; ``contract_size(symbol)`` fills the v2 field."""
    out = {}
    for rec in records:
        pos = position_from_mt5(rec, offset_ms=offset_ms, contract_size=contract_size(str(rec.symbol)))
        out[pos.identifier] = pos
    return out


def orders_by_ticket(records: Iterable[Any], *, offset_ms: int = 0,
                     contract_size: Callable[[str], float] = _no_size) -> dict[int, PendingOrder]:
    out = {}
    for rec in records:
        order = order_from_mt5(rec, offset_ms=offset_ms, contract_size=contract_size(str(rec.symbol)))
        if order is not None:
            out[order.ticket] = order
    return out


def spec_from_mt5(info: Any) -> SymbolSpec:
    return SymbolSpec(
        name=str(info.name),
        digits=int(info.digits),
        point=float(info.point),
        tick_size=float(info.trade_tick_size),
        tick_value=float(info.trade_tick_value),
        contract_size=float(info.trade_contract_size),
        volume_min=float(info.volume_min),
        volume_step=float(info.volume_step),
        volume_max=float(info.volume_max),
        filling_mode=int(info.filling_mode),
        stops_level=int(info.trade_stops_level),
        freeze_level=int(info.trade_freeze_level),
        trade_mode=int(info.trade_mode),
        trade_exemode=int(info.trade_exemode),
        expiration_mode=int(getattr(info, "expiration_mode", 15)),
    )


def quote_from_mt5(tick: Any, *, offset_ms: int = 0) -> Quote:
    return Quote(bid=float(tick.bid), ask=float(tick.ask), time_msc=int(tick.time_msc) - offset_ms)


def metrics_from_mt5(info: Any, *, server_time_msc: int = 0) -> AccountMetrics:
    return AccountMetrics(
        login=int(info.login),
        balance=float(info.balance),
        equity=float(info.equity),
        margin=float(info.margin),
        margin_free=float(info.margin_free),
        profit=float(info.profit),
        currency=str(info.currency),
        leverage=int(info.leverage),
        server_time_msc=server_time_msc,
        credit=float(getattr(info, "credit", 0.0) or 0.0),
    )


def estimate_server_offset_ms(server_time_msc: int, utc_now_ms: int, *, granularity_ms: int = 15 * 60_000) -> int:
    """Broker server clock minus UTC, rounded to 15 minutes (MT5 servers run on whole offsets).

    MT5 writes the broker's wall clock as if it were UTC; comparing a fresh tick with the
    real UTC clock is the only portable way to learn the offset (reference §6, Time).
    """
    return round((server_time_msc - utc_now_ms) / granularity_ms) * granularity_ms


class ContractSizes:
    """``trade_contract_size`` per symbol for a master, read once and refreshed rarely.

    The master's poll needs it for every published position (bus v2), but must not add
    a terminal call per poll: a known size is kept ``ttl_s`` (an hour); a failed read
    (symbol_info None) is retried after ``retry_s`` and publishes 0 meanwhile, which
    followers treat as "unknown, wait" rather than guess.
    """

    def __init__(self, mt5: Any, *, ttl_s: float = 3600.0, retry_s: float = 5.0,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.mt5 = mt5
        self.ttl_s = ttl_s
        self.retry_s = retry_s
        self.clock = clock
        self.reads = 0
        self.failed: set[str] = set()
        self._cache: dict[str, tuple[float, float]] = {}  # symbol -> (read at, size)

    def __call__(self, symbol: str) -> float:
        now = self.clock()
        hit = self._cache.get(symbol)
        if hit is not None and now - hit[0] < (self.ttl_s if hit[1] > 0 else self.retry_s):
            return hit[1]
        self.reads += 1
        info = self.mt5.symbol_info(symbol)
        size = float(getattr(info, "trade_contract_size", 0.0) or 0.0) if info is not None else 0.0
        if size > 0:
            self.failed.discard(symbol)
            self._cache[symbol] = (now, size)
        elif hit is not None and hit[1] > 0:  # refresh failed: keep the size we know
            self._cache[symbol] = (now - self.ttl_s + self.retry_s, hit[1])
            size = hit[1]
        else:
            self.failed.add(symbol)
            self._cache[symbol] = (now, 0.0)
        return size
