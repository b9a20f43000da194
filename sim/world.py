"""World files: brokers, symbols, underlyings and accounts, loaded and validated.

A world is TOML (``tomllib``) or JSON with the same structure (docs/simulator.md lists
every key). Any problem raises ``WorldError`` naming the file, the path of the bad key
and what was expected, so a broken rehearsal setup is refused loudly, never half-run.
"""
from __future__ import annotations

import json
import math

try:
    import tomllib
except ModuleNotFoundError:  # Python 3.10: the same parser, from PyPI
    import tomli as tomllib  # type: ignore[no-redef]
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from . import constants as C
from .money import SUPPORTED_CALC_MODES, conversion_path
from .servertime import DST_RULES


class WorldError(ValueError):
    """A malformed world file: message names file, key path and expected value."""


DAYS = ("sun", "mon", "tue", "wed", "thu", "fri", "sat")  # index = MT5 DAY_OF_WEEK
Session = tuple[tuple[tuple[int, int], ...], ...]  # 7 days x ((start_min, end_min), ...)
ALWAYS_OPEN: Session = tuple(((0, 1440),) for _ in range(7))

TRADE_MODES = {"disabled": 0, "longonly": 1, "shortonly": 2, "closeonly": 3, "full": 4}
EXEC_MODES = {"request": 0, "instant": 1, "market": 2, "exchange": 3}
CALC_MODES = {"forex": 0, "cfd": 2, "cfdleverage": 4, "forex_no_leverage": 5}
MARGIN_MODES = {"netting": 0, "exchange": 1, "hedging": 2}
ACCOUNT_TRADE_MODES = {"demo": 0, "contest": 1, "real": 2}
DEFAULT_START = "2025-01-06T10:00:00Z"  # a Monday, winter time


@dataclass(frozen=True)
class UnderlyingDef:
    name: str
    price: float
    volatility: float  # relative std-dev per sqrt(hour)


@dataclass(frozen=True)
class SymbolDef:
    name: str
    underlying: str
    description: str
    path: str
    digits: int
    point: float
    tick_size: float
    contract_size: float
    volume_min: float
    volume_step: float
    volume_max: float
    volume_limit: float
    filling_mode: int
    trade_mode: int
    trade_exemode: int
    order_mode: int
    expiration_mode: int
    stops_level: int
    freeze_level: int
    spread: int
    swap_long: float
    swap_short: float
    swap_rollover3days: int
    sessions: Session
    offset: float
    calc_mode: int
    margin_rate: float
    currency_base: str
    currency_profit: str
    currency_margin: str
    commission_per_lot: float
    select: bool


@dataclass(frozen=True)
class BrokerDef:
    name: str
    company: str
    utc_offset: float
    dst: str
    first_order_ticket: int
    first_deal_ticket: int
    symbols: dict[str, SymbolDef] = field(default_factory=dict)


@dataclass(frozen=True)
class AccountDef:
    login: int
    broker: str
    name: str
    currency: str
    leverage: int
    margin_mode: int
    balance: float
    credit: float
    password: str | None
    trade_mode: int
    margin_so_call: float
    margin_so_so: float
    limit_orders: int
    trade_allowed: bool
    trade_expert: bool
    fifo_close: bool


@dataclass(frozen=True)
class TerminalDef:
    """An installed MT5 terminal: its executable path and the account it starts logged into."""
    path: str          # as written in the world file, e.g. C:\\MT5\\FTMO\\terminal64.exe
    login: int | None  # None: installed but not logged into any account


def terminal_key(path: str) -> str:
    """A path as Windows compares it: case-insensitive, ``/`` and ``\\`` alike, runs of
    separators and a trailing one ignored (a leading ``\\\\`` of a UNC path is kept)."""
    p = path.strip().replace("/", "\\")
    head = "\\\\" if p.startswith("\\\\") else ""
    body = "\\".join(part for part in p[len(head):].split("\\") if part)
    return (head + body).casefold()


def terminal_folder(path: str) -> str:
    """The installation folder of a terminal path (``terminal_info().path``), backslashed."""
    p = path.strip().replace("/", "\\").rstrip("\\")
    head, sep, last = p.rpartition("\\")
    return head if sep and last.lower().endswith(".exe") else p


