"""copyhub settings: one object with defaults, each overridable by ``COPYHUB_<NAME>``.

The seed's constant names are kept (``MONGO_URI``, ``DATABASE_NAME``, ``ZMQ_PUB_PORT``,
``MASTER_POLL_INTERVAL_MS``, ``DEFAULT_SLIPPAGE_TOLERANCE``, ``DEFAULT_MAGIC_NUMBER``)
and are also exported at module level, so ``import config; config.ZMQ_PUB_PORT`` works
as the seed describes. ``python config.py`` prints the effective settings, secrets masked.
"""
from __future__ import annotations

import os
import re
import sys
from dataclasses import dataclass, fields
from typing import Any, Mapping
from urllib.parse import urlsplit, urlunsplit

ENV_PREFIX = "COPYHUB_"
_SECRET_NAMES = ("PASSWORD", "TOKEN", "SECRET")
_URL_CREDENTIALS = re.compile(r"(?P<scheme>[a-z][a-z0-9+.-]*://)(?P<user>[^:/@]+):(?P<password>[^@/]+)@")


class SettingsError(ValueError):
    """An environment variable holds a value copyhub cannot use."""


def _with_database(uri: str, name: str) -> str:
    """Put the database name into a MongoDB URI unless it already names one.

    Options (``?replicaSet=rs0``) stay after the path.
    """
    parts = urlsplit(uri)
    if parts.path.strip("/"):
        return uri
    return urlunsplit((parts.scheme, parts.netloc, "/" + name, parts.query, parts.fragment))


def mask_url(url: str) -> str:
    """Hide the password in ``scheme://user:password@host`` URLs."""
    return _URL_CREDENTIALS.sub(lambda m: f"{m['scheme']}{m['user']}:***@", url)


@dataclass(frozen=True)
class Settings:
    # Store. DATABASE_URL wins; else MONGO_URI + DATABASE_NAME when MONGO_URI is set
    # explicitly; else the embedded SQLite store.
    DATABASE_URL: str = ""
    MONGO_URI: str = "mongodb://localhost:27017"
    DATABASE_NAME: str = "prop_copy_trader"
    SQLITE_PATH: str = "data/copyhub.db"
    # Where a node looks for the KILL_SWITCH file (touch it to stop every new open).
    DATA_DIR: str = "data"
    # Bus: publishers connect to ZMQ_PUB_PORT (proxy XSUB), subscribers to ZMQ_SUB_PORT (XPUB).
    BUS_HOST: str = "127.0.0.1"
    ZMQ_PUB_PORT: int = 5555
    ZMQ_SUB_PORT: int = 5556
    HEARTBEAT_INTERVAL_MS: int = 1000
    STALE_AFTER_MS: int = 3000
    # Polling and copying.
    MASTER_POLL_INTERVAL_MS: int = 20
    SLAVE_RECONCILE_INTERVAL_MS: int = 1000
    CONFIG_RELOAD_INTERVAL_MS: int = 3000
    DEFAULT_SLIPPAGE_TOLERANCE: int = 50
    DEFAULT_MAGIC_NUMBER: int = 234000
    ORDER_MAX_ATTEMPTS: int = 4
    # Account lease (one writer per account): renewed with every heartbeat; the holder
    # stops trading LEASE_MARGIN_MS before the lease would expire in the store.
    LEASE_TTL_MS: int = 10000
    LEASE_MARGIN_MS: int = 2000
    # Simulator.
    SIM_ENDPOINT: str = "tcp://127.0.0.1:5570"
    SIM_COMMENT_LIMIT: int = 31
    # Risk loop.
    RISK_EVAL_INTERVAL_MS: int = 1000
    SNAPSHOT_INTERVAL_MS: int = 10000
    # Monitor node (nodes/monitor.py): the web dashboard, JSON API and /metrics.
    # Any bind other than loopback refuses to start without DASHBOARD_TOKEN (docs/monitor.md).
    DASHBOARD_HOST: str = "127.0.0.1"
    DASHBOARD_PORT: int = 8080
    DASHBOARD_TOKEN: str = ""
    # Logging.
    LOG_DIR: str = "logs"
    LOG_LEVEL: str = "INFO"
    LOG_MAX_BYTES: int = 10_000_000
    LOG_BACKUP_COUNT: int = 5

    @property
    def database_url(self) -> str:
        """The store URL ``open_store`` receives."""
        if self.DATABASE_URL:
            return self.DATABASE_URL
        if self._mongo_explicit:
            return _with_database(self.MONGO_URI, self.DATABASE_NAME)
        return f"sqlite:///{self.SQLITE_PATH}"

    @property
    def bus_pub_endpoint(self) -> str:
        return f"tcp://{self.BUS_HOST}:{self.ZMQ_PUB_PORT}"

    @property
    def bus_sub_endpoint(self) -> str:
        return f"tcp://{self.BUS_HOST}:{self.ZMQ_SUB_PORT}"

    _mongo_explicit: bool = False

    def describe(self) -> dict[str, Any]:
        """Settings for display, with secrets masked."""
        out: dict[str, Any] = {}
        for f in fields(self):
            if f.name.startswith("_"):
                continue
            value = getattr(self, f.name)
            if any(s in f.name for s in _SECRET_NAMES) and value:
                value = "***"
            elif isinstance(value, str) and "://" in value:
                value = mask_url(value)
            out[f.name] = value
        out["database_url (effective)"] = mask_url(self.database_url)
        return out


