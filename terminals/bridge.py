"""The ``mt5linux`` adapter: MetaTrader5 under Wine, reached over the mt5linux rpyc bridge.

The mt5linux client (pinned: see ``MT5LINUX_PIN`` and requirements-mt5linux.txt) opens an rpyc
*classic* connection to ``python -m mt5linux`` running under Wine's Windows Python, where the
real ``MetaTrader5`` package is imported as ``mt5``.  Its own methods return rpyc netrefs, so
every field of every record is one more network round trip (positions_get with 5 positions:
~100 requests).  This adapter keeps mt5linux's connection but installs one small function in
the server namespace (``SERVER_SOURCE``) that runs the call *there*, turns the result into
plain builtins (tagged tuples, numpy arrays as raw bytes) together with ``last_error()``, and
sends it back by value: **one request per call**.  Records are rebuilt locally as the
simulator's namedtuples (``sim.records``: same names and field order as the real package);
a record type the client does not know (e.g. a newer build that appends fields) is built
from the field names the server sends.

Connection handling: every request waits at most ``timeout_s`` (``terminal.timeout`` in ms,
default ``DEFAULT_TIMEOUT_MS``); a lost or timed-out connection is dropped and later calls
raise ``ConnectionError`` until ``initialize()`` reconnects.  This class raises; the guard
(``terminals.guard``) that ``open_terminal`` puts around it turns that into ``None`` +
``last_error()``.
"""
from __future__ import annotations

import threading
from collections import namedtuple
from datetime import date, datetime
from typing import Any

from terminals.guard import FAILURE_VALUES, RES_S_OK

#: the mt5linux release this adapter is written and tested against
MT5LINUX_PIN = "1.0.11"
#: per-request deadline when the spec sets no ``timeout`` (ms)
DEFAULT_TIMEOUT_MS = 10_000
#: extra wait for initialize/login beyond the terminal-side ``timeout`` they are given (s)
INIT_GRACE_S = 5.0

# Runs in the rpyc server's per-connection namespace, where mt5linux's client has already
# executed ``import MetaTrader5 as mt5``.  Plain Python 3 (the Wine side may be older).
SERVER_SOURCE = r'''
def _copyhub_setup():
    import datetime as _dt
    try:
        import numpy as _np
    except Exception:
        _np = None
    S = (type(None), bool, int, float, str, bytes)

    def enc(v, types):
        t = type(v)
        if t in S:
            return v
        if isinstance(v, tuple):
            if hasattr(v, "_fields"):
                name = t.__name__
                if name not in types:
                    types[name] = tuple(v._fields)
                vals = tuple(v)
                for x in vals:
                    if type(x) not in S:
                        return ("r", name, tuple([enc(x, types) for x in vals]))
                return ("r", name, vals)
            return ("t", tuple([enc(x, types) for x in v]))
        if isinstance(v, list):
            return ("l", tuple([enc(x, types) for x in v]))
        if isinstance(v, dict):
            return ("d", tuple([(enc(k, types), enc(x, types)) for k, x in v.items()]))
        if _np is not None and isinstance(v, _np.ndarray):
            a = _np.ascontiguousarray(v)
            if a.dtype.names is None:
                descr = a.dtype.str
            else:
                descr = tuple([(str(f[0]), str(f[1])) for f in a.dtype.descr])
            return ("a", descr, tuple(a.shape), a.tobytes())
        if _np is not None and isinstance(v, _np.generic):
            return enc(v.item(), types)
        if isinstance(v, _dt.datetime):
            return ("dt", v.isoformat())
        if isinstance(v, bool):
            return bool(v)
        if isinstance(v, int):
            return int(v)
        if isinstance(v, float):
            return float(v)
        return str(v)

    def dec(v):
        if type(v) is tuple and v:
            tag = v[0]
            if tag == "d":
                return dict([(dec(k), dec(x)) for k, x in v[1]])
            if tag == "t":
                return tuple([dec(x) for x in v[1]])
            if tag == "l":
                return [dec(x) for x in v[1]]
            if tag == "dt":
                return _dt.datetime.fromisoformat(v[1])
            if tag == "date":
                return _dt.date.fromisoformat(v[1])
        return v

    def call(name, args, kwargs):
        fn = getattr(mt5, name)
        result = fn(*dec(args), **dec(kwargs))
        types = {}
        out = enc(result, types)
        err = mt5.last_error()
        return out, (tuple(err) if err is not None else None), tuple(types.items())

    def constants():
        out = []
        for k in dir(mt5):
            if k.isupper() or k in ("__version__", "__author__"):
                v = getattr(mt5, k)
                if type(v) in (bool, int, float, str):
                    out.append((k, v))
        return tuple(out)

    return call, constants

_copyhub_call, _copyhub_constants = _copyhub_setup()
'''

