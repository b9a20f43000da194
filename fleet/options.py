"""What the fleet is started with (``FleetOptions``), its fixed names and policies, and
``Child``: one supervised process and what the launcher knows about it."""
from __future__ import annotations

import socket
import sys
from dataclasses import dataclass, field
from pathlib import Path

from copier.accounts import RESERVED_NAMES as ACCOUNT_RESERVED_NAMES
from fleet.procs import ProcessHandle, ProcStats
from fleet.reconcile import Desired
from fleet.supervision import Policy, Supervised

ROOT = Path(__file__).resolve().parent.parent
LAUNCHER_NODE = "launcher"

# Process kinds in shutdown order: who stops first. Slaves stop before their masters,
# and the bus goes last so everyone can still report while stopping.
STOP_ORDER = ("slave", "master", "monitor", "trader", "sim", "proxy")
INFRA_NAMES = {"proxy": "bus-proxy", "sim": "sim-server", "trader": "demo-trader", "monitor": "monitor"}
RESERVED_NAMES = frozenset(INFRA_NAMES.values()) | {LAUNCHER_NODE}
assert RESERVED_NAMES <= ACCOUNT_RESERVED_NAMES, "copier.accounts.RESERVED_NAMES must hold every name the fleet uses"
INFRA_POLICY = Policy(heartbeat_timeout_s=0.0, min_uptime_s=1.0)
BUS_STOP_GRACE_S = 2.0  # a ctl stop on the bus gets this long before the OS signal follows
BUS_STOP_KINDS = ("master", "slave")  # nodes that act on a ctl stop on ctl.<name> (the monitor: signal)
DEMO_SETTLE_S = 1.5


class FleetError(RuntimeError):
    """The fleet cannot start (store unreachable, bus port taken): one line for the user."""


@dataclass(frozen=True)
class SimOptions:
    """Demo only: the simulator server and the demo trader the launcher also runs."""

    world: str | None = None
    seed: int = 0
    trader_login: int = 1001
    trader_rate: float = 0.5


@dataclass(frozen=True)
class FleetOptions:
    db_url: str
    bus_pub: str  # proxy XSUB: publishers connect here
    bus_sub: str  # proxy XPUB: subscribers connect here
    sim_endpoint: str
    log_dir: Path
    host: str = field(default_factory=socket.gethostname)
    nodes_dir: Path = ROOT / "nodes"
    python: str = sys.executable
    policy: Policy = field(default_factory=Policy)
    reconcile_interval_s: float = 2.0
    stats_interval_s: float = 5.0
    master_wait_s: float = 15.0
    stop_timeout_s: float = 10.0
    ready_timeout_s: float = 15.0
    sim: SimOptions | None = None
    monitor: bool = True
    data_dir: Path | None = None  # passed to nodes: where they look for the KILL_SWITCH file
    proxy: bool = True  # False: the bus proxy runs elsewhere (another host's launcher); connect to it
    config_file: str | None = None  # the settings file the launcher read: its children read it too


@dataclass
class Child:
    """One supervised process and what the launcher knows about it."""

    name: str
    kind: str  # master | slave | monitor | proxy | sim | trader
    sup: Supervised
    desired: Desired | None = None  # account nodes: None once disabled/removed
    handle: ProcessHandle | None = None
    started_ms: int | None = None
    stats: ProcStats | None = None
    stop_deadline: float | None = None
    removed: bool = False  # account deleted: drop the nodes doc once stopped
    standby: bool = False  # waiting for the account's lease, held by another process (maybe another host)
    note: str | None = None  # what the node says about itself: "standby: …", "waiting on the store …"
    restarts_before: int = 0  # restarts counted by earlier launcher processes (from the store)
    last_restart_reason: str | None = None
    last_restart_ms: int | None = None
    signal_at: float | None = None  # stopping: when the OS signal follows the bus ctl stop
    stop_label: str | None = None  # "disabled" / "removed" / ...: why the fleet stopped it on purpose

    @property
    def is_account(self) -> bool:
        return self.kind in ("master", "slave")
