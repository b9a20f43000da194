"""The monitor node: web dashboard, JSON API, Prometheus /metrics, alerts on FAILED/SKIPPED copies.

    python nodes/monitor.py --name monitor [--http-host 127.0.0.1] [--http-port 8080]

It subscribes to the bus (``status.``, ``event.``, ``pos.``) and reads the store; it is
never on the copy path and never writes on it (its only writes are the operator's
controls, through fleet/controls.py like ``cli.py``, and its own node document).
Loopback needs no login; any other bind refuses to start without
``COPYHUB_DASHBOARD_TOKEN`` (dashboard/security.py). A port already taken is not a crash:
the node keeps running, says so in its status and retries the bind every few seconds.

Exit codes: 0 stopped, 78 refused configuration (non-loopback bind without a token, bad
alert settings), 1 store unavailable at start.
"""
from __future__ import annotations

import argparse
import os
import socket
import sys
import threading
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from config import settings  # noqa: E402
from db import StoreError, now_ms, open_store  # noqa: E402
from utils.logging import setup_logging  # noqa: E402
from utils.process import install_stop_handlers, watch_parent  # noqa: E402

EXIT_OK, EXIT_STORE, EXIT_CONFIG = 0, 1, 78
HEARTBEAT_S = settings.HEARTBEAT_INTERVAL_MS / 1000.0
REBIND_S = 5.0


def arguments() -> argparse.ArgumentParser:
    """The launcher's node arguments (--name, --db, --bus-pub, --bus-sub, --parent-pid,
    --log-dir ...) plus the HTTP address."""
    p = argparse.ArgumentParser(prog="nodes/monitor.py", description="copyhub monitor: dashboard, API, /metrics")
    p.add_argument("--name", default="monitor", help="this node's name on the bus and in the store")
    p.add_argument("--config", default=None, metavar="PATH",  # read by config.py before these defaults
                   help="settings file (default: COPYHUB_CONFIG, else copyhub.toml beside launcher.py)")
    p.add_argument("--db", default=None, help="store URL (default: COPYHUB_DATABASE_URL / settings)")
    p.add_argument("--bus-pub", default=settings.bus_pub_endpoint, help="proxy XSUB endpoint (controls are published here)")
    p.add_argument("--bus-sub", default=settings.bus_sub_endpoint, help="proxy XPUB endpoint")
    p.add_argument("--parent-pid", type=int, default=None, help="exit when this process is gone")
    p.add_argument("--log-dir", default=settings.LOG_DIR)
    p.add_argument("--log-level", default=settings.LOG_LEVEL)
    p.add_argument("--http-host", default=settings.DASHBOARD_HOST, help="dashboard bind address (DASHBOARD_HOST)")
    p.add_argument("--http-port", type=int, default=settings.DASHBOARD_PORT, help="dashboard port (DASHBOARD_PORT)")
    # given by the launcher to every node; the monitor has no use for them
    for flag in ("--sim-endpoint", "--host", "--data-dir"):
        p.add_argument(flag, default=None, help=argparse.SUPPRESS)
    p.add_argument("--standby", action="store_true", help=argparse.SUPPRESS)
    return p


