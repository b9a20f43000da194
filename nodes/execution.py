"""Send one trading intent to the terminal, with bounded retries; report what happened.

This is the node's only ``order_send`` caller. Decisions were made by the copier
planner; here we only build the MT5 request, retry transient retcodes with backoff
(re-checking slippage on every try, as a fresh price is the point of retrying), and
classify the outcome through the one retcode table (``copier/retcodes.py``). ``UNKNOWN``
means the order may have executed (reply lost, timeout): the caller must look for the
position by its comment tag before sending again. ``DEFERRED`` is a transient reject
(market closed, AutoTrading off, no quotes after the in-action retries, ...): nothing was
done, and the caller tries again later, with backoff, while the master still asks for it.
``FAILED`` is a broker constraint or a permanent reject: final for this request.

Invalid stops (10016, a broker constraint): SL/TP are checked against the quote each send
uses (``stops=``, moved to the nearest valid level); if the server still refuses them, the
open (or pending placement) is sent once more WITHOUT stops and the outcome says so
(``stops_dropped``): the slave sets the stops it may set on its next pass. A copy is never
left undone for a stop-level detail.
"""
from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, replace
from typing import Any

from copier import retcodes as R
from copier.models import Quote
from copier.orders import RetryPolicy, classify_retcode
from copier.sltp import StopsAdjustment

DONE, NOOP, UNKNOWN, FAILED, SKIPPED, DEFERRED = "DONE", "NOOP", "UNKNOWN", "FAILED", "SKIPPED", "DEFERRED"

SlippageGuard = Callable[[Quote], str | None]  # a reason to skip, or None when within tolerance


@dataclass(frozen=True)
class Outcome:
    status: str  # DONE | NOOP | UNKNOWN | FAILED | SKIPPED
    retcode: int = 0
    price: float = 0.0
    volume: float = 0.0
    order: int = 0
    deal: int = 0
    attempts: int = 0
    reason: str = ""
    sent_ms: int = 0  # wall clock (UTC ms) when the last order_send was issued
    filled_ms: int = 0  # wall clock when the successful reply arrived
    quote: Quote | None = None
    sl: float = 0.0  # the levels the last request carried (opens)
    tp: float = 0.0
    stops_note: str = ""  # how the stops were moved to valid levels for the quote sent with
    stops_dropped: bool = False  # 10016 despite that: opened without stops (set them next)

    @property
    def ok(self) -> bool:
        return self.status in (DONE, NOOP)

    @property
    def retclass(self) -> str:
        """The retcode's class in copier/retcodes.py (done, transient, constraint, permanent)."""
        return R.retcode_class(self.retcode or None)


def _now_ms() -> int:
    return time.time_ns() // 1_000_000


