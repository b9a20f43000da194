"""ZeroMQ client for the simulator server, plus the wire codec both sides share.

``connect(endpoint, login=...)`` returns an object with the MetaTrader5 module's surface
(the 32 functions and every constant), so node code written for ``import MetaTrader5 as mt5``
runs unchanged against a simulator in another process.  A dead or hung server looks like a
disconnected terminal: calls return the package's failure value and ``last_error()`` reports
``(-10005, 'IPC timeout')`` or ``(-10004, 'No IPC connection')`` -- never a hang, never an
exception.

Threading: one client object belongs to one thread.  Calls are serialised by an internal
lock, so sharing does not corrupt the socket, but a slow call then blocks the other threads;
give each thread its own ``connect()`` for concurrency.

Wire protocol (see docs/simulator-server.md): DEALER -> ROUTER, multipart messages
``[json, *buffers]``.  Request ``[rid, client_id, ns, fn, args, kwargs, epoch]``; reply
``[rid, status, payload, last_error, epoch]``.  Replies whose ``rid`` is not the one awaited
are discarded, and the socket is replaced after a timeout, so a late reply never answers a
later call.
"""
from __future__ import annotations

import base64
import itertools
import json
import sys
import threading
import time
import uuid
from collections.abc import Callable
from datetime import date, datetime
from typing import Any

import zmq

from sim.helpers import PackageHelpers

PROTOCOL = 2  # 2: record replies as msgpack (encode_reply)
DEFAULT_ENDPOINT = "tcp://127.0.0.1:5570"
DEFAULT_TIMEOUT_MS = 2000

NS_MT5 = "mt5"
NS_ADMIN = "admin"
NS_SYS = "sys"

ST_OK = "ok"
ST_EXC = "exc"
ST_EPOCH = "epoch"

RES_S_OK = (1, "Success")
ERR_NO_CONNECTION = (-10004, "No IPC connection")
ERR_TIMEOUT = (-10005, "IPC timeout")
ERR_INVALID_PARAMS = (-2, "Terminal: Invalid params")

# The 32 MetaTrader5 functions and what the real package returns when it cannot reach its
# terminal (reference section 2): False for the boolean calls, None for everything else.
MT5_FUNCTIONS: dict[str, Any] = {
    "initialize": False, "login": False, "shutdown": None, "version": None,
    "last_error": None, "account_info": None, "terminal_info": None,
    "symbols_total": 0, "symbols_get": None, "symbol_info": None,
    "symbol_info_tick": None, "symbol_select": False,
    "market_book_add": False, "market_book_get": None, "market_book_release": False,
    "copy_rates_from": None, "copy_rates_from_pos": None, "copy_rates_range": None,
    "copy_ticks_from": None, "copy_ticks_range": None,
    "orders_total": None, "orders_get": None, "positions_total": None, "positions_get": None,
    "history_orders_total": None, "history_orders_get": None,
    "history_deals_total": None, "history_deals_get": None,
    "order_calc_margin": None, "order_calc_profit": None,
    "order_check": None, "order_send": None,
}

ADMIN_FUNCTIONS = (
    "advance", "set_time", "set_price", "move_price", "set_session", "inject_fault", "clear_faults",
    "world_summary", "now_ms", "logins", "broker_of", "switch_terminal", "terminal_logins",
    "manual_trade", "balance_operation",
)

# Exceptions a server-side call may raise that the client re-raises with the same type (a
# wrong argument count is a TypeError in-process too); anything else becomes RuntimeError.
_RERAISE = {e.__name__: e for e in (TypeError, ValueError, KeyError, IndexError,
                                     AttributeError, LookupError, OverflowError)}


class SimUnavailable(ConnectionError):
    """The simulator server did not answer (admin calls raise; mt5 calls return None)."""


class CodecError(ValueError):
    """A value cannot be put on the wire, or a message off the wire is malformed."""


