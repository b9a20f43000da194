"""Reasons from history: why a follower position went away, read from its deals.

A position that vanished from ``positions_get()`` left deals behind: the terminal records on
every deal who made it (``DEAL_REASON_*``), with which magic number and comment. The slave
node reads ``history_deals_get(position=identifier)`` once for a position that vanished and
hands the deals (as ``DealRecord``) to ``classify_closure``; the planner then knows, on
hedging and netting accounts alike, whether the copy was

* stopped by the broker's server: SL (``DEAL_REASON_SL``), TP (``_TP``), stop out (``_SO``);
* closed by hand (``_CLIENT`` desktop terminal, ``_MOBILE``, ``_WEB``) or by another program
  (``_EXPERT`` with a magic number that is not the copier's, or without the copier's tag);
* closed by the broker for another reason (``_ROLLOVER``, ``_VMARGIN``, ``_SPLIT``);
* closed by the risk guardian (``monitoring/``): ``_EXPERT`` with the copier's magic and the
  guardian's comment (``copyhub risk flatten`` / ``copyhub risk locked``, ``risk_close_comment``),
  or a position the running guardian says it closed (``risk_notes``: the comment may have
  been rewritten by the broker). Cause ``risk``: final, like a close by hand;
* closed by the copier itself (``_EXPERT`` with the copier's magic AND a copyhub comment
  tag, ``copier/tags.py``): a netting effect (offsetting copies, a net direction change) or
  a close whose reply was lost.

Only the last kind may be restored (re-opened); every other closure is final while that
master position lives. Values are MT5's (reference §4: DEAL_REASON_ CLIENT=0, MOBILE=1,
WEB=2, EXPERT=3, SL=4, TP=5, SO=6, ROLLOVER=7, VMARGIN=8, SPLIT=9; DEAL_ENTRY_ IN=0, OUT=1,
INOUT=2, OUT_BY=3). Pure: no I/O.
"""
from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass

from copier.tags import parse_tag

DEAL_REASON_CLIENT, DEAL_REASON_MOBILE, DEAL_REASON_WEB, DEAL_REASON_EXPERT = 0, 1, 2, 3
DEAL_REASON_SL, DEAL_REASON_TP, DEAL_REASON_SO = 4, 5, 6
DEAL_REASON_ROLLOVER, DEAL_REASON_VMARGIN, DEAL_REASON_SPLIT = 7, 8, 9
DEAL_ENTRY_IN, DEAL_ENTRY_OUT, DEAL_ENTRY_INOUT, DEAL_ENTRY_OUT_BY = 0, 1, 2, 3
DEAL_TYPE_BUY, DEAL_TYPE_SELL = 0, 1
REASON_NAMES = {0: "CLIENT", 1: "MOBILE", 2: "WEB", 3: "EXPERT", 4: "SL", 5: "TP", 6: "SO", 7: "ROLLOVER",
                8: "VMARGIN", 9: "SPLIT"}

# causes
SL, TP, SO, MANUAL, BROKER, OWN, UNKNOWN = "sl", "tp", "so", "manual", "broker", "own", "unknown"
RISK = "risk"  # closed by the risk guardian (flatten, or kept flat while locked): final
CAUSES = (SL, TP, SO, MANUAL, BROKER, OWN, RISK, UNKNOWN)
# The comment on the guardian's closes: "copyhub risk <why>" (why: flatten | locked), at most
# 20 ASCII chars, under every MT5 build's comment limit (27).
RISK_COMMENT_PREFIX = "copyhub risk"


def risk_close_comment(why: str) -> str:
    """The order comment of a close the guardian sends (``why``: ``flatten`` or ``locked``)."""
    return f"{RISK_COMMENT_PREFIX} {why}"[:27]


def risk_why(comment: str | None) -> str | None:
    """The guardian's ``why`` from a deal comment it wrote (``""`` when not readable), or
    None when the comment is not the guardian's."""
    if not comment or not comment.startswith(RISK_COMMENT_PREFIX):
        return None
    rest = comment[len(RISK_COMMENT_PREFIX):].strip().split()
    return rest[0] if rest and rest[0] != "close" else ""
_CLOSING_ENTRIES = (DEAL_ENTRY_OUT, DEAL_ENTRY_INOUT, DEAL_ENTRY_OUT_BY)
_VOL_EPS = 1e-8


@dataclass(frozen=True, slots=True)
class DealRecord:
    """The fields of an MT5 TradeDeal that say who made it (times in the broker's server ms)."""

    ticket: int
    position_id: int
    entry: int  # DEAL_ENTRY_*
    reason: int  # DEAL_REASON_*
    volume: float = 0.0
    type: int = DEAL_TYPE_BUY  # DEAL_TYPE_*
    magic: int = 0
    comment: str = ""
    price: float = 0.0
    time_msc: int = 0
    order: int = 0
    symbol: str = ""


