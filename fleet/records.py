"""What the launcher writes: node documents (``nodes`` collection), its own document,
audit events (store + bus ``event.launcher``), the stats heartbeat, and phone alerts.
Nothing here raises on a store or bus failure: supervision goes on."""
from __future__ import annotations

from collections.abc import Callable
from typing import Any

from db import StoreError, now_ms
from fleet.options import LAUNCHER_NODE, Child, FleetOptions
from fleet.supervision import Alert, State
from messaging.schema import Event, Status


class FleetRecorder:
    """Records for one launcher process (``pid`` on ``opts.host``). ``publisher()`` gives
    the bus publisher or None (before the bus is up); ``clock()`` the monotonic clock."""

    def __init__(self, store: Any, opts: FleetOptions, log: Any, *, pid: int, clock: Callable[[], float],
                 publisher: Callable[[], Any], alerts: Any = None) -> None:
        self.store = store
        self.opts = opts
        self.log = log
        self.pid = pid
        self.clock = clock
        self.publisher = publisher
        self.alerts = alerts  # an alerts.AlertDispatcher: FATAL and kills reach the phone too
        self.store_name = f"{LAUNCHER_NODE}@{opts.host}"

    def safe(self, fn: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
        """``fn(*args, **kwargs)``; a StoreError is logged and gives None."""
        try:
            return fn(*args, **kwargs)
        except StoreError as exc:
            self.log.warning("store_unavailable", error=str(exc))
            return None

    def event(self, kind: str, *, account: str | None = None, level: str = "info", **data: Any) -> None:
        """Audit trail (store) and live feed (bus ``event.launcher``); never raises."""
        self.safe(self.store.add_event, kind, node=LAUNCHER_NODE, account=account, level=level, **data)
        log = getattr(self.log, {"critical": "critical", "error": "error", "warning": "warning"}.get(level, "info"))
        log(kind, account=account, **data)
        publisher = self.publisher()
        if publisher is not None:
            try:
                publisher.publish(Event(node=LAUNCHER_NODE, ts_ms=now_ms(), event=kind, level=level,
                                        data={"account": account, **data}))
            except Exception as exc:
                self.log.warning("event_not_published", kind=kind, error=str(exc))

    def phone_alert(self, target: Child, action: Alert) -> None:
        """A supervision alert of level error/critical to the operator's channels."""
        if self.alerts is None or action.level not in ("error", "critical"):
            return
        from alerts import Alert as PhoneAlert  # the launcher's only use of alerts/

        self.alerts.send(PhoneAlert(account=target.name, rule="supervision", level="critical",
                                    action_taken=action.kind.replace("_", " "), message=action.message,
                                    node=self.store_name))

    def node_fields(self, child: Child) -> dict[str, Any]:
        """The launcher's fields of ``child``'s node document (state, reason, restarts, stats)."""
        sup, st = child.sup, child.stats
        # a live process's reason is what it says about itself now (its error, a refused
        # reload, a silent bus, standby, a store wait) or nothing: never the launcher's verdict
        # on an earlier incarnation ("disabled; N open copies left unmanaged", "exited with
        # code -9; restart in 1 s"), which stays in last_restart_reason / last_exit_code
        alive = sup.state in (State.STARTING, State.RUNNING)
        reason = (child.note if alive else sup.reason or child.note) or None
        return {
            "kind": child.kind, "supervisor_state": sup.state.value, "supervisor_reason": reason,
            "restarts": child.restarts_before + sup.restarts, "last_restart_reason": child.last_restart_reason,
            "last_restart_ms": child.last_restart_ms, "uptime_s": round(sup.uptime(self.clock()), 1),
            "cpu_percent": st.cpu_percent if st else None, "rss_bytes": st.rss_bytes if st else None,
            "last_exit_code": sup.last_exit_code, "started_ms": child.started_ms, "proc_pid": sup.pid,
            "launcher_host": self.opts.host, "launcher_pid": self.pid, "stats_ms": now_ms(),
        }

    def write_node(self, child: Child) -> dict[str, Any]:
        """Merge ``node_fields`` into ``child``'s document (not while it stands by: the
        lease holder's launcher owns it then); returns the fields."""
        fields = self.node_fields(child)
        if not child.is_account:
            fields["role"] = child.kind  # infra processes write no doc of their own
        if child.standby and child.sup.state in (State.STARTING, State.RUNNING):
            return fields  # the lease holder's launcher (maybe on another host) owns that document
        self.safe(self.store.upsert_node, child.name, fields)
        return fields

    def publish_stats(self, children: dict[str, Child], started_ms: int) -> None:
        """Per node: pid, state, uptime, restarts, CPU, RSS, last exit -> store and bus."""
        info: dict[str, Any] = {}
        for child in children.values():
            if child.handle is not None:
                child.stats = child.handle.stats()
                child.handle.cap_output()
            info[child.name] = self.write_node(child)
        self.safe(self.store.upsert_node, self.store_name, {
            "kind": "launcher", "supervisor_state": "RUNNING", "proc_pid": self.pid, "launcher_host": self.opts.host,
            "started_ms": started_ms, "stats_ms": now_ms(), "nodes": sorted(children),
            "standby": sorted(c.name for c in children.values() if c.standby and c.handle is not None)})
        publisher = self.publisher()
        if publisher is not None:
            try:
                publisher.publish(Status(node=LAUNCHER_NODE, role="launcher", state="RUNNING", pid=self.pid,
                                         ts_ms=now_ms(), info={"host": self.opts.host, "nodes": info}))
            except Exception as exc:  # the bus must never stop supervision
                self.log.warning("status_not_published", error=str(exc))
