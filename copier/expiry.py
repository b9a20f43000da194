"""Expiry of a pending-order copy: the master's time type, at the follower's broker.

A master order that expires must not outlive it on the follower: a copy left working
after the master's order expired fills a trade the master never had (fault 7, issue 9),
and if the master node is down across the expiry nobody else removes it. So the copy
carries its own expiry, placed with the follower's server: the same INSTANT, expressed in
the follower's server clock.

The bus carries the master order's ``type_time`` and the instant it expires,
``expiration_ms`` (UTC; the master converts its server time with its estimated offset).
The follower converts the instant to its server time (``+ slave_offset_ms``, its own
estimated offset) and picks what its symbol's ``expiration_mode`` allows
(SYMBOL_EXPIRATION_GTC 1, _DAY 2, _SPECIFIED 4, _SPECIFIED_DAY 8; MQL5 docs,
ENUM_ORDER_TYPE_TIME and SYMBOL_EXPIRATION_MODE):

1. master GTC -> GTC;
2. ORDER_TIME_SPECIFIED at that second, when allowed (any master time type: DAY and
   SPECIFIED_DAY end at the master's server midnight, which is some other hour at a
   broker in another time zone);
3. else ORDER_TIME_DAY, when the instant is the end of the follower's current server day;
4. else ORDER_TIME_SPECIFIED_DAY, when the instant is the end of a follower server day;
5. else the copy is refused (Skip): the follower cannot expire the order when the master's
   does, and a copy that outlives the master's is what this rule prevents.

An instant already passed is refused too (the master's order is about to expire).
"""
from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timezone

from copier.decisions import Skip
from copier.models import PendingOrder, SymbolSpec

DAY_MS = 86_400_000
TIME_CODES = {"GTC": 0, "DAY": 1, "SPECIFIED": 2, "SPECIFIED_DAY": 3}  # MT5 ORDER_TIME_*
MODE_BITS = {"GTC": 1, "DAY": 2, "SPECIFIED": 4, "SPECIFIED_DAY": 8}  # SYMBOL_EXPIRATION_*


@dataclass(frozen=True, slots=True)
class Expiry:
    """What a copy's request carries: ``type_time`` (ORDER_TIME_* name) and ``expiration``
    (follower server seconds, the request field; 0 unless SPECIFIED/SPECIFIED_DAY), plus
    ``instant_ms``: when it expires, in follower server ms (0 = never)."""

    type_time: str = "GTC"
    expiration: int = 0
    instant_ms: int = 0

    @property
    def code(self) -> int:
        return TIME_CODES[self.type_time]


GTC = Expiry()


def _server_iso(ms: int) -> str:
    return datetime.fromtimestamp(ms / 1000, tz=timezone.utc).strftime("%Y-%m-%d %H:%M:%S")


def copy_expiry(order: PendingOrder, spec: SymbolSpec, slave_offset_ms: int | None, now_ms: int = 0) -> Expiry | Skip | None:
    """The copy's expiry for master ``order`` on the follower symbol ``spec``.

    ``order.expiration_ms``: UTC ms; ``slave_offset_ms``: follower server clock minus UTC,
    ms (None = not known yet -> None, wait); ``now_ms``: UTC ms (0 = do not check the past).
    Example: master UTC+2 SPECIFIED 2025-01-06 18:00 server = 16:00 UTC; follower UTC+3 ->
    SPECIFIED 2025-01-06 19:00 follower server time.
    """
    if order.type_time == "GTC" or order.expiration_ms <= 0:
        return GTC
    if now_ms and order.expiration_ms <= now_ms:
        return Skip(f"master order expires at {_server_iso(order.expiration_ms)} UTC, already passed")
    if slave_offset_ms is None:
        return None
    instant = order.expiration_ms + slave_offset_ms
    mode = spec.expiration_mode
    if mode & MODE_BITS["SPECIFIED"]:
        return Expiry("SPECIFIED", instant // 1000, instant // 1000 * 1000)
    day_end = instant % DAY_MS == 0
    if day_end and mode & MODE_BITS["DAY"] and now_ms and instant == ((now_ms + slave_offset_ms) // DAY_MS + 1) * DAY_MS:
        return Expiry("DAY", 0, instant)
    if day_end and mode & MODE_BITS["SPECIFIED_DAY"]:
        return Expiry("SPECIFIED_DAY", instant // 1000 - 1, instant)  # 23:59:59 of that day
    return Skip(f"{spec.name} cannot expire at {_server_iso(instant)} (follower server time) like the master's "
                f"{order.type_time} order: expiration_mode {mode} allows "
                f"{', '.join(n for n, b in MODE_BITS.items() if mode & b) or 'nothing'}")


def same_expiry(want: Expiry, have: PendingOrder) -> bool:
    """Does the follower's order ``have`` (its own record, server time) expire as ``want``?"""
    if want.type_time == "GTC":
        return have.type_time == "GTC"
    return have.type_time == want.type_time and abs(have.expiration_ms - want.instant_ms) < 1000
