"""Record types returned by the terminal, with the real package's names and field order.

They behave like the package's records (C struct sequences): tuples with named fields,
``_asdict()``, built from the field values or from one sequence (``mt5.TradePosition(p)``,
as public code does), and **not picklable** -- ``pickle.dumps(mt5.account_info())`` raises
``PicklingError`` on Windows (that is what breaks bridges that pickle results), so it does
here. Like the package's types they live in ``builtins`` (``type(r).__module__``), which
is why pickle cannot find them; ``copy.copy``/``deepcopy`` still work. The ZeroMQ codec
(sim/client.py) and the mt5linux adapter (terminals/bridge.py) ship them as type name +
values and rebuild them through ``RECORD_TYPES``. Field order is copied from the reference §3.
"""
from __future__ import annotations

from collections import namedtuple as _namedtuple
from typing import Any


def namedtuple(name: str, fields: str) -> type:
    """A record type like the package's: a namedtuple subclass named ``name`` in
    ``builtins`` whose constructor also takes one sequence of all the field values."""
    base = _namedtuple(name, fields)
    width = len(base._fields)

    def __new__(cls, *args: Any, **kwargs: Any):
        if len(args) == 1 and not kwargs and isinstance(args[0], (tuple, list)) and len(args[0]) == width:
            return tuple.__new__(cls, args[0])  # struct-sequence style: Record(sequence)
        return base.__new__(cls, *args, **kwargs)

    return type(name, (base,), {"__slots__": (), "__new__": __new__, "__module__": "builtins",
                                "__qualname__": name, "__doc__": f"{name}({', '.join(base._fields)})"})


AccountInfo = namedtuple(
    "AccountInfo",
    "login trade_mode leverage limit_orders margin_so_mode trade_allowed trade_expert "
    "margin_mode currency_digits fifo_close balance credit profit equity margin margin_free "
    "margin_level margin_so_call margin_so_so margin_initial margin_maintenance assets "
    "liabilities commission_blocked name server currency company",
)

TerminalInfo = namedtuple(
    "TerminalInfo",
    "community_account community_connection connected dlls_allowed trade_allowed "
    "tradeapi_disabled email_enabled ftp_enabled notifications_enabled mqid build maxbars "
    "codepage ping_last community_balance retransmission company name language path "
    "data_path commondata_path",
)

SymbolInfo = namedtuple(
    "SymbolInfo",
    "custom chart_mode select visible session_deals session_buy_orders session_sell_orders "
    "volume volumehigh volumelow time digits spread spread_float ticks_bookdepth "
    "trade_calc_mode trade_mode start_time expiration_time trade_stops_level "
    "trade_freeze_level trade_exemode swap_mode swap_rollover3days margin_hedged_use_leg "
    "expiration_mode filling_mode order_mode order_gtc_mode option_mode option_right bid "
    "bidhigh bidlow ask askhigh asklow last lasthigh lastlow volume_real volumehigh_real "
    "volumelow_real option_strike point trade_tick_value trade_tick_value_profit "
    "trade_tick_value_loss trade_tick_size trade_contract_size trade_accrued_interest "
    "trade_face_value trade_liquidity_rate volume_min volume_max volume_step volume_limit "
    "swap_long swap_short margin_initial margin_maintenance session_volume session_turnover "
    "session_interest session_buy_orders_volume session_sell_orders_volume session_open "
    "session_close session_aw session_price_settlement session_price_limit_min "
    "session_price_limit_max margin_hedged price_change price_volatility price_theoretical "
    "price_greeks_delta price_greeks_theta price_greeks_gamma price_greeks_vega "
    "price_greeks_rho price_greeks_omega price_sensitivity basis category currency_base "
    "currency_profit currency_margin bank description exchange formula isin name page path",
)

Tick = namedtuple("Tick", "time bid ask last volume time_msc flags volume_real")

TradePosition = namedtuple(
    "TradePosition",
    "ticket time time_msc time_update time_update_msc type magic identifier reason volume "
    "price_open sl tp price_current swap profit symbol comment external_id",
)

TradeOrder = namedtuple(
    "TradeOrder",
    "ticket time_setup time_setup_msc time_done time_done_msc time_expiration type "
    "type_time type_filling state magic position_id position_by_id reason volume_initial "
    "volume_current price_open sl tp price_current price_stoplimit symbol comment external_id",
)

TradeDeal = namedtuple(
    "TradeDeal",
    "ticket order time time_msc type entry magic position_id reason volume price commission "
    "swap profit fee symbol comment external_id",
)

TradeRequest = namedtuple(
    "TradeRequest",
    "action magic order symbol volume price stoplimit sl tp deviation type type_filling "
    "type_time expiration comment position position_by",
)

OrderSendResult = namedtuple(
    "OrderSendResult",
    "retcode deal order volume price bid ask comment request_id retcode_external request",
)

OrderCheckResult = namedtuple(
    "OrderCheckResult",
    "retcode balance equity profit margin margin_free margin_level comment request",
)

BookInfo = namedtuple("BookInfo", "type price volume volume_dbl")

RECORD_TYPES: dict[str, type] = {
    cls.__name__: cls
    for cls in (
        AccountInfo, TerminalInfo, SymbolInfo, Tick, TradePosition, TradeOrder, TradeDeal,
        TradeRequest, OrderSendResult, OrderCheckResult, BookInfo,
    )
}

_DTYPE_FIELDS = {
    "RATES_DTYPE": [
        ("time", "<i8"), ("open", "<f8"), ("high", "<f8"), ("low", "<f8"), ("close", "<f8"),
        ("tick_volume", "<u8"), ("spread", "<i4"), ("real_volume", "<u8"),
    ],
    "TICKS_DTYPE": [
        ("time", "<i8"), ("bid", "<f8"), ("ask", "<f8"), ("last", "<f8"), ("volume", "<u8"),
        ("time_msc", "<i8"), ("flags", "<u4"), ("volume_real", "<f8"),
    ],
}


def __getattr__(name: str):
    """``RATES_DTYPE``/``TICKS_DTYPE`` (numpy), built on first use so that importing the
    record types does not load numpy (clients start faster)."""
    fields = _DTYPE_FIELDS.get(name)
    if fields is None:
        raise AttributeError(f"module 'sim.records' has no attribute {name!r}")
    import numpy as np

    value = np.dtype(fields)
    globals()[name] = value
    return value


#: request fields by expected Python type; ints accept bool-free ints, floats accept ints
REQUEST_INT_FIELDS = (
    "action", "magic", "order", "deviation", "type", "type_filling", "type_time",
    "expiration", "position", "position_by",
)
REQUEST_FLOAT_FIELDS = ("volume", "price", "stoplimit", "sl", "tp")
REQUEST_STR_FIELDS = ("symbol", "comment")
