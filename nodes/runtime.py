"""What every node process shares: arguments, logging, store, bus, terminal, heartbeat.

A node is a thin loop: this module does the plumbing so ``master.py`` and ``slave.py``
only hold their own loop. Exit codes are the contract with the launcher:
0 stopped on request, 75 restart me (config change I cannot hot-reload),
78 my account document is invalid (do not restart until it changes), other = crash.
"""
from __future__ import annotations

import argparse
import os
import sys
import threading
import time
from pathlib import Path
from typing import Any, Callable

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:  # `python nodes/slave.py` puts nodes/ first on sys.path, not the root
    sys.path.insert(0, str(ROOT))

from config import settings  # noqa: E402
from copier.accounts import AccountConfig, AccountConfigError, validate_account  # noqa: E402
from db import StoreUnavailable, open_store  # noqa: E402
from messaging.publisher import Publisher  # noqa: E402
from messaging.schema import Event, Status  # noqa: E402
from messaging.subscriber import Subscriber  # noqa: E402
from terminals import TerminalError, open_terminal  # noqa: E402
from utils.logging import setup_logging  # noqa: E402
from utils.process import install_stop_handlers, watch_parent  # noqa: E402

EXIT_OK = 0
EXIT_RESTART = 75
EXIT_BAD_CONFIG = 78


def utc_ms() -> int:
    return time.time_ns() // 1_000_000


def node_arguments(kind: str) -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog=f"nodes/{kind}.py", description=f"copyhub {kind} node")
    parser.add_argument("--name", required=True, help="account name in the store")
    parser.add_argument("--path", help="terminal64.exe path (overrides the account's path)")
    parser.add_argument("--db", default=None, help="store URL (default: COPYHUB_DATABASE_URL / settings)")
    parser.add_argument("--bus-pub", default=settings.bus_pub_endpoint, help="proxy XSUB endpoint")
    parser.add_argument("--bus-sub", default=settings.bus_sub_endpoint, help="proxy XPUB endpoint")
    parser.add_argument("--sim-endpoint", default=settings.SIM_ENDPOINT, help="simulator server for kind 'sim'")
    parser.add_argument("--parent-pid", type=int, default=None, help="exit when this process is gone")
    parser.add_argument("--log-dir", default=settings.LOG_DIR)
    parser.add_argument("--log-level", default=settings.LOG_LEVEL)
    parser.add_argument("--data-dir", default=settings.DATA_DIR, help="holds the KILL_SWITCH file")
    if kind == "slave":
        parser.add_argument("--dry-run", action="store_true", help="plan and record everything, send nothing")
    return parser


