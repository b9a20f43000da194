"""Stand-in for the Windows ``MetaTrader5`` package inside a test mt5linux server.

The mt5linux server (``python -m mt5linux``) runs ``import MetaTrader5 as mt5``; with this
directory first on its ``sys.path`` it gets this module, which forwards every function and
constant to a copyhub simulator server (``sim.client.connect``) at the endpoint in
``COPYHUB_STANDIN_SIM``.  Test hooks, read on every call:

* ``COPYHUB_STANDIN_HANG``: a file; while it exists, calls sleep (a hung terminal).
* ``COPYHUB_STANDIN_COUNT``: a file that gets one line per call (proves one call per request).
"""
import os
import time

from sim.client import MT5_FUNCTIONS, connect

_client = connect(os.environ["COPYHUB_STANDIN_SIM"], timeout_ms=5000)
_HANG = os.environ.get("COPYHUB_STANDIN_HANG")
_COUNT = os.environ.get("COPYHUB_STANDIN_COUNT")

for _k in dir(_client):
    if _k.isupper():
        globals()[_k] = getattr(_client, _k)
__version__ = _client.__version__
__author__ = "MetaQuotes Ltd."


def _forward(name):
    target = getattr(_client, name)

    def call(*args, **kwargs):
        if _COUNT:
            with open(_COUNT, "a") as f:
                f.write(name + "\n")
        if _HANG and name != "last_error":
            while os.path.exists(_HANG):
                time.sleep(0.05)
        return target(*args, **kwargs)

    call.__name__ = name
    return call


for _name in MT5_FUNCTIONS:
    globals()[_name] = _forward(_name)
