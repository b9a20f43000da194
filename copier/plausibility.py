"""Is what the bus says about a master believable? Pure rules (issue 15), stdlib only.

A follower trusts the bus for *what* the master holds, but no single message may make it
trade something no master could hold. Every ``pos.<master>`` snapshot and delta is checked
against what the follower knows on its own side before it touches the mirror; a message
that breaks a rule is not applied — the mirror treats it as a gap and asks the master for a
snapshot (messaging/clone.py) — so an implausible message is never a trade.

The rules, each with the field it names in its :class:`Rejection`:

* ``volume_cap`` (``volume``): a position or pending order of more than
  ``Limits.max_lots`` lots (the hard cap, setting ``PLAUSIBLE_MAX_LOTS``).
* ``volume_max`` (``volume``): more units of the underlying (lots × the master's contract
  size) than ``Limits.volume_max_factor`` times the follower symbol's largest order
  (``volume_max`` × its contract size). A master broker's maximum may be larger than the
  follower's, and a netting position grows over several deals: hence the factor.
* ``equity`` (``volume``): one position whose value, in the follower's deposit currency,
  exceeds the master's equity × leverage × ``Limits.leverage_factor`` — far more than the
  master's margin could carry. Value = units × price × tick_value / (tick_size × contract
  size) of the follower's symbol (MT5's SYMBOL_TRADE_TICK_VALUE is in the deposit
  currency, so no rate is guessed); the master's equity is converted with the rate the
  caller found, and the rule is skipped when there is none.
* ``price`` (``price_current`` / ``price_open``): a price further from the follower's own
  market (the mid of its tick for the translated symbol) than ``price_deviation`` of that
  mid, and never less than ``min_price_points`` of the symbol's points. Checked on every
  position's ``price_current``, on the ``price_open`` of positions a delta brings new (a
  fresh open fills near the market; an old position's open price may be anywhere), and on
  pending orders' ``price_open`` with the wider ``order_price_deviation``. This is not the
  slippage tolerance (which decides whether a *copy* is still worth opening): it says the
  master's number cannot be a price of this market at all.
* ``future`` (``ts_ms``): a message stamped more than ``max_future_ms`` after the
  follower's clock.
* ``identity`` (``symbol`` / ``side``): a known position identifier that comes back with
  another symbol, or with another side under the same ticket (MT5 keeps a position's
  identifier for life; a netting reversal changes the side *and* the ticket).

Where the follower knows nothing (no spec, no quote: a symbol it cannot map) the rules that
need it are skipped: the planner refuses such copies anyway, with its own reason.
"""
from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass

from copier.models import AccountMetrics, PendingOrder, Position, Quote, SymbolSpec

VOLUME_CAP = "volume_cap"
VOLUME_MAX = "volume_max"
EQUITY = "equity"
PRICE = "price"
FUTURE = "future"
IDENTITY = "identity"
RULES = (VOLUME_CAP, VOLUME_MAX, EQUITY, PRICE, FUTURE, IDENTITY)


@dataclass(frozen=True, slots=True)
class Limits:
    """How far a master's numbers may go before the follower refuses to believe them.

    ``max_lots``: hard cap per position/order, lots. ``volume_max_factor``: × the follower
    symbol's volume_max (in units). ``leverage_factor``: × equity × leverage (one
    position's value). ``price_deviation`` / ``order_price_deviation``: fraction of the
    market mid (0.05 = 5 %). ``min_price_points``: floor of the price tolerance, in the
    follower symbol's points. ``max_future_ms``: how far ahead of the follower's clock a
    message may be stamped, ms. Raises ValueError for a non-positive value.
    """

    max_lots: float = 1000.0
    volume_max_factor: float = 10.0
    leverage_factor: float = 10.0
    price_deviation: float = 0.05
    order_price_deviation: float = 0.5
    min_price_points: int = 100
    max_future_ms: int = 60_000

    def __post_init__(self) -> None:
        for name in ("max_lots", "volume_max_factor", "leverage_factor", "price_deviation",
                     "order_price_deviation", "min_price_points", "max_future_ms"):
            value = getattr(self, name)
            if not value > 0:
                raise ValueError(f"plausibility limit {name} must be > 0, not {value!r}")


