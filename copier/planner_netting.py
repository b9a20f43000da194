"""Rule 5 on a NETTING slave: one position per symbol, shared by every link on it.

Per slave symbol S:
  desired = net_target(Σ over live position links on S of sign(link.direction) × share(link))
            share = lot_ratio × master_volume_now (the copy's sized volume, UNROUNDED,
            capped at max_lot), 0 when the master no longer holds the position;
            net_target rounds |Σ| down to the volume step (toward zero), 0 under the minimum.
  So the target is the signed sum of the sized master positions whatever order they came
  in: sizing is done per position, rounding once per symbol. A new copy on S trades only
  the change it makes to that target (``new_netting_copy``).
  A master position that changed side under the same identifier (a flip, netting master)
  keeps its link: the link is rewritten to the new side (``Flip``) and its share changes
  sign (``planner_flip``).
  If any master with a live copy on S is missing or not fresh, S is FROZEN: no correction
  on S (new copies still open), because the one net position cannot be split per copy and
  any correction could be driven by the stale master's share.
  actual  = signed volume of the slave's position on S (0 when flat).
One corrective deal per symbol: reduce -> Close(|diff|), increase -> Open(|diff|),
sign change -> Close(all) + Open(|desired|). A close ends a link only when that link's
master position is gone (``Close.ends_link``): a reduction booked to a copy whose master
still holds it must never record "master closed". An increase is booked to a PENDING copy
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

from copier.actions import Action, Adopt, Close, Flip, MarkClosed, Open, Rebind
from copier.decisions import Skip
from copier.links import FAILED, KIND_POSITION, OPEN, PENDING, Link
from copier.models import Position, SymbolSpec, opposite
from copier.planner_common import (
    emit_open,
    filling,
    market_for,
    open_for,
    size,
    sizing_fields,
    skip,
    sync_sltp,
)
from copier.planner_flip import (
    FLIPPED,
    flip_action,
    flip_sizing,
    flipped_link,
    is_flip,
    link_ratio,
)
from copier.planner_state import LinkKey, MasterView, PlanState, closure_for
from copier.sizing import STEP_EPS, floor_to_step
from copier.tags import make_tag, parse_tag

EPS = 1e-9


def _sign(x: float) -> int:
    return (x > EPS) - (x < -EPS)


def _signed(side: str, volume: float) -> float:
    return volume if side == "BUY" else -volume


def plan_netting_links(st: PlanState, links: list[Link]) -> None:
    by_symbol: dict[str, list[Link]] = {}
    for link in links:
        by_symbol.setdefault(link.symbol, []).append(link)
    for symbol in sorted(by_symbol):
        if symbol in st.net_hold:  # a vanished pending copy may have filled into it: wait for its history
            st.claimed_pos.update(p.identifier for p in st.ctx.slave_positions if p.symbol == symbol)
            continue
        start = len(st.out)
        _plan_symbol(st, symbol, sorted(by_symbol[symbol], key=lambda lk: lk.key))
        st.net_expected[symbol] = _held(st, symbol) + _dealt(st.out[start:], symbol)


def _held(st: PlanState, symbol: str) -> float:
    """Signed volume of the slave's net position on ``symbol`` (0 when flat)."""
    return sum(_signed(p.side, p.volume) for p in st.ctx.slave_positions if p.symbol == symbol)


def _dealt(actions: list[Action], symbol: str) -> float:
    """Signed net volume the deals in ``actions`` move ``symbol`` by."""
    moved = 0.0
    for a in actions:
        if isinstance(a, Open) and a.symbol == symbol:
            moved += _signed(a.side, a.volume)
        elif isinstance(a, Close) and a.symbol == symbol:
            moved -= _signed(a.side_to_close, a.volume)
    return moved


