"""Every MT5 trade-server return code, with its class for a copier (invariant 8).

Source of the codes, names and meanings: MQL5 Reference, "Trade Server Return Codes"
(https://www.mql5.com/en/docs/constants/errorswarnings/enum_trade_return_codes), and for
the package's client-side ``last_error()`` codes the MetaTrader5 Python documentation
(https://www.mql5.com/en/docs/python_metatrader5/mt5lasterror_py); the classes are
copyhub's reading of them (../shared/reference/mt5-python-api.md §5 has the same table).

Classes:

* ``done``       the request reached its goal (10008/10009/10010; 10025 "no changes" for a
  modification; 10036 "position closed" for a close).
* ``transient``  the world, not the request, is wrong right now: market closed, no quotes,
  requote, price changed, timeout, too many requests, no connection, trading or
  AutoTrading disabled, close-only. Never final: the copy is planned again (with backoff)
  while the master still asks for it, and SKIPPED only when the slippage guard or the
  master says so.
* ``constraint`` the request broke a broker rule the planner plans around (stops/freeze
  level, volume step, filling mode, FIFO, hedging prohibited, limits). It is final for
  *that request*; the caller re-plans with the rule applied where it can (10016: open
  without stops, then set the nearest valid ones), else records the copy FAILED.
* ``permanent``  retrying cannot help (rejected, invalid request, no money, real only…):
  the copy is recorded FAILED with the reason.

Within the transient class two flags drive the node's Executor:
``retry_now`` = retry inside the same action with a fresh price (bounded by ``RetryPolicy``);
``unknown``   = the order may have executed: look for the tag before sending again.

| code  | name                     | class      | flags     |
|-------|--------------------------|------------|-----------|
| 10004 | REQUOTE                  | transient  | retry_now |
| 10006 | REJECT                   | permanent  |           |
| 10007 | CANCEL                   | permanent  |           |
| 10008 | PLACED                   | done       |           |
| 10009 | DONE                     | done       |           |
| 10010 | DONE_PARTIAL             | done       |           |
| 10011 | ERROR                    | transient  | unknown   |
| 10012 | TIMEOUT                  | transient  | unknown   |
| 10013 | INVALID                  | permanent  |           |
| 10014 | INVALID_VOLUME           | constraint |           |
| 10015 | INVALID_PRICE            | transient  | retry_now |
| 10016 | INVALID_STOPS            | constraint |           |
| 10017 | TRADE_DISABLED           | transient  |           |
| 10018 | MARKET_CLOSED            | transient  |           |
| 10019 | NO_MONEY                 | permanent  |           |
| 10020 | PRICE_CHANGED            | transient  | retry_now |
| 10021 | PRICE_OFF                | transient  | retry_now |
| 10022 | INVALID_EXPIRATION       | constraint |           |
| 10023 | ORDER_CHANGED            | transient  | retry_now |
| 10024 | TOO_MANY_REQUESTS        | transient  | retry_now |
| 10025 | NO_CHANGES               | done       |           |
| 10026 | SERVER_DISABLES_AT       | transient  |           |
| 10027 | CLIENT_DISABLES_AT       | transient  |           |
| 10028 | LOCKED                   | transient  | retry_now |
| 10029 | FROZEN                   | transient  | retry_now |
| 10030 | INVALID_FILL             | constraint |           |
| 10031 | CONNECTION               | transient  | unknown   |
| 10032 | ONLY_REAL                | permanent  |           |
| 10033 | LIMIT_ORDERS             | constraint |           |
| 10034 | LIMIT_VOLUME             | constraint |           |
| 10035 | INVALID_ORDER            | constraint |           |
| 10036 | POSITION_CLOSED          | permanent (done when closing) | |
| 10038 | INVALID_CLOSE_VOLUME     | constraint |           |
| 10039 | CLOSE_ORDER_EXIST        | transient  |           |
| 10040 | LIMIT_POSITIONS          | constraint |           |
| 10041 | REJECT_CANCEL            | permanent  |           |
| 10042 | LONG_ONLY                | constraint |           |
| 10043 | SHORT_ONLY               | constraint |           |
| 10044 | CLOSE_ONLY               | transient  |           |
| 10045 | FIFO_CLOSE               | constraint |           |
| 10046 | HEDGE_PROHIBITED         | constraint |           |

Client side (``order_send`` returned ``None``; the code is ``last_error()[0]``): -2
RES_E_INVALID_PARAMS (malformed request) is permanent; -8 RES_E_AUTO_TRADING_DISABLED is
transient; every other failure (IPC -10001..-10005, -1) is transient + unknown: the request
may have reached the server. An unlisted positive code is permanent (the safe reading: a
code we do not know is not retried blindly).
"""
from __future__ import annotations

