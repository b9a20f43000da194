"""The node's side of "the right account": read the terminal's login, compare, pin.

A document with ``terminal.login`` is checked against it (and ``terminal.server`` when
given). A document without a login (the seed's bare ``path``) pins the first login the
terminal reports in the store flag ``login_pin:<name>``; any later change is a mismatch
until an operator accepts it (``cli.py accounts pin NAME``).
"""
from __future__ import annotations

from typing import Any

from copier.identity import Expected, account_mismatch
from db import now_ms

PIN_PREFIX = "login_pin:"


class WrongAccount(RuntimeError):
    """The terminal is logged into another account than the node was configured for."""

    def __init__(self, reason: str, login: int | None = None, server: str | None = None) -> None:
        super().__init__(reason)
        self.login, self.server = login, server


def pin_key(name: str) -> str:
    return PIN_PREFIX + name


def expected_account(store: Any, name: str, terminal: dict[str, Any]) -> Expected | None:
    """From the document, else from the pin; None when nothing is pinned yet. May raise StoreUnavailable."""
    if terminal.get("login") is not None:
        return Expected(int(terminal["login"]), terminal.get("server") or None, "document")
    pin = store.get_flag(pin_key(name))
    if isinstance(pin, dict) and pin.get("login") is not None:
        return Expected(int(pin["login"]), pin.get("server") or None, "pin")
    return None


def check_account(store: Any, name: str, terminal: dict[str, Any], info: Any) -> str | None:
    """Compare ``info`` (an ``account_info()`` record) with what ``name`` should trade.

    Returns None when it matches (pinning the login first if nothing was pinned), else
    raises WrongAccount with the reason. May raise StoreUnavailable (reading the pin).
    """
    login, server = int(info.login), str(getattr(info, "server", "") or "")
    expected = expected_account(store, name, terminal)
    if expected is None:
        store.set_flag(pin_key(name), {"login": login, "server": server, "since_ms": now_ms(), "by": "first login seen"})
        return f"pinned login {login} on {server!r}"
    reason = account_mismatch(name, expected, login, server)
    if reason:
        raise WrongAccount(reason, login, server)
    return None