_SCALARS = frozenset((type(None), bool, int, float, str, bytes))
_TYPES: dict[tuple[str, tuple[str, ...]], type] = {}
_TYPES_LOCK = threading.Lock()


def _record_type(name: str, fields: tuple[str, ...]) -> type:
    key = (name, fields)
    cls = _TYPES.get(key)
    if cls is None:
        from sim.records import RECORD_TYPES

        known = RECORD_TYPES.get(name)
        if known is not None and tuple(known._fields) == tuple(fields):
            cls = known
        else:  # not a type we know, or a build with other fields: follow the server
            cls = namedtuple(name if name.isidentifier() else "Record", fields, rename=True)
        with _TYPES_LOCK:
            _TYPES[key] = cls
    return cls


def encode_arg(v: Any) -> Any:
    """A call argument as rpyc sends by value (brine: scalars, bytes, tuples)."""
    t = type(v)
    if t in _SCALARS:
        return v
    if t is dict:
        return ("d", tuple((encode_arg(k), encode_arg(x)) for k, x in v.items()))
    if isinstance(v, datetime):
        return ("dt", v.isoformat())
    if isinstance(v, date):
        return ("date", v.isoformat())
    if isinstance(v, tuple):
        return ("t", tuple(encode_arg(x) for x in v))
    if isinstance(v, list):
        return ("l", tuple(encode_arg(x) for x in v))
    if isinstance(v, bool):
        return bool(v)
    if isinstance(v, int):  # IntEnum, numpy ints are not int subclasses (handled below)
        return int(v)
    if isinstance(v, float):
        return float(v)
    if isinstance(v, str):
        return str(v)
    item = getattr(v, "item", None)  # numpy scalars
    if item is not None and type(v).__module__ == "numpy":
        return encode_arg(item())
    raise TypeError(f"a {t.__name__} cannot be sent to the mt5linux bridge")


def decode_result(v: Any, types: dict[str, tuple[str, ...]]) -> Any:
    """Rebuild a server reply (see ``enc`` in SERVER_SOURCE) as local Python values."""
    if type(v) is not tuple:
        return v
    tag = v[0]
    if tag == "r":
        cls = _record_type(v[1], types[v[1]])
        vals = v[2]
        for x in vals:
            if type(x) is tuple:
                return cls._make([decode_result(y, types) for y in vals])
        return cls._make(vals)
    if tag == "t":
        return tuple([decode_result(x, types) for x in v[1]])
    if tag == "l":
        return [decode_result(x, types) for x in v[1]]
    if tag == "d":
        return {decode_result(k, types): decode_result(x, types) for k, x in v[1]}
    if tag == "a":
        import numpy as np

        descr = v[1] if isinstance(v[1], str) else [tuple(f) for f in v[1]]
        return np.frombuffer(v[3], dtype=np.dtype(descr)).reshape(v[2]).copy()
    if tag == "dt":
        return datetime.fromisoformat(v[1])
    raise ValueError(f"malformed reply from the mt5linux bridge (tag {tag!r})")


