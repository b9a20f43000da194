"""The demo world's accounts, the seed's sample accounts, and free local ports.

One definition shared by ``launcher.py --demo`` and ``setup_db.py --demo``. The demo
world (sim/worlds/demo.toml) has a master broker ``SimFX-Live`` (login 1001 master,
2003 slave) and a prop-firm broker ``SimProp-Server`` whose symbols carry a ``.c``
suffix and call gold GOLD and the Dow DJ30 (logins 2001 hedging, 2002 netting).
Together the three slaves cover suffix + symbol_map, hedging + netting, three sizing
modes, and (Demo_Prop_Netting's 50-point tolerance against SimProp's gold price offset)
a slippage skip that shows up in the exit summary.
"""
from __future__ import annotations

import json
import os
import socket
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import psutil

DEMO_MASTER = "Demo_Master"
DEMO_MASTER_LOGIN = 1001
# ``python -m sim``'s endpoint when neither --endpoint nor SIM_ENDPOINT names one
# (sim.client.DEFAULT_ENDPOINT, config.Settings.SIM_ENDPOINT)
DEFAULT_SIM_ENDPOINT = "tcp://127.0.0.1:5570"
PROP_SYMBOL_MAP = {"XAUUSD": "GOLD", "US30": "DJ30"}


def demo_accounts(sim_endpoint: str) -> list[dict[str, Any]]:
    """One master and three slaves on the simulator at ``sim_endpoint``."""

    def terminal(login: int) -> dict[str, Any]:
        return {"kind": "sim", "login": login, "endpoint": sim_endpoint}

    return [
        {"name": DEMO_MASTER, "type": "MASTER", "enabled": True, "terminal": terminal(DEMO_MASTER_LOGIN),
         "description": "demo master on SimFX-Live (hedging); the demo trader trades here"},
        {"name": "Demo_Prop_Hedge", "type": "SLAVE", "enabled": True, "terminal": terminal(2001),
         "suffix": ".c", "symbol_map": dict(PROP_SYMBOL_MAP), "sizing": {"mode": "same"},
         "slippage_tolerance": 200,
         "description": "SimProp-Server hedging account: suffix .c, XAUUSD->GOLD, US30->DJ30, same lots; "
                        "tolerance wide enough for the broker's gold price offset"},
        {"name": "Demo_Prop_Netting", "type": "SLAVE", "enabled": True, "terminal": terminal(2002),
         "suffix": ".c", "symbol_map": dict(PROP_SYMBOL_MAP), "sizing": {"mode": "multiplier", "multiplier": 0.5},
         "slippage_tolerance": 50,
         "description": "SimProp-Server netting account: suffix and map as above, half the lots; "
                        "tolerance 50 points, so gold (offset ~95 points) is skipped for slippage"},
        {"name": "Demo_FX_Ratio", "type": "SLAVE", "enabled": True, "terminal": terminal(2003),
         "sizing": {"mode": "balance_ratio"}, "slippage_tolerance": 50,
         "description": "SimFX-Live hedging account: same symbols, lots scaled by balance ratio"},
    ]


def sample_accounts() -> list[dict[str, Any]]:
    """The seed README's two sample documents, exactly as written there."""
    return [
        {"name": "FTMO_Master", "type": "MASTER", "path": "C:/Program Files/FTMO MT5/terminal64.exe",
         "enabled": True},
        {"name": "Apex_Slave_01", "type": "SLAVE", "path": "C:/Program Files/Apex MT5/terminal64.exe",
         "enabled": True, "suffix": ".c", "symbol_map": {"XAUUSD": "GOLD", "US30": "DJ30"},
         "slippage_tolerance": 50},
    ]


def port_free(port: int, host: str = "127.0.0.1") -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        try:
            s.bind((host, port))
        except OSError:
            return False
    return True


def free_port(host: str = "127.0.0.1", avoid: set[int] | None = None) -> int:
    """A port the OS says is free now (it may be taken again before use; the launcher
    reports a failed bind as a startup error)."""
    avoid = avoid or set()
    while True:
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
            s.bind((host, 0))
            port = s.getsockname()[1]
        if port not in avoid:
            return port


def pick_ports(preferred: list[int], host: str = "127.0.0.1") -> list[int]:
    """Each preferred port if free, else a free one; all distinct."""
    chosen: list[int] = []
    for port in preferred:
        if port not in chosen and port_free(port, host):
            chosen.append(port)
        else:
            chosen.append(free_port(host, set(chosen)))
    return chosen


class DemoPortBusy(RuntimeError):
    """A port the settings name explicitly is taken: the demo will not silently move it."""


@dataclass(frozen=True)
class DemoEndpoints:
    bus_pub: str
    bus_sub: str
    sim_endpoint: str
    notes: list[str] = field(default_factory=list)  # one line each for the operator (a moved port)


def _tcp_host_port(endpoint: str) -> tuple[str, int] | None:
    if not endpoint.startswith("tcp://"):
        return None
    host, _, port = endpoint[len("tcp://"):].rpartition(":")
    try:
        return host.strip("[]"), int(port)
    except ValueError:
        return None


