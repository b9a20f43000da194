"""Account documents -> validated, frozen ``AccountConfig``.

Accepts the seed's documents exactly as written (``name, type, path, enabled, suffix,
symbol_map, slippage_tolerance`` plus Mongo's ``_id``) and the copyhub extensions
documented in docs/copier.md. A bad document raises ``AccountConfigError`` naming the
account, the field, what was expected and what was found, so one bad slave stops loudly
while the rest of the fleet runs on (invariant 5).

Choices:
* Unknown keys are refused (a typo such as ``slipage_tolerance`` must not silently fall back
  to a default): ``unknown field 'slipage_tolerance' (did you mean 'slippage_tolerance'?)``
  and the known names (``UnknownField``; also inside ``terminal``, ``sizing`` and ``risk``);
  keys starting with ``_`` and the bookkeeping keys in ``IGNORED_KEYS`` pass.
* A required field that is absent (or null) reads ``field 'type' is missing; it must be ...``,
  whichever field it is.
* ``type`` is accepted in any case and stored in upper case (``normalised_account``, applied
  by ``cli.py accounts add/set``); every other enum-like field is exact and lower case.
* Integers may arrive as integral floats (the mongo shell stores ``50`` as a double).
* A literal ``password`` anywhere is refused and never echoed: use ``password_env``.
"""
from __future__ import annotations

import difflib
import math
import re
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field, fields
from typing import Any, overload

from copier.filters import follows as _follows
from copier.risk.config import RISK_KEYS, RiskConfigError, resolve_risk_config
from copier.sizing import MODES as SIZING_MODES
from copier.sizing import SizingConfig
from copier.tags import master_hash

MASTER = "MASTER"
SLAVE = "SLAVE"
# The one account-name rule (README "Accounts"): the name becomes a bus topic suffix
# (pos.<name>, ctl.<name>), a log file name and a process name, so 1-64 ASCII letters,
# digits, '_' or '-'; and none of the names the fleet uses for itself. The bus
# (messaging.schema.is_valid_name) and the launcher apply the same rule.
NAME_PATTERN = re.compile(r"^[A-Za-z0-9_-]{1,64}$")
RESERVED_NAMES = frozenset({"all", "launcher", "bus-proxy", "sim-server", "demo-trader", "monitor"})
NAME_RULE = ("1-64 letters (A-Z, a-z), digits, '_' or '-' -- no spaces, dots or accents -- and not one of "
             + ", ".join(sorted(RESERVED_NAMES)))


def is_account_name(name: object) -> bool:
    """True when ``name`` follows the account-name rule (``NAME_RULE``)."""
    return isinstance(name, str) and bool(NAME_PATTERN.match(name)) and name not in RESERVED_NAMES


def is_master_doc(doc: Mapping[str, Any]) -> bool:
    """True for a stored account document of type MASTER, in any case: validation accepts
    ``"master"`` (documents written by hand or before ``normalised_account``), so every
    reader that picks the masters out of the store must too (a slave that missed one would
    never subscribe to it)."""
    typ = doc.get("type")
    return isinstance(typ, str) and typ.upper() == MASTER


SLTP_MODES = ("absolute", "distance")
TERMINAL_KINDS = ("mt5", "mt5linux", "sim")
TERMINAL_KEYS: dict[str, frozenset[str]] = {  # the keys of a ``terminal`` object, per kind
    "mt5": frozenset({"kind", "path", "login", "server", "password_env", "timeout", "portable"}),
    "mt5linux": frozenset({"kind", "host", "port", "path", "login", "server", "password_env", "timeout", "portable"}),
    "sim": frozenset({"kind", "login", "endpoint", "server", "password_env", "path", "timeout", "portable"}),
}
SIZING_KEYS = frozenset({"mode", "lot", "multiplier", "percent", "fallback_lot"})
IGNORED_KEYS = frozenset({"notes", "description", "created_at", "updated_at"})
KNOWN_KEYS = frozenset({
    "name", "type", "path", "enabled", "suffix", "symbol_map", "slippage_tolerance",
    "terminal", "follows", "sizing", "reverse", "symbols_allow", "symbols_deny", "copy_sltp",
    "sltp_mode", "max_lot", "max_open_positions", "copy_existing", "copy_pending", "magic",
    "host", "dry_run", "master_suffix", "master_prefix", "risk",
})
# fields a running slave applies on the fly; anything else needs a node restart
HOT_FIELDS = frozenset({
    "symbol_map", "suffix", "slippage_tolerance", "sizing", "reverse", "symbols_allow",
    "symbols_deny", "copy_sltp", "sltp_mode", "max_lot", "max_open_positions", "risk",
    "dry_run", "follows", "copy_pending", "master_suffix", "master_prefix", "copy_existing",
})


