"""A guard that makes any terminal adapter fail the way a MetaTrader5 terminal fails.

The real package never raises for a terminal problem: a call returns its failure value
(``None``; ``False`` for the boolean calls) and ``last_error()`` says why.  Node code is
written for that (a ``None`` is a terminal error it handles with a reconnect), while an
exception kills the node.  Bridges are less polite: the mt5linux (rpyc) client raises
``ConnectionRefusedError``, ``EOFError``, ``TimeoutError`` ...  ``guard(adapter)`` returns a
thin object with the same surface where every such exception becomes the MT5 failure::

    mt5 = guard(adapter)
    mt5.positions_get()   # -> None instead of EOFError
    mt5.last_error()      # -> (-10004, 'No IPC connection (connection lost: EOFError ...)')

Mapping (first match wins; see docs/terminals.md):

=============================================================  =======
exception                                                      code
=============================================================  =======
``TimeoutError`` (socket timeout, rpyc "result expired"),       -10005 ``IPC timeout``
``zmq.Again``
``ConnectionRefusedError``                                      -10004 ``No IPC connection``
``EOFError``, ``ConnectionError``, any ``OSError``, zmq/rpyc     -10004 ``No IPC connection``
errors
``TypeError``, ``ValueError`` (bad arguments)                   -2     ``Terminal: Invalid params``
anything else (``Exception``)                                  -10000 ``IPC internal failure``
=============================================================  =======

``KeyboardInterrupt``/``SystemExit`` still propagate.  Constants, record types and every
other attribute pass through untouched.  Messages name the exception type and the first
line of its text (truncated), never the call's arguments (requests carry no secrets, but
``initialize``/``login`` carry the password).
"""
from __future__ import annotations

import logging
from typing import Any

from sim.client import MT5_FUNCTIONS

RES_S_OK = (1, "Success")
RES_E_INVALID_PARAMS = -2
RES_E_INTERNAL_FAIL = -10000
RES_E_INTERNAL_FAIL_CONNECT = -10004
RES_E_INTERNAL_FAIL_TIMEOUT = -10005

#: the 32 MetaTrader5 functions and what the package returns when its terminal is gone
#: (reference section 2: False for the boolean calls, 0 for symbols_total, else None);
#: one table, shared with the simulator's client
FAILURE_VALUES: dict[str, Any] = MT5_FUNCTIONS

log = logging.getLogger("copyhub.terminals")

_TIMEOUT_NAMES = frozenset(("Again", "AsyncResultTimeout", "Timeout", "ReadTimeout"))


def _cause(exc: BaseException) -> str:
    """``TypeName: first line of the message`` (short; remote tracebacks cut off)."""
    text = str(exc).strip().splitlines()[0] if str(exc).strip() else ""
    if len(text) > 160:
        text = text[:157] + "..."
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__


def error_for(exc: BaseException) -> tuple[int, str]:
    """The MT5 ``last_error()`` tuple that stands for ``exc``."""
    cause = _cause(exc)
    cls = type(exc)
    module = getattr(cls, "__module__", "") or ""
    if isinstance(exc, TimeoutError) or cls.__name__ in _TIMEOUT_NAMES:
        return (RES_E_INTERNAL_FAIL_TIMEOUT, f"IPC timeout ({cause})")
    if isinstance(exc, ConnectionRefusedError):
        return (RES_E_INTERNAL_FAIL_CONNECT, f"No IPC connection (connection refused: {cause})")
    if isinstance(exc, (EOFError, OSError)) or module.startswith(("zmq", "rpyc")):
        return (RES_E_INTERNAL_FAIL_CONNECT, f"No IPC connection (connection lost: {cause})")
    if isinstance(exc, (TypeError, ValueError)):
        return (RES_E_INVALID_PARAMS, f"Terminal: Invalid params ({cause})")
    return (RES_E_INTERNAL_FAIL, f"IPC internal failure ({cause})")


class GuardedTerminal:
    """The MetaTrader5 surface of ``inner`` where no call raises (see module doc)."""

    __slots__ = ("_inner", "_error", "_label", "__dict__")

    def __init__(self, inner: Any, label: str = "") -> None:
        object.__setattr__(self, "_inner", inner)
        object.__setattr__(self, "_error", None)
        object.__setattr__(self, "_label", label)

    @property
    def inner(self) -> Any:
        """The adapter behind the guard (tests, diagnostics)."""
        return self._inner

    def __getattr__(self, name: str) -> Any:
        # Only reached for names not defined here: constants, record types, extras.
        value = getattr(self._inner, name)
        if name.isupper():  # constants never change: later reads cost a dict lookup
            self.__dict__[name] = value
        return value

    def __setattr__(self, name: str, value: Any) -> None:
        setattr(self._inner, name, value)  # e.g. ``mt5.timeout_ms = 5000`` on the sim client

    def __dir__(self) -> list[str]:
        return sorted(set(dir(self._inner)) | set(FAILURE_VALUES))

    def __repr__(self) -> str:
        return f"<guarded {self._inner!r}>"

    def last_error(self) -> tuple[int, str]:
        """The error the guard made of the last call's exception, else the adapter's own."""
        error = self._error
        if error is not None:
            return error
        try:
            return self._inner.last_error()
        except Exception as exc:  # noqa: BLE001 - the whole point
            return self._fail("last_error", exc)

    def _fail(self, fn: str, exc: Exception) -> tuple[int, str]:
        error = error_for(exc)
        if self._error is None:  # log the transition, not every failed poll
            log.info("terminal call %s failed on %s: (%d, %s)", fn, self._label or "terminal",
                        error[0], error[1])
        object.__setattr__(self, "_error", error)
        return error


def _make(name: str, fail: Any):
    def call(self: GuardedTerminal, *args: Any, **kwargs: Any) -> Any:
        try:
            result = getattr(self._inner, name)(*args, **kwargs)
        except Exception as exc:  # noqa: BLE001 - every exception is a terminal failure
            self._fail(name, exc)
            return fail
        if self._error is not None:
            object.__setattr__(self, "_error", None)
        return result

    call.__name__ = call.__qualname__ = name
    call.__doc__ = f"MetaTrader5.{name}; an exception becomes {fail!r} and last_error()."
    return call


for _name, _fail in FAILURE_VALUES.items():
    if _name != "last_error":
        setattr(GuardedTerminal, _name, _make(_name, _fail))
del _name, _fail


def guard(inner: Any, label: str = "") -> GuardedTerminal:
    """Wrap ``inner`` (idempotent: a guarded object is returned as is)."""
    if isinstance(inner, GuardedTerminal):
        return inner
    return GuardedTerminal(inner, label)
