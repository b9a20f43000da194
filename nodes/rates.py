"""Deposit-currency rates for a slave's ratio sizing, from its own terminal (invariant 7).

The slave learns each symbol's ``currency_base``/``currency_profit`` from the one
``symbols_get()`` it already makes at start, finds a conversion path with the pure
``copier.currency.conversion_path``, and reads the leg symbols' ticks. A rate is kept
``ttl_ms`` (balances move slowly; the rate only scales a ratio), so this costs one
``symbol_info_tick`` per leg per minute, and nothing at all when the currencies match or
the sizing mode does not compare money.
"""
from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from copier.currency import Conversion, conversion_path, conversion_rate, mid_price
from copier.decisions import Skip
from copier.sizing import RATIO_MODES

RATE_TTL_MS = 60_000


def symbol_currencies(symbols: Iterable[Any] | None) -> dict[str, tuple[str, str]]:
    """name -> (currency_base, currency_profit) of a ``symbols_get()`` result."""
    return {str(s.name): (str(getattr(s, "currency_base", "") or ""), str(getattr(s, "currency_profit", "") or ""))
            for s in symbols or ()}


class RateBook:
    """Conversions from the slave's deposit currency into each master's, cached."""

    def __init__(self, currencies: Mapping[str, tuple[str, str]], *, ttl_ms: int = RATE_TTL_MS) -> None:
        self.currencies = dict(currencies)
        self.ttl_ms = ttl_ms
        self.reads = 0
        self._cache: dict[tuple[str, str], tuple[int, Conversion | Skip]] = {}

    def conversion(self, mt5: Any, source: str, target: str, now_ms: int) -> Conversion | Skip | None:
        """``source`` money -> ``target`` money; Skip when impossible; None while unpriced."""
        key = (source.upper(), target.upper())
        hit = self._cache.get(key)
        if hit is not None and (isinstance(hit[1], Skip) or now_ms - hit[0] < self.ttl_ms):
            return hit[1]  # a missing path stays missing: the symbol list is read once
        legs = conversion_path(key[0], key[1], self.currencies)
        if isinstance(legs, Skip):
            self._cache[key] = (now_ms, legs)
            return legs
        mids: dict[str, float] = {}
        for leg in legs:
            self.reads += 1
            tick = mt5.symbol_info_tick(leg.symbol)
            if tick is None:  # not in Market Watch yet: select it, price it next pass
                mt5.symbol_select(leg.symbol, True)
                return hit[1] if hit is not None else None
            mid = mid_price(float(tick.bid), float(tick.ask))
            if mid is not None:
                mids[leg.symbol] = mid
        conv = conversion_rate(key[0], key[1], legs, mids)
        if conv is None:
            return hit[1] if hit is not None else None
        self._cache[key] = (now_ms, conv)
        return conv

    def for_masters(self, mt5: Any, mode: str, master_metrics: Iterable[Any], slave_metrics: Any,
                    now_ms: int) -> dict[str, Conversion | Skip]:
        """The ``PlanContext.conversions`` map: master currency -> conversion (only when needed)."""
        if mode not in RATIO_MODES or slave_metrics is None:
            return {}
        mine = (slave_metrics.currency or "").upper()
        out: dict[str, Conversion | Skip] = {}
        for m in master_metrics:
            theirs = (getattr(m, "currency", "") or "").upper() if m is not None else ""
            if theirs and theirs != mine and theirs not in out:
                conv = self.conversion(mt5, mine, theirs, now_ms)
                if conv is not None:
                    out[theirs] = conv
        return out