class _Missing:
    def __repr__(self) -> str:
        return "missing"


MISSING: Any = _Missing()
REDACTED = "a literal password (not shown)"


class AccountConfigError(ValueError):
    """A field of an account document is wrong; ``str()`` is the message for the user."""

    def __init__(self, account: str, field: str, expected: str, got: Any = MISSING) -> None:
        self.account, self.field, self.expected, self.got = account, field, expected, got
        super().__init__(str(self))

    @property
    def missing(self) -> bool:
        """True when the field is absent (or null), not wrong."""
        return isinstance(self.got, _Missing)  # not ``is MISSING``: a pickled copy has its own

    def __str__(self) -> str:
        if self.missing:
            return f"account {self.account!r}: field {self.field!r} is missing; it must be {self.expected}"
        got = self.got if isinstance(self.got, str) and self.got == REDACTED else repr(self.got)
        return f"account {self.account!r}: field {self.field!r} must be {self.expected}, got {got}"

    def __reduce__(self):  # picklable despite the custom __init__
        return (AccountConfigError, (self.account, self.field, self.expected, self.got))


class UnknownField(AccountConfigError):
    """A key the document may not hold: ``unknown field 'colour'``, the nearest known name when
    one is close, and the names that are known (``known``, also in the message)."""

    def __init__(self, account: str, field: str, got: Any, known: Iterable[str], *, prefix: str = "",
                 context: str = "") -> None:
        self.known = tuple(sorted(known))
        self.prefix, self.context = prefix, context
        name = field[len(prefix):] if prefix and field.startswith(prefix) else field
        close = difflib.get_close_matches(name, self.known, n=1)
        self.hint = prefix + close[0] if close else None
        super().__init__(account, field, "a known field" + (f" ({', '.join(self.known)})" if self.known else ""), got)

    def __str__(self) -> str:
        hint = f" (did you mean {self.hint!r}?)" if self.hint else ""
        what = f"{self.prefix[:-1]} " if self.prefix else ""
        return (f"account {self.account!r}: unknown field {self.field!r}{self.context}{hint}; "
                f"known {what}fields: {', '.join(self.known)}")

    def __reduce__(self):
        return (_unknown_field, (self.account, self.field, self.got, self.known, self.prefix, self.context))


def _unknown_field(account: str, field: str, got: Any, known: Iterable[str], prefix: str,
                   context: str) -> UnknownField:
    return UnknownField(account, field, got, known, prefix=prefix, context=context)


