"""Bus message schema, version 3: typed messages and strict validation on receipt.

Every frame pair that arrives on the bus goes through :func:`decode`. It runs msgspec
first (``messaging/fastwire.py``: the same constraints, one C pass); whatever msgspec
refuses is then validated here in pure Python, which gives the reason for the log. It either returns
one of the typed messages below, with positions and orders already converted to
``copier.models`` objects, or raises :class:`MalformedMessage`. Nothing else escapes,
so a node can drop bad input with one ``except`` and trading code only ever sees
validated values (ARCHITECTURE.md: "a malformed message never causes a trade").

Wire format: two frames, ``[topic, payload]``. The topic is ASCII ``<prefix>.<name>``;
the payload is a UTF-8 JSON object carrying ``"v": 3`` and ``"kind"``. Within a version
a writer may add optional fields (readers ignore unknown keys); removing or re-typing a
field, changing its meaning, or adding a required one bumps the version. Readers refuse
versions they do not know with :class:`VersionMismatch` (a ``MalformedMessage``), so
nodes of different versions drop each other's messages loudly instead of mis-reading them.

v2 (exposure sizing, invariant 7): every position and pending order on ``pos.<master>``
carries ``contract_size`` (the master broker's units per lot of its symbol; required).
v3 (pending-order expiry): every pending order also carries ``type_time`` (ORDER_TIME_*
name) and ``expiration_ms`` (the instant it expires, UTC epoch ms; 0 = never), required:
a v2 master sent none, and a follower must never read "no expiry" into its silence.
"""
from __future__ import annotations

import json
import math
import re
from collections.abc import Callable, Sequence
from dataclasses import MISSING, dataclass, field, fields
from typing import Any, ClassVar

from copier.models import PENDING_TYPES, SIDES, TIME_TYPES, AccountMetrics, PendingOrder, Position

VERSION = 3
KNOWN_OLD_VERSIONS = {1: "v1 (before exposure sizing: positions without contract_size)",
                      2: "v2 (before pending-order expiry: orders without type_time/expiration_ms)"}
MAX_MESSAGE_BYTES = 1024 * 1024  # payload cap: ~3000 positions; bigger is refused
NAME_RE = re.compile(r"^[A-Za-z0-9_-]{1,64}$")
FLEET_TARGET = "all"  # ctl.all addresses every node; no node may be called "all"
ROLES: tuple[str, ...] = ("master", "slave", "monitor", "launcher", "proxy")
LEVELS: tuple[str, ...] = ("debug", "info", "warning", "error", "critical")
COMMANDS: tuple[str, ...] = ("pause", "resume", "flatten", "reload", "snapshot", "stop", "ping")
KIND_PREFIX: dict[str, str] = {
    "snapshot": "pos",
    "delta": "pos",
    "status": "status",
    "event": "event",
    "ctl": "ctl",
}


