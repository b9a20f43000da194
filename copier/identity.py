"""Which MT5 account a terminal is trading, compared with the account document.

Invariant 6: a node sends orders only to the account it was configured for. The
terminal says which account it is logged into (``account_info().login`` and
``.server``); the document says which one it should be (``terminal.login`` and
``terminal.server``, or, for a seed-style document with only a ``path``, the login
first seen and pinned by the operator's store). Pure rules, no I/O.
"""
from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Expected:
    """What the account document (or its pin) says; ``None`` fields are not checked."""

    login: int | None
    server: str | None = None
    source: str = "document"  # "document" | "pin"


def same_server(a: str, b: str) -> bool:
    """MT5 server names compare without case and surrounding blanks ("FTMO-Demo" == "ftmo-demo ")."""
    return a.strip().casefold() == b.strip().casefold()


def account_mismatch(name: str, expected: Expected, login: int, server: str) -> str | None:
    """The reason the terminal's account (``login``, ``server``) is not ``expected``, or None.

    The message names the account document, what was expected and what the terminal
    is logged into, so an operator knows which of the two to fix.
    """
    wrong = []
    if expected.login is not None and int(login) != int(expected.login):
        wrong.append(f"login {login} (expected {expected.login})")
    if expected.server and server is not None and not same_server(str(server), expected.server):
        wrong.append(f"server {server!r} (expected {expected.server!r})")
    if not wrong:
        return None
    where = "the pinned login" if expected.source == "pin" else "the account document"
    return (f"account {name!r}: the terminal is logged into {' and '.join(wrong)} per {where}; "
            "no order is sent until it is logged into the right account"
            + (" or an operator accepts the new login (python cli.py accounts pin NAME)" if expected.source == "pin" else ""))
