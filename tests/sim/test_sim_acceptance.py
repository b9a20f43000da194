"""A script written for the real MetaTrader5 package runs unchanged on a simulator terminal."""
from datetime import datetime, timedelta

from sim import Simulator


def user_script(mt5, symbol, lot):
    """Typical user code for `import MetaTrader5 as mt5` (only the module object differs)."""
    if not mt5.initialize():
        raise RuntimeError(f"initialize() failed, error code = {mt5.last_error()}")
    info = mt5.symbol_info(symbol)
    if info is None:
        raise RuntimeError(f"{symbol} not found")
    if not info.visible and not mt5.symbol_select(symbol, True):
        raise RuntimeError("symbol_select failed")
    # choose the filling mode from the bitmask (1 = FOK, 2 = IOC), never from ORDER_FILLING_* values
    if info.filling_mode & 1:
        filling = mt5.ORDER_FILLING_FOK
    elif info.filling_mode & 2:
        filling = mt5.ORDER_FILLING_IOC
    else:
        filling = mt5.ORDER_FILLING_RETURN
    point = info.point
    tick = mt5.symbol_info_tick(symbol)
    stop_distance = max(info.trade_stops_level, 10) * 10 * point
    request = {
        "action": mt5.TRADE_ACTION_DEAL,
        "symbol": symbol,
        "volume": lot,
        "type": mt5.ORDER_TYPE_BUY,
        "price": tick.ask,
        "sl": tick.ask - stop_distance,
        "tp": tick.ask + stop_distance,
        "deviation": 20,
        "magic": 234000,
        "comment": "python script open",
        "type_time": mt5.ORDER_TIME_GTC,
        "type_filling": filling,
    }
    result = mt5.order_send(request)
    if result is None or result.retcode != mt5.TRADE_RETCODE_DONE:
        raise RuntimeError(f"order_send failed: {result} {mt5.last_error()}")
    ticket = result.order
    positions = mt5.positions_get(symbol=symbol)
    assert positions is not None and len(positions) == 1
    position = positions[0]
    # modify SL/TP (resend both levels)
    mod = {"action": mt5.TRADE_ACTION_SLTP, "symbol": symbol, "position": position.ticket,
           "sl": round(position.price_open - 2 * stop_distance, info.digits), "tp": position.tp}
    r = mt5.order_send(mod)
    assert r.retcode == mt5.TRADE_RETCODE_DONE, r
    # partial close: half of the volume, rounded to the volume step
    half = round(round(position.volume / 2 / info.volume_step) * info.volume_step, 2)
    tick = mt5.symbol_info_tick(symbol)
    close = {"action": mt5.TRADE_ACTION_DEAL, "symbol": symbol, "volume": half, "type": mt5.ORDER_TYPE_SELL,
             "position": position.ticket, "price": tick.bid, "deviation": 20, "magic": 234000,
             "comment": "python script close", "type_time": mt5.ORDER_TIME_GTC, "type_filling": filling}
    r = mt5.order_send(close)
    assert r.retcode == mt5.TRADE_RETCODE_DONE, r
    remaining = mt5.positions_get(ticket=position.ticket)[0]
    close["volume"] = remaining.volume
    close["price"] = mt5.symbol_info_tick(symbol).bid
    r = mt5.order_send(close)
    assert r.retcode == mt5.TRADE_RETCODE_DONE, r
    assert mt5.positions_total() == 0
    deals = mt5.history_deals_get(position=ticket)
    from_date, to_date = datetime(2020, 1, 1), datetime.now() + timedelta(days=1)
    all_deals = mt5.history_deals_get(from_date, to_date)
    account = mt5.account_info()._asdict()
    mt5.shutdown()
    return deals, all_deals, account


def test_user_script_runs_unchanged_on_both_brokers():
    sim = Simulator.demo()
    for login, symbol, lot in ((1001, "EURUSD", 0.10), (2001, "EURUSD.c", 0.10), (2001, "GOLD", 0.02),
                               (2002, "DJ30", 0.4), (1001, "US30", 0.2)):
        mt5 = sim.terminal(login=login)  # the account "saved" in the terminal
        deals, all_deals, account = user_script(mt5, symbol, lot)
        assert [d.entry for d in deals] == [0, 1, 1]
        assert sum(d.volume for d in deals[1:]) == deals[0].volume == lot
        assert all(d.magic == 234000 for d in deals)
        assert deals[0].comment == "python script open" and deals[0].reason == 3
        assert set(deals) <= set(all_deals)
        assert account["login"] == login
        sim.advance(30)
