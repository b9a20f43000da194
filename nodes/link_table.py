"""The slave loop's links, with the live ones indexed.

A slave keeps every link of its account it has seen (finished ones leave after an hour:
``SlaveLoop._prune_finished``), but a change pass only needs the live ones (``PENDING``,
``OPEN``) and the finished ones whose master ticket is still visible. ``LinkTable`` is the
dict the loop and its ``ActionRunner`` share — ``(master name, master ticket) -> link
record`` — and keeps ``live`` in step with every assignment and deletion, so those
passes walk the live links instead of the account's history.

Records are never changed in place: every write stores the store's fresh dict (``ActionRunner._save``).
"""
from __future__ import annotations

from collections.abc import Iterable
from itertools import count
from typing import Any, NoReturn

from copier.links import LIVE

LinkKey = tuple[str, int]


class LinkTable(dict[LinkKey, dict[str, Any]]):
    """``dict`` of link records plus ``live`` (the subset whose status is PENDING or OPEN,
    in no particular order) and ``in_order(keys)`` (those keys in the order iterating the
    table gives: what the planner is handed, ``SlaveLoop._relevant_links``)."""

    def __init__(self) -> None:
        super().__init__()
        self.live: dict[LinkKey, dict[str, Any]] = {}
        self._order: dict[LinkKey, int] = {}
        self._next = count()

    def __setitem__(self, key: LinkKey, rec: dict[str, Any]) -> None:
        if key not in self:
            self._order[key] = next(self._next)
        super().__setitem__(key, rec)
        if rec.get("status") in LIVE:
            self.live[key] = rec
        else:
            self.live.pop(key, None)

    def __delitem__(self, key: LinkKey) -> None:
        super().__delitem__(key)
        self.live.pop(key, None)
        self._order.pop(key, None)

    def in_order(self, keys: Iterable[LinkKey]) -> list[LinkKey]:
        """``keys`` that are in the table, in the order iterating the table gives."""
        order = self._order
        return sorted((k for k in set(keys) if k in order), key=order.__getitem__)

    def _refuse(self, *args: Any, **kwargs: Any) -> NoReturn:
        raise TypeError("LinkTable: assign or delete single keys (the live index follows them)")

    pop = popitem = update = setdefault = clear = __ior__ = _refuse  # type: ignore[assignment]
