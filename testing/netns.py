"""Several "hosts" on one Linux machine: network namespaces joined by veth links.

``Lab`` builds one namespace per host on a private subnet (10.77.0.0/24): the bus host
holds a bridge at 10.77.0.1, every other host a veth link to it at 10.77.0.2, .3, ...
``ip -n NS link set DEV down`` on a host's end cuts that host off the bus, as a dead
link between two VPSes would. Processes run in a namespace through ``ip netns exec``;
the namespaces share the filesystem, so one SQLite store file and one simulator on a
Unix socket (``ipc://``, not touched by the link cut: a host's terminals are local to
it) serve every host.

``MultiHostFleet`` runs copyhub on the lab the way docs/operations.md sets up several
hosts: a key pair per host made with ``cli.py keys create --allow``, ``BUS_HOST`` /
``BUS_KEY_FILE`` / ``BUS_SERVER_KEY`` per host, the bus host's launcher running the
proxy and its accounts, every other launcher ``--no-proxy --host NAME``.

Linux and root only (``problem()`` says why not). Used by
tests/integration/test_integration_netns.py and bench/netns_latency.py.
"""
from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
import uuid
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from testing.harness import LocalFleet, Proc, wait_until

ROOT = Path(__file__).resolve().parent.parent
SUBNET = "10.77.0"


def _run(*argv: str, check: bool = True) -> subprocess.CompletedProcess:
    return subprocess.run(list(argv), capture_output=True, text=True, check=check, timeout=30)


def problem() -> str | None:
    """Why namespaces cannot be built here (None when they can): not Linux, not root,
    no ``ip`` (iproute2), or the kernel/container refuses ``ip netns add``."""
    if not sys.platform.startswith("linux"):
        return "network namespaces are Linux only"
    if os.geteuid() != 0:
        return "building network namespaces needs root"
    if shutil.which("ip") is None:
        return "no 'ip' command (apt-get install iproute2)"
    probe = f"chprobe{uuid.uuid4().hex[:6]}"
    made = _run("ip", "netns", "add", probe, check=False)
    if made.returncode != 0:
        return f"'ip netns add' refused here: {made.stderr.strip()}"
    _run("ip", "netns", "del", probe, check=False)
    return None


class Lab:
    """Namespaces per host; ``close()`` always deletes them (and so their links)."""

    def __init__(self, hosts: Iterable[str]) -> None:
        self.run_id = uuid.uuid4().hex[:6]
        names = list(hosts)
        self.bus_host = names[0]
        self.ns = {h: f"ch{self.run_id}{i}" for i, h in enumerate(names)}
        self.ip = {h: f"{SUBNET}.{i + 1}" for i, h in enumerate(names)}
        self.dev = {h: f"ch{self.run_id}v{i}" for i, h in enumerate(names)}  # the host's end of its link
        try:
            self._build(names)
        except BaseException:
            self.close()
            raise

    def _build(self, names: list[str]) -> None:
        for h in names:
            _run("ip", "netns", "add", self.ns[h])
            _run("ip", "-n", self.ns[h], "link", "set", "lo", "up")
        bus = self.ns[self.bus_host]
        _run("ip", "-n", bus, "link", "add", "br0", "type", "bridge")
        _run("ip", "-n", bus, "addr", "add", f"{self.ip[self.bus_host]}/24", "dev", "br0")
        _run("ip", "-n", bus, "link", "set", "br0", "up")
        for i, h in enumerate(names[1:], start=1):
            dev, peer = self.dev[h], f"ch{self.run_id}b{i}"
            _run("ip", "link", "add", dev, "type", "veth", "peer", "name", peer)
            _run("ip", "link", "set", dev, "netns", self.ns[h])
            _run("ip", "link", "set", peer, "netns", bus)
            _run("ip", "-n", bus, "link", "set", peer, "master", "br0")
            _run("ip", "-n", bus, "link", "set", peer, "up")
            _run("ip", "-n", self.ns[h], "addr", "add", f"{self.ip[h]}/24", "dev", dev)
            _run("ip", "-n", self.ns[h], "link", "set", dev, "up")

    def argv(self, host: str, argv: list[str]) -> list[str]:
        """``argv`` run inside ``host``'s namespace."""
        return ["ip", "netns", "exec", self.ns[host], *argv]

    def set_link(self, host: str, up: bool) -> None:
        """Bring ``host``'s link to the bus host up or down (``ip link set DEV up|down``)."""
        _run("ip", "-n", self.ns[host], "link", "set", self.dev[host], "up" if up else "down")

    def close(self) -> None:
        for ns in self.ns.values():
            _run("ip", "netns", "del", ns, check=False)