@dataclass(frozen=True)
class AccountConfig:
    """One validated account. ``terminal`` is a plain dict (what ``terminals/`` consumes)."""

    name: str
    type: str
    enabled: bool = True
    terminal: dict = field(default_factory=dict)
    path: str | None = None
    suffix: str = ""
    symbol_map: dict = field(default_factory=dict)
    slippage_tolerance: int = 50
    follows: tuple[str, ...] | None = None
    sizing: SizingConfig = field(default_factory=SizingConfig)
    reverse: bool = False
    symbols_allow: tuple[str, ...] = ()
    symbols_deny: tuple[str, ...] = ()
    copy_sltp: bool = True
    sltp_mode: str = "absolute"
    max_lot: float | None = None
    max_open_positions: int | None = None
    copy_existing: bool = False
    copy_pending: bool = True
    magic: int = 234000
    host: str | None = None
    dry_run: bool = False
    master_suffix: str = ""
    master_prefix: str = ""
    risk: dict | None = None

    # holds dicts: compare, never hash (mypy wants a callable here; None is how Python says unhashable)
    __hash__ = None  # type: ignore[assignment]

    @property
    def is_master(self) -> bool:
        return self.type == MASTER

    @property
    def is_slave(self) -> bool:
        return self.type == SLAVE

    def follows_master(self, name: str) -> bool:
        return self.is_slave and _follows(self.follows, name)

    def changed_fields(self, other: AccountConfig) -> set[str]:
        return {f.name for f in fields(self) if getattr(self, f.name) != getattr(other, f.name)}

    def hot_reloadable_diff(self, other: AccountConfig) -> bool:
        """True when a running node can switch from self to ``other`` without a restart."""
        return self.changed_fields(other) <= HOT_FIELDS


# ---------------------------------------------------------------- field checkers
class _Checker:
    def __init__(self, doc: Mapping[str, Any], account: str) -> None:
        self.doc, self.account = doc, account

    def fail(self, name: str, expected: str, got: Any = MISSING) -> AccountConfigError:
        return AccountConfigError(self.account, name, expected, got)

    def get(self, key: str, default: Any = MISSING) -> Any:
        value = self.doc.get(key, MISSING)
        return default if value is MISSING or value is None else value

    def boolean(self, key: str, default: bool) -> bool:
        v = self.get(key, default)
        if not isinstance(v, bool):
            raise self.fail(key, "true or false", v)
        return v

    @overload
    def string(self, key: str, default: str = "", *, nonempty: bool = False) -> str: ...

    @overload
    def string(self, key: str, default: None, *, nonempty: bool = False) -> str | None: ...

    def string(self, key: str, default: str | None = "", *, nonempty: bool = False) -> str | None:
        """The string at ``key`` (``default`` when absent; ``nonempty``: absent or blank fails)."""
        v = self.get(key, MISSING if nonempty else default)
        if v is MISSING:
            raise self.fail(key, "a non-empty string")
        if v is None and not nonempty:
            return None
        if not isinstance(v, str) or (nonempty and not v.strip()):
            raise self.fail(key, "a non-empty string" if nonempty else "a string", v)
        return v

    @overload
    def integer(self, key: str, default: int, *, minimum: int = 0, what: str = "a non-negative integer") -> int: ...

    @overload
    def integer(self, key: str, default: None, *, minimum: int = 0, what: str = "a non-negative integer") -> int | None: ...

    def integer(self, key: str, default: int | None, *, minimum: int = 0, what: str = "a non-negative integer") -> int | None:
        """The integer at ``key`` (>= ``minimum``; ``default`` when absent)."""
        v = self.get(key, default)
        if v is None:
            return None
        return _as_int(v, minimum, lambda: self.fail(key, what, v))

    def number(self, key: str, default: float | None, *, what: str = "a positive number") -> float | None:
        v = self.get(key, default)
        if v is None:
            return None
        return _positive(v, lambda: self.fail(key, what, v))

    def string_list(self, key: str) -> tuple[str, ...] | None:
        v = self.get(key, None)
        if v is None:
            return None
        if not isinstance(v, (list, tuple)) or not all(isinstance(s, str) and s.strip() for s in v):
            raise self.fail(key, "a list of non-empty strings", v)
        return tuple(v)


def _as_int(v: Any, minimum: int, fail: Callable[[], AccountConfigError]) -> int:
    if isinstance(v, bool):
        raise fail()
    if isinstance(v, float) and math.isfinite(v) and v.is_integer():
        v = int(v)
    if not isinstance(v, int) or v < minimum:
        raise fail()
    return v


def _positive(v: Any, fail: Callable[[], AccountConfigError]) -> float:
    if isinstance(v, bool) or not isinstance(v, (int, float)) or not math.isfinite(v) or v <= 0:
        raise fail()
    return float(v)


