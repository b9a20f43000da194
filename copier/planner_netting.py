"""Rule 5 on a NETTING slave: one position per symbol, shared by every link on it.

Per slave symbol S:
  desired = Σ over live position links on S of  sign(link.direction) × target(link)
            target = normalise(link.slave_volume × master_volume_now / link.master_volume),
            0 when the master no longer holds the position (or reversed it).
  If any master with a live copy on S is missing or not fresh, S is FROZEN: no correction
  on S (new copies still open), because the one net position cannot be split per copy and
  any correction could be driven by the stale master's share.
  actual  = signed volume of the slave's position on S (0 when flat).
One corrective deal per symbol: reduce -> Close(|diff|), increase -> Open(|diff|),
sign change -> Close(all) + Open(|desired|). An increase is booked to a PENDING copy
("retry"), else to a master whose volume grew ("add", slippage vs the master's current
price), else it restores a share that is missing ("restore": netted away by the copier's own deals)
and is checked against the master's ENTRY price (no late entry).
Reasons from history decide which shares may be restored: a copy whose slave position
(``link.slave_ticket``) vanished is classified from that position's deals
(``PlanContext.closures``, copier/reasons.py): closed by SL, TP, stop out, by hand or by
another program -> the copy is CLOSED with that reason and leaves the desired net, never
re-opened while its master position lives; closed by the copier's own deal -> its share
stays desired and is restored. A link's ``slave_ticket`` follows the net position its share
lives in (``Rebind``) so the classification always looks at the right position.
A netting position that carries no copyhub tag and no link's ticket is a manual trade:
copyhub neither trades into it nor closes it.
"""
from __future__ import annotations

from dataclasses import replace
from typing import TYPE_CHECKING

from copier.actions import Adopt, Close, MarkClosed, Open, Rebind
from copier.links import FAILED, KIND_POSITION, OPEN, PENDING, Link
from copier.models import Position
from copier.sizing import floor_to_step
from copier.tags import make_tag, parse_tag

if TYPE_CHECKING:
    from copier.planner import _Planner

EPS = 1e-9


def _sign(x: float) -> int:
    return (x > EPS) - (x < -EPS)


def _signed(side: str, volume: float) -> float:
    return volume if side == "BUY" else -volume


def plan_netting_links(pl: "_Planner", links: list[Link]) -> None:
    by_symbol: dict[str, list[Link]] = {}
    for link in links:
        by_symbol.setdefault(link.symbol, []).append(link)
    for symbol in sorted(by_symbol):
        _plan_symbol(pl, symbol, sorted(by_symbol[symbol], key=lambda l: l.key))


def _contributions(pl: "_Planner", links: list[Link], spec) -> tuple[dict, dict, bool]:
    """(contribution per link key, reason when it dropped to 0, frozen?)

    Frozen as soon as one master on the symbol is missing or not fresh: the net position
    cannot be split per copy, so any correction could be driven by that master's stale share.
    """
    contrib: dict[tuple[str, int], float] = {}
    zero_reason: dict[tuple[str, int], str] = {}
    for link in links:
        view = pl.ctx.masters.get(link.master_name)
        if view is None or not view.fresh:
            return contrib, zero_reason, True
        mpos = view.state.positions.get(link.master_ticket)
        if mpos is None:
            contrib[link.key] = 0.0
            zero_reason[link.key] = "master closed"
            continue
        if link.master_side and mpos.side != link.master_side:
            contrib[link.key] = 0.0
            zero_reason[link.key] = "master reversed (netting master)"
            continue
        target = pl.scaled_target(link, mpos.volume, spec, pl.cfg.max_lot)
        if target is None:
            target = link.slave_volume
        contrib[link.key] = _signed(link.direction, target)
    return contrib, zero_reason, False


