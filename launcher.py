"""Start, supervise and stop a whole copyhub fleet with one command.

    python launcher.py                      # this host's enabled accounts from the store
    python launcher.py --host VPS-2         # accounts with host "VPS-2" (or no host)
    python launcher.py --demo               # everything on the simulator, isolated data dir
    python launcher.py --demo --duration 60 --data-dir ./demo-data
    python launcher.py --config D:/copyhub/copyhub.toml   # settings file (else COPYHUB_CONFIG)

Startup: bus proxy -> masters (each until its first status heartbeat) -> slaves ->
monitor. Supervision rules, the fleet reconcile and the shutdown order are described in
docs/operations.md; the logic lives in fleet/ (supervision.py is the state machine).
Exit code 0 after a graceful stop, 2 when the fleet cannot start.
"""
from __future__ import annotations

import argparse
import socket
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from alerts import AlertConfigError, build_dispatcher_from_env  # noqa: E402
from config import DEFAULT_CONFIG_PATH, Settings, settings_for  # noqa: E402
from db import StoreError, mask_url, now_ms, open_store  # noqa: E402
from db.urls import parse_store_url  # noqa: E402
from fleet.demo import (  # noqa: E402
    DemoPortBusy,
    announce_demo,
    demo_accounts,
    demo_sim_line,
    free_port,
    plan_demo_endpoints,
    port_free,
)
from fleet.report import banner, slave_summary, summary_text  # noqa: E402
from fleet.runner import Fleet, FleetError, FleetOptions, SimOptions  # noqa: E402
from fleet.supervision import Policy  # noqa: E402
from messaging.security import BusSecurityError, client_curve, server_curve  # noqa: E402
from utils.console import safe_console  # noqa: E402
from utils.logging import setup_logging  # noqa: E402
from utils.process import install_stop_handlers  # noqa: E402


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python launcher.py", description="Start and supervise a copyhub fleet.")
    p.add_argument("--demo", action="store_true", help="run the demo fleet on the simulator in an isolated data dir")
    p.add_argument("--config", default=None, metavar="PATH",
                   help="settings file (default: COPYHUB_CONFIG, else copyhub.toml beside launcher.py if present)")
    p.add_argument("--host", default=socket.gethostname(),
                   help="run accounts with this host, or with none (default: this machine's name)")
    p.add_argument("--duration", type=float, default=None, metavar="S", help="stop after S seconds")
    p.add_argument("--data-dir", default=None, help="data dir; nodes stop new opens while DATA_DIR/KILL_SWITCH exists "
                   "(default: settings.DATA_DIR; demo: a new temporary dir holding the store and logs)")
    p.add_argument("--db", default=None, help="store URL (default: COPYHUB_DATABASE_URL / settings)")
    p.add_argument("--log-dir", default=None, help="log dir (default: settings.LOG_DIR; demo: DATA_DIR/logs)")
    p.add_argument("--bus-pub", default=None, help="proxy XSUB endpoint publishers connect to")
    p.add_argument("--bus-sub", default=None, help="proxy XPUB endpoint subscribers connect to")
    p.add_argument("--sim-endpoint", default=None, help="simulator endpoint (demo: a free port)")
    p.add_argument("--seed", type=int, default=0, help="demo: simulator and trader seed")
    p.add_argument("--trader-rate", type=float, default=0.5, help="demo: demo trader actions per second")
    p.add_argument("--nodes-dir", default=str(ROOT / "nodes"), help="where master.py/slave.py/monitor.py live")
    p.add_argument("--no-monitor", action="store_true", help="do not start nodes/monitor.py")
    p.add_argument("--no-proxy", action="store_true",
                   help="the bus proxy runs on another host (its launcher): connect to --bus-pub/--bus-sub")
    p.add_argument("--summary", action="store_true", help="print the per-slave copy summary at exit (always on in --demo)")
    t = p.add_argument_group("supervision tuning (defaults are the production values)")
    d = Policy()
    t.add_argument("--min-uptime", type=float, default=d.min_uptime_s, help="seconds up before RUNNING")
    t.add_argument("--backoff-initial", type=float, default=d.backoff_initial_s)
    t.add_argument("--backoff-max", type=float, default=d.backoff_max_s)
    t.add_argument("--flap-limit", type=int, default=d.flap_limit, help="crashes within --flap-window -> FATAL")
    t.add_argument("--flap-window", type=float, default=d.flap_window_s)
    t.add_argument("--heartbeat-timeout", type=float, default=d.heartbeat_timeout_s)
    t.add_argument("--start-timeout", type=float, default=d.start_timeout_s, help="first heartbeat deadline")
    t.add_argument("--reconcile-interval", type=float, default=2.0)
    t.add_argument("--stats-interval", type=float, default=5.0)
    t.add_argument("--master-wait", type=float, default=15.0, help="max wait for each master's first heartbeat")
    t.add_argument("--stop-timeout", type=float, default=10.0, help="graceful stop deadline per node")
    return p


