"""Small MT5 scripts a trader would write, used by the integration tests."""
from __future__ import annotations


def filling_for(mt5, symbol: str) -> int:
    mode = mt5.symbol_info(symbol).filling_mode
    if mode & 1:
        return mt5.ORDER_FILLING_FOK
    if mode & 2:
        return mt5.ORDER_FILLING_IOC
    return mt5.ORDER_FILLING_RETURN


def market(mt5, symbol: str, side: str, volume: float, *, sl: float = 0.0, tp: float = 0.0, position: int = 0, comment: str = ""):
    tick = mt5.symbol_info_tick(symbol)
    req = {
        "action": mt5.TRADE_ACTION_DEAL, "symbol": symbol, "volume": volume,
        "type": mt5.ORDER_TYPE_BUY if side == "BUY" else mt5.ORDER_TYPE_SELL,
        "price": tick.ask if side == "BUY" else tick.bid, "sl": sl, "tp": tp,
        "deviation": 20, "type_filling": filling_for(mt5, symbol), "comment": comment,
    }
    if position:
        req["position"] = position
    result = mt5.order_send(req)
    assert result is not None and result.retcode == mt5.TRADE_RETCODE_DONE, (result, mt5.last_error())
    return result


def close(mt5, ticket: int, volume: float | None = None):
    pos = mt5.positions_get(ticket=ticket)[0]
    return market(mt5, pos.symbol, "SELL" if pos.type == 0 else "BUY", volume or pos.volume, position=ticket)


def modify(mt5, ticket: int, sl: float, tp: float):
    pos = mt5.positions_get(ticket=ticket)[0]
    result = mt5.order_send({"action": mt5.TRADE_ACTION_SLTP, "symbol": pos.symbol, "position": ticket, "sl": sl, "tp": tp})
    assert result is not None and result.retcode == mt5.TRADE_RETCODE_DONE, (result, mt5.last_error())
    return result


def volumes(mt5, symbol: str | None = None) -> list[float]:
    positions = mt5.positions_get(symbol=symbol) if symbol else mt5.positions_get()
    return sorted(round(p.volume, 2) for p in positions)
