"""``cli.py symbols suggest``: the follower symbol each master symbol would map to.

Master symbols *seen* are those in the store's links of that master (any follower), the
master's open positions and pending orders, and its deals of the last 30 days; ``--all``
lists every symbol of the master's terminal. Facts (currencies, contract size, calc mode,
bid) come from both terminals' ``symbols_get()`` — the simulator on Linux, MT5 on
Windows, opened as ``cli.py sizing`` does — and the rule is ``copier.symbol_match``.
"""
from __future__ import annotations

from datetime import datetime, timedelta, timezone
from typing import Any

from copier.symbol_match import Suggestion, SymbolFacts, suggest_all

HISTORY_DAYS = 30


def facts(info: Any) -> SymbolFacts:
    return SymbolFacts(name=str(info.name), currency_base=str(info.currency_base), currency_profit=str(info.currency_profit),
                       contract_size=float(info.trade_contract_size), calc_mode=int(info.trade_calc_mode),
                       bid=float(info.bid or 0.0))


def seen_master_symbols(store: Any, master_name: str, master_mt5: Any, server_now_s: int = 0) -> set[str]:
    """Symbols the master traded: links in the store, open positions/orders, and deals of the
    last ``HISTORY_DAYS`` on the terminal's own clock (``server_now_s``: its latest quote
    time; the window ends a day later, as server time runs ahead of UTC)."""
    seen = {t["master_symbol"] for t in store.list_trades(master_name=master_name) if t.get("master_symbol")}
    for rows in (master_mt5.positions_get(), master_mt5.orders_get()):
        seen |= {r.symbol for r in rows or ()}
    now = datetime.fromtimestamp(server_now_s, tz=timezone.utc) if server_now_s > 0 else datetime.now(timezone.utc)
    deals = master_mt5.history_deals_get(now - timedelta(days=HISTORY_DAYS), now + timedelta(days=1))
    seen |= {d.symbol for d in deals or () if d.symbol}
    return seen


def suggest_rows(cfg: Any, store: Any, master_name: str, master_mt5: Any, follower_mt5: Any, *,
                 all_symbols: bool = False) -> list[dict[str, Any]]:
    """One row per master symbol seen (or every one with ``all_symbols``)."""
    master_infos = {s.name: s for s in master_mt5.symbols_get() or ()}
    follower = [facts(s) for s in follower_mt5.symbols_get() or ()]
    server_now = max((int(s.time) for s in master_infos.values()), default=0)
    names = set(master_infos) if all_symbols else seen_master_symbols(store, master_name, master_mt5, server_now)
    known = [facts(master_infos[n]) for n in names if n in master_infos]
    rows = [_row(master_name, s) for s in suggest_all(known, follower, cfg)]
    for n in sorted(names - set(master_infos)):
        rows.append({"master": master_name, "master_symbol": n, "follower_symbol": "", "how": "", "mapped": False,
                     "master_contract_size": None, "follower_contract_size": None, "lot_factor": None,
                     "note": "no longer offered by the master's terminal"})
    return rows


def _row(master_name: str, s: Suggestion) -> dict[str, Any]:
    return {"master": master_name, "master_symbol": s.master_symbol, "follower_symbol": s.follower_symbol, "how": s.how,
            "mapped": s.mapped, "master_contract_size": s.master_contract_size,
            "follower_contract_size": s.follower_contract_size, "lot_factor": s.lot_factor, "note": s.note}
