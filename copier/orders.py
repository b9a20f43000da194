"""Order-request details that do not depend on the planner: filling mode, retcodes, retries.

Filling (choice, following the seed's IOC): for Market/Exchange execution symbols use IOC
when the bitmask allows it (bit 2), else FOK (bit 1), else RETURN. Instant/Request execution
symbols accept FOK only (metatrader5.com fill-policy table), so they always get FOK.
Note the classic bug this avoids: bit values (FOK=1, IOC=2) are not the enum values
(ORDER_FILLING_FOK=0, ORDER_FILLING_IOC=1).

Retcode classes (reference §5):
  done    10008 PLACED, 10009 DONE, 10010 DONE_PARTIAL
  retry   10004 REQUOTE, 10020 PRICE_CHANGED, 10021 PRICE_OFF, 10023 ORDER_CHANGED,
          10024 TOO_MANY_REQUESTS, 10028 LOCKED, 10029 FROZEN
  unknown 10011 ERROR, 10012 TIMEOUT, 10031 CONNECTION, and ``None`` (order_send returned
          None): the order may have executed -> look for the tag before sending again.
          (10031 is "R/U" in the reference; we take the safe reading.)
  noop    10025 NO_CHANGES; 10036 POSITION_CLOSED when closing (the close is done)
  final   everything else, including 10018 MARKET_CLOSED: final for this attempt, the
          next reconcile plans again.
"""
from __future__ import annotations

from dataclasses import dataclass

ORDER_FILLING_FOK = 0
ORDER_FILLING_IOC = 1
ORDER_FILLING_RETURN = 2
FILLING_BIT_FOK = 1
FILLING_BIT_IOC = 2
EXEMODE_REQUEST = 0
EXEMODE_INSTANT = 1
EXEMODE_MARKET = 2
EXEMODE_EXCHANGE = 3

DONE_CODES = frozenset({10008, 10009, 10010})
RETRY_CODES = frozenset({10004, 10020, 10021, 10023, 10024, 10028, 10029})
UNKNOWN_CODES = frozenset({10011, 10012, 10031})
NOOP_CODES = frozenset({10025})
POSITION_CLOSED = 10036
MARKET_CLOSED = 10018


def choose_filling(filling_mode_bitmask: int, exemode: int = EXEMODE_MARKET) -> int:
    if exemode in (EXEMODE_INSTANT, EXEMODE_REQUEST):
        return ORDER_FILLING_FOK
    if filling_mode_bitmask & FILLING_BIT_IOC:
        return ORDER_FILLING_IOC
    if filling_mode_bitmask & FILLING_BIT_FOK:
        return ORDER_FILLING_FOK
    return ORDER_FILLING_RETURN


def classify_retcode(code: int | None, *, closing: bool = False) -> str:
    """One of "done", "retry", "unknown", "noop", "final"."""
    if code is None:
        return "unknown"
    if code in DONE_CODES:
        return "done"
    if code in RETRY_CODES:
        return "retry"
    if code in UNKNOWN_CODES:
        return "unknown"
    if code in NOOP_CODES or (closing and code == POSITION_CLOSED):
        return "noop"
    return "final"


@dataclass(frozen=True, slots=True)
class RetryPolicy:
    """Bounded exponential backoff for "retry" retcodes within one action."""

    max_attempts: int = 3
    base: float = 0.2
    cap: float = 5.0
    factor: float = 2.0

    def __post_init__(self) -> None:
        if self.max_attempts < 1 or self.base < 0 or self.cap < 0 or self.factor < 1:
            raise ValueError("RetryPolicy needs max_attempts >= 1, base/cap >= 0, factor >= 1")

    def delays(self) -> list[float]:
        """Seconds to wait before attempt 2, 3, ... (max_attempts - 1 values)."""
        return [min(self.cap, self.base * self.factor**i) for i in range(self.max_attempts - 1)]
