"""A local fleet of real processes: sim server, bus proxy, master and slave nodes.

Integration tests and benchmarks use it to exercise copyhub the way a user runs it,
each with its own temporary store, ports and log directory.
"""
from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

from utils.process import kill_tree

ROOT = Path(__file__).resolve().parent.parent


_HANDED_OUT: set[int] = set()


def free_port() -> int:
    """A TCP port free on 127.0.0.1 now and never handed out before by this process: the
    kernel can give the same free port to two binds in a row, and a fleet's bus proxy once
    got one port for both of its ends. (Not ``fleet.demo.free_port``: the benches put bench/
    first on the path, where bench/fleet.py is ``fleet``.)"""
    while True:
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
            s.bind(("127.0.0.1", 0))
            port = s.getsockname()[1]
        if port not in _HANDED_OUT:
            _HANDED_OUT.add(port)
            return port


def market_order(m: Any, symbol: str, side: str, volume: float, position: int = 0) -> Any:
    """A market deal on terminal ``m`` (BUY/SELL ``volume`` lots of ``symbol``; ``position``
    closes or reduces that ticket), as a trader's script would send it; the order result, or
    RuntimeError naming the retcode and the terminal's last error."""
    tick = m.symbol_info_tick(symbol)
    req = {"action": m.TRADE_ACTION_DEAL, "symbol": symbol, "volume": volume,
           "type": m.ORDER_TYPE_BUY if side == "BUY" else m.ORDER_TYPE_SELL,
           "price": tick.ask if side == "BUY" else tick.bid, "deviation": 50, "type_filling": m.ORDER_FILLING_IOC}
    if position:
        req["position"] = position
    r = m.order_send(req)
    if r is None or r.retcode != m.TRADE_RETCODE_DONE:
        raise RuntimeError(f"master order failed: {r} {m.last_error()}")
    return r


def wait_until(predicate: Callable[[], Any], timeout: float = 10.0, interval: float = 0.05, message: str = "condition") -> Any:
    """Poll ``predicate`` until it returns a truthy value; raise TimeoutError otherwise."""
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            raise TimeoutError(f"timed out after {timeout}s waiting for {message}")
        time.sleep(interval)


def write_world_with_slaves(dst: Path, count: int, *, first_login: int = 3001, broker: str = "SimProp-Server", balance: float = 100000) -> Path:
    """The demo world plus ``count`` hedging slave accounts, for fleets bigger than the demo."""
    demo = (ROOT / "sim" / "worlds" / "demo.toml").read_text()
    extra = "".join(
        f'\n[[accounts]]\nlogin = {first_login + i}\nbroker = "{broker}"\nname = "Bench Slave {i + 1}"\n'
        f'margin_mode = "hedging"\nbalance = {balance}\nleverage = 100\n'
        for i in range(count)
    )
    dst = Path(dst)
    dst.write_text(demo + extra)
    return dst


class Proc:
    """A child process whose output goes to a log file (never a pipe that can fill up)."""

    def __init__(self, name: str, argv: list[str], log_dir: Path, env: dict[str, str]) -> None:
        self.name = name
        self.argv = argv
        self.log_path = log_dir / f"{name}.out"
        self._log = open(self.log_path, "ab")
        self.popen = subprocess.Popen(argv, cwd=ROOT, env=env, stdout=self._log, stderr=subprocess.STDOUT)

    @property
    def pid(self) -> int:
        return self.popen.pid

    def alive(self) -> bool:
        return self.popen.poll() is None

    def stop(self, timeout: float = 5.0) -> int | None:
        if self.alive():
            self.popen.terminate()
            try:
                self.popen.wait(timeout)
            except subprocess.TimeoutExpired:
                kill_tree(self.pid, timeout_s=1)
        self._log.close()
        return self.popen.poll()

    def kill(self) -> None:
        """Hard kill (SIGKILL / TerminateProcess): no cleanup runs in the child."""
        if self.alive():
            self.popen.kill()
            self.popen.wait(5)

    def output(self) -> str:
        self._log.flush()
        return self.log_path.read_text(errors="replace")


