"""Mutable trading state of brokers and accounts, and its conversion to MT5 records.

Times on positions/orders/deals are stored as the broker's *server* ms (what MT5
reports), so history queries compare like with like (reference §6 Time).
"""
from __future__ import annotations

from dataclasses import dataclass

from . import constants as C
from . import money as M
from .market import Feed
from .records import TradeDeal, TradeOrder, TradePosition
from .servertime import ServerClock
from .world import AccountDef, BrokerDef

BUY_TYPES = (C.ORDER_TYPE_BUY, C.ORDER_TYPE_BUY_LIMIT, C.ORDER_TYPE_BUY_STOP, C.ORDER_TYPE_BUY_STOP_LIMIT)


def is_buy(order_type: int) -> bool:
    return order_type in BUY_TYPES


@dataclass(slots=True)
class Pos:
    ticket: int
    identifier: int
    symbol: str
    type: int
    volume: float
    price_open: float
    sl: float
    tp: float
    magic: int
    comment: str
    reason: int
    time_msc: int
    time_update_msc: int
    swap: float = 0.0
    external_id: str = ""


@dataclass(slots=True)
class Ord:
    ticket: int
    symbol: str
    type: int
    volume_initial: float
    volume_current: float
    price_open: float
    price_stoplimit: float
    sl: float
    tp: float
    type_time: int
    time_expiration: int  # server seconds, 0 = none
    type_filling: int
    state: int
    magic: int
    comment: str
    reason: int
    position_id: int
    position_by_id: int
    time_setup_msc: int
    time_done_msc: int = 0
    price_current: float = 0.0
    external_id: str = ""


@dataclass(slots=True, frozen=True)
class Deal:
    ticket: int
    order: int
    time_msc: int
    type: int
    entry: int
    magic: int
    position_id: int
    reason: int
    volume: float
    price: float
    commission: float
    swap: float
    profit: float
    fee: float
    symbol: str
    comment: str
    external_id: str = ""


class BrokerState:
    """A trade server: its symbols' feeds, ticket counters and accounts."""

    def __init__(self, d: BrokerDef, clock: ServerClock, feeds: dict[str, Feed]) -> None:
        self.d = d
        self.name = d.name
        self.clock = clock
        self.feeds = feeds
        self.next_order = d.first_order_ticket
        self.next_deal = d.first_deal_ticket
        self.accounts: list[AccountState] = []
        self._paths: dict[tuple[str, str], tuple[str, bool]] = {}
        self.last_day = -1  # server day of the last swap rollover check

    def order_ticket(self) -> int:
        t = self.next_order
        self.next_order += 1
        return t

    def deal_ticket(self) -> int:
        t = self.next_deal
        self.next_deal += 1
        return t

    def rate(self, frm: str, to: str) -> float:
        """Current conversion rate frm -> to through a symbol of this broker (bid)."""
        key = (frm, to)
        path = self._paths.get(key)
        if path is None:
            path = M.conversion_path(self.d.symbols, frm, to)
            if path is None:
                raise ValueError(f"{self.name}: no symbol converts {frm} into {to}")
            self._paths[key] = path
        name, divide = path
        if not name:
            return 1.0
        bid = self.feeds[name].bid
        return 1.0 / bid if divide else bid


class AccountState:
    """One trading account: money, positions, pending orders and history."""

    def __init__(self, d: AccountDef, broker: BrokerState) -> None:
        self.d = d
        self.login = d.login
        self.broker = broker
        self.balance = d.balance
        self.credit = d.credit
        self.hedging = d.margin_mode == C.ACCOUNT_MARGIN_MODE_RETAIL_HEDGING
        self.positions: dict[int, Pos] = {}
        self.orders: dict[int, Ord] = {}
        self.hist_orders: list[Ord] = []
        self.hist_deals: list[Deal] = []
        self.closed_ids: set[int] = set()  # identifiers of positions that existed
        self.selected: set[str] = {n for n, s in broker.d.symbols.items() if s.select}
        self.books: set[str] = set()

    # --- money ----------------------------------------------------------------------
    def close_price(self, p: Pos) -> float:
        f = self.broker.feeds[p.symbol]
        return f.bid if p.type == C.POSITION_TYPE_BUY else f.ask

    def pos_profit(self, p: Pos) -> float:
        sym = self.broker.d.symbols[p.symbol]
        return M.money(M.profit(sym, p.type == C.POSITION_TYPE_BUY, p.volume, p.price_open,
                                self.close_price(p), self.d.currency, self.broker.rate))

    def pos_margin(self, p: Pos) -> float:
        sym = self.broker.d.symbols[p.symbol]
        return M.margin(sym, p.volume, p.price_open, self.d.leverage, self.d.currency, self.broker.rate)

    def margin_total(self, exclude: Pos | None = None) -> float:
        return sum(self.pos_margin(p) for p in self.positions.values() if p is not exclude)

    def metrics(self) -> tuple[float, float, float, float, float]:
        """(profit, equity, margin, margin_free, margin_level %); level 0 without margin."""
        profit = sum(self.pos_profit(p) for p in self.positions.values())
        swaps = sum(p.swap for p in self.positions.values())
        equity = M.money(self.balance + self.credit + profit + swaps)
        margin = M.money(self.margin_total())
        level = round(equity / margin * 100.0, 2) if margin > 0 else 0.0
        return M.money(profit), equity, margin, M.money(equity - margin), level

    # --- records --------------------------------------------------------------------
    def position_record(self, p: Pos) -> TradePosition:
        return TradePosition(
            p.ticket, p.time_msc // 1000, p.time_msc, p.time_update_msc // 1000, p.time_update_msc,
            p.type, p.magic, p.identifier, p.reason, p.volume, p.price_open, p.sl, p.tp,
            self.close_price(p), M.money(p.swap), self.pos_profit(p), p.symbol, p.comment, p.external_id,
        )

    def order_record(self, o: Ord) -> TradeOrder:
        price_current = o.price_current
        if o.state in (C.ORDER_STATE_PLACED, C.ORDER_STATE_STARTED, C.ORDER_STATE_PARTIAL):
            f = self.broker.feeds[o.symbol]
            price_current = f.ask if is_buy(o.type) else f.bid
        return TradeOrder(
            o.ticket, o.time_setup_msc // 1000, o.time_setup_msc, o.time_done_msc // 1000, o.time_done_msc,
            o.time_expiration, o.type, o.type_time, o.type_filling, o.state, o.magic, o.position_id,
            o.position_by_id, o.reason, o.volume_initial, o.volume_current, o.price_open, o.sl, o.tp,
            price_current, o.price_stoplimit, o.symbol, o.comment, o.external_id,
        )

    @staticmethod
    def deal_record(d: Deal) -> TradeDeal:
        return TradeDeal(
            d.ticket, d.order, d.time_msc // 1000, d.time_msc, d.type, d.entry, d.magic, d.position_id,
            d.reason, d.volume, d.price, d.commission, d.swap, d.profit, d.fee, d.symbol, d.comment,
            d.external_id,
        )
