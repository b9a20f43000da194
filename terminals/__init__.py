"""``open_terminal(account)``: the MetaTrader5 module surface for one account.

Callers only ever use that surface (``initialize``, ``positions_get``, ``order_send``,
constants …), whatever sits behind it: the real Windows package, the ``mt5linux`` bridge
for terminals under Wine, or the copyhub simulator.
"""
from terminals.factory import TerminalError, open_terminal, terminal_spec

__all__ = ["TerminalError", "open_terminal", "terminal_spec"]
