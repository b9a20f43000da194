"""A ``MetaTrader5`` stand-in for bench/peer.py: the module-level API, forwarded to copyhub's
simulator server (``COPYHUB_SIM_ENDPOINT``) through one ``sim.client`` connection.

Minimal on purpose (issue 13 builds the full stand-in behind ``python -m sim run``): every
attribute — functions and constants — is the simulator client's, so a program written for
the real package (here bbstrader's TradeCopier) runs unchanged. Like the real package, one
process has one terminal connection; the client serialises calls from several threads.
"""
from __future__ import annotations

import os
from typing import Any

from sim.client import connect

__version__ = "5.0.45-copyhub-sim"
_client = connect(os.environ.get("COPYHUB_SIM_ENDPOINT", "tcp://127.0.0.1:5570"), timeout_ms=10_000)


def __getattr__(name: str) -> Any:
    return getattr(_client, name)