_VALIDATORS: dict[str, tuple[str, Any]] = {
    "ZMQ_PUB_PORT": ("a TCP port 1-65535", lambda v: 1 <= v <= 65535),
    "ZMQ_SUB_PORT": ("a TCP port 1-65535", lambda v: 1 <= v <= 65535),
    "DASHBOARD_PORT": ("a TCP port 1-65535", lambda v: 1 <= v <= 65535),
    "DASHBOARD_HOST": ("a host name or IP address", lambda v: bool(v) and " " not in v),
    "MASTER_POLL_INTERVAL_MS": ("an integer >= 1 (ms)", lambda v: v >= 1),
    "SLAVE_RECONCILE_INTERVAL_MS": ("an integer >= 10 (ms)", lambda v: v >= 10),
    "CONFIG_RELOAD_INTERVAL_MS": ("an integer >= 100 (ms)", lambda v: v >= 100),
    "HEARTBEAT_INTERVAL_MS": ("an integer >= 50 (ms)", lambda v: v >= 50),
    "STALE_AFTER_MS": ("an integer >= 100 (ms)", lambda v: v >= 100),
    "DEFAULT_SLIPPAGE_TOLERANCE": ("an integer >= 0 (points)", lambda v: v >= 0),
    "DEFAULT_MAGIC_NUMBER": ("an integer 0..4294967295", lambda v: 0 <= v <= 0xFFFFFFFF),
    "ORDER_MAX_ATTEMPTS": ("an integer 1..20", lambda v: 1 <= v <= 20),
    "LEASE_TTL_MS": ("an integer >= 1000 (ms)", lambda v: v >= 1000),
    "LEASE_MARGIN_MS": ("an integer >= 100 (ms), below LEASE_TTL_MS", lambda v: v >= 100),
    "SIM_COMMENT_LIMIT": ("an integer 8..64", lambda v: 8 <= v <= 64),
    "RISK_EVAL_INTERVAL_MS": ("an integer >= 50 (ms)", lambda v: v >= 50),
    "SNAPSHOT_INTERVAL_MS": ("an integer >= 1000 (ms)", lambda v: v >= 1000),
    "LOG_LEVEL": ("one of DEBUG, INFO, WARNING, ERROR", lambda v: v in ("DEBUG", "INFO", "WARNING", "ERROR")),
    "LOG_MAX_BYTES": ("an integer >= 10000", lambda v: v >= 10000),
    "LOG_BACKUP_COUNT": ("an integer >= 0", lambda v: v >= 0),
    "DATABASE_URL": (
        "empty, sqlite:///PATH, mongodb://HOST[:PORT]/DB or mongodb+srv://...",
        lambda v: v == "" or v.startswith(("sqlite:///", "mongodb://", "mongodb+srv://", "mongomock://")),
    ),
    "MONGO_URI": ("a mongodb:// or mongodb+srv:// URI", lambda v: v.startswith(("mongodb://", "mongodb+srv://"))),
    "SIM_ENDPOINT": ("a ZeroMQ endpoint like tcp://127.0.0.1:5570", lambda v: "://" in v),
}


def _parse(name: str, raw: str, kind: type) -> Any:
    if kind is int:
        try:
            return int(raw.strip())
        except ValueError:
            raise SettingsError(f"{ENV_PREFIX}{name}={raw!r}: expected an integer") from None
    return raw.strip() if name != "LOG_LEVEL" else raw.strip().upper()


def load_settings(environ: Mapping[str, str] | None = None) -> Settings:
    """Build settings from defaults and ``COPYHUB_*`` variables; refuse bad values loudly."""
    env = os.environ if environ is None else environ
    values: dict[str, Any] = {}
    for f in fields(Settings):
        if f.name.startswith("_"):
            continue
        key = ENV_PREFIX + f.name
        if key in env:
            values[f.name] = _parse(f.name, env[key], type(f.default))
    merged = {f.name: values.get(f.name, f.default) for f in fields(Settings) if not f.name.startswith("_")}
    for name, (expected, ok) in _VALIDATORS.items():
        if not ok(merged[name]):
            raise SettingsError(f"{ENV_PREFIX}{name}={merged[name]!r}: expected {expected}")
    if merged["ZMQ_PUB_PORT"] == merged["ZMQ_SUB_PORT"]:
        raise SettingsError(f"{ENV_PREFIX}ZMQ_PUB_PORT and {ENV_PREFIX}ZMQ_SUB_PORT must differ")
    if merged["LEASE_MARGIN_MS"] >= merged["LEASE_TTL_MS"]:
        raise SettingsError(f"{ENV_PREFIX}LEASE_MARGIN_MS={merged['LEASE_MARGIN_MS']} must be below "
                            f"{ENV_PREFIX}LEASE_TTL_MS={merged['LEASE_TTL_MS']}")
    return Settings(**values, _mongo_explicit=ENV_PREFIX + "MONGO_URI" in env)


try:
    settings = load_settings()
except SettingsError as exc:  # a bad environment must not hide behind a traceback
    print(f"copyhub: invalid setting: {exc}", file=sys.stderr)
    raise SystemExit(2) from None

# The seed's module-level names.
MONGO_URI = settings.MONGO_URI
DATABASE_NAME = settings.DATABASE_NAME
ZMQ_PUB_PORT = settings.ZMQ_PUB_PORT
ZMQ_SUB_PORT = settings.ZMQ_SUB_PORT
MASTER_POLL_INTERVAL_MS = settings.MASTER_POLL_INTERVAL_MS
DEFAULT_SLIPPAGE_TOLERANCE = settings.DEFAULT_SLIPPAGE_TOLERANCE
DEFAULT_MAGIC_NUMBER = settings.DEFAULT_MAGIC_NUMBER
DATABASE_URL = settings.database_url


if __name__ == "__main__":
    width = max(len(k) for k in settings.describe())
    for key, value in settings.describe().items():
        print(f"{key.ljust(width)}  {value}")
