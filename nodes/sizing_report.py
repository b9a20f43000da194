"""``cli.py sizing``: what a 1-lot master trade becomes on one follower, per mapped symbol.

It reads the symbol specs and account money straight from the two terminals (the
simulator on Linux, MT5 on Windows) and runs the very rules the slave uses
(``copier.sizing.size_copy``, ``copier.symbols.translate_symbol``, ``copier.currency``),
so the table shows the lot factor and the deposit-currency conversion a copy would get now.
"""
from __future__ import annotations

from typing import Any

from copier.currency import conversion_path, conversion_rate, mid_price
from copier.decisions import Skip
from copier.filters import symbol_allowed
from copier.sizing import RATIO_MODES, normalize_volume, size_copy
from copier.symbols import translate_symbol
from nodes.rates import symbol_currencies
from terminals.convert import metrics_from_mt5, spec_from_mt5


def _conversion(follower_mt5: Any, currencies: dict, source: str, target: str) -> Any:
    legs = conversion_path(source, target, currencies)
    if isinstance(legs, Skip):
        return legs
    mids = {}
    for leg in legs:
        follower_mt5.symbol_select(leg.symbol, True)
        tick = follower_mt5.symbol_info_tick(leg.symbol)
        mid = mid_price(float(tick.bid), float(tick.ask)) if tick is not None else None
        if mid is not None:
            mids[leg.symbol] = mid
    conv = conversion_rate(source, target, legs, mids)
    return conv if conv is not None else Skip(f"no price for {'/'.join(l.symbol for l in legs)} on the follower")


def sizing_rows(cfg: Any, master_name: str, master_mt5: Any, follower_mt5: Any, *, volume: float = 1.0) -> list[dict[str, Any]]:
    """One row per master symbol the follower would copy (filters and symbol map applied)."""
    m_info, f_info = master_mt5.account_info(), follower_mt5.account_info()
    mm = metrics_from_mt5(m_info) if m_info is not None else None
    fm = metrics_from_mt5(f_info) if f_info is not None else None
    f_symbols = follower_mt5.symbols_get() or ()
    available = {s.name for s in f_symbols}
    currencies = symbol_currencies(f_symbols)
    conversion = None
    if cfg.sizing.mode in RATIO_MODES and mm is not None and fm is not None and mm.currency.upper() != fm.currency.upper():
        conversion = _conversion(follower_mt5, currencies, fm.currency, mm.currency)
    rows = []
    for ms in master_mt5.symbols_get() or ():
        row: dict[str, Any] = {"master": master_name, "master_symbol": ms.name, "follower_symbol": "",
                               "master_contract_size": float(ms.trade_contract_size), "follower_contract_size": None,
                               "lot_factor": None, "volume": None, "fx": "", "fx_rate": None, "note": ""}
        rows.append(row)
        refused = symbol_allowed(ms.name, allow=cfg.symbols_allow, deny=cfg.symbols_deny,
                                 master_prefix=cfg.master_prefix, master_suffix=cfg.master_suffix)
        symbol = refused or translate_symbol(ms.name, cfg, available)
        if isinstance(symbol, Skip):
            row["note"] = symbol.reason
            continue
        row["follower_symbol"] = symbol
        info = follower_mt5.symbol_info(symbol)
        if info is None:
            row["note"] = f"no symbol_info for {symbol}"
            continue
        spec = spec_from_mt5(info)
        row["follower_contract_size"] = spec.contract_size
        if isinstance(conversion, Skip):
            row["note"] = conversion.reason
            continue
        sized = size_copy(volume, cfg.sizing, master_contract_size=row["master_contract_size"], master_metrics=mm,
                          slave_metrics=fm, sl_distance_price=None, slave_spec=spec, conversion=conversion)
        if isinstance(sized, Skip):
            row["note"] = sized.reason
            continue
        row["lot_factor"] = sized.contract_factor or None
        if sized.conversion is not None:
            row["fx"], row["fx_rate"] = sized.conversion.symbol, sized.conversion.rate
        vol = normalize_volume(sized.volume, spec, max_lot=cfg.max_lot)
        if isinstance(vol, Skip):
            row["note"] = vol.reason
        else:
            row["volume"] = vol
            if sized.ratio != 1.0:
                row["note"] = f"{cfg.sizing.mode.split('_')[0]} ratio {sized.ratio:.4g}"
    return rows