def _contributions(st: PlanState, links: list[Link], spec: SymbolSpec) -> tuple[
        dict[LinkKey, float], dict[LinkKey, str], bool, dict[LinkKey, Link], list[Flip]]:
    """(raw signed contribution per link key, reason when it dropped to 0, frozen?,
    links rewritten by a flip, Flip actions)

    A contribution is the link's sized volume for the master's current volume, UNROUNDED
    (``lot_ratio`` × master volume, capped at ``max_lot``): the net target rounds the sum,
    not each term. Frozen as soon as one master on the symbol is missing or not fresh: the
    net position cannot be split per copy, so any correction could be driven by that
    master's stale share (the last known state still gives the contributions, which a new
    copy on the symbol needs).
    """
    contrib: dict[tuple[str, int], float] = {}
    zero_reason: dict[tuple[str, int], str] = {}
    flipped: dict[tuple[str, int], Link] = {}
    flips: list[Flip] = []
    frozen = False
    for link in links:
        view = st.ctx.masters.get(link.master_name)
        if view is None or not view.fresh:
            frozen = True
            if view is None:
                continue
        mpos = view.state.positions.get(link.master_ticket)
        if mpos is None and not view.fresh:  # absence is not a close: its last known share stands
            contrib[link.key] = _signed(link.direction, raw_share(st, link, link.master_volume))
            continue
        if mpos is None and link.master_ticket in view.state.orders:
            # our pending copy filled before the master's order (pending_fills): the fill counts
            # at the order's volume, the master's own fill will follow
            contrib[link.key] = _signed(link.direction, raw_share(st, link, view.state.orders[link.master_ticket].volume))
            continue
        if mpos is None:
            contrib[link.key] = 0.0
            zero_reason[link.key] = "master closed"
            continue
        if is_flip(link, mpos):
            sizing = flip_sizing(st, view, mpos, link, spec)
            if sizing is None:
                frozen = True  # cannot size the new side yet: hold the symbol as it is
                continue
            if isinstance(sizing, Skip):
                contrib[link.key] = 0.0
                zero_reason[link.key] = f"{FLIPPED}; new side not copied: {sizing.reason}"
                continue
            ratio, volume, sized = sizing
            new = flipped_link(link, mpos, ratio, 0.0 if isinstance(volume, Skip) else volume, link.status)
            flipped[link.key] = new
            flips.append(flip_action(link, new, sized, mpos))
            link = new
        contrib[link.key] = _signed(link.direction, raw_share(st, link, mpos.volume))
    return contrib, zero_reason, frozen, flipped, flips


def raw_share(st: PlanState, link: Link, master_volume: float) -> float:
    """The link's unrounded slave volume for ``master_volume`` (lots): its lot ratio times the
    master volume (the opening volume when no ratio is known), capped at ``max_lot``."""
    ratio = link_ratio(link)
    raw = ratio * master_volume if ratio > 0 else link.slave_volume
    return min(raw, st.cfg.max_lot) if st.cfg.max_lot is not None else raw


def net_target(total: float, spec: SymbolSpec) -> float:
    """The signed net volume a netting slave should hold for the signed sum ``total`` of its
    copies' sized volumes: |total| capped at ``volume_max``, rounded DOWN to ``volume_step``
    (toward zero, never more exposure than the masters'), 0 under ``volume_min``."""
    mag = abs(total)
    if spec.volume_max > 0:
        mag = min(mag, spec.volume_max)
    mag = floor_to_step(mag, spec.volume_step)
    if mag <= EPS or mag < spec.volume_min - spec.volume_step * STEP_EPS:
        return 0.0
    return mag if total > 0 else -mag


