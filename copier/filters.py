"""Which master trades a slave wants: ``follows`` and the symbol allow/deny lists.

Allow/deny patterns match the MASTER's symbol names (what the trader sees on the signal
account), case-insensitively, with ``*`` as the only wildcard. A pattern matches either the
raw master symbol or the one with ``master_prefix``/``master_suffix`` stripped, so
``EURUSD`` also matches ``EURUSD.pro``. Deny wins over allow; an empty/absent allow list
allows everything.
"""
from __future__ import annotations

import re
from collections.abc import Iterable
from functools import lru_cache

from copier.decisions import Skip


@lru_cache(maxsize=1024)
def _pattern(pattern: str) -> re.Pattern[str]:
    parts = (re.escape(p) for p in pattern.split("*"))
    return re.compile("^" + ".*".join(parts) + "$", re.IGNORECASE)


def matches(pattern: str, symbol: str) -> bool:
    return _pattern(pattern).match(symbol) is not None


def strip_master_symbol(symbol: str, prefix: str = "", suffix: str = "") -> str:
    """The master symbol without its broker prefix/suffix (unchanged if they do not match)."""
    if prefix and symbol.startswith(prefix) and len(symbol) > len(prefix):
        symbol = symbol[len(prefix):]
    if suffix and symbol.endswith(suffix) and len(symbol) > len(suffix):
        symbol = symbol[: -len(suffix)]
    return symbol


def symbol_allowed(
    master_symbol: str,
    *,
    allow: Iterable[str] | None,
    deny: Iterable[str] | None,
    master_prefix: str = "",
    master_suffix: str = "",
) -> Skip | None:
    """None when the slave wants this master symbol, else a Skip saying which list refused it."""
    names = {master_symbol, strip_master_symbol(master_symbol, master_prefix, master_suffix)}
    for pat in deny or ():
        if any(matches(pat, n) for n in names):
            return Skip(f"symbol '{master_symbol}' denied by symbols_deny pattern '{pat}'")
    allow = list(allow or ())
    if allow and not any(matches(pat, n) for pat in allow for n in names):
        return Skip(f"symbol '{master_symbol}' not in symbols_allow")
    return None


def follows(follow_list: Iterable[str] | None, master_name: str) -> bool:
    """None/absent ``follows`` means every master."""
    return follow_list is None or master_name in follow_list