@dataclass(frozen=True)
class World:
    source: str
    start_ms: int
    history_hours: float
    history_step_seconds: float
    history_days: float
    tick_history: int
    bar_history: int
    underlyings: dict[str, UnderlyingDef]
    brokers: dict[str, BrokerDef]
    accounts: dict[int, AccountDef]
    terminals: tuple[TerminalDef, ...] = ()


_REQUIRED = object()


class _Reader:
    """Typed access to nested dicts that reports the exact failing key path."""

    def __init__(self, source: str) -> None:
        self.source = source

    def fail(self, path: str, expected: str, got: Any = _REQUIRED) -> WorldError:
        tail = "" if got is _REQUIRED else f", got {got!r}"
        return WorldError(f"{self.source}: {path}: expected {expected}{tail}")

    def table(self, data: Any, path: str) -> dict:
        if not isinstance(data, dict):
            raise self.fail(path, "a table", data)
        return data

    def get(self, data: dict, key: str, path: str, kind: str, default: Any = _REQUIRED,
            check: Callable[[Any], bool] | None = None, expected: str | None = None,
            enum: dict[str, int] | None = None) -> Any:
        full = f"{path}.{key}" if path else key
        if key not in data:
            if default is _REQUIRED:
                raise self.fail(full, f"{expected or kind} (missing)")
            return default
        v = data[key]
        if enum is not None:
            if isinstance(v, str) and v.lower() in enum:
                v = enum[v.lower()]
            elif not (isinstance(v, int) and not isinstance(v, bool) and v in enum.values()):
                raise self.fail(full, "one of " + ", ".join(f'"{k}"' for k in enum) + " (or its number)", v)
            return v
        ok = {
            "int": isinstance(v, int) and not isinstance(v, bool),
            "float": isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v),
            "str": isinstance(v, str),
            "bool": isinstance(v, bool),
        }[kind]
        if ok and kind == "float":
            v = float(v)
        if not ok or (check is not None and not check(v)):
            raise self.fail(full, expected or f"a {kind}", v)
        return v


def _parse_hhmm(text: str) -> int | None:
    try:
        hh, mm = text.split(":")
        h, m = int(hh), int(mm)
    except ValueError:
        return None
    if not (0 <= h <= 24 and 0 <= m < 60) or h * 60 + m > 1440:
        return None
    return h * 60 + m


def _sessions(r: _Reader, value: Any, path: str) -> Session:
    if value == "24/7":
        return ALWAYS_OPEN
    table = r.table(value, path) if not isinstance(value, str) else None
    if table is None:
        raise r.fail(path, '"24/7" or a table of weekday -> ["HH:MM-HH:MM", ...]', value)
    unknown = set(table) - set(DAYS)
    if unknown:
        raise r.fail(f"{path}.{sorted(unknown)[0]}", "a weekday key, one of " + ", ".join(DAYS))
    days = []
    for d in DAYS:
        spans = table.get(d, [])
        if not isinstance(spans, list):
            raise r.fail(f"{path}.{d}", 'a list of "HH:MM-HH:MM"', spans)
        out = []
        for i, s in enumerate(spans):
            parts = s.split("-") if isinstance(s, str) else []
            a = _parse_hhmm(parts[0]) if len(parts) == 2 else None
            b = _parse_hhmm(parts[1]) if len(parts) == 2 else None
            if a is None or b is None or a >= b:
                raise r.fail(f"{path}.{d}[{i}]", '"HH:MM-HH:MM" with start < end', s)
            out.append((a, b))
        days.append(tuple(out))
    return tuple(days)


def _start_ms(r: _Reader, text: Any, path: str) -> int:
    if isinstance(text, datetime):  # TOML offset date-times arrive already parsed
        dt = text
    else:
        try:
            dt = datetime.fromisoformat(str(text).replace("Z", "+00:00"))
        except ValueError:
            raise r.fail(path, 'an ISO-8601 UTC instant like "2025-01-06T10:00:00Z"', text) from None
    if dt.tzinfo is None:
        dt = dt.replace(tzinfo=timezone.utc)
    return int(dt.timestamp() * 1000)


