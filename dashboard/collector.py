"""The monitor's picture of the fleet: bus messages in, store reads, views out.

Reads only. The bus gives live node status, master positions (snapshots only: the full
state at least every heartbeat) and a wake-up on copy events; the store gives the truth
the page shows: node documents, accounts, flags, leases, links, events and snapshots.
Links are refreshed incrementally: every event that names a link (``master`` +
``master_ticket`` on a slave account) re-reads that one link; the live links (PENDING,
OPEN) are re-read in full every ``full_links_s``.

The page's state is split into parts (fleet, positions, events, charts), each with its
own version and its JSON serialised once, so a push sends only what changed and costs
the same for one browser or ten.
"""
from __future__ import annotations

import json
import re
import threading
import time
from collections import deque
from collections.abc import Callable
from typing import Any

from dashboard import views
from dashboard.metrics import Metrics
from db import StoreError
from db import now_ms as _now_ms

PARTS = ("fleet", "positions", "events", "charts")
EVENT_KEEP = 300
EVENTS_SHOWN = 200
FINAL_KEEP = 2000  # SKIPPED/FAILED/CLOSED links kept for the page after they end
EQUITY_POINTS = 240
LAT_EDGES_MS = [0, 5, 10, 25, 50, 100, 250, 500, 1000, 2500, 5000]
SLIP_EDGES_PTS = [0, 1, 2, 5, 10, 20, 50, 100, 200]
COPY_EVENTS = ("copy_skipped", "copy_failed")
_DIGITS = re.compile(r"\d+(?:\.\d+)?")


def day_start_ms(now_ms: int) -> int:
    """UTC midnight of ``now_ms``'s day (ms)."""
    return now_ms - now_ms % 86_400_000


class CopyAlerts:
    """A copy that ends SKIPPED or FAILED raises one alert with its reason through the
    existing channels (alerts.AlertDispatcher). Deduplicated twice: each link alerts once
    per status, and the dispatcher's (account, rule) cooldown keeps a reason that repeats
    on many copies to one message per cooldown (the rule carries the reason with its
    numbers blanked)."""

    def __init__(self, dispatcher: Any, node: str = "monitor", keep: int = 10_000) -> None:
        self.dispatcher = dispatcher
        self.node = node
        self._seen: dict[tuple, None] = {}
        self._keep = keep
        self.sent = 0

    def on_event(self, event: dict[str, Any]) -> bool:
        """Alert for a ``copy_skipped`` / ``copy_failed`` audit event; True when one was queued."""
        if self.dispatcher is None or event.get("kind") not in COPY_EVENTS:
            return False
        data = event.get("data") or {}
        slave = event.get("account") or event.get("node")
        status = "FAILED" if event["kind"] == "copy_failed" else "SKIPPED"
        key = (slave, data.get("master"), data.get("master_ticket"), status)
        if not slave or key in self._seen:
            return False
        self._seen[key] = None
        if len(self._seen) > self._keep:
            self._seen.pop(next(iter(self._seen)))
        from alerts import Alert

        reason = str(data.get("reason") or "no reason given")
        rule = f"copy {status.lower()}: {_DIGITS.sub('#', reason)[:80]}"
        msg = f"master {data.get('master')} #{data.get('master_ticket')} not copied to {slave}: {reason}"
        if data.get("retcode"):
            msg += f" (retcode {data['retcode']})"
        queued = self.dispatcher.send(Alert(account=str(slave), rule=rule, level="critical" if status == "FAILED" else "warn",
                                            action_taken=f"copy {status}", message=msg, node=self.node))
        self.sent += bool(queued)
        return bool(queued)


