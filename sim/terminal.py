"""A terminal object with the MetaTrader5 module's surface, bound to a Simulator.

Same function names, argument shapes (positional-only / keyword-only), return types and
failure behaviour (``None``/``False`` + ``last_error()``) as the real package, so a script
written for ``import MetaTrader5 as mt5`` runs unchanged with ``mt5 = sim.terminal()``.
Arguments and results are plain Python values, namedtuples, numpy arrays or datetimes,
so the ZeroMQ server can forward every call.
"""
from __future__ import annotations

import calendar
import functools
import hashlib
import inspect
import re
import time
from datetime import datetime
from numbers import Integral, Real
from typing import Any

import numpy as np

from . import constants as C
from . import money as M
from . import trading
from .constants import PACKAGE_VERSION
from .helpers import PackageHelpers
from .market import TIMEFRAME_SECONDS, Feed
from .records import (
    RECORD_TYPES,
    REQUEST_FLOAT_FIELDS,
    REQUEST_INT_FIELDS,
    REQUEST_STR_FIELDS,
    AccountInfo,
    BookInfo,
    OrderCheckResult,
    OrderSendResult,
    SymbolInfo,
    TerminalInfo,
    Tick,
    TradeRequest,
)
from .state import AccountState

TERMINAL_BUILD = 5260
BUILD_DATE = "12 Sep 2025"
MAXBARS = 100_000

OK = (C.RES_S_OK, "Success")
NO_IPC = (C.RES_E_INTERNAL_FAIL_CONNECT, "No IPC connection")
IPC_TIMEOUT = (C.RES_E_INTERNAL_FAIL_TIMEOUT, "IPC timeout")
INVALID_PARAMS = (C.RES_E_INVALID_PARAMS, "Terminal: Invalid params")
NOT_FOUND = (C.RES_E_NOT_FOUND, "Terminal: Not found")
AUTH_FAILED = (C.RES_E_AUTH_FAILED, "Terminal: Authorization failed")
CALL_FAILED = (C.RES_E_FAIL, "Terminal: Call failed")
PROCESS_CREATE_FAILED = (C.RES_E_INTERNAL_FAIL_INIT, "IPC initialize failed, Process create failed")


class _Fail(Exception):
    """Internal: abort a call with ``last_error`` = err and return ``value``."""

    def __init__(self, err: tuple[int, str], value: Any = None) -> None:
        super().__init__(err)
        self.err = err
        self.value = value


def to_seconds(value: Any) -> int:
    """A date argument as the integer the terminal compares with server times.

    Aware datetimes -> their epoch; naive datetimes -> read as if the local zone were
    UTC (the real package uses the PC's zone); ints/floats -> seconds.
    """
    try:
        if isinstance(value, datetime):
            if value.tzinfo is None:
                return calendar.timegm(value.timetuple())
            return int(value.timestamp())
        if isinstance(value, Real) and not isinstance(value, bool):
            return int(value)
    except (ValueError, OverflowError):
        pass
    raise _Fail(INVALID_PARAMS)


def _keywords(fail_value: Any):
    """Decorator for the functions that take keywords: an unknown keyword answers
    ``fail_value`` with (-2, 'Terminal: Invalid params'), as the package does
    (``history_deals_get(d1, d2, datetime_from=1)`` -> None), instead of a TypeError.
    ``inspect.signature`` still shows the real parameters."""
    def wrap(fn):
        P = inspect.Parameter
        known = frozenset(p.name for p in inspect.signature(fn).parameters.values()
                          if p.kind in (P.POSITIONAL_OR_KEYWORD, P.KEYWORD_ONLY))

        @functools.wraps(fn)
        def call(self, *args, **kwargs):
            if kwargs and not known.issuperset(kwargs):
                self._error = INVALID_PARAMS
                return fail_value
            return fn(self, *args, **kwargs)
        return call
    return wrap