# --------------------------------------------------------------------------- codec
#
# JSON with tagged values, because pickle must never be loaded from a socket and msgpack is
# not installed.  Plain JSON covers None/bool/int/float/str/list/str-keyed dicts exactly
# (floats use repr, so they round-trip bit for bit, NaN and infinities included).  The rest
# is tagged with a one-key dict whose key starts with "$"; an ordinary dict with such a key,
# or with non-str keys, is itself tagged, so decoding is never ambiguous.  numpy arrays travel
# as raw extra frames (no base64) referenced by index.

_RECORDS: dict[str, type] | None = None


def _record_types() -> dict[str, type]:
    global _RECORDS
    if _RECORDS is None:
        from sim.records import RECORD_TYPES
        _RECORDS = RECORD_TYPES
    return _RECORDS


_SCALARS = frozenset((str, int, float, bool, type(None)))


def _enc(v: Any, bufs: list) -> Any:
    t = type(v)
    if v is None or t is str or t is int or t is float or t is bool:
        return v
    if t is list:
        return [_enc(x, bufs) for x in v]
    if t is dict:
        if all(type(k) is str and not k.startswith("$") for k in v):
            return {k: _enc(x, bufs) for k, x in v.items()}
        return {"$m": [[_enc(k, bufs), _enc(x, bufs)] for k, x in v.items()]}
    if t is tuple:
        return {"$t": [_enc(x, bufs) for x in v]}
    if isinstance(v, tuple) and hasattr(t, "_fields"):
        # Fast path: most records hold only JSON scalars (positions_get is the hot call).
        if all(type(x) in _SCALARS for x in v):
            return {"$n": t.__name__, "v": list(v)}
        return {"$n": t.__name__, "v": [_enc(x, bufs) for x in v]}
    if isinstance(v, datetime):
        return {"$dt": v.isoformat()}
    if isinstance(v, date):
        return {"$date": v.isoformat()}
    np = sys.modules.get("numpy")  # numpy loads only when arrays are in play (copy_rates/ticks)
    if np is not None and isinstance(v, np.ndarray):
        if v.dtype.hasobject:
            raise CodecError("numpy arrays of Python objects cannot be sent")
        import numpy.lib.format as _npformat

        arr = np.ascontiguousarray(v)
        bufs.append(arr.tobytes())
        return {"$a": _enc(_npformat.dtype_to_descr(arr.dtype), bufs),
                "s": list(arr.shape), "i": len(bufs)}
    if np is not None and isinstance(v, np.generic):
        return _enc(v.item(), bufs)
    if isinstance(v, (bytes, bytearray, memoryview)):
        return {"$b": base64.b64encode(bytes(v)).decode("ascii")}
    # int/float/str subclasses (IntEnum, numpy-free flags...) travel as their base value.
    if isinstance(v, bool):
        return bool(v)
    if isinstance(v, int):
        return int(v)
    if isinstance(v, float):
        return float(v)
    if isinstance(v, str):
        return str(v)
    raise CodecError(f"cannot encode value of type {t.__name__}")


def dumps(obj: Any) -> list[bytes]:
    """Encode ``obj`` as multipart frames: ``[json, *array buffers]``."""
    bufs: list[bytes] = []
    head = json.dumps(_enc(obj, bufs), separators=(",", ":")).encode("ascii")
    return [head, *bufs]


