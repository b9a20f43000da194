"""The follower's held volume per copy, corrected on the slave's full (timer) pass.

The ``ActionRunner`` sets a link's ``held_volume`` whenever it writes the link for a trade
(fill, close, adoption, flip); this module catches everything else that changes what the
follower holds without an action of ours (a manual partial close on the terminal, an SL
that took part of a position, a hedging add): after the actions of a full pass ran, it
values every OPEN position link the pass did not act on from the positions that pass read
(``copier.held.held_volumes``: pure) and writes ``held_volume`` only where it moved by more
than half a volume step. No terminal call; run only on the timer's pass, never on the copy
path (a pass triggered by a master change).
"""
from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from copier.actions import Close, ModifyPending, ModifySLTP, Open
from copier.held import held_changed, held_volumes, recorded_held
from copier.links import OPEN
from copier.models import SymbolSpec
from copier.planner_state import PlanContext
from db import StoreUnavailable

VOLUME_NEUTRAL = (ModifySLTP, ModifyPending)  # actions that never change what a copy holds


def sync_held(runner: Any, ctx: PlanContext, actions: Sequence[Any], specs: Mapping[str, SymbolSpec]) -> int:
    """Write ``held_volume`` on the links whose held volume drifted; returns the writes made.

    ``runner``: the slave's ``nodes.slave_actions.ActionRunner`` (its store, its table of
    link records, its log and lease fence); ``ctx``: the pass's plan input (its positions
    read); ``actions``: what the pass planned (their links and traded symbols are skipped:
    the positions read predate them); ``specs``: the pass's symbol specs (volume steps).
    A store that is down ends the correction quietly (the next full pass tries again);
    ``nodes.lease.LeaseLost`` from the fence propagates like any action's.
    """
    acted = {(a.master_name, a.master_ticket) for a in actions if not isinstance(a, VOLUME_NEUTRAL)}
    traded = {a.symbol for a in actions if isinstance(a, (Open, Close))}
    writes = 0
    for key, volume in sorted(held_volumes(ctx, skip_keys=acted, skip_symbols=traded).items()):
        rec = runner.links.get(key)
        if rec is None or rec.get("status") != OPEN:
            continue
        spec = specs.get(rec.get("symbol") or "")
        old = recorded_held(rec)
        if not held_changed(old, volume, spec.volume_step if spec is not None else 0.0):
            continue
        if writes == 0:
            runner.fence()  # a record of an account we may no longer trade is not ours to write
        try:
            doc = runner.store.update_trade(runner.name, key[0], key[1], {"held_volume": volume})
        except StoreUnavailable as exc:
            runner.log.warning("held_volume_not_recorded", error=str(exc))
            break
        writes += 1
        if doc is not None:  # None: the row was removed (operator): nothing to keep in step
            runner.links[key] = doc
        runner.log.bind(master=key[0], master_ticket=key[1], slave_ticket=rec.get("slave_ticket")).info(
            "held_volume_corrected", held_volume=volume, previous=old, symbol=rec.get("symbol"))
    return writes
