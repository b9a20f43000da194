"""Per-login fault injection: the failure modes a copier must survive.

Kinds (``Simulator.inject_fault(login, kind, **params)``):

* ``retcode``   (code, count=1): next ``count`` order_send calls get that retcode, no trade
* ``latency``   (ms):            every terminal call sleeps ``ms`` first (0 removes it)
* ``reply_lost`` (count=1):      next ``count`` order_send calls execute, return None, (-10005)
* ``disconnect`` / ``reconnect``: every call fails with (-10004, 'No IPC connection')
* ``algo_off`` / ``algo_on``:    the terminal's Algo-Trading button (order_send -> 10027)
* ``wrong_login`` (actual) / ``right_login``: initialize/login into this login returns True
  but the terminal ends up logged into ``actual`` (a terminal that is on another account)
* ``price_after`` (call, symbol, bid, broker=None): once, right after this login's next
  call to ``call`` (``positions_get`` or ``orders_get``; comma-separated for either) has
  read its answer, the simulator sets ``symbol``'s bid to ``bid`` (as ``set_price``), so
  orders trigger exactly between two reads of one poll -- the deterministic form of a
  price moving while a slow terminal answers
"""
from __future__ import annotations

from dataclasses import dataclass

KINDS = ("retcode", "latency", "reply_lost", "disconnect", "reconnect", "algo_off", "algo_on",
         "wrong_login", "right_login", "price_after")
PRICE_AFTER_CALLS = ("positions_get", "orders_get")


@dataclass
class Faults:
    retcode: int = 0
    retcode_left: int = 0
    latency_ms: float = 0.0
    reply_lost_left: int = 0
    disconnected: bool = False
    algo_off: bool = False
    wrong_login: int = 0  # 0 = none; else the login a login into this one really lands on
    price_after: dict | None = None  # {"calls": frozenset, "symbol", "bid", "broker"}; one-shot

    def apply(self, kind: str, params: dict) -> None:
        """Apply one ``inject_fault`` call; raises ValueError/TypeError on bad input."""
        allowed = {"retcode": {"code", "count"}, "latency": {"ms"}, "reply_lost": {"count"},
                   "wrong_login": {"actual"}, "price_after": {"call", "symbol", "bid", "broker"}}.get(kind, set())
        if kind not in KINDS:
            raise ValueError(f"unknown fault kind {kind!r}; expected one of {', '.join(KINDS)}")
        extra = set(params) - allowed
        if extra:
            raise TypeError(f"fault {kind!r} takes no parameter(s) {sorted(extra)}; allowed: {sorted(allowed)}")
        if kind == "retcode":
            code = params.get("code")
            if not isinstance(code, int) or isinstance(code, bool):
                raise ValueError("fault 'retcode' needs code=<int retcode>")
            self.retcode, self.retcode_left = code, _count(params)
        elif kind == "latency":
            ms = params.get("ms")
            if not isinstance(ms, (int, float)) or isinstance(ms, bool) or ms < 0:
                raise ValueError("fault 'latency' needs ms=<number >= 0>")
            self.latency_ms = float(ms)
        elif kind == "reply_lost":
            self.reply_lost_left = _count(params)
        elif kind == "disconnect":
            self.disconnected = True
        elif kind == "reconnect":
            self.disconnected = False
        elif kind == "algo_off":
            self.algo_off = True
        elif kind == "algo_on":
            self.algo_off = False
        elif kind == "wrong_login":
            actual = params.get("actual")
            if not isinstance(actual, int) or isinstance(actual, bool) or actual <= 0:
                raise ValueError("fault 'wrong_login' needs actual=<login>")
            self.wrong_login = actual
        elif kind == "right_login":
            self.wrong_login = 0
        elif kind == "price_after":
            call, symbol, bid = params.get("call"), params.get("symbol"), params.get("bid")
            calls = frozenset(c.strip() for c in call.split(",")) if isinstance(call, str) else frozenset()
            if not calls or not calls <= set(PRICE_AFTER_CALLS):
                raise ValueError(f"fault 'price_after' needs call= one or more of {', '.join(PRICE_AFTER_CALLS)}")
            if not isinstance(symbol, str) or not symbol:
                raise ValueError("fault 'price_after' needs symbol=<symbol>")
            if not isinstance(bid, (int, float)) or isinstance(bid, bool) or bid <= 0:
                raise ValueError("fault 'price_after' needs bid=<price > 0>")
            broker = params.get("broker")
            if broker is not None and not isinstance(broker, str):
                raise ValueError("fault 'price_after' broker must be a server name")
            self.price_after = {"calls": calls, "symbol": symbol, "bid": float(bid), "broker": broker}

    def take_price_after(self, call: str) -> dict | None:
        """The pending ``price_after`` move if ``call`` triggers it (then it is used up)."""
        if self.price_after is not None and call in self.price_after["calls"]:
            move, self.price_after = self.price_after, None
            return move
        return None

    def take_retcode(self) -> int:
        """The injected retcode for this order_send, or 0."""
        if self.retcode_left > 0:
            self.retcode_left -= 1
            return self.retcode
        return 0

    def take_reply_lost(self) -> bool:
        if self.reply_lost_left > 0:
            self.reply_lost_left -= 1
            return True
        return False


def _count(params: dict) -> int:
    count = params.get("count", 1)
    if not isinstance(count, int) or isinstance(count, bool) or count < 1:
        raise ValueError("fault count must be an int >= 1")
    return count