from dataclasses import dataclass

DONE = "done"
TRANSIENT = "transient"
CONSTRAINT = "constraint"
PERMANENT = "permanent"
CLASSES = (DONE, TRANSIENT, CONSTRAINT, PERMANENT)

SOURCE = "https://www.mql5.com/en/docs/constants/errorswarnings/enum_trade_return_codes"

TRADE_RETCODE_INVALID_STOPS = 10016
TRADE_RETCODE_MARKET_CLOSED = 10018
TRADE_RETCODE_NO_CHANGES = 10025
TRADE_RETCODE_POSITION_CLOSED = 10036
RES_E_INVALID_PARAMS = -2
RES_E_AUTO_TRADING_DISABLED = -8


@dataclass(frozen=True, slots=True)
class Retcode:
    """One row of the table: ``name`` without the ``TRADE_RETCODE_`` prefix."""

    code: int
    name: str
    cls: str
    meaning: str
    retry_now: bool = False
    unknown: bool = False


def _r(code: int, name: str, cls: str, meaning: str, flags: str = "") -> Retcode:
    return Retcode(code, name, cls, meaning, retry_now=flags == "now", unknown=flags == "unknown")


TABLE: dict[int, Retcode] = {r.code: r for r in (
    _r(10004, "REQUOTE", TRANSIENT, "requote", "now"),
    _r(10006, "REJECT", PERMANENT, "request rejected"),
    _r(10007, "CANCEL", PERMANENT, "request canceled by trader"),
    _r(10008, "PLACED", DONE, "order placed"),
    _r(10009, "DONE", DONE, "request completed"),
    _r(10010, "DONE_PARTIAL", DONE, "only part of the request was completed"),
    _r(10011, "ERROR", TRANSIENT, "request processing error", "unknown"),
    _r(10012, "TIMEOUT", TRANSIENT, "request canceled by timeout", "unknown"),
    _r(10013, "INVALID", PERMANENT, "invalid request"),
    _r(10014, "INVALID_VOLUME", CONSTRAINT, "invalid volume in the request"),
    _r(10015, "INVALID_PRICE", TRANSIENT, "invalid price in the request", "now"),
    _r(10016, "INVALID_STOPS", CONSTRAINT, "invalid stops in the request"),
    _r(10017, "TRADE_DISABLED", TRANSIENT, "trade is disabled"),
    _r(10018, "MARKET_CLOSED", TRANSIENT, "market is closed"),
    _r(10019, "NO_MONEY", PERMANENT, "there is not enough money to complete the request"),
    _r(10020, "PRICE_CHANGED", TRANSIENT, "prices changed", "now"),
    _r(10021, "PRICE_OFF", TRANSIENT, "there are no quotes to process the request", "now"),
    _r(10022, "INVALID_EXPIRATION", CONSTRAINT, "invalid order expiration date in the request"),
    _r(10023, "ORDER_CHANGED", TRANSIENT, "order state changed", "now"),
    _r(10024, "TOO_MANY_REQUESTS", TRANSIENT, "too frequent requests", "now"),
    _r(10025, "NO_CHANGES", DONE, "no changes in request"),
    _r(10026, "SERVER_DISABLES_AT", TRANSIENT, "autotrading disabled by server"),
    _r(10027, "CLIENT_DISABLES_AT", TRANSIENT, "autotrading disabled by client terminal"),
    _r(10028, "LOCKED", TRANSIENT, "request locked for processing", "now"),
    _r(10029, "FROZEN", TRANSIENT, "order or position frozen", "now"),
    _r(10030, "INVALID_FILL", CONSTRAINT, "invalid order filling type"),
    _r(10031, "CONNECTION", TRANSIENT, "no connection with the trade server", "unknown"),
    _r(10032, "ONLY_REAL", PERMANENT, "operation is allowed only for live accounts"),
    _r(10033, "LIMIT_ORDERS", CONSTRAINT, "the number of pending orders has reached the limit"),
    _r(10034, "LIMIT_VOLUME", CONSTRAINT, "the volume of orders and positions for the symbol has reached the limit"),
    _r(10035, "INVALID_ORDER", CONSTRAINT, "incorrect or prohibited order type"),
    _r(10036, "POSITION_CLOSED", PERMANENT, "position with the specified identifier has already been closed"),
    _r(10038, "INVALID_CLOSE_VOLUME", CONSTRAINT, "a close volume exceeds the current position volume"),
    _r(10039, "CLOSE_ORDER_EXIST", TRANSIENT, "a close order already exists for the position"),
    _r(10040, "LIMIT_POSITIONS", CONSTRAINT, "the number of open positions has reached the limit"),
    _r(10041, "REJECT_CANCEL", PERMANENT, "pending order activation rejected, order canceled"),
    _r(10042, "LONG_ONLY", CONSTRAINT, "only long positions are allowed for the symbol"),
    _r(10043, "SHORT_ONLY", CONSTRAINT, "only short positions are allowed for the symbol"),
    _r(10044, "CLOSE_ONLY", TRANSIENT, "only position closing is allowed for the symbol"),
    _r(10045, "FIFO_CLOSE", CONSTRAINT, "position closing is allowed only by FIFO rule"),
    _r(10046, "HEDGE_PROHIBITED", CONSTRAINT, "opposite positions on a single symbol are disabled"),
)}

