"""What one planning pass works on: the input (``PlanContext``, frozen) and the pass's own
mutable state (``PlanState``: the actions so far, the indexes of the slave's positions and
orders by tag, what this pass has claimed and opened).

The planner is a set of plain functions over a ``PlanState`` (``copier/planner.py`` and the
``planner_*`` modules it calls); this module is the bottom of that stack and imports none
of them. The lookups here only read: which slave positions and orders belong to a link,
which master state is fresh, why a copy's position went away.
"""
from __future__ import annotations

from collections.abc import Container, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Literal

from copier.accounts import AccountConfig
from copier.actions import Action
from copier.currency import Conversion
from copier.decisions import Skip
from copier.links import KIND_POSITION, Link
from copier.models import (
    AccountMetrics,
    MasterState,
    PendingOrder,
    Position,
    Quote,
    SymbolSpec,
)
from copier.order_fates import OrderFate
from copier.reasons import Closure
from copier.tags import master_hash, parse_tag

LinkKey = tuple[str, int]  # (master name, master ticket): a link's key


@dataclass(frozen=True)
class MasterView:
    """What a slave knows of one master. ``state.positions`` are keyed by identifier."""

    state: MasterState
    metrics: AccountMetrics | None = None
    first_sync: bool = False  # no follow record yet: positions present now existed before following

    @property
    def fresh(self) -> bool:
        return bool(self.state.fresh)


@dataclass(frozen=True)
class PlanContext:
    """Everything one reconcile pass decides on (the slave node builds it from its reads)."""

    slave: AccountConfig
    masters: Mapping[str, MasterView]
    links: Sequence[Link]
    slave_positions: Sequence[Position]
    slave_orders: Sequence[PendingOrder] = ()
    specs: Mapping[str, SymbolSpec] = field(default_factory=dict)
    quotes: Mapping[str, Quote] = field(default_factory=dict)
    slave_metrics: AccountMetrics | None = None
    slave_margin_mode: str = "hedging"  # "hedging" | "netting"
    paused: bool = False
    # who paused, for the skip records: "" = an operator's pause or the kill switch ("account
    # paused when ..."); the guardian's reason otherwise ("risk: paused by the guardian (...)")
    paused_reason: str = ""
    max_attempts: int = 3
    available_symbols: Container[str] | None = None  # the slave's full symbol list, if known
    # slave deposit currency -> a master's deposit currency, keyed by the master's currency
    # (ratio sizing across currencies); a Skip says why none exists, absent = not known yet
    conversions: Mapping[str, Conversion | Skip] = field(default_factory=dict)
    # the slave account's ACCOUNT_FIFO_CLOSE (hedging only): closes go oldest first, see planner_fifo
    slave_fifo_close: bool = False
    # the slave's server clock minus UTC, ms (None = not estimated yet): pending-order expiry
    slave_server_offset_ms: int | None = None
    now_ms: int = 0  # UTC ms of this pass (0 = unknown: no "already expired" check)
    # reasons from history: slave position identifier -> why it is gone (copier/reasons.py),
    # for every OPEN link's ``slave_ticket`` that is no longer among ``slave_positions``.
    # A vanished position without an entry here is not decided yet: the planner waits.
    closures: Mapping[int, Closure] = field(default_factory=dict)
    # netting: slave order ticket -> what became of it (copier/order_fates.py), for every
    # OPEN order link's ``slave_ticket`` that is no longer among ``slave_orders`` and opened no
    # position of its own. A vanished copy without an entry here holds its symbol (wait).
    order_fates: Mapping[int, OrderFate] = field(default_factory=dict)
    # a pass triggered by a master change (hedging, no FIFO): the link keys (master, ticket)
    # the change touched; the other position links are left to the timer's full pass (None:
    # every link, as a full pass does). Hedging links are planned one by one, so a touched
    # link is decided as a full pass decides it; what a focused pass leaves out (a copy whose
    # slave position an SL closed, a link whose master is unchanged) the next full pass does,
    # within SLAVE_RECONCILE_INTERVAL_MS. New master positions are planned in every pass.
    focus_links: frozenset[tuple[str, int]] | None = None


