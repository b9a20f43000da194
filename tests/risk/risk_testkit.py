"""Shared helpers for the risk tests: server-time stamps and snapshots."""
from __future__ import annotations

from datetime import datetime, timezone

from copier.models import AccountMetrics
from copier.risk import Deal

_EPOCH = datetime(1970, 1, 1)


def srv(y: int, mo: int, d: int, h: int = 0, mi: int = 0, s: int = 0, ms: int = 0) -> int:
    """MT5 server milliseconds for a server wall-clock time."""
    return int((datetime(y, mo, d, h, mi, s) - _EPOCH).total_seconds() * 1000) + ms


def utc(y: int, mo: int, d: int, h: int = 0, mi: int = 0) -> datetime:
    return datetime(y, mo, d, h, mi, tzinfo=timezone.utc)


def snap(balance: float, equity: float | None = None, margin: float = 0.0, at: int = 0) -> AccountMetrics:
    eq = balance if equity is None else equity
    return AccountMetrics(
        login=7, balance=balance, equity=eq, margin=margin, margin_free=eq - margin,
        profit=eq - balance, server_time_msc=at,
    )


_ticket = [1000]


def deal(at: int, profit: float = 0.0, *, type: str = "SELL", entry: int = 1, commission: float = 0.0,
         swap: float = 0.0, fee: float = 0.0, position_id: int = 0, symbol: str = "EURUSD",
         volume: float = 1.0) -> Deal:
    _ticket[0] += 1
    return Deal(ticket=_ticket[0], time_msc=at, type=type, entry=entry, volume=volume, price=1.1,
                profit=profit, commission=commission, swap=swap, fee=fee, symbol=symbol,
                position_id=position_id or _ticket[0])
