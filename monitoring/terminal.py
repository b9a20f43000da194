"""What the guardian reads from, and does to, its terminal: server time, deal
history, and closing everything on the account.

Server time comes from tick timestamps only (MT5's broker wall clock), never from the
local clock: with the simulator at ``--tick-hz 0`` the broker clock is not the wall
clock at all, and on a real VPS the local clock is not the firm's clock either.
"""
from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from itertools import islice
from typing import Any

from copier.orders import choose_filling
from copier.reasons import risk_close_comment
from copier.risk import ClosingCost, Deal, OpenVolume, SideCharge, closing_cost, side_charge, symbol_exit_charges
from copier.risk.history_equity import Bar, SymbolBars
from copier.tags import parse_tag

DAY_S = 86_400
MAX_CLOCK_SYMBOLS = 6


class ServerTime:
    """The broker's server time (ms, wall clock as if UTC) from the freshest tick.

    Reads the ticks of the symbols the account holds plus one clock symbol (the first
    in Market Watch), keeps the maximum, and never goes backwards. ``None`` until a
    tick has been seen.
    """

    def __init__(self) -> None:
        self.latest_ms: int | None = None
        self.clock_symbol: str | None = None

    def observe(self, ms: int | None) -> None:
        if ms and (self.latest_ms is None or ms > self.latest_ms):
            self.latest_ms = int(ms)

    def read(self, mt5: Any, symbols: Iterable[str] = ()) -> int | None:
        wanted = list(dict.fromkeys(symbols))[: MAX_CLOCK_SYMBOLS - 1]
        clock = self._clock_symbol(mt5)
        if clock and clock not in wanted:
            wanted.append(clock)
        for sym in wanted:
            tick = mt5.symbol_info_tick(sym)
            if tick is not None:
                self.observe(int(tick.time_msc))
        return self.latest_ms

    def _clock_symbol(self, mt5: Any) -> str:
        if self.clock_symbol is None:
            symbols = mt5.symbols_get()
            if symbols is None:
                return ""
            visible = [s.name for s in symbols if s.visible] or [s.name for s in symbols]
            self.clock_symbol = visible[0] if visible else ""
        return self.clock_symbol


