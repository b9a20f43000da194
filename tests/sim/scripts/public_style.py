"""A small MT5 script written the way public MetaTrader5 code is written.

Nothing here knows about the simulator: keyword arguments, record types imported from the
module, the package's Buy/Close helpers and a copy_rates_from a month back. Run it with
``python -m sim run [--login N] public_style.py SYMBOL VOLUME``; it prints one JSON line of
what it saw and exits 0, or prints the failure and exits 3.
"""
import json
import sys
from datetime import datetime, timedelta

import MetaTrader5 as mt5
from MetaTrader5 import AccountInfo, OrderSendResult, TradeDeal, TradePosition


def fail(what):
    print(f"{what} failed, error code = {mt5.last_error()}")
    mt5.shutdown()
    sys.exit(3)


symbol, volume = sys.argv[1], float(sys.argv[2])

if not mt5.initialize(path=None, timeout=10000, portable=False):
    fail("initialize()")
account = mt5.account_info()
if not isinstance(account, AccountInfo):
    fail("account_info()")
if not mt5.login(login=account.login, server=account.server):
    fail("login()")
if not mt5.symbol_select(symbol, True):
    fail("symbol_select()")

# a month back, as a strategy warming up its indicators does
month_ago = datetime.now() - timedelta(days=30)
rates = mt5.copy_rates_from(symbol, mt5.TIMEFRAME_H1, month_ago, 24)
if rates is None:
    fail("copy_rates_from()")
sma = float(rates["close"].mean())

result = mt5.Buy(symbol, volume, comment="public-style")
if not isinstance(result, OrderSendResult) or result.retcode != mt5.TRADE_RETCODE_DONE:
    fail(f"Buy() -> {result}")
positions = mt5.positions_get(symbol=symbol)
mine = [p for p in positions if isinstance(p, TradePosition) and p.comment == "public-style"]
closed = mt5.Close(symbol, ticket=mine[0].ticket)

now = datetime.now()
deals = mt5.history_deals_get(now - timedelta(days=2), now + timedelta(days=2), group=f"*{symbol[:3]}*")
ours = [d for d in deals if isinstance(d, TradeDeal) and d.position_id == mine[0].ticket]
odd = mt5.history_deals_get(now - timedelta(days=2), now + timedelta(days=2), datetime_from=1)
odd_error = mt5.last_error()
mt5.shutdown()

print(json.dumps({
    "login": account.login, "bars": len(rates), "first_bar": int(rates["time"][0]),
    "month_ago": int(month_ago.timestamp()), "sma": sma,
    "buy_retcode": result.retcode, "closed": closed,
    "deal_entries": [d.entry for d in ours], "commissions": [d.commission for d in ours],
    "odd_keyword": [odd, list(odd_error)],
}))