def plan_demo_endpoints(settings: Any, *, bus_pub: str | None = None, bus_sub: str | None = None,
                        sim_endpoint: str | None = None) -> DemoEndpoints:
    """The demo's bus and simulator endpoints from the settings (``ZMQ_PUB_PORT``,
    ``ZMQ_SUB_PORT``, ``BUS_HOST``, ``SIM_ENDPOINT``), each checked free before use.

    An endpoint given on the command line is used as it is. A configured port that is busy:
    when it was set explicitly (settings file or ``COPYHUB_*``), DemoPortBusy naming the
    setting; when it is the default, a free port instead and a note saying so.
    """
    notes: list[str] = []
    taken: set[int] = set()

    def choose(name: str, host: str, port: int, scheme_rest: str = "") -> str:
        if port not in taken and port_free(port, host):
            taken.add(port)
            return f"tcp://{host}:{port}"
        if settings.explicit(name):
            raise DemoPortBusy(f"demo: port {port} ({name}, from {settings.source(name)}) is in use; stop what "
                               f"holds it, or set another {name}")
        other = free_port(host, taken)
        taken.add(other)
        notes.append(f"demo: port {port} ({name} default) is in use; the demo uses {other} instead")
        return f"tcp://{host}:{other}"

    host = settings.BUS_HOST
    pub = bus_pub or choose("ZMQ_PUB_PORT", host, settings.ZMQ_PUB_PORT)
    sub = bus_sub or choose("ZMQ_SUB_PORT", host, settings.ZMQ_SUB_PORT)
    if sim_endpoint:
        sim = sim_endpoint
    else:
        hp = _tcp_host_port(settings.SIM_ENDPOINT)
        sim = settings.SIM_ENDPOINT if hp is None else choose("SIM_ENDPOINT", hp[0], hp[1])
    return DemoEndpoints(pub, sub, sim, notes)


def sim_trade_command(sim_endpoint: str, *, settings_endpoint: str = DEFAULT_SIM_ENDPOINT) -> str:
    """The command that trades by hand on the demo master (login 1001) through the demo's
    simulator at ``sim_endpoint``, as a user pastes it into a second window.

    ``--endpoint`` is spelt out unless both the demo's simulator and the one ``python -m
    sim`` reads by default (``settings_endpoint``: the settings' SIM_ENDPOINT) are the
    default port 5570: a demo that moved the simulator off a busy 5570, or runs it where
    the settings or ``--sim-endpoint`` say, is found only with it (the window the user
    types in may not have the launcher's ``--config``)."""
    endpoint = "" if sim_endpoint == settings_endpoint == DEFAULT_SIM_ENDPOINT else f" --endpoint {sim_endpoint}"
    return f"python -m sim trade --login {DEMO_MASTER_LOGIN}{endpoint} buy EURUSD 0.10"


def demo_sim_line(sim_endpoint: str, *, settings_endpoint: str = DEFAULT_SIM_ENDPOINT) -> str:
    """The demo banner's simulator line: where it serves, and how to trade on the master."""
    return (f"  sim   : {sim_endpoint}  (simulated brokers; trade on the master: "
            f"{sim_trade_command(sim_endpoint, settings_endpoint=settings_endpoint)})")


RUNNING_DEMO_FILE = "running-demo.json"


def announce_demo(data_dir: Path, db_url: str, *, pid: int | None = None) -> Path | None:
    """Write ``data_dir/running-demo.json`` naming a demo's store, so that a plain
    ``python cli.py status`` (whose default store does not exist) can find the demo's
    temporary one, while it runs and after (``last_demo``). Returns the file, or None when
    it cannot be written (a read-only folder: the banner's command still works)."""
    pid = os.getpid() if pid is None else pid
    try:
        created = psutil.Process(pid).create_time()
        data_dir.mkdir(parents=True, exist_ok=True)
        path = data_dir / RUNNING_DEMO_FILE
        path.write_text(json.dumps({"db_url": db_url, "pid": pid, "created": created}), encoding="utf-8")
    except (OSError, psutil.Error):
        return None
    return path


def last_demo(data_dir: Path) -> tuple[str, bool] | None:
    """``(store URL, running)`` of the demo last started with this home (the file
    ``announce_demo`` left in ``data_dir``), or None. ``running``: its launcher is alive
    (same pid and start time: a reused pid does not count). A stopped demo's store stays
    in its temporary folder; the file stays too, so the CLI can say where."""
    try:
        doc = json.loads((data_dir / RUNNING_DEMO_FILE).read_text(encoding="utf-8"))
        pid, created, url = int(doc["pid"]), float(doc["created"]), str(doc["db_url"])
    except (OSError, ValueError, KeyError, TypeError, AttributeError):
        return None
    try:
        running = abs(psutil.Process(pid).create_time() - created) <= 1.0
    except psutil.Error:
        running = False
    return url, running

