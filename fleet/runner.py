"""The fleet shell: spawns, watches, restarts and stops every process of one host.

All decisions come from ``supervision`` (per node) and ``reconcile`` (which nodes);
this module feeds them facts (exits, heartbeats, account changes, operator resets,
time) and carries out their actions. One thread, one loop: receiving status messages
from the bus doubles as the loop's sleep.

Facts read from the store, per node name (``nodes`` collection, written by the node):
``pid``, ``heartbeat_ms`` (a fallback heartbeat when the bus is down) and ``reason``
(why a node exited 78). Fields the launcher merges into the same document:
``kind``, ``supervisor_state``, ``supervisor_reason``, ``restarts`` (counted across
launcher processes: a new launcher carries on from the stored count), ``last_restart_reason``,
``last_restart_ms``, ``uptime_s``, ``cpu_percent``, ``rss_bytes``, ``last_exit_code``,
``started_ms``, ``proc_pid``, ``launcher_host``, ``launcher_pid``, ``stats_ms``.

Stopping a node: first ``ctl stop`` on the bus (the node exits 0 at its next loop turn),
after ``BUS_STOP_GRACE_S`` the OS request (CTRL_BREAK on Windows, SIGTERM elsewhere), at
the stop deadline a kill of the process tree.
Flags: ``reset:<NAME>`` (operator reset; deleted once applied).
"""
from __future__ import annotations

import os
import socket
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import psutil

from copier.accounts import NAME_RULE as ACCOUNT_NAME_RULE
from copier.accounts import RESERVED_NAMES as ACCOUNT_RESERVED_NAMES
from copier.accounts import AccountConfigError, terminal_conflicts, validate_account
from db import StoreError, now_ms
from fleet.procs import ProcessHandle, ProcStats
from fleet.reconcile import Desired, desired_nodes, plan, same_host
from fleet.stale import clear_stale_node
from fleet.supervision import EXIT_CONFIG, Action, Alert, Kill, Policy, Spawn, State, Supervised, Terminate
from messaging.publisher import Publisher
from messaging.schema import Control, Event, Status, is_valid_name
from messaging.subscriber import Subscriber
from nodes.pulse import STORE_WAIT
from utils.process import kill_tree

ROOT = Path(__file__).resolve().parent.parent
LAUNCHER_NODE = "launcher"
from fleet.operator import RESET_PREFIX  # noqa: E402  (one definition of the flag names)

# Process kinds in shutdown order: who stops first. Slaves stop before their masters,
# and the bus goes last so everyone can still report while stopping.
STOP_ORDER = ("slave", "master", "monitor", "trader", "sim", "proxy")
INFRA_NAMES = {"proxy": "bus-proxy", "sim": "sim-server", "trader": "demo-trader", "monitor": "monitor"}
RESERVED_NAMES = frozenset(INFRA_NAMES.values()) | {LAUNCHER_NODE}
assert RESERVED_NAMES <= ACCOUNT_RESERVED_NAMES, "copier.accounts.RESERVED_NAMES must hold every name the fleet uses"
INFRA_POLICY = Policy(heartbeat_timeout_s=0.0, min_uptime_s=1.0)
BUS_STOP_GRACE_S = 2.0  # a ctl stop on the bus gets this long before the OS signal follows
BUS_STOP_KINDS = ("master", "slave")  # nodes that act on a ctl stop on ctl.<name> (the monitor: signal)
DEMO_SETTLE_S = 1.5


class FleetError(RuntimeError):
    """The fleet cannot start (store unreachable, bus port taken): one line for the user."""


@dataclass(frozen=True)
class SimOptions:
    """Demo only: the simulator server and the demo trader the launcher also runs."""

    world: str | None = None
    seed: int = 0
    trader_login: int = 1001
    trader_rate: float = 0.5


@dataclass(frozen=True)
class FleetOptions:
    db_url: str
    bus_pub: str  # proxy XSUB: publishers connect here
    bus_sub: str  # proxy XPUB: subscribers connect here
    sim_endpoint: str
    log_dir: Path
    host: str = field(default_factory=socket.gethostname)
    nodes_dir: Path = ROOT / "nodes"
    python: str = sys.executable
    policy: Policy = field(default_factory=Policy)
    reconcile_interval_s: float = 2.0
    stats_interval_s: float = 5.0
    master_wait_s: float = 15.0
    stop_timeout_s: float = 10.0
    ready_timeout_s: float = 15.0
    sim: SimOptions | None = None
    monitor: bool = True
    data_dir: Path | None = None  # passed to nodes: where they look for the KILL_SWITCH file
    proxy: bool = True  # False: the bus proxy runs elsewhere (another host's launcher); connect to it
    config_file: str | None = None  # the settings file the launcher read: its children read it too


