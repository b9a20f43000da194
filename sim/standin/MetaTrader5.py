"""Stand-in for the Windows-only ``MetaTrader5`` package, bound to the copyhub simulator.

Put this directory first on ``sys.path`` (``python -m sim run script.py`` does) and
``import MetaTrader5 as mt5`` gives the package's surface -- the 32 functions, ``Buy``,
``Sell``, ``Close``, ``_RawOrder``, every constant and record type -- on one simulated
terminal for this process. Which world and account: see sim/dropin.py and
docs/simulator.md ("Running a script on the simulator").
"""
from sim.dropin import bind_module

bind_module(globals())
del bind_module
