"""Plain value types shared by the copier core, the bus schema and the nodes.

They carry only what copying needs, so the core never touches MT5 namedtuples:
nodes convert terminal records at the edge (``position_from_mt5`` and friends live
in ``terminals/convert.py``), and the bus serialises these types with ``to_dict``/``from_dict``.
"""
from __future__ import annotations

from collections.abc import Mapping
from dataclasses import asdict, dataclass, field, fields
from typing import TYPE_CHECKING, Any, Literal, TypeVar

if TYPE_CHECKING:
    from _typeshed import DataclassInstance

    D = TypeVar("D", bound=DataclassInstance)

Side = Literal["BUY", "SELL"]
SIDES: tuple[str, ...] = ("BUY", "SELL")
TIME_TYPES: tuple[str, ...] = ("GTC", "DAY", "SPECIFIED", "SPECIFIED_DAY")  # ORDER_TIME_* 0..3
PENDING_TYPES: tuple[str, ...] = (
    "BUY_LIMIT",
    "SELL_LIMIT",
    "BUY_STOP",
    "SELL_STOP",
    "BUY_STOP_LIMIT",
    "SELL_STOP_LIMIT",
)


def opposite(side: str) -> str:
    """The other side of a trade: what closes a BUY is a SELL."""
    return "SELL" if side == "BUY" else "BUY"


def _from_dict(cls: type[D], data: Mapping[str, Any]) -> D:
    """Build a dataclass from a dict, ignoring unknown keys (forward compatible)."""
    names = {f.name for f in fields(cls)}
    return cls(**{k: v for k, v in data.items() if k in names})


@dataclass(frozen=True, slots=True)
class Position:
    """An open position, master or slave side.

    ``identifier`` is MT5's stable position id (ticket of the opening order);
    ``ticket`` may change on a netting reversal, so links key on ``identifier``.
    """

    ticket: int
    identifier: int
    symbol: str
    side: str  # "BUY" | "SELL"
    volume: float
    price_open: float
    sl: float = 0.0
    tp: float = 0.0
    time_msc: int = 0
    time_update_msc: int = 0
    magic: int = 0
    comment: str = ""
    price_current: float = 0.0
    profit: float = 0.0
    # units of the underlying per lot at the MASTER's broker (SYMBOL_TRADE_CONTRACT_SIZE),
    # published with every master position (bus v2); 0 = unknown (slave positions, or the
    # master could not read it: followers then wait instead of sizing from raw lots)
    contract_size: float = 0.0

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Position:
        return _from_dict(cls, data)


@dataclass(frozen=True, slots=True)
class PendingOrder:
    """A pending (limit/stop) order. ``type`` is one of ``PENDING_TYPES``."""

    ticket: int
    symbol: str
    type: str
    volume: float
    price_open: float
    price_stoplimit: float = 0.0
    sl: float = 0.0
    tp: float = 0.0
    time_setup_msc: int = 0
    magic: int = 0
    comment: str = ""
    contract_size: float = 0.0  # as Position.contract_size
    # MT5 ORDER_TIME_* name without the prefix: "GTC", "DAY", "SPECIFIED", "SPECIFIED_DAY"
    type_time: str = "GTC"
    # the instant the order expires, UTC epoch ms (0 = never, GTC). Master orders on the bus
    # (v3) carry UTC; a slave's own order records keep its server time (offset 0), like
    # every other slave-side time.
    expiration_ms: int = 0

    @property
    def side(self) -> str:
        return "BUY" if self.type.startswith("BUY") else "SELL"

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> PendingOrder:
        return _from_dict(cls, data)


@dataclass(frozen=True, slots=True)
class SymbolSpec:
    """What sizing, normalisation and SL/TP translation need to know of a symbol."""

    name: str
    digits: int
    point: float
    tick_size: float
    tick_value: float
    contract_size: float
    volume_min: float
    volume_step: float
    volume_max: float
    filling_mode: int = 2  # bitmask: 1 FOK, 2 IOC, 4 BOC
    stops_level: int = 0  # points
    freeze_level: int = 0  # points
    trade_mode: int = 4  # SYMBOL_TRADE_MODE_FULL
    trade_exemode: int = 2  # SYMBOL_TRADE_EXECUTION_MARKET; instant/request accept FOK only
    expiration_mode: int = 15  # SYMBOL_EXPIRATION_MODE bits: GTC 1, DAY 2, SPECIFIED 4, SPECIFIED_DAY 8

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> SymbolSpec:
        return _from_dict(cls, data)


@dataclass(frozen=True, slots=True)
class Quote:
    bid: float
    ask: float
    time_msc: int = 0


@dataclass(frozen=True, slots=True)
class AccountMetrics:
    """An account's money at one instant, as the terminal reports it."""

    login: int
    balance: float
    equity: float
    margin: float
    margin_free: float
    profit: float
    currency: str = "USD"
    leverage: int = 100
    server_time_msc: int = 0
    credit: float = 0.0  # the broker's credit, included in ``equity`` (MT5's AccountInfo.credit)

    @property
    def margin_level(self) -> float | None:
        """``equity / margin * 100``; None when no margin is used."""
        return self.equity / self.margin * 100.0 if self.margin > 0 else None

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> AccountMetrics:
        return _from_dict(cls, data)


@dataclass(frozen=True, slots=True)
class MasterState:
    """A slave's mirror of one master: positions by identifier, pending orders by ticket.

    ``fresh`` is False until a snapshot has been applied and while the mirror is
    stale (no snapshot/delta within the freshness window). A planner must never
    close anything on a state that is not fresh.
    """

    master: str
    seq: int
    positions: dict[int, Position] = field(default_factory=dict)
    orders: dict[int, PendingOrder] = field(default_factory=dict)
    fresh: bool = False
    updated_ms: int = 0
