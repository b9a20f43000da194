"""Symbol-mapping assistant: which follower symbol a master symbol maps to, and why.

For each master symbol, in this order:

1. ``configured``: the account's own translation (``master_prefix``/``master_suffix``
   stripped, ``symbol_map``, ``suffix``; ``copier.symbols.translate_symbol``) names a symbol
   the follower offers -> that one. ``how`` is ``map`` when ``symbol_map`` has the key,
   ``suffix`` otherwise (the same name plus the follower's suffix, possibly empty).
2. ``matched``: otherwise, the follower symbols with the same base and profit currency
   (``currency_base``/``currency_profit``, e.g. XAU/USD for XAUUSD and GOLD), the same
   calculation mode (``trade_calc_mode``: forex vs CFD…) and, when both prices are known,
   a bid within ``PRICE_TOLERANCE`` (2 %) of the master's (US30 42 500 vs DJ30 42 501.5; an
   index and a stock CFD in USD/USD are told apart by price). One candidate -> suggested;
   several -> the one whose name contains the master's stripped name, else flagged as
   ambiguous with the candidates listed; none -> flagged "cannot map".

The lot factor is ``copier.sizing.contract_factor``: master contract size / follower
contract size (lots of the follower per master lot at equal exposure).
Pure: the node/CLI reads the facts from both terminals (``symbols_get`` and ticks).
"""
from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from copier.decisions import Skip
from copier.filters import strip_master_symbol
from copier.sizing import contract_factor
from copier.symbols import translate_symbol

PRICE_TOLERANCE = 0.02  # relative difference of bids for a currency/spec match


@dataclass(frozen=True, slots=True)
class SymbolFacts:
    """What a terminal says about one symbol (``symbol_info`` fields, ``bid`` from its tick)."""

    name: str
    currency_base: str = ""
    currency_profit: str = ""
    contract_size: float = 0.0
    calc_mode: int = -1  # trade_calc_mode; -1 = unknown (not compared)
    bid: float = 0.0  # 0 = unknown (not compared)


@dataclass(frozen=True, slots=True)
class Suggestion:
    master_symbol: str
    follower_symbol: str  # "" = cannot map
    how: str  # "map" | "suffix" | "matched" | "" (unmapped)
    master_contract_size: float
    follower_contract_size: float | None
    lot_factor: float | None
    note: str = ""

    @property
    def mapped(self) -> bool:
        return bool(self.follower_symbol)


def _same_spec(m: SymbolFacts, f: SymbolFacts) -> bool:
    if not (m.currency_base and m.currency_profit):
        return False
    if (m.currency_base.upper(), m.currency_profit.upper()) != (f.currency_base.upper(), f.currency_profit.upper()):
        return False
    if m.calc_mode >= 0 and f.calc_mode >= 0 and _calc_family(m.calc_mode) != _calc_family(f.calc_mode):
        return False
    if m.bid > 0 and f.bid > 0 and abs(f.bid / m.bid - 1.0) > PRICE_TOLERANCE:
        return False
    return True


def _calc_family(mode: int) -> str:
    """SYMBOL_CALC_MODE_FOREX 0 / FOREX_NO_LEVERAGE 5 are forex; CFD 2, CFDINDEX 3,
    CFDLEVERAGE 4 are CFDs; the exchange modes (1, 32..38) are futures/exchange."""
    if mode in (0, 5):
        return "forex"
    if mode in (2, 3, 4):
        return "cfd"
    return f"exchange:{mode}"


def _row(m: SymbolFacts, f: SymbolFacts | None, how: str, note: str = "") -> Suggestion:
    if f is None:
        return Suggestion(m.name, "", "", m.contract_size, None, None, note)
    factor = contract_factor(m.contract_size, f)  # SymbolFacts has what sizing.ContractFacts asks
    return Suggestion(m.name, f.name, how, m.contract_size, f.contract_size,
                      None if isinstance(factor, Skip) else round(factor, 10),
                      note if not isinstance(factor, Skip) else (note + "; " if note else "") + factor.reason)


def suggest_mapping(master: SymbolFacts, follower: Sequence[SymbolFacts], cfg: Any) -> Suggestion:
    """The follower symbol ``master`` maps to with ``cfg``'s translation, or by facts."""
    by_name = {f.name: f for f in follower}
    configured = translate_symbol(master.name, cfg, by_name)
    if not isinstance(configured, Skip):
        stripped = strip_master_symbol(master.name, getattr(cfg, "master_prefix", ""), getattr(cfg, "master_suffix", ""))
        symbol_map = getattr(cfg, "symbol_map", None) or {}
        how = "map" if master.name in symbol_map or stripped in symbol_map else "suffix"
        return _row(master, by_name[configured], how)
    why = configured.reason
    candidates = [f for f in follower if _same_spec(master, f)]
    stripped = strip_master_symbol(master.name, getattr(cfg, "master_prefix", ""), getattr(cfg, "master_suffix", "")).upper()
    if len(candidates) > 1:
        named = [f for f in candidates if stripped and stripped in f.name.upper()]
        if len(named) == 1:
            candidates = named
    if len(candidates) == 1:
        f = candidates[0]
        return _row(master, f, "matched", f"{why}; same {master.currency_base}/{master.currency_profit}"
                                          f"{' and price' if master.bid > 0 and f.bid > 0 else ''}: add it to symbol_map")
    if candidates:
        names = ", ".join(sorted(f.name for f in candidates))
        return _row(master, None, "", f"{why}; ambiguous: {names} all match {master.currency_base}/{master.currency_profit}")
    return _row(master, None, "", f"{why}; no follower symbol with {master.currency_base or '?'}/"
                                  f"{master.currency_profit or '?'} and a matching specification")


def suggest_all(masters: Iterable[SymbolFacts], follower: Sequence[SymbolFacts], cfg: Any) -> list[Suggestion]:
    """One suggestion per master symbol, sorted by name."""
    return [suggest_mapping(m, follower, cfg) for m in sorted(masters, key=lambda m: m.name)]


def symbol_map_patch(suggestions: Iterable[Suggestion], cfg: Any) -> dict[str, str]:
    """``symbol_map`` entries to add for the ``matched`` suggestions (the account's map plus these)."""
    out = dict(getattr(cfg, "symbol_map", None) or {})
    for s in suggestions:
        if s.how == "matched":
            out[s.master_symbol] = s.follower_symbol
    return out