def loads(frames: list[bytes]) -> Any:
    """Decode frames produced by :func:`dumps`.  Raises CodecError on malformed input."""
    if not frames:
        raise CodecError("empty message")
    records = _record_types()

    def hook(d: dict) -> Any:
        if len(d) > 3:
            return d
        if "$t" in d:
            return tuple(d["$t"])
        if "$n" in d:
            cls = records.get(d["$n"])
            if cls is None:
                raise CodecError(f"unknown record type {d['$n']!r}")
            return cls(*d["v"])
        if "$m" in d:
            return {k: x for k, x in d["$m"]}
        if "$dt" in d:
            return datetime.fromisoformat(d["$dt"])
        if "$date" in d:
            return date.fromisoformat(d["$date"])
        if "$a" in d:
            idx = d["i"]
            if not 0 < idx < len(frames):
                raise CodecError("array frame missing")
            import numpy as np
            import numpy.lib.format as _npformat

            dtype = _npformat.descr_to_dtype(d["$a"])
            buf = frames[idx]
            return np.frombuffer(buf, dtype=dtype).reshape(d["s"]).copy()
        if "$b" in d:
            return base64.b64decode(d["$b"])
        return d

    try:
        return json.loads(bytes(frames[0]), object_hook=hook)
    except CodecError:
        raise
    except Exception as exc:  # json, unicode, numpy shape/dtype errors
        raise CodecError(f"malformed message: {exc}") from exc


# --------------------------------------------------------------------------- replies
#
# The replies that dominate the traffic -- one record (a tick, account_info, symbol_info) or
# a tuple of records of one type (positions_get, orders_get, the history) -- travel as
# msgpack instead: frames ``[FAST_REPLY, msgpack([rid, status, kind, last_error, epoch]),
# msgpack(record values)]``, ``kind`` naming the record type (``"*Name"`` for a tuple of
# them), decoded by msgspec straight into the record type. 100 positions: 718 -> 10 µs to
# encode, 458 -> 43 µs to decode (docs/benchmarks.md). Any other reply, and a record msgpack
# cannot carry (a nested request, a numpy value), goes as JSON above. msgpack is as exact as
# the JSON codec: ints, floats bit for bit (NaN too), strings, bools, None.

FAST_REPLY = b"\x01mp"  # first frame of a msgpack reply (a JSON reply's first frame starts with '[')
_MP_ENCODER: Any = None
_ENVELOPE: Any = None
_DECODERS: dict[str, Any] = {}


def _msgspec() -> Any:
    global _MP_ENCODER, _ENVELOPE
    import msgspec

    if _MP_ENCODER is None:
        _MP_ENCODER = msgspec.msgpack.Encoder()
        _ENVELOPE = msgspec.msgpack.Decoder(tuple[Any, str, str, Any, str])
    return msgspec


_NESTED_RECORDS = frozenset({"OrderSendResult", "OrderCheckResult"})  # they hold a TradeRequest: JSON tags it


def _record_kind(payload: Any) -> str | None:
    """``"Name"`` for one flat record, ``"*Name"`` for a non-empty tuple of flat records of
    one type, else None (the reply goes as JSON). Flat: every field an int, float, str, bool
    or None, as in every record the terminal returns (msgpack would turn a datetime into
    text, which the JSON codec tags and restores)."""
    t = type(payload)
    records = _record_types()
    if t is tuple:
        if not payload:
            return None
        t = type(payload[0])
        if records.get(t.__name__) is not t or t.__name__ in _NESTED_RECORDS or any(type(x) is not t for x in payload):
            return None
        return "*" + t.__name__ if all(_SCALARS.issuperset(map(type, x)) for x in payload) else None
    if records.get(t.__name__) is not t or t.__name__ in _NESTED_RECORDS or not _SCALARS.issuperset(map(type, payload)):
        return None
    return t.__name__


def encode_reply(rid: Any, status: str, payload: Any, err: Any, epoch: str) -> list[bytes]:
    """The frames of one reply (see above). Raises CodecError when it cannot be encoded."""
    kind = _record_kind(payload) if status == ST_OK else None
    if kind is not None:
        msgspec = _msgspec()
        try:
            return [FAST_REPLY, _MP_ENCODER.encode([rid, status, kind, err, epoch]), _MP_ENCODER.encode(payload)]
        except (TypeError, ValueError, OverflowError, msgspec.EncodeError):
            pass  # a value msgpack cannot carry (a nested record, numpy): JSON tags it
    return dumps([rid, status, payload, err, epoch])