@dataclass(frozen=True, slots=True)
class Market:
    """What the follower knows, on its own terminal, of one master symbol: the translated
    symbol's spec and its latest tick (either may be None when it cannot tell)."""

    spec: SymbolSpec | None = None
    quote: Quote | None = None

    @property
    def mid(self) -> float | None:
        q = self.quote
        if q is None or not (q.bid > 0 and q.ask > 0):
            return None
        return (q.bid + q.ask) / 2


@dataclass(frozen=True, slots=True)
class Rejection:
    """One broken rule: ``rule`` (one of RULES), the message ``field`` it concerns, the
    position identifier or order ``ticket`` (``key``, 0 for the message itself), the
    master's ``symbol``, the offending ``value`` and the ``limit`` it may not exceed (same
    unit as ``value``: lots, units, deposit currency, points, ms), ``unit`` names it."""

    rule: str
    field: str
    key: int
    value: float | str
    limit: float | str
    unit: str = ""
    symbol: str = ""

    def describe(self) -> str:
        where = f"{self.symbol} #{self.key} " if self.key else ""
        unit = f" {self.unit}" if self.unit else ""
        return f"{where}{self.field} {_fmt(self.value)} beyond {_fmt(self.limit)}{unit} ({self.rule})"


def _fmt(v: float | str) -> str:
    return f"{v:.6g}" if isinstance(v, float) else str(v)


def check_volume(volume: float, contract_size: float, *, key: int, symbol: str, market: Market,
                 limits: Limits) -> Rejection | None:
    """The hard cap (lots), then the follower symbol's volume_max × factor (units).

    ``contract_size`` is the master's units per lot (0 = unknown: the follower's own is
    used). None when the volume is believable.
    """
    if volume > limits.max_lots:
        return Rejection(VOLUME_CAP, "volume", key, float(volume), float(limits.max_lots), "lots", symbol)
    spec = market.spec
    if spec is not None and spec.volume_max > 0 and spec.contract_size > 0:
        units = volume * (contract_size if contract_size > 0 else spec.contract_size)
        limit = spec.volume_max * spec.contract_size * limits.volume_max_factor
        if units > limit:
            return Rejection(VOLUME_MAX, "volume", key, float(units), float(limit), "units", symbol)
    return None


def position_value(units: float, price: float, spec: SymbolSpec) -> float | None:
    """Value of ``units`` of the underlying at ``price``, in the follower's deposit currency
    (tick_value / tick_size per unit of price per lot); None when the spec cannot tell."""
    if not (spec.tick_value > 0 and spec.tick_size > 0 and spec.contract_size > 0 and price > 0):
        return None
    return units * price * spec.tick_value / (spec.tick_size * spec.contract_size)


def check_equity(volume: float, contract_size: float, price: float, *, key: int, symbol: str,
                 market: Market, metrics: AccountMetrics | None, equity_rate: float | None,
                 limits: Limits) -> Rejection | None:
    """One position worth more than the master's equity × leverage × factor.

    ``equity_rate``: master deposit currency → follower deposit currency (1.0 when they are
    the same; None when unknown: the rule is skipped, as it is without metrics or spec).
    """
    spec = market.spec
    if spec is None or metrics is None or equity_rate is None or not equity_rate > 0:
        return None
    if not (metrics.equity > 0 and metrics.leverage > 0):
        return None
    units = volume * (contract_size if contract_size > 0 else spec.contract_size)
    value = position_value(units, market.mid or price, spec)
    if value is None:
        return None
    limit = metrics.equity * equity_rate * metrics.leverage * limits.leverage_factor
    if value > limit:
        return Rejection(EQUITY, "volume", key, float(value), float(limit), "in deposit currency", symbol)
    return None