def _symbol(r: _Reader, name: str, d: dict, path: str, broker_sessions: Session,
            underlyings: dict[str, UnderlyingDef]) -> SymbolDef:
    pos = lambda v: v > 0  # noqa: E731
    nonneg = lambda v: v >= 0  # noqa: E731
    und = r.get(d, "underlying", path, "str", default=name)
    if und not in underlyings:
        raise r.fail(f"{path}.underlying", "the name of an [underlyings] entry", und)
    digits = r.get(d, "digits", path, "int", check=lambda v: 0 <= v <= 8, expected="an int 0..8")
    point = r.get(d, "point", path, "float", default=10.0 ** -digits, check=pos, expected="a float > 0")
    calc = r.get(d, "calc_mode", path, "", enum=CALC_MODES)
    if calc not in SUPPORTED_CALC_MODES:
        raise r.fail(f"{path}.calc_mode", "forex, cfd, cfdleverage or forex_no_leverage", calc)
    base = r.get(d, "currency_base", path, "str", check=lambda v: len(v) >= 2, expected="a currency code")
    profit = r.get(d, "currency_profit", path, "str", check=lambda v: len(v) >= 2, expected="a currency code")
    default_margin = base if calc in (C.SYMBOL_CALC_MODE_FOREX, C.SYMBOL_CALC_MODE_FOREX_NO_LEVERAGE) else profit
    vmin = r.get(d, "volume_min", path, "float", check=pos, expected="a float > 0")
    vmax = r.get(d, "volume_max", path, "float", check=lambda v: v >= vmin, expected=f"a float >= volume_min ({vmin})")
    sessions = _sessions(r, d["sessions"], f"{path}.sessions") if "sessions" in d else broker_sessions
    return SymbolDef(
        name=name,
        underlying=und,
        description=r.get(d, "description", path, "str", default=name),
        path=r.get(d, "path", path, "str", default=name),
        digits=digits,
        point=point,
        tick_size=r.get(d, "tick_size", path, "float", default=point, check=pos, expected="a float > 0"),
        contract_size=r.get(d, "contract_size", path, "float", check=pos, expected="a float > 0"),
        volume_min=vmin,
        volume_step=r.get(d, "volume_step", path, "float", check=pos, expected="a float > 0"),
        volume_max=vmax,
        volume_limit=r.get(d, "volume_limit", path, "float", default=0.0, check=nonneg, expected="a float >= 0"),
        filling_mode=r.get(d, "filling_mode", path, "int", check=lambda v: 0 <= v <= 7, expected="a bitmask 0..7 (1 FOK, 2 IOC, 4 BOC)"),
        trade_mode=r.get(d, "trade_mode", path, "", default=C.SYMBOL_TRADE_MODE_FULL, enum=TRADE_MODES),
        trade_exemode=r.get(d, "trade_exemode", path, "", default=C.SYMBOL_TRADE_EXECUTION_MARKET, enum=EXEC_MODES),
        order_mode=r.get(d, "order_mode", path, "int", default=127, check=lambda v: 0 <= v <= 127, expected="a bitmask 0..127"),
        expiration_mode=r.get(d, "expiration_mode", path, "int", default=15, check=lambda v: 0 <= v <= 15, expected="a bitmask 0..15"),
        stops_level=r.get(d, "stops_level", path, "int", default=0, check=nonneg, expected="an int >= 0 (points)"),
        freeze_level=r.get(d, "freeze_level", path, "int", default=0, check=nonneg, expected="an int >= 0 (points)"),
        spread=r.get(d, "spread", path, "int", check=nonneg, expected="an int >= 0 (points)"),
        swap_long=r.get(d, "swap_long", path, "float", default=0.0),
        swap_short=r.get(d, "swap_short", path, "float", default=0.0),
        swap_rollover3days=r.get(d, "swap_rollover3days", path, "int", default=3, check=lambda v: 0 <= v <= 6, expected="a weekday 0..6 (0=Sunday)"),
        sessions=sessions,
        offset=r.get(d, "offset", path, "float", default=0.0),
        calc_mode=calc,
        margin_rate=r.get(d, "margin_rate", path, "float", default=1.0, check=pos, expected="a float > 0"),
        currency_base=base,
        currency_profit=profit,
        currency_margin=r.get(d, "currency_margin", path, "str", default=default_margin),
        commission_per_lot=r.get(d, "commission_per_lot", path, "float", default=0.0, check=nonneg, expected="a float >= 0"),
        select=r.get(d, "select", path, "bool", default=True),
    )


