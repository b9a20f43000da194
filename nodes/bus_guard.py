"""A slave's plausibility check of what the bus says about its masters (issue 15).

:class:`BusGuard` is the ``check`` each of the slave's mirrors (messaging/clone.py) runs on
every ``pos.<master>`` snapshot and delta before applying it. It gathers what the pure
rules of ``copier/plausibility.py`` need from the slave's own terminal — the translated
symbol's spec and tick, the rate between the master's and the slave's deposit currencies
— and logs every refusal (``bus_message_refused``: master, kind, seq, rule, field, value,
limit). A refused message is never a trade: the mirror treats it as a gap or ignores it.

Terminal reads are cached (a spec for a minute, a tick for ``QUOTE_TTL_MS``): the price
rule allows several percent, so a tick a few seconds old is as good as a fresh one, and a
master change on a symbol read in the last seconds costs the copy path no terminal call.
"""
from __future__ import annotations

import time
from collections import Counter
from collections.abc import Mapping
from typing import Any

from copier.models import AccountMetrics, Position, Quote, SymbolSpec
from copier.plausibility import Limits, Market, Rejection, check_update
from copier.symbols import translate_symbol
from messaging.schema import Delta, Snapshot
from terminals.convert import spec_from_mt5

SPEC_TTL_MS = 60_000
QUOTE_TTL_MS = 5_000
# A tick the guard read for a change is handed to the pass that change triggers (slave
# ``_quote``) when that pass runs within this long: one terminal read on the copy path.
HANDOFF_MS = 100
ALERT_EVERY_S = 3600.0  # one audit event + operator alert per master and rule per hour


def limits_from_settings(settings: Any) -> Limits:
    """The plausibility limits from copyhub's settings (``PLAUSIBLE_*``, config.py)."""
    return Limits(max_lots=float(settings.PLAUSIBLE_MAX_LOTS),
                  price_deviation=settings.PLAUSIBLE_PRICE_DEVIATION_PCT / 100.0,
                  max_future_ms=int(settings.PLAUSIBLE_MAX_FUTURE_MS))


