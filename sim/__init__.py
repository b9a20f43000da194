"""copyhub's MT5 simulator: brokers, accounts and a MetaTrader5-module-like terminal.

    from sim import Simulator
    sim = Simulator.demo(seed=0)
    mt5 = sim.terminal()
    mt5.initialize(login=2001, server="SimProp-Server")

The engine is imported on first use (PEP 562), so a node that only needs
``sim.client`` does not pay for loading the whole broker world at start.
"""
from __future__ import annotations

from importlib import import_module
from typing import Any

_EXPORTS = {
    "Simulator": "sim.simulator",
    "WorldError": "sim.world",
    "load_world": "sim.world",
    "parse_world": "sim.world",
    "RECORD_TYPES": "sim.records",
    "RATES_DTYPE": "sim.records",
    "TICKS_DTYPE": "sim.records",
}

__all__ = list(_EXPORTS)


def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'sim' has no attribute {name!r}")
    value = getattr(import_module(module), name)
    globals()[name] = value
    return value