def _plan_symbol(pl: "_Planner", symbol: str, links: list[Link]) -> None:
    positions = [p for p in pl.ctx.slave_positions if p.symbol == symbol]
    pl.claimed_pos.update(p.identifier for p in positions)  # the netting pass owns these, not the orphan pass
    pos: Position | None = positions[0] if positions else None
    links = _drop_closed_on_slave(pl, links, pos)
    if links is None:
        return  # a vanished position's deals are not read yet: decide nothing on S this pass
    owned_ids = {l.slave_ticket for l in links if l.slave_ticket}
    if pos is not None and parse_tag(pos.comment) is None and pos.identifier not in owned_ids:
        for link in links:  # our copy was replaced by a manual trade: never trade into it
            if link.status == OPEN:
                pl.out.append(MarkClosed(link.master_name, link.master_ticket, "closed on slave (symbol now holds a manual position)"))
            else:
                pl.skip(link.master_name, link.master_ticket, f"slave holds a manual netting position on {symbol}", status=FAILED,
                        master_symbol=link.master_symbol, symbol=symbol, direction=link.direction, master_volume=link.master_volume)
        return
    spec = pl.ctx.specs.get(symbol)
    if spec is None:
        return
    contrib, zero_reason, frozen = _contributions(pl, links, spec)
    if frozen:
        return  # wait until every master with a copy on this symbol is fresh again
    live = {l.key: l for l in links}
    actual = _signed(pos.side, pos.volume) if pos is not None else 0.0
    tol = spec.volume_step / 2 if spec.volume_step > 0 else EPS
    while True:
        desired = sum(contrib.values())
        diff = desired - actual
        if abs(diff) < tol:
            _settled(pl, pos, live, contrib, zero_reason, spec)
            return
        if not live:
            return  # every copy on S was just dropped: what is left is the orphan pass's business
        if _sign(desired) != -_sign(actual) and abs(desired) < abs(actual):  # reduce, possibly to flat
            vol = pos.volume if abs(desired) < tol else floor_to_step(abs(diff) + tol, spec.volume_step)
            if vol >= spec.volume_min - EPS:
                who = _culprit(pl, live, zero_reason)
                pl.out.append(_close(pl, who, pos, vol, "master closed" if abs(desired) < tol else "master partial close", spec))
                if vol < pos.volume - EPS:
                    _sync_levels(pl, pos, live, contrib, spec)
            return
        if _sign(desired) == -_sign(actual):  # direction change: flatten first, then open the new side
            pl.out.append(_close(pl, _culprit(pl, live, zero_reason), pos, pos.volume, "net direction changed", spec))
            actual = 0.0
            pos = None  # the next deal opens a new position
        if pl.ctx.paused:
            return
        want = _sign(desired - actual)
        link, purpose = _grow_owner(pl, live, contrib, want)
        if link is None:
            return
        if purpose == "retry" and link.attempts >= pl.ctx.max_attempts:
            pl.skip(link.master_name, link.master_ticket, f"gave up after {link.attempts} attempts", status=FAILED,
                    master_symbol=link.master_symbol, symbol=symbol, direction=link.direction, master_volume=link.master_volume)
            contrib.pop(link.key)
            live.pop(link.key)
            continue
        volume = floor_to_step(abs(desired - actual) + tol, spec.volume_step)
        if volume < spec.volume_min - EPS:
            return
        view = pl.ctx.masters[link.master_name]
        mpos = view.state.positions[link.master_ticket]
        result = pl.open_for(link.master_name, view, mpos, link, purpose, volume=volume)
        if isinstance(result, Open):
            if sum(1 for c in contrib.values() if abs(c) > EPS) > 1:  # one SL/TP cannot serve several copies
                result = _replace_sltp(result, pos)
            pl.emit_open(result)
            if pos is not None:  # added to the existing position: set its levels explicitly (runs after the deal)
                _sync_levels(pl, pos, live, contrib, spec)
            return
        if result is None or purpose == "add":
            return  # no quote yet / an add outside slippage: try again next pass
        if purpose == "retry":
            pl.skip(link.master_name, link.master_ticket, result.reason, master_symbol=link.master_symbol, symbol=symbol,
                    direction=link.direction, master_volume=link.master_volume)
        elif abs(actual) > EPS:
            return  # part of the copies' volume is still held: accept the shortfall, keep managing it
        else:  # flat: its share was netted away by our own deals and the market has left its entry
            pl.out.append(MarkClosed(link.master_name, link.master_ticket,
                                     f"netted away on slave; not re-opened ({result.reason})", "own"))
        contrib.pop(link.key)
        live.pop(link.key)


