"""What a slave's change pass must read, and which links its loop must keep (issue 14).

Two pure rules the slave loop (``nodes/slave.py``) applies around the planner:

* ``only_new_opens`` — may a change pass plan on the follower's positions as read after
  its last order, instead of reading them again? Only when the change does nothing but
  open copies: a close, a partial close, a modification or a flip must see what the
  account holds now. (The loop adds its own conditions: a hedging account, a read younger
  than ``POSITIONS_REUSE_MS``, no ``order_send`` since.)
* ``links_to_let_go`` — which finished links the loop may drop from memory (the store
  keeps them): finished, their master ticket on no master, and not written for
  ``keep_ms``; nothing while a master's mirror is stale (it cannot say what is visible).

``masters`` maps a master's name to its ``copier.planner_state.MasterView``; ``links`` maps
``(master name, master ticket)`` to the link's record (a dict with ``status``,
``slave_ticket``, ``updated_ms`` in UTC ms).
"""
from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from copier.links import PENDING, TERMINAL

if TYPE_CHECKING:
    from copier.planner_state import MasterView

LinkKey = tuple[str, int]


def only_new_opens(focus: frozenset[LinkKey] | None, masters: Mapping[str, MasterView],
                   links: Mapping[LinkKey, Mapping[str, Any]], seen: Mapping[str, tuple[Mapping, Mapping]]) -> bool:
    """True when every link a change pass touches (``focus``) opens a copy: a master
    position (not an order) on a fresh, already followed master that is new since the last
    pass (``seen``: per master, the positions and orders it planned on) and has no link, or
    whose link is still PENDING with no slave position. False for an empty focus."""
    if not focus:
        return False
    for master, ticket in focus:
        view = masters.get(master)
        if view is None or view.first_sync or not view.fresh or ticket not in view.state.positions:
            return False
        rec = links.get((master, ticket))
        if rec is None:
            if ticket in seen.get(master, ({}, {}))[0]:  # known: a change of an existing position
                return False
        elif rec.get("status") != PENDING or rec.get("slave_ticket"):
            return False
    return True


def links_to_let_go(links: Mapping[LinkKey, Mapping[str, Any]], masters: Mapping[str, MasterView], now_ms: int,
                    keep_ms: int) -> list[LinkKey]:
    """The finished links (CLOSED, SKIPPED, FAILED) no master shows any more and last
    written more than ``keep_ms`` before ``now_ms``; none while any master's mirror is
    stale or there is no master."""
    if not masters or not all(v.fresh for v in masters.values()):
        return []
    visible = {(n, t) for n, v in masters.items() for t in (*v.state.positions, *v.state.orders)}
    return [k for k, r in links.items()
            if r.get("status") in TERMINAL and k not in visible and now_ms - int(r.get("updated_ms") or 0) > keep_ms]
