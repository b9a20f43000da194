"""A stand-in for nodes/master.py and nodes/slave.py that obeys the node contract
(same arguments, status heartbeats on the bus and in the store, exit codes 0/75/78,
--parent-pid watchdog) and misbehaves on demand, so supervision is tested without
terminals. Behaviour comes from files in $COPYHUB_FAKE_DIR:

* ``<name>.mode`` read at start: normal | crash (exit 3 at once) | exit78 | exit0 | silent
* ``<name>.cmd`` polled: hang (stop heartbeats, ignore SIGTERM) | crash | exit75 | exit0
* ``<name>.events`` written: one JSON line per start and stop, with pid and time; a stop
  says how it was asked (``via``: ``bus`` for a ``ctl stop``, ``signal`` for SIGTERM/CTRL_BREAK).
  Mode ``deaf`` ignores ``ctl stop`` (a node that cannot hear the bus).
"""
from __future__ import annotations

import argparse
import json
import os
import signal
import sys
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

from copier.accounts import AccountConfigError, validate_account  # noqa: E402
from db import open_store  # noqa: E402
from messaging.publisher import Publisher  # noqa: E402
from messaging.schema import Control, Status  # noqa: E402
from messaging.subscriber import Subscriber  # noqa: E402
from utils.process import install_stop_handlers, watch_parent  # noqa: E402


def now_ms() -> int:
    return time.time_ns() // 1_000_000


def main(role: str) -> None:
    ap = argparse.ArgumentParser()
    for opt in ("--name", "--db", "--bus-pub", "--bus-sub", "--sim-endpoint", "--log-dir", "--data-dir"):
        ap.add_argument(opt)
    ap.add_argument("--parent-pid", type=int)
    ap.add_argument("--standby", action="store_true")
    ap.add_argument("--host")
    args = ap.parse_args()
    fake_dir = Path(os.environ["COPYHUB_FAKE_DIR"])
    name, pid = args.name, os.getpid()

    def record(ev: str, **data) -> None:
        with open(fake_dir / f"{name}.events", "a") as f:
            f.write(json.dumps({"ev": ev, "pid": pid, "t": time.time(), "role": role, **data}) + "\n")

    record("start")
    mode_file = fake_dir / f"{name}.mode"
    mode = mode_file.read_text().strip() if mode_file.exists() else "normal"
    if mode == "crash":
        record("exit", code=3)
        os._exit(3)
    store = open_store(args.db)
    try:
        validate_account(store.get_account(name) or {})
    except AccountConfigError as exc:
        store.upsert_node(name, {"role": role, "pid": pid, "state": "CONFIG_ERROR", "reason": str(exc),
                                 "heartbeat_ms": now_ms()})
        record("exit", code=78)
        sys.exit(78)
    if mode in ("exit78", "exit0"):
        if mode == "exit78":
            store.upsert_node(name, {"role": role, "pid": pid, "state": "CONFIG_ERROR",
                                     "reason": "fake: field 'risk' is wrong", "heartbeat_ms": now_ms()})
        record("exit", code=78 if mode == "exit78" else 0)
        sys.exit(78 if mode == "exit78" else 0)

    stop = threading.Event()
    via: list[str] = []

    def on_signal() -> None:
        via.append("signal")
        stop.set()

    install_stop_handlers(on_signal)
    watch_parent(args.parent_pid, stop.set, interval_s=0.2)
    pub = Publisher(args.bus_pub)
    sub = Subscriber(args.bus_sub, [f"ctl.{name}", "ctl.all"]) if args.bus_sub else None
    last_store = 0.0
    while not stop.is_set():
        cmd_file = fake_dir / f"{name}.cmd"
        if cmd_file.exists():
            cmd = cmd_file.read_text().strip()
            cmd_file.unlink()
            record("cmd", cmd=cmd)
            if cmd == "hang":
                signal.signal(signal.SIGTERM, signal.SIG_IGN)
                while True:
                    time.sleep(1)
            if cmd == "crash":
                os._exit(9)
            if cmd in ("exit75", "exit0"):
                record("exit", code=75 if cmd == "exit75" else 0)
                sys.exit(75 if cmd == "exit75" else 0)
        if mode != "silent":
            pub.publish(Status(node=name, role=role, state="RUNNING", pid=pid, ts_ms=now_ms(),
                               info={"links_open": 0, "paused": False}))
            if time.time() - last_store >= 1.0:
                last_store = time.time()
                store.upsert_node(name, {"role": role, "pid": pid, "state": "RUNNING", "heartbeat_ms": now_ms(),
                                         "info": {"links_open": 0, "paused": False}, "reason": None})
        msg = sub.recv(200) if sub is not None else None
        if sub is None:
            stop.wait(0.2)
        while msg is not None:
            if isinstance(msg, Control) and msg.command == "stop" and mode != "deaf":
                via.append("bus")
                stop.set()
            msg = sub.recv(0)
    record("stop", via=via[0] if via else "?")
    if sub is not None:
        sub.close()
    pub.close()
    store.close()
    sys.exit(0)
