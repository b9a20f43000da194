"""copyhub's MT5 simulator: brokers, accounts and a MetaTrader5-module-like terminal.

    from sim import Simulator
    sim = Simulator.demo(seed=0)
    mt5 = sim.terminal()
    mt5.initialize(login=2001, server="SimProp-Server")
"""
from .records import RATES_DTYPE, RECORD_TYPES, TICKS_DTYPE
from .simulator import Simulator
from .world import WorldError, load_world, parse_world

__all__ = [
    "Simulator", "WorldError", "load_world", "parse_world", "RECORD_TYPES", "RATES_DTYPE", "TICKS_DTYPE",
]
