"""The repository contract shared by every backend, plus the small pure helpers both use.

Nodes, the launcher, the CLI and setup_db talk to this API only; which backend sits
behind it is a deployment choice (SQLite on one box, a MongoDB replica set across hosts).
Documents go in and come out as plain dicts: no backend ids, ints stay ints.
"""
from __future__ import annotations

import time
from abc import ABC, abstractmethod
from typing import Any, Iterable

TRADE_STATUSES = ("PENDING", "OPEN", "CLOSED", "SKIPPED", "FAILED")
TRADE_KEY = ("slave_name", "master_name", "master_ticket")


def now_ms() -> int:
    """UTC epoch milliseconds, the unit of every ``*_ms`` field."""
    return time.time_ns() // 1_000_000


def check_field_names(fields: Iterable[str], *, what: str = "field") -> None:
    """Refuse keys that MongoDB would read as paths or operators, on both backends alike,
    so a document written through SQLite can always be moved to MongoDB."""
    for key in fields:
        if not isinstance(key, str) or not key or "." in key or key.startswith("$"):
            raise ValueError(f"invalid {what} name {key!r}: must be a non-empty string "
                             "without '.' and not starting with '$'")


def statuses(status: str | list[str] | tuple[str, ...] | None) -> list[str] | None:
    """Normalise the ``status`` filter to a list (or None for no filter)."""
    if status is None:
        return None
    if isinstance(status, str):
        return [status]
    return list(status)


def trade_key(trade: dict) -> tuple[str, str, Any]:
    """The unique key of a trade document; ValueError names a missing part."""
    missing = [k for k in TRADE_KEY if trade.get(k) is None]
    if missing:
        raise ValueError(f"trade document lacks key field(s): {', '.join(missing)}")
    return trade["slave_name"], trade["master_name"], trade["master_ticket"]


def account_name(doc: dict) -> str:
    """The account's unique name; ValueError if it is missing or not a non-empty string."""
    name = doc.get("name") if isinstance(doc, dict) else None
    if not isinstance(name, str) or not name:
        raise ValueError("account document needs a non-empty string 'name'")
    return name


class Store(ABC):
    """One repository API over SQLite or MongoDB. See docs/store.md for the contract."""

    # -- lifecycle -------------------------------------------------------------------
    @abstractmethod
    def ensure_indexes(self) -> None:
        """Create collections/tables and indexes; idempotent, safe from many processes."""

    @abstractmethod
    def close(self) -> None:
        """Release the connection; idempotent. Later calls raise StoreUnavailable."""

    @abstractmethod
    def ping(self) -> bool:
        """True when the backend answers; never raises."""

    def __enter__(self) -> "Store":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- accounts --------------------------------------------------------------------
    @abstractmethod
    def list_accounts(self) -> list[dict]:
        """All account documents, sorted by name."""

    @abstractmethod
    def get_account(self, name: str) -> dict | None: ...

    @abstractmethod
    def add_account(self, doc: dict) -> None:
        """Insert; DuplicateAccount if the name exists."""

    @abstractmethod
    def upsert_account(self, doc: dict) -> bool:
        """Insert or replace the whole document by name; True when something changed."""

    @abstractmethod
    def update_account(self, name: str, fields: dict) -> bool:
        """``$set`` top-level keys; True only when the stored document changed
        (False for no such account or identical values)."""

    @abstractmethod
    def unset_account_fields(self, name: str, keys: list[str]) -> bool:
        """Remove top-level keys; True when any was present."""

    @abstractmethod
    def remove_account(self, name: str) -> bool: ...

    @abstractmethod
    def accounts_version(self) -> str:
        """Fingerprint of the whole accounts collection; changes iff any document changes."""

    # -- trades ----------------------------------------------------------------------
    @abstractmethod
    def record_intent(self, trade: dict) -> tuple[dict, bool]:
        """Insert a PENDING trade if its key is new -> (doc, True), else (existing, False).
        Atomic across processes."""

    @abstractmethod
    def update_trade(self, slave_name: str, master_name: str, master_ticket: Any,
                     fields: dict) -> dict | None:
        """``$set`` fields, bump ``updated_ms``; the updated doc, or None if absent."""

    @abstractmethod
    def get_trade(self, slave_name: str, master_name: str, master_ticket: Any) -> dict | None: ...

    @abstractmethod
    def list_trades(self, *, slave_name: str | None = None, master_name: str | None = None,
                    status: str | list[str] | None = None, limit: int | None = None) -> list[dict]:
        """Matching trades ordered by ``created_ms`` (then insertion)."""

    @abstractmethod
    def count_trades(self, *, slave_name: str | None = None, master_name: str | None = None,
                     status: str | list[str] | None = None) -> int: ...

    # -- events ----------------------------------------------------------------------
    @abstractmethod
    def add_event(self, kind: str, *, node: str | None = None, account: str | None = None,
                  level: str = "info", **data: Any) -> None:
        """Append ``{id, ts_ms, kind, node, account, level, data}``."""

    @abstractmethod
    def list_events(self, *, since_ms: int | None = None, account: str | None = None,
                    kind: str | None = None, after_id: int | None = None, limit: int | None = 500,
                    tail: bool = False) -> list[dict]:
        """Ascending by ``id``. ``tail=True`` returns the *last* ``limit`` matches
        (still ascending), which is what ``cli events`` shows first."""

    # -- nodes -----------------------------------------------------------------------
    @abstractmethod
    def upsert_node(self, name: str, fields: dict) -> None:
        """Merge ``fields`` into the node document (created if absent)."""

    @abstractmethod
    def get_node(self, name: str) -> dict | None: ...

    @abstractmethod
    def list_nodes(self) -> list[dict]:
        """Sorted by name."""

    @abstractmethod
    def remove_node(self, name: str) -> bool: ...

    # -- snapshots -------------------------------------------------------------------
    @abstractmethod
    def add_snapshot(self, account: str, ts_ms: int, metrics: dict) -> None: ...

    @abstractmethod
    def list_snapshots(self, account: str, *, since_ms: int | None = None,
                       until_ms: int | None = None, limit: int | None = None,
                       tail: bool = False) -> list[dict]:
        """``{account, ts_ms, metrics}`` ascending by ts_ms; bounds inclusive.
        ``tail=True`` keeps the newest ``limit``."""

    # -- control flags ---------------------------------------------------------------
    @abstractmethod
    def get_flag(self, key: str, default: Any = None) -> Any: ...

    @abstractmethod
    def set_flag(self, key: str, value: Any) -> None: ...

    @abstractmethod
    def delete_flag(self, key: str) -> bool: ...

    @abstractmethod
    def list_flags(self, prefix: str = "") -> dict[str, Any]: ...