class MalformedMessage(ValueError):
    """A bus message that must be dropped; ``reason`` says why (for the log)."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


class VersionMismatch(MalformedMessage):
    """A well-formed envelope of another schema version: dropped, and said loudly."""

    def __init__(self, version: Any) -> None:
        known = KNOWN_OLD_VERSIONS.get(version) if type(version) is int else None
        super().__init__(f"unsupported version {version!r:.20}: this node speaks v{VERSION}"
                         + (f", the sender {known}" if known else "")
                         + "; every node of a fleet must run the same bus version")
        self.version = version


def is_valid_name(name: object) -> bool:
    """Node/master names become topic suffixes: no dots, spaces or prefix tricks."""
    return isinstance(name, str) and bool(NAME_RE.match(name)) and name != FLEET_TARGET


# --------------------------------------------------------------------------- messages


@dataclass(frozen=True, slots=True)
class Snapshot:
    """Full state of one master at ``seq`` (same sequence space as deltas)."""

    kind: ClassVar[str] = "snapshot"
    master: str
    epoch: str
    seq: int
    ts_ms: int
    positions: tuple[Position, ...] = ()
    orders: tuple[PendingOrder, ...] = ()
    metrics: AccountMetrics | None = None

    @property
    def topic(self) -> str:
        return f"pos.{self.master}"


@dataclass(frozen=True, slots=True)
class Delta:
    """One master poll's changes, applied atomically on top of ``seq - 1``.

    Positions are keyed by ``identifier`` (stable across netting ticket changes),
    orders by ``ticket``.
    """

    kind: ClassVar[str] = "delta"
    master: str
    epoch: str
    seq: int
    ts_ms: int
    upsert_positions: tuple[Position, ...] = ()
    upsert_orders: tuple[PendingOrder, ...] = ()
    remove_positions: tuple[int, ...] = ()
    remove_orders: tuple[int, ...] = ()

    @property
    def topic(self) -> str:
        return f"pos.{self.master}"


# Status.state of a node blocked inside a store call (nodes/pulse.py publishes it; the
# launcher reads it as "alive, waiting on the store").
STORE_WAIT = "STORE_WAIT"


@dataclass(frozen=True, slots=True)
class Status:
    """Heartbeat of any node, with its account's money when it has a terminal."""

    kind: ClassVar[str] = "status"
    node: str
    role: str
    state: str
    pid: int
    ts_ms: int
    account: AccountMetrics | None = None
    error: str | None = None
    info: dict[str, Any] = field(default_factory=dict)

    @property
    def topic(self) -> str:
        return f"status.{self.node}"


@dataclass(frozen=True, slots=True)
class Event:
    """Something that happened (copy result, alert); ``data`` is free-form JSON."""

    kind: ClassVar[str] = "event"
    node: str
    ts_ms: int
    event: str
    level: str = "info"
    data: dict[str, Any] = field(default_factory=dict)

    @property
    def topic(self) -> str:
        return f"event.{self.node}"


@dataclass(frozen=True, slots=True)
class Control:
    """A command for one node (``target``) or the whole fleet (``"all"``)."""

    kind: ClassVar[str] = "ctl"
    target: str
    command: str
    sender: str
    ts_ms: int
    args: dict[str, Any] = field(default_factory=dict)

    @property
    def topic(self) -> str:
        return f"ctl.{self.target}"


Message = Snapshot | Delta | Status | Event | Control


# ------------------------------------------------------------------ to wire (payload)


def _metrics_dict(m: AccountMetrics | None) -> dict[str, Any] | None:
    return None if m is None else _wire(m)


def to_payload(msg: Message) -> dict[str, Any]:
    """The JSON object for ``msg`` (the codec serialises it)."""
    if isinstance(msg, Delta):
        return {
            "v": VERSION, "kind": "delta", "master": msg.master, "epoch": msg.epoch,
            "seq": msg.seq, "ts_ms": msg.ts_ms,
            "upserts": {
                "positions": [_wire(p) for p in msg.upsert_positions],
                "orders": [_wire(o) for o in msg.upsert_orders],
            },
            "removes": {"positions": list(msg.remove_positions), "orders": list(msg.remove_orders)},
        }
    if isinstance(msg, Snapshot):
        return {
            "v": VERSION, "kind": "snapshot", "master": msg.master, "epoch": msg.epoch,
            "seq": msg.seq, "ts_ms": msg.ts_ms,
            "positions": [_wire(p) for p in msg.positions],
            "orders": [_wire(o) for o in msg.orders],
            "metrics": _metrics_dict(msg.metrics),
        }
    if isinstance(msg, Status):
        return {
            "v": VERSION, "kind": "status", "node": msg.node, "role": msg.role,
            "state": msg.state, "pid": msg.pid, "ts_ms": msg.ts_ms,
            "account": _metrics_dict(msg.account), "error": msg.error, "info": msg.info,
        }
    if isinstance(msg, Event):
        return {
            "v": VERSION, "kind": "event", "node": msg.node, "ts_ms": msg.ts_ms,
            "event": msg.event, "level": msg.level, "data": msg.data,
        }
    if isinstance(msg, Control):
        return {
            "v": VERSION, "kind": "ctl", "target": msg.target, "command": msg.command,
            "args": msg.args, "sender": msg.sender, "ts_ms": msg.ts_ms,
        }
    raise TypeError(f"not a bus message: {type(msg).__name__}")