def _decoder(kind: str) -> Any:
    dec = _DECODERS.get(kind)
    if dec is None:
        msgspec = _msgspec()
        cls = _record_types().get(kind.lstrip("*"))
        if cls is None:
            raise CodecError(f"unknown record type {kind!r}")
        dec = _DECODERS[kind] = msgspec.msgpack.Decoder(tuple[cls, ...] if kind.startswith("*") else cls)
    return dec


def decode_reply(frames: list[bytes]) -> tuple[Any, Any, Any, Any, Any]:
    """``(rid, status, payload, last_error, epoch)`` from a reply's frames (msgpack or JSON).
    Raises CodecError on malformed input."""
    if frames and bytes(frames[0]) == FAST_REPLY:
        msgspec = _msgspec()
        if len(frames) != 3:
            raise CodecError("malformed message: a msgpack reply has 3 frames")
        try:
            rid, status, kind, err, epoch = _ENVELOPE.decode(frames[1])
            payload = _decoder(kind).decode(frames[2])
        except (msgspec.DecodeError, msgspec.ValidationError) as exc:
            raise CodecError(f"malformed message: {exc}") from exc
        return rid, status, payload, tuple(err) if type(err) is list else err, epoch
    out = loads(frames)
    if type(out) is not list or len(out) != 5:
        raise CodecError("malformed message: a reply is [rid, status, payload, last_error, epoch]")
    rid, status, payload, err, epoch = out
    return rid, status, payload, err, epoch


# --------------------------------------------------------------------------- channel

class _Channel:
    """One DEALER socket with request ids, deadlines and socket replacement on timeout."""

    def __init__(self, endpoint: str, timeout_ms: int, client_id: str | None = None,
                 context: zmq.Context | None = None) -> None:
        self.endpoint = endpoint
        self.timeout_ms = int(timeout_ms)
        self.client_id = client_id or uuid.uuid4().hex
        self._ctx = context or zmq.Context.instance()
        self._sock: zmq.Socket | None = None
        self._rids = itertools.count(1)
        self._lock = threading.Lock()
        self.epoch = ""          # server instance id last seen ("" = accept any)

    def _socket(self) -> zmq.Socket:
        if self._sock is None:
            s = self._ctx.socket(zmq.DEALER)
            s.setsockopt(zmq.LINGER, 0)
            # IMMEDIATE: queue only onto completed connections, so "no server" shows up as an
            # unwritable socket instead of a request parked until some server appears.
            s.setsockopt(zmq.IMMEDIATE, 1)
            s.setsockopt(zmq.RECONNECT_IVL, 100)
            s.setsockopt(zmq.RECONNECT_IVL_MAX, 1000)
            s.connect(self.endpoint)
            self._sock = s
        return self._sock

    def _reset(self) -> None:
        """Drop the socket: queued requests and late replies die with it."""
        if self._sock is not None:
            self._sock.close(linger=0)
            self._sock = None

    def close(self) -> None:
        with self._lock:
            self._reset()

    def request(self, ns: str, fn: str, args: tuple, kwargs: dict,
                timeout_ms: int | None = None) -> tuple[str, Any, Any, Any] | tuple[int, str]:
        """Send one request and wait for its reply.

        Returns ``(status, payload, last_error, epoch)`` or an error tuple
        ``(code, description)`` (ERR_NO_CONNECTION / ERR_TIMEOUT).
        """
        wait = self.timeout_ms if timeout_ms is None else int(timeout_ms)
        with self._lock:
            rid = next(self._rids)
            frames = dumps([rid, self.client_id, ns, fn, list(args), kwargs, self.epoch])
            deadline = time.monotonic() + wait / 1000.0
            try:
                return self._exchange(rid, frames, wait, deadline)
            except zmq.ZMQError:  # e.g. context terminated, bad endpoint: no channel at all
                self._reset()
                return ERR_NO_CONNECTION

    def _exchange(self, rid: int, frames: list, wait: int,
                  deadline: float) -> tuple[str, Any, Any, Any] | tuple[int, str]:
        sock = self._socket()
        if not sock.poll(wait, zmq.POLLOUT):
            return ERR_NO_CONNECTION
        try:
            sock.send_multipart(frames, flags=zmq.NOBLOCK, copy=False)
        except zmq.Again:
            return ERR_NO_CONNECTION
        while True:
            left = int((deadline - time.monotonic()) * 1000)
            if left <= 0 or not sock.poll(left, zmq.POLLIN):
                self._reset()
                return ERR_TIMEOUT
            reply_frames = sock.recv_multipart(flags=zmq.NOBLOCK)
            try:
                r_rid, status, payload, err, epoch = decode_reply(reply_frames)
            except (CodecError, TypeError, ValueError):
                continue  # garbage is not an answer; keep waiting until the deadline
            if r_rid != rid:
                continue  # late reply to an earlier, timed-out request
            return status, payload, err, epoch