def _find_password(obj: Any, where: str) -> str | None:
    if isinstance(obj, Mapping):
        for k, v in obj.items():
            if isinstance(k, str) and k.lower() == "password":
                return f"{where}.{k}" if where else k
            found = _find_password(v, f"{where}.{k}" if where else str(k))
            if found:
                return found
    return None


def _terminal(c: _Checker, path: str | None) -> dict:
    t = c.get("terminal", None)
    if t is None:
        if path is None:
            raise c.fail("terminal", "a terminal spec {kind: mt5|mt5linux|sim, ...} (or the seed's flat 'path')")
        return {"kind": "mt5", "path": path}
    if not isinstance(t, Mapping):
        raise c.fail("terminal", "an object {kind: mt5|mt5linux|sim, ...}", t)
    kind = t.get("kind", "mt5")
    if kind not in TERMINAL_KINDS:
        raise c.fail("terminal.kind", f"one of {', '.join(TERMINAL_KINDS)}", kind)
    allowed = TERMINAL_KEYS[kind]
    for key in t:
        if key not in allowed:
            owners = [repr(k) for k in TERMINAL_KINDS if key in TERMINAL_KEYS[k]]
            raise UnknownField(c.account, f"terminal.{key}", t[key], allowed, prefix="terminal.",
                               context=f" for a {kind!r} terminal" + (f" ({key} is for {' and '.join(owners)} terminals)"
                                                                      if owners else ""))
    out: dict = {"kind": kind}
    for key in sorted(allowed - {"kind"}):
        value = t.get(key)
        if value is None:
            continue
        if key in ("login", "port", "timeout"):
            value = _as_int(value, 1, lambda: c.fail(f"terminal.{key}", "a positive integer", t.get(key)))
        elif key == "portable":
            if not isinstance(value, bool):
                raise c.fail("terminal.portable", "true or false", value)
        elif not isinstance(value, str) or not value.strip():
            raise c.fail(f"terminal.{key}", "a non-empty string", value)
        out[key] = value
    if kind == "mt5" and "path" not in out:
        if path is None:
            raise c.fail("terminal.path", "the path of terminal64.exe")
        out["path"] = path
    if kind == "mt5linux":
        for key in ("host", "port"):
            if key not in out:
                raise c.fail(f"terminal.{key}", "set for an 'mt5linux' terminal")
    if kind == "sim" and "login" not in out and "path" not in out:
        raise c.fail("terminal.login", "the simulated account's login (a positive integer), or the 'path' of a simulated terminal")
    return out


def _sizing(c: _Checker) -> SizingConfig:
    raw = c.get("sizing", "same")
    spec = {"mode": raw} if isinstance(raw, str) else raw
    if not isinstance(spec, Mapping) or not isinstance(spec.get("mode"), str):
        raise c.fail("sizing", f"a mode string or {{mode: ...}} with mode one of {', '.join(SIZING_MODES)}", raw)
    mode = spec["mode"]
    if mode not in SIZING_MODES:
        raise c.fail("sizing.mode", f"one of {', '.join(SIZING_MODES)}", mode)
    for key in spec:
        if key not in SIZING_KEYS:
            raise UnknownField(c.account, f"sizing.{key}", spec[key], SIZING_KEYS, prefix="sizing.")

    def optional(key: str) -> float | None:
        if spec.get(key) is None:
            return None
        return _positive(spec[key], lambda: c.fail(f"sizing.{key}", "a positive number", spec[key]))

    def required(key: str) -> float:
        found = optional(key)
        if found is None:
            raise c.fail(f"sizing.{key}", f"a positive number (required by mode {mode!r})")
        return found

    if mode == "fixed":
        return SizingConfig(mode, lot=required("lot"))
    if mode == "multiplier":
        return SizingConfig(mode, multiplier=required("multiplier"))
    if mode in ("balance_ratio", "equity_ratio"):
        multiplier = optional("multiplier")
        return SizingConfig(mode, multiplier=1.0 if multiplier is None else multiplier)
    if mode == "risk_percent":
        pct = required("percent")
        if pct > 100:
            raise c.fail("sizing.percent", "a percentage in (0, 100]", spec["percent"])
        return SizingConfig(mode, percent=pct, fallback_lot=optional("fallback_lot"))
    return SizingConfig("same")