def absolute_db_url(url: str) -> str:
    """Children may run from another directory: pin a relative SQLite path to ours."""
    parsed = parse_store_url(url)
    if parsed.scheme != "sqlite" or parsed.path == ":memory:" or Path(parsed.path).is_absolute():
        return url
    query = url.partition("?")[2]
    return "sqlite:///" + Path(parsed.path).resolve().as_posix() + (f"?{query}" if query else "")


def sqlite_url(path: Path) -> str:
    return "sqlite:///" + path.resolve().as_posix()


def endpoints(args: argparse.Namespace, cfg: Settings) -> tuple[str, str, str, list[str]]:
    """(bus_pub, bus_sub, sim_endpoint, notes) the launcher uses: the command line, else the
    settings. The demo checks the configured ports first (fleet/demo.plan_demo_endpoints):
    a busy default moves to a free port and says so in a note; a busy port that was set
    explicitly raises DemoPortBusy."""
    if not args.demo:
        return (args.bus_pub or cfg.bus_pub_endpoint, args.bus_sub or cfg.bus_sub_endpoint,
                args.sim_endpoint or cfg.SIM_ENDPOINT, [])
    plan = plan_demo_endpoints(cfg, bus_pub=args.bus_pub, bus_sub=args.bus_sub, sim_endpoint=args.sim_endpoint)
    return plan.bus_pub, plan.bus_sub, plan.sim_endpoint, plan.notes


def main(argv: list[str] | None = None) -> int:
    safe_console()
    args = build_parser().parse_args(argv)
    cfg = settings_for(args.config)
    try:
        bus_pub, bus_sub, sim_endpoint, notes = endpoints(args, cfg)
    except DemoPortBusy as exc:
        print(f"launcher: {exc}", file=sys.stderr)
        return 2
    if args.demo and not args.no_monitor:
        cfg = demo_dashboard_port(cfg, notes)
    for note in notes:
        print(f"launcher: {note}", flush=True)
    try:
        bus_security = check_bus_security(cfg, bus_pub, bus_sub, serve=not args.no_proxy)
    except BusSecurityError as exc:
        print(f"launcher: {exc}", file=sys.stderr)
        return 2
    if args.demo:
        data_dir = Path(args.data_dir or tempfile.mkdtemp(prefix="copyhub-demo-")).resolve()
        data_dir.mkdir(parents=True, exist_ok=True)
        db_url = absolute_db_url(args.db) if args.db else sqlite_url(data_dir / "copyhub.db")
        log_dir = Path(args.log_dir or data_dir / "logs").resolve()
        sim = SimOptions(seed=args.seed, trader_rate=args.trader_rate)
    else:
        db_url = absolute_db_url(args.db or cfg.database_url)
        log_dir = Path(args.log_dir or cfg.LOG_DIR).resolve()
        sim = None
        data_dir = Path(args.data_dir or cfg.DATA_DIR).resolve()
    log = setup_logging("launcher", log_dir=log_dir, level=cfg.LOG_LEVEL, max_bytes=cfg.LOG_MAX_BYTES,
                        backup_count=cfg.LOG_BACKUP_COUNT)
    try:
        store = open_store(db_url)
        if args.demo:
            for doc in demo_accounts(sim_endpoint):
                store.upsert_account(doc)
    except (StoreError, ValueError) as exc:
        print(f"launcher: cannot open the store {mask_url(db_url)}: {exc}", file=sys.stderr)
        return 2

    policy = Policy(min_uptime_s=args.min_uptime, backoff_initial_s=args.backoff_initial,
                    backoff_max_s=args.backoff_max, flap_limit=args.flap_limit, flap_window_s=args.flap_window,
                    heartbeat_timeout_s=args.heartbeat_timeout, start_timeout_s=args.start_timeout)
    opts = FleetOptions(db_url=db_url, bus_pub=bus_pub, bus_sub=bus_sub, sim_endpoint=sim_endpoint,
                        log_dir=log_dir, host=args.host, nodes_dir=Path(args.nodes_dir).resolve(), policy=policy,
                        reconcile_interval_s=args.reconcile_interval, stats_interval_s=args.stats_interval,
                        master_wait_s=args.master_wait, stop_timeout_s=args.stop_timeout, sim=sim,
                        monitor=not args.no_monitor, data_dir=data_dir, proxy=not args.no_proxy,
                        config_file=str(cfg.config_file) if cfg.config_file else None)
    try:
        alerts = build_dispatcher_from_env(log)
    except AlertConfigError as exc:
        print(f"launcher: {exc}", file=sys.stderr)
        return 2
    fleet = Fleet(store, opts, log, alerts=alerts)

    def on_stop() -> None:
        if fleet.stop_event.is_set():
            fleet.hurry = True  # second Ctrl+C: shorter deadlines
        fleet.stop_event.set()

    install_stop_handlers(on_stop)
    started_ms = now_ms()
    code = 0
    # A plain ``cli.py status`` finds the demo's temporary store through this file.
    if args.demo and not args.db:
        announce_demo(Path(cfg.DATA_DIR).resolve(), db_url)
    try:
        fleet.start()
        cli_db = "" if db_url == cfg.database_url else f" --db {mask_url(db_url)}"
        cli_db += f" --config {cfg.config_file}" if cfg.config_file and cfg.config_file != DEFAULT_CONFIG_PATH else ""
        print(banner(host=args.host, db_label=mask_url(db_url), log_dir=str(log_dir),
                     nodes=[(c.name, c.kind, c.sup.pid or c.sup.state.value) for c in fleet.children.values()],
                     cli_hint=f"python cli.py{cli_db} status", demo=args.demo, duration_s=args.duration,
                     bus=f"{bus_pub} -> {bus_sub} ({bus_security})", dashboard=dashboard_url(fleet, cfg),
                     sim_line=demo_sim_line(sim_endpoint, settings_endpoint=cfg.SIM_ENDPOINT) if args.demo else None),
              flush=True)
        fleet.run(args.duration)
    except FleetError as exc:
        print(f"launcher: {exc}", file=sys.stderr)
        code = 2
    finally:
        fleet.shutdown()
        alerts.close(timeout=2)
    if code == 0 and (args.demo or args.summary):
        print_summary(store, fleet, started_ms)
    if args.demo:
        print(f"launcher: the demo's store and logs stay in {data_dir} (delete the folder when done)", flush=True)
    store.close()
    return code