def check_price(price: float, field: str, *, key: int, symbol: str, market: Market, deviation: float,
                limits: Limits) -> Rejection | None:
    """``price`` further from the follower's mid than ``deviation`` × mid (at least
    ``min_price_points`` points). Value and limit are in the follower symbol's points.
    None when believable or when there is no quote/spec to compare with, or ``price`` is 0
    (not set)."""
    mid, spec = market.mid, market.spec
    if mid is None or spec is None or not spec.point > 0 or price == 0:
        return None
    allowed = max(deviation * mid, limits.min_price_points * spec.point)
    off = abs(price - mid)
    if off > allowed:
        return Rejection(PRICE, field, key, round(off / spec.point), round(allowed / spec.point), "points", symbol)
    return None


def check_time(ts_ms: int, now_ms: int, limits: Limits) -> Rejection | None:
    """A message stamped more than ``max_future_ms`` after ``now_ms`` (both UTC ms)."""
    ahead = ts_ms - now_ms
    if ahead > limits.max_future_ms:
        return Rejection(FUTURE, "ts_ms", 0, int(ahead), int(limits.max_future_ms), "ms ahead")
    return None


def check_identity(known: Position | None, new: Position) -> Rejection | None:
    """A known identifier reused for another symbol, or another side under the same ticket."""
    if known is None:
        return None
    if known.symbol != new.symbol:
        return Rejection(IDENTITY, "symbol", new.identifier, new.symbol, known.symbol, "", new.symbol)
    if known.side != new.side and known.ticket == new.ticket:
        return Rejection(IDENTITY, "side", new.identifier, new.side, known.side, "", new.symbol)
    return None


def check_position(p: Position, *, known: Position | None, new_open: bool, market: Market,
                   metrics: AccountMetrics | None, equity_rate: float | None, limits: Limits) -> Rejection | None:
    """Every rule for one position, first broken rule or None. ``new_open``: the position
    arrives in a delta and was not held before (its open price must be near the market)."""
    r = check_identity(known, p)
    if r is None:
        r = check_volume(p.volume, p.contract_size, key=p.identifier, symbol=p.symbol, market=market, limits=limits)
    if r is None:
        r = check_equity(p.volume, p.contract_size, p.price_current or p.price_open, key=p.identifier,
                         symbol=p.symbol, market=market, metrics=metrics, equity_rate=equity_rate, limits=limits)
    if r is None:
        r = check_price(p.price_current, "price_current", key=p.identifier, symbol=p.symbol, market=market,
                        deviation=limits.price_deviation, limits=limits)
    if r is None and new_open:
        r = check_price(p.price_open, "price_open", key=p.identifier, symbol=p.symbol, market=market,
                        deviation=limits.price_deviation, limits=limits)
    return r


def check_order(o: PendingOrder, *, market: Market, limits: Limits) -> Rejection | None:
    """Volume rules and the (wide) price rule for one pending order."""
    r = check_volume(o.volume, o.contract_size, key=o.ticket, symbol=o.symbol, market=market, limits=limits)
    if r is None:
        r = check_price(o.price_open, "price_open", key=o.ticket, symbol=o.symbol, market=market,
                        deviation=limits.order_price_deviation, limits=limits)
    return r


def check_update(*, ts_ms: int, now_ms: int, positions: Iterable[Position], orders: Iterable[PendingOrder],
                 known: Mapping[int, Position], is_delta: bool, markets: Mapping[str, Market],
                 metrics: AccountMetrics | None, equity_rate: float | None, limits: Limits) -> list[Rejection]:
    """All broken rules of one snapshot or delta (empty = believable).

    ``positions``/``orders``: what the message upserts (a snapshot: everything it holds).
    ``known``: the mirror's positions by identifier before the message. ``markets``: the
    follower's facts per master symbol (a missing symbol counts as unknown). ``metrics``:
    the master's latest account figures (a snapshot's own, else the last one seen).
    """
    out: list[Rejection] = []
    r = check_time(ts_ms, now_ms, limits)
    if r is not None:
        out.append(r)
    nothing = Market()
    for p in positions:
        prior = known.get(p.identifier)
        r = check_position(p, known=prior, new_open=is_delta and prior is None, market=markets.get(p.symbol, nothing),
                           metrics=metrics, equity_rate=equity_rate, limits=limits)
        if r is not None:
            out.append(r)
    for o in orders:
        r = check_order(o, market=markets.get(o.symbol, nothing), limits=limits)
        if r is not None:
            out.append(r)
    return out