class DealHistory:
    """The account's deals, fetched once in full and then incrementally.

    Dates are passed as int seconds in the server epoch, with a generous upper bound
    (now + 2 days), as the MT5 reference advises against time-zone skew.
    """

    def __init__(self, *, first_window_days: int | None = None) -> None:
        self.deals: dict[int, Deal] = {}
        self.latest_s: int | None = None
        self.loaded = False
        self.first_window_days = first_window_days  # None: the whole history

    def refresh(self, mt5: Any, server_ms: int) -> list[Deal] | None:
        """All deals known so far (sorted), or None when the terminal would not answer."""
        to_s = server_ms // 1000 + 2 * DAY_S
        if self.loaded and self.latest_s is not None:
            from_s = max(0, self.latest_s - DAY_S)
        elif self.loaded:
            from_s = max(0, server_ms // 1000 - 2 * DAY_S)
        elif self.first_window_days is not None:
            from_s = max(0, server_ms // 1000 - self.first_window_days * DAY_S)
        else:
            from_s = 0
        records = mt5.history_deals_get(from_s, to_s)
        if records is None and not self.loaded and from_s == 0:
            # some terminals refuse an unbounded request: fall back to the last 400 days
            records = mt5.history_deals_get(max(0, server_ms // 1000 - 400 * DAY_S), to_s)
        if records is None:
            code, _text = mt5.last_error()
            if code != 1:  # (1, ...) with None is "nothing there" on some builds
                return None
            records = ()
        for rec in records:
            deal = Deal.from_mt5(rec)
            self.deals[deal.ticket] = deal
            t = deal.time_msc // 1000
            if self.latest_s is None or t > self.latest_s:
                self.latest_s = t
        self.loaded = True
        return sorted(self.deals.values(), key=lambda d: (d.time_msc, d.ticket))


class ClosingCosts:
    """The cost to close what is open now (``copier.risk.costs``), for the guardian.

    Each open position's charge per lot and side comes from its own deals,
    ``history_deals_get(position=identifier)``: read once, and again when its volume
    changes (a partial close shows the exit side, a netting add another entry). A position
    whose deals cannot be read yet (a terminal error, a history that lags) is read again at
    the next evaluation and meanwhile takes its symbol's charge: the latest exit charge in
    the account's history, or the charge another open position on that symbol pays.
    """

    def __init__(self) -> None:
        self._charges: dict[int, tuple[float, SideCharge]] = {}  # identifier -> (volume when read, charge)
        self._symbol_exit: dict[str, float] = {}
        self._exit_seen: dict[str, tuple[tuple[int, int], float]] = {}  # symbol -> ((time, ticket), charge) of its latest exit
        self._history_size = 0
        self.last = ClosingCost()

    def _note_exits(self, deals: Iterable[Deal]) -> None:
        """Fold new deals into the latest exit charge per symbol (``symbol_exit_charges``)."""
        for sym, (key, rate) in _latest_exits(deals).items():
            old = self._exit_seen.get(sym)
            if old is None or key > old[0]:
                self._exit_seen[sym] = (key, rate)
        self._symbol_exit = {sym: rate for sym, (_k, rate) in self._exit_seen.items() if rate > 0}

    def _symbol_rates(self, symbols_of: Mapping[int, str]) -> dict[str, float]:
        rates = dict(self._symbol_exit)
        for ident, (_vol, ch) in self._charges.items():
            sym = symbols_of.get(ident)
            if sym is not None:
                rates[sym] = max(rates.get(sym, 0.0), ch.per_lot)
        return rates

    def estimate(self, mt5: Any, positions: Iterable[Any], history: Mapping[int, Deal] | None = None) -> ClosingCost:
        """The estimate for ``positions`` (``positions_get`` records); reads the deals of
        the positions it does not know (one call each). Never raises on missing data."""
        if history is not None and len(history) != self._history_size:
            # only the deals added since the last look (DealHistory appends new tickets)
            self._note_exits(islice(history.values(), max(0, self._history_size), None))
            self._history_size = len(history)
        opened = [OpenVolume(int(p.identifier), str(p.symbol), float(p.volume)) for p in positions]
        for o in opened:
            cached = self._charges.get(o.identifier)
            if cached is not None and abs(cached[0] - o.volume) <= 1e-9:
                continue
            records = mt5.history_deals_get(position=o.identifier)
            if records is None:
                continue  # a terminal error: the old charge (or the symbol's) until it answers
            try:
                ch = side_charge([Deal.from_mt5(r) for r in records], o.identifier)
            except (ValueError, TypeError, AttributeError):
                continue
            if ch.known:
                self._charges[o.identifier] = (o.volume, ch)
        live = {o.identifier for o in opened}
        for ident in [i for i in self._charges if i not in live]:
            del self._charges[ident]
        self.last = self._cost(opened)
        return self.last

    def cached(self, positions: Iterable[Any]) -> ClosingCost:
        """The estimate for ``positions`` (records or copier Positions) from what is known
        already: no terminal call (the pre-trade check on the copy path)."""
        return self._cost([OpenVolume(int(p.identifier), str(p.symbol), float(p.volume)) for p in positions])

    def _cost(self, opened: list[OpenVolume]) -> ClosingCost:
        symbols_of = {o.identifier: o.symbol for o in opened}
        charges = {i: ch for i, (_v, ch) in self._charges.items() if i in symbols_of}
        return closing_cost(opened, charges, self._symbol_rates(symbols_of))


def _latest_exits(deals: Iterable[Deal]) -> dict[str, tuple[tuple[int, int], float]]:
    """Per symbol, the latest closing deal's (time, ticket) and its exit charge per lot
    (0 when none was charged)."""
    out: dict[str, tuple[tuple[int, int], float]] = {}
    for d in deals:
        if not d.is_close or d.volume <= 0:
            continue
        key = (d.time_msc, d.ticket)
        old = out.get(d.symbol)
        if old is None or key > old[0]:
            out[d.symbol] = (key, symbol_exit_charges([d]).get(d.symbol, 0.0))
    return out


@dataclass
class CloseResult:
    ticket: int
    symbol: str
    side: str
    volume: float
    copied: bool  # carried a copier tag (else: a manual trade or another EA)
    ok: bool
    retcode: int
    reason: str
    price: float
    sent_ms: int
    identifier: int = 0  # the position's identifier (links key on it)


@dataclass
class Closer:
    """Closes positions and removes pending orders through the node's Executor."""

    executor: Any
    deviation: int = 200
    magic: int = 0
    _fillings: dict[str, int] = field(default_factory=dict)

    @property
    def mt5(self) -> Any:
        return self.executor.mt5

    def _filling(self, symbol: str) -> int:
        if symbol not in self._fillings:
            info = self.mt5.symbol_info(symbol)
            if info is None:
                return 1  # IOC: the commonest; a refusal is reported and retried next pass
            self._fillings[symbol] = choose_filling(int(info.filling_mode), int(info.trade_exemode))
        return self._fillings[symbol]

    def close_positions(self, positions: Iterable[Any], on_result: Callable[[CloseResult], None] | None = None,
                        *, why: str = "flatten") -> list[CloseResult]:
        """Close every position given (losers first: they are what threatens the limit).

        Each close carries the copier's magic and the comment ``copyhub risk <why>``
        (``copier.reasons.risk_close_comment``): the slave then records a copy closed this
        way as closed by the guardian (cause ``risk``), never as a close by hand."""
        comment = risk_close_comment(why)
        out = []
        for p in sorted(positions, key=lambda p: float(p.profit)):
            side = "BUY" if int(p.type) == 0 else "SELL"
            outcome = self.executor.close_position(
                ticket=int(p.ticket), symbol=p.symbol, position_side=side, volume=float(p.volume),
                deviation=self.deviation, magic=self.magic, comment=comment,
                type_filling=self._filling(p.symbol))
            res = CloseResult(int(p.ticket), str(p.symbol), side, float(p.volume), parse_tag(p.comment) is not None,
                              outcome.ok, outcome.retcode, outcome.reason, outcome.price, outcome.sent_ms,
                              int(getattr(p, "identifier", 0) or p.ticket))
            out.append(res)
            if on_result is not None:
                on_result(res)
        return out

    def remove_orders(self, orders: Iterable[Any]) -> list[tuple[int, bool, str]]:
        out = []
        for o in orders:
            outcome = self.executor.remove_pending(ticket=int(o.ticket), symbol=o.symbol)
            out.append((int(o.ticket), outcome.ok, outcome.reason))
        return out


MAX_M1_BARS = 90_000  # below the terminal's "Max bars in chart" default (100,000)


def read_m1_bars(mt5: Any, wants: dict[str, tuple[int, int]]) -> dict[str, SymbolBars]:
    """M1 bars per symbol over ``(from, to)`` server seconds (``copy_rates_range``), with
    what a price move is worth (``trade_tick_value / trade_tick_size`` per lot, at
    today's rates). A symbol the terminal cannot give (unknown, no bars, an error) is
    left out: the caller then cannot price it and assumes the strictest value."""
    out: dict[str, SymbolBars] = {}
    m1 = getattr(mt5, "TIMEFRAME_M1", 1)
    for symbol, (lo, hi) in wants.items():
        info = mt5.symbol_info(symbol)
        if info is None or not info.trade_tick_size:
            continue
        lo = max(int(lo), int(hi) - MAX_M1_BARS * 60)
        rates = mt5.copy_rates_range(symbol, m1, lo, int(hi))
        if rates is None or len(rates) == 0:
            continue
        bars = [Bar(int(r["time"]), float(r["open"]), float(r["high"]), float(r["low"]), float(r["close"]),
                    int(r["spread"])) for r in rates]
        out[symbol] = SymbolBars(bars, float(info.point), float(info.trade_tick_value) / float(info.trade_tick_size))
    return out
