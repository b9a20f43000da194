"""The simulator: a world of brokers and accounts on one deterministic clock.

Owns the market, the trade state and the faults, and exposes the control API used by
the ZeroMQ server, the CLI, the demo trader and tests. Every public method holds
``self.lock`` (an RLock) so a ticker thread and many terminals can share one world.
"""
from __future__ import annotations

import math
import threading
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from . import constants as C
from . import trading
from .faults import Faults
from .market import Feed, Market
from .servertime import ServerClock
from .state import AccountState, BrokerState, Deal
from .world import DEMO_WORLD, World, load_world, terminal_folder, terminal_key

MAX_STEPS_PER_ADVANCE = 2000
_MARGIN_MODE_NAMES = {0: "netting", 1: "exchange", 2: "hedging"}


class TerminalState:
    """A running MT5 terminal of the world: one current login shared by every session
    attached to it (``initialize(path=...)``), as one real terminal has one account."""

    __slots__ = ("path", "folder", "login", "passwords")

    def __init__(self, path: str, login: int | None, password: str | None) -> None:
        self.path = path
        self.folder = terminal_folder(path)
        self.login = login
        # Passwords the terminal has saved (it logged into these accounts before).
        self.passwords: dict[int, str | None] = {} if login is None else {login: password}


class Simulator:
    """A world of brokers/accounts; ``terminal()`` gives MetaTrader5-module-like objects."""

    def __init__(self, world: World, *, seed: int = 0, comment_limit: int = 31) -> None:
        if comment_limit < 1:
            raise ValueError("comment_limit must be >= 1")
        self.world = world
        self.seed = seed
        self.comment_limit = comment_limit
        self.lock = threading.RLock()
        self.faults: dict[int, Faults] = {login: Faults() for login in world.accounts}
        self.request_id = 1
        self.terminals: dict[str, TerminalState] = {
            terminal_key(t.path): TerminalState(t.path, t.login,
                                                world.accounts[t.login].password if t.login else None)
            for t in world.terminals}
        self._build(world.start_ms)

    @classmethod
    def demo(cls, seed: int = 0, comment_limit: int = 31) -> Simulator:
        return cls(load_world(DEMO_WORLD), seed=seed, comment_limit=comment_limit)

    @classmethod
    def from_file(cls, path: str | Path, seed: int = 0, comment_limit: int = 31) -> Simulator:
        return cls(load_world(path), seed=seed, comment_limit=comment_limit)

    def _build(self, start_ms: int) -> None:
        """(Re)create market history ending at ``start_ms`` and fresh accounts."""
        w = self.world
        clocks = {name: ServerClock(b.utc_offset, b.dst) for name, b in w.brokers.items()}
        self.market = Market(w, self.seed, clocks)
        self.market.reset(start_ms)
        self.brokers: dict[str, BrokerState] = {}
        for name, b in w.brokers.items():
            feeds = {s: self.market.feeds[(name, s)] for s in b.symbols}
            self.brokers[name] = BrokerState(b, clocks[name], feeds)
        self.accounts: dict[int, AccountState] = {}
        deposit_utc = start_ms - int((w.history_hours + 1) * 3_600_000)
        for login, a in w.accounts.items():
            broker = self.brokers[a.broker]
            acct = AccountState(a, broker)
            broker.accounts.append(acct)
            self.accounts[login] = acct
            t = broker.clock.to_server(deposit_utc)
            for dtype, amount, text in ((C.DEAL_TYPE_BALANCE, a.balance, "Initial deposit"),
                                        (C.DEAL_TYPE_CREDIT, a.credit, "Credit")):
                if amount:
                    acct.hist_deals.append(Deal(broker.deal_ticket(), 0, t, dtype, C.DEAL_ENTRY_IN, 0, 0,
                                                C.DEAL_REASON_CLIENT, 0.0, 0.0, 0.0, 0.0, amount, 0.0, "", text))
        for b in self.brokers.values():
            b.last_day = b.clock.to_server(start_ms) // 86_400_000
        self._now = start_ms
        self.activity = False  # set once any request changed trade state

    # --- clock & prices ------------------------------------------------------------------
    def now_ms(self) -> int:
        """Simulator clock, UTC epoch milliseconds."""
        with self.lock:
            return self._now

    def advance(self, seconds: float) -> None:
        """Move clock and prices forward; fires SL/TP, pending orders, stop-out, expiry, swaps."""
        if not isinstance(seconds, (int, float)) or not math.isfinite(seconds) or seconds < 0:
            raise ValueError(f"advance() needs a finite number of seconds >= 0, got {seconds!r}")
        total_ms = int(round(seconds * 1000))
        if total_ms <= 0:
            return
        with self.lock:
            start = self._now
            steps = min(MAX_STEPS_PER_ADVANCE, max(1, math.ceil(total_ms / 1000)))
            for i in range(1, steps + 1):
                t = start + total_ms * i // steps
                dt = (t - self._now) / 1000.0
                self._now = t
                self._after_move(self.market.step(t, dt))

    def set_time(self, dt_utc: datetime) -> None:
        """Jump the clock. Before any trading the history is regenerated to end at ``dt_utc``
        (backwards allowed); afterwards only forward moves (via ``advance``) are allowed."""
        if not isinstance(dt_utc, datetime):
            raise TypeError("set_time() needs a datetime")
        if dt_utc.tzinfo is None:
            dt_utc = dt_utc.replace(tzinfo=timezone.utc)
        target = int(dt_utc.timestamp() * 1000)
        with self.lock:
            if not self.activity:
                self._build(target)
            elif target < self._now:
                raise ValueError("set_time(): cannot move the clock backwards after trading started")
            else:
                self.advance((target - self._now) / 1000.0)

    def _feed(self, symbol: str, broker: str) -> Feed:
        feed = self.market.feeds.get((broker, symbol))
        if feed is None:
            raise ValueError(f"unknown symbol {symbol!r} at broker {broker!r}")
        return feed

    def set_price(self, symbol: str, bid: float, *, broker: str | None = None) -> None:
        """Set a broker symbol's bid exactly (moves its underlying, so every broker quoting
        it follows), or the underlying itself when ``broker`` is None; triggers fire."""
        with self.lock:
            if broker is None:
                if symbol not in self.market.prices:
                    raise ValueError(f"unknown underlying {symbol!r}; pass broker= for a broker symbol")
                underlying, price = symbol, float(bid)
            else:
                feed = self._feed(symbol, broker)
                underlying, price = feed.sym.underlying, float(bid) - feed.sym.offset
            if price <= 0:
                raise ValueError("price must stay > 0")
            self._after_move(self.market.set_underlying(underlying, price, self._now))

    def move_price(self, symbol: str, points: float, *, broker: str | None = None) -> None:
        """Shift by ``points`` of the broker symbol (or of the underlying's first symbol)."""
        with self.lock:
            if broker is None:
                feeds = self.market.by_underlying.get(symbol)
                if not feeds:
                    raise ValueError(f"unknown underlying {symbol!r}; pass broker= for a broker symbol")
                self.set_price(symbol, self.market.prices[symbol] + points * feeds[0].sym.point)
            else:
                feed = self._feed(symbol, broker)
                self.set_price(symbol, feed.bid + points * feed.sym.point, broker=broker)

    def set_session(self, symbol: str, broker: str, open: bool | None) -> None:
        """Open (True) or close (False) one broker symbol's market now, or return it to its
        world-file sessions (None). A closed market keeps its last quote and refuses trade
        requests with 10018 MARKET_CLOSED, as a real server does over a weekend or a halt;
        on opening, the symbol quotes its underlying's current price at once."""
        if open is not None and not isinstance(open, bool):
            raise ValueError(f"set_session() needs open=True, False or None, got {open!r}")
        with self.lock:
            feed = self._feed(symbol, broker)
            feed.session_override = open
            if feed.is_open(feed.clock.to_server(self._now)):
                und = feed.sym.underlying
                self._after_move(self.market.set_underlying(und, self.market.prices[und], self._now))

    def _after_move(self, changed: list[Feed]) -> None:
        if changed:
            by_broker: dict[str, set[str]] = {}
            for f in changed:
                by_broker.setdefault(f.broker, set()).add(f.sym.name)
            for bname, names in by_broker.items():
                for acct in self.brokers[bname].accounts:
                    if acct.positions or acct.orders:
                        trading.on_quotes(acct, names, self._now)
        for b in self.brokers.values():
            day = b.clock.to_server(self._now) // 86_400_000
            if day != b.last_day:
                for ended in range(b.last_day, day):
                    weekday = (ended + 4) % 7
                    for acct in b.accounts:
                        if acct.positions:
                            trading.rollover(acct, weekday)
                b.last_day = day
            for acct in b.accounts:
                if acct.orders:
                    trading.expire_orders(acct, self._now)

    # --- balance operations ----------------------------------------------------------------
    BALANCE_OPERATIONS = {"balance": C.DEAL_TYPE_BALANCE, "credit": C.DEAL_TYPE_CREDIT,
                          "correction": C.DEAL_TYPE_CORRECTION, "bonus": C.DEAL_TYPE_BONUS,
                          "charge": C.DEAL_TYPE_CHARGE}

    def balance_operation(self, login: int, amount: float, kind: str = "balance", comment: str = "") -> dict:
        """A deposit (amount > 0) or withdrawal (< 0) made by the broker, as MT5 records it:
        a deal of type ``DEAL_TYPE_BALANCE`` (``kind`` "credit", "correction", "bonus",
        "charge" for the other balance-operation types) with the amount in ``profit``, no
        symbol, no position. Balance (credit for "credit") moves at once. A withdrawal
        larger than the free margin (or than the credit) is refused with ValueError, as a
        broker refuses it. Returns the deal ticket and the account's new money."""
        if kind not in self.BALANCE_OPERATIONS:
            raise ValueError(f"kind must be one of {', '.join(self.BALANCE_OPERATIONS)}, got {kind!r}")
        if isinstance(amount, bool) or not isinstance(amount, (int, float)) or not math.isfinite(amount) or amount == 0:
            raise ValueError(f"amount must be a non-zero number, got {amount!r}")
        with self.lock:
            if login not in self.accounts:
                raise ValueError(f"unknown login {login!r}")
            acct = self.accounts[login]
            amount = round(float(amount), 2)
            _profit, _equity, _margin, free, _level = acct.metrics()
            if amount < 0 and kind == "credit" and -amount > acct.credit + 1e-9:
                raise ValueError(f"credit is {acct.credit:.2f}: cannot take back {-amount:.2f}")
            if amount < 0 and -amount > free + 1e-9:
                raise ValueError(f"free margin is {free:.2f}: cannot withdraw {-amount:.2f}")
            broker = acct.broker
            dtype = self.BALANCE_OPERATIONS[kind]
            text = comment or {"balance": "Deposit" if amount > 0 else "Withdrawal"}.get(kind, kind.capitalize())
            deal = Deal(broker.deal_ticket(), 0, broker.clock.to_server(self._now), dtype, C.DEAL_ENTRY_IN, 0, 0,
                        C.DEAL_REASON_CLIENT, 0.0, 0.0, 0.0, 0.0, amount, 0.0, "", text[:self.comment_limit])
            acct.hist_deals.append(deal)
            if kind == "credit":
                acct.credit = round(acct.credit + amount, 2)
            else:
                acct.balance = round(acct.balance + amount, 2)
            self.activity = True
            _profit, equity, _margin, _free, _level = acct.metrics()
            return {"login": login, "deal": deal.ticket, "kind": kind, "type": dtype, "amount": amount,
                    "time_msc": deal.time_msc, "balance": acct.balance, "credit": acct.credit, "equity": equity}

    # --- faults --------------------------------------------------------------------------
    def inject_fault(self, login: int, kind: str, **params: Any) -> None:
        with self.lock:
            if kind == "wrong_login" and params.get("actual") not in self.accounts:
                raise ValueError(f"fault 'wrong_login' needs actual=<a login of the world>, "
                                 f"got {params.get('actual')!r}")
            self._faults(login).apply(kind, params)

    def find_terminal(self, path: str) -> TerminalState | None:
        """The world's terminal at ``path`` (case-insensitive, ``/`` and ``\\`` alike), or None."""
        return self.terminals.get(terminal_key(path)) if isinstance(path, str) else None

    def switch_terminal(self, path: str, login: int) -> None:
        """An operator logs the terminal at ``path`` into ``login`` by hand: every session
        attached to it now works on ``login`` (no password check, no wrong_login fault)."""
        with self.lock:
            term = self.find_terminal(path)
            if term is None:
                raise ValueError(f"unknown terminal path {path!r}; the world has "
                                 f"{[t.path for t in self.terminals.values()]}")
            if isinstance(login, bool) or login not in self.accounts:
                raise ValueError(f"unknown login {login!r}")
            term.login = login
            term.passwords.setdefault(login, self.accounts[login].d.password)

    def manual_trade(self, login: int, request: dict, source: str = "client"):
        """A trade made by hand on ``login``: the desktop terminal's window (``source``
        "client"), the mobile app ("mobile") or the web terminal ("web"). The request is an
        ``order_send`` dict and the same trade rules apply, but the deals, orders and
        positions it makes carry DEAL_/ORDER_/POSITION_REASON_CLIENT (MOBILE, WEB) instead
        of EXPERT, and API-side faults (Algo-Trading off, injected retcodes, lost replies)
        do not apply. Returns the OrderSendResult; a malformed request raises ValueError."""
        from .terminal import Terminal, _Fail

        reasons = {"client": C.DEAL_REASON_CLIENT, "mobile": C.DEAL_REASON_MOBILE, "web": C.DEAL_REASON_WEB}
        if source not in reasons:
            raise ValueError(f"source must be one of {sorted(reasons)}, got {source!r}")
        with self.lock:
            if isinstance(login, bool) or login not in self.accounts:
                raise ValueError(f"unknown login {login!r}")
            try:
                return Terminal(self)._send(self.accounts[login], request, reasons[source], api=False)
            except _Fail as e:
                raise ValueError(f"request refused: {e.err[1]}") from None

    def terminal_logins(self) -> dict[str, int | None]:
        """Each terminal's path (as in the world file) and its current login."""
        with self.lock:
            return {t.path: t.login for t in self.terminals.values()}

    def clear_faults(self, login: int) -> None:
        with self.lock:
            self._faults(login)
            self.faults[login] = Faults()

    def _faults(self, login: int) -> Faults:
        if login not in self.faults:
            raise ValueError(f"unknown login {login!r}")
        return self.faults[login]

    # --- introspection -------------------------------------------------------------------
    def logins(self) -> list[int]:
        return list(self.world.accounts)

    def broker_of(self, login: int) -> str:
        if login not in self.world.accounts:
            raise ValueError(f"unknown login {login!r}")
        return self.world.accounts[login].broker

    def world_summary(self) -> dict:
        """Brokers, symbols and accounts as plain JSON-able data (for the CLI)."""
        with self.lock:
            brokers = []
            for name, b in self.brokers.items():
                symbols = []
                for sname, f in b.feeds.items():
                    s = f.sym
                    symbols.append({
                        "name": sname, "underlying": s.underlying, "digits": s.digits, "point": s.point,
                        "contract_size": s.contract_size, "volume_min": s.volume_min,
                        "volume_step": s.volume_step, "volume_max": s.volume_max,
                        "filling_mode": s.filling_mode, "trade_exemode": s.trade_exemode,
                        "trade_mode": s.trade_mode, "stops_level": s.stops_level,
                        "freeze_level": s.freeze_level, "spread": s.spread, "calc_mode": s.calc_mode,
                        "currency_base": s.currency_base, "currency_profit": s.currency_profit,
                        "commission_per_lot": s.commission_per_lot, "bid": f.bid, "ask": f.ask,
                        "market_open": f.is_open(b.clock.to_server(self._now)),
                    })
                brokers.append({"name": name, "company": b.d.company, "server_time": b.clock.describe(),
                                "symbols": symbols})
            accounts = []
            for login, acct in self.accounts.items():
                profit, equity, margin, free, level = acct.metrics()
                accounts.append({
                    "login": login, "broker": acct.broker.name, "name": acct.d.name,
                    "margin_mode": _MARGIN_MODE_NAMES[acct.d.margin_mode], "currency": acct.d.currency,
                    "leverage": acct.d.leverage, "balance": acct.balance, "equity": equity, "margin": margin,
                    "margin_level": level, "positions": len(acct.positions), "orders": len(acct.orders),
                    "faults": {k: v for k, v in vars(self.faults[login]).items() if v},
                })
            terminals = [{"path": t.path, "folder": t.folder, "login": t.login}
                         for t in self.terminals.values()]
            return {"source": self.world.source, "seed": self.seed, "time_ms": self._now,
                    "brokers": brokers, "accounts": accounts, "terminals": terminals}

    def next_request_id(self) -> int:
        rid = self.request_id
        self.request_id += 1
        return rid

    def terminal(self, login: int | None = None, password: str | None = None):
        """A new module-like terminal, unbound until ``initialize()``.

        ``login``/``password`` play the account saved in a real terminal: what a bare
        ``initialize()`` connects to.
        """
        from .terminal import Terminal

        return Terminal(self, login=login, password=password)
