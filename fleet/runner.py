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
import threading
import time
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path
from typing import Any

import psutil

from db import StoreError, now_ms
from fleet.accounts_view import AccountBook
from fleet.commands import child_argv, child_env
from fleet.operator import RESET_PREFIX  # one definition of the flag names
from fleet.options import (  # noqa: F401 (re-exported: launcher.py and the tests import them from here)
    BUS_STOP_GRACE_S,
    BUS_STOP_KINDS,
    DEMO_SETTLE_S,
    INFRA_NAMES,
    INFRA_POLICY,
    LAUNCHER_NODE,
    RESERVED_NAMES,
    ROOT,
    STOP_ORDER,
    Child,
    FleetError,
    FleetOptions,
    SimOptions,
)
from fleet.procs import ProcessHandle
from fleet.readiness import wait_sim, wait_tcp
from fleet.reconcile import Desired, desired_nodes, plan
from fleet.records import FleetRecorder
from fleet.stopping import enforce_stop_deadline, request_stop
from fleet.supervision import EXIT_CONFIG, Action, Alert, Kill, Policy, Spawn, State, Supervised, Terminate
from messaging.publisher import Publisher
from messaging.schema import STORE_WAIT, Status
from messaging.subscriber import Subscriber
from utils.process import kill_tree


