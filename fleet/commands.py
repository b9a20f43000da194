"""How the launcher starts each kind of child: its command line and environment."""
from __future__ import annotations

import os

from fleet.options import ROOT, Child, FleetOptions


def child_argv(opts: FleetOptions, child: Child, launcher_pid: int) -> list[str]:
    """The command line for ``child`` (a list for ``subprocess``; no shell). Every child
    gets ``--parent-pid launcher_pid`` and exits on its own when the launcher is gone."""
    o, py = opts, opts.python
    if child.kind == "proxy":
        return [py, "-m", "messaging.proxy", "--xsub", o.bus_pub, "--xpub", o.bus_sub,
                "--parent-pid", str(launcher_pid)]
    if child.kind == "sim":
        assert o.sim is not None
        argv = [py, "-m", "fleet.guard", "--parent-pid", str(launcher_pid), "-m", "sim", "serve",
                "--endpoint", o.sim_endpoint, "--seed", str(o.sim.seed)]
        return argv + (["--world", o.sim.world] if o.sim.world else [])
    if child.kind == "trader":
        assert o.sim is not None
        return [py, "-m", "fleet.guard", "--parent-pid", str(launcher_pid), "-m", "sim", "trader",
                "--endpoint", o.sim_endpoint, "--login", str(o.sim.trader_login),
                "--rate", str(o.sim.trader_rate), "--seed", str(o.sim.seed)]
    script = o.nodes_dir / f"{child.kind}.py"
    # --standby: with launchers on several hosts (or a restart while the old process still
    # holds the lease) the account's lease decides who trades; the other waits.
    return [py, str(script), "--name", child.name, "--standby", "--host", o.host, "--db", o.db_url,
            "--bus-pub", o.bus_pub, "--bus-sub", o.bus_sub, "--sim-endpoint", o.sim_endpoint,
            "--parent-pid", str(launcher_pid),
            "--log-dir", str(o.log_dir)] + (["--data-dir", str(o.data_dir)] if o.data_dir else [])


def child_env(opts: FleetOptions, base: dict[str, str] | None = None) -> dict[str, str]:
    """The environment of every child: ``base`` (default: this process's) plus the
    repository on ``PYTHONPATH``, the store URL, the settings file, and file-only logging."""
    env = dict(os.environ if base is None else base)
    paths = [str(ROOT)] + ([env["PYTHONPATH"]] if env.get("PYTHONPATH") else [])
    env["PYTHONPATH"] = os.pathsep.join(paths)
    env["COPYHUB_DATABASE_URL"] = opts.db_url
    if opts.config_file:
        env["COPYHUB_CONFIG"] = opts.config_file
    # a supervised node logs to its own rotated file; its <name>.out keeps only what the
    # logger cannot catch (a crash before logging starts, a print on the way out)
    env["COPYHUB_LOG_CONSOLE"] = "0"
    env.setdefault("PYTHONUNBUFFERED", "1")
    return env
