"""Order-request details that do not depend on the planner: filling mode, retcodes, retries.

Filling (choice, following the seed's IOC): for Market/Exchange execution symbols use IOC
when the bitmask allows it (bit 2), else FOK (bit 1), else RETURN. Instant/Request execution
symbols accept FOK only (metatrader5.com fill-policy table), so they always get FOK.
Note the classic bug this avoids: bit values (FOK=1, IOC=2) are not the enum values
(ORDER_FILLING_FOK=0, ORDER_FILLING_IOC=1).

Retcodes: the one table is ``copier/retcodes.py`` (done / transient / constraint /
permanent, with its source). ``classify_retcode`` is the Executor's reading of it:
  done    class done (10008, 10009, 10010)
  noop    10025 NO_CHANGES; 10036 POSITION_CLOSED when closing (the goal is reached)
  retry   transient with retry_now (requote, price changed, no quotes, ...): retry within
          the action with a fresh price
  unknown transient with unknown outcome (10011, 10012, 10031, no reply): look for the tag
          before sending again
  later   other transient codes (10018 market closed, 10017, 10026, 10027, 10044, ...):
          not retried within the action; the copy is planned again later, with backoff
  final   constraint and permanent codes: final for this request
"""
from __future__ import annotations

from dataclasses import dataclass

from copier import retcodes as R

ORDER_FILLING_FOK = 0
ORDER_FILLING_IOC = 1
ORDER_FILLING_RETURN = 2
FILLING_BIT_FOK = 1
FILLING_BIT_IOC = 2
EXEMODE_REQUEST = 0
EXEMODE_INSTANT = 1
EXEMODE_MARKET = 2
EXEMODE_EXCHANGE = 3

POSITION_CLOSED = R.TRADE_RETCODE_POSITION_CLOSED
MARKET_CLOSED = R.TRADE_RETCODE_MARKET_CLOSED
NOOP_CODES = frozenset({R.TRADE_RETCODE_NO_CHANGES})
DONE_CODES = frozenset(c for c, r in R.TABLE.items() if r.cls == R.DONE) - NOOP_CODES
RETRY_CODES = frozenset(c for c, r in R.TABLE.items() if r.retry_now)
UNKNOWN_CODES = frozenset(c for c, r in R.TABLE.items() if r.unknown)
LATER_CODES = frozenset(c for c, r in R.TABLE.items() if r.cls == R.TRANSIENT and not (r.retry_now or r.unknown))


def choose_filling(filling_mode_bitmask: int, exemode: int = EXEMODE_MARKET) -> int:
    if exemode in (EXEMODE_INSTANT, EXEMODE_REQUEST):
        return ORDER_FILLING_FOK
    if filling_mode_bitmask & FILLING_BIT_IOC:
        return ORDER_FILLING_IOC
    if filling_mode_bitmask & FILLING_BIT_FOK:
        return ORDER_FILLING_FOK
    return ORDER_FILLING_RETURN


def classify_retcode(code: int | None, *, closing: bool = False) -> str:
    """One of "done", "noop", "retry", "unknown", "later", "final" (see the module docstring)."""
    if code in NOOP_CODES or (closing and code == POSITION_CLOSED):
        return "noop"
    row = R.lookup(code)
    if row.cls == R.DONE:
        return "done"
    if row.cls == R.TRANSIENT:
        return "retry" if row.retry_now else "unknown" if row.unknown else "later"
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
