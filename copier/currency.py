"""Deposit-currency conversion for sizing, from one terminal's own quotes. Pure: no I/O.

Balance and equity ratios compare money of two accounts; when their deposit currencies
differ (a USD master, a JPY follower) the follower's money is first expressed in the
master's currency (ARCHITECTURE invariant 7: "never from raw balances across different
deposit currencies").

The rate comes from a symbol on the FOLLOWER's terminal whose ``currency_base`` and
``currency_profit`` are the two currencies (MT5 SymbolInfo fields). A symbol with base
``B`` and profit ``P`` quoted at price ``x`` means ``1 B = x P`` (MQL5 reference,
SymbolInfo / SYMBOL_CURRENCY_BASE, SYMBOL_CURRENCY_PROFIT). So:

* direct   (base = source, profit = target): ``rate = mid``       e.g. EUR -> USD with EURUSD
* inverse  (base = target, profit = source): ``rate = 1 / mid``   e.g. JPY -> USD with USDJPY
* cross through USD when neither exists:    ``rate = leg1 × leg2`` (each leg direct or inverse)

``mid = (bid + ask) / 2``: a ratio of account sizes needs no side of the spread. Where
no path exists the caller refuses the copy with the reason; a rate is never guessed.
"""
from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from copier.decisions import Skip

CROSS = "USD"  # the one cross currency tried when no symbol pairs the two directly


@dataclass(frozen=True, slots=True)
class Leg:
    """One conversion step: multiply by the symbol's mid, or divide when ``inverse``."""

    symbol: str
    inverse: bool = False

    def describe(self) -> str:
        return f"1/{self.symbol}" if self.inverse else self.symbol


@dataclass(frozen=True, slots=True)
class Conversion:
    """``amount_in_source × rate = amount_in_target``; ``legs`` say where the rate came from."""

    source: str
    target: str
    rate: float
    legs: tuple[Leg, ...] = ()

    @property
    def symbol(self) -> str:
        """How the rate was obtained, for the link record: ``"1/USDJPY"``, ``"EURUSD"``,
        ``"1/EURUSD*1/USDJPY"``; empty when the currencies are the same."""
        return "*".join(leg.describe() for leg in self.legs)

    def convert(self, amount: float) -> float:
        return amount * self.rate


def identity(currency: str) -> Conversion:
    return Conversion(currency, currency, 1.0, ())


def _rank(name: str, base: str, profit: str) -> tuple:
    # prefer the plain pair name (USDJPY, then USDJPY.c/USDJPYm ...), shortest, then by name
    return (not name.upper().startswith(base + profit), len(name), name)


def _direct_leg(source: str, target: str, currencies: Mapping[str, tuple[str, str]]) -> Leg | None:
    """The best single symbol converting ``source`` to ``target`` (direct before inverse)."""
    direct = [n for n, (b, p) in currencies.items() if b == source and p == target]
    if direct:
        return Leg(min(direct, key=lambda n: _rank(n, source, target)), False)
    inverse = [n for n, (b, p) in currencies.items() if b == target and p == source]
    if inverse:
        return Leg(min(inverse, key=lambda n: _rank(n, target, source)), True)
    return None


def conversion_path(source: str, target: str,
                    currencies: Mapping[str, tuple[str, str]]) -> tuple[Leg, ...] | Skip:
    """The symbols that convert ``source`` money into ``target`` money on one terminal.

    ``currencies`` maps symbol name -> (currency_base, currency_profit) of that terminal.
    Same currency: ``()``. Otherwise one direct/inverse symbol, else a cross through USD,
    else a Skip naming both currencies.
    """
    source, target = source.upper(), target.upper()
    if source == target:
        return ()
    norm = {n: (str(b).upper(), str(p).upper()) for n, (b, p) in currencies.items() if b and p and b != p}
    leg = _direct_leg(source, target, norm)
    if leg is not None:
        return (leg,)
    if CROSS not in (source, target):
        first, second = _direct_leg(source, CROSS, norm), _direct_leg(CROSS, target, norm)
        if first is not None and second is not None:
            return (first, second)
    return Skip(f"no conversion from {source} to {target} on the follower's terminal "
                f"(no symbol with base/profit currencies {source}/{target} or {target}/{source}"
                f"{'' if CROSS in (source, target) else f', nor a cross through {CROSS}'})")


def conversion_rate(source: str, target: str, legs: tuple[Leg, ...],
                    mids: Mapping[str, float]) -> Conversion | None:
    """The conversion for ``legs`` at the given mid prices; None while a price is missing."""
    rate = 1.0
    for leg in legs:
        mid = mids.get(leg.symbol)
        if mid is None or not mid > 0:
            return None
        rate = rate / mid if leg.inverse else rate * mid
    return Conversion(source.upper(), target.upper(), rate, legs)


def mid_price(bid: float, ask: float) -> float | None:
    """``(bid + ask) / 2``, or the one side that is quoted; None without a price."""
    if bid > 0 and ask > 0:
        return (bid + ask) / 2.0
    return bid if bid > 0 else (ask if ask > 0 else None)
