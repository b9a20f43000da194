"""Fleet reconcile: which nodes this host should run, from the account documents. Pure.

The launcher re-reads the accounts every couple of seconds and diffs the *desired* set
(enabled accounts for this host) against what it supervises. This module only computes
the plan; the launcher carries it out.

Who decides about a changed document: the node. A running node re-reads its own account
and hot-reloads what it can (symbol map, slippage, sizing, filters, risk); anything else
makes it exit 75 and the launcher restarts it at once. The launcher acts on a changed
document only where it chooses the process itself: ``type`` (master vs slave script)
means a restart, ``enabled``/``host`` mean start or stop, and a node held in FATAL or
CONFIG_ERROR gets a fresh start.
"""
from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

ROLE_OF_TYPE = {"MASTER": "master", "SLAVE": "slave"}


@dataclass(frozen=True)
class Desired:
    """One account this host should run."""

    name: str
    role: str | None  # "master" | "slave"; None when ``type`` is unusable (validation names it)
    fingerprint: str  # changes iff the document changes


@dataclass(frozen=True)
class Plan:
    start: list[Desired] = field(default_factory=list)  # masters first
    stop: list[tuple[str, str]] = field(default_factory=list)  # (name, why)
    restart: list[Desired] = field(default_factory=list)  # role changed
    changed: list[Desired] = field(default_factory=list)  # other edits

    @property
    def empty(self) -> bool:
        return not (self.start or self.stop or self.restart or self.changed)


def fingerprint(doc: Mapping[str, Any]) -> str:
    """Stable hash of a document (key order does not matter)."""
    blob = json.dumps(doc, sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.sha1(blob.encode("utf-8")).hexdigest()[:16]


def same_host(doc_host: Any, host: str) -> bool:
    """An account runs here when it names no host or names this one (case-insensitive,
    because Windows reports machine names in upper case)."""
    if doc_host is None or doc_host == "":
        return True
    return isinstance(doc_host, str) and doc_host.strip().casefold() == host.strip().casefold()


def is_enabled(doc: Mapping[str, Any]) -> bool:
    """Missing ``enabled`` means enabled (the seed's documents always carry it). Anything
    but ``False`` is treated as wanted so that a mistyped value reaches validation and is
    reported, instead of the account silently not running."""
    return doc.get("enabled", True) is not False


def role_of(doc: Mapping[str, Any]) -> str | None:
    kind = doc.get("type")
    return ROLE_OF_TYPE.get(kind.upper()) if isinstance(kind, str) else None


def desired_nodes(accounts: Iterable[Mapping[str, Any]], host: str) -> dict[str, Desired]:
    """Enabled accounts for ``host``, by name."""
    out: dict[str, Desired] = {}
    for doc in accounts:
        name = doc.get("name")
        if not isinstance(name, str) or not name:
            continue
        if not is_enabled(doc) or not same_host(doc.get("host"), host):
            continue
        out[name] = Desired(name, role_of(doc), fingerprint(doc))
    return out


def plan(desired: Mapping[str, Desired], current: Mapping[str, Desired],
         known_names: Iterable[str] = ()) -> Plan:
    """Diff desired against current. ``known_names`` are all account names in the
    store, to tell "disabled or moved to another host" from "removed"."""
    known = set(known_names)
    start = [d for n, d in desired.items() if n not in current]
    start.sort(key=lambda d: (d.role != "master", d.name))
    stop = [(n, "account disabled or assigned to another host" if n in known else "account removed")
            for n in sorted(current) if n not in desired]
    restart, changed = [], []
    for n in sorted(desired):
        if n in current and desired[n].fingerprint != current[n].fingerprint:
            (restart if desired[n].role != current[n].role else changed).append(desired[n])
    return Plan(start=start, stop=stop, restart=restart, changed=changed)