def parse_world(data: Any, source: str = "<world>") -> World:
    """Validate a decoded world document and build the immutable ``World``."""
    r = _Reader(source)
    root = r.table(data, "(root)")
    known = {"world", "underlyings", "brokers", "accounts", "terminals"}
    for k in root:
        if k not in known:
            raise r.fail(k, "one of the top-level keys " + ", ".join(sorted(known)))
    w = r.table(root.get("world", {}), "world")
    start_ms = _start_ms(r, w.get("start", DEFAULT_START), "world.start")
    pos = lambda v: v > 0  # noqa: E731

    unds: dict[str, UnderlyingDef] = {}
    if "underlyings" not in root:
        raise r.fail("underlyings", "a table of underlyings (missing)")
    for name, u in r.table(root["underlyings"], "underlyings").items():
        p = f"underlyings.{name}"
        u = r.table(u, p)
        unds[name] = UnderlyingDef(
            name=name,
            price=r.get(u, "price", p, "float", check=pos, expected="a float > 0"),
            volatility=r.get(u, "volatility", p, "float", default=0.001, check=lambda v: v >= 0, expected="a float >= 0"),
        )

    if "brokers" not in root:
        raise r.fail("brokers", "a table of brokers (missing)")
    brokers: dict[str, BrokerDef] = {}
    for i, (bname, b) in enumerate(r.table(root["brokers"], "brokers").items()):
        p = f"brokers.{bname}"
        b = r.table(b, p)
        sessions = _sessions(r, b.get("sessions", "24/7"), f"{p}.sessions")
        syms_raw = r.table(b.get("symbols", None), f"{p}.symbols") if "symbols" in b else None
        if not syms_raw:
            raise r.fail(f"{p}.symbols", "a non-empty table of symbols")
        symbols = {
            sname: _symbol(r, sname, r.table(sd, f"{p}.symbols.{sname}"), f"{p}.symbols.{sname}", sessions, unds)
            for sname, sd in syms_raw.items()
        }
        brokers[bname] = BrokerDef(
            name=bname,
            company=r.get(b, "company", p, "str", default=f"{bname} Ltd."),
            utc_offset=r.get(b, "utc_offset", p, "float", default=0.0, check=lambda v: -12 <= v <= 14, expected="hours in -12..14"),
            dst=r.get(b, "dst", p, "str", default="none", check=lambda v: v in DST_RULES, expected='"none", "eu" or "us"'),
            first_order_ticket=r.get(b, "first_order_ticket", p, "int", default=(i + 1) * 10_000_000 + 1, check=pos, expected="an int > 0"),
            first_deal_ticket=r.get(b, "first_deal_ticket", p, "int", default=(i + 1) * 10_000_000 + 5_000_001, check=pos, expected="an int > 0"),
            symbols=symbols,
        )

    raw_accounts = root.get("accounts")
    if not isinstance(raw_accounts, list) or not raw_accounts:
        raise r.fail("accounts", "a non-empty array of account tables ([[accounts]])", raw_accounts)
    accounts: dict[int, AccountDef] = {}
    for i, a in enumerate(raw_accounts):
        p = f"accounts[{i}]"
        a = r.table(a, p)
        login = r.get(a, "login", p, "int", check=pos, expected="an int > 0")
        if login in accounts:
            raise r.fail(f"{p}.login", "a login not used by another account", login)
        broker = r.get(a, "broker", p, "str", check=lambda v: v in brokers, expected="the name of a [brokers] entry")
        pw = a.get("password")
        if pw is not None and not isinstance(pw, str):
            raise r.fail(f"{p}.password", "a string")
        currency = r.get(a, "currency", p, "str", default="USD")
        for sym in brokers[broker].symbols.values():
            for ccy in (sym.currency_profit, sym.currency_margin):
                if conversion_path(brokers[broker].symbols, ccy, currency) is None:
                    raise r.fail(f"{p}.currency", f"a currency the broker can convert {ccy} into "
                                 f"(symbol {sym.name} needs a {ccy}{currency} or {currency}{ccy} symbol at {broker})", currency)
        so_call = r.get(a, "margin_so_call", p, "float", default=100.0, check=lambda v: v >= 0, expected="percent >= 0")
        accounts[login] = AccountDef(
            login=login,
            broker=broker,
            name=r.get(a, "name", p, "str", default=f"Account {login}"),
            currency=currency,
            leverage=r.get(a, "leverage", p, "int", default=100, check=lambda v: v >= 1, expected="an int >= 1"),
            margin_mode=r.get(a, "margin_mode", p, "", default=C.ACCOUNT_MARGIN_MODE_RETAIL_HEDGING, enum=MARGIN_MODES),
            balance=r.get(a, "balance", p, "float", check=lambda v: v >= 0, expected="a float >= 0"),
            credit=r.get(a, "credit", p, "float", default=0.0, check=lambda v: v >= 0, expected="a float >= 0"),
            password=pw,
            trade_mode=r.get(a, "trade_mode", p, "", default=C.ACCOUNT_TRADE_MODE_DEMO, enum=ACCOUNT_TRADE_MODES),
            margin_so_call=so_call,
            margin_so_so=r.get(a, "margin_so_so", p, "float", default=50.0, check=lambda v: 0 <= v <= so_call, expected=f"percent in 0..margin_so_call ({so_call})"),
            limit_orders=r.get(a, "limit_orders", p, "int", default=0, check=lambda v: v >= 0, expected="an int >= 0 (0 = unlimited)"),
            trade_allowed=r.get(a, "trade_allowed", p, "bool", default=True),
            trade_expert=r.get(a, "trade_expert", p, "bool", default=True),
            fifo_close=r.get(a, "fifo_close", p, "bool", default=False),
        )

    terminals: list[TerminalDef] = []
    seen: dict[str, int] = {}
    raw_terms = root.get("terminals", [])
    if not isinstance(raw_terms, list):
        raise r.fail("terminals", "an array of terminal tables ([[terminals]])", raw_terms)
    for i, t in enumerate(raw_terms):
        p = f"terminals[{i}]"
        t = r.table(t, p)
        for k in t:
            if k not in ("path", "login"):
                raise r.fail(f"{p}.{k}", "one of the keys path, login")
        tpath = r.get(t, "path", p, "str", check=lambda v: bool(terminal_key(v)),
                      expected=r"a terminal path like 'C:\MT5\terminal64.exe'")
        key = terminal_key(tpath)
        if key in seen:
            raise r.fail(f"{p}.path", f"a path not used by terminals[{seen[key]}] "
                         "(paths compare case-insensitively, / and \\ alike)", tpath)
        seen[key] = i
        tlogin = r.get(t, "login", p, "int", default=None, check=lambda v: v in accounts,
                       expected="the login of an [[accounts]] entry")
        terminals.append(TerminalDef(path=tpath, login=tlogin))

    return World(
        source=source,
        start_ms=start_ms,
        history_hours=r.get(w, "history_hours", "world", "float", default=6.0, check=lambda v: 0 <= v <= 24 * 31, expected="hours in 0..744"),
        history_days=r.get(w, "history_days", "world", "float", default=0.0, check=lambda v: 0 <= v <= 3660, expected="days in 0..3660"),
        history_step_seconds=r.get(w, "history_step_seconds", "world", "float", default=30.0, check=lambda v: v >= 1, expected="seconds >= 1"),
        tick_history=r.get(w, "tick_history", "world", "int", default=100_000, check=lambda v: v >= 100, expected="an int >= 100"),
        bar_history=r.get(w, "bar_history", "world", "int", default=20_000, check=lambda v: v >= 100, expected="an int >= 100"),
        underlyings=unds,
        brokers=brokers,
        accounts=accounts,
        terminals=tuple(terminals),
    )


def load_world(path: str | Path) -> World:
    """Read a ``.toml`` or ``.json`` world file."""
    p = Path(path)
    try:
        raw = p.read_bytes()
    except OSError as e:
        raise WorldError(f"{p}: cannot read world file: {e.strerror}") from None
    try:
        if p.suffix.lower() == ".json":
            data = json.loads(raw.decode("utf-8"))
        else:
            data = tomllib.loads(raw.decode("utf-8"))
    except (tomllib.TOMLDecodeError, json.JSONDecodeError, UnicodeDecodeError) as e:
        raise WorldError(f"{p}: not valid {'JSON' if p.suffix.lower() == '.json' else 'TOML'}: {e}") from None
    return parse_world(data, str(p))


DEMO_WORLD = Path(__file__).with_name("worlds") / "demo.toml"