def _raise_remote(payload: Any) -> None:
    name, msg = (payload + ["", ""])[:2] if isinstance(payload, list) else ("", str(payload))
    exc = _RERAISE.get(name)
    if exc is not None:
        raise exc(msg)
    raise RuntimeError(f"simulator server error {name}: {msg}")


# --------------------------------------------------------------------------- mt5 client

def _terminal_constants() -> dict[str, Any]:
    """The constants the in-process terminal exports (so absent ones stay absent)."""
    from sim.constants import EXPORTED
    return dict(EXPORTED)


def _make_call(name: str) -> Callable[..., Any]:
    def call(self: SimMT5Client, *args: Any, **kwargs: Any) -> Any:
        return self._call(name, args, kwargs)
    call.__name__ = call.__qualname__ = name
    call.__doc__ = f"MetaTrader5.{name} executed by the simulator server."
    return call


class SimMT5Client(PackageHelpers):
    """Module-like MetaTrader5 surface bound to one terminal inside a simulator server
    (the 32 functions, every constant, the record types and ``Buy``/``Sell``/``Close``)."""

    __author__ = "MetaQuotes Ltd."

    def __init__(self, endpoint: str = DEFAULT_ENDPOINT, timeout_ms: int = DEFAULT_TIMEOUT_MS,
                 client_id: str | None = None, context: zmq.Context | None = None) -> None:
        self._chan = _Channel(endpoint, timeout_ms, client_id, context)
        self._last_error: tuple[int, str] = RES_S_OK
        # Calls replayed after a server restart so the caller keeps its session.
        self._init_call: tuple[tuple, dict] | None = None
        self._login_call: tuple[tuple, dict] | None = None

    @property
    def endpoint(self) -> str:
        return self._chan.endpoint

    @property
    def timeout_ms(self) -> int:
        """Per-call deadline; settable (e.g. longer for a big history download)."""
        return self._chan.timeout_ms

    @timeout_ms.setter
    def timeout_ms(self, value: int) -> None:
        self._chan.timeout_ms = int(value)

    def last_error(self) -> tuple[int, str]:
        """Last error of this terminal, cached from the previous reply (no round-trip)."""
        return self._last_error

    def close(self) -> None:
        """Close the socket (the server drops the idle terminal after its session TTL)."""
        self._chan.close()

    def __repr__(self) -> str:
        return f"<SimMT5Client {self._chan.endpoint} id={self._chan.client_id[:8]}>"

    def _send(self, fn: str, args: tuple, kwargs: dict) -> Any:
        try:
            return self._chan.request(NS_MT5, fn, args, kwargs)
        except CodecError:
            # A value that cannot travel (Decimal volume, a custom object...) is what the
            # terminal would refuse too: invalid params, not an exception.
            return ERR_INVALID_PARAMS

    def _call(self, fn: str, args: tuple, kwargs: dict) -> Any:
        fail = MT5_FUNCTIONS[fn]
        for _ in range(3):
            rep = self._send(fn, args, kwargs)
            if len(rep) == 2:                 # transport failure
                self._last_error = rep        # type: ignore[assignment]
                return fail
            status, payload, err, epoch = rep
            if status == ST_EPOCH:  # server restarted or forgot us: our terminal is gone
                self._chan.epoch = ""   # "" = start a fresh session on whatever server is there
                if fn not in ("initialize", "login") and not self._replay_session():
                    return fail
                continue
            self._chan.epoch = epoch
            if err is not None:
                self._last_error = tuple(err)  # type: ignore[assignment]
            if status == ST_EXC:
                _raise_remote(payload)
            self._remember(fn, args, kwargs, payload)
            return payload
        self._last_error = ERR_NO_CONNECTION
        return fail

    def _remember(self, fn: str, args: tuple, kwargs: dict, result: Any) -> None:
        if fn == "initialize" and result is True:
            self._init_call, self._login_call = (args, kwargs), None
        elif fn == "login" and result is True:
            self._login_call = (args, kwargs)
        elif fn == "shutdown":
            self._init_call = self._login_call = None

    def _replay_session(self) -> bool:
        """Re-run the last successful initialize/login on a restarted server."""
        for fn, saved in (("initialize", self._init_call), ("login", self._login_call)):
            if saved is None:
                continue
            rep = self._send(fn, *saved)
            if len(rep) == 2:
                self._last_error = rep        # type: ignore[assignment]
                return False
            status, payload, err, epoch = rep
            self._chan.epoch = epoch
            if err is not None:
                self._last_error = tuple(err)  # type: ignore[assignment]
            if status != ST_OK or payload is not True:
                return False
        return True