class Mt5LinuxBridge:
    """MetaTrader5 surface over one mt5linux connection; one rpyc request per call."""

    __author__ = "MetaQuotes Ltd."

    def __init__(self, client_module: Any, host: str, port: int,
                 timeout_ms: int | None = None) -> None:
        self._client_module = client_module
        self.host = host
        self.port = int(port)
        self.timeout_s = (timeout_ms or DEFAULT_TIMEOUT_MS) / 1000.0
        self._conn: Any = None
        self._call: Any = None
        self._last_error: tuple[int, str] = RES_S_OK

    def __repr__(self) -> str:
        state = "connected" if self.connected else "not connected"
        return f"<Mt5LinuxBridge {self.host}:{self.port} {state}>"

    # ------------------------------------------------------------------ connection
    @property
    def connected(self) -> bool:
        return self._call is not None and not getattr(self._conn, "closed", False)

    @property
    def connection(self) -> Any:
        """The rpyc connection (None when not connected); tests count its requests."""
        return self._conn

    def connect(self) -> None:
        """(Re)open the connection and install the server-side helper."""
        self.close()
        client = self._client_module.MetaTrader5(host=self.host, port=self.port, timeout=self.timeout_s)
        conn = getattr(client, "_MetaTrader5__conn", None)
        try:
            client.execute(SERVER_SOURCE)
            call, consts = client.eval("(_copyhub_call, _copyhub_constants())")
        except BaseException:
            if conn is not None:
                _close_quietly(conn)
            raise
        for key, value in consts:
            setattr(self, key, value)
        self._conn = conn if conn is not None else getattr(call, "____conn__", None)
        self._call = call

    def close(self) -> None:
        """Drop the connection (the terminal under Wine keeps running)."""
        conn, self._conn, self._call = self._conn, None, None
        if conn is not None:
            _close_quietly(conn)

    # ------------------------------------------------------------------ calls
    def _invoke(self, name: str, args: tuple, kwargs: dict, wait_s: float | None = None) -> Any:
        call, conn = self._call, self._conn
        if call is None or getattr(conn, "closed", False):
            self.close()
            raise ConnectionError(f"mt5linux bridge {self.host}:{self.port} is not connected "
                                  "(initialize() reconnects)")
        a = tuple(encode_arg(x) for x in args)
        k = tuple((key, encode_arg(x)) for key, x in kwargs.items()) if kwargs else ()
        config = conn._config if conn is not None else {}
        if wait_s is not None:
            config["sync_request_timeout"] = wait_s
        try:
            out, err, types = call(name, ("t", a), ("d", k))
        except (EOFError, OSError):  # lost, refused, timed out: the connection is done for
            self.close()
            raise
        except Exception:
            if getattr(conn, "closed", False):
                self.close()
            raise
        finally:
            if wait_s is not None and self._conn is conn:
                config["sync_request_timeout"] = self.timeout_s
        if err is not None:
            self._last_error = err
        return decode_result(out, dict(types)) if type(out) is tuple else out

    def _init_wait(self, kwargs: dict) -> float:
        t = kwargs.get("timeout")
        if isinstance(t, (int, float)) and not isinstance(t, bool) and t > 0:
            return max(self.timeout_s, t / 1000.0 + INIT_GRACE_S)
        return self.timeout_s

    def initialize(self, *args: Any, **kwargs: Any) -> bool:
        """Connect (or reconnect) to the bridge, then ``mt5.initialize`` under Wine."""
        fresh = not self.connected
        if fresh:
            self.connect()
        try:
            return self._invoke("initialize", args, kwargs, self._init_wait(kwargs))
        except (EOFError, ConnectionError):
            if fresh:
                raise
            self.connect()  # the old connection died unnoticed (server restarted): once more
            return self._invoke("initialize", args, kwargs, self._init_wait(kwargs))

    def login(self, *args: Any, **kwargs: Any) -> bool:
        return self._invoke("login", args, kwargs, self._init_wait(kwargs))

    def shutdown(self) -> None:
        """``mt5.shutdown()`` under Wine, then close the bridge connection."""
        if not self.connected:
            self.close()
            return None
        try:
            return self._invoke("shutdown", (), {})
        finally:
            self.close()

    def last_error(self) -> tuple[int, str]:
        """``last_error()`` as of the last reply (it travels with every reply)."""
        return self._last_error


def _close_quietly(conn: Any) -> None:
    try:
        conn.close()
    except Exception:  # noqa: BLE001 - closing a dead connection may itself fail
        pass


def _make(name: str):
    def call(self: Mt5LinuxBridge, *args: Any, **kwargs: Any) -> Any:
        return self._invoke(name, args, kwargs)

    call.__name__ = call.__qualname__ = name
    call.__doc__ = f"MetaTrader5.{name} under Wine, one bridge request."
    return call


for _name in FAILURE_VALUES:
    if not hasattr(Mt5LinuxBridge, _name):
        setattr(Mt5LinuxBridge, _name, _make(_name))
del _name


def _install_record_types() -> None:
    """``mt5.TradePosition`` & co. as on the package: the types replies are rebuilt as."""
    from sim.records import RECORD_TYPES

    for name, cls in RECORD_TYPES.items():
        setattr(Mt5LinuxBridge, name, cls)


_install_record_types()