class BusGuard:
    """The follower-side facts and the log line for ``copier.plausibility``.

    ``loop`` is the slave loop: its current ``mt5``, ``cfg`` (symbol mapping),
    ``available`` symbols, ``metrics`` (deposit currency) and ``rates`` (a RateBook) are
    read at each check, so a reconnected terminal or a reloaded mapping is used at once.
    Counters: ``rejected`` (messages), ``by_rule``, ``conflicts``.
    """

    def __init__(self, loop: Any, limits: Limits, log: Any) -> None:
        self.loop = loop
        self.limits = limits
        self.log = log
        self.rejected = 0
        self.conflicts = 0
        self.by_rule: Counter[str] = Counter()
        self.last: str | None = None
        self._specs: dict[str, tuple[int, SymbolSpec | None]] = {}
        self._quotes: dict[str, tuple[int, Quote | None]] = {}
        self._handoff: dict[str, tuple[float, Quote]] = {}  # symbol -> (monotonic s, tick just read)
        self._told: dict[tuple[str, str], float] = {}  # (master, rule) -> monotonic s of the last alert

    def check(self, msg: Any, known: Mapping[int, Position], metrics: AccountMetrics | None,
              now_ms: int) -> list[Rejection]:
        """The broken rules of ``msg`` (a Snapshot or Delta); empty when believable."""
        if isinstance(msg, Snapshot):
            positions, orders, metrics, is_delta = msg.positions, msg.orders, msg.metrics or metrics, False
        elif isinstance(msg, Delta):
            positions, orders, is_delta = msg.upsert_positions, msg.upsert_orders, True
        else:
            return []
        symbols = {p.symbol for p in positions} | {o.symbol for o in orders}
        markets = {s: self._market(s, now_ms) for s in symbols}
        problems = check_update(ts_ms=msg.ts_ms, now_ms=now_ms, positions=positions, orders=orders, known=known,
                                is_delta=is_delta, markets=markets, metrics=metrics,
                                equity_rate=self._equity_rate(metrics, now_ms) if positions else None,
                                limits=self.limits)
        if problems:
            self.rejected += 1
            for r in problems:
                self.by_rule[r.rule] += 1
                self.log.warning("bus_message_refused", master=msg.master, kind=msg.kind, epoch=msg.epoch, seq=msg.seq,
                                 rule=r.rule, field=r.field, key=r.key, symbol=r.symbol, value=r.value, limit=r.limit,
                                 unit=r.unit, action="treated as a gap: nothing traded, snapshot asked for")
            self.last = f"{msg.master} {msg.kind} seq {msg.seq}: {problems[0].describe()}"
            self._tell_operator(msg.master, problems[0], time.monotonic())
        return problems

    def _tell_operator(self, master: str, problem: Rejection, now_s: float) -> None:
        """A refused message is a security matter (a forged frame, or a master gone wrong):
        an audit event and an operator alert, once per master and rule per ``ALERT_EVERY_S``
        (a stream of forged frames is one alert, the log has every one)."""
        key = (master, problem.rule)
        if now_s - self._told.get(key, -ALERT_EVERY_S) < ALERT_EVERY_S:
            return
        self._told[key] = now_s
        rt = getattr(self.loop, "rt", None)
        text = f"refused a position message of master {master!r}: {problem.describe()} (treated as a gap, nothing traded)"
        event = getattr(rt, "event", None)
        if event is not None:
            event("bus_message_refused", level="warning", master=master, rule=problem.rule, reason=problem.describe())
        alert = getattr(rt, "alert", None)
        if alert is not None:
            alert("bus_message_refused", text, action_taken="nothing traded; snapshot asked for")

    def conflict(self, msg: Any, why: str) -> None:
        """The mirror's report of a message that contradicts another (``on_conflict``)."""
        self.conflicts += 1
        self.log.warning("bus_message_conflict", master=msg.master, kind=msg.kind, epoch=msg.epoch, seq=msg.seq,
                         reason=why, action="not fresh until a confirmed snapshot: nothing closed, nothing opened")

    def status_info(self) -> dict[str, Any]:
        """For the slave's heartbeat: ``bus_rejected`` (implausible pos messages refused since
        start), ``bus_rejected_rules`` (per rule), ``bus_rejected_last`` (what and why) and
        ``bus_conflicts`` (messages that contradicted another of the same master)."""
        return {"bus_rejected": self.rejected, "bus_rejected_rules": dict(self.by_rule),
                "bus_rejected_last": self.last, "bus_conflicts": self.conflicts}

    # ------------------------------------------------------------------ follower-side facts
    def _market(self, master_symbol: str, now: int) -> Market:
        loop = self.loop
        sym = translate_symbol(master_symbol, loop.cfg, loop.available)
        if not isinstance(sym, str):
            return Market()
        return Market(spec=self._spec(sym, now), quote=self._quote(sym, now))

    def take_quote(self, symbol: str) -> Quote | None:
        """The tick this guard read for ``symbol`` less than HANDOFF_MS ago (once), else None:
        the slave's pass uses it instead of reading the same tick again."""
        hit = self._handoff.pop(symbol, None)
        if hit is None or time.monotonic() - hit[0] > HANDOFF_MS / 1000:
            return None
        return hit[1]

    def _spec(self, symbol: str, now: int) -> SymbolSpec | None:
        known = getattr(self.loop, "specs", {}).get(symbol)  # the slave's own cache: (read ms, spec)
        if known is not None and now - known[0] < SPEC_TTL_MS:
            cached: SymbolSpec | None = known[1]
            return cached
        hit = self._specs.get(symbol)
        if hit is not None and now - hit[0] < SPEC_TTL_MS:
            return hit[1]
        info = self.loop.mt5.symbol_info(symbol)
        spec = spec_from_mt5(info) if info is not None else None
        if spec is not None or hit is None:
            self._specs[symbol] = (now, spec)
        return spec if spec is not None else (hit[1] if hit else None)

    def _quote(self, symbol: str, now: int) -> Quote | None:
        hit = self._quotes.get(symbol)
        if hit is not None and now - hit[0] < QUOTE_TTL_MS:
            return hit[1]
        tick = self.loop.mt5.symbol_info_tick(symbol)
        if tick is None or not (float(tick.bid) > 0 and float(tick.ask) > 0):
            return hit[1] if hit is not None else None
        quote = Quote(bid=float(tick.bid), ask=float(tick.ask), time_msc=int(tick.time_msc))
        self._quotes[symbol] = (now, quote)
        self._handoff[symbol] = (time.monotonic(), quote)
        return quote

    def _equity_rate(self, metrics: AccountMetrics | None, now: int) -> float | None:
        """Master deposit currency -> the slave's; None when unknown (the equity rule waits)."""
        mine = getattr(self.loop, "metrics", None)
        if metrics is None or mine is None:
            return None
        theirs, ours = (metrics.currency or "").upper(), (mine.currency or "").upper()
        if not theirs or not ours:
            return None
        if theirs == ours:
            return 1.0
        rates = getattr(self.loop, "rates", None)
        conv = rates.conversion(self.loop.mt5, theirs, ours, now) if rates is not None else None
        rate = getattr(conv, "rate", None)
        return float(rate) if rate else None