class MultiHostFleet:
    """copyhub across the lab's hosts: one store file, one simulator (Unix socket), a
    CURVE bus at the bus host, a launcher per host. ``close()`` stops everything and
    removes the namespaces."""

    def __init__(self, hosts: list[str], *, env: dict[str, str] | None = None, world: str | None = None,
                 tick_hz: float = 0) -> None:
        self.dir = Path(tempfile.mkdtemp(prefix="chnet-"))  # short: ipc:// paths are limited to ~100 bytes
        self.sim_endpoint = f"ipc://{self.dir / 'sim.sock'}"
        self.local = LocalFleet(self.dir, tick_hz=tick_hz, env={**(env or {}), "COPYHUB_SIM_ENDPOINT": self.sim_endpoint})
        self.local.sim_endpoint = self.sim_endpoint
        self.lab: Lab | None = None
        self.hosts = hosts
        self.keys: dict[str, str] = {}
        self.launchers: dict[str, Proc] = {}
        try:
            self.lab = Lab(hosts)
            self.local.start_sim(world)
            for h in hosts:
                self.keys[h] = self._create_key(h)
        except BaseException:
            self.close()
            raise

    # ------------------------------------------------------------------ plumbing
    @property
    def store(self) -> Any:
        return self.local.store

    @property
    def bus_host(self) -> str:
        assert self.lab is not None
        return self.lab.bus_host

    @property
    def bus_ip(self) -> str:
        assert self.lab is not None
        return self.lab.ip[self.bus_host]

    def key_file(self, host: str) -> Path:
        return self.dir / "keys" / f"{host}.key_secret"

    def _create_key(self, host: str) -> str:
        import json

        out = subprocess.run([sys.executable, str(ROOT / "cli.py"), "--db", self.local.db_url, "--json", "keys", "create",
                              "--name", host, "--dir", str(self.dir / "keys"), "--allow"],
                             capture_output=True, text=True, env=self.local.env, cwd=ROOT, timeout=60)
        if out.returncode != 0:
            raise RuntimeError(f"keys create {host}: {out.stderr}")
        return json.loads(out.stdout)["public_key"]

    def host_env(self, host: str) -> dict[str, str]:
        """What each host's settings file would say (docs/operations.md, 'Several hosts')."""
        return {"COPYHUB_BUS_HOST": self.bus_ip, "COPYHUB_BUS_KEY_FILE": str(self.key_file(host)),
                "COPYHUB_BUS_SERVER_KEY": self.keys[self.bus_host]}

    def log_dir(self, host: str) -> Path:
        return self.local.log_dir / host

    # ------------------------------------------------------------------ accounts and launchers
    def account(self, name: str, type_: str, login: int, host: str | None, **fields: Any) -> dict[str, Any]:
        doc = {"name": name, "type": type_, "enabled": True,
               "terminal": {"kind": "sim", "login": login, "endpoint": self.sim_endpoint}, **fields}
        if host is not None:
            doc["host"] = host
        self.store.upsert_account(doc)
        return doc

    def start_launcher(self, host: str, *, args: Iterable[str] = ()) -> Proc:
        """``python launcher.py --host HOST`` inside ``host``'s namespace; the bus host's
        launcher runs the proxy, the others ``--no-proxy``. No ``--bus-pub``: the
        endpoints come from BUS_HOST, as in a real set-up."""
        assert self.lab is not None
        self.log_dir(host).mkdir(parents=True, exist_ok=True)
        argv = [sys.executable, str(ROOT / "launcher.py"), "--host", host, "--db", self.local.db_url,
                "--sim-endpoint", self.sim_endpoint, "--no-monitor", "--log-dir", str(self.log_dir(host)),
                "--data-dir", str(self.dir / host), *([] if host == self.bus_host else ["--no-proxy"]), *args]
        proc = Proc(f"launcher-{host}", self.lab.argv(host, argv), self.local.log_dir,
                    {**self.local.env, **self.host_env(host)})
        self.launchers[host] = proc
        return proc

    def run_in(self, host: str, argv: list[str], name: str, env: dict[str, str] | None = None) -> Proc:
        """Any process inside ``host``'s namespace (its output in LOG_DIR/NAME.out)."""
        assert self.lab is not None
        return Proc(name, self.lab.argv(host, argv), self.local.log_dir, {**self.local.env, **(env or {})})

    def wait_running(self, names: Iterable[str], timeout: float = 60.0) -> None:
        def running() -> bool:
            for host, proc in self.launchers.items():
                if not proc.alive():
                    raise RuntimeError(f"launcher {host} exited {proc.popen.returncode}:\n{proc.output()[-3000:]}")
            docs = {d["name"]: d for d in self.store.list_nodes()}
            return all(docs.get(n, {}).get("state") == "RUNNING" for n in names)

        wait_until(running, timeout=timeout, interval=0.2, message=f"{', '.join(names)} RUNNING")

    def proxy_log(self) -> str:
        path = self.log_dir(self.bus_host) / "bus-proxy.out"
        return path.read_text(errors="replace") if path.exists() else ""

    def terminal(self, login: int) -> Any:
        return self.local.terminal(login)

    def close(self) -> None:
        for proc in self.launchers.values():
            proc.stop(timeout=15)
        self.local.close()
        if self.lab is not None:
            self.lab.close()
