"""The guardian's hand: flatten an account when it locks, and keep it flat while locked.

Every close is an event (``risk_position_closed`` / ``risk_close_failed``); a position
that appears while locked is an alert once. Orders go through the node's Executor
(``monitoring.terminal.Closer``), with the comment ``copyhub risk <why>``; each position
closed is also noted here (``closed``: identifier -> ``"flatten (daily_loss 98.9%)"``), so
the slave records its copies as closed by the guardian (``copier.reasons``, cause ``risk``).
"""
from __future__ import annotations

from collections.abc import Callable
from typing import Any

from copier.risk import MARGIN, Evaluation, Level
from copier.risk.clock import utc_from_ms

from .levels import LevelTracker, action_text, alert_fields
from .terminal import Closer, CloseResult


class LockEnforcer:
    """Closes positions and removes pending orders for one account.

    ``event(kind, level=..., **data)`` and ``alert(rule, level, **fields)`` are the
    guardian's (they never raise); ``log`` a structlog logger.
    """

    def __init__(self, closer: Closer, *, log: Any, event: Callable[..., None],
                 alert: Callable[..., None]) -> None:
        self.closer = closer
        self.log = log
        self.event = event
        self.alert = alert
        self.last_flatten: dict[str, Any] | None = None
        self.lock_closes = 0  # positions closed because they opened while locked
        self._close_failures: dict[int, int] = {}  # ticket -> consecutive failed closes
        self.closed: dict[int, str] = {}  # position identifier -> what it was closed for (the slave's record)
        self.detail = ""  # the rules that locked the account, e.g. "daily_loss 98.9%"

    def flatten(self, positions: Any, ev: Evaluation, now_utc_ms: int, *, equity: float | None, currency: str,
                tracker: LevelTracker) -> None:
        """The account just locked: close every position (copies and manual trades),
        delete pending orders, record the outcome (``last_flatten``) and alert once on the
        worst rule (``tracker`` then knows that rule is at FLATTEN)."""
        mt5 = self.closer.mt5
        lock = ev.state.lock
        until = _iso(lock.until_utc_ms) if lock and lock.until_utc_ms else None
        self.detail = flatten_detail(ev)
        cost = max((r.closing_cost for r in ev.rules), default=0.0)
        rules = [{"rule": r.rule, "used_pct": round(r.used_pct, 2), "used_money": r.used_money,
                  "limit_money": r.limit_money, "closing_cost": r.closing_cost}
                 for r in ev.rules if r.rule != MARGIN]
        self.log.error("risk_flatten", reason=lock.reason if lock else "", positions=len(positions), closing_cost=cost)
        # closing_cost: how much of each rule's used_money is the estimated exit commission
        self.event("risk_flatten_started", level="error", reason=lock.reason if lock else "", positions=len(positions),
                   until_utc_ms=lock.until_utc_ms if lock else None, equity=equity, closing_cost=cost, rules=rules)
        results = self.closer.close_positions(positions, lambda r: self.record_close(r, "flatten"), why="flatten")
        orders = mt5.orders_get()
        removed = self.closer.remove_orders(orders or ())
        for ticket, ok, reason in removed:
            self.event("risk_order_removed", level="warning" if ok else "error", order=ticket, ok=ok, reason=reason)
        closed = sum(1 for r in results if r.ok)
        self.last_flatten = {
            "started_ms": now_utc_ms,
            "last_close_sent_ms": max((r.sent_ms for r in results), default=None),
            "closed": closed,
            "failed": sum(1 for r in results if not r.ok),
            "orders_removed": sum(1 for _t, ok, _r in removed if ok),
            "closing_cost": cost,
        }
        self.event("risk_locked", level="error", reason=lock.reason if lock else "",
                   until_utc_ms=lock.until_utc_ms if lock else None, **self.last_flatten)
        worst = [r for r in ev.rules if r.level >= Level.FLATTEN] or list(ev.rules)
        if worst:
            rv = worst[0]
            fields = alert_fields(rv, currency)
            self.alert(rv.rule, "flatten", action_taken=action_text(Level.FLATTEN, True, closed=closed, until=until),
                       **fields)
            tracker.levels[rv.rule] = Level.FLATTEN

    def enforce(self, positions: Any, detail: str = "") -> None:
        """Locked: whatever opens (a copy, a manual trade, an EA) is closed at once.
        ``detail``: why the account is locked (``lock_detail``), for the close records."""
        if detail:
            self.detail = detail
        if positions:
            self.log.warning("risk_lock_closing", positions=len(positions))
            self.closer.close_positions(positions, lambda r: self.record_close(r, "locked"), why="locked")
        orders = self.closer.mt5.orders_get()
        if orders:
            for ticket, ok, reason in self.closer.remove_orders(orders):
                self.event("risk_order_removed", level="warning" if ok else "error", order=ticket, ok=ok, reason=reason)

    def record_close(self, r: CloseResult, why: str) -> None:
        """Event (and log) for one close attempt; ``why``: ``flatten`` or ``locked``. A
        failing close is retried every evaluation and recorded at the 1st, then every
        60th failure."""
        data = dict(ticket=r.ticket, symbol=r.symbol, side=r.side, volume=r.volume, copied=r.copied, ok=r.ok,
                    retcode=r.retcode, price=r.price, reason=r.reason, why=why, sent_ms=r.sent_ms)
        if why == "locked" and r.ok:
            self.lock_closes += 1
        if why == "locked" and self._close_failures.get(r.ticket, 0) == 0:
            self.alert("lock_enforced", "warn", message=(
                f"{'copied' if r.copied else 'manual'} position #{r.ticket} {r.side} {r.volume:g} {r.symbol} "
                f"opened while locked: {'closed' if r.ok else 'close FAILED, retrying'}"),
                action_taken="position closed" if r.ok else "close retried every evaluation")
        if r.ok:
            self._close_failures.pop(r.ticket, None)
            self.note_closed(r.identifier or r.ticket, why)
            self.log.warning("risk_position_closed", **data)
            self.event("risk_position_closed", level="warning", **data)
        else:
            n = self._close_failures[r.ticket] = self._close_failures.get(r.ticket, 0) + 1
            self.log.error("risk_close_failed", failures=n, **data)
            if n == 1 or n % 60 == 0:
                self.event("risk_close_failed", level="error", failures=n, **data)


    def note_closed(self, identifier: int, why: str) -> None:
        """Remember what position ``identifier`` was closed for (kept for the last 1,000)."""
        self.closed[int(identifier)] = f"{why} ({self.detail})" if self.detail else why
        while len(self.closed) > 1000:
            del self.closed[next(iter(self.closed))]


def flatten_detail(ev: Evaluation) -> str:
    """The rules at the flatten level and their share used, e.g. ``daily_loss 98.9%``
    (the lock's reason when none is: an operator lock, a re-lock from the state)."""
    rules = ", ".join(f"{r.rule} {r.used_pct:.1f}%" for r in ev.rules if r.level >= Level.FLATTEN)
    if rules:
        return rules
    return lock_detail(ev.state.lock.reason if ev.state.lock else "")


def lock_detail(reason: str) -> str:
    """What a lock's reason says about the rules: ``flatten level reached: daily_loss 98.9%
    (used includes ...)`` -> ``daily_loss 98.9%``; another reason (an operator's) as is."""
    prefix = "flatten level reached: "
    if reason.startswith(prefix):
        reason = reason[len(prefix):]
        cut = reason.find(" (used includes")
        return reason if cut < 0 else reason[:cut]
    return reason


def _iso(utc_ms: int) -> str:
    return utc_from_ms(utc_ms).strftime("%Y-%m-%d %H:%M UTC")