def _group_matcher(group: str):
    masks = [m.strip() for m in group.split(",") if m.strip()]
    inc = [m for m in masks if not m.startswith("!")] or ["*"]
    exc = [m[1:] for m in masks if m.startswith("!")]

    def rx(masks_: list[str]):
        pats = ["^" + re.escape(m).replace(r"\*", ".*") + "$" for m in masks_]
        return re.compile("|".join(pats), re.IGNORECASE) if pats else None

    inc_rx, exc_rx = rx(inc), rx(exc)
    return lambda name: bool(inc_rx.match(name)) and not (exc_rx and exc_rx.match(name))


class Terminal(PackageHelpers):
    """Module-like MT5 terminal. Constants and record types are class attributes
    (``mt5.ORDER_TYPE_BUY``, ``mt5.TradePosition``); ``Buy``/``Sell``/``Close``/``_RawOrder``
    come from ``sim.helpers``."""

    __version__ = PACKAGE_VERSION
    __author__ = "MetaQuotes Ltd."
    # True while a caller that already slept an injected latency (or replays a call, see
    # sim.cluster) runs the call: _latency() then does not sleep again.
    _skip_latency = False

    def __init__(self, sim, login: int | None = None, password: str | None = None) -> None:
        self._sim = sim
        self._saved_login = login
        self._saved_password = password
        self._login: int | None = None  # login of a session without a terminal path
        self._term = None                # the world's TerminalState after initialize(path=...)
        self._error: tuple[int, str] = OK

    # --- plumbing ------------------------------------------------------------------------
    def _latency(self) -> None:
        if self._skip_latency:
            return
        login = self._current()
        if login is not None:
            f = self._sim.faults.get(login)
            if f is not None and f.latency_ms > 0:
                time.sleep(f.latency_ms / 1000.0)

    def _call(self, fail_value: Any, fn, *args, name: str = "") -> Any:
        """Run ``fn(acct, *args)`` connected and locked; map failures to ``fail_value``.

        ``name``: the MT5 function, for faults that act after a given call (``price_after``).
        """
        self._latency()
        with self._sim.lock:
            login = self._current()
            if login is None or self._sim.faults[login].disconnected:
                self._error = NO_IPC
                return fail_value
            try:
                result = fn(self._sim.accounts[login], *args)
            except _Fail as e:
                self._error = e.err
                return fail_value if e.value is None else e.value
            self._error = OK
            move = self._sim.faults[login].take_price_after(name) if name else None
            if move is not None:  # the answer is read; the market moves before the next call
                self._sim.set_price(move["symbol"], move["bid"], broker=move["broker"])
            return result

    def _feed(self, acct: AccountState, symbol: Any) -> Feed:
        if not isinstance(symbol, str):
            raise _Fail(INVALID_PARAMS)
        feed = acct.broker.feeds.get(symbol)
        if feed is None:
            raise _Fail(NOT_FOUND)
        return feed

    # --- connection ----------------------------------------------------------------------
    # A session is either on a terminal of the world (``initialize(path=...)``: the login is
    # the terminal's, shared with every session attached to it and switched by any of them)
    # or, without a path, on a private terminal of its own (``self._login``).
    def _current(self) -> int | None:
        """The login this session works on now (its terminal's current login if attached)."""
        term = self._term
        return term.login if term is not None else self._login

    @staticmethod
    def _bad_args(login: Any, password: Any, server: Any, timeout: Any, portable: Any = False) -> bool:
        """Argument types the package refuses with (-2, 'Terminal: Invalid params')."""
        return bool(
            (login is not None and (not isinstance(login, Integral) or isinstance(login, bool)))
            or (password is not None and not isinstance(password, str))
            or (server is not None and not isinstance(server, str))
            or not isinstance(timeout, Integral) or isinstance(timeout, bool) or timeout <= 0
            or not isinstance(portable, bool))

    @_keywords(False)
    def initialize(self, path: str | None = None, *, login: int | None = None, password: str | None = None,
                   server: str | None = None, timeout: int = 60000, portable: bool = False) -> bool:
        if (path is not None and not isinstance(path, str)) or self._bad_args(login, password, server,
                                                                              timeout, portable):
            self._error = INVALID_PARAMS
            return False
        with self._sim.lock:
            if path is not None:
                return self._attach(path, login, password, server)
            target = login if login is not None else (self._current() or self._saved_login)
            if password is None and target == self._saved_login:
                password = self._saved_password
            self._login, self._term = None, None
            err = self._authorize(target, password, server)
            if err is not None:
                self._error = err
                return False
            self._login = self._landing(target)
            self._error = OK
            return True

    def _attach(self, path: str, login: int | None, password: str | None, server: str | None) -> bool:
        """``initialize(path=...)``: attach to the world's terminal at ``path``; with ``login``
        log that terminal (and so every session attached to it) into ``login``."""
        self._login, self._term = None, None
        term = self._sim.find_terminal(path)
        if term is None:
            self._error = PROCESS_CREATE_FAILED
            return False
        if login is None:
            current = term.login
            if current is None or (server is not None and server != self._sim.accounts[current].broker.name):
                err = AUTH_FAILED
            elif self._sim.faults[current].disconnected:
                err = NO_IPC
            else:
                err = None
        else:
            err = self._log_terminal_in(term, login, password, server)
        if err is not None:
            self._error = err
            return False
        self._term = term
        self._error = OK
        return True

    def _log_terminal_in(self, term, login: Any, password: Any, server: Any) -> tuple[int, str] | None:
        """Switch a world terminal's account (for every session on it); None on success."""
        if password is None:
            if login in term.passwords:
                password = term.passwords[login]
            elif login == self._saved_login:
                password = self._saved_password
        err = self._authorize(login, password, server)
        if err is not None:
            return err
        term.passwords[login] = password
        term.login = self._landing(login)
        return None

    def _landing(self, login: int) -> int:
        """The login a successful login into ``login`` really ends on (``wrong_login`` fault)."""
        return self._sim.faults[login].wrong_login or login

    def _authorize(self, login: Any, password: Any, server: Any) -> tuple[int, str] | None:
        if (login is not None and not isinstance(login, Integral)) or (
                password is not None and not isinstance(password, str)) or (
                server is not None and not isinstance(server, str)):
            return INVALID_PARAMS
        acct = self._sim.accounts.get(login) if login is not None else None
        if acct is None:
            return AUTH_FAILED
        if self._sim.faults[login].disconnected:
            return NO_IPC
        if acct.d.password is not None and password != acct.d.password:
            return AUTH_FAILED
        if server is not None and server != acct.broker.name:
            return AUTH_FAILED
        return None

    @_keywords(False)
    def login(self, login: int, password: str | None = None, server: str | None = None,
              timeout: int = 60000) -> bool:
        self._latency()
        with self._sim.lock:
            current = self._current()
            if current is None or self._sim.faults[current].disconnected:
                self._error = NO_IPC
                return False
            if login is None or self._bad_args(login, password, server, timeout):
                self._error = INVALID_PARAMS
                return False
            if self._term is not None:
                err = self._log_terminal_in(self._term, login, password, server)
            else:
                if password is None and login == self._saved_login:
                    password = self._saved_password
                err = self._authorize(login, password, server)
                if err is None:
                    self._login = self._landing(login)
            if err is not None:
                self._error = err
                return False
            self._error = OK
            return True

    def shutdown(self) -> None:
        with self._sim.lock:
            self._login, self._term = None, None
        return None

    def version(self):
        return self._call(None, lambda a: (500, TERMINAL_BUILD, BUILD_DATE))

    def last_error(self) -> tuple[int, str]:
        return self._error

    # --- account / terminal ----------------------------------------------------------------
    def account_info(self):
        return self._call(None, self._account_info)

    def _account_info(self, acct: AccountState) -> AccountInfo:
        d = acct.d
        profit, equity, margin, free, level = acct.metrics()
        return AccountInfo(
            d.login, d.trade_mode, d.leverage, d.limit_orders, C.ACCOUNT_STOPOUT_MODE_PERCENT, d.trade_allowed,
            d.trade_expert, d.margin_mode, 2, d.fifo_close, acct.balance, acct.credit, profit, equity, margin, free,
            level, d.margin_so_call, d.margin_so_so, 0.0, 0.0, 0.0, 0.0, 0.0, d.name, acct.broker.name, d.currency,
            acct.broker.d.company,
        )

    def terminal_info(self):
        return self._call(None, self._terminal_info)

    def _terminal_info(self, acct: AccountState) -> TerminalInfo:
        company = acct.broker.d.company
        roaming = "C:\\Users\\trader\\AppData\\Roaming\\MetaQuotes\\Terminal\\"
        term = self._term
        if term is not None:  # the installation folder of the terminal initialize(path=) named
            folder = term.folder
            data = roaming + hashlib.md5(folder.upper().encode("utf-8")).hexdigest().upper()
        else:
            folder = f"C:\\Program Files\\{company} MetaTrader 5"
            data = roaming + f"{acct.login:032X}"
        return TerminalInfo(
            False, False, True, False, not self._sim.faults[acct.login].algo_off, False, False, False, False,
            False, TERMINAL_BUILD, MAXBARS, 0, 35000, 0.0, 0.0, company, f"{company} MetaTrader 5", "English",
            folder, data, "C:\\Users\\trader\\AppData\\Roaming\\MetaQuotes\\Terminal\\Common",
        )

    # --- symbols -------------------------------------------------------------------------
    def symbols_total(self) -> int:
        return self._call(0, lambda a: len(a.broker.feeds))

    @_keywords(None)
    def symbols_get(self, group: str | None = None):
        def run(acct: AccountState):
            if group is not None and not isinstance(group, str):
                raise _Fail(INVALID_PARAMS)
            match = _group_matcher(group) if group else (lambda n: True)
            return tuple(self._symbol_info(acct, f) for n, f in acct.broker.feeds.items() if match(n))
        return self._call(None, run)

    def symbol_info(self, symbol: str, /):
        return self._call(None, lambda a: self._symbol_info(a, self._feed(a, symbol)))

    def _symbol_info(self, acct: AccountState, f: Feed) -> SymbolInfo:
        s = f.sym
        tick_value = s.tick_size * s.contract_size
        if s.currency_profit != acct.d.currency:
            tick_value *= acct.broker.rate(s.currency_profit, acct.d.currency)
        selected = s.name in acct.selected
        change = round((f.bid - f.session_open) / f.session_open * 100.0, 2) if f.session_open else 0.0
        return SymbolInfo(
            custom=False, chart_mode=C.SYMBOL_CHART_MODE_BID, select=selected, visible=selected, session_deals=0,
            session_buy_orders=0, session_sell_orders=0, volume=0, volumehigh=0, volumelow=0,
            time=f.time_msc // 1000, digits=s.digits, spread=s.spread, spread_float=False, ticks_bookdepth=10,
            trade_calc_mode=s.calc_mode, trade_mode=s.trade_mode, start_time=0, expiration_time=0,
            trade_stops_level=s.stops_level, trade_freeze_level=s.freeze_level, trade_exemode=s.trade_exemode,
            swap_mode=C.SYMBOL_SWAP_MODE_POINTS, swap_rollover3days=s.swap_rollover3days,
            margin_hedged_use_leg=False, expiration_mode=s.expiration_mode, filling_mode=s.filling_mode,
            order_mode=s.order_mode, order_gtc_mode=C.SYMBOL_ORDERS_GTC, option_mode=0, option_right=0,
            bid=f.bid, bidhigh=f.bidhigh, bidlow=f.bidlow, ask=f.ask, askhigh=f.askhigh, asklow=f.asklow,
            last=0.0, lasthigh=0.0, lastlow=0.0, volume_real=0.0, volumehigh_real=0.0, volumelow_real=0.0,
            option_strike=0.0, point=s.point, trade_tick_value=tick_value, trade_tick_value_profit=tick_value,
            trade_tick_value_loss=tick_value, trade_tick_size=s.tick_size, trade_contract_size=s.contract_size,
            trade_accrued_interest=0.0, trade_face_value=0.0, trade_liquidity_rate=0.0, volume_min=s.volume_min,
            volume_max=s.volume_max, volume_step=s.volume_step, volume_limit=s.volume_limit,
            swap_long=s.swap_long, swap_short=s.swap_short, margin_initial=0.0, margin_maintenance=0.0,
            session_volume=0.0, session_turnover=0.0, session_interest=0.0, session_buy_orders_volume=0.0,
            session_sell_orders_volume=0.0, session_open=f.session_open, session_close=f.session_close,
            session_aw=0.0, session_price_settlement=0.0, session_price_limit_min=0.0,
            session_price_limit_max=0.0, margin_hedged=s.contract_size, price_change=change,
            price_volatility=0.0, price_theoretical=0.0, price_greeks_delta=0.0, price_greeks_theta=0.0,
            price_greeks_gamma=0.0, price_greeks_vega=0.0, price_greeks_rho=0.0, price_greeks_omega=0.0,
            price_sensitivity=0.0, basis="", category="", currency_base=s.currency_base,
            currency_profit=s.currency_profit, currency_margin=s.currency_margin, bank="",
            description=s.description, exchange="", formula="", isin="", name=s.name, page="", path=s.path,
        )

    def symbol_info_tick(self, symbol: str, /):
        def run(acct: AccountState):
            f = self._feed(acct, symbol)
            if symbol not in acct.selected:
                raise _Fail(CALL_FAILED)
            return Tick(f.time_msc // 1000, f.bid, f.ask, 0.0, 0, f.time_msc, C.TICK_FLAG_BID | C.TICK_FLAG_ASK, 0.0)
        return self._call(None, run)

    def symbol_select(self, symbol: str, enable: bool = True, /) -> bool:
        def run(acct: AccountState):
            self._feed(acct, symbol)
            if enable:
                acct.selected.add(symbol)
            else:
                busy = any(p.symbol == symbol for p in acct.positions.values()) or any(
                    o.symbol == symbol for o in acct.orders.values())
                if busy:
                    raise _Fail(CALL_FAILED, False)
                acct.selected.discard(symbol)
            return True
        return self._call(False, run)

    def market_book_add(self, symbol: str) -> bool:
        def run(acct: AccountState):
            self._feed(acct, symbol)
            acct.books.add(symbol)
            return True
        return self._call(False, run)

    def market_book_release(self, symbol: str) -> bool:
        def run(acct: AccountState):
            self._feed(acct, symbol)
            if symbol not in acct.books:
                raise _Fail(CALL_FAILED, False)
            acct.books.discard(symbol)
            return True
        return self._call(False, run)

    def market_book_get(self, symbol: str):
        def run(acct: AccountState):
            f = self._feed(acct, symbol)
            if symbol not in acct.books:
                raise _Fail(CALL_FAILED)
            step = f.sym.tick_size
            sells = [BookInfo(C.BOOK_TYPE_SELL, round(f.ask + i * step, f.sym.digits), 10 * (i + 1),
                              float(10 * (i + 1))) for i in reversed(range(5))]
            buys = [BookInfo(C.BOOK_TYPE_BUY, round(f.bid - i * step, f.sym.digits), 10 * (i + 1),
                             float(10 * (i + 1))) for i in range(5)]
            return tuple(sells + buys)
        return self._call(None, run)

    # --- history of prices -----------------------------------------------------------------
    # Bars come from the world's deep history (``history_days``, generated from the seed)
    # followed by the live M1 ring; see Feed.bars_* in sim/market.py.
    def _timeframe(self, acct: AccountState, symbol: Any, timeframe: Any) -> Feed:
        f = self._feed(acct, symbol)
        if not isinstance(timeframe, Integral) or isinstance(timeframe, bool) or timeframe not in TIMEFRAME_SECONDS:
            raise _Fail(INVALID_PARAMS)
        return f

    @staticmethod
    def _count(count: Any) -> int:
        if not isinstance(count, Integral) or isinstance(count, bool) or count < 0 or count > MAXBARS:
            raise _Fail(INVALID_PARAMS)
        return int(count)

    def copy_rates_from(self, symbol, timeframe, date_from, count, /):
        def run(acct):
            n = self._count(count)
            f = self._timeframe(acct, symbol, timeframe)
            return f.bars_until(int(timeframe), to_seconds(date_from), n)
        return self._call(None, run)

    def copy_rates_from_pos(self, symbol, timeframe, start_pos, count, /):
        def run(acct):
            n = self._count(count)
            if not isinstance(start_pos, Integral) or isinstance(start_pos, bool) or start_pos < 0:
                raise _Fail(INVALID_PARAMS)
            f = self._timeframe(acct, symbol, timeframe)
            return f.bars_from_pos(int(timeframe), int(start_pos), n)
        return self._call(None, run)

    def copy_rates_range(self, symbol, timeframe, date_from, date_to, /):
        def run(acct):
            f = self._timeframe(acct, symbol, timeframe)
            lo, hi = to_seconds(date_from), to_seconds(date_to)
            first, last = f.earliest_s(), f.latest_s()
            if first is not None:  # refuse an oversized range before generating it
                span = min(hi, last) - max(lo, first)
                if span > 4 * MAXBARS * TIMEFRAME_SECONDS.get(int(timeframe), 86400) and int(timeframe) != C.TIMEFRAME_MN1:
                    raise _Fail(INVALID_PARAMS)
            out = f.bars_between(int(timeframe), lo, hi)
            if len(out) > MAXBARS:
                raise _Fail(INVALID_PARAMS)
            return out
        return self._call(None, run)

    def _ticks(self, acct: AccountState, symbol: Any, flags: Any) -> np.ndarray:
        f = self._feed(acct, symbol)
        if flags not in (C.COPY_TICKS_ALL, C.COPY_TICKS_INFO, C.COPY_TICKS_TRADE) or isinstance(flags, bool):
            raise _Fail(INVALID_PARAMS)
        ticks = f.tick_array()
        return ticks[:0] if flags == C.COPY_TICKS_TRADE else ticks  # no trade (last/volume) ticks in OTC feeds

    def copy_ticks_from(self, symbol, date_from, count, flags, /):
        def run(acct):
            if not isinstance(count, Integral) or isinstance(count, bool) or count < 0:
                raise _Fail(INVALID_PARAMS)
            ticks = self._ticks(acct, symbol, flags)
            return ticks[ticks["time_msc"] >= to_seconds(date_from) * 1000][: int(count)]
        return self._call(None, run)

    def copy_ticks_range(self, symbol, date_from, date_to, flags, /):
        def run(acct):
            ticks = self._ticks(acct, symbol, flags)
            lo, hi = to_seconds(date_from) * 1000, to_seconds(date_to) * 1000
            return ticks[(ticks["time_msc"] >= lo) & (ticks["time_msc"] <= hi)]
        return self._call(None, run)

    # --- live trading state ----------------------------------------------------------------
    @staticmethod
    def _filter(items, name_of, ticket_of, symbol, group, ticket):
        if symbol is not None:
            if not isinstance(symbol, str):
                raise _Fail(INVALID_PARAMS)
            return [x for x in items if name_of(x) == symbol]
        if group is not None:
            if not isinstance(group, str):
                raise _Fail(INVALID_PARAMS)
            match = _group_matcher(group)
            return [x for x in items if match(name_of(x))]
        if ticket is not None:
            if not isinstance(ticket, Integral):
                raise _Fail(INVALID_PARAMS)
            return [x for x in items if ticket_of(x) == ticket]
        return list(items)

    def orders_total(self):
        return self._call(None, lambda a: len(a.orders))

    @_keywords(None)
    def orders_get(self, *, symbol: str | None = None, group: str | None = None, ticket: int | None = None):
        def run(acct):
            sel = self._filter(acct.orders.values(), lambda o: o.symbol, lambda o: o.ticket, symbol, group, ticket)
            return tuple(acct.order_record(o) for o in sel)
        return self._call(None, run, name="orders_get")

    def positions_total(self):
        return self._call(None, lambda a: len(a.positions))

    @_keywords(None)
    def positions_get(self, *, symbol: str | None = None, group: str | None = None, ticket: int | None = None):
        def run(acct):
            sel = self._filter(acct.positions.values(), lambda p: p.symbol, lambda p: p.ticket, symbol, group, ticket)
            return tuple(acct.position_record(p) for p in sel)
        return self._call(None, run, name="positions_get")

    # --- trade history ---------------------------------------------------------------------
    @staticmethod
    def _history(items, time_of, order_of, pos_of, date_from, date_to, group, ticket, position):
        if ticket is not None:
            if not isinstance(ticket, Integral):
                raise _Fail(INVALID_PARAMS)
            return [x for x in items if order_of(x) == ticket]
        if position is not None:
            if not isinstance(position, Integral):
                raise _Fail(INVALID_PARAMS)
            return [x for x in items if pos_of(x) == position]
        if date_from is None or date_to is None:
            raise _Fail(INVALID_PARAMS)
        lo, hi = to_seconds(date_from), to_seconds(date_to)
        out = [x for x in items if lo <= time_of(x) // 1000 <= hi]
        if group is not None:
            if not isinstance(group, str):
                raise _Fail(INVALID_PARAMS)
            match = _group_matcher(group)
            out = [x for x in out if match(x.symbol)]
        return out

    def history_orders_total(self, date_from, date_to, /):
        def run(acct):
            return len(self._history(acct.hist_orders, lambda o: o.time_setup_msc, None, None, date_from, date_to,
                                     None, None, None))
        return self._call(None, run)

    @_keywords(None)
    def history_orders_get(self, date_from=None, date_to=None, /, group=None, *, ticket=None, position=None):
        def run(acct):
            sel = self._history(acct.hist_orders, lambda o: o.time_setup_msc, lambda o: o.ticket,
                                lambda o: o.position_id, date_from, date_to, group, ticket, position)
            return tuple(acct.order_record(o) for o in sel)
        return self._call(None, run)

    def history_deals_total(self, date_from, date_to, /):
        def run(acct):
            return len(self._history(acct.hist_deals, lambda d: d.time_msc, None, None, date_from, date_to,
                                     None, None, None))
        return self._call(None, run)

    @_keywords(None)
    def history_deals_get(self, date_from=None, date_to=None, /, group=None, *, ticket=None, position=None):
        def run(acct):
            # ticket= matches DEAL_ORDER (the documented key), position= matches position_id
            sel = self._history(acct.hist_deals, lambda d: d.time_msc, lambda d: d.order,
                                lambda d: d.position_id, date_from, date_to, group, ticket, position)
            return tuple(acct.deal_record(d) for d in sel)
        return self._call(None, run)

    # --- calculations ----------------------------------------------------------------------
    def order_calc_margin(self, action, symbol, volume, price, /):
        def run(acct):
            f = self._feed(acct, symbol)
            if not isinstance(action, Integral) or action not in range(0, 8):
                raise _Fail(INVALID_PARAMS)
            if not isinstance(volume, Real) or not isinstance(price, Real) or volume < 0 or price < 0:
                raise _Fail(INVALID_PARAMS)
            return M.money(M.margin(f.sym, float(volume), float(price), acct.d.leverage, acct.d.currency,
                                    acct.broker.rate))
        return self._call(None, run)

    def order_calc_profit(self, action, symbol, volume, price_open, price_close, /):
        def run(acct):
            f = self._feed(acct, symbol)
            if action not in (C.ORDER_TYPE_BUY, C.ORDER_TYPE_SELL) or isinstance(action, bool):
                raise _Fail(INVALID_PARAMS)
            if not all(isinstance(x, Real) for x in (volume, price_open, price_close)) or volume < 0:
                raise _Fail(INVALID_PARAMS)
            return M.money(M.profit(f.sym, action == C.ORDER_TYPE_BUY, float(volume), float(price_open),
                                    float(price_close), acct.d.currency, acct.broker.rate))
        return self._call(None, run)

    # --- trading ---------------------------------------------------------------------------
    def _parse_request(self, request: Any) -> TradeRequest:
        if not isinstance(request, dict):
            raise _Fail(INVALID_PARAMS)
        values: dict[str, Any] = {}
        for key in TradeRequest._fields:
            if key not in request:
                values[key] = "" if key in REQUEST_STR_FIELDS else (0.0 if key in REQUEST_FLOAT_FIELDS else 0)
                continue
            v = request[key]
            bad = (C.RES_E_INVALID_PARAMS, f'Invalid "{key}" argument')
            if key in REQUEST_INT_FIELDS:
                if not isinstance(v, Integral) or (key in ("magic", "order", "position", "position_by",
                                                          "deviation", "expiration") and v < 0):
                    raise _Fail(bad)
                values[key] = int(v)
            elif key in REQUEST_FLOAT_FIELDS:
                if not isinstance(v, Real) or isinstance(v, bool):
                    raise _Fail(bad)
                values[key] = float(v)
            else:
                if not isinstance(v, str):
                    raise _Fail(bad)
                if key == "comment" and len(v) > self._sim.comment_limit:
                    raise _Fail(bad)
                values[key] = v
        return TradeRequest(**values)

    def _quote(self, acct: AccountState, req: TradeRequest) -> tuple[float, float]:
        f = acct.broker.feeds.get(req.symbol)
        return (f.bid, f.ask) if f is not None else (0.0, 0.0)

    def order_check(self, request: dict, /):
        def run(acct):
            req = self._parse_request(request)
            profit, equity, margin, free, level = acct.metrics()
            code, comment = 0, "Done"
            balance = acct.balance
            if self._sim.faults[acct.login].algo_off:
                code = C.TRADE_RETCODE_CLIENT_DISABLES_AT
            else:
                try:
                    p = trading.plan(acct, req, self._sim._now)
                except trading.Reject as r:
                    code = r.retcode
                else:
                    balance = M.money(balance + p.realized)
                    equity = M.money(equity + p.commission)
                    margin = p.margin_after
                    free = M.money(equity - margin)
                    level = round(equity / margin * 100.0, 2) if margin > 0 else 0.0
            if code:
                comment = C.retcode_comment(code)
            return OrderCheckResult(code, balance, equity, profit, margin, free, level, comment, req)
        return self._call(None, run)

    def order_send(self, request: dict, /):
        """An API client's request: recorded with reason EXPERT, subject to the account's faults."""
        return self._call(None, lambda acct: self._send(acct, request, C.DEAL_REASON_EXPERT, api=True))

    def _send(self, acct: AccountState, request: Any, reason: int, *, api: bool) -> OrderSendResult:
        """Execute one trade request for ``acct``, recorded with ``reason`` (DEAL_REASON_*).

        ``api``: sent through the Python API (the Algo-Trading button, injected retcodes and
        lost replies apply); a trade by hand (``Simulator.manual_trade``) is not."""
        req = self._parse_request(request)
        sim = self._sim
        faults = sim.faults[acct.login]
        bid, ask = self._quote(acct, req)
        rid = sim.next_request_id()
        out = trading.Outcome(0)
        algo_off = api and faults.algo_off
        if algo_off:
            out.retcode = C.TRADE_RETCODE_CLIENT_DISABLES_AT
        else:
            injected = faults.take_retcode() if api else 0
            if injected:
                out.retcode = injected
            else:
                try:
                    p = trading.plan(acct, req, sim._now, reason)
                except trading.Reject as r:
                    out.retcode = r.retcode
                else:
                    out = p.apply()
                    sim.activity = True
                    bid, ask = self._quote(acct, req)
        result = OrderSendResult(out.retcode, out.deal, out.order, out.volume, out.price, bid, ask,
                                 C.retcode_comment(out.retcode), rid, 0, req)
        if api and not algo_off and faults.take_reply_lost():
            raise _Fail(IPC_TIMEOUT)
        return result


for _name, _value in {**C.EXPORTED, **RECORD_TYPES}.items():
    setattr(Terminal, _name, _value)
del _name, _value