def normalised_account(doc: Mapping[str, Any]) -> dict[str, Any]:
    """A copy of ``doc`` with its enum-like fields in their one spelling, as ``cli.py
    accounts add/set`` store it: ``type`` (accepted in any case, ``"slave"``) in upper case.

    The other enum-like fields (``terminal.kind``, ``sizing``/``sizing.mode``, ``sltp_mode``
    and the ``risk`` choices) are accepted only as written in their error messages, so they
    have one spelling already. Anything else is left as it is for ``validate_account``."""
    out = dict(doc)
    typ = out.get("type")
    if isinstance(typ, str) and typ.upper() in (MASTER, SLAVE):
        out["type"] = typ.upper()
    return out


def validate_account(doc: Mapping[str, Any], *, default_slippage: int = 50, default_magic: int = 234000) -> AccountConfig:
    """Validate one account document; raise AccountConfigError on the first bad field.

    ``type`` is accepted in any case (``"slave"`` is ``"SLAVE"``: ``AccountConfig.type`` is
    upper case); the document itself is not changed. ``cli.py accounts add/set`` store the
    upper-case spelling (``normalised_account``), so that code reading stored documents
    (``doc["type"] == "MASTER"``) and ``accounts list`` see one spelling. A field that is
    absent or null reads ``is missing``; an unknown key reads ``unknown field 'colour'`` with
    the nearest known name (``UnknownField``)."""
    if not isinstance(doc, Mapping):
        raise AccountConfigError("<unnamed>", "document", "an object", type(doc).__name__)
    raw_name = doc.get("name")
    account = raw_name if isinstance(raw_name, str) and raw_name.strip() else "<unnamed>"
    c = _Checker(doc, account)
    name = c.string("name", nonempty=True)
    if not is_account_name(name):
        raise c.fail("name", NAME_RULE, name)
    where = _find_password(doc, "")
    if where:
        raise c.fail(where, "absent: never store passwords in the account document; set 'terminal.password_env' to the name of an environment variable", REDACTED)
    for key in doc:
        if not isinstance(key, str) or key.startswith("_") or key in IGNORED_KEYS:
            continue
        if key not in KNOWN_KEYS:
            raise UnknownField(account, key, doc[key], KNOWN_KEYS | IGNORED_KEYS)
    typ = c.get("type")
    if not isinstance(typ, str) or typ.upper() not in (MASTER, SLAVE):
        raise c.fail("type", "'MASTER' or 'SLAVE'", typ)
    typ = typ.upper()
    path = c.string("path", None)
    if path is not None and not path.strip():
        raise c.fail("path", "the path of terminal64.exe (a non-empty string)", path)

    symbol_map = c.get("symbol_map", {})
    if not isinstance(symbol_map, Mapping) or not all(
        isinstance(k, str) and k and isinstance(v, str) and v for k, v in symbol_map.items()
    ):
        raise c.fail("symbol_map", "an object of master symbol -> slave symbol strings", symbol_map)
    sltp_mode = c.get("sltp_mode", "absolute")
    if sltp_mode not in SLTP_MODES:
        raise c.fail("sltp_mode", "'absolute' or 'distance'", sltp_mode)
    risk = c.get("risk", None)
    if risk is not None and not isinstance(risk, Mapping):
        raise c.fail("risk", "an object of risk rules", risk)
    if risk is not None:  # the guardian's own rules (copier/risk/config.py), so add/--check/list refuse what a node would
        for key in risk:
            if key not in RISK_KEYS:
                raise UnknownField(account, f"risk.{key}", risk[key], RISK_KEYS, prefix="risk.")
        try:
            resolve_risk_config(risk, is_master=typ == MASTER)
        except RiskConfigError as exc:
            raise c.fail(f"risk.{exc.field}", exc.expected, exc.got) from None
    follows = c.string_list("follows")
    return AccountConfig(
        name=name,
        type=typ,
        enabled=c.boolean("enabled", True),
        terminal=_terminal(c, path),
        path=path,
        suffix=c.string("suffix", "") or "",
        symbol_map=dict(symbol_map),
        slippage_tolerance=c.integer("slippage_tolerance", default_slippage, what="a non-negative integer (points)"),
        follows=follows,
        sizing=_sizing(c),
        reverse=c.boolean("reverse", False),
        symbols_allow=c.string_list("symbols_allow") or (),
        symbols_deny=c.string_list("symbols_deny") or (),
        copy_sltp=c.boolean("copy_sltp", True),
        sltp_mode=sltp_mode,
        max_lot=c.number("max_lot", None, what="a positive number (lots)"),
        max_open_positions=c.integer("max_open_positions", None, what="a non-negative integer"),
        copy_existing=c.boolean("copy_existing", False),
        copy_pending=c.boolean("copy_pending", True),
        magic=c.integer("magic", default_magic, what="a non-negative integer (the EA magic number)"),
        host=c.string("host", None),
        dry_run=c.boolean("dry_run", False),
        master_suffix=c.string("master_suffix", "") or "",
        master_prefix=c.string("master_prefix", "") or "",
        risk=dict(risk) if risk is not None else None,
    )


