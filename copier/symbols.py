"""Master symbol -> slave symbol, in the seed's order.

1. strip ``master_prefix``/``master_suffix`` from the master symbol (``EURUSD.raw`` -> ``EURUSD``);
2. ``symbol_map`` (keys are master symbols; the raw name is tried first, then the stripped one);
3. append the slave ``suffix``.

Choices: a mapped value that already ends with the suffix is not suffixed twice
(``{"US30": "DJ30.c"}``); when the slave's symbol list is known and only the bare mapped value
exists there (``GOLD`` but no ``GOLD.c``), the bare value is used. A result missing from
``available`` is a Skip naming both names, so the user knows which mapping to add.
"""
from __future__ import annotations

from collections.abc import Container
from typing import Any

from copier.decisions import Skip
from copier.filters import strip_master_symbol


def _candidates(master_symbol: str, cfg: Any) -> list[str]:
    stripped = strip_master_symbol(master_symbol, getattr(cfg, "master_prefix", ""), getattr(cfg, "master_suffix", ""))
    symbol_map = getattr(cfg, "symbol_map", None) or {}
    suffix = getattr(cfg, "suffix", "") or ""
    mapped = symbol_map.get(master_symbol)
    if mapped is None:
        mapped = symbol_map.get(stripped)
    if mapped is None:
        return [stripped + suffix]
    if not suffix or mapped.endswith(suffix):
        return [mapped]
    return [mapped + suffix, mapped]


def translate_symbol(master_symbol: str, cfg: Any, available: Container[str] | None = None) -> str | Skip:
    """The slave symbol for ``master_symbol``, or Skip when the slave does not offer it."""
    candidates = _candidates(master_symbol, cfg)
    if available is None:
        return candidates[0]
    for cand in candidates:
        if cand in available:
            return cand
    return Skip(f"symbol '{candidates[0]}' not available on slave ({_origin(master_symbol, cfg)})")


def _origin(master_symbol: str, cfg: Any) -> str:
    """How the master name became the slave name, for the Skip: the map entry it came
    from, or that no entry exists (the fix is a ``symbol_map`` entry)."""
    stripped = strip_master_symbol(master_symbol, getattr(cfg, "master_prefix", ""), getattr(cfg, "master_suffix", ""))
    symbol_map = getattr(cfg, "symbol_map", None) or {}
    if master_symbol in symbol_map or stripped in symbol_map:
        return f"mapped from '{master_symbol}'"
    suffix = getattr(cfg, "suffix", "") or ""
    steps = [f"'{master_symbol}'"]
    if stripped != master_symbol:
        steps.append(f"stripped to '{stripped}'")
    if suffix:
        steps.append(f"suffix '{suffix}' added")
    how = "master " + ", ".join(steps) if len(steps) > 1 else f"master '{master_symbol}'"
    return f"{how}; no symbol_map entry for '{stripped}'"