# last_error() codes of the package when order_send returned None
CLIENT_TABLE: dict[int, Retcode] = {r.code: r for r in (
    _r(RES_E_INVALID_PARAMS, "RES_E_INVALID_PARAMS", PERMANENT, "malformed request (package refused it)"),
    _r(RES_E_AUTO_TRADING_DISABLED, "RES_E_AUTO_TRADING_DISABLED", TRANSIENT, "AutoTrading disabled"),
)}
_CLIENT_DEFAULT = Retcode(-1, "RES_E_*", TRANSIENT, "no reply from the terminal", unknown=True)


# 10031: the terminal itself says it has no connection, so the request did not reach the
# server. It is looked for like an unknown outcome (the safe reading of the reference's
# "R/U") but, unlike 10011/10012/no reply, it does not count as an attempt that may have
# executed.
NOT_DELIVERED = frozenset({10031})


def lookup(code: int | None) -> Retcode:
    """The table row for a retcode; ``None`` (no reply) and negative codes are client side."""
    if code is None or code <= 0:
        return CLIENT_TABLE.get(code if code is not None else 0, _CLIENT_DEFAULT)
    return TABLE.get(code) or Retcode(code, f"UNKNOWN_{code}", PERMANENT, "unlisted return code")


def retcode_class(code: int | None, *, closing: bool = False) -> str:
    """``done`` | ``transient`` | ``constraint`` | ``permanent`` for ``code``.

    ``closing``: 10036 (position already closed) reached the goal of a close: ``done``.
    """
    if closing and code == TRADE_RETCODE_POSITION_CLOSED:
        return DONE
    return lookup(code).cls


def is_transient(code: int | None) -> bool:
    return lookup(code).cls == TRANSIENT


def describe(code: int | None) -> str:
    """``'10018 MARKET_CLOSED (market is closed; transient)'`` for logs and link reasons."""
    r = lookup(code)
    shown = code if code is not None else "no reply"
    return f"{shown} {r.name} ({r.meaning}; {r.cls})"


def counts_as_attempt(code: int | None) -> bool:
    """Does a failed send with ``code`` count against ``max_attempts``?

    Only when the order may have executed (outcome unknown: 10011, 10012, no reply): those
    are bounded so an order whose fate stays unknown is not sent for ever. A transient
    reject the server (or the terminal, 10031) answered is not an attempt: the copy is
    planned again while the master holds the position, however long the market is closed.
    """
    row = lookup(code)
    return row.unknown and code not in NOT_DELIVERED


def reject_disposition(code: int | None) -> str:
    """What a rejected open/placement of a new copy does to its link.

    ``"defer"``: transient -> the link stays PENDING with the reason, is planned again after
    a backoff while the master still holds the position, and is SKIPPED only by the
    slippage guard or the master. ``"fail"``: constraint or permanent -> FAILED with the
    reason (a constraint with a fallback, 10016, was already retried by the Executor).
    """
    return "defer" if lookup(code).cls == TRANSIENT else "fail"