class NodeRuntime:
    """Plumbing for one node process; ``role`` is "master" or "slave"."""

    def __init__(self, role: str, args: argparse.Namespace) -> None:
        self.role = role
        self.name: str = args.name
        self.args = args
        self.pid = os.getpid()
        self.log = setup_logging(f"{role}-{self.name}", self.name, log_dir=args.log_dir, level=args.log_level)
        self.stop_event = threading.Event()
        self.exit_code = EXIT_OK
        install_stop_handlers(self.request_stop)
        watch_parent(args.parent_pid, self._orphaned)
        self.store = open_store(args.db or settings.database_url)
        self.publisher = Publisher(args.bus_pub)
        self.subscriber: Subscriber | None = None
        self.state = "STARTING"
        self.last_error: str | None = None
        self._last_store_heartbeat = 0

    # ------------------------------------------------------------------ lifecycle
    def request_stop(self, code: int = EXIT_OK) -> None:
        if not self.stop_event.is_set():
            self.exit_code = code
            self.stop_event.set()

    def _orphaned(self) -> None:
        self.log.error("parent_gone", parent_pid=self.args.parent_pid)
        self.request_stop(EXIT_OK)

    @property
    def stopping(self) -> bool:
        return self.stop_event.is_set()

    def subscribe(self, topics: list[str]) -> Subscriber:
        self.subscriber = Subscriber(self.args.bus_sub, topics)
        return self.subscriber

    # ------------------------------------------------------------------ account
    def load_account(self) -> AccountConfig:
        """Load and validate this node's account document; exit 78 naming the field if bad."""
        doc = self.store.get_account(self.name)
        if doc is None:
            self.refuse_config(f"account {self.name!r} is not in the store")
        assert doc is not None
        try:
            cfg = validate_account(
                doc,
                default_slippage=settings.DEFAULT_SLIPPAGE_TOLERANCE,
                default_magic=settings.DEFAULT_MAGIC_NUMBER,
            )
        except AccountConfigError as exc:
            self.refuse_config(str(exc))
            raise  # unreachable: refuse_config exits
        if (cfg.is_master and self.role != "master") or (cfg.is_slave and self.role != "slave"):
            self.refuse_config(f"account {self.name!r}: field 'type' is {doc.get('type')!r}, this is a {self.role} node")
        return cfg

    def read_account_doc(self) -> dict[str, Any] | None:
        try:
            return self.store.get_account(self.name)
        except StoreUnavailable as exc:
            self.log.warning("store_unavailable", error=str(exc))
            return None

    def refuse_config(self, reason: str) -> None:
        """A bad account document stops this one node, loudly, with the reason stored."""
        self.log.error("config_error", reason=reason)
        try:
            self.store.upsert_node(self.name, {"role": self.role, "pid": self.pid, "state": "CONFIG_ERROR", "reason": reason, "heartbeat_ms": utc_ms()})
            self.store.add_event("config_error", node=self.name, account=self.name, level="error", reason=reason)
        except StoreUnavailable:
            pass
        print(f"copyhub {self.role} {self.name}: {reason}", file=sys.stderr)
        self.close()
        raise SystemExit(EXIT_BAD_CONFIG)

    # ------------------------------------------------------------------ terminal
    def connect_terminal(self, cfg: AccountConfig) -> Any | None:
        """Open the terminal, retrying with backoff until it answers or we are stopped."""
        delay = 0.5
        account: Any = cfg
        if self.args.path:
            account = {"name": cfg.name, "terminal": {"kind": "mt5", "path": self.args.path}}
        while not self.stopping:
            try:
                mt5 = open_terminal(account, default_sim_endpoint=self.args.sim_endpoint)
                self.log.info("terminal_connected")
                return mt5
            except TerminalError as exc:
                self.set_error(str(exc))
                self.log.warning("terminal_unavailable", error=str(exc), retry_in_s=delay)
                self.publish_status()
                self.stop_event.wait(delay)
                delay = min(delay * 2, 10.0)
        return None

    # ------------------------------------------------------------------ reporting
    def set_error(self, error: str | None) -> None:
        self.last_error = error
        self.state = "TERMINAL_ERROR" if error else "RUNNING"

    def publish_status(self, metrics: Any = None, info: dict[str, Any] | None = None) -> None:
        now = utc_ms()
        status = Status(node=self.name, role=self.role, state=self.state, pid=self.pid, ts_ms=now, account=metrics, error=self.last_error, info=info or {})
        self.publisher.publish(status)
        if now - self._last_store_heartbeat >= 1000:
            self._last_store_heartbeat = now
            fields = {"role": self.role, "pid": self.pid, "state": self.state, "heartbeat_ms": now, "error": self.last_error, "info": info or {}, "reason": None}
            if metrics is not None:
                fields["account"] = metrics.to_dict()
            try:
                self.store.upsert_node(self.name, fields)
            except StoreUnavailable as exc:
                self.log.warning("store_unavailable", error=str(exc))

    def event(self, kind: str, *, level: str = "info", **data: Any) -> None:
        """Audit trail: the store (durable) and the bus (live). Never raises."""
        try:
            self.store.add_event(kind, node=self.name, account=self.name, level=level, **data)
        except StoreUnavailable as exc:
            self.log.warning("event_not_stored", kind=kind, error=str(exc))
        try:
            self.publisher.publish(Event(node=self.name, ts_ms=utc_ms(), event=kind, level=level, data=_jsonable(data)))
        except Exception as exc:  # the bus must never break the trading loop
            self.log.warning("event_not_published", kind=kind, error=str(exc))

    def start_guardian(self, cfg: AccountConfig, mt5: Any, executor: Any) -> tuple[Any, Any]:
        """Alerts and the risk guardian of this node; a bad ``risk`` or alert setting is a config error."""
        from alerts import AlertConfigError, build_dispatcher_from_env
        from copier.risk import RiskConfigError
        from monitoring.guardian import Guardian

        try:
            alerts = build_dispatcher_from_env(self.log)
        except AlertConfigError as exc:
            self.refuse_config(str(exc))
        guardian = Guardian(self.name, self.role, cfg.risk, mt5, self.store, log=self.log, event=self.event, alerts=alerts,
                            eval_interval_ms=settings.RISK_EVAL_INTERVAL_MS, snapshot_interval_ms=settings.SNAPSHOT_INTERVAL_MS,
                            executor=executor, magic=cfg.magic, close_deviation=max(200, cfg.slippage_tolerance))
        try:
            guardian.start(utc_ms())
        except RiskConfigError as exc:
            alerts.close(timeout=1)
            self.refuse_config(f"account {self.name!r}: {exc}")
        return guardian, alerts

    def close(self) -> None:
        for closer in (getattr(self.subscriber, "close", None), self.publisher.close, self.store.close):
            if closer is None:
                continue
            try:
                closer()
            except Exception:
                pass


def _jsonable(data: dict[str, Any]) -> dict[str, Any]:
    out = {}
    for k, v in data.items():
        if isinstance(v, (str, int, float, bool)) or v is None:
            out[k] = v
        elif isinstance(v, dict):
            out[k] = _jsonable(v)
        elif isinstance(v, (list, tuple)):
            out[k] = [x if isinstance(x, (str, int, float, bool)) or x is None else str(x) for x in v]
        else:
            out[k] = str(v)
    return out


def run_node(role: str, main: Callable[[NodeRuntime], None]) -> None:
    """Entry point shared by nodes: parse args, build the runtime, run, exit with its code."""
    args = node_arguments(role).parse_args()
    try:
        runtime = NodeRuntime(role, args)
    except StoreUnavailable as exc:
        print(f"copyhub {role} {args.name}: store unavailable: {exc}", file=sys.stderr)
        raise SystemExit(1) from None
    try:
        main(runtime)
    except SystemExit:
        raise
    except Exception:
        runtime.log.exception("node_crashed")
        runtime.close()
        raise SystemExit(1) from None
    runtime.state = "STOPPED"
    runtime.log.info("node_stopped", exit_code=runtime.exit_code)
    runtime.close()
    raise SystemExit(runtime.exit_code)
