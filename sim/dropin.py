"""The simulator as a drop-in ``MetaTrader5``: the stand-in module and ``python -m sim run``.

``sim/standin/MetaTrader5.py`` is a module named like the Windows package; with
``sim/standin`` first on ``sys.path``, ``import MetaTrader5 as mt5`` gets it, and it is bound
to **one** simulated terminal per process, as the package is bound to one terminal:

* in-process (default): a Simulator of the world in ``COPYHUB_SIM_WORLD`` (default: the demo
  world) with seed ``COPYHUB_SIM_SEED``; its clock follows the wall clock at
  ``COPYHUB_SIM_TICK_HZ`` ticks per second (default 10; 0 freezes it at the world's start);
* served: with ``COPYHUB_SIM_ENDPOINT``, a ``SimMT5Client`` of the simulator server there
  (``python -m sim serve``), so several scripts share one world.

``COPYHUB_SIM_LOGIN`` is the account "saved in the terminal": a bare ``mt5.initialize()``
logs into it (in-process the default is the world's first account). ``initialize(path=...)``
picks one of the world's ``[[terminals]]``; an unknown path fails as on Windows.

``run_script`` is what ``python -m sim run`` does: set those variables (children the script
starts inherit them and ``PYTHONPATH``), put the stand-in first on ``sys.path`` and run the
script as ``__main__`` with its own arguments.
"""
from __future__ import annotations

import os
import runpy
import sys
import threading
import time
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

STANDIN_DIR = Path(__file__).resolve().with_name("standin")
REPO_ROOT = Path(__file__).resolve().parent.parent

ENV_WORLD = "COPYHUB_SIM_WORLD"
ENV_SEED = "COPYHUB_SIM_SEED"
ENV_LOGIN = "COPYHUB_SIM_LOGIN"
ENV_ENDPOINT = "COPYHUB_SIM_ENDPOINT"
ENV_TICK_HZ = "COPYHUB_SIM_TICK_HZ"
ENV_TIMEOUT_MS = "COPYHUB_SIM_TIMEOUT_MS"

#: the simulator behind an in-process stand-in (tests and ``sim run`` reach it here)
simulator: Any = None


class _Ticker(threading.Thread):
    """Advances an in-process world to the wall clock ``hz`` times per second."""

    def __init__(self, sim: Any, hz: float) -> None:
        super().__init__(name="sim-dropin-ticker", daemon=True)
        self.sim = sim
        self.period = 1.0 / hz

    def run(self) -> None:
        while True:
            time.sleep(self.period)
            lag_ms = time.time_ns() // 1_000_000 - self.sim.now_ms()
            if lag_ms > 0:
                self.sim.advance(lag_ms / 1000.0)


def _env_int(name: str, default: int | None) -> int | None:
    raw = os.environ.get(name, "").strip()
    if not raw:
        return default
    try:
        return int(raw)
    except ValueError:
        raise ValueError(f"{name} must be an integer, got {raw!r}") from None


def make_terminal() -> Any:
    """The one terminal object of this process, from the ``COPYHUB_SIM_*`` variables."""
    global simulator
    login = _env_int(ENV_LOGIN, None)
    endpoint = os.environ.get(ENV_ENDPOINT, "").strip()
    if endpoint:
        from sim.client import SimMT5Client

        client = SimMT5Client(endpoint, timeout_ms=_env_int(ENV_TIMEOUT_MS, 10_000))
        return _SavedLogin(client, login) if login is not None else client
    from sim import Simulator

    world = os.environ.get(ENV_WORLD, "").strip()
    seed = _env_int(ENV_SEED, 0)
    sim = Simulator.from_file(world, seed=seed) if world else Simulator.demo(seed=seed)
    hz = float(os.environ.get(ENV_TICK_HZ, "10") or 10)
    if hz > 0:
        sim.set_time(datetime.now(timezone.utc))
        _Ticker(sim, hz).start()
    simulator = sim
    return sim.terminal(login=login if login is not None else sim.logins()[0])


class _SavedLogin:
    """A served terminal whose bare ``initialize()`` logs into the saved account."""

    def __init__(self, inner: Any, login: int) -> None:
        self._inner = inner
        self._saved = login

    def __getattr__(self, name: str) -> Any:
        return getattr(self._inner, name)

    def initialize(self, path: Any = None, **kwargs: Any) -> Any:
        if path is None and "login" not in kwargs:
            kwargs["login"] = self._saved
        return self._inner.initialize(path, **kwargs) if path is not None else self._inner.initialize(**kwargs)


def bind_module(namespace: dict) -> Any:
    """Fill a module namespace with the package's surface bound to ``make_terminal()``:
    the 32 functions, the helpers, every constant and record type, ``__version__``."""
    from sim.client import MT5_FUNCTIONS
    from sim.constants import EXPORTED, PACKAGE_VERSION
    from sim.records import RECORD_TYPES

    term = make_terminal()
    namespace.update(EXPORTED)
    namespace.update(RECORD_TYPES)
    for name in (*MT5_FUNCTIONS, "Buy", "Sell", "Close", "_RawOrder"):
        namespace[name] = getattr(term, name)
    namespace["__version__"] = PACKAGE_VERSION
    namespace["__author__"] = "MetaQuotes Ltd."
    return term


def run_script(script: str, args: list[str], *, world: str | None = None, seed: int = 0,
               login: int | None = None, endpoint: str | None = None, tick_hz: float = 10.0,
               timeout_ms: int = 10_000) -> int:
    """Run ``script`` as ``__main__`` with ``import MetaTrader5`` bound to the simulator.

    Returns the script's exit code (``sys.exit(n)``); an exception propagates like under
    ``python script.py``.
    """
    env = {ENV_SEED: str(seed), ENV_TICK_HZ: repr(float(tick_hz)), ENV_TIMEOUT_MS: str(timeout_ms)}
    if world:
        env[ENV_WORLD] = str(Path(world).resolve())
    if login is not None:
        env[ENV_LOGIN] = str(login)
    if endpoint:
        env[ENV_ENDPOINT] = endpoint
    os.environ.update(env)
    extra = [str(STANDIN_DIR), str(REPO_ROOT)]
    old = os.environ.get("PYTHONPATH")
    os.environ["PYTHONPATH"] = os.pathsep.join(extra + ([old] if old else []))
    script_dir = str(Path(script).resolve().parent)
    sys.path[:0] = [script_dir, str(STANDIN_DIR)]
    sys.modules.pop("MetaTrader5", None)
    sys.argv = [script, *args]
    try:
        runpy.run_path(script, run_name="__main__")
    except SystemExit as exc:
        code = exc.code
        if code is None:
            return 0
        if isinstance(code, int):
            return code
        print(code, file=sys.stderr)
        return 1
    return 0