def new_netting_copy(st: PlanState, name: str, view: MasterView, mpos: Position) -> Open | Adopt | Skip | None:
    """A new master position on a netting slave: trade only the change it makes to the
    symbol's net target (Σ sized copies, rounded once). Returns an ``Open`` for that change,
    an ``Adopt`` registering the copy when the rounded net does not move (it still counts,
    e.g. three 0.005-lot shares make 0.01), a Skip, or None (wait)."""
    market = market_for(st, mpos.symbol, None)
    if market is None or isinstance(market, Skip):
        return market
    symbol, spec, _ = market
    if symbol in st.net_hold:
        return None  # a vanished pending copy's fate on this symbol is not known yet: wait
    sized = size(st, view, mpos, spec)
    if sized is None or isinstance(sized, Skip):
        return sized
    if not mpos.volume > 0 or not sized.volume > 0:
        return Skip(f"volume {sized.volume:g} is not positive for {symbol}")
    side = opposite(mpos.side) if st.cfg.reverse else mpos.side
    ratio = sized.volume / mpos.volume
    share = _signed(side, min(sized.volume, st.cfg.max_lot) if st.cfg.max_lot is not None else sized.volume)
    raw, frozen = _symbol_raw(st, symbol, spec)
    raw += st.net_new.get(symbol, 0.0)
    target = net_target(raw + share, spec)
    # after this pass's corrections on the symbol; on a frozen symbol only this copy's own step
    base = net_target(raw, spec) if frozen else st.net_expected.get(symbol, _held(st, symbol))
    delta = floor_to_step(abs(target - base), spec.volume_step) if _sign(target - base) == _sign(share) else 0.0
    step = spec.volume_step if spec.volume_step > 0 else spec.volume_min
    result = open_for(st, name, view, mpos, None, "new", volume=delta if delta > EPS else step)  # all the checks
    if not isinstance(result, Open):
        return result
    st.net_new[symbol] = st.net_new.get(symbol, 0.0) + share
    fields = sizing_fields(sized, mpos)
    if delta >= spec.volume_min - EPS:
        st.net_expected[symbol] = base + _signed(side, delta)
        return replace(result, lot_ratio=ratio, **fields)
    # the net does not move by a tradable volume (under one step, or under the minimum deal)
    pos = next((p for p in st.ctx.slave_positions if p.symbol == symbol), None)
    return Adopt(name, mpos.identifier, pos.identifier if pos is not None else 0, 0.0, 0.0, KIND_POSITION, symbol,
                 mpos.symbol, side, mpos.side, mpos.volume, make_tag(name, mpos.identifier), lot_ratio=ratio)


def _symbol_raw(st: PlanState, symbol: str, spec: SymbolSpec) -> tuple[float, bool]:
    """(Σ raw signed shares of the live copies on ``symbol``, frozen?)"""
    links = [lk for lk in st.links.values() if lk.live and lk.kind == KIND_POSITION and lk.symbol == symbol]
    if not links:
        return 0.0, False
    contrib, _, frozen, _, _ = _contributions(st, links, spec)
    return sum(contrib.values()), frozen


