"""Build and initialise the terminal object an account document asks for."""
from __future__ import annotations

import importlib
import importlib.metadata
import os
import sys
from collections.abc import Callable, Mapping
from typing import Any

from terminals.bridge import MT5LINUX_PIN
from terminals.guard import _cause, guard

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
    """Return an initialised, guarded MT5 surface for ``account``, or raise TerminalError.

    The object never raises for a terminal problem (``terminals.guard``): calls return the
    package's failure value and ``last_error()`` says why.  Opening it never raises anything
    but TerminalError.
    """
    spec = terminal_spec(account)
    name = account.get("name") if isinstance(account, Mapping) else getattr(account, "name", "?")
    kind = spec.get("kind", "mt5")
    env = os.environ if environ is None else environ
    opener = {"sim": lambda: _open_sim(name, spec, default_sim_endpoint, env),
              "mt5": lambda: _open_mt5(name, spec, env),
              "mt5linux": lambda: _open_mt5linux(name, spec, env)}.get(kind)
    if opener is None:
        raise TerminalError(f"account {name!r}: terminal kind {kind!r} is unknown; expected one of {', '.join(KINDS)}")
    try:
        return opener()
    except TerminalError:
        raise
    except Exception as exc:  # noqa: BLE001 - a node must get a TerminalError, never a raw one
        raise TerminalError(f"account {name!r}: cannot open the {kind!r} terminal: {_cause(exc)}") from None


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


def _init_options(spec: Mapping[str, Any]) -> dict[str, Any]:
    """``timeout`` (ms) and ``portable`` for ``initialize``, only when the spec sets them."""
    kwargs: dict[str, Any] = {}
    if spec.get("timeout") is not None:
        kwargs["timeout"] = int(spec["timeout"])
    if spec.get("portable") is not None:
        kwargs["portable"] = bool(spec["portable"])
    return kwargs


def _initialise(name: str, mt5: Any, *args: Any, **kwargs: Any) -> Any:
    """``initialize`` through the guard; a refusal closes the adapter and raises TerminalError."""
    mt5 = guard(mt5, label=str(name))
    if not mt5.initialize(*args, **kwargs):
        code, text = mt5.last_error()
        _close_quietly(mt5)
        raise TerminalError(f"account {name!r}: initialize failed: ({code}, {text!r})")
    return mt5


def _close_quietly(mt5: Any) -> None:
    close = getattr(mt5.inner, "close", None)
    if callable(close):
        try:
            close()
        except Exception:  # noqa: BLE001
            pass


def _open_mt5(name: str, spec: Mapping[str, Any], env: Mapping[str, str]) -> Any:
    if sys.platform != "win32":
        raise TerminalError(
            f"account {name!r}: the MetaTrader5 package runs only on Windows. On this machine use "
            "terminal kind 'mt5linux' (MT5 under Wine) or 'sim' (the copyhub simulator)."
        )
    try:
        mt5 = importlib.import_module("MetaTrader5")
    except Exception as exc:  # noqa: BLE001 - missing, or a broken install
        raise TerminalError(f"account {name!r}: the MetaTrader5 package cannot be imported "
                            f"({_cause(exc)}): pip install MetaTrader5") from None
    args = (spec["path"],) if spec.get("path") else ()
    return _initialise(name, mt5, *args, **_credentials(name, spec, env), **_init_options(spec))


def _load_mt5linux(name: str) -> Any:
    """The mt5linux client package; any import failure (1.1.x is a SyntaxError on Python
    3.10/3.11) or an unsupported release is a TerminalError naming the version to install."""
    install = f"pip install mt5linux=={MT5LINUX_PIN} (requirements-mt5linux.txt)"
    try:
        bridge = importlib.import_module("mt5linux")
    except Exception as exc:  # noqa: BLE001 - SyntaxError, missing rpyc, ...
        raise TerminalError(
            f"account {name!r}: the mt5linux bridge client cannot be imported ({_cause(exc)}): "
            f"{install}, and run its server under Wine"
        ) from None
    try:
        version = importlib.metadata.version("mt5linux")
    except Exception:  # noqa: BLE001 - not installed as a distribution (vendored, a test fake)
        version = None
    if version is not None and not version.startswith("1.0."):
        raise TerminalError(
            f"account {name!r}: mt5linux {version} is not supported (1.1.x does not import on "
            f"Python 3.10/3.11 and wants a container runtime on 3.12+): {install}"
        )
    return bridge


def _open_mt5linux(name: str, spec: Mapping[str, Any], env: Mapping[str, str]) -> Any:
    client = _load_mt5linux(name)
    from terminals.bridge import Mt5LinuxBridge

    mt5 = Mt5LinuxBridge(client, spec.get("host", "localhost"), int(spec.get("port", 18812)),
                         timeout_ms=spec.get("timeout"))
    args = (spec["path"],) if spec.get("path") else ()
    return _initialise(name, mt5, *args, **_credentials(name, spec, env), **_init_options(spec))


def _open_sim(name: str, spec: Mapping[str, Any], default_endpoint: str, env: Mapping[str, str]) -> Any:
    """The simulator takes the same credentials as a real terminal (``password_env`` must be
    set, as for 'mt5'/'mt5linux': a fleet rehearsed on the simulator fails there as it would on
    the real terminals); a simulated account with a password in its world checks it."""
    from sim.client import connect

    if spec.get("login") is None and not spec.get("path"):
        raise TerminalError(f"account {name!r}: a 'sim' terminal needs a 'login' or the 'path' of a simulated terminal")
    kwargs = {**_credentials(name, spec, env), **_init_options(spec)}  # before any socket: a missing variable raises
    endpoint = spec.get("endpoint") or default_endpoint
    mt5 = connect(endpoint)
    args = (spec["path"],) if spec.get("path") else ()  # a simulated terminal: its current login when none is given
    try:
        return _initialise(name, mt5, *args, **kwargs)
    except TerminalError as exc:
        if "(-10004" in str(exc) or "(-10005" in str(exc):  # nothing answers at the endpoint
            raise TerminalError(f"{exc}: the simulator is not reachable at {endpoint} "
                                "(start it with python -m sim serve, or run python launcher.py --demo)") from None
        raise
