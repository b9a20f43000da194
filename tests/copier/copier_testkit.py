"""Builders and a small pure model of a slave terminal + trades store, for the copier tests.

``SlaveModel.apply(actions)`` does what a slave node would do with a plan (including the
store writes described in copier/actions.py), so tests can check that planning again after
applying a plan settles.
"""
from __future__ import annotations

from collections.abc import Iterable
from dataclasses import replace

from copier.accounts import validate_account
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
from copier.links import Link
from copier.models import AccountMetrics, MasterState, PendingOrder, Position, Quote, SymbolSpec
from copier.order_fates import ORDER_STATE_CANCELED, ORDER_STATE_FILLED, OrderFate
from copier.planner import MasterView, PlanContext, plan
from copier.reasons import (
    DEAL_ENTRY_IN,
    DEAL_ENTRY_INOUT,
    DEAL_ENTRY_OUT,
    DEAL_REASON_EXPERT,
    DEAL_REASON_SL,
    DEAL_TYPE_BUY,
    DEAL_TYPE_SELL,
    Closure,
    DealRecord,
    classify_closure,
)

SLAVE = "Apex_Slave_01"
MASTER = "FTMO_Master"


def spec(name: str = "EURUSD.c", *, digits: int = 5, vmin: float = 0.01, step: float = 0.01, vmax: float = 100.0,
         stops_level: int = 0, tick_value: float = 1.0, filling_mode: int = 3, trade_mode: int = 4) -> SymbolSpec:
    point = 10.0 ** -digits
    return SymbolSpec(name=name, digits=digits, point=point, tick_size=point, tick_value=tick_value, contract_size=100000,
                      volume_min=vmin, volume_step=step, volume_max=vmax, filling_mode=filling_mode,
                      stops_level=stops_level, trade_mode=trade_mode)


def quote(bid: float, spread: float = 0.0001) -> Quote:
    return Quote(bid=bid, ask=round(bid + spread, 6))


def mpos(ident: int, symbol: str = "EURUSD", side: str = "BUY", volume: float = 1.0, price: float = 1.1001,
         sl: float = 0.0, tp: float = 0.0, price_current: float = 0.0, contract_size: float = 100000) -> Position:
    """A master position; ``contract_size`` is what a v2 master publishes (the testkit's specs use 100000)."""
    return Position(ticket=ident, identifier=ident, symbol=symbol, side=side, volume=volume, price_open=price, sl=sl, tp=tp,
                    price_current=price_current, contract_size=contract_size)


def cfg(**extra):
    doc = {"name": SLAVE, "type": "SLAVE", "path": "C:/Apex/terminal64.exe", "enabled": True, "suffix": ".c",
           "symbol_map": {"XAUUSD": "GOLD"}, "slippage_tolerance": 50}
    doc.update(extra)
    return validate_account(doc)


def view(positions: Iterable[Position] = (), orders: Iterable[PendingOrder] = (), *, fresh: bool = True,
         first_sync: bool = False, metrics: AccountMetrics | None = None, name: str = MASTER) -> MasterView:
    state = MasterState(master=name, seq=1, positions={p.identifier: p for p in positions},
                        orders={o.ticket: o for o in orders}, fresh=fresh)
    return MasterView(state=state, metrics=metrics, first_sync=first_sync)


def closure(ident: int, cause: str = "sl", **kw) -> Closure:
    """A classified vanished slave position (what the node reads from its deals)."""
    return Closure(ident, cause, **kw)


def context(slave_cfg=None, masters=None, links=(), slave_positions=(), slave_orders=(), *, specs=None, quotes=None,
            netting: bool = False, paused: bool = False, max_attempts: int = 3, slave_metrics=None, available=None,
            fifo: bool = False, closures=None, order_fates=None, focus_links=None) -> PlanContext:
    return PlanContext(
        slave=slave_cfg or cfg(),
        masters=masters if masters is not None else {MASTER: view()},
        links=list(links),
        slave_positions=list(slave_positions),
        slave_orders=list(slave_orders),
        specs=specs if specs is not None else {"EURUSD.c": spec()},
        quotes=quotes if quotes is not None else {"EURUSD.c": quote(1.1000)},
        slave_metrics=slave_metrics,
        slave_margin_mode="netting" if netting else "hedging",
        paused=paused,
        max_attempts=max_attempts,
        available_symbols=available,
        slave_fifo_close=fifo,
        closures=closures or {},
        order_fates=order_fates or {},
        focus_links=focus_links,
    )


