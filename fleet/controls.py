"""Operator controls shared by ``cli.py`` and the monitor's dashboard/API.

Each function does the whole control: it checks the account, persists the flag (seen by
a node that is not running when it starts), publishes on the ``ctl`` topic (seen at once
by running nodes) and writes the audit event ``operator_command`` with its ``origin``
("cli", "dashboard", "api"). The caller only renders the result. Confirmation prompts
stay with the caller (a terminal asks on stdin, the page in a dialog); these functions
assume the operator has confirmed.

``publish(target, command, **args) -> bool`` sends one ``ctl`` message and says whether
the bus was reachable; the CLI opens a fresh socket per command, the monitor keeps one.
"""
from __future__ import annotations

import getpass
import socket
from collections.abc import Callable
from typing import Any

from db import now_ms
from fleet.operator import FLATTEN_PREFIX, KILL_SWITCH, PAUSED_PREFIX

Publish = Callable[..., bool]


class ControlError(Exception):
    """The control cannot be applied (unknown account, not a slave): one line for the user."""


def audit(store: Any, command: str, account: str | None = None, *, origin: str, **data: Any) -> None:
    """Who did what, from where: every operator command lands in the events collection
    (kind ``operator_command``, node = ``origin``)."""
    try:
        user = getpass.getuser()
    except Exception:  # no user name in some service contexts
        user = "?"
    store.add_event("operator_command", node=origin, account=account, level="info", command=command,
                    origin=origin, user=data.pop("user", None) or user, host=socket.gethostname(), **data)


def require_account(store: Any, name: str) -> dict[str, Any]:
    """The account document, or ControlError naming the known accounts."""
    doc = store.get_account(name)
    if doc is None:
        known = ", ".join(d["name"] for d in store.list_accounts()) or "none"
        raise ControlError(f"no account named {name!r} (known: {known})")
    return doc


def pause(store: Any, name: str, *, publish: Publish, origin: str, **audit_data: Any) -> dict[str, Any]:
    """No new opens on ``name`` (open copies are still managed)."""
    require_account(store, name)
    store.set_flag(PAUSED_PREFIX + name, True)
    sent = publish(name, "pause")
    audit(store, "pause", name, origin=origin, published=sent, **audit_data)
    return {"account": name, "paused": True, "published": sent}


def resume(store: Any, name: str, *, publish: Publish, origin: str, **audit_data: Any) -> dict[str, Any]:
    """New opens allowed again on ``name`` (the fleet kill switch still wins)."""
    require_account(store, name)
    store.delete_flag(PAUSED_PREFIX + name)
    sent = publish(name, "resume")
    audit(store, "resume", name, origin=origin, published=sent, **audit_data)
    return {"account": name, "paused": False, "published": sent, "kill_switch": bool(store.get_flag(KILL_SWITCH))}


def check_flatten(store: Any, name: str) -> dict[str, Any]:
    """The account document if ``name`` may be flattened (a SLAVE), else ControlError."""
    doc = require_account(store, name)
    if str(doc.get("type", "")).upper() != "SLAVE":
        raise ControlError(f"{name} is not a SLAVE account: flatten closes copied positions on slaves only")
    return doc


def flatten(store: Any, name: str, *, publish: Publish, origin: str, **audit_data: Any) -> dict[str, Any]:
    """Pause ``name`` and close every copied position on it (the node clears the flag when done)."""
    check_flatten(store, name)
    store.set_flag(PAUSED_PREFIX + name, True)  # else the next reconcile would copy again
    store.set_flag(FLATTEN_PREFIX + name, now_ms())
    sent = publish(name, "pause")
    sent = publish(name, "flatten") and sent
    audit(store, "flatten", name, origin=origin, published=sent, **audit_data)
    return {"account": name, "flatten": True, "paused": True, "published": sent}


def kill_switch(store: Any, on: bool, *, publish: Publish, origin: str, **audit_data: Any) -> dict[str, Any]:
    """Fleet-wide: ``on`` stops every new open, off lets accounts not paused one by one copy again."""
    if on:
        store.set_flag(KILL_SWITCH, True)
    else:
        store.delete_flag(KILL_SWITCH)
    sent = publish("all", "pause" if on else "resume", reason="kill_switch")
    audit(store, f"kill-switch {'on' if on else 'off'}", None, origin=origin, published=sent, **audit_data)
    return {"kill_switch": on, "published": sent}


def release(store: Any, name: str, *, origin: str, **audit_data: Any) -> dict[str, Any]:
    """Ask ``name``'s guardian to release its risk lock (applied at its next evaluation)."""
    from monitoring.reports import request_release

    require_account(store, name)
    doc = request_release(store, name, by=origin)
    audit(store, "release", name, origin=origin, **audit_data)
    return {"account": name, "release_requested": True, **doc}