# ---------------------------------------------------------------- from wire (checks)


def _bad(reason: str) -> MalformedMessage:
    return MalformedMessage(reason)


def _get(d: dict[str, Any], key: str, where: str) -> Any:
    if key not in d:
        raise _bad(f"{where}: missing field {key!r}")
    return d[key]


def _int(v: Any, where: str, *, minimum: int | None = None) -> int:
    if type(v) is not int:  # bool is an int subclass: refuse it explicitly
        raise _bad(f"{where}: expected int, got {type(v).__name__}")
    if minimum is not None and v < minimum:
        raise _bad(f"{where}: {v} < {minimum}")
    if abs(v) >= 1 << 63:
        raise _bad(f"{where}: integer out of range")
    return v


def _float(v: Any, where: str) -> float:
    if type(v) not in (int, float):
        raise _bad(f"{where}: expected number, got {type(v).__name__}")
    try:
        f = float(v)
    except OverflowError:
        raise _bad(f"{where}: number out of range") from None
    if not math.isfinite(f):
        raise _bad(f"{where}: not finite")
    return f


def _str(v: Any, where: str, *, nonempty: bool = False, max_len: int = 4096) -> str:
    if not isinstance(v, str):
        raise _bad(f"{where}: expected string, got {type(v).__name__}")
    if nonempty and not v:
        raise _bad(f"{where}: empty string")
    if len(v) > max_len:
        raise _bad(f"{where}: string longer than {max_len}")
    return v


def _name(v: Any, where: str, *, allow_fleet: bool = False) -> str:
    if allow_fleet and v == FLEET_TARGET:
        return v
    if not is_valid_name(v):
        raise _bad(f"{where}: invalid node name {v!r:.80}")
    return v


def _obj(v: Any, where: str) -> dict[str, Any]:
    if not isinstance(v, dict):
        raise _bad(f"{where}: expected object, got {type(v).__name__}")
    return v


def _list(v: Any, where: str) -> list[Any]:
    if not isinstance(v, list):
        raise _bad(f"{where}: expected array, got {type(v).__name__}")
    return v


def _choice(v: Any, allowed: Sequence[str], where: str) -> str:
    if not isinstance(v, str) or v not in allowed:
        raise _bad(f"{where}: {v!r:.40} not one of {', '.join(allowed)}")
    return v


# Field checkers per model. Fields without a default in the dataclass are required;
# defaulted ones may be absent (so v1 can grow new optional fields).
_POSITION_FIELDS = {
    "ticket": ("int", 1), "identifier": ("int", 1), "symbol": ("str", None),
    "side": ("side", None), "volume": ("volume", None), "price_open": ("float", None),
    "sl": ("float", None), "tp": ("float", None), "time_msc": ("int", 0),
    "time_update_msc": ("int", 0), "magic": ("int", None), "comment": ("str", None),
    "price_current": ("float", None), "profit": ("float", None),
    "contract_size": ("csize", None),
}
_ORDER_FIELDS = {
    "ticket": ("int", 1), "symbol": ("str", None), "type": ("ptype", None),
    "volume": ("volume", None), "price_open": ("float", None),
    "price_stoplimit": ("float", None), "sl": ("float", None), "tp": ("float", None),
    "time_setup_msc": ("int", 0), "magic": ("int", None), "comment": ("str", None),
    "contract_size": ("csize", None), "type_time": ("ttime", None), "expiration_ms": ("int", 0),
}
_METRICS_FIELDS = {
    "login": ("int", 0), "balance": ("float", None), "equity": ("float", None),
    "margin": ("float", None), "margin_free": ("float", None), "profit": ("float", None),
    "currency": ("str", None), "leverage": ("int", 0), "server_time_msc": ("int", 0),
    "credit": ("float", None),  # optional: absent from older peers (0.0)
}


