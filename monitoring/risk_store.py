"""What the guardian keeps in the store for one account, and the requests it reads there.

Flags (``store.get_flag``/``set_flag``):

* ``risk_state:<name>``: the tracker state, the per-day stats, the profile (written when the
  state's non-volatile part changed, or forced before a flatten);
* ``risk_lock:<name>``: the lock on its own, for the CLI and the monitor;
* ``risk_release:<name>``: an operator's release request (``cli.py risk release``), consumed;
* ``report_request:<name>``: ``cli.py report`` asking for today's report now, consumed.

Plus account snapshots (``store.add_snapshot``). A store outage is logged and never raised
from here except where the caller must know (``StoreUnavailable`` is caught per call).
"""
from __future__ import annotations

from typing import Any

from copier.risk import Lock
from db import StoreUnavailable

from .daily import report_request_key

STATE_PREFIX = "risk_state:"
LOCK_PREFIX = "risk_lock:"
RELEASE_PREFIX = "risk_release:"
SNAPSHOT_SCAN = 50_000  # stored snapshots read for a lost intraday-trailing peak
# Fields that change on every evaluation; persisting them alone is not worth a write.
VOLATILE = ("last_balance", "last_equity", "last_utc_ms")
_UNSYNCED = object()


def state_key(name: str) -> str:
    return STATE_PREFIX + name


def lock_key(name: str) -> str:
    return LOCK_PREFIX + name


def release_key(name: str) -> str:
    return RELEASE_PREFIX + name


class RiskRecords:
    """One account's risk documents in ``store``; ``log`` gets the failures."""

    def __init__(self, name: str, store: Any, log: Any) -> None:
        self.name = name
        self.store = store
        self.log = log
        self.persisted: dict[str, Any] | None = None  # the last state document read or written
        self.mirrored_lock: Any = _UNSYNCED  # first evaluation writes or clears the mirror

    def load(self) -> dict[str, Any] | None:
        """The persisted state document (also kept as ``persisted``), None when absent or unreadable."""
        try:
            data = self.store.get_flag(state_key(self.name))
        except StoreUnavailable as exc:
            self.log.warning("risk_state_unreadable", error=str(exc))
            data = None
        self.persisted = data if isinstance(data, dict) else None
        return self.persisted

    def persist(self, state: dict[str, Any], day_stats: dict[str, dict[str, Any]], profile: str | None,
                now_utc_ms: int, server_ms: int | None, *, force: bool = False) -> None:
        """Write ``state`` (``TrackerState.to_dict()``) unless only volatile fields (or
        nothing) changed since the last write; ``force`` writes anyway."""
        core = {k: v for k, v in state.items() if k not in VOLATILE}
        core["worst"] = {d: s.get("worst_level") for d, s in day_stats.items()}
        if not force and self.persisted is not None and self.persisted.get("core") == core:
            return
        doc = {"state": state, "core": core, "day_stats": day_stats, "profile": profile,
               "updated_ms": now_utc_ms, "server_time_msc": server_ms}
        try:
            self.store.set_flag(state_key(self.name), doc)
            self.persisted = doc
        except StoreUnavailable as exc:
            self.log.warning("risk_state_not_saved", error=str(exc))

    def lock_differs(self, lock: Lock | None) -> bool:
        """True when ``risk_lock:<name>`` may not say ``lock`` (never written yet, or changed)."""
        return lock != self.mirrored_lock

    def mirror_lock(self, lock: Lock | None) -> None:
        """``risk_lock:<name>``: the lock on its own (deleted when None)."""
        try:
            if lock is None:
                self.store.delete_flag(lock_key(self.name))
            else:
                self.store.set_flag(lock_key(self.name), lock.to_dict())
            self.mirrored_lock = lock
        except StoreUnavailable as exc:
            self.log.warning("risk_lock_not_mirrored", error=str(exc))

    def take_release_request(self) -> str | None:
        """Consume ``risk_release:<name>``: who asked (``"operator"`` when unsaid), or None
        when there is no request or the store cannot be read."""
        return self._take(release_key(self.name), "by", "operator")

    def take_report_request(self) -> tuple[bool, str | None]:
        """Consume ``report_request:<name>``: (asked, request id or None)."""
        key = report_request_key(self.name)
        try:
            req = self.store.get_flag(key)
            if req is None:
                return False, None
            self.store.delete_flag(key)
        except StoreUnavailable:
            return False, None
        return True, str(req.get("id")) if isinstance(req, dict) and req.get("id") is not None else None

    def _take(self, key: str, field: str, default: str) -> str | None:
        try:
            req = self.store.get_flag(key)
            if req is None:
                return None
            self.store.delete_flag(key)
        except StoreUnavailable:
            return None
        return str(req.get(field, default)) if isinstance(req, dict) else default

    def add_snapshot(self, ts_utc_ms: int, doc: dict[str, Any]) -> None:
        """One account snapshot at ``ts_utc_ms`` (broker time as UTC ms)."""
        try:
            self.store.add_snapshot(self.name, ts_utc_ms, doc)
        except StoreUnavailable as exc:
            self.log.warning("snapshot_not_saved", error=str(exc))

    def snapshot_equity_high(self) -> float | None:
        """Highest equity (without credit) in this account's stored snapshots, if any."""
        try:
            snaps = self.store.list_snapshots(self.name, limit=SNAPSHOT_SCAN, tail=True)
        except StoreUnavailable:
            return None
        vals = [float(m.get("equity", 0.0)) - float(m.get("credit", 0.0) or 0.0)
                for m in (s.get("metrics") or {} for s in snaps) if m.get("equity") is not None]
        return max(vals) if vals else None