def _drop_closed_on_slave(pl: "_Planner", links: list[Link], pos: Position | None) -> list[Link] | None:
    """Reasons from history on a netting symbol: an OPEN copy whose slave position (its
    ``slave_ticket``) vanished is CLOSED with the cause its deals give (SL, TP, stop out, by
    hand...) and leaves the desired net for good; only a position the copier closed itself
    (a netting effect, or its own close) keeps the copy's share, to be restored.
    None: some vanished position's history is not known yet (wait)."""
    kept: list[Link] = []
    for link in links:
        if link.status != OPEN or not link.slave_ticket or (pos is not None and link.slave_ticket == pos.identifier):
            kept.append(link)
            continue
        closure = pl.closure_for(link)
        if closure is False:
            return None
        if closure is not None and closure.final:
            pl.out.append(MarkClosed(link.master_name, link.master_ticket, closure.describe(), closure.cause, closure.deal))
            continue
        kept.append(link)
    return kept


def _grow_owner(pl: "_Planner", live: dict, contrib: dict, want: int) -> tuple[Link | None, str]:
    """Which copy an increase belongs to, and why: a PENDING copy not made yet ("retry"), a
    master whose volume grew ("add"), else a copy whose share is missing ("restore": netted
    away by a flip, or closed on the slave) - checked against the master's entry price."""
    candidates = [l for l in live.values() if _sign(contrib.get(l.key, 0.0)) == want]
    for link in candidates:
        if link.status == PENDING:
            return link, "retry"
    for link in candidates:
        mpos = pl.ctx.masters[link.master_name].state.positions[link.master_ticket]
        if mpos.volume > link.master_volume + EPS:
            return link, "add"
    return (candidates[0], "restore") if candidates else (None, "")


def _replace_sltp(action: Open, pos: Position | None) -> Open:
    return replace(action, sl=pos.sl if pos else 0.0, tp=pos.tp if pos else 0.0, stops_note="")


def _culprit(pl: "_Planner", live: dict, zero_reason: dict) -> Link:
    """The copy a reduction is booked to: one whose master closed, else one whose master
    volume shrank, else the first."""
    for key in live:
        if key in zero_reason:
            return live[key]
    for link in live.values():
        mpos = pl.ctx.masters[link.master_name].state.positions.get(link.master_ticket)
        if mpos is not None and mpos.volume < link.master_volume - EPS:
            return link
    return next(iter(live.values()))


def _close(pl: "_Planner", link: Link, pos: Position, volume: float, reason: str, spec) -> Close:
    return Close(link.master_name, link.master_ticket, pos.ticket, pos.symbol, pos.side, volume, pos.volume, reason,
                 pl.filling(spec), pl.cfg.slippage_tolerance, pl.cfg.magic, make_tag(*link.key))


def _settled(pl: "_Planner", pos: Position | None, live: dict, contrib: dict, zero_reason: dict, spec) -> None:
    """Net position matches: settle the bookkeeping and keep SL/TP in line when one copy owns it."""
    for key, link in live.items():
        if key in zero_reason:
            pl.out.append(MarkClosed(link.master_name, link.master_ticket, zero_reason[key]))
        elif link.status == OPEN and pos is not None and abs(contrib[key]) > EPS and link.slave_ticket != pos.identifier:
            pl.out.append(Rebind(link.master_name, link.master_ticket, pos.identifier))  # its share lives in pos now
        elif link.status == PENDING:
            pl.out.append(Adopt(link.master_name, link.master_ticket, pos.identifier if pos is not None else 0, abs(contrib[key]),
                                pos.price_open if pos is not None else 0.0,
                                KIND_POSITION, link.symbol, link.master_symbol, link.direction, link.master_side,
                                link.master_volume, link.tag or make_tag(*key)))
    _sync_levels(pl, pos, live, contrib, spec)


def _sync_levels(pl: "_Planner", pos: Position | None, live: dict, contrib: dict, spec) -> None:
    """SL/TP of the net position follow the master only when exactly one copy owns it."""
    owners = [k for k, c in contrib.items() if abs(c) > EPS]
    if pos is None or len(owners) != 1 or not pl.cfg.copy_sltp or owners[0] not in live:
        return
    link = live[owners[0]]
    view = pl.ctx.masters[link.master_name]
    if not view.fresh:
        return
    pl.sync_sltp(link, view.state.positions[link.master_ticket], pos, spec)