def bind(host: str, port: int) -> socket.socket:
    """A listening TCP socket for uvicorn (OSError when the address is taken)."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    if os.name != "nt":  # on Windows SO_REUSEADDR lets two servers share a port: never there
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind((host.strip("[]"), port))
        sock.listen(128)
    except OSError:
        sock.close()
        raise
    sock.setblocking(False)
    return sock


class HttpServer:
    """uvicorn in a thread, on a socket we bound ourselves (so a taken port is a status, not a crash)."""

    def __init__(self, app: Any, host: str, port: int, log: Any) -> None:
        self.app, self.host, self.port, self.log = app, host, port, log
        self.server: Any = None
        self.thread: threading.Thread | None = None
        self.error: str | None = None
        self._next_try = 0.0

    @property
    def url(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"http://{host}:{self.port}/"

    def ensure(self) -> None:
        """Start serving if not yet (retrying a taken port every REBIND_S)."""
        if self.thread is not None or time.monotonic() < self._next_try:
            return
        import uvicorn

        try:
            sock = bind(self.host, self.port)
        except OSError as exc:
            self._next_try = time.monotonic() + REBIND_S
            first = self.error is None
            self.error = f"dashboard cannot listen on {self.host}:{self.port} ({exc.strerror or exc}); retrying every {REBIND_S:g} s"
            if first:
                self.log.error("dashboard_bind_failed", host=self.host, port=self.port, error=str(exc))
            return
        config = uvicorn.Config(self.app, log_level="warning", access_log=False, lifespan="off",
                                timeout_graceful_shutdown=1, ws="none")
        self.server = uvicorn.Server(config)
        self.thread = threading.Thread(target=self.server.run, kwargs={"sockets": [sock]}, name="http", daemon=True)
        self.thread.start()
        self.error = None
        self.log.info("dashboard_listening", url=self.url)

    def stop(self) -> None:
        if self.server is not None:
            self.server.should_exit = True
        if self.thread is not None:
            self.thread.join(timeout=5)


def main(argv: Sequence[str] | None = None) -> int:
    args = arguments().parse_args(argv)
    log = setup_logging("monitor", args.name, log_dir=args.log_dir, level=args.log_level,
                        console=bool(settings.LOG_CONSOLE))  # under the launcher: its log file, not monitor.out
    from dashboard import security

    try:
        token = security.required_token(args.http_host, settings.DASHBOARD_TOKEN)
    except security.DashboardConfigError as exc:
        log.error("config_error", reason=str(exc))
        print(f"copyhub monitor: {exc}", file=sys.stderr)
        return EXIT_CONFIG
    from alerts import AlertConfigError, build_dispatcher_from_env

    try:
        alerts = build_dispatcher_from_env(log)
    except AlertConfigError as exc:
        print(f"copyhub monitor: {exc}", file=sys.stderr)
        return EXIT_CONFIG
    try:
        store = open_store(args.db or settings.database_url)
    except StoreError as exc:
        print(f"copyhub monitor: store unavailable: {exc}", file=sys.stderr)
        alerts.close(timeout=1)
        return EXIT_STORE
    stop = threading.Event()
    install_stop_handlers(stop.set)
    watch_parent(args.parent_pid, stop.set)
    try:
        run(args, log, store, alerts, token, stop)
    finally:
        alerts.close(timeout=2)
        store.close()
    log.info("node_stopped", exit_code=EXIT_OK)
    return EXIT_OK


def record_heartbeat(store: Any, name: str, pid: int, error: str | None, info: dict[str, Any], log: Any) -> None:
    """The node document's heartbeat (``heartbeat_ms``, UTC ms), as the master and slave
    write theirs: what ``cli.py status`` reads (it sees only the store, not the bus).
    A store that is down is logged, never raised: the page goes on from the bus."""
    try:
        store.upsert_node(name, {"role": "monitor", "pid": pid, "state": "RUNNING", "heartbeat_ms": now_ms(),
                                 "error": error, "reason": error, "info": info})
    except StoreError as exc:
        log.warning("store_unavailable", error=str(exc))


def run(args: argparse.Namespace, log: Any, store: Any, alerts: Any, token: str | None, stop: threading.Event) -> None:
    """The node's loop: bus messages, store polls, heartbeat, until ``stop`` is set."""
    from dashboard.app import create_app
    from dashboard.collector import Collector
    from messaging.publisher import Publisher
    from messaging.schema import Control, Status
    from messaging.subscriber import Subscriber

    pid = os.getpid()
    collector = Collector(store, alerts=alerts, log=log)
    publisher = Publisher(args.bus_pub)
    pub_lock = threading.Lock()

    def publish(target: str, command: str, **ctl_args: Any) -> bool:
        """Controls from the page: our one long-lived PUB socket, shared by HTTP threads."""
        try:
            with pub_lock:
                publisher.publish(Control(target=target, command=command, sender=args.name, ts_ms=now_ms(), args=ctl_args))
            return True
        except Exception as exc:
            log.warning("ctl_not_published", target=target, command=command, error=str(exc))
            return False

    app = create_app(collector, store, publish=publish, token=token, bind_host=args.http_host, port=args.http_port, log=log)
    http = HttpServer(app, args.http_host, args.http_port, log)
    sub = Subscriber(args.bus_sub, ["status.", "event.", "pos."], logger=None)
    try:
        collector.load_recent_final()
    except StoreError as exc:
        log.warning("store_unavailable", error=str(exc))
    collector.poll(force=True)
    http.ensure()
    log.info("monitor_started", url=http.url, auth_required=token is not None)
    next_beat = next_store_beat = 0.0
    try:
        while not stop.is_set():
            msg = sub.recv(timeout_ms=100)
            while msg is not None:
                if getattr(msg, "kind", None) in ("status", "snapshot", "event"):
                    collector.on_message(msg)
                msg = sub.recv(0)
            collector.poll()
            http.ensure()
            now = time.monotonic()
            if now >= next_beat:
                next_beat = now + HEARTBEAT_S
                info = {"url": http.url, "token_required": token is not None, "links": len(collector.links),
                        "copy_alerts": collector.copy_alerts.sent, "bus_dropped": sub.dropped}
                error = http.error or (None if collector.store_ok else f"store unavailable: {collector.store_error}")
                with pub_lock:
                    try:
                        publisher.publish(Status(node=args.name, role="monitor", state="RUNNING", pid=pid, ts_ms=now_ms(),
                                                 error=error, info=info))
                    except Exception as exc:
                        log.warning("status_not_published", error=str(exc))
                if now >= next_store_beat:  # the store at most once a second, like the other nodes
                    next_store_beat = now + 1.0
                    record_heartbeat(store, args.name, pid, error, info, log)
    finally:
        http.stop()
        sub.close()
        publisher.close()


if __name__ == "__main__":
    sys.exit(main())
