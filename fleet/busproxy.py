"""The bus proxy as the launcher runs it: ``messaging.proxy`` with the store's allow-list.

    python -m fleet.busproxy [--xsub tcp://HOST:5555] [--xpub tcp://HOST:5556] [--db URL]
                             [--parent-pid PID] [--hwm N]

Same arguments, output (``READY ...``) and exit codes as ``python -m messaging.proxy``
(docs/bus.md); with CURVE (``BUS_KEY_FILE``) the ZAP handler admits the public keys
on the store's ``bus_keys`` allow-list (``cli.py keys``), re-read every 2 s, and each
refused connection is also recorded as a ``bus_connection_refused`` event. The store
lives a layer above the bus, hence this module: messaging/ never imports db/.
"""
from __future__ import annotations

import sys
import threading
from collections.abc import Callable
from typing import Any

from messaging import proxy
from messaging.security import AllowList


def store_allow_list(db_url: str) -> tuple[AllowList, Callable[[dict[str, Any]], None], Callable[[], None]]:
    """(allow-list read from the store's ``bus_keys``, a function recording a refused
    connection as a ``bus_connection_refused`` event, a closer). The store is opened
    lazily and reopened after a failure: a store that is down at start means nobody is
    let in until it answers (fail closed), which the log says once."""
    from db import open_store

    state: dict[str, Any] = {"store": None}
    lock = threading.Lock()

    def store() -> Any:
        if state["store"] is None:
            state["store"] = open_store(db_url)
        return state["store"]

    def guarded(fn: Callable[[Any], Any]) -> Any:
        with lock:
            try:
                return fn(store())
            except Exception:
                bad, state["store"] = state["store"], None
                if bad is not None:
                    try:
                        bad.close()
                    except Exception:
                        pass
                raise

    def load() -> dict[str, str]:
        return {d["public_key"]: d["name"] for d in guarded(lambda st: st.list_bus_keys())}

    def record(refusal: dict[str, Any]) -> None:
        guarded(lambda st: st.add_event("bus_connection_refused", node="bus-proxy", level="warning", **refusal))

    def close() -> None:
        with lock:
            if state["store"] is not None:
                state["store"].close()
                state["store"] = None

    return AllowList(load), record, close


def main(argv: list[str] | None = None, **kwargs: Any) -> int:
    """``python -m fleet.busproxy``: ``messaging.proxy.main`` with the store's allow-list."""
    return proxy.main(argv, allow_source=store_allow_list, prog="python -m fleet.busproxy", **kwargs)


if __name__ == "__main__":
    _argv, _xsub, _xpub = proxy.settings_endpoints()
    sys.exit(main(_argv, xsub=_xsub, xpub=_xpub))