for _cls, _spec in ((Position, _POSITION_FIELDS), (PendingOrder, _ORDER_FIELDS),
                    (AccountMetrics, _METRICS_FIELDS)):
    # copier.models grew or lost a field: the wire schema must be updated with it
    # (decode would otherwise drop the field, or crash on a new required one).
    if set(_spec) != {f.name for f in fields(_cls)}:
        raise RuntimeError(f"messaging.schema is out of date with copier.models.{_cls.__name__}")

# Required on the wire although the model has a default (the default serves slave-side
# records built from the terminal): since v2 every master position/order carries it.
_WIRE_REQUIRED: dict[type, frozenset[str]] = {
    Position: frozenset({"contract_size"}),
    PendingOrder: frozenset({"contract_size", "type_time", "expiration_ms"}),  # v3: expiry
}
_REQUIRED: dict[type, frozenset[str]] = {
    cls: frozenset(f.name for f in fields(cls) if f.default is MISSING and f.default_factory is MISSING)
    | _WIRE_REQUIRED.get(cls, frozenset())
    for cls in (Position, PendingOrder, AccountMetrics)
}


def _checker(kind: str, arg: Any) -> Callable[[Any, str], Any]:
    """One specialised function per field, built once: decode is on the hot path."""
    if kind == "int":
        return lambda v, where: _int(v, where, minimum=arg)
    if kind == "float":
        return _float
    if kind == "str":
        return _str
    if kind == "side":
        return lambda v, where: _choice(v, SIDES, where)
    if kind == "ptype":
        return lambda v, where: _choice(v, PENDING_TYPES, where)
    if kind == "ttime":
        return lambda v, where: _choice(v, TIME_TYPES, where)
    if kind == "csize":  # contract size: units per lot, >= 0 (0 = the master could not read it)
        def csize(v: Any, where: str) -> float:
            f = _float(v, where)
            if f < 0:
                raise _bad(f"{where}: contract size must be >= 0, got {f}")
            return f
        return csize
    if kind == "volume":
        def volume(v: Any, where: str) -> float:
            f = _float(v, where)
            if f <= 0:
                raise _bad(f"{where}: volume must be > 0, got {f}")
            return f
        return volume
    raise AssertionError(kind)


def _compile(cls: type, spec: dict[str, tuple[str, Any]]) -> tuple:
    return tuple((name, _checker(kind, arg), name in _REQUIRED[cls]) for name, (kind, arg) in spec.items())


_COMPILED = {
    Position: _compile(Position, _POSITION_FIELDS),
    PendingOrder: _compile(PendingOrder, _ORDER_FIELDS),
    AccountMetrics: _compile(AccountMetrics, _METRICS_FIELDS),
}
# Field order for building wire dicts without dataclasses.asdict (which deep-copies).
_NAMES = {cls: tuple(f.name for f in fields(cls)) for cls in _COMPILED}


def _model(cls: type, raw: Any, where: str) -> Any:
    if not isinstance(raw, dict):
        raise _bad(f"{where}: expected object, got {type(raw).__name__}")
    kwargs: dict[str, Any] = {}
    for name, check, required in _COMPILED[cls]:
        if name in raw:
            kwargs[name] = check(raw[name], f"{where}.{name}")
        elif required:
            raise _bad(f"{where}: missing field {name!r}")
    if "symbol" in kwargs and not kwargs["symbol"]:
        raise _bad(f"{where}.symbol: empty string")
    return cls(**kwargs)


def _wire(obj: Any) -> dict[str, Any]:
    """A model as its wire dict (same keys and values as ``to_dict``, ~5x faster)."""
    return {n: getattr(obj, n) for n in _NAMES[type(obj)]}


def position_from_wire(raw: Any, where: str = "position") -> Position:
    return _model(Position, raw, where)


def order_from_wire(raw: Any, where: str = "order") -> PendingOrder:
    return _model(PendingOrder, raw, where)


def metrics_from_wire(raw: Any, where: str = "metrics") -> AccountMetrics | None:
    return None if raw is None else _model(AccountMetrics, raw, where)


