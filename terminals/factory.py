"""Build and initialise the terminal object an account document asks for."""
from __future__ import annotations

import importlib
import os
import sys
from typing import Any, Callable, Mapping

KINDS = ("mt5", "mt5linux", "sim")


class TerminalError(RuntimeError):
    """The terminal for an account cannot be opened; the message says what to do."""


def terminal_spec(account: Any) -> dict[str, Any]:
    """The ``terminal`` spec of an account document or AccountConfig.

    The seed's flat ``path`` field means a real MT5 terminal at that path.
    """
    get: Callable[[str], Any] = account.get if isinstance(account, Mapping) else lambda k: getattr(account, k, None)
    spec = get("terminal")
    if spec:
        return dict(spec)
    if get("path"):
        return {"kind": "mt5", "path": get("path")}
    raise TerminalError(f"account {get('name')!r}: no 'terminal' and no 'path': nothing to connect to")


def open_terminal(account: Any, *, default_sim_endpoint: str = "tcp://127.0.0.1:5570", environ: Mapping[str, str] | None = None) -> Any:
    """Return an initialised MT5 surface for ``account``, or raise TerminalError."""
    spec = terminal_spec(account)
    name = account.get("name") if isinstance(account, Mapping) else getattr(account, "name", "?")
    kind = spec.get("kind", "mt5")
    env = os.environ if environ is None else environ
    if kind == "sim":
        return _open_sim(name, spec, default_sim_endpoint)
    if kind == "mt5":
        return _open_mt5(name, spec, env)
    if kind == "mt5linux":
        return _open_mt5linux(name, spec, env)
    raise TerminalError(f"account {name!r}: terminal kind {kind!r} is unknown; expected one of {', '.join(KINDS)}")


def _credentials(name: str, spec: Mapping[str, Any], env: Mapping[str, str]) -> dict[str, Any]:
    """login/password/server for ``initialize``; the password only ever comes from the environment."""
    kwargs: dict[str, Any] = {}
    if spec.get("login") is not None:
        kwargs["login"] = int(spec["login"])
    if spec.get("server"):
        kwargs["server"] = str(spec["server"])
    var = spec.get("password_env")
    if var:
        if var not in env:
            raise TerminalError(f"account {name!r}: environment variable {var!r} (password_env) is not set")
        kwargs["password"] = env[var]
    return kwargs


def _initialise(name: str, mt5: Any, *args: Any, **kwargs: Any) -> Any:
    if not mt5.initialize(*args, **kwargs):
        code, text = mt5.last_error()
        raise TerminalError(f"account {name!r}: initialize failed: ({code}, {text!r})")
    return mt5


def _open_mt5(name: str, spec: Mapping[str, Any], env: Mapping[str, str]) -> Any:
    if sys.platform != "win32":
        raise TerminalError(
            f"account {name!r}: the MetaTrader5 package runs only on Windows. On this machine use "
            "terminal kind 'mt5linux' (MT5 under Wine) or 'sim' (the copyhub simulator)."
        )
    try:
        mt5 = importlib.import_module("MetaTrader5")
    except ImportError:
        raise TerminalError(f"account {name!r}: the MetaTrader5 package is missing: pip install MetaTrader5") from None
    args = (spec["path"],) if spec.get("path") else ()
    return _initialise(name, mt5, *args, **_credentials(name, spec, env))


def _open_mt5linux(name: str, spec: Mapping[str, Any], env: Mapping[str, str]) -> Any:
    try:
        bridge = importlib.import_module("mt5linux")
    except ImportError:
        raise TerminalError(
            f"account {name!r}: the mt5linux bridge is missing: pip install mt5linux, and run its server under Wine"
        ) from None
    mt5 = bridge.MetaTrader5(host=spec.get("host", "localhost"), port=int(spec.get("port", 18812)))
    args = (spec["path"],) if spec.get("path") else ()
    return _initialise(name, mt5, *args, **_credentials(name, spec, env))


def _open_sim(name: str, spec: Mapping[str, Any], default_endpoint: str) -> Any:
    from sim.client import connect

    if spec.get("login") is None:
        raise TerminalError(f"account {name!r}: a 'sim' terminal needs a 'login'")
    endpoint = spec.get("endpoint") or default_endpoint
    mt5 = connect(endpoint)
    kwargs: dict[str, Any] = {"login": int(spec["login"])}
    if spec.get("server"):
        kwargs["server"] = spec["server"]
    return _initialise(name, mt5, **kwargs)