def _plan_symbol(st: PlanState, symbol: str, links: list[Link]) -> None:
    positions = [p for p in st.ctx.slave_positions if p.symbol == symbol]
    st.claimed_pos.update(p.identifier for p in positions)  # the netting pass owns these, not the orphan pass
    pos: Position | None = positions[0] if positions else None
    kept = _drop_closed_on_slave(st, links, pos)
    if kept is None:
        return  # a vanished position's deals are not read yet: decide nothing on S this pass
    links = kept
    owned_ids = {lk.slave_ticket for lk in links if lk.slave_ticket}
    if pos is not None and parse_tag(pos.comment) is None and pos.identifier not in owned_ids:
        for link in links:  # our copy was replaced by a manual trade: never trade into it
            if link.status == OPEN:
                st.out.append(MarkClosed(link.master_name, link.master_ticket, "closed on slave (symbol now holds a manual position)"))
            else:
                skip(st, link.master_name, link.master_ticket, f"slave holds a manual netting position on {symbol}", status=FAILED,
                        master_symbol=link.master_symbol, symbol=symbol, direction=link.direction, master_volume=link.master_volume)
        return
    spec = st.ctx.specs.get(symbol)
    if spec is None:
        return
    contrib, zero_reason, frozen, flipped, flips = _contributions(st, links, spec)
    if frozen:
        return  # wait until every master with a copy on this symbol is fresh again
    st.out.extend(flips)
    live = {lk.key: flipped.get(lk.key, lk) for lk in links}
    actual = _signed(pos.side, pos.volume) if pos is not None else 0.0
    tol = spec.volume_step / 2 if spec.volume_step > 0 else EPS
    while True:
        desired = net_target(sum(contrib.values()), spec)
        diff = desired - actual
        if abs(diff) < tol:
            _settled(st, pos, live, contrib, zero_reason, spec)
            return
        if not live:
            return  # every copy on S was just dropped: what is left is the orphan pass's business
        if pos is not None and _sign(desired) != -_sign(actual) and abs(desired) < abs(actual):  # reduce, possibly to flat
            vol = pos.volume if abs(desired) < tol else floor_to_step(abs(diff) + tol, spec.volume_step)
            if vol >= spec.volume_min - EPS:
                who, shrank_to = _culprit(st, live, zero_reason)
                if who.key in zero_reason:
                    reason = "master closed" if abs(desired) < tol else zero_reason[who.key]
                elif shrank_to is not None:
                    reason = f"net target reduced (master partial close to {shrank_to:g})"
                else:
                    reason = "net target reduced (sizing or volume rounding; no master position was reduced)"
                st.out.append(_close(st, who, pos, vol, reason, spec, zero_reason, master_volume_now=shrank_to or 0.0))
                if vol < pos.volume - EPS:
                    _sync_levels(st, pos, live, contrib, spec)
            return
        if pos is not None and _sign(desired) == -_sign(actual):  # direction change: flatten first, then open the new side
            who, _ = _culprit(st, live, zero_reason)
            reason = FLIPPED if who.key in flipped else "net direction changed"
            st.out.append(_close(st, who, pos, pos.volume, reason, spec, zero_reason))
            actual = 0.0
            pos = None  # the next deal opens a new position
        if st.ctx.paused:
            return
        want = _sign(desired - actual)
        owner, purpose = _grow_owner(st, live, contrib, want)
        if owner is None:
            return
        link = owner
        if purpose == "retry" and link.attempts >= st.ctx.max_attempts:
            skip(st, link.master_name, link.master_ticket, f"gave up after {link.attempts} attempts", status=FAILED,
                    master_symbol=link.master_symbol, symbol=symbol, direction=link.direction, master_volume=link.master_volume)
            contrib.pop(link.key)
            live.pop(link.key)
            continue
        volume = floor_to_step(abs(desired - actual) + tol, spec.volume_step)
        if volume < spec.volume_min - EPS:
            return
        view = st.ctx.masters[link.master_name]
        mpos = _master_position(st, link)
        result = open_for(st, link.master_name, view, mpos, link, purpose, volume=volume)
        if isinstance(result, Open):
            if sum(1 for c in contrib.values() if abs(c) > EPS) > 1:  # one SL/TP cannot serve several copies
                result = _replace_sltp(result, pos)
            emit_open(st, result)
            if pos is not None:  # added to the existing position: set its levels explicitly (runs after the deal)
                _sync_levels(st, pos, live, contrib, spec)
            return
        if result is None or purpose == "add":
            return  # no quote yet / an add outside slippage: try again next pass
        if purpose == "retry":
            skip(st, link.master_name, link.master_ticket, result.reason, master_symbol=link.master_symbol, symbol=symbol,
                    direction=link.direction, master_volume=link.master_volume)
        elif abs(actual) > EPS:
            return  # part of the copies' volume is still held: accept the shortfall, keep managing it
        else:  # flat: its share was netted away by our own deals and the market has left its entry
            st.out.append(MarkClosed(link.master_name, link.master_ticket,
                                     f"netted away on slave; not re-opened ({result.reason})", "own"))
        contrib.pop(link.key)
        live.pop(link.key)


def _drop_closed_on_slave(st: PlanState, links: list[Link], pos: Position | None) -> list[Link] | None:
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
        closure = closure_for(st, link)
        if closure is False:
            return None
        if closure is not None and closure.final:
            st.out.append(MarkClosed(link.master_name, link.master_ticket, closure.describe(), closure.cause, closure.deal))
            continue
        kept.append(link)
    return kept


def _grow_owner(st: PlanState, live: dict[LinkKey, Link], contrib: dict[LinkKey, float], want: int) -> tuple[Link | None, str]:
    """Which copy an increase belongs to, and why: a PENDING copy not made yet ("retry"), a
    master whose volume grew ("add"), else a copy whose share is missing ("restore": netted
    away by a flip, or closed on the slave) - checked against the master's entry price."""
    candidates = [lk for lk in live.values() if _sign(contrib.get(lk.key, 0.0)) == want]
    for link in candidates:
        if link.status == PENDING:
            return link, "retry"
    for link in candidates:
        mpos = _master_position(st, link)
        if mpos.volume > link.master_volume + EPS:
            return link, "add"
    return (candidates[0], "restore") if candidates else (None, "")


