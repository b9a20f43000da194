"""``open_terminal(account)``: the MetaTrader5 module surface for one account.

Callers only ever use that surface (``initialize``, ``positions_get``, ``order_send``,
constants …), whatever sits behind it: the real Windows package, the ``mt5linux`` bridge
for terminals under Wine, or the copyhub simulator.  Every object ``open_terminal`` returns
is guarded (``terminals.guard``): no call raises; a failure is ``None``/``False`` plus
``last_error()``, like a real terminal.  See docs/terminals.md.
"""
from terminals.factory import TerminalError, open_terminal, terminal_spec
from terminals.guard import GuardedTerminal, error_for, guard

__all__ = ["GuardedTerminal", "TerminalError", "error_for", "guard", "open_terminal", "terminal_spec"]
