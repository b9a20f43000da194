"""The volume a follower currently HOLDS for each copy: a link's ``held_volume`` (lots).

A link's ``master_volume``/``slave_volume`` are the volumes when the copy was first opened:
the sizing ratio partial closes and adds scale from (``planner_common.scaled_target``,
``planner_flip.link_ratio``, the netting shares), so they are never rewritten for a
partial close. What the follower holds NOW is a separate field, ``held_volume``, which
every view (dashboard, ``cli.py links``) shows; ``recorded_held`` reads it with the
fallback for links written before the field existed.

The slave node sets ``held_volume`` when it writes the link anyway (a fill, a partial
close, an adoption, a flip) and corrects it on its timer's full pass from the positions
that pass read (``held_volumes``), so a manual partial close on the terminal, an SL that
closed part of a position or a hedging add shows within a pass. Writes are made only when
the value moved by more than half a volume step (``held_changed``): no write churn.

How the held volume of an OPEN position link is computed from one positions read:

* **hedging**: the sum of the volumes of the link's slave positions (by its comment tag
  or its ``slave_ticket``, ``planner_state.link_positions``) on the link's side. A link
  with no position left is not decided here (its copy vanished: the planner closes the
  link or waits for the deal history).
* **netting**: one position per symbol is shared by every copy on it. Each copy's share is
  the planner's own target for it (``planner_netting``: ``lot_ratio`` × the master's
  current volume, unrounded, capped at ``max_lot``), and the position actually held is
  split in proportion to those shares: ``held_i = |share_i| × net / Σ shares`` (signed
  sums). So the held volumes of a symbol's copies always add up to the position the
  terminal holds (rounding to the volume step, a manual partial close, a shortfall the
  planner accepted are spread over the copies by their size), and with one copy it is the
  position's volume. Nothing is decided for a symbol while any of its copies' masters is
  not fresh or no longer holds the position, a master flipped, the symbol is flat, holds a
  manual position, the copies net to zero or to the other side of the position, or a
  pending copy on it vanished (its fill may be in the position): the planner is about to
  act there, and a later pass decides.
"""
from __future__ import annotations

from collections.abc import Container, Mapping
from typing import Any

from copier.links import KIND_ORDER, KIND_POSITION, OPEN, Link
from copier.planner_flip import is_flip
from copier.planner_netting import raw_share
from copier.planner_state import LinkKey, PlanContext, PlanState, fresh_view, link_positions
from copier.tags import parse_tag

EPS = 1e-9
DECIMALS = 8  # held volumes are stored rounded to this many decimals (float noise off the record)


def recorded_held(record: Mapping[str, Any]) -> float | None:
    """The volume (lots) a link record says the follower holds: ``held_volume``, else
    ``slave_volume`` (links written before ``held_volume`` existed), else None.

    Raises nothing: a value that is not a number counts as absent."""
    for key in ("held_volume", "slave_volume"):
        value = record.get(key)
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            return float(value)
    return None


def held_changed(old: float | None, new: float, step: float) -> bool:
    """True when ``new`` (lots) should be written over ``old``: no value yet, or they differ
    by more than half the symbol's ``volume_step`` (by more than float noise when the step
    is unknown, ``step`` <= 0)."""
    if old is None:
        return True
    tolerance = step / 2 if step > 0 else EPS
    return abs(new - old) > tolerance


def reduced_held(old: float | None, closed: float) -> float:
    """The held volume after a successful close of ``closed`` lots booked to the link:
    ``old - closed`` floored at 0 (``old`` None, unknown: 0)."""
    return round(max(0.0, (old or 0.0) - closed), DECIMALS)


def added_held(old: float | None, filled: float) -> float:
    """The held volume after a fill of ``filled`` lots added to an existing copy (an add or
    a restore): ``old + filled`` (``old`` None, unknown: ``filled``)."""
    return round((old or 0.0) + filled, DECIMALS)


def held_volumes(ctx: PlanContext, *, skip_keys: Container[LinkKey] = (),
                 skip_symbols: Container[str] = ()) -> dict[LinkKey, float]:
    """Held volume (lots, >= 0) per OPEN position link of ``ctx.links``, from the positions
    in ``ctx.slave_positions`` (a successful read of the slave's terminal).

    ``skip_keys``: links that this pass acted on (the positions read no longer show them);
    ``skip_symbols``: slave symbols this pass traded. Neither gets a value, and on a
    netting follower a symbol with any skipped link gets none. Links for which no sound
    value exists (see the module docstring) are left out: the caller keeps what it has.
    """
    st = PlanState(ctx)
    live = [lk for lk in st.links.values() if lk.status == OPEN and lk.kind == KIND_POSITION]
    if st.netting:
        return _netting(st, live, skip_keys, skip_symbols)
    out: dict[LinkKey, float] = {}
    for link in live:
        if link.key in skip_keys or link.symbol in skip_symbols:
            continue
        positions = [p for p in link_positions(st, link) if not link.direction or p.side == link.direction]
        if positions:
            out[link.key] = round(sum(p.volume for p in positions), DECIMALS)
    return out


def _netting(st: PlanState, live: list[Link], skip_keys: Container[LinkKey],
             skip_symbols: Container[str]) -> dict[LinkKey, float]:
    by_symbol: dict[str, list[Link]] = {}
    for link in live:
        by_symbol.setdefault(link.symbol, []).append(link)
    orders = st.ord_by_ticket
    held_symbols = {lk.symbol for lk in st.links.values()
                    if lk.kind == KIND_ORDER and lk.status == OPEN and lk.slave_ticket and lk.slave_ticket not in orders}
    touched = {lk.symbol for lk in st.links.values() if lk.key in skip_keys}
    out: dict[LinkKey, float] = {}
    for symbol, links in sorted(by_symbol.items()):
        if symbol in skip_symbols or symbol in touched or symbol in held_symbols:
            continue
        shares = _shares(st, links)
        if shares is None:
            continue
        positions = [p for p in st.ctx.slave_positions if p.symbol == symbol]
        owned = {lk.slave_ticket for lk in links if lk.slave_ticket}
        if any(parse_tag(p.comment) is None and p.identifier not in owned for p in positions):
            continue  # a manual position: the planner closes the links on it
        net = sum(p.volume if p.side == "BUY" else -p.volume for p in positions)
        total = sum(shares.values())
        if abs(net) < EPS or abs(total) < EPS or net * total < 0:
            continue
        scale = net / total
        for key, share in shares.items():
            out[key] = round(abs(share) * scale, DECIMALS)
    return out


def _shares(st: PlanState, links: list[Link]) -> dict[LinkKey, float] | None:
    """Signed planner share per link (lots), or None when one of them cannot be valued now."""
    shares: dict[LinkKey, float] = {}
    for link in links:
        view = fresh_view(st, link.master_name)
        mpos = view.state.positions.get(link.master_ticket) if view is not None else None
        if mpos is None or is_flip(link, mpos):
            return None
        raw = raw_share(st, link, mpos.volume)
        shares[link.key] = raw if link.direction == "BUY" else -raw
    return shares
