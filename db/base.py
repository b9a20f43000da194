"""The repository contract shared by every backend, plus the small pure helpers both use.

Nodes, the launcher, the CLI and setup_db talk to this API only; which backend sits
behind it is a deployment choice (SQLite on one box, a MongoDB replica set across hosts).
Documents go in and come out as plain dicts: no backend ids, ints stay ints.
"""
from __future__ import annotations

import time
from abc import ABC, abstractmethod
from collections.abc import Iterable
from typing import Any

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


def _check_name(value: Any, what: str) -> None:
    if not isinstance(value, str) or not value:
        raise ValueError(f"{what} must be a non-empty string, not {value!r}")


def _check_int(value: Any, what: str, *, minimum: int | None = None) -> None:
    """ints only (bool is refused although Python counts it as an int)."""
    if not isinstance(value, int) or isinstance(value, bool):
        raise ValueError(f"{what} must be an int, not {value!r}")
    if minimum is not None and value < minimum:
        raise ValueError(f"{what} must be >= {minimum}, not {value!r}")


def check_lease_args(account: Any, holder_id: Any = "-", *, ttl_ms: Any = 1,
                     now: Any = 0, epoch: Any = 0, steal_epoch: Any = None,
                     holder: Any = None) -> None:
    """ValueError for a caller bug in a lease call: empty ``account``/``holder_id``,
    ``ttl_ms`` not a positive int, ``now``/``epoch`` not ints (``now`` >= 0, ms),
    ``steal_epoch`` neither None nor an int, ``holder`` not a dict with storable keys.
    Defaults are valid so each call checks only what it passes."""
    _check_name(account, "lease account")
    _check_name(holder_id, "lease holder_id")
    _check_int(ttl_ms, "ttl_ms", minimum=1)
    _check_int(now, "now_ms", minimum=0)
    _check_int(epoch, "lease epoch")
    if steal_epoch is not None:
        _check_int(steal_epoch, "steal_epoch")
    if holder is not None:
        if not isinstance(holder, dict):
            raise ValueError(f"lease holder must be a dict, not {type(holder).__name__}")
        check_field_names(holder, what="lease holder field")


def lease_clock(given: int | None) -> int:
    """The ``now_ms`` a lease call judges with: the caller's value, else the local clock."""
    return now_ms() if given is None else given


def lease_is_released(lease: dict) -> bool:
    """A released lease keeps its document and epoch but ``expires_ms`` is 0; nobody
    holds it, not even its last holder (live leases always have ``expires_ms`` >= 1)."""
    return lease["expires_ms"] == 0


def next_lease(current: dict | None, account: str, holder_id: str, holder: dict, *,
               ttl_ms: int, now: int, steal_epoch: int | None = None) -> dict | None:
    """The lease ``acquire_lease`` would store, or None when it must refuse.

    Pure rule shared by both backends (each makes it atomic its own way). Granted when
    there is no lease, when ``current`` expired (``expires_ms <= now``, ms), when
    ``holder_id`` already holds it (not released), or when ``steal_epoch`` equals the
    current epoch. The epoch goes up by one whenever the holder changes (a released
    lease re-acquired by its last holder counts as a change), and never goes down.
    """
    if current is None:
        return {"account": account, "holder_id": holder_id, "holder": dict(holder), "epoch": 1,
                "since_ms": now, "renewed_ms": now, "expires_ms": now + ttl_ms}
    same = current["holder_id"] == holder_id and not lease_is_released(current)
    if not (same or current["expires_ms"] <= now
            or (steal_epoch is not None and steal_epoch == current["epoch"])):
        return None
    return {"account": account, "holder_id": holder_id, "holder": dict(holder),
            "epoch": current["epoch"] if same else current["epoch"] + 1,
            "since_ms": current["since_ms"] if same else now,
            "renewed_ms": now, "expires_ms": now + ttl_ms}


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

    def __enter__(self) -> Store:
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

    # -- leases (invariant 6: one account, one writer) ---------------------------------
    # A lease is {account, holder_id, holder, epoch, since_ms, renewed_ms, expires_ms}.
    # The epoch is a fencing token: it never decreases for an account, whatever happens
    # (documents are never deleted; release keeps the epoch), and it goes up by one each
    # time the holder changes. Expiry is judged with the caller's clock (``now_ms``).
    @abstractmethod
    def get_lease(self, account: str) -> dict | None:
        """The account's lease document (held, expired or released), or None."""

    @abstractmethod
    def list_leases(self) -> list[dict]:
        """Every lease document, sorted by account."""

    @abstractmethod
    def acquire_lease(self, account: str, holder_id: str, holder: dict, *, ttl_ms: int,
                      now_ms: int | None = None,
                      steal_epoch: int | None = None) -> tuple[dict, bool]:
        """Atomically take the lease -> (new lease, True), or (current lease, False) and
        nothing changes. Granted when none exists (epoch 1), the current one expired
        (``expires_ms <= now``), ``holder_id`` already holds it and has not released it
        (epoch and ``since_ms`` kept, even after its own expiry if nobody took it; after
        a release it is a new tenure, epoch + 1), or ``steal_epoch`` equals the
        current epoch (compare-and-swap takeover of a holder proven dead). A new holder
        gets epoch + 1 and ``since_ms`` = now. Always ``renewed_ms`` = now and
        ``expires_ms`` = now + ``ttl_ms``. ``now_ms`` (UTC epoch ms) defaults to the
        local clock. ValueError for an empty account/holder_id or ``ttl_ms`` not a
        positive int."""

    @abstractmethod
    def renew_lease(self, account: str, holder_id: str, epoch: int, *, ttl_ms: int,
                    now_ms: int | None = None) -> dict | None:
        """Set ``renewed_ms`` = now, ``expires_ms`` = now + ``ttl_ms`` iff the stored
        lease still has this holder_id and epoch and was not released (it may have
        expired, as long as nobody took it) -> the renewed lease; otherwise None and
        nothing changes."""

    @abstractmethod
    def release_lease(self, account: str, holder_id: str, epoch: int) -> bool:
        """If held by holder_id at epoch (and not already released): set ``expires_ms``
        to 0, keeping the document and its epoch so the next holder gets epoch + 1.
        True when this call released it."""
