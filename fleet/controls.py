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


RELOCK_NOTE = "if the rule is still breached, the guardian flattens and locks it again at once"


def lock_state(store: Any, name: str, *, now: int | None = None) -> dict[str, Any]:
    """What the store says of ``name``'s risk lock (read only, no terminal):

    ``locked``: True / False, or None when no guardian has said anything about this
    account yet. Read from, in order: the lock the guardian mirrors in ``risk_lock:<name>``
    (written or cleared at its first evaluation, cleared on release: a lock whose
    ``until`` has passed is no lock), the ``info.risk.locked`` of its node's last
    heartbeat, the lock in its persisted ``risk_state:<name>``. ``lock``: the lock
    document (reason, until). ``breached``: what the node's last heartbeat shows past the
    flatten level (``daily loss at 97.2% of its limit``): after a release the guardian
    flattens and locks again at its next evaluation."""
    from copier.risk import is_locked
    from monitoring.risk_store import lock_key, state_key

    now = now_ms() if now is None else now
    node = store.get_node(name) or {}
    info = node.get("info") if isinstance(node.get("info"), dict) else {}
    risk = info.get("risk") if isinstance(info.get("risk"), dict) else {}
    mirror = store.get_flag(lock_key(name))
    locked: bool | None
    lock: Any = None
    if isinstance(mirror, dict) and mirror:
        lock = mirror
        try:
            locked = is_locked(mirror, now)
        except (KeyError, TypeError, ValueError):  # a mirror this version cannot read: the node decides
            locked = True
    elif "locked" in risk:
        locked = bool(risk.get("locked"))
        if locked:
            lock = {k: risk.get(k) for k in ("lock_reason", "lock_until_utc_ms", "lock_by") if k in risk}
    else:
        saved = store.get_flag(state_key(name))
        state = saved.get("state") if isinstance(saved, dict) else None
        if isinstance(state, dict):
            lock = state.get("lock") or None
            try:
                locked = bool(lock) and is_locked(lock, now)
            except (KeyError, TypeError, ValueError):
                locked = bool(lock)
        else:
            locked = None
    breached = []
    if risk.get("level") == "FLATTEN":
        for prefix, label in (("daily", "daily loss"), ("overall", "max loss")):
            used = risk.get(f"{prefix}_used_pct")
            if risk.get(f"{prefix}_level") == "FLATTEN" and isinstance(used, (int, float)):
                breached.append(f"{label} at {used:.1f}% of its limit")
        if not breached:
            breached.append("its risk level is FLATTEN")
    return {"locked": locked, "lock": lock, "breached": breached}


def release(store: Any, name: str, *, origin: str, **audit_data: Any) -> dict[str, Any]:
    """Ask ``name``'s guardian to release its risk lock (applied at its next evaluation).

    On an account with no lock (``lock_state``: locked False) nothing is requested: the
    answer says so (``locked: false``, ``release_requested: false``, ``message``), and the
    audit event records it. When no guardian has reported on the account yet (locked
    None) the request is written: its guardian applies it if it finds a lock."""
    from monitoring.reports import request_release

    require_account(store, name)
    state = lock_state(store, name)
    if state["locked"] is False:
        audit(store, "release", name, origin=origin, locked=False, release_requested=False, **audit_data)
        return {"account": name, "locked": False, "release_requested": False,
                "message": f"{name} has no risk lock: nothing to release"}
    doc = request_release(store, name, by=origin)
    audit(store, "release", name, origin=origin, **audit_data)
    out = {"account": name, "release_requested": True, **doc, "locked": state["locked"], "lock": state["lock"],
           "breached": state["breached"]}
    if state["breached"]:
        out["warning"] = f"{name} is still past its flatten level ({'; '.join(state['breached'])}): {RELOCK_NOTE}"
    return out
