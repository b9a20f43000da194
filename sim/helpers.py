"""The trading helpers the MetaTrader5 package ships in its ``__init__`` (undocumented).

``Buy``, ``Sell``, ``Close`` and ``_RawOrder`` as the reference (§2) describes them, written
against any object with the package's surface (``self`` is the terminal: the in-process
``sim.terminal.Terminal``, the ZeroMQ ``SimMT5Client`` or the ``MetaTrader5`` stand-in), so
public code that calls ``mt5.Buy("EURUSD", 0.1)`` runs on the simulator:

* ``_RawOrder(order_type, symbol, volume, price, comment=None, ticket=None)``: one market
  ``TRADE_ACTION_DEAL`` with ``deviation`` 10 and **no** ``type_filling`` (so FOK, 0 -- on an
  IOC-only symbol the server answers 10030, as on a real account); ``ticket`` becomes the
  request's ``position``. Returns ``order_send``'s answer.
* ``Buy(symbol, volume, price=None, *, comment=None, ticket=None)`` / ``Sell(...)``: with a
  price, one ``_RawOrder``; without, up to 10 tries at the fresh ask (bid), retrying only on
  REQUOTE (10004) and PRICE_OFF (10021). Returns the last ``OrderSendResult`` (None when a
  send returned None).
* ``Close(symbol, *, comment=None, ticket=None)``: closes the symbol's positions (or only
  ``ticket``) with opposite ``_RawOrder`` deals, each retried like ``Buy``. ``True`` when every
  one closed, ``"Partially"`` when some did, ``False`` when none did (also when there was
  nothing to close), ``None`` when a quote or a send returned None.

Difference from the package's code: where it would iterate over ``positions_get()``'s
``None`` (a lost terminal) and raise ``TypeError``, ``Close`` returns ``None`` (the
terminal's error stays in ``last_error()``).
"""
from __future__ import annotations

from typing import Any

ORDER_TYPE_BUY, ORDER_TYPE_SELL = 0, 1
TRADE_ACTION_DEAL = 1
TRADE_RETCODE_DONE = 10009
RETRY_RETCODES = (10004, 10021)  # REQUOTE, PRICE_OFF: try again at a fresh price
TRIES = 10


class PackageHelpers:
    """Mixin: the package's ``Buy``/``Sell``/``Close``/``_RawOrder`` on a terminal object
    that has ``order_send``, ``symbol_info_tick`` and ``positions_get``."""

    def _RawOrder(self, order_type: int, symbol: str, volume: float, price: float,
                  comment: str | None = None, ticket: int | None = None) -> Any:
        """One market deal (deviation 10 points, filling FOK by omission); see module doc."""
        request = {"action": TRADE_ACTION_DEAL, "symbol": symbol, "volume": volume,
                   "type": order_type, "price": price, "deviation": 10}
        if comment is not None:
            request["comment"] = comment
        if ticket is not None:
            request["position"] = ticket
        return self.order_send(request)

    def _market(self, order_type: int, symbol: str, volume: float, price: float | None,
                comment: str | None, ticket: int | None) -> Any:
        if price is not None:
            return self._RawOrder(order_type, symbol, volume, price, comment, ticket)
        result = None
        for _ in range(TRIES):
            tick = self.symbol_info_tick(symbol)
            if tick is None:
                return None
            quote = tick.ask if order_type == ORDER_TYPE_BUY else tick.bid
            result = self._RawOrder(order_type, symbol, volume, quote, comment, ticket)
            if result is None or result.retcode not in RETRY_RETCODES:
                break
        return result

    def Buy(self, symbol: str, volume: float, price: float | None = None, *,
            comment: str | None = None, ticket: int | None = None) -> Any:
        """Market buy of ``volume`` lots at ``price`` (None: the current ask, retried on
        requote / price off up to 10 times). Returns the OrderSendResult or None."""
        return self._market(ORDER_TYPE_BUY, symbol, volume, price, comment, ticket)

    def Sell(self, symbol: str, volume: float, price: float | None = None, *,
             comment: str | None = None, ticket: int | None = None) -> Any:
        """Market sell of ``volume`` lots at ``price`` (None: the current bid, retried like
        ``Buy``). Returns the OrderSendResult or None."""
        return self._market(ORDER_TYPE_SELL, symbol, volume, price, comment, ticket)

    def Close(self, symbol: str, *, comment: str | None = None, ticket: int | None = None) -> Any:
        """Close ``symbol``'s positions (or the one with ``ticket``) at market: True (all
        closed), "Partially", False (none closed) or None (a quote or a send failed)."""
        positions = (self.positions_get(ticket=ticket) if ticket is not None
                     else self.positions_get(symbol=symbol))
        if positions is None:
            return None
        tried = done = 0
        for pos in positions:
            if pos.type not in (ORDER_TYPE_BUY, ORDER_TYPE_SELL):
                continue
            tried += 1
            opposite = ORDER_TYPE_SELL if pos.type == ORDER_TYPE_BUY else ORDER_TYPE_BUY
            result = self._market(opposite, symbol, pos.volume, None, comment, pos.ticket)
            if result is None:
                return None
            if result.retcode == TRADE_RETCODE_DONE:
                done += 1
        if done == 0:
            return False
        return True if done == tried else "Partially"