def _positions(raw: Any, where: str) -> tuple[Position, ...]:
    items = tuple(position_from_wire(r, f"{where}[{i}]") for i, r in enumerate(_list(raw, where)))
    if len({p.identifier for p in items}) != len(items):
        raise _bad(f"{where}: duplicate position identifier")
    return items


def _orders(raw: Any, where: str) -> tuple[PendingOrder, ...]:
    items = tuple(order_from_wire(r, f"{where}[{i}]") for i, r in enumerate(_list(raw, where)))
    if len({o.ticket for o in items}) != len(items):
        raise _bad(f"{where}: duplicate order ticket")
    for i, o in enumerate(items):
        if o.type_time != "GTC" and o.expiration_ms <= 0:
            raise _bad(f"{where}[{i}]: a {o.type_time} order needs expiration_ms > 0")
    return items


def _ids(raw: Any, where: str) -> tuple[int, ...]:
    items = tuple(_int(v, f"{where}[{i}]", minimum=1) for i, v in enumerate(_list(raw, where)))
    if len(set(items)) != len(items):
        raise _bad(f"{where}: duplicate id")
    return items


def _head(d: dict[str, Any], kind: str) -> dict[str, Any]:
    """Fields shared by ``pos`` messages."""
    return {
        "master": _name(_get(d, "master", kind), f"{kind}.master"),
        "epoch": _str(_get(d, "epoch", kind), f"{kind}.epoch", nonempty=True, max_len=64),
        "seq": _int(_get(d, "seq", kind), f"{kind}.seq", minimum=0),
        "ts_ms": _int(_get(d, "ts_ms", kind), f"{kind}.ts_ms", minimum=0),
    }


def _snapshot(d: dict[str, Any]) -> Snapshot:
    return Snapshot(
        **_head(d, "snapshot"),
        positions=_positions(_get(d, "positions", "snapshot"), "snapshot.positions"),
        orders=_orders(_get(d, "orders", "snapshot"), "snapshot.orders"),
        metrics=metrics_from_wire(_get(d, "metrics", "snapshot"), "snapshot.metrics"),
    )


def _delta(d: dict[str, Any]) -> Delta:
    head = _head(d, "delta")
    ups = _obj(_get(d, "upserts", "delta"), "delta.upserts")
    rms = _obj(_get(d, "removes", "delta"), "delta.removes")
    up_p = _positions(_get(ups, "positions", "delta.upserts"), "delta.upserts.positions")
    up_o = _orders(_get(ups, "orders", "delta.upserts"), "delta.upserts.orders")
    rm_p = _ids(_get(rms, "positions", "delta.removes"), "delta.removes.positions")
    rm_o = _ids(_get(rms, "orders", "delta.removes"), "delta.removes.orders")
    if {p.identifier for p in up_p} & set(rm_p):
        raise _bad("delta: position both upserted and removed")
    if {o.ticket for o in up_o} & set(rm_o):
        raise _bad("delta: order both upserted and removed")
    return Delta(**head, upsert_positions=up_p, upsert_orders=up_o,
                 remove_positions=rm_p, remove_orders=rm_o)


def _status(d: dict[str, Any]) -> Status:
    err = _get(d, "error", "status")
    return Status(
        node=_name(_get(d, "node", "status"), "status.node"),
        role=_choice(_get(d, "role", "status"), ROLES, "status.role"),
        state=_str(_get(d, "state", "status"), "status.state", nonempty=True, max_len=64),
        pid=_int(_get(d, "pid", "status"), "status.pid", minimum=0),
        ts_ms=_int(_get(d, "ts_ms", "status"), "status.ts_ms", minimum=0),
        account=metrics_from_wire(_get(d, "account", "status"), "status.account"),
        error=None if err is None else _str(err, "status.error"),
        info=_obj(_get(d, "info", "status"), "status.info"),
    )