for _name in MT5_FUNCTIONS:
    if _name != "last_error":
        setattr(SimMT5Client, _name, _make_call(_name))


def _install_constants() -> None:
    for k, v in {**_terminal_constants(), **_record_types()}.items():
        if not hasattr(SimMT5Client, k):
            setattr(SimMT5Client, k, v)
    from sim.constants import PACKAGE_VERSION
    SimMT5Client.__version__ = PACKAGE_VERSION


def connect(endpoint: str = DEFAULT_ENDPOINT, login: int | None = None,
            server: str | None = None, password: str | None = None,
            timeout_ms: int = DEFAULT_TIMEOUT_MS, client_id: str | None = None) -> SimMT5Client:
    """Return a MetaTrader5-like client; with ``login`` it also calls ``initialize``.

    Like the real package, a failed initialize does not raise: check ``mt5.last_error()``
    (or the result of your own ``mt5.initialize(...)``).
    """
    mt5 = SimMT5Client(endpoint, timeout_ms=timeout_ms, client_id=client_id)
    if login is not None:
        kw: dict[str, Any] = {"login": login}
        if server is not None:
            kw["server"] = server
        if password is not None:
            kw["password"] = password
        mt5.initialize(**kw)
    return mt5


# --------------------------------------------------------------------------- admin