class Collector:
    """Holds everything the page and the API show; ``poll()`` from one thread, readers
    (HTTP handlers) from others through ``part_json`` / ``get``."""

    def __init__(self, store: Any, *, alerts: Any = None, log: Any = None,
                 clock_ms: Callable[[], int] = _now_ms, full_links_s: float = 10.0,
                 equity_s: float = 30.0, store_s: float = 1.0, events_s: float = 0.5) -> None:
        self.store = store
        self.log = log
        self.clock_ms = clock_ms
        self.lock = threading.RLock()
        self.changed = threading.Condition(self.lock)
        self.versions = {p: 0 for p in PARTS}
        self._json: dict[str, str] = {}
        self.live: dict[str, dict[str, Any]] = {}
        self.positions: dict[str, tuple] = {}
        self._pos_sig: dict[str, tuple] = {}
        self.links: dict[tuple, dict[str, Any]] = {}
        self._final: deque[tuple] = deque()
        self.events: deque[dict[str, Any]] = deque(maxlen=EVENT_KEEP)
        self.last_event_id: int | None = None
        self.node_docs: list[dict[str, Any]] = []
        self.accounts: list[dict[str, Any]] = []
        self._accounts_version: str | None = None
        self.flags: dict[str, Any] = {}
        self.leases: dict[str, dict[str, Any]] = {}
        self.equity: dict[str, list[tuple[int, float]]] = {}
        self.latencies: deque[float] = deque(maxlen=5000)
        self.slippages: deque[float] = deque(maxlen=5000)
        self._observed: set[tuple] = set()
        self._counted: set[tuple] = set()
        self.metrics = Metrics(self._metric_state)
        self.copy_alerts = CopyAlerts(alerts)
        self.store_ok = True
        self.store_error: str | None = None
        self._wake = threading.Event()
        self._due = {"events": 0.0, "store": 0.0, "links": 0.0, "equity": 0.0}
        self._every = {"events": events_s, "store": store_s, "links": full_links_s, "equity": equity_s}
        self._dirty: set[str] = set(PARTS)
        self.polls = 0

    # ------------------------------------------------------------------ bus in
    def on_message(self, msg: Any) -> None:
        """One validated bus message (messaging.schema): Status, Snapshot or Event."""
        kind = getattr(msg, "kind", None)
        with self.lock:
            if kind == "status":
                metrics = msg.account.to_dict() if getattr(msg, "account", None) is not None else None
                self.live[msg.node] = {"state": msg.state, "pid": msg.pid, "ts_ms": msg.ts_ms, "role": msg.role,
                                       "error": msg.error, "account": metrics, "info": dict(msg.info or {})}
                self._dirty.add("fleet")
            elif kind == "snapshot":
                sig = tuple(sorted((int(p.identifier or p.ticket), p.symbol, p.side, float(p.volume)) for p in msg.positions))
                self.positions[msg.master] = tuple(msg.positions)
                if self._pos_sig.get(msg.master) != sig:
                    self._pos_sig[msg.master] = sig
                    self._dirty.add("positions")
            elif kind == "event":
                if msg.event.startswith(("copy_", "link_", "master_")) or msg.event in ("operator_command",):
                    self._wake.set()  # the store has it (or will in a moment): poll now
                self._dirty.add("events")

    @property
    def wake(self) -> threading.Event:
        """Set when a bus message says the store has news; ``poll`` clears it."""
        return self._wake

    # ------------------------------------------------------------------ store in
    def load_recent_final(self) -> None:
        """At start: the newest SKIPPED/FAILED links, so the page shows their reasons."""
        for doc in self.store.list_trades(status=list(views.FINAL_BAD))[-FINAL_KEEP // 2:]:
            self._put_link(doc)

    def poll(self, force: bool = False) -> bool:
        """Read what is due from the store; publish changed parts. True if anything changed."""
        self.polls += 1
        now = time.monotonic()
        woken = self._wake.is_set()
        self._wake.clear()
        try:
            if force or woken or now >= self._due["events"]:
                self._due["events"] = now + self._every["events"]
                self._read_events()
            if force or now >= self._due["store"]:
                self._due["store"] = now + self._every["store"]
                self._read_fleet()
            if force or now >= self._due["links"]:
                self._due["links"] = now + self._every["links"]
                self._read_live_links()
            if force or now >= self._due["equity"]:
                self._due["equity"] = now + self._every["equity"]
                self._read_equity()
            if not self.store_ok:
                self.store_ok, self.store_error = True, None
                self._dirty.add("fleet")
        except StoreError as exc:
            if self.store_ok and self.log is not None:
                self.log.warning("store_unavailable", error=str(exc))
            self.store_ok, self.store_error = False, str(exc)
            self._dirty.add("fleet")
        return self._publish()

    def _read_fleet(self) -> None:
        nodes = self.store.list_nodes()
        flags = self.store.list_flags()
        leases = {lease.get("account"): lease for lease in self.store.list_leases()}
        version = self.store.accounts_version()
        accounts = self.store.list_accounts() if version != self._accounts_version else None
        with self.lock:
            self.node_docs, self.flags, self.leases = nodes, flags, leases
            if accounts is not None:
                self.accounts, self._accounts_version = accounts, version
            self._dirty.add("fleet")

    def _read_events(self) -> None:
        if self.last_event_id is None:
            new = self.store.list_events(limit=EVENTS_SHOWN, tail=True)
            first = True
        else:
            new = self.store.list_events(after_id=self.last_event_id, limit=1000)
            first = False
        if not new:
            return
        touched: set[tuple] = set()
        with self.lock:
            for e in new:
                self.events.append(e)
                data = e.get("data") or {}
                if e.get("account") and data.get("master") and data.get("master_ticket") is not None:
                    touched.add((e["account"], data["master"], data["master_ticket"]))
            self.last_event_id = new[-1]["id"]
            self._dirty.add("events")
        if not first:  # alerts for what happens while we watch, not for history
            for e in new:
                self.copy_alerts.on_event(e)
        for key in touched:
            doc = self.store.get_trade(*key)
            if doc is not None:
                self._put_link(doc)

    def _read_live_links(self) -> None:
        docs = self.store.list_trades(status=list(views.LIVE_STATUSES))
        live_keys = set()
        for doc in docs:
            live_keys.add(self._put_link(doc))
        with self.lock:  # a live link we hold that is no longer live: re-read it once
            stale = [k for k, d in self.links.items() if d.get("status") in views.LIVE_STATUSES and k not in live_keys]
        for key in stale:
            doc = self.store.get_trade(*key)
            if doc is None:
                with self.lock:
                    self.links.pop(key, None)
                    self._dirty.add("positions")
            else:
                self._put_link(doc)

    def _put_link(self, doc: dict[str, Any]) -> tuple:
        key = (doc.get("slave_name"), doc.get("master_name"), doc.get("master_ticket"))
        status = doc.get("status")
        with self.lock:
            old = self.links.get(key)
            if old == doc:
                return key
            self.links[key] = doc
            self._dirty.add("positions")
            if status not in views.LIVE_STATUSES and (old is None or old.get("status") in views.LIVE_STATUSES):
                self._final.append(key)
                while len(self._final) > FINAL_KEEP:
                    self.links.pop(self._final.popleft(), None)
            if status and (key, status) not in self._counted:
                self._counted.add((key, status))
                self.metrics.count_status(str(key[0]), str(status))
            lat, slip = doc.get("latency_ms"), doc.get("slippage_points")
            if status in ("OPEN", "CLOSED") and key not in self._observed and (lat is not None or slip is not None):
                self._observed.add(key)
                self.metrics.observe_copy(str(key[1]), str(key[0]), lat, slip)
                if lat is not None:
                    self.latencies.append(float(lat))
                if slip is not None:
                    self.slippages.append(abs(float(slip)))
                self._dirty.add("charts")
        return key

    def _read_equity(self) -> None:
        since = day_start_ms(self.clock_ms())
        out = {}
        for a in list(self.accounts):
            snaps = self.store.list_snapshots(a["name"], since_ms=since)
            pts = [(s["ts_ms"], float(s["metrics"]["equity"])) for s in snaps
                   if isinstance((s.get("metrics") or {}).get("equity"), (int, float))]
            out[a["name"]] = views.downsample(pts, EQUITY_POINTS)
        with self.lock:
            self.equity = out
            self._dirty.add("charts")

    # ------------------------------------------------------------------ views out
    def _open_counts(self) -> dict[str, int]:
        counts: dict[str, int] = {}
        for (slave, _m, _t), d in self.links.items():
            if d.get("status") == "OPEN":
                counts[slave] = counts.get(slave, 0) + 1
        return counts

    def node_rows(self) -> list[dict[str, Any]]:
        with self.lock:
            return views.node_rows(self.node_docs, self.live, self.clock_ms())

    def account_rows(self) -> list[dict[str, Any]]:
        with self.lock:
            nodes = {d.get("name"): d for d in self.node_docs}
            return views.account_rows(self.accounts, nodes, self.live, self.flags, self.leases, self._open_counts())

    def _metric_state(self) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
        return self.node_rows(), self.account_rows()

    def link_docs(self) -> list[dict[str, Any]]:
        with self.lock:
            return list(self.links.values())

    def master_positions(self) -> list[dict[str, Any]]:
        with self.lock:
            return views.master_positions(list(self.links.values()), dict(self.positions))

    def exposure(self) -> dict[str, Any]:
        with self.lock:
            return views.exposure(list(self.links.values()), dict(self.positions))

    def recent_events(self, account: str | None = None) -> list[dict[str, Any]]:
        with self.lock:
            evs = [e for e in self.events if account is None or e.get("account") == account]
        return evs[-EVENTS_SHOWN:]

    def build(self, part: str) -> dict[str, Any]:
        """One part of the page's state as plain data."""
        now = self.clock_ms()
        if part == "fleet":
            with self.lock:
                return {"ts_ms": now, "nodes": self.node_rows(), "accounts": self.account_rows(),
                        "kill_switch": bool(self.flags.get("kill_switch")), "store_ok": self.store_ok,
                        "store_error": self.store_error}
        if part == "positions":
            return {"ts_ms": now, "positions": self.master_positions(), "exposure": self.exposure()}
        if part == "events":
            return {"ts_ms": now, "events": self.recent_events()}
        if part == "charts":
            with self.lock:
                equity = {k: [[t, v] for t, v in pts] for k, pts in self.equity.items()}
                return {"ts_ms": now, "equity": equity, "day_start_ms": day_start_ms(now),
                        "latency_ms": views.histogram(self.latencies, LAT_EDGES_MS),
                        "slippage_points": views.histogram(self.slippages, SLIP_EDGES_PTS),
                        "copies_observed": len(self.latencies)}
        raise KeyError(part)

    def _publish(self) -> bool:
        with self.lock:
            dirty, self._dirty = self._dirty, set()
        changed = False
        for part in dirty:
            text = json.dumps(self.build(part), default=str, separators=(",", ":"))
            with self.lock:
                old = self._json.get(part)
                if old is not None and _same_but_time(old, text):
                    continue
                self._json[part] = text
                self.versions[part] += 1
                changed = True
        if changed:
            with self.changed:
                self.changed.notify_all()
        return changed

    def part_json(self, part: str) -> tuple[int, str]:
        """(version, JSON text) of one part as last published."""
        with self.lock:
            if part not in self._json:
                self._json[part] = json.dumps(self.build(part), default=str, separators=(",", ":"))
            return self.versions[part], self._json[part]

    def push_since(self, seen: dict[str, int]) -> str | None:
        """A JSON object with every part newer than ``seen`` (updated in place), or None."""
        with self.lock:
            fresh = [p for p in PARTS if self.versions[p] != seen.get(p) and p in self._json]
            if not fresh:
                return None
            for p in fresh:
                seen[p] = self.versions[p]
            return "{" + ",".join(f'"{p}":{self._json[p]}' for p in fresh) + "}"


_TS = re.compile(r'"ts_ms":\d+')
_AGE = re.compile(r'"heartbeat_age_s":[0-9.]+')


def _same_but_time(a: str, b: str) -> bool:
    """Two serialisations that differ only in the time they were made (no push needed)."""
    return _AGE.sub("", _TS.sub("", a)) == _AGE.sub("", _TS.sub("", b))