def validate_accounts(
    docs: Iterable[Mapping[str, Any]], *, default_slippage: int = 50, default_magic: int = 234000,
    default_sim_endpoint: str = "",
) -> tuple[list[AccountConfig], list[AccountConfigError]]:
    """Validate a fleet. One bad document never hides another; cross-document errors too:
    duplicate names, ``follows`` naming an unknown master, masters whose tag hashes collide."""
    configs: list[AccountConfig] = []
    errors: list[AccountConfigError] = []
    seen: set[str] = set()
    for doc in docs:
        try:
            cfg = validate_account(doc, default_slippage=default_slippage, default_magic=default_magic)
        except AccountConfigError as exc:
            errors.append(exc)
            continue
        if cfg.name in seen:
            errors.append(AccountConfigError(cfg.name, "name", "unique in the fleet (another account has it)", cfg.name))
            continue
        seen.add(cfg.name)
        configs.append(cfg)
    masters = {c.name for c in configs if c.is_master}
    hashes: dict[str, str] = {}
    bad: set[str] = set()
    for cfg in configs:
        if cfg.is_master:
            h = master_hash(cfg.name)
            if h in hashes:
                errors.append(AccountConfigError(
                    cfg.name, "name",
                    f"distinct from master {hashes[h]!r} in its 4-char comment tag hash (both hash to {h!r}); rename one",
                    cfg.name))
                bad.add(cfg.name)
            else:
                hashes[h] = cfg.name
        if cfg.is_slave and cfg.follows is not None:
            unknown = [m for m in cfg.follows if m not in masters]
            if unknown:
                errors.append(AccountConfigError(cfg.name, "follows", f"names of MASTER accounts (known: {sorted(masters)})", unknown))
                bad.add(cfg.name)
    for name, reason in terminal_conflicts(
            [{"name": c.name, "enabled": c.enabled, "host": c.host, "terminal": c.terminal or None, "path": c.path}
             for c in configs if c.name not in bad], default_sim_endpoint=default_sim_endpoint).items():
        errors.append(TerminalConflict(name, reason))
        bad.add(name)
    return [c for c in configs if c.name not in bad], errors


class TerminalConflict(AccountConfigError):
    """Two enabled accounts name one terminal; ``str()`` names both."""

    def __init__(self, account: str, reason: str) -> None:
        self.reason = reason
        super().__init__(account, "terminal", "a terminal no other enabled account uses", MISSING)

    def __str__(self) -> str:
        return self.reason

    def __reduce__(self):
        return (TerminalConflict, (self.account, self.reason))


