"""Pure helpers behind ``cli.py``: parsing what an operator types, editing documents.

Flags the CLI persists (the store's flags collection), so a node that is not running
sees them when it starts:

* ``paused:<NAME>`` = True        no new opens on that account (absent = not paused)
* ``kill_switch`` = True          no new opens anywhere (absent = off)
* ``flatten:<NAME>`` = ts_ms      close every copied position; the node deletes it when done
* ``reset:<NAME>`` = ts_ms        the launcher clears FATAL / CONFIG_ERROR and deletes it
"""
from __future__ import annotations

import copy
import json
import re
from datetime import datetime, timezone
from typing import Any

PAUSED_PREFIX = "paused:"
FLATTEN_PREFIX = "flatten:"
RESET_PREFIX = "reset:"
KILL_SWITCH = "kill_switch"

_DURATION = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(ms|s|m|h|d|w)\s*$", re.IGNORECASE)
_UNIT_MS = {"ms": 1, "s": 1000, "m": 60_000, "h": 3_600_000, "d": 86_400_000, "w": 604_800_000}
_DELETE = object()


def parse_since(text: str, now_ms: int) -> int:
    """``10m``, ``2h``, ``1d`` (ago) or an ISO 8601 time (naive = UTC) -> epoch ms."""
    m = _DURATION.match(text)
    if m:
        return now_ms - int(float(m.group(1)) * _UNIT_MS[m.group(2).lower()])
    try:
        dt = datetime.fromisoformat(text.strip().replace("Z", "+00:00"))
    except ValueError:
        raise ValueError(f"--since {text!r}: expected a duration like 10m, 2h, 1d or an ISO time "
                         "like 2025-01-06T10:00:00Z") from None
    if dt.tzinfo is None:
        dt = dt.replace(tzinfo=timezone.utc)
    return int(dt.timestamp() * 1000)


def parse_value(raw: str) -> Any:
    """JSON when it parses (30, true, null, {"XAUUSD": "GOLD"}, ["a"]), else the text."""
    try:
        return json.loads(raw)
    except ValueError:
        return raw


# Fields whose keys are free names (symbols): after ``symbol_map.`` the rest of the key is
# one name, dots and all (``symbol_map.EURUSD.raw=EURUSD``).
NAME_KEYED = frozenset({"symbol_map"})
# What a shell (bash, cmd, PowerShell) passes unquoted and unchanged inside a word.
_SHELL_SAFE = re.compile(r"[A-Za-z0-9_.#+\-]+")


def parse_assignment(text: str) -> tuple[list[str], Any]:
    """``KEY=VALUE`` with dotted keys for nested fields -> (path, value).
    ``null`` as the value removes the field. Under a NAME_KEYED field the rest of the key
    is one name (``symbol_map.US30.cash=DJ30`` sets the entry ``US30.cash``)."""
    key, sep, raw = text.partition("=")
    key = key.strip()
    if not sep or not key:
        raise ValueError(f"{text!r}: expected KEY=VALUE (e.g. slippage_tolerance=30)")
    path = key.split(".")
    if path[0] in NAME_KEYED and len(path) > 2:
        path = [path[0], ".".join(path[1:])]
    if any(not part for part in path):
        raise ValueError(f"{text!r}: empty part in key {key!r}")
    if path[0] == "name":
        raise ValueError("the account name cannot be changed with set (add a new account and remove the old one)")
    return path, parse_value(raw)


def map_assignments(field: str, old: dict[str, Any], new: dict[str, Any]) -> list[str]:
    """``accounts set`` arguments turning the map ``old`` into ``new`` one entry at a time
    (``symbol_map.XAUUSD=GOLD``, ``symbol_map.US30=null``): unlike a JSON value they need no
    quoting in bash, cmd or PowerShell. Empty when a name or value is not shell-safe (then
    give the whole map as JSON)."""
    args = [f"{field}.{k}={v}" for k, v in sorted(new.items()) if old.get(k) != v]
    args += [f"{field}.{k}=null" for k in sorted(old) if k not in new]
    names = [*new, *old, *(str(v) for v in new.values())]
    if not all(isinstance(n, str) and _SHELL_SAFE.fullmatch(n) and parse_value(n) == n for n in names):
        return []
    return args


def apply_assignments(doc: dict[str, Any], assignments: list[tuple[list[str], Any]]) -> dict[str, Any]:
    """A new document with every assignment applied (the input is not modified)."""
    out = copy.deepcopy(doc)
    for path, value in assignments:
        target = out
        for part in path[:-1]:
            nxt = target.get(part)
            if nxt is None:
                nxt = target[part] = {}
            if not isinstance(nxt, dict):
                raise ValueError(f"{'.'.join(path)}: {part!r} is {type(nxt).__name__}, not an object")
            target = nxt
        if value is None:
            target.pop(path[-1], None)
        else:
            target[path[-1]] = value
    return out


def top_level_changes(old: dict[str, Any], new: dict[str, Any]) -> tuple[dict[str, Any], list[str]]:
    """(fields to set, keys to remove) turning ``old`` into ``new`` at the top level, so
    the store update touches only what the operator changed."""
    sets = {k: v for k, v in new.items() if k not in old or old[k] != v}
    unsets = [k for k in old if k not in new]
    return sets, unsets