def _instant(type_time: str, expiration: int) -> int:
    """What the server records as the expiry instant (server ms) of a request's expiry."""
    if type_time == "SPECIFIED":
        return expiration * 1000
    if type_time == "SPECIFIED_DAY":
        return (expiration * 1000 // 86_400_000 + 1) * 86_400_000
    return 0


class SlaveModel:
    """A hedging or netting slave account plus its trades rows."""

    def __init__(self, *, netting: bool = False, links: Iterable[Link] = (), positions: Iterable[Position] = (),
                 orders: Iterable[PendingOrder] = (), slave: str = SLAVE, fifo: bool = False) -> None:
        self.netting = netting
        self.fifo = fifo  # ACCOUNT_FIFO_CLOSE: a close of any but the symbol's oldest position is refused (10045)
        self.refused: list = []
        self.slave = slave
        self.links: dict[tuple[str, int], Link] = {l.key: l for l in links}
        self.positions: dict[int, Position] = {p.identifier: p for p in positions}
        self.orders: dict[int, PendingOrder] = {o.ticket: o for o in orders}
        self.next_ticket = 900000
        self.clock = 1
        self.removed_orders: set[int] = set()  # orders this node removed (an Open may replace one)
        self.deals: list[DealRecord] = []  # the account's deal history (reasons from history)
        self.magic = 234000  # the copier's magic on this account (cfg default)
        self.order_fates: dict[int, OrderFate] = {}  # the account's order history: what became of its orders
        for p in self.positions.values():  # positions given at start were opened by a deal, as on a terminal
            self._record(p.identifier, DEAL_ENTRY_IN, p.side, p.volume, comment=p.comment,
                         magic=self.magic if p.comment.startswith("cH") else 0)

    def _ticket(self) -> int:
        self.next_ticket += 1
        return self.next_ticket

    def _upsert(self, key: tuple[str, int], **fields) -> Link:
        link = self.links.get(key) or Link(slave_name=self.slave, master_name=key[0], master_ticket=key[1])
        link = replace(link, **fields)
        self.links[key] = link
        return link

    def ctx(self, slave_cfg, masters, **kw) -> PlanContext:
        kw.setdefault("closures", self.closures(slave_cfg.magic))
        kw.setdefault("order_fates", self.fates())
        return context(slave_cfg, masters, list(self.links.values()), list(self.positions.values()), list(self.orders.values()),
                       netting=self.netting, fifo=self.fifo, **kw)

    def closures(self, magic: int) -> dict[int, Closure]:
        """What the node reads: the deals of every OPEN link's vanished slave position, classified."""
        gone = {l.slave_ticket for l in self.links.values() if l.status == "OPEN" and l.slave_ticket} - set(self.positions)
        return {t: classify_closure(self.deals, position_id=t, magic=magic) for t in gone}

    def fates(self) -> dict[int, OrderFate]:
        """What the node reads (netting): the history of every OPEN order link's vanished copy."""
        gone = {l.slave_ticket for l in self.links.values() if l.status == "OPEN" and l.kind == "order" and l.slave_ticket}
        gone -= set(self.orders) | set(self.positions)
        return {t: self.order_fates[t] for t in gone if t in self.order_fates}

    def fill_order(self, ticket: int) -> int:
        """The slave's pending order triggers: one deal at its price (netting: adds to, reduces,
        closes or reverses the symbol's position). Returns the position identifier."""
        o = self.orders.pop(ticket)
        ident = self._deal(o.symbol, o.side, o.volume, o.price_open, o.comment, o.sl, o.tp, order=ticket)
        self.order_fates[ticket] = OrderFate(ticket, ORDER_STATE_FILLED, ident, o.volume, 0.0)
        return ident

    def cancel_order(self, ticket: int, state: int = ORDER_STATE_CANCELED) -> None:
        """The slave's pending order goes unfilled (by hand, expired, rejected)."""
        o = self.orders.pop(ticket)
        self.order_fates[ticket] = OrderFate(ticket, state, 0, o.volume, o.volume)

    def _record(self, ident: int, entry: int, side: str, volume: float, *, reason: int = DEAL_REASON_EXPERT,
                magic: int | None = None, comment: str = "") -> None:
        self.clock += 1
        self.deals.append(DealRecord(ticket=len(self.deals) + 1, position_id=ident, entry=entry, reason=reason, volume=volume,
                                     type=DEAL_TYPE_BUY if side == "BUY" else DEAL_TYPE_SELL,
                                     magic=self.magic if magic is None else magic, comment=comment, time_msc=self.clock))

    def close_on_slave(self, ident: int, *, reason: int = DEAL_REASON_SL, magic: int = 0, comment: str = "[sl]") -> None:
        """A slave-side close (SL by default): the position goes, its OUT deal says why."""
        p = self.positions.pop(ident)
        self._record(ident, DEAL_ENTRY_OUT, "SELL" if p.side == "BUY" else "BUY", p.volume, reason=reason, magic=magic,
                     comment=comment)

    def plan(self, slave_cfg, masters, **kw) -> list:
        return plan(self.ctx(slave_cfg, masters, **kw))

    # -------------------------------------------------------------- execution
    def _deal(self, symbol: str, side: str, volume: float, price: float, comment: str, sl: float, tp: float,
              order: int = 0) -> int:
        """Market deal (or the fill of pending ``order``); returns the identifier of the position
        it opened/changed (a new position's identifier is the order's ticket, as in MT5)."""
        self.clock += 1
        if self.netting:
            for p in list(self.positions.values()):
                if p.symbol != symbol:
                    continue
                if p.side == side:
                    self.positions[p.identifier] = replace(p, volume=round(p.volume + volume, 8), sl=sl or p.sl, tp=tp or p.tp)
                    self._record(p.identifier, DEAL_ENTRY_IN, side, volume, comment=comment)
                    return p.identifier
                left = round(p.volume - volume, 8)
                if left > 1e-9:
                    self.positions[p.identifier] = replace(p, volume=left)
                elif left < -1e-9:
                    self.positions[p.identifier] = replace(p, side=side, volume=-left, price_open=price, ticket=order or self._ticket(),
                                                           comment=comment)  # MT5: the reversing order's ticket and comment
                else:
                    del self.positions[p.identifier]
                self._record(p.identifier, DEAL_ENTRY_OUT if left > -1e-9 else DEAL_ENTRY_INOUT, side, volume, comment=comment)
                return p.identifier
        ident = order or self._ticket()
        self._record(ident, DEAL_ENTRY_IN, side, volume, comment=comment)
        self.positions[ident] = Position(ticket=ident, identifier=ident, symbol=symbol, side=side, volume=volume,
                                         price_open=price, sl=sl, tp=tp, comment=comment, time_msc=self.clock)
        return ident

    def apply(self, actions: Iterable) -> None:
        removed = self.removed_orders
        for a in actions:
            if isinstance(a, Open):
                key = (a.master_name, a.master_ticket)
                if a.replaces_order and a.replaces_order not in removed:
                    continue
                if a.purpose == "new":
                    self._upsert(key, kind="position", status="PENDING", symbol=a.symbol, master_symbol=a.master_symbol,
                                 direction=a.side, master_direction=a.master_side, master_volume=a.master_volume,
                                 slave_volume=a.volume, attempts=1, tag=a.comment, lot_ratio=a.lot_ratio)
                elif a.purpose in ("retry", "replace"):
                    link = self.links[key]
                    self._upsert(key, kind="position", status="PENDING", attempts=link.attempts + 1, symbol=a.symbol,
                                 direction=link.direction or a.side)
                ident = self._deal(a.symbol, a.side, a.volume, a.reference_price, a.comment, a.sl, a.tp)
                if a.purpose not in ("add", "restore"):
                    self._upsert(key, status="OPEN", slave_ticket=ident)
            elif isinstance(a, Close):
                p = next((x for x in self.positions.values() if x.ticket == a.slave_ticket), None)
                if p is None:
                    continue
                if self.fifo and p is not min((x for x in self.positions.values() if x.symbol == p.symbol),
                                              key=lambda x: (x.time_msc, x.identifier)):
                    self.refused.append(a)  # TRADE_RETCODE_FIFO_CLOSE
                    continue
                left = round(p.volume - a.volume, 8)
                if left > 1e-9:
                    self.positions[p.identifier] = replace(p, volume=left)
                else:
                    del self.positions[p.identifier]
                    key = (a.master_name, a.master_ticket)
                    # as the node does: a full close that leaves nothing tagged ends the link
                    if a.ends_link and key in self.links and not any(
                            x.comment.startswith(a.comment) for x in self.positions.values() if a.comment):
                        self._upsert(key, status="CLOSED", reason=a.reason)
                self._record(p.identifier, DEAL_ENTRY_OUT, a.deal_side, min(a.volume, p.volume), magic=a.magic, comment=a.comment)
            elif isinstance(a, Flip):
                self._upsert((a.master_name, a.master_ticket), direction=a.direction, master_direction=a.master_side,
                             master_volume=a.master_volume, slave_volume=a.slave_volume, lot_ratio=a.lot_ratio,
                             status=a.status, attempts=0 if a.status == "PENDING" else self.links[(a.master_name, a.master_ticket)].attempts,
                             reason=a.reason)
            elif isinstance(a, ModifySLTP):
                p = next((x for x in self.positions.values() if x.ticket == a.slave_ticket), None)
                if p is not None:
                    self.positions[p.identifier] = replace(p, sl=a.sl, tp=a.tp)
            elif isinstance(a, PlacePending):
                key = (a.master_name, a.master_ticket)
                if a.purpose == "new":
                    self._upsert(key, kind="order", status="PENDING", symbol=a.symbol, master_symbol=a.master_symbol,
                                 direction="BUY" if a.order_type.startswith("BUY") else "SELL", master_direction=a.master_side,
                                 master_volume=a.master_volume, slave_volume=a.volume, attempts=1, tag=a.comment,
                                 lot_ratio=a.lot_ratio)
                else:
                    self._upsert(key, attempts=self.links[key].attempts + 1)
                t = self._ticket()
                self.orders[t] = PendingOrder(ticket=t, symbol=a.symbol, type=a.order_type, volume=a.volume, price_open=a.price,
                                              price_stoplimit=a.stoplimit, sl=a.sl, tp=a.tp, comment=a.comment,
                                              type_time=a.type_time, expiration_ms=_instant(a.type_time, a.expiration))
                self._upsert(key, status="OPEN", slave_ticket=t)
            elif isinstance(a, ModifyPending):
                o = self.orders.get(a.slave_order_ticket)
                if o is not None:
                    self.orders[o.ticket] = replace(o, price_open=a.price, price_stoplimit=a.stoplimit, sl=a.sl, tp=a.tp,
                                                    type_time=a.type_time, expiration_ms=_instant(a.type_time, a.expiration))
            elif isinstance(a, RemovePending):
                o = self.orders.pop(a.slave_order_ticket, None)
                if o is not None:
                    removed.add(a.slave_order_ticket)
                    # as the terminal's history records it: the removed order is ORDER_STATE_CANCELED
                    self.order_fates[o.ticket] = OrderFate(o.ticket, ORDER_STATE_CANCELED, 0, o.volume, o.volume)
            elif isinstance(a, RecordSkip):
                self._upsert((a.master_name, a.master_ticket), status=a.status, kind=a.kind, reason=a.reason,
                             master_symbol=a.master_symbol or self.links.get((a.master_name, a.master_ticket), Link("", "", 0)).master_symbol)
            elif isinstance(a, Adopt):
                self._upsert((a.master_name, a.master_ticket), status="OPEN", slave_ticket=a.slave_ticket, kind=a.kind,
                             symbol=a.symbol or self.links.get((a.master_name, a.master_ticket), Link("", "", 0)).symbol,
                             direction=a.direction, master_direction=a.master_side, master_symbol=a.master_symbol,
                             **({} if (a.master_name, a.master_ticket) in self.links else
                                {"master_volume": a.master_volume, "slave_volume": a.volume, "lot_ratio": a.lot_ratio}))
            elif isinstance(a, Rebind):
                self._upsert((a.master_name, a.master_ticket), slave_ticket=a.slave_ticket)
            elif isinstance(a, MarkClosed):
                self._upsert((a.master_name, a.master_ticket), status="CLOSED", reason=a.reason)
            else:  # pragma: no cover
                raise TypeError(a)