# ----------------------------------------------------------------------- one terminal, one account
def normalise_terminal_path(path: str) -> str:
    """Windows compares paths without case and with either separator: ``C:/MT5/terminal64.exe``,
    ``c:\\mt5\\\\terminal64.exe`` and ``C:\\MT5\\terminal64.exe`` name one file."""
    p = path.strip().replace("/", "\\")
    while "\\\\" in p:
        p = p.replace("\\\\", "\\")
    return p.rstrip("\\").casefold()


def terminal_identity(doc: Mapping[str, Any], *, default_sim_endpoint: str = "") -> tuple[tuple, str] | None:
    """What one running terminal is for this document, and how to name it to a user.

    A real terminal is its ``terminal64.exe`` path (the seed's ``path`` or ``terminal.path``);
    an mt5linux bridge is its ``host:port`` (one terminal behind each bridge server); a
    simulated account is its login on its simulator endpoint (or its simulated terminal
    path when one is given). None when the document names no terminal.
    """
    raw = doc.get("terminal")
    spec: Mapping[str, Any] = raw if isinstance(raw, Mapping) else {}
    kind = spec.get("kind", "mt5")
    if kind == "mt5linux":
        host, port = str(spec.get("host", "localhost")), _number(spec.get("port", 18812))
        return ("bridge", host.casefold(), port), f"mt5linux bridge {host}:{port}"
    path = spec.get("path") or (doc.get("path") if kind == "mt5" else None)  # the seed's flat path fills in
    if isinstance(path, str) and path.strip():
        return ("path", normalise_terminal_path(path)), path
    if kind == "sim" and spec.get("login") is not None:
        endpoint = spec.get("endpoint") or default_sim_endpoint
        login = _number(spec.get("login"))
        return ("sim", str(endpoint), login), f"simulated login {login} at {endpoint or 'the default simulator'}"
    return None


def _number(value: Any) -> str:
    """``5``, ``5.0`` (the mongo shell's double) and ``"5"`` name one login or port."""
    try:
        f = float(value)
        return str(int(f)) if f.is_integer() else str(value)
    except (TypeError, ValueError):
        return str(value)


def _may_share_host(a: Mapping[str, Any], b: Mapping[str, Any]) -> bool:
    """Two accounts can run on one machine unless both name different hosts."""
    ha, hb = a.get("host"), b.get("host")
    return not ha or not hb or str(ha).casefold() == str(hb).casefold()


def terminal_conflicts(docs: Iterable[Mapping[str, Any]], *, default_sim_endpoint: str = "") -> dict[str, str]:
    """``{account name: reason}`` for every enabled account sharing a terminal with another.

    One terminal is logged into one account at a time: a second ``initialize(login=…)``
    on it switches the first node's terminal to the second account, which then receives
    the first account's copies (invariant 6). Accounts on different named hosts may
    share a path (each VPS has its own ``C:\\MT5\\terminal64.exe``). The reason names
    every account involved.
    """
    found: list[tuple[Mapping[str, Any], tuple, str]] = []
    for doc in docs:
        if not isinstance(doc, Mapping) or doc.get("enabled", True) is False or not isinstance(doc.get("name"), str):
            continue
        ident = terminal_identity(doc, default_sim_endpoint=default_sim_endpoint)
        if ident is not None:
            found.append((doc, *ident))
    out: dict[str, str] = {}
    for doc, key, label in found:
        others = sorted(str(o["name"]) for o, k, _ in found if o is not doc and k == key and _may_share_host(doc, o))
        if others:
            everyone = [repr(n) for n in sorted([str(doc["name"]), *others])]
            names = ", ".join(everyone[:-1]) + " and " + everyone[-1]
            out[str(doc["name"])] = (
                f"accounts {names} use the same terminal ({label}); one terminal is logged into one account at "
                "a time, so one would trade the other's account: give each account its own terminal "
                "(a portable install per account), or disable one")
    return out