class Executor:
    """Order sending for one terminal; ``sleep`` is injectable so tests need no waiting."""

    def __init__(self, mt5: Any, policy: RetryPolicy, *, sleep: Callable[[float], None] = time.sleep,
                 fence: Callable[[], None] | None = None) -> None:
        """``fence()`` runs right before every ``order_send`` and raises (``nodes.lease.LeaseLost``)
        when this process may not trade the account: the last check, microseconds before the send."""
        self.mt5 = mt5
        self.policy = policy
        self.sleep = sleep
        self.fence = fence
        self.sends = 0  # order_send calls made (the slave loop's positions read is stale once it moves)

    def _quote(self, symbol: str) -> Quote | None:
        tick = self.mt5.symbol_info_tick(symbol)
        if tick is None:
            return None
        return Quote(bid=float(tick.bid), ask=float(tick.ask), time_msc=int(tick.time_msc))

    def _send_with_retries(self, symbol: str, build: Callable[[Quote | None], dict[str, Any] | str], *, needs_quote: bool, first_quote: Quote | None = None) -> Outcome:
        """``first_quote``: a tick read just before (by the planner's pass) saves one call on
        the hot path; every retry reads a fresh one, since a fresh price is why we retry."""
        delays = list(self.policy.delays())
        attempts = 0
        last_retcode, last_reason = 0, "no attempt made"
        for attempt in range(len(delays) + 1):
            attempts = attempt + 1
            if needs_quote and attempt == 0 and first_quote is not None:
                quote = first_quote
            else:
                quote = self._quote(symbol) if needs_quote else None
            if needs_quote and quote is None:
                code, text = self.mt5.last_error()
                last_retcode, last_reason = 10021, f"no quote for {symbol} ({code}, {text})"
            else:
                request = build(quote)
                if isinstance(request, str):  # the guard refused this price
                    return Outcome(SKIPPED, reason=request, attempts=attempts, quote=quote)
                if self.fence is not None:
                    self.fence()
                sent_ms = _now_ms()
                self.sends += 1
                result = self.mt5.order_send(request)
                if result is None:
                    code, text = self.mt5.last_error()
                    if code == R.RES_E_INVALID_PARAMS:  # malformed request: retrying cannot help
                        return Outcome(FAILED, retcode=code, reason=f"request refused: {text}", attempts=attempts, sent_ms=sent_ms)
                    if not R.lookup(code).unknown:  # e.g. -8 AutoTrading disabled: not sent, transient
                        return Outcome(DEFERRED, retcode=code, reason=f"not sent: ({code}, {text})", attempts=attempts, sent_ms=sent_ms, quote=quote)
                    return Outcome(UNKNOWN, retcode=code, reason=f"no reply: ({code}, {text})", attempts=attempts, sent_ms=sent_ms, quote=quote)
                kind = classify_retcode(int(result.retcode))
                common = dict(retcode=int(result.retcode), attempts=attempts, sent_ms=sent_ms, quote=quote)
                if kind == "done":
                    return Outcome(DONE, price=float(result.price), volume=float(result.volume), order=int(result.order), deal=int(result.deal), filled_ms=_now_ms(), reason=str(result.comment), **common)
                if kind == "noop":
                    return Outcome(NOOP, reason=str(result.comment), **common)
                if kind == "unknown":
                    return Outcome(UNKNOWN, reason=f"outcome unknown: {result.retcode} {result.comment}", **common)
                if kind == "final":
                    return Outcome(FAILED, reason=f"{result.retcode} {result.comment} ({R.lookup(int(result.retcode)).cls})", **common)
                if kind == "later":  # transient, but not within this action (market closed, ...)
                    return Outcome(DEFERRED, reason=f"{result.retcode} {result.comment} (transient)", **common)
                last_retcode, last_reason = int(result.retcode), f"{result.retcode} {result.comment}"
            if attempt < len(delays):
                self.sleep(delays[attempt])
        return Outcome(DEFERRED, retcode=last_retcode, reason=f"{last_reason} after {attempts} attempts (transient)", attempts=attempts)

    # ------------------------------------------------------------------ intents
    def open_market(self, *, symbol: str, side: str, volume: float, sl: float, tp: float, deviation: int, magic: int, comment: str, type_filling: int, guard: SlippageGuard | None = None, position: int = 0, quote: Quote | None = None,
                    stops: Callable[[Quote, float, float], StopsAdjustment] | None = None) -> Outcome:
        """A market deal. ``stops(quote, sl, tp)`` moves SL/TP to levels valid for the quote
        each attempt is sent with; a 10016 reply is followed by one send without stops."""
        mt5 = self.mt5
        sent: dict[str, Any] = {"sl": float(sl), "tp": float(tp), "note": ""}

        def build(q: Quote | None, *, with_stops: bool = True) -> dict[str, Any] | str:
            assert q is not None
            if guard is not None:
                refusal = guard(q)
                if refusal:
                    return refusal
            s_l, t_p = (float(sl), float(tp)) if with_stops else (0.0, 0.0)
            if with_stops and stops is not None and (s_l or t_p):
                adj = stops(q, s_l, t_p)
                s_l, t_p = adj.sl, adj.tp
                sent["note"] = adj.note
            sent.update(sl=s_l, tp=t_p)
            req = {
                "action": mt5.TRADE_ACTION_DEAL, "symbol": symbol, "volume": float(volume),
                "type": mt5.ORDER_TYPE_BUY if side == "BUY" else mt5.ORDER_TYPE_SELL,
                "price": q.ask if side == "BUY" else q.bid, "sl": s_l, "tp": t_p,
                "deviation": int(deviation), "magic": int(magic), "comment": comment,
                "type_time": mt5.ORDER_TIME_GTC, "type_filling": int(type_filling),
            }
            if position:
                req["position"] = int(position)
            return req

        outcome = self._send_with_retries(symbol, build, needs_quote=True, first_quote=quote)
        if outcome.retcode == R.TRADE_RETCODE_INVALID_STOPS and (sent["sl"] or sent["tp"]):
            first = outcome
            outcome = self._send_with_retries(symbol, lambda q: build(q, with_stops=False), needs_quote=True)
            return replace(outcome, attempts=first.attempts + outcome.attempts, stops_dropped=True,
                           stops_note=f"{R.describe(first.retcode)} for SL {sent['sl']:g} TP {sent['tp']:g}: sent without stops")
        return replace(outcome, sl=sent["sl"], tp=sent["tp"], stops_note=sent["note"])

    def close_position(self, *, ticket: int, symbol: str, position_side: str, volume: float, deviation: int, magic: int, comment: str, type_filling: int, quote: Quote | None = None) -> Outcome:
        """Close (or partially close) ``ticket``: an opposite deal with ``position=``.

        ``quote``: a tick the caller read in this pass (saves one call; retries read fresh).
        10036 (already closed) counts as done: the goal state is reached.
        """
        mt5 = self.mt5

        def build(q: Quote | None) -> dict[str, Any]:
            assert q is not None
            return {
                "action": mt5.TRADE_ACTION_DEAL, "symbol": symbol, "volume": float(volume),
                "type": mt5.ORDER_TYPE_SELL if position_side == "BUY" else mt5.ORDER_TYPE_BUY,
                "position": int(ticket), "price": q.bid if position_side == "BUY" else q.ask,
                "deviation": int(deviation), "magic": int(magic), "comment": comment,
                "type_time": mt5.ORDER_TIME_GTC, "type_filling": int(type_filling),
            }

        outcome = self._send_with_retries(symbol, build, needs_quote=True, first_quote=quote)
        if outcome.retcode == 10036:
            return Outcome(NOOP, retcode=10036, reason="position already closed", attempts=outcome.attempts)
        return outcome

    def modify_sltp(self, *, ticket: int, symbol: str, sl: float, tp: float, magic: int) -> Outcome:
        mt5 = self.mt5
        request = {"action": mt5.TRADE_ACTION_SLTP, "symbol": symbol, "position": int(ticket), "sl": float(sl), "tp": float(tp), "magic": int(magic)}
        return self._send_with_retries(symbol, lambda _q: request, needs_quote=False)

    def place_pending(self, *, symbol: str, order_type: int, volume: float, price: float, stoplimit: float, sl: float, tp: float, magic: int, comment: str, type_filling: int, type_time: int = 0, expiration: int = 0) -> Outcome:
        """A pending order; a 10016 reply (invalid stops) is followed by one placement without
        stops (the slave sets them with a modification on its next pass). ``type_time``:
        ORDER_TIME_* code; ``expiration``: server seconds (SPECIFIED/SPECIFIED_DAY)."""
        mt5 = self.mt5
        request = {
            "action": mt5.TRADE_ACTION_PENDING, "symbol": symbol, "volume": float(volume), "type": int(order_type),
            "price": float(price), "stoplimit": float(stoplimit), "sl": float(sl), "tp": float(tp),
            "magic": int(magic), "comment": comment, "type_time": int(type_time), "type_filling": int(type_filling),
        }
        if expiration:
            request["expiration"] = int(expiration)
        outcome = self._send_with_retries(symbol, lambda _q: request, needs_quote=False)
        if outcome.retcode == R.TRADE_RETCODE_INVALID_STOPS and (sl or tp):
            bare = {**request, "sl": 0.0, "tp": 0.0}
            again = self._send_with_retries(symbol, lambda _q: bare, needs_quote=False)
            return replace(again, attempts=outcome.attempts + again.attempts, stops_dropped=True,
                           stops_note=f"{R.describe(outcome.retcode)} for SL {sl:g} TP {tp:g}: placed without stops")
        return replace(outcome, sl=float(sl), tp=float(tp))

    def modify_pending(self, *, ticket: int, symbol: str, price: float, stoplimit: float, sl: float, tp: float, type_time: int = 0, expiration: int = 0) -> Outcome:
        """A MODIFY restates the expiry: pass the order's (or the new) ``type_time``/``expiration``."""
        mt5 = self.mt5
        request = {"action": mt5.TRADE_ACTION_MODIFY, "order": int(ticket), "symbol": symbol, "price": float(price), "stoplimit": float(stoplimit), "sl": float(sl), "tp": float(tp), "type_time": int(type_time)}
        if expiration:
            request["expiration"] = int(expiration)
        return self._send_with_retries(symbol, lambda _q: request, needs_quote=False)

    def remove_pending(self, *, ticket: int, symbol: str) -> Outcome:
        mt5 = self.mt5
        return self._send_with_retries(symbol, lambda _q: {"action": mt5.TRADE_ACTION_REMOVE, "order": int(ticket)}, needs_quote=False)
