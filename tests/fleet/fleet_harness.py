"""Run ``launcher.py`` as a real process against a temporary store and free ports,
and watch it from outside the way an operator would (store, cli, psutil)."""
from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
import zlib
from collections.abc import Callable
from pathlib import Path
from typing import Any

import psutil

from db import open_store
from fleet.demo import free_port

ROOT = Path(__file__).resolve().parents[2]
FAKE_NODES = Path(__file__).resolve().parent / "fakenodes"
FAST = ["--min-uptime", "0.3", "--backoff-initial", "0.2", "--backoff-max", "1", "--flap-window", "30",
        "--heartbeat-timeout", "1.5", "--start-timeout", "5", "--reconcile-interval", "0.3",
        "--stats-interval", "0.5", "--stop-timeout", "3", "--master-wait", "5", "--no-monitor"]


def sim_account(name: str, type_: str = "SLAVE", login: int | None = None, **kw: Any) -> dict[str, Any]:
    """A simulated account; without ``login``, one derived from the name (one terminal per account)."""
    login = login if login is not None else 2000 + zlib.crc32(name.encode()) % 1_000_000
    return {"name": name, "type": type_, "enabled": True,
            "terminal": {"kind": "sim", "login": login, "endpoint": "tcp://127.0.0.1:1"}, **kw}


def wait_for(predicate: Callable[[], Any], timeout: float, what: str, interval: float = 0.1) -> Any:
    deadline = time.monotonic() + timeout
    last = None
    while time.monotonic() < deadline:
        last = predicate()
        if last:
            return last
        time.sleep(interval)
    raise AssertionError(f"timed out after {timeout}s waiting for {what} (last: {last!r})")


def alive(proc: psutil.Process) -> bool:
    try:
        return proc.is_running() and proc.status() != psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return False


def kill_tree_seen(proc: subprocess.Popen, seen: dict[int, psutil.Process]) -> None:
    """Kill the launcher if it still runs, and every descendant it was ever seen with."""
    if proc.poll() is None:
        proc.kill()
        proc.wait(10)
    for p in seen.values():
        if alive(p):
            p.kill()


class LauncherRun:
    """One launcher process with its own store, ports, logs and fake-node control dir."""

    def __init__(self, tmp: Path, accounts: list[dict[str, Any]], *, extra_args: list[str] | None = None,
                 fake: bool = True, modes: dict[str, str] | None = None) -> None:
        self.tmp = tmp
        self.db = "sqlite:///" + (tmp / "store.db").as_posix()
        self.fake_dir = tmp / "fake"
        self.fake_dir.mkdir(exist_ok=True)
        for name, mode in (modes or {}).items():
            (self.fake_dir / f"{name}.mode").write_text(mode)
        self.log_dir = tmp / "logs"
        pub, sub = free_port(), free_port()
        while sub == pub:
            sub = free_port()
        self.bus_pub, self.bus_sub = f"tcp://127.0.0.1:{pub}", f"tcp://127.0.0.1:{sub}"
        store = open_store(self.db)
        for doc in accounts:
            store.add_account(doc)
        store.close()
        self.store = open_store(self.db)
        args = [sys.executable, str(ROOT / "launcher.py"), "--db", self.db, "--bus-pub", self.bus_pub,
                "--bus-sub", self.bus_sub, "--log-dir", str(self.log_dir), *FAST]
        if fake:
            args += ["--nodes-dir", str(FAKE_NODES)]
        args += extra_args or []
        env = {**os.environ, "COPYHUB_FAKE_DIR": str(self.fake_dir), "COPYHUB_DATABASE_URL": self.db}
        self.out = open(tmp / "launcher.stdout", "wb")
        self.proc = subprocess.Popen(args, stdout=self.out, stderr=subprocess.STDOUT, env=env, cwd=str(tmp))
        self.ps = psutil.Process(self.proc.pid)
        self.seen: dict[int, psutil.Process] = {}

    # -- observation
    def track(self) -> None:
        """Remember every descendant ever seen, to prove none outlives the launcher."""
        try:
            for child in self.ps.children(recursive=True):
                self.seen.setdefault(child.pid, child)
        except psutil.NoSuchProcess:
            pass

    def node(self, name: str) -> dict[str, Any]:
        self.track()
        return self.store.get_node(name) or {}

    def state(self, name: str) -> str | None:
        return self.node(name).get("supervisor_state")

    def wait_state(self, name: str, state: str, timeout: float = 15.0) -> dict[str, Any]:
        def check() -> dict[str, Any] | None:
            if self.proc.poll() is not None:
                raise AssertionError(f"launcher exited with {self.proc.returncode}: {self.output()[-2000:]}")
            doc = self.node(name)
            return doc if doc.get("supervisor_state") == state else None
        return wait_for(check, timeout, f"{name} to be {state}")

    def pid_of(self, name: str) -> int | None:
        return self.node(name).get("proc_pid")

    def fake_events(self, name: str) -> list[dict[str, Any]]:
        path = self.fake_dir / f"{name}.events"
        return [json.loads(line) for line in path.read_text().splitlines()] if path.exists() else []

    def command(self, name: str, cmd: str) -> None:
        (self.fake_dir / f"{name}.cmd").write_text(cmd)

    def set_mode(self, name: str, mode: str) -> None:
        (self.fake_dir / f"{name}.mode").write_text(mode)

    def cli(self, *argv: str) -> subprocess.CompletedProcess:
        return subprocess.run([sys.executable, str(ROOT / "cli.py"), "--db", self.db, "--bus-pub", self.bus_pub,
                               *argv], capture_output=True, text=True, timeout=30)

    def output(self) -> str:
        self.out.flush()
        return (self.tmp / "launcher.stdout").read_text(errors="replace")

    # -- ending
    def terminate(self, timeout: float = 30.0) -> int:
        self.track()
        self.proc.send_signal(signal.SIGTERM)
        return self.proc.wait(timeout)

    def leftovers(self) -> list[int]:
        return [pid for pid, p in self.seen.items() if alive(p)]

    def close(self) -> None:
        self.track()
        kill_tree_seen(self.proc, self.seen)
        self.store.close()
        self.out.close()