def _master_position(st: PlanState, link: Link) -> Position:
    """The master position a live share follows; for a pending copy that filled before the
    master's order (pending_fills), that order seen as the position it will open (MT5: the
    identifier is the order's ticket), entry = the order's price."""
    state = st.ctx.masters[link.master_name].state
    mpos = state.positions.get(link.master_ticket)
    if mpos is not None:
        return mpos
    o = state.orders[link.master_ticket]
    return Position(ticket=o.ticket, identifier=o.ticket, symbol=o.symbol, side=o.side, volume=o.volume, price_open=o.price_open,
                    sl=o.sl, tp=o.tp, contract_size=o.contract_size)


def _replace_sltp(action: Open, pos: Position | None) -> Open:
    return replace(action, sl=pos.sl if pos else 0.0, tp=pos.tp if pos else 0.0, stops_note="")


def _culprit(st: PlanState, live: dict[LinkKey, Link], zero_reason: dict[LinkKey, str]) -> tuple[Link, float | None]:
    """The copy a reduction is booked to, and the master volume it follows: one whose master
    closed (None), else the one whose master position shrank most (in slave lots) since the
    last reduction booked to it (``Link.reduced_to``, else since the copy was opened), else
    the first (None: no master position was reduced; the net target moved by sizing or
    rounding). So every partial-close event names the master position it acts for."""
    for key, link in live.items():
        if key in zero_reason:
            return link, None
    best: tuple[float, Link, float] | None = None
    for link in live.values():
        mpos = st.ctx.masters[link.master_name].state.positions.get(link.master_ticket)
        ref = link.reduced_to if link.reduced_to > EPS else link.master_volume
        if mpos is not None and mpos.volume < ref - EPS:
            drop = (ref - mpos.volume) * link_ratio(link)
            if best is None or drop > best[0] + EPS:
                best = (drop, link, mpos.volume)
    if best is not None:
        return best[1], best[2]
    return next(iter(live.values())), None


def _close(st: PlanState, link: Link, pos: Position, volume: float, reason: str, spec: SymbolSpec, zero_reason: dict[LinkKey, str],
           master_volume_now: float = 0.0) -> Close:
    """A deal on the net position booked to ``link``; it ends the link only when that
    link's master position is gone (else the link lives on, fault 9 (b))."""
    return Close(link.master_name, link.master_ticket, pos.ticket, pos.symbol, pos.side, volume, pos.volume, reason,
                 filling(spec), st.cfg.slippage_tolerance, st.cfg.magic, make_tag(*link.key),
                 ends_link=link.key in zero_reason, master_volume_now=master_volume_now)


def _settled(st: PlanState, pos: Position | None, live: dict[LinkKey, Link], contrib: dict[LinkKey, float],
             zero_reason: dict[LinkKey, str], spec: SymbolSpec) -> None:
    """Net position matches: settle the bookkeeping and keep SL/TP in line when one copy owns it."""
    for key, link in live.items():
        if key in zero_reason:
            st.out.append(MarkClosed(link.master_name, link.master_ticket, zero_reason[key]))
        elif link.status == OPEN and pos is not None and abs(contrib[key]) > EPS and link.slave_ticket != pos.identifier:
            st.out.append(Rebind(link.master_name, link.master_ticket, pos.identifier))  # its share lives in pos now
        elif link.status == PENDING:
            st.out.append(Adopt(link.master_name, link.master_ticket, pos.identifier if pos is not None else 0, abs(contrib[key]),
                                pos.price_open if pos is not None else 0.0,
                                KIND_POSITION, link.symbol, link.master_symbol, link.direction, link.master_side,
                                link.master_volume, link.tag or make_tag(*key)))
    _sync_levels(st, pos, live, contrib, spec)


def _sync_levels(st: PlanState, pos: Position | None, live: dict[LinkKey, Link], contrib: dict[LinkKey, float],
                 spec: SymbolSpec) -> None:
    """SL/TP of the net position follow the master only when exactly one copy owns it."""
    owners = [k for k, c in contrib.items() if abs(c) > EPS]
    if pos is None or len(owners) != 1 or not st.cfg.copy_sltp or owners[0] not in live:
        return
    link = live[owners[0]]
    view = st.ctx.masters[link.master_name]
    if not view.fresh or link.master_ticket not in view.state.positions:
        return  # (a pending copy filled before the master's order: levels follow once it fills)
    sync_sltp(st, link, view.state.positions[link.master_ticket], pos, spec)