class Fleet:
    """Supervise one host's fleet. ``start()``, then ``run()``, then ``shutdown()``.

    The loop lives here; its parts, one job each: ``book`` (the accounts in the store,
    ``accounts_view``), ``records`` (node documents, events, stats, alerts, ``records``),
    ``stopping`` (bus stop, signal, kill), ``commands`` (argv and environment of a child),
    ``readiness`` (waiting for the proxy and the simulator).
    """

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
        self._next_reconcile = 0.0
        self._next_stats = 0.0
        self._started_ms = now_ms()
        self.pid = os.getpid()
        self.book = AccountBook(store, log, host=opts.host, sim_endpoint=opts.sim_endpoint)
        self.records = FleetRecorder(store, opts, log, pid=self.pid, clock=lambda: self.clock(),
                                     publisher=lambda: self.publisher, alerts=alerts)
        self.store_name = self.records.store_name

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
        if not wait_tcp([self.opts.bus_pub, self.opts.bus_sub], self.opts.ready_timeout_s, proxy):
            where = f"see {self._out_path(proxy.name)}" if proxy else "is the launcher that runs it up?"
            raise FleetError(f"bus proxy did not come up on {self.opts.bus_pub} / {self.opts.bus_sub}; {where}")
        self.publisher = Publisher(self.opts.bus_pub)
        self.subscriber = Subscriber(self.opts.bus_sub, ["status."])
        if self.opts.sim is not None:
            sim = self._add_child(INFRA_NAMES["sim"], "sim", INFRA_POLICY)
            self._execute(sim.sup.request_start(self.clock()))
            if not wait_sim(self.opts.sim_endpoint, self.opts.ready_timeout_s, sim):
                raise FleetError(f"simulator did not come up on {self.opts.sim_endpoint}; see {self._out_path(sim.name)}")
        self.records.event("fleet_starting", host=self.opts.host)
        self.book.load()
        desired = desired_nodes(self.book.accounts.values(), self.opts.host)
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
        self.records.event("fleet_started", host=self.opts.host, nodes=sorted(self.children))

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
            enforce_stop_deadline(child, now, self.log)
        if now >= self._next_reconcile:
            self._next_reconcile = now + self.opts.reconcile_interval_s
            self.reconcile()
        if now >= self._next_stats:
            self._next_stats = now + self.opts.stats_interval_s
            self.publish_stats()

    def shutdown(self) -> None:
        """Stop everything in STOP_ORDER: graceful request, deadline, then kill the tree."""
        self.records.event("fleet_stopping", host=self.opts.host)
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
                        enforce_stop_deadline(child, self.clock(), self.log)
            for child in group:
                if child.handle is not None:
                    self.log.warning("stop_deadline_passed_killing", node=child.name, pid=child.handle.pid)
                    child.handle.kill()
                    self._poll_exits(self.clock())
            for child in group:
                self.records.write_node(child)
        for stray in psutil.Process(self.pid).children(recursive=True):
            self.log.warning("killing_stray_process", pid=stray.pid)
            kill_tree(stray.pid, timeout_s=2.0)
        self.records.event("fleet_stopped", host=self.opts.host)
        self.records.safe(self.store.upsert_node, self.store_name,
                          {"kind": "launcher", "supervisor_state": "STOPPED", "stats_ms": now_ms()})
        for closer in (self.subscriber, self.publisher):
            if closer is not None:
                closer.close()

    # ================================================================== reconcile
    def reconcile(self) -> None:
        """Re-read accounts (only when their version moved) and operator resets."""
        if self.book.load():
            desired = desired_nodes(self.book.accounts.values(), self.opts.host)
            current = {c.name: c.desired for c in self.children.values() if c.is_account and c.desired is not None}
            p = plan(desired, current, self.book.accounts.keys())
            now = self.clock()
            for d in p.start:
                self._want(d)
            for name, why in p.stop:
                child = self.children[name]
                child.desired = None
                child.removed = why == "account removed"
                self.records.event("node_stop_requested", account=name, reason=why)
                label = self.book.stop_label(name)
                self._execute(child.sup.request_stop(now), child)
                self._stopped_on_purpose(child, label)
                if child.removed and child.handle is None:
                    self.records.safe(self.store.remove_node, name)
                    del self.children[name]
                else:
                    self.records.write_node(child)
            for d in p.restart:
                child = self.children[d.name]
                child.desired, child.kind = d, d.role or child.kind
                self.records.event("node_restart_requested", account=d.name, reason="account type changed")
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
                        and child.sup.last_exit_code is None and self.book.refusal(child) is None):
                    self._execute(child.sup.config_changed(now), child)
        self._apply_resets()
        self._store_heartbeats()

    def _stopped_on_purpose(self, child: Child, label: str) -> None:
        """The node stops because its account was disabled, removed or moved: say that
        (not "exited on its own"), and warn when its open copies are left unmanaged."""
        if child.stop_label == label:
            return
        child.stop_label = label
        unmanaged = self.book.unmanaged_copies(child)
        reason = label
        if unmanaged:
            shown = ", ".join(unmanaged[:5]) + (f" and {len(unmanaged) - 5} more" if len(unmanaged) > 5 else "")
            reason = (f"{label}; {len(unmanaged)} open cop{'y' if len(unmanaged) == 1 else 'ies'} left unmanaged "
                      f"(nothing closes or follows {'it' if len(unmanaged) == 1 else 'them'} now): {shown}")
            self.records.event("copies_unmanaged", account=child.name, level="warning", node_name=child.name,
                               count=len(unmanaged), copies=unmanaged[:50], why=label)
        child.sup.reason = reason
        self.records.write_node(child)

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
            self.records.safe(self.store.delete_flag, key)
            if child is None or (child.is_account and child.desired is None):
                continue
            self.records.event("node_reset", account=name, previous_state=child.sup.state.value)
            self._execute(child.sup.reset(self.clock()), child)
            self.records.write_node(child)

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
            label = self.book.unwanted_now(child) if code == 0 and before in (State.STARTING, State.RUNNING) else None
            if label:  # it saw its account disabled (or removed) before our reconcile did: a stop, not a surprise
                child.sup.request_stop(now)
            actions = child.sup.exited(now, code)
            if label:
                self._stopped_on_purpose(child, label)
            if code == EXIT_CONFIG and child.sup.state is State.CONFIG_ERROR:
                node_reason = self.book.node_reason(child.name)
                if node_reason:
                    child.sup.reason = node_reason
                    actions = [Alert(a.name, a.kind, a.level, node_reason) if isinstance(a, Alert) else a
                               for a in actions]
            self.log.info("node_exited", node=child.name, pid=pid, code=code, was=before.value,
                          now=child.sup.state.value)
            self._execute(actions, child)
            self.records.write_node(child)
            if child.removed and child.sup.state is State.STOPPED:
                self.records.safe(self.store.remove_node, child.name)
                del self.children[child.name]

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
                self.records.event(action.kind, account=target.name if target.is_account else None,
                                   level=action.level, node_name=target.name, message=action.message)
                self._alert(target, action)
                self.records.write_node(target)

    def _request_stop(self, child: Child) -> None:
        """Graceful stop, bus first (``stopping.request_stop``); the deadline is enforced each turn."""
        request_stop(child, now=self.clock(), stop_timeout_s=self.opts.stop_timeout_s, hurry=self.hurry,
                     publisher=self.publisher, log=self.log)

    def _alert(self, target: Child, action: Alert) -> None:
        self.records.phone_alert(target, action)

    def _spawn(self, child: Child) -> None:
        now = self.clock()
        refusal = self.book.refusal(child)
        if refusal:
            self._execute(child.sup.hold_config_error(refusal), child)
            self.records.write_node(child)
            return
        try:
            child.handle = ProcessHandle(child.name, child_argv(self.opts, child, self.pid),
                                         log_path=self._out_path(child.name), env=self._env())
        except OSError as exc:
            self._execute(child.sup.spawn_failed(now, str(exc)), child)
            return
        if child.sup.spawns:  # not this launcher's first start of it: a restart
            child.last_restart_reason = child.sup.reason or (f"exit code {child.sup.last_exit_code}"
                                                             if child.sup.last_exit_code is not None else "restart")
            child.last_restart_ms = now_ms()
        child.stop_label = None
        child.note = None  # what the previous process said; the new one speaks for itself
        child.sup.spawned(now, child.handle.pid)
        child.started_ms = now_ms()
        child.stats = None
        self.log.info("node_spawned", node=child.name, kind=child.kind, pid=child.handle.pid,
                      restarts=child.restarts_before + child.sup.restarts)
        self.records.event("node_started", account=child.name if child.is_account else None,
                           node_name=child.name, pid=child.handle.pid, restarts=child.restarts_before + child.sup.restarts)
        self.records.write_node(child)

    def _env(self) -> dict[str, str]:
        return child_env(self.opts)

    def publish_stats(self) -> None:
        """Per node: pid, state, uptime, restarts, CPU, RSS, last exit -> store and bus."""
        self.records.publish_stats(self.children, self._started_ms)

    def node_fields(self, child: Child) -> dict[str, Any]:
        return self.records.node_fields(child)

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
                self.records.safe(self.store.remove_node, name)