class AdminClient:
    """Control calls on the served Simulator (time, prices, faults, summaries).

    Unlike the mt5 surface this is an operator API: failures raise ``SimUnavailable`` (no
    answer) or the server-side exception type (e.g. ValueError/KeyError for a bad login).
    """

    def __init__(self, endpoint: str = DEFAULT_ENDPOINT, timeout_ms: int = DEFAULT_TIMEOUT_MS,
                 context: zmq.Context | None = None) -> None:
        self._chan = _Channel(endpoint, timeout_ms, "admin-" + uuid.uuid4().hex, context)

    @property
    def endpoint(self) -> str:
        return self._chan.endpoint

    def close(self) -> None:
        self._chan.close()

    def _do(self, ns: str, fn: str, args: tuple = (), kwargs: dict | None = None,
            timeout_ms: int | None = None) -> Any:
        rep = self._chan.request(ns, fn, args, kwargs or {}, timeout_ms)
        if len(rep) == 2:
            raise SimUnavailable(f"simulator at {self._chan.endpoint} not reachable "
                                 f"({rep[1]})")
        status, payload, _err, epoch = rep
        self._chan.epoch = ""             # admin calls follow any server instance
        if status == ST_EXC:
            _raise_remote(payload)
        return payload

    def ping(self, timeout_ms: int | None = None) -> dict:
        """Server identity: {'protocol', 'epoch', 'endpoint', 'tick_hz', 'clients'}."""
        return self._do(NS_SYS, "ping", timeout_ms=timeout_ms)

    def digest(self, replica: int | None = None) -> str:
        """SHA-256 (hex) of the served world's state (``sim.cluster.world_digest``): of the
        main process, or of replica process ``replica`` of a multi-process server (equal
        digests: the replica holds exactly the main world). ValueError: no such replica up."""
        return self._do(NS_SYS, "digest", () if replica is None else (replica,))

    def advance(self, seconds: float) -> Any:
        return self._do(NS_ADMIN, "advance", (seconds,))

    def set_time(self, dt_utc: datetime) -> Any:
        return self._do(NS_ADMIN, "set_time", (dt_utc,))

    def set_price(self, symbol: str, bid: float, broker: str | None = None) -> Any:
        return self._do(NS_ADMIN, "set_price", (symbol, bid), {"broker": broker})

    def move_price(self, symbol: str, points: float, broker: str | None = None) -> Any:
        return self._do(NS_ADMIN, "move_price", (symbol, points), {"broker": broker})

    def set_session(self, symbol: str, broker: str, open: bool | None) -> Any:
        """Open (True) / close (False) a broker symbol's market now; None = its world sessions."""
        return self._do(NS_ADMIN, "set_session", (symbol, broker, open))

    def inject_fault(self, login: int, kind: str, **params: Any) -> Any:
        return self._do(NS_ADMIN, "inject_fault", (login, kind), params)

    def clear_faults(self, login: int) -> Any:
        return self._do(NS_ADMIN, "clear_faults", (login,))

    def switch_terminal(self, path: str, login: int) -> Any:
        """Log the world's terminal at ``path`` into ``login`` by hand (every session on it
        follows); ValueError for an unknown path or login."""
        return self._do(NS_ADMIN, "switch_terminal", (path, login))

    def manual_trade(self, login: int, request: dict, source: str = "client") -> Any:
        """A trade by hand on ``login`` (reason CLIENT, or MOBILE/WEB with ``source``); see
        ``Simulator.manual_trade``. Returns the OrderSendResult."""
        return self._do(NS_ADMIN, "manual_trade", (login, request), {"source": source})

    def terminal_logins(self) -> dict:
        """{terminal path: its current login (None: not logged in)} of the world's terminals."""
        return self._do(NS_ADMIN, "terminal_logins")

    def balance_operation(self, login: int, amount: float, kind: str = "balance", comment: str = "") -> dict:
        """Deposit (> 0) or withdraw (< 0) as a balance deal (``kind``: balance, credit,
        correction, bonus, charge); ValueError when refused. See Simulator.balance_operation."""
        return self._do(NS_ADMIN, "balance_operation", (login, amount), {"kind": kind, "comment": comment})

    def world_summary(self) -> dict:
        return self._do(NS_ADMIN, "world_summary")

    def now_ms(self) -> int:
        return self._do(NS_ADMIN, "now_ms")

    def logins(self) -> Any:
        return self._do(NS_ADMIN, "logins")

    def broker_of(self, login: int) -> Any:
        return self._do(NS_ADMIN, "broker_of", (login,))


def wait_until_up(endpoint: str, timeout_s: float = 10.0, poll_ms: int = 100) -> dict:
    """Poll ``endpoint`` until a simulator server answers; return its ping info."""
    admin = AdminClient(endpoint, timeout_ms=poll_ms)
    deadline = time.monotonic() + timeout_s
    try:
        while True:
            try:
                return admin.ping()
            except SimUnavailable:
                if time.monotonic() >= deadline:
                    raise
    finally:
        admin.close()


try:
    _install_constants()
except ImportError:  # engine not importable: the client still works, minus constants
    pass
