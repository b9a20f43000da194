"""Deals from the account history, as the risk rules and the daily report need them.

A deal's ``time_msc`` is broker SERVER time (wall clock written as if UTC); convert
it with ``ServerClock`` before comparing it with a reset instant. ``type`` is kept as
the MT5 name without the ``DEAL_TYPE_`` prefix; the int code is accepted too.
"""
from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import asdict, dataclass, fields
from typing import Any

# DEAL_TYPE_* codes (see reference/mt5-python-api.md, constants table).
DEAL_TYPE_NAMES: dict[int, str] = {
    0: "BUY",
    1: "SELL",
    2: "BALANCE",
    3: "CREDIT",
    4: "CHARGE",
    5: "CORRECTION",
    6: "BONUS",
    7: "COMMISSION",
    8: "COMMISSION_DAILY",
    9: "COMMISSION_MONTHLY",
    10: "COMMISSION_AGENT_DAILY",
    11: "COMMISSION_AGENT_MONTHLY",
    12: "INTEREST",
    13: "BUY_CANCELED",
    14: "SELL_CANCELED",
    15: "DIVIDEND",
    16: "DIVIDEND_FRANKED",
    17: "TAX",
}
TRADE_TYPES = frozenset({"BUY", "SELL"})
# Money moved in or out by the broker or the trader: not trading P/L.
BALANCE_OP_TYPES = frozenset({"BALANCE", "CORRECTION", "BONUS"})
# Credit lives in AccountInfo.credit, not in the balance.
NON_BALANCE_TYPES = frozenset({"CREDIT", "BUY_CANCELED", "SELL_CANCELED"})


def deal_type_name(code: int) -> str:
    """The ``DEAL_TYPE_*`` name (without the prefix) of an int code; ValueError if unknown."""
    if code not in DEAL_TYPE_NAMES:
        raise ValueError(f"unknown deal type code {code}")
    return DEAL_TYPE_NAMES[code]


ENTRY_IN, ENTRY_OUT, ENTRY_INOUT, ENTRY_OUT_BY = 0, 1, 2, 3
CLOSING_ENTRIES = frozenset({ENTRY_OUT, ENTRY_INOUT, ENTRY_OUT_BY})


@dataclass(frozen=True, slots=True)
class Deal:
    """One executed deal (trade, commission, deposit...) from ``history_deals_get``."""

    ticket: int
    time_msc: int  # broker SERVER time, ms
    type: str  # "BUY", "SELL", "BALANCE", ... (int codes are converted)
    entry: int = ENTRY_IN
    volume: float = 0.0
    price: float = 0.0
    profit: float = 0.0
    commission: float = 0.0
    swap: float = 0.0
    fee: float = 0.0
    symbol: str = ""
    position_id: int = 0

    def __post_init__(self) -> None:
        t: object = self.type  # a name, or an int code from a caller that passed one
        if isinstance(t, int) and not isinstance(t, bool):
            object.__setattr__(self, "type", deal_type_name(t))
        elif isinstance(t, str):
            name = t.upper().removeprefix("DEAL_TYPE_").removeprefix("DEAL_")
            object.__setattr__(self, "type", name)
        else:
            raise ValueError(f"deal type must be a name or an int code, got {t!r}")

    @property
    def net(self) -> float:
        """Money this deal moved: profit + commission + swap + fee."""
        return self.profit + self.commission + self.swap + self.fee

    @property
    def affects_balance(self) -> bool:
        return self.type not in NON_BALANCE_TYPES

    @property
    def is_trade(self) -> bool:
        return self.type in TRADE_TYPES

    @property
    def is_balance_op(self) -> bool:
        """Deposit, withdrawal, correction or bonus: money moved, not P/L."""
        return self.type in BALANCE_OP_TYPES

    @property
    def is_close(self) -> bool:
        return self.is_trade and self.entry in CLOSING_ENTRIES

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Deal:
        names = {f.name for f in fields(cls)}
        return cls(**{k: v for k, v in data.items() if k in names})

    @classmethod
    def from_mt5(cls, rec: Any) -> Deal:
        """From a ``TradeDeal`` namedtuple (or any object with its attributes)."""
        return cls(
            ticket=int(rec.ticket),
            time_msc=int(rec.time_msc),
            type=deal_type_name(int(rec.type)),
            entry=int(rec.entry),
            volume=float(rec.volume),
            price=float(rec.price),
            profit=float(rec.profit),
            commission=float(rec.commission),
            swap=float(rec.swap),
            fee=float(rec.fee),
            symbol=str(rec.symbol),
            position_id=int(rec.position_id),
        )


def balance_delta(deals: Iterable[Deal]) -> float:
    """Sum of what ``deals`` moved into or out of the balance (credit excluded)."""
    return sum(d.net for d in deals if d.affects_balance)