class PlanState:
    """One pass's working state: ``out`` collects the actions (unsorted), the indexes find
    a link's slave positions and orders by tag or ticket, the ``claimed_*`` sets keep what a
    live link owns away from the orphan pass. Built from the context, then only the planner
    functions of the same pass touch it; never shared between passes."""

    def __init__(self, ctx: PlanContext) -> None:
        self.ctx = ctx
        self.cfg: AccountConfig = ctx.slave
        self.out: list[Action] = []
        self.opened: set[LinkKey] = set()  # one Open per master ticket per plan
        self.net_new: dict[str, float] = {}  # netting: signed raw shares of this plan's new copies per symbol
        self.net_expected: dict[str, float] = {}  # netting: signed net per symbol once this plan's deals are done
        self.net_hold: set[str] = set()  # netting: symbols where a vanished pending copy's fate is not known yet
        self.netting = ctx.slave_margin_mode == "netting"
        self.links: dict[LinkKey, Link] = {}
        for link in ctx.links:
            self.links.setdefault(link.key, link)
        names = set(ctx.masters) | {lk.master_name for lk in ctx.links}
        self.by_hash = {master_hash(n): n for n in names}
        self.pos_by_tag: dict[LinkKey, list[Position]] = {}
        self.pos_by_id: dict[int, Position] = {}
        for p in ctx.slave_positions:
            self.pos_by_id[p.identifier] = p
            key = self.tag_key(p.comment)
            if key:
                self.pos_by_tag.setdefault(key, []).append(p)
        self.ord_by_tag: dict[LinkKey, list[PendingOrder]] = {}
        self.ord_by_ticket = {o.ticket: o for o in ctx.slave_orders}
        for o in ctx.slave_orders:
            key = self.tag_key(o.comment)
            if key:
                self.ord_by_tag.setdefault(key, []).append(o)
        self.claimed_pos: set[int] = set()
        self.claimed_ord: set[int] = set()
        self.open_count = sum(1 for lk in self.links.values() if lk.live and lk.kind == KIND_POSITION)

    def tag_key(self, comment: str) -> LinkKey | None:
        """The link key a copyhub comment tag names, if its master is one this pass knows."""
        parsed = parse_tag(comment)
        if parsed is None or parsed[0] not in self.by_hash:
            return None
        return (self.by_hash[parsed[0]], parsed[1])


def fresh_view(st: PlanState, name: str) -> MasterView | None:
    """The master's view when its state is fresh, else None (rule 1: decide nothing on it)."""
    view = st.ctx.masters.get(name)
    return view if view is not None and view.fresh else None


def master_has(view: MasterView, ticket: int) -> bool:
    """The master holds ``ticket`` as a position or as a pending order."""
    return ticket in view.state.positions or ticket in view.state.orders


def link_positions(st: PlanState, link: Link) -> list[Position]:
    """The slave positions of ``link`` (by tag, or its ``slave_ticket``), oldest first."""
    found = {p.identifier: p for p in st.pos_by_tag.get(link.key, [])}
    if link.slave_ticket and link.slave_ticket in st.pos_by_id:
        found.setdefault(link.slave_ticket, st.pos_by_id[link.slave_ticket])
    return sorted(found.values(), key=lambda p: (p.time_msc, p.identifier))


def link_orders(st: PlanState, link: Link) -> list[PendingOrder]:
    """The slave pending orders of ``link`` (by tag, or its ``slave_ticket``), by ticket."""
    found = {o.ticket: o for o in st.ord_by_tag.get(link.key, [])}
    if link.slave_ticket and link.slave_ticket in st.ord_by_ticket:
        found.setdefault(link.slave_ticket, st.ord_by_ticket[link.slave_ticket])
    return sorted(found.values(), key=lambda o: o.ticket)


def closure_for(st: PlanState, link: Link) -> Closure | None | Literal[False]:
    """Why the link's slave position (``slave_ticket``) is gone: a Closure; None when the
    link names no position (a seed-era row: nothing to read); False = not known yet (wait)."""
    if not link.slave_ticket:
        return None
    return closure_of(st, link.slave_ticket)


def closure_of(st: PlanState, slave_ticket: int) -> Closure | Literal[False]:
    """Why the slave position ``slave_ticket`` (an identifier) is gone: a Closure, or False
    while its deals are not read yet (wait)."""
    found = st.ctx.closures.get(slave_ticket)
    return False if found is None else found
