"""Margin, profit and currency conversion formulas (pure functions).

Formulas (MT5 calc modes; ``cs`` = contract size, ``lev`` = account leverage,
``rate`` = symbol ``margin_rate``):

* FOREX (0):              margin = volume * cs / lev * rate                  [margin ccy]
* FOREX_NO_LEVERAGE (5):  margin = volume * cs * rate                        [margin ccy]
* CFD (2):                margin = volume * cs * price * rate                [margin ccy]
* CFDLEVERAGE (4):        margin = volume * cs * price / lev * rate          [margin ccy]
* profit = (close - open) * volume * cs   (BUY; negated for SELL)          [profit ccy]

Conversion to the account currency: identity when equal; when the symbol itself quotes
margin ccy against the account ccy (EURUSD margin in EUR on a USD account) the order's
own price is used; otherwise through another symbol of the same broker at its current
bid: ``base==from, profit==to`` multiplies, ``base==to, profit==from`` divides.
"""
from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Protocol

from . import constants as C

RateFn = Callable[[str, str], float]

SUPPORTED_CALC_MODES = (
    C.SYMBOL_CALC_MODE_FOREX,
    C.SYMBOL_CALC_MODE_FOREX_NO_LEVERAGE,
    C.SYMBOL_CALC_MODE_CFD,
    C.SYMBOL_CALC_MODE_CFDLEVERAGE,
)


class SymbolLike(Protocol):
    name: str
    calc_mode: int
    contract_size: float
    margin_rate: float
    currency_base: str
    currency_profit: str
    currency_margin: str


def conversion_path(symbols: Mapping[str, SymbolLike], frm: str, to: str) -> tuple[str, bool] | None:
    """Which symbol converts ``frm`` into ``to``: (name, divide?); ("", False) = identity."""
    if frm == to:
        return ("", False)
    for s in symbols.values():
        if s.currency_base == frm and s.currency_profit == to:
            return (s.name, False)
    for s in symbols.values():
        if s.currency_base == to and s.currency_profit == frm:
            return (s.name, True)
    return None


def margin_in_margin_ccy(sym: SymbolLike, volume: float, price: float, leverage: int) -> float:
    cs = sym.contract_size
    mode = sym.calc_mode
    if mode == C.SYMBOL_CALC_MODE_FOREX:
        return volume * cs / leverage * sym.margin_rate
    if mode == C.SYMBOL_CALC_MODE_FOREX_NO_LEVERAGE:
        return volume * cs * sym.margin_rate
    if mode == C.SYMBOL_CALC_MODE_CFD:
        return volume * cs * price * sym.margin_rate
    if mode == C.SYMBOL_CALC_MODE_CFDLEVERAGE:
        return volume * cs * price / leverage * sym.margin_rate
    raise ValueError(f"unsupported calc mode {mode}")


def margin(sym: SymbolLike, volume: float, price: float, leverage: int, account_ccy: str, rates: RateFn) -> float:
    """Margin in the account currency (unrounded)."""
    raw = margin_in_margin_ccy(sym, volume, price, leverage)
    mccy = sym.currency_margin
    if mccy == account_ccy:
        return raw
    if mccy == sym.currency_base and sym.currency_profit == account_ccy:
        return raw * price
    return raw * rates(mccy, account_ccy)


def profit(sym: SymbolLike, is_buy: bool, volume: float, price_open: float, price_close: float,
           account_ccy: str, rates: RateFn) -> float:
    """Profit in the account currency (unrounded)."""
    diff = (price_close - price_open) if is_buy else (price_open - price_close)
    raw = diff * volume * sym.contract_size
    if sym.currency_profit == account_ccy:
        return raw
    return raw * rates(sym.currency_profit, account_ccy)


def money(x: float) -> float:
    """Round to account currency digits (2), avoiding -0.0."""
    r = round(x + 0.0, 2)
    return 0.0 if r == 0 else r