def check_bus_security(cfg: Settings, bus_pub: str, bus_sub: str, *, serve: bool) -> str:
    """Refuse to start (BusSecurityError) when the bus needs CURVE and this host's keys
    are missing or bad -- before any process starts -- and say how the bus is secured:
    CURVE is required off loopback, optional (BUS_KEY_FILE) on it (docs/bus.md).
    ``serve``: this launcher also runs the proxy (its key pair must be a server's)."""
    if serve:
        server_curve([bus_pub, bus_sub], cfg)
    curve = client_curve(bus_pub, cfg)
    client_curve(bus_sub, cfg)
    return "CURVE off (loopback)" if curve is None else f"CURVE, key {curve.keys.public[:8]}..."


def demo_dashboard_port(cfg: Settings, notes: list[str]) -> Settings:
    """A demo whose dashboard port is taken (another demo runs) serves its page on a free
    port and says so, as it does for the bus; the monitor inherits it through the environment."""
    import dataclasses
    import os

    host = "127.0.0.1" if cfg.DASHBOARD_HOST in ("0.0.0.0", "::") else cfg.DASHBOARD_HOST
    if port_free(cfg.DASHBOARD_PORT, host):
        return cfg
    port = free_port(host, set())
    notes.append(f"port {cfg.DASHBOARD_PORT} (DASHBOARD_PORT) is in use; the demo's dashboard uses {port} instead")
    os.environ["COPYHUB_DASHBOARD_PORT"] = str(port)
    return dataclasses.replace(cfg, DASHBOARD_PORT=port)


def dashboard_url(fleet: Fleet, cfg: Settings) -> str | None:
    """The monitor's address for the banner, when this launcher runs it."""
    if "monitor" not in fleet.children:
        return None
    host = cfg.DASHBOARD_HOST
    shown = "127.0.0.1" if host in ("0.0.0.0", "::") else (f"[{host}]" if ":" in host else host)
    return f"http://{shown}:{cfg.DASHBOARD_PORT}/"


def print_summary(store, fleet: Fleet, started_ms: int) -> None:
    slaves = sorted(name for name, c in fleet.children.items() if c.kind == "slave")
    summaries = {}
    for name in slaves:
        try:
            trades = [t for t in store.list_trades(slave_name=name) if (t.get("created_ms") or 0) >= started_ms]
        except StoreError as exc:
            print(f"launcher: summary unavailable: {exc}", file=sys.stderr)
            return
        summaries[name] = slave_summary(trades)
    print("\ncopy summary (this run)\n" + summary_text(summaries), flush=True)


if __name__ == "__main__":
    sys.exit(main())