class LocalFleet:
    """Start and drive a fleet on loopback. Call ``close()`` (or use as a context manager)."""

    def __init__(self, workdir: Path, *, seed: int = 7, tick_hz: float = 0, env: dict[str, str] | None = None) -> None:
        self.workdir = Path(workdir)
        self.workdir.mkdir(parents=True, exist_ok=True)
        self.log_dir = self.workdir / "logs"
        self.log_dir.mkdir(exist_ok=True)
        self.db_url = f"sqlite:///{self.workdir / 'store.db'}"
        self.sim_endpoint = f"tcp://127.0.0.1:{free_port()}"
        self.bus_pub = f"tcp://127.0.0.1:{free_port()}"
        self.bus_sub = f"tcp://127.0.0.1:{free_port()}"
        self.seed = seed
        self.tick_hz = tick_hz
        self.env = {
            **os.environ,
            "PYTHONPATH": str(ROOT),
            "PYTHONUNBUFFERED": "1",
            "COPYHUB_DATABASE_URL": self.db_url,
            "COPYHUB_LOG_DIR": str(self.log_dir),
            "COPYHUB_SIM_ENDPOINT": self.sim_endpoint,
            **(env or {}),
        }
        self.procs: dict[str, Proc] = {}
        self._store = None
        self._admin = None
        self._terminals: list[Any] = []

    # ------------------------------------------------------------------ infrastructure
    def start_sim(self, world: str | None = None) -> Proc:
        argv = [sys.executable, "-m", "sim", "serve", "--endpoint", self.sim_endpoint, "--seed", str(self.seed), "--tick-hz", str(self.tick_hz)]
        if world:
            argv += ["--world", world]
        proc = self._spawn("sim", argv)
        wait_until(lambda: self._ping_sim(), timeout=20, message="simulator server")
        return proc

    def _ping_sim(self) -> bool:
        from sim.client import SimUnavailable

        try:
            self.admin.ping(timeout_ms=300)
            return True
        except SimUnavailable:
            return False

    def start_proxy(self) -> Proc:
        return self._spawn("proxy", [sys.executable, "-m", "messaging.proxy", "--xsub", self.bus_pub, "--xpub", self.bus_sub])

    @property
    def admin(self):
        if self._admin is None:
            from sim.client import AdminClient

            self._admin = AdminClient(self.sim_endpoint, timeout_ms=2000)
        return self._admin

    @property
    def store(self):
        if self._store is None:
            from db import open_store

            self._store = open_store(self.db_url)
            self._store.ensure_indexes()
        return self._store

    def terminal(self, login: int):
        """A sim client bound to ``login``: what a user's script would see."""
        from sim.client import connect

        mt5 = connect(self.sim_endpoint, login=login, timeout_ms=3000)
        self._terminals.append(mt5)
        return mt5

    # ------------------------------------------------------------------ accounts and nodes
    def sim_account(self, name: str, type_: str, login: int, **fields: Any) -> dict[str, Any]:
        doc = {"name": name, "type": type_, "enabled": True, "terminal": {"kind": "sim", "login": login, "endpoint": self.sim_endpoint}, **fields}
        self.store.upsert_account(doc)
        return doc

    def start_node(self, role: str, name: str, *, extra_env: dict[str, str] | None = None,
                   args: Iterable[str] = (), proc_name: str | None = None) -> Proc:
        """``python nodes/<role>.py --name NAME …``; ``proc_name`` keys a second process for one account."""
        argv = [
            sys.executable, str(ROOT / "nodes" / f"{role}.py"), "--name", name,
            "--db", self.db_url, "--bus-pub", self.bus_pub, "--bus-sub", self.bus_sub,
            "--sim-endpoint", self.sim_endpoint, "--log-dir", str(self.log_dir), "--parent-pid", str(os.getpid()),
            *args,
        ]
        return self._spawn(proc_name or name, argv, extra_env)

    def start_launcher(self, host: str, *, args: Iterable[str] = (), extra_env: dict[str, str] | None = None) -> Proc:
        """A real launcher for ``host`` on this fleet's store, simulator and (already running) bus proxy."""
        argv = [sys.executable, str(ROOT / "launcher.py"), "--host", host, "--db", self.db_url,
                "--bus-pub", self.bus_pub, "--bus-sub", self.bus_sub, "--sim-endpoint", self.sim_endpoint,
                "--no-proxy", "--no-monitor", "--log-dir", str(self.log_dir / host), "--data-dir", str(self.workdir / host),
                *args]
        (self.log_dir / host).mkdir(exist_ok=True)
        return self._spawn(f"launcher-{host}", argv, extra_env)

    def node_state(self, name: str) -> dict[str, Any] | None:
        return self.store.get_node(name)

    def wait_node_running(self, name: str, timeout: float = 20.0) -> dict[str, Any]:
        proc = self.procs.get(name)

        def running() -> Any:
            if proc is not None and not proc.alive():
                raise RuntimeError(f"{name} exited with {proc.popen.returncode}:\n{proc.output()[-3000:]}")
            doc = self.store.get_node(name)
            return doc if doc and doc.get("state") == "RUNNING" else None

        return wait_until(running, timeout=timeout, message=f"{name} RUNNING")

    def trades(self, slave: str, status: str | Iterable[str] | None = None) -> list[dict[str, Any]]:
        st = list(status) if isinstance(status, (list, tuple, set)) else status
        return self.store.list_trades(slave_name=slave, status=st)

    # ------------------------------------------------------------------ plumbing
    def _spawn(self, name: str, argv: list[str], extra_env: dict[str, str] | None = None) -> Proc:
        old = self.procs.get(name)
        if old is not None and old.alive():
            raise RuntimeError(f"{name} is already running")
        proc = Proc(name, argv, self.log_dir, {**self.env, **(extra_env or {})})
        self.procs[name] = proc
        return proc

    def close(self) -> None:
        order = [n for n in self.procs if n not in ("sim", "proxy")] + ["proxy", "sim"]
        for name in order:
            proc = self.procs.get(name)
            if proc is not None:
                proc.stop(timeout=5)
        for mt5 in self._terminals:
            try:
                mt5.close()
            except Exception:
                pass
        if self._admin is not None:
            self._admin.close()
        if self._store is not None:
            self._store.close()

    def __enter__(self) -> LocalFleet:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