@dataclass
class Child:
    """One supervised process and what the launcher knows about it."""

    name: str
    kind: str  # master | slave | monitor | proxy | sim | trader
    sup: Supervised
    desired: Desired | None = None  # account nodes: None once disabled/removed
    handle: ProcessHandle | None = None
    started_ms: int | None = None
    stats: ProcStats | None = None
    stop_deadline: float | None = None
    removed: bool = False  # account deleted: drop the nodes doc once stopped
    standby: bool = False  # waiting for the account's lease, held by another process (maybe another host)
    note: str | None = None  # what the node says about itself: "standby: …", "waiting on the store …"
    restarts_before: int = 0  # restarts counted by earlier launcher processes (from the store)
    last_restart_reason: str | None = None
    last_restart_ms: int | None = None
    signal_at: float | None = None  # stopping: when the OS signal follows the bus ctl stop
    stop_label: str | None = None  # "disabled" / "removed" / ...: why the fleet stopped it on purpose

    @property
    def is_account(self) -> bool:
        return self.kind in ("master", "slave")


class Fleet:
    """Supervise one host's fleet. ``start()``, then ``run()``, then ``shutdown()``."""

    def __init__(self, store: Any, opts: FleetOptions, log: Any, *,
                 clock: Callable[[], float] = time.monotonic, alerts: Any = None) -> None:
        self.alerts = alerts  # an alerts.AlertDispatcher: FATAL and kills reach the phone too
        self.store = store
        self.opts = opts
        self.log = log
        self.clock = clock
        self.children: dict[str, Child] = {}
        self.stop_event = threading.Event()
        self.hurry = False  # a second Ctrl+C: shorten every deadline
        self.publisher: Publisher | None = None
        self.subscriber: Subscriber | None = None
        self._accounts: dict[str, dict] = {}
        self._version: str | None = None
        self._next_reconcile = 0.0
        self._next_stats = 0.0
        self._started_ms = now_ms()
        self.pid = os.getpid()
        self.store_name = f"{LAUNCHER_NODE}@{opts.host}"

    # ================================================================== lifecycle
    def start(self) -> None:
        """Bus proxy, (demo: sim server), masters and their first heartbeats, slaves,
        monitor, (demo: trader). Raises FleetError when the fleet cannot come up."""
        self._clear_stale_flags()
        self._next_reconcile = float("inf")  # startup order first; reconcile once it is done
        proxy = None
        if self.opts.proxy:
            proxy = self._add_child(INFRA_NAMES["proxy"], "proxy", INFRA_POLICY)
            self._execute(proxy.sup.request_start(self.clock()))
        if not _wait_tcp([self.opts.bus_pub, self.opts.bus_sub], self.opts.ready_timeout_s, proxy):
            where = f"see {self._out_path(proxy.name)}" if proxy else "is the launcher that runs it up?"
            raise FleetError(f"bus proxy did not come up on {self.opts.bus_pub} / {self.opts.bus_sub}; {where}")
        self.publisher = Publisher(self.opts.bus_pub)
        self.subscriber = Subscriber(self.opts.bus_sub, ["status."])
        if self.opts.sim is not None:
            sim = self._add_child(INFRA_NAMES["sim"], "sim", INFRA_POLICY)
            self._execute(sim.sup.request_start(self.clock()))
            if not _wait_sim(self.opts.sim_endpoint, self.opts.ready_timeout_s, sim):
                raise FleetError(f"simulator did not come up on {self.opts.sim_endpoint}; see {self._out_path(sim.name)}")
        self._event("fleet_starting", host=self.opts.host)
        self._load_accounts()
        desired = desired_nodes(self._accounts.values(), self.opts.host)
        masters = [d for d in desired.values() if d.role == "master"]
        others = [d for d in desired.values() if d.role != "master"]
        for d in masters:
            self._want(d)
        self._wait_first_heartbeats([d.name for d in masters])
        for d in others:
            self._want(d)
        monitor_script = self.opts.nodes_dir / "monitor.py"
        if self.opts.monitor and monitor_script.exists():
            mon = self._add_child(INFRA_NAMES["monitor"], "monitor",
                                  replace(self.opts.policy, require_first_heartbeat=False))
            self._execute(mon.sup.request_start(self.clock()))
        if self.opts.sim is not None:
            # Demo: trade only once the slaves follow, so the first positions are copies,
            # not "existed before follow" skips. A slave trusts the master after its next
            # snapshot, which comes within one heartbeat interval.
            self._wait_first_heartbeats([d.name for d in others], what="slaves")
            self._settle(DEMO_SETTLE_S)
            trader = self._add_child(INFRA_NAMES["trader"], "trader", INFRA_POLICY)
            self._execute(trader.sup.request_start(self.clock()))
        self._remove_stale_node_docs()
        now = self.clock()
        self._next_reconcile = now + self.opts.reconcile_interval_s
        self._next_stats = now
        self._event("fleet_started", host=self.opts.host, nodes=sorted(self.children))

    def run(self, duration_s: float | None = None) -> None:
        """Supervise until ``stop_event`` is set or ``duration_s`` has passed."""
        end = None if duration_s is None else self.clock() + duration_s
        while not self.stop_event.is_set():
            if end is not None and self.clock() >= end:
                break
            self.step(0.2)

    def step(self, wait_s: float) -> None:
        """One loop turn: bus messages (waiting up to ``wait_s``), exits, timers,
        reconcile and stats when due."""
        self._pump_bus(wait_s)
        now = self.clock()
        self._poll_exits(now)
        for child in list(self.children.values()):
            self._execute(child.sup.tick(now), child)
            self._enforce_stop_deadline(child, now)
        if now >= self._next_reconcile:
            self._next_reconcile = now + self.opts.reconcile_interval_s
            self.reconcile()
        if now >= self._next_stats:
            self._next_stats = now + self.opts.stats_interval_s
            self.publish_stats()

    def shutdown(self) -> None:
        """Stop everything in STOP_ORDER: graceful request, deadline, then kill the tree."""
        self._event("fleet_stopping", host=self.opts.host)
        for kind in STOP_ORDER:
            group = [c for c in self.children.values() if c.kind == kind]
            if not group:
                continue
            now = self.clock()
            for child in group:
                self._execute(child.sup.request_stop(now), child)
            deadline = now + (1.0 if self.hurry else self.opts.stop_timeout_s)
            while any(c.handle is not None for c in group) and self.clock() < deadline:
                self._pump_bus(0.05) if kind != "proxy" else time.sleep(0.05)
                self._poll_exits(self.clock())
                for child in group:  # bus stop ignored: the OS request follows (not the kill yet)
                    if child.handle is not None and child.signal_at is not None and self.clock() >= child.signal_at:
                        self._enforce_stop_deadline(child, self.clock())
            for child in group:
                if child.handle is not None:
                    self.log.warning("stop_deadline_passed_killing", node=child.name, pid=child.handle.pid)
                    child.handle.kill()
                    self._poll_exits(self.clock())
            for child in group:
                self._write_node(child)
        for stray in psutil.Process(self.pid).children(recursive=True):
            self.log.warning("killing_stray_process", pid=stray.pid)
            kill_tree(stray.pid, timeout_s=2.0)
        self._event("fleet_stopped", host=self.opts.host)
        self._safe(self.store.upsert_node, self.store_name,
                   {"kind": "launcher", "supervisor_state": "STOPPED", "stats_ms": now_ms()})
        for closer in (self.subscriber, self.publisher):
            if closer is not None:
                closer.close()

    # ================================================================== reconcile
    def reconcile(self) -> None:
        """Re-read accounts (only when their version moved) and operator resets."""
        if self._load_accounts():
            desired = desired_nodes(self._accounts.values(), self.opts.host)
            current = {c.name: c.desired for c in self.children.values() if c.is_account and c.desired is not None}
            p = plan(desired, current, self._accounts.keys())
            now = self.clock()
            for d in p.start:
                self._want(d)
            for name, why in p.stop:
                child = self.children[name]
                child.desired = None
                child.removed = why == "account removed"
                self._event("node_stop_requested", account=name, reason=why)
                label = self._stop_label(name)
                self._execute(child.sup.request_stop(now), child)
                self._stopped_on_purpose(child, label)
                if child.removed and child.handle is None:
                    self._safe(self.store.remove_node, name)
                    del self.children[name]
                else:
                    self._write_node(child)
            for d in p.restart:
                child = self.children[d.name]
                child.desired, child.kind = d, d.role or child.kind
                self._event("node_restart_requested", account=d.name, reason="account type changed")
                self._execute(child.sup.request_restart(now), child)
            for d in p.changed:
                child = self.children[d.name]
                child.desired = d
                self._execute(child.sup.config_changed(now), child)
            changed = {d.name for d in p.changed}
            for child in list(self.children.values()):  # refused for another account's sake (a shared
                # terminal): that account changed, so look again
                if (child.is_account and child.desired is not None and child.name not in changed
                        and child.sup.state is State.CONFIG_ERROR and child.handle is None
                        and child.sup.last_exit_code is None and self._refusal(child) is None):
                    self._execute(child.sup.config_changed(now), child)
        self._apply_resets()
        self._store_heartbeats()

    def _stop_label(self, name: str) -> str:
        """Why an account's node is no longer wanted here, in the operator's words."""
        doc = self._accounts.get(name)
        if doc is None:
            return "removed"
        if doc.get("enabled", True) is False:
            return "disabled"
        return f"assigned to host {doc.get('host')!r}"

    def _stopped_on_purpose(self, child: Child, label: str) -> None:
        """The node stops because its account was disabled, removed or moved: say that
        (not "exited on its own"), and warn when its open copies are left unmanaged."""
        if child.stop_label == label:
            return
        child.stop_label = label
        unmanaged = self._unmanaged_copies(child)
        reason = label
        if unmanaged:
            shown = ", ".join(unmanaged[:5]) + (f" and {len(unmanaged) - 5} more" if len(unmanaged) > 5 else "")
            reason = (f"{label}; {len(unmanaged)} open cop{'y' if len(unmanaged) == 1 else 'ies'} left unmanaged "
                      f"(nothing closes or follows {'it' if len(unmanaged) == 1 else 'them'} now): {shown}")
            self._event("copies_unmanaged", account=child.name, level="warning", node_name=child.name,
                        count=len(unmanaged), copies=unmanaged[:50], why=label)
        child.sup.reason = reason
        self._write_node(child)

    def _unmanaged_copies(self, child: Child) -> list[str]:
        """OPEN links this node kept: a slave's own copies, or a master's copies on its followers."""
        try:
            if child.kind == "slave":
                rows = self.store.list_trades(slave_name=child.name, status="OPEN")
            elif child.kind == "master":
                rows = self.store.list_trades(master_name=child.name, status="OPEN")
            else:
                return []
        except StoreError:
            return []
        out = []
        for r in rows:
            where = f"{r.get('slave_name')} " if child.kind == "master" else ""
            out.append(f"{where}{r.get('symbol') or '?'} #{r.get('slave_ticket') or '?'} "
                       f"(master {r.get('master_name')} #{r.get('master_ticket')})")
        return out

    def _clear_stale_node_docs(self) -> None:
        """The accounts changed: a node document that still says "not in the store" from a
        node that exited 78 before its account existed describes nothing now."""
        try:
            docs = self.store.list_nodes()
        except StoreError:
            return
        for doc in docs:
            name = doc.get("name")
            if name in self._accounts and doc.get("state") == "CONFIG_ERROR" and "not in the store" in str(doc.get("reason")):
                clear_stale_node(self.store, name)

    def _load_accounts(self) -> bool:
        """Refresh the account cache; True when it changed."""
        try:
            version = self.store.accounts_version()
            if version == self._version:
                return False
            docs = self.store.list_accounts()
        except StoreError as exc:
            self.log.warning("store_unavailable", error=str(exc))
            return False
        self._version = version
        self._accounts = {d["name"]: d for d in docs if isinstance(d.get("name"), str)}
        self._clear_stale_node_docs()
        return True

    def _want(self, d: Desired) -> None:
        child = self.children.get(d.name)
        if child is None:
            child = self._add_child(d.name, d.role or "slave", self.opts.policy)
        child.desired, child.removed = d, False
        if d.role:
            child.kind = d.role
        now = self.clock()
        if child.sup.state is State.STOPPING:
            self._execute(child.sup.request_restart(now), child)
        elif child.sup.state in (State.FATAL, State.CONFIG_ERROR):
            self._execute(child.sup.config_changed(now), child)
        else:
            self._execute(child.sup.request_start(now), child)

    def _apply_resets(self) -> None:
        try:
            flags = self.store.list_flags(RESET_PREFIX)
        except StoreError:
            return
        for key in flags:
            name = key[len(RESET_PREFIX):]
            child = self.children.get(name)
            self._safe(self.store.delete_flag, key)
            if child is None or (child.is_account and child.desired is None):
                continue
            self._event("node_reset", account=name, previous_state=child.sup.state.value)
            self._execute(child.sup.reset(self.clock()), child)
            self._write_node(child)

    def _store_heartbeats(self) -> None:
        """The node's own heartbeat in the store counts too: a bus outage alone must not
        make the launcher kill a healthy fleet."""
        try:
            docs = {d.get("name"): d for d in self.store.list_nodes()}
        except StoreError:
            return
        now, wall = self.clock(), now_ms()
        for child in self.children.values():
            doc = docs.get(child.name)
            if not doc or child.sup.pid is None or doc.get("pid") != child.sup.pid:
                continue
            hb = doc.get("heartbeat_ms")
            if isinstance(hb, (int, float)) and doc.get("state") != "CONFIG_ERROR":
                child.sup.heartbeat(now - max(0.0, (wall - hb) / 1000.0), child.sup.pid)

    # ================================================================== facts in
    def _pump_bus(self, wait_s: float) -> None:
        if self.subscriber is None:
            time.sleep(wait_s)
            return
        msg = self.subscriber.recv(int(wait_s * 1000))
        while msg is not None:
            if isinstance(msg, Status) and msg.role in ("master", "slave", "monitor"):
                child = self.children.get(msg.node)
                if child is not None and (child.sup.pid is None or msg.pid == child.sup.pid):
                    child.sup.heartbeat(self.clock(), msg.pid)
                    self._note_status(child, msg)
            msg = self.subscriber.recv(0)

    def _note_status(self, child: Child, msg: Status) -> None:
        """A node waiting on the store, or standing by for its lease, is alive: say which."""
        waiting = msg.state == STORE_WAIT
        if waiting and not (child.note or "").startswith("waiting on the store"):
            self.log.warning("node_blocked_on_store", node=child.name, pid=msg.pid, detail=msg.error)
        elif not waiting and (child.note or "").startswith("waiting on the store"):
            self.log.info("node_store_wait_over", node=child.name, pid=msg.pid)
        child.standby = msg.state == "STANDBY"
        info = msg.info if isinstance(msg.info, dict) else {}
        note = info.get("note") if isinstance(info.get("note"), str) else None
        child.note = msg.error if (waiting or child.standby) else note

    def _poll_exits(self, now: float) -> None:
        for child in list(self.children.values()):
            if child.handle is None:
                continue
            code = child.handle.poll()
            if code is None:
                continue
            pid = child.handle.pid
            child.handle, child.stats, child.stop_deadline, child.signal_at = None, None, None, None
            before = child.sup.state
            label = self._unwanted_now(child) if code == 0 and before in (State.STARTING, State.RUNNING) else None
            if label:  # it saw its account disabled (or removed) before our reconcile did: a stop, not a surprise
                child.sup.request_stop(now)
            actions = child.sup.exited(now, code)
            if label:
                self._stopped_on_purpose(child, label)
            if code == EXIT_CONFIG and child.sup.state is State.CONFIG_ERROR:
                node_reason = self._node_reason(child.name)
                if node_reason:
                    child.sup.reason = node_reason
                    actions = [Alert(a.name, a.kind, a.level, node_reason) if isinstance(a, Alert) else a
                               for a in actions]
            self.log.info("node_exited", node=child.name, pid=pid, code=code, was=before.value,
                          now=child.sup.state.value)
            self._execute(actions, child)
            self._write_node(child)
            if child.removed and child.sup.state is State.STOPPED:
                self._safe(self.store.remove_node, child.name)
                del self.children[child.name]

    def _unwanted_now(self, child: Child) -> str | None:
        """For an account node that exited 0 unasked: "disabled"/"removed"/... when its
        account (read fresh from the store) no longer wants it on this host, else None."""
        if not child.is_account:
            return None
        try:
            doc = self.store.get_account(child.name)
        except StoreError:
            return None
        if doc is None:
            return "removed"
        if doc.get("enabled", True) is False:
            return "disabled"
        if not same_host(doc.get("host"), self.opts.host):
            return f"assigned to host {doc.get('host')!r}"
        return None

    def _node_reason(self, name: str) -> str | None:
        try:
            doc = self.store.get_node(name) or {}
        except StoreError:
            return None
        reason = doc.get("reason")
        return reason if isinstance(reason, str) and reason else None

    # ================================================================== actions out
    def _execute(self, actions: list[Action], child: Child | None = None) -> None:
        for action in actions:
            target = self.children.get(action.name)
            if target is None:
                continue
            if isinstance(action, Spawn):
                self._spawn(target)
            elif isinstance(action, Terminate):
                if target.handle is not None:
                    self._request_stop(target)
            elif isinstance(action, Kill):
                if target.handle is not None:
                    self.log.error("killing_unresponsive_node", node=target.name, pid=target.handle.pid,
                                   reason=action.reason)
                    target.handle.kill()
            elif isinstance(action, Alert):
                self._event(action.kind, account=target.name if target.is_account else None,
                            level=action.level, node_name=target.name, message=action.message)
                self._alert(target, action)
                self._write_node(target)

    def _request_stop(self, child: Child) -> None:
        """Graceful stop, bus first: ``ctl stop`` to a node that listens on the bus, the OS
        request (CTRL_BREAK / SIGTERM) ``BUS_STOP_GRACE_S`` later if it is still up (or at
        once for processes that do not listen, or when the bus is not there), and a kill at
        the stop deadline (``_enforce_stop_deadline``)."""
        assert child.handle is not None
        now = self.clock()
        child.stop_deadline = now + (1.0 if self.hurry else self.opts.stop_timeout_s)
        sent = False
        if child.kind in BUS_STOP_KINDS and self.publisher is not None and not self.hurry:
            try:
                self.publisher.publish(Control(target=child.name, command="stop", sender=LAUNCHER_NODE, ts_ms=now_ms(),
                                               args={"reason": child.stop_label or "launcher stop"}))
                sent = True
            except Exception as exc:  # the bus must never stop supervision
                self.log.warning("ctl_stop_not_published", node=child.name, error=str(exc))
        if sent:
            child.signal_at = now + BUS_STOP_GRACE_S
            self.log.info("node_stop_sent", node=child.name, pid=child.handle.pid, via="bus")
        else:
            child.signal_at = None
            child.handle.request_stop()
            self.log.info("node_stop_sent", node=child.name, pid=child.handle.pid, via="signal")

    def _alert(self, target: Child, action: Alert) -> None:
        if self.alerts is None or action.level not in ("error", "critical"):
            return
        from alerts import Alert as PhoneAlert  # the launcher's only use of alerts/

        self.alerts.send(PhoneAlert(account=target.name, rule="supervision", level="critical",
                                    action_taken=action.kind.replace("_", " "), message=action.message,
                                    node=self.store_name))

    def _spawn(self, child: Child) -> None:
        now = self.clock()
        refusal = self._refusal(child)
        if refusal:
            self._execute(child.sup.hold_config_error(refusal), child)
            self._write_node(child)
            return
        try:
            child.handle = ProcessHandle(child.name, self._argv(child), log_path=self._out_path(child.name),
                                         env=self._env())
        except OSError as exc:
            self._execute(child.sup.spawn_failed(now, str(exc)), child)
            return
        if child.sup.spawns:  # not this launcher's first start of it: a restart
            child.last_restart_reason = child.sup.reason or (f"exit code {child.sup.last_exit_code}"
                                                             if child.sup.last_exit_code is not None else "restart")
            child.last_restart_ms = now_ms()
        child.stop_label = None
        child.sup.spawned(now, child.handle.pid)
        child.started_ms = now_ms()
        child.stats = None
        self.log.info("node_spawned", node=child.name, kind=child.kind, pid=child.handle.pid,
                      restarts=child.restarts_before + child.sup.restarts)
        self._event("node_started", account=child.name if child.is_account else None,
                    node_name=child.name, pid=child.handle.pid, restarts=child.restarts_before + child.sup.restarts)
        self._write_node(child)

    def _refusal(self, child: Child) -> str | None:
        """Why an account node must not start (bad document), or None. The node runs
        the same validation itself and exits 78; checking first keeps a broken account
        from costing a process start every backoff."""
        if not child.is_account:
            return None
        if child.name in RESERVED_NAMES or not is_valid_name(child.name):
            return str(AccountConfigError(child.name, "name", ACCOUNT_NAME_RULE, child.name))
        doc = self._accounts.get(child.name)
        if doc is None:
            return f"account {child.name!r} is not in the store"
        try:
            validate_account(doc)
        except AccountConfigError as exc:
            return str(exc)
        return terminal_conflicts(self._accounts.values(), default_sim_endpoint=self.opts.sim_endpoint).get(child.name)

    def _argv(self, child: Child) -> list[str]:
        o, py = self.opts, self.opts.python
        if child.kind == "proxy":
            return [py, "-m", "messaging.proxy", "--xsub", o.bus_pub, "--xpub", o.bus_sub,
                    "--parent-pid", str(self.pid)]
        if child.kind == "sim":
            assert o.sim is not None
            argv = [py, "-m", "fleet.guard", "--parent-pid", str(self.pid), "-m", "sim", "serve",
                    "--endpoint", o.sim_endpoint, "--seed", str(o.sim.seed)]
            return argv + (["--world", o.sim.world] if o.sim.world else [])
        if child.kind == "trader":
            assert o.sim is not None
            return [py, "-m", "fleet.guard", "--parent-pid", str(self.pid), "-m", "sim", "trader",
                    "--endpoint", o.sim_endpoint, "--login", str(o.sim.trader_login),
                    "--rate", str(o.sim.trader_rate), "--seed", str(o.sim.seed)]
        script = o.nodes_dir / f"{child.kind}.py"
        # --standby: with launchers on several hosts (or a restart while the old process still
        # holds the lease) the account's lease decides who trades; the other waits.
        return [py, str(script), "--name", child.name, "--standby", "--host", o.host, "--db", o.db_url, "--bus-pub", o.bus_pub,
                "--bus-sub", o.bus_sub, "--sim-endpoint", o.sim_endpoint, "--parent-pid", str(self.pid),
                "--log-dir", str(o.log_dir)] + (["--data-dir", str(o.data_dir)] if o.data_dir else [])

    def _env(self) -> dict[str, str]:
        env = dict(os.environ)
        paths = [str(ROOT)] + ([env["PYTHONPATH"]] if env.get("PYTHONPATH") else [])
        env["PYTHONPATH"] = os.pathsep.join(paths)
        env["COPYHUB_DATABASE_URL"] = self.opts.db_url
        if self.opts.config_file:
            env["COPYHUB_CONFIG"] = self.opts.config_file
        # a supervised node logs to its own rotated file; its <name>.out keeps only what the
        # logger cannot catch (a crash before logging starts, a print on the way out)
        env["COPYHUB_LOG_CONSOLE"] = "0"
        env.setdefault("PYTHONUNBUFFERED", "1")
        return env

    def _enforce_stop_deadline(self, child: Child, now: float) -> None:
        if child.handle is not None and child.signal_at is not None and now >= child.signal_at:
            child.signal_at = None
            self.log.warning("node_ignored_bus_stop_signalling", node=child.name, pid=child.handle.pid,
                             waited_s=BUS_STOP_GRACE_S)
            child.handle.request_stop()
        if child.handle is not None and child.stop_deadline is not None and now >= child.stop_deadline:
            self.log.warning("stop_deadline_passed_killing", node=child.name, pid=child.handle.pid)
            child.handle.kill()

    # ================================================================== reporting
    def publish_stats(self) -> None:
        """Per node: pid, state, uptime, restarts, CPU, RSS, last exit -> store and bus."""
        info: dict[str, Any] = {}
        for child in self.children.values():
            if child.handle is not None:
                child.stats = child.handle.stats()
                child.handle.cap_output()
            info[child.name] = self._write_node(child)
        self._safe(self.store.upsert_node, self.store_name, {
            "kind": "launcher", "supervisor_state": "RUNNING", "proc_pid": self.pid, "launcher_host": self.opts.host,
            "started_ms": self._started_ms, "stats_ms": now_ms(), "nodes": sorted(self.children),
            "standby": sorted(c.name for c in self.children.values() if c.standby and c.handle is not None)})
        if self.publisher is not None:
            try:
                self.publisher.publish(Status(node=LAUNCHER_NODE, role="launcher", state="RUNNING", pid=self.pid,
                                              ts_ms=now_ms(), info={"host": self.opts.host, "nodes": info}))
            except Exception as exc:  # the bus must never stop supervision
                self.log.warning("status_not_published", error=str(exc))

    def node_fields(self, child: Child) -> dict[str, Any]:
        sup, st = child.sup, child.stats
        # a running node's own note (refused reload, silent bus, standby, store wait) says more
        # than the reason of an earlier restart
        alive = sup.state in (State.STARTING, State.RUNNING)
        reason = (child.note if alive and child.note else sup.reason or child.note) or None
        return {
            "kind": child.kind, "supervisor_state": sup.state.value, "supervisor_reason": reason,
            "restarts": child.restarts_before + sup.restarts, "last_restart_reason": child.last_restart_reason,
            "last_restart_ms": child.last_restart_ms, "uptime_s": round(sup.uptime(self.clock()), 1),
            "cpu_percent": st.cpu_percent if st else None, "rss_bytes": st.rss_bytes if st else None,
            "last_exit_code": sup.last_exit_code, "started_ms": child.started_ms, "proc_pid": sup.pid,
            "launcher_host": self.opts.host, "launcher_pid": self.pid, "stats_ms": now_ms(),
        }

    def _write_node(self, child: Child) -> dict[str, Any]:
        fields = self.node_fields(child)
        if not child.is_account:
            fields["role"] = child.kind  # infra processes write no doc of their own
        if child.standby and child.sup.state in (State.STARTING, State.RUNNING):
            return fields  # the lease holder's launcher (maybe on another host) owns that document
        self._safe(self.store.upsert_node, child.name, fields)
        return fields

    def _event(self, kind: str, *, account: str | None = None, level: str = "info", **data: Any) -> None:
        """Audit trail (store) and live feed (bus ``event.launcher``); never raises."""
        self._safe(self.store.add_event, kind, node=LAUNCHER_NODE, account=account, level=level, **data)
        log = getattr(self.log, {"critical": "critical", "error": "error", "warning": "warning"}.get(level, "info"))
        log(kind, account=account, **data)
        if self.publisher is not None:
            try:
                self.publisher.publish(Event(node=LAUNCHER_NODE, ts_ms=now_ms(), event=kind, level=level,
                                             data={"account": account, **data}))
            except Exception as exc:
                self.log.warning("event_not_published", kind=kind, error=str(exc))

    def _safe(self, fn: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
        try:
            return fn(*args, **kwargs)
        except StoreError as exc:
            self.log.warning("store_unavailable", error=str(exc))
            return None

    # ================================================================== helpers
    def _add_child(self, name: str, kind: str, policy: Policy) -> Child:
        child = Child(name=name, kind=kind, sup=Supervised(name, policy))
        try:  # restart counts go on across launcher processes
            doc = self.store.get_node(name) or {}
        except StoreError:
            doc = {}
        if doc.get("launcher_host") in (None, self.opts.host):
            child.restarts_before = int(doc.get("restarts") or 0) if isinstance(doc.get("restarts"), int) else 0
            child.last_restart_reason = doc.get("last_restart_reason")
            child.last_restart_ms = doc.get("last_restart_ms")
        self.children[name] = child
        return child

    def _out_path(self, name: str) -> Path:
        return self.opts.log_dir / f"{name}.out"

    def _settle(self, seconds: float) -> None:
        """Keep supervising (not sleeping) for ``seconds``."""
        end = self.clock() + seconds
        while self.clock() < end and not self.stop_event.is_set():
            self.step(min(0.1, max(0.0, end - self.clock())))

    def _wait_first_heartbeats(self, names: list[str], what: str = "masters") -> None:
        """Masters first: slaves start once every master has said hello (or the wait
        times out; slaves trust nothing before a snapshot anyway)."""
        deadline = self.clock() + self.opts.master_wait_s
        while names and self.clock() < deadline and not self.stop_event.is_set():
            self.step(0.1)
            pending = [n for n in names if n in self.children
                       and self.children[n].sup.state in (State.STARTING, State.BACKOFF)
                       and self.children[n].sup.last_heartbeat is None]
            if not pending:
                return
        late = [n for n in names if n in self.children and self.children[n].sup.last_heartbeat is None]
        if late:
            self.log.warning("no_first_heartbeat", what=what, nodes=late, waited_s=self.opts.master_wait_s)

    def _clear_stale_flags(self) -> None:
        """Resets left from an earlier run mean nothing to a fresh start."""
        try:
            for key in self.store.list_flags(RESET_PREFIX):
                self.store.delete_flag(key)
        except StoreError:
            pass

    def _remove_stale_node_docs(self) -> None:
        """Drop documents of nodes this host ran before but no longer runs."""
        try:
            docs = self.store.list_nodes()
        except StoreError:
            return
        for doc in docs:
            name = doc.get("name")
            if (name not in self.children and name != self.store_name
                    and doc.get("launcher_host") == self.opts.host):
                self._safe(self.store.remove_node, name)


def _wait_tcp(endpoints: list[str], timeout_s: float, child: Child | None) -> bool:
    """True once every ``tcp://host:port`` accepts connections (the proxy is bound).
    ``child``: the proxy process when we run it (its exit ends the wait), None when it runs elsewhere."""
    deadline = time.monotonic() + timeout_s
    pending = [e for e in endpoints if e.startswith("tcp://")]
    if len(pending) < len(endpoints):  # ipc:// and friends: no cheap probe, give it a moment
        time.sleep(0.5)
    while pending and time.monotonic() < deadline:
        if child is not None and (child.handle is None or child.handle.poll() is not None):
            return False
        host, _, port = pending[0].rpartition("//")[2].rpartition(":")
        try:
            with socket.create_connection((host, int(port)), timeout=0.5):
                pending.pop(0)
        except OSError:
            time.sleep(0.05)
    return not pending


def _wait_sim(endpoint: str, timeout_s: float, child: Child) -> bool:
    from sim.client import AdminClient, SimUnavailable
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if child.handle is None or child.handle.poll() is not None:
            return False
        admin = AdminClient(endpoint, timeout_ms=500)
        try:
            admin.ping()
            return True
        except SimUnavailable:
            time.sleep(0.1)
        finally:
            close = getattr(admin, "close", None)
            if close:
                close()
    return False