def _event(d: dict[str, Any]) -> Event:
    return Event(
        node=_name(_get(d, "node", "event"), "event.node"),
        ts_ms=_int(_get(d, "ts_ms", "event"), "event.ts_ms", minimum=0),
        event=_str(_get(d, "event", "event"), "event.event", nonempty=True, max_len=128),
        level=_choice(_get(d, "level", "event"), LEVELS, "event.level"),
        data=_obj(_get(d, "data", "event"), "event.data"),
    )


def _control(d: dict[str, Any]) -> Control:
    return Control(
        target=_name(_get(d, "target", "ctl"), "ctl.target", allow_fleet=True),
        command=_choice(_get(d, "command", "ctl"), COMMANDS, "ctl.command"),
        sender=_name(_get(d, "sender", "ctl"), "ctl.sender"),
        ts_ms=_int(_get(d, "ts_ms", "ctl"), "ctl.ts_ms", minimum=0),
        args=_obj(_get(d, "args", "ctl"), "ctl.args"),
    )


_PARSERS = {"snapshot": _snapshot, "delta": _delta, "status": _status, "event": _event, "ctl": _control}


def from_payload(d: Any) -> Message:
    """Validate a parsed JSON payload and build the typed message."""
    d = _obj(d, "payload")
    v = _get(d, "v", "payload")
    if type(v) is not int or v != VERSION:
        raise VersionMismatch(v)
    kind = _get(d, "kind", "payload")
    if not isinstance(kind, str) or kind not in _PARSERS:
        raise _bad(f"unknown kind {kind!r:.40}")
    return _PARSERS[kind](d)


def _reject_constant(name: str) -> Any:
    raise _bad(f"non-finite number {name}")


def _finite_float(text: str) -> float:
    f = float(text)
    if not math.isfinite(f):  # e.g. 1e999 parses to inf
        raise _bad("non-finite number")
    return f


def parse_json(payload: bytes) -> Any:
    """Strict JSON: UTF-8 only, no NaN/Infinity, no overflowing floats."""
    try:
        text = payload.decode("utf-8")
        return json.loads(text, parse_constant=_reject_constant, parse_float=_finite_float)
    except MalformedMessage:
        raise
    except (ValueError, RecursionError) as exc:  # JSONDecodeError, UnicodeDecodeError, int limit
        raise _bad(f"bad JSON: {exc}"[:200]) from None


def _frame_bytes(frame: Any, which: str) -> bytes:
    if isinstance(frame, bytes):
        return frame
    if isinstance(frame, (bytearray, memoryview)):
        return bytes(frame)
    raise _bad(f"{which} frame is {type(frame).__name__}, not bytes")


def decode(frames: Any) -> Message:
    """``[topic, payload]`` frames -> typed message, or :class:`MalformedMessage`.

    The topic must be exactly the one the message's own fields imply, so a
    publisher cannot slip ``pos.A`` data under ``pos.B``.
    """
    try:
        return _decode(frames)
    except MalformedMessage:
        raise
    except RecursionError:
        raise _bad("structure nested too deeply") from None


def _decode(frames: Any) -> Message:
    if not isinstance(frames, (list, tuple)):
        raise _bad(f"frames must be a list, got {type(frames).__name__}")
    if len(frames) != 2:
        raise _bad(f"expected 2 frames, got {len(frames)}")
    topic_b = _frame_bytes(frames[0], "topic")
    payload = _frame_bytes(frames[1], "payload")
    if len(payload) > MAX_MESSAGE_BYTES:
        raise _bad(f"payload of {len(payload)} bytes exceeds {MAX_MESSAGE_BYTES}")
    if len(topic_b) > 128:
        raise _bad("topic too long")
    try:
        topic = topic_b.decode("ascii")
    except UnicodeDecodeError:
        raise _bad("topic is not ASCII") from None
    msg = fast_from_payload(payload)  # msgspec; None: the stdlib validator below decides and says why
    if msg is None:
        msg = from_payload(parse_json(payload))
    if topic != msg.topic:
        raise _bad(f"topic {topic!r} does not match {msg.kind} for {msg.topic!r}")
    return msg


from messaging.fastwire import fast_from_payload  # noqa: E402  (it builds on the tables above)