@dataclass(frozen=True, slots=True)
class Closure:
    """Why position ``position_id`` is gone: ``cause`` is one of CAUSES.

    ``deal`` / ``deal_reason`` / ``magic`` / ``comment`` / ``price`` describe the deal that
    closed it (the last closing deal); 0 / None / "" when no closing deal was found.
    """

    position_id: int
    cause: str
    deal: int = 0
    deal_reason: int | None = None
    magic: int = 0
    comment: str = ""
    price: float = 0.0
    time_msc: int = 0
    # RISK: what the guardian closed it for, e.g. "flatten (daily_loss 98.9%)"
    detail: str = ""

    @property
    def own(self) -> bool:
        """Closed by the copier's own deal: the only closure that may be restored."""
        return self.cause == OWN

    @property
    def final(self) -> bool:
        """Not the copier's doing: never re-opened while the master position lives."""
        return self.cause != OWN

    def describe(self) -> str:
        """The link's ``close_reason`` for a copy that this closure ended on the slave."""
        if self.cause == SL:
            return "closed by SL on slave"
        if self.cause == TP:
            return "closed by TP on slave"
        if self.cause == SO:
            return "stopped out on slave"
        if self.cause == MANUAL:
            if self.deal_reason == DEAL_REASON_CLIENT:
                return "closed by hand on slave"
            if self.deal_reason in (DEAL_REASON_MOBILE, DEAL_REASON_WEB):
                return f"closed by hand on slave ({REASON_NAMES[self.deal_reason].lower()})"
            return f"closed on slave by another expert or script (magic {self.magic})"
        if self.cause == BROKER:
            return f"closed by the broker on slave ({REASON_NAMES.get(self.deal_reason or 0, self.deal_reason)})"
        if self.cause == OWN:
            return "closed by copyhub"
        if self.cause == RISK:
            return f"closed by the guardian: {self.detail}" if self.detail else "closed by the guardian"
        return "closed on slave (no closing deal in its history)"


def is_own_deal(deal: DealRecord, magic: int) -> bool:
    """A deal the copier made: EXPERT, the copier's magic number and a copyhub comment tag.

    Both marks are required: another EA sharing the magic number, or a script sending the
    copier's tag, is not the copier (and is never restored for).
    """
    return deal.reason == DEAL_REASON_EXPERT and deal.magic == magic and parse_tag(deal.comment) is not None


def is_risk_deal(deal: DealRecord, magic: int) -> bool:
    """A close the risk guardian sent: EXPERT, the copier's magic and the guardian's comment."""
    return deal.reason == DEAL_REASON_EXPERT and deal.magic == magic and risk_why(deal.comment) is not None


def cause_of(deal: DealRecord, magic: int, *, guardian_closed: bool = False) -> str:
    """The cause a single closing deal stands for (see the module docstring).
    ``guardian_closed``: the running guardian says it closed this deal's position."""
    reason = deal.reason
    if reason == DEAL_REASON_SL:
        return SL
    if reason == DEAL_REASON_TP:
        return TP
    if reason == DEAL_REASON_SO:
        return SO
    if reason in (DEAL_REASON_CLIENT, DEAL_REASON_MOBILE, DEAL_REASON_WEB):
        return MANUAL
    if reason == DEAL_REASON_EXPERT:
        if is_risk_deal(deal, magic) or (guardian_closed and deal.magic == magic and not is_own_deal(deal, magic)):
            return RISK
        return OWN if is_own_deal(deal, magic) else MANUAL
    return BROKER  # ROLLOVER, VMARGIN, SPLIT, or a value this table does not know


def classify_closure(deals: Iterable[DealRecord], *, position_id: int, magic: int,
                     risk_notes: Mapping[int, str] | None = None, risk_context: str = "") -> Closure:
    """Why ``position_id`` is gone, from its deals (``history_deals_get(position=...)``).

    The cause is that of the LAST deal that took volume out of the position (OUT, OUT_BY, or
    the closing half of an INOUT), ordered by time then ticket: a copy partly closed by the
    copier and then stopped by its SL is "closed by SL". No closing deal, or deals that
    still leave volume open (the history lags the position list), give UNKNOWN.
    ``magic``: the copier's magic number on this account (``AccountConfig.magic``).

    The guardian's closes (cause RISK) carry ``detail``: from ``risk_notes`` (position
    identifier -> what the running guardian closed it for, e.g. ``"flatten (daily_loss
    98.9%)"``), else the ``why`` of the deal's comment followed by ``risk_context`` (what the
    guardian's lock says, e.g. ``"daily_loss 98.9%"``: a node restarted since the close).
    """
    mine = sorted((d for d in deals if int(d.position_id) == int(position_id)), key=lambda d: (d.time_msc, d.ticket))
    net = 0.0
    last: DealRecord | None = None
    for d in mine:
        signed = d.volume if d.type == DEAL_TYPE_BUY else -d.volume
        if d.entry in _CLOSING_ENTRIES:
            last = d
        net += signed
    if last is None or abs(net) > _VOL_EPS:
        return Closure(position_id, UNKNOWN)
    note = (risk_notes or {}).get(int(position_id))
    cause = cause_of(last, magic, guardian_closed=note is not None)
    detail = ""
    if cause == RISK:
        if note:
            detail = note
        else:
            why = risk_why(last.comment) or ""
            detail = f"{why} ({risk_context})" if why and risk_context else (why or risk_context)
    return Closure(position_id, cause, deal=last.ticket, deal_reason=last.reason, magic=last.magic,
                   comment=last.comment, price=last.price, time_msc=last.time_msc, detail=detail)
