"""copyhub settings: one object, from an optional ``copyhub.toml``, ``COPYHUB_<NAME>``
environment variables, and defaults -- looked up in that order.

Every entry point (``launcher.py``, ``cli.py``, ``setup_db.py``, the nodes, ``python -m
sim``, ``python -m messaging.proxy``) reads the same object. The settings file is
``--config PATH`` or ``COPYHUB_CONFIG``, else ``copyhub.toml`` beside ``launcher.py`` when
it exists; it holds the same names, in either case::

    # copyhub.toml
    database_url = "sqlite:///data/copyhub.db"
    zmq_pub_port = 5555
    log_dir = 'D:\\copyhub\\logs'

A value in the file wins over the same variable in the environment (``python config.py``
says when one is shadowed), and both win over the default. Relative paths (``LOG_DIR``,
``DATA_DIR``, ``SQLITE_PATH``, a relative ``sqlite:///`` URL) are taken from one home
folder: ``COPYHUB_HOME``, else the settings file's folder (``launcher.py``'s folder by
default), never the current folder.

The seed's constant names are kept (``MONGO_URI``, ``DATABASE_NAME``, ``ZMQ_PUB_PORT``,
``MASTER_POLL_INTERVAL_MS``, ``DEFAULT_SLIPPAGE_TOLERANCE``, ``DEFAULT_MAGIC_NUMBER``)
and are also exported at module level, so ``import config; config.ZMQ_PUB_PORT`` works
as the seed describes. ``python config.py`` prints each effective value and where it
came from, secrets masked; a bad value exits 2 naming the setting.
"""
from __future__ import annotations

import difflib
import json
import os
import re
import sys
from collections.abc import Mapping
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

try:
    import tomllib
except ModuleNotFoundError:  # Python 3.10
    import tomli as tomllib  # type: ignore[no-redef]

ROOT = Path(__file__).resolve().parent
ENV_PREFIX = "COPYHUB_"
CONFIG_ENV = "COPYHUB_CONFIG"
HOME_ENV = "COPYHUB_HOME"
CONFIG_FILE_NAME = "copyhub.toml"
DEFAULT_CONFIG_PATH = ROOT / CONFIG_FILE_NAME
# Settings that name a place on disk: relative values are resolved from the home folder.
PATH_SETTINGS = ("SQLITE_PATH", "DATA_DIR", "LOG_DIR")
OPTIONAL_PATH_SETTINGS = ("BUS_KEY_FILE",)  # resolved like PATH_SETTINGS when set; empty stays empty
_WINDOWS_DRIVE = re.compile(r"^[A-Za-z]:[\\/]")  # C:/data/x.db is absolute on every OS we read it on
_SECRET_NAMES = ("PASSWORD", "TOKEN", "SECRET")
_URL_CREDENTIALS = re.compile(r"(?P<scheme>[a-z][a-z0-9+.-]*://)(?P<user>[^:/@]+):(?P<password>[^@/]+)@")


class SettingsError(ValueError):
    """A setting (file, environment variable) holds a value copyhub cannot use."""


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
    # BUS_HOST is the bus host's address (the proxy binds it there). Off loopback the bus
    # needs CURVE (docs/bus.md): BUS_KEY_FILE is this host's .key_secret file (cli.py keys
    # create), BUS_SERVER_KEY the bus host's public key. On loopback CURVE is on only when
    # BUS_KEY_FILE is set.
    BUS_HOST: str = "127.0.0.1"
    BUS_KEY_FILE: str = ""
    BUS_SERVER_KEY: str = ""
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
    # What a slave believes of a master's bus messages (copier/plausibility.py, docs/bus.md):
    # a position or order above PLAUSIBLE_MAX_LOTS lots, a price further than
    # PLAUSIBLE_PRICE_DEVIATION_PCT % from the slave's own market, or a message stamped more
    # than PLAUSIBLE_MAX_FUTURE_MS ahead of its clock is refused as a gap, never traded.
    PLAUSIBLE_MAX_LOTS: int = 1000
    PLAUSIBLE_PRICE_DEVIATION_PCT: int = 5
    PLAUSIBLE_MAX_FUTURE_MS: int = 60000
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
    # 1: log lines also go to stderr (a console). The launcher starts its nodes with 0: each
    # writes its rotated LOG_DIR/<node>.log, and <node>.out keeps what the logger cannot catch.
    LOG_CONSOLE: int = 1

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
        return f"tcp://{self._bus_host_in_url}:{self.ZMQ_PUB_PORT}"

    @property
    def bus_sub_endpoint(self) -> str:
        return f"tcp://{self._bus_host_in_url}:{self.ZMQ_SUB_PORT}"

    @property
    def _bus_host_in_url(self) -> str:
        host = self.BUS_HOST
        return f"[{host}]" if ":" in host and not host.startswith("[") else host

    _mongo_explicit: bool = False
    # Where each value came from: {NAME: "default" | "env COPYHUB_NAME" | "file PATH"}.
    _sources: Mapping[str, str] = field(default_factory=dict, compare=False, repr=False)
    _home: str = ""  # the folder relative paths were resolved from
    _home_source: str = ""
    _config_file: str = ""  # the settings file read ("" = none)
    _shadowed: Mapping[str, str] = field(default_factory=dict, compare=False, repr=False)  # env values the file overrode

    @property
    def home(self) -> Path:
        """The folder relative paths are resolved from (absolute)."""
        return Path(self._home) if self._home else ROOT

    @property
    def config_file(self) -> Path | None:
        """The settings file that was read, or None."""
        return Path(self._config_file) if self._config_file else None

    def source(self, name: str) -> str:
        """Where setting ``name`` came from: ``default``, ``env COPYHUB_NAME`` or ``file PATH``."""
        return self._sources.get(name, "default")

    def explicit(self, name: str) -> bool:
        """True when ``name`` was set in the settings file or the environment."""
        return self.source(name) != "default"

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

    def describe_sources(self) -> list[tuple[str, Any, str]]:
        """``(name, shown value, where it came from)`` for every setting, secrets masked."""
        rows = []
        for name, value in self.describe().items():
            if name == "database_url (effective)":
                rows.append((name, value, "from DATABASE_URL, or MONGO_URI + DATABASE_NAME, or SQLITE_PATH"))
                continue
            where = self.source(name)
            if name in PATH_SETTINGS and where == "default":
                where = "default, in home"
            if name in self._shadowed:
                where += f" (overrides {self._shadowed[name]} in the environment)"
            rows.append((name, value, where))
        rows.append(("home", str(self.home), self._home_source))
        rows.append(("settings file", self._config_file or "none", self._config_file_note()))
        return rows

    def _config_file_note(self) -> str:
        return "read" if self._config_file else f"none at {DEFAULT_CONFIG_PATH} (optional)"


_VALIDATORS: dict[str, tuple[str, Any]] = {
    "ZMQ_PUB_PORT": ("a TCP port 1-65535", lambda v: 1 <= v <= 65535),
    "ZMQ_SUB_PORT": ("a TCP port 1-65535", lambda v: 1 <= v <= 65535),
    "DASHBOARD_PORT": ("a TCP port 1-65535", lambda v: 1 <= v <= 65535),
    "DASHBOARD_HOST": ("a host name or IP address", lambda v: bool(v) and " " not in v),
    "BUS_HOST": ("a host name or IP address (no scheme, no port)",
                 lambda v: bool(v) and not any(c in v for c in " /") and (v.count(":") != 1)),
    "BUS_SERVER_KEY": ("empty or the bus host's CURVE public key (40 Z85 characters, from cli.py keys show)",
                       lambda v: v == "" or _is_curve_key(v)),
    "MASTER_POLL_INTERVAL_MS": ("an integer >= 1 (ms)", lambda v: v >= 1),
    "SLAVE_RECONCILE_INTERVAL_MS": ("an integer >= 10 (ms)", lambda v: v >= 10),
    "CONFIG_RELOAD_INTERVAL_MS": ("an integer >= 100 (ms)", lambda v: v >= 100),
    "HEARTBEAT_INTERVAL_MS": ("an integer >= 50 (ms)", lambda v: v >= 50),
    "STALE_AFTER_MS": ("an integer >= 100 (ms)", lambda v: v >= 100),
    "DEFAULT_SLIPPAGE_TOLERANCE": ("an integer >= 0 (points)", lambda v: v >= 0),
    "DEFAULT_MAGIC_NUMBER": ("an integer 0..4294967295", lambda v: 0 <= v <= 0xFFFFFFFF),
    "ORDER_MAX_ATTEMPTS": ("an integer 1..20", lambda v: 1 <= v <= 20),
    "PLAUSIBLE_MAX_LOTS": ("an integer >= 1 (lots)", lambda v: v >= 1),
    "PLAUSIBLE_PRICE_DEVIATION_PCT": ("an integer 1..100 (% of the market price)", lambda v: 1 <= v <= 100),
    "PLAUSIBLE_MAX_FUTURE_MS": ("an integer >= 1000 (ms)", lambda v: v >= 1000),
    "LEASE_TTL_MS": ("an integer >= 1000 (ms)", lambda v: v >= 1000),
    "LEASE_MARGIN_MS": ("an integer >= 100 (ms), below LEASE_TTL_MS", lambda v: v >= 100),
    "SIM_COMMENT_LIMIT": ("an integer 8..64", lambda v: 8 <= v <= 64),
    "RISK_EVAL_INTERVAL_MS": ("an integer >= 50 (ms)", lambda v: v >= 50),
    "SNAPSHOT_INTERVAL_MS": ("an integer >= 1000 (ms)", lambda v: v >= 1000),
    "LOG_LEVEL": ("one of DEBUG, INFO, WARNING, ERROR", lambda v: v in ("DEBUG", "INFO", "WARNING", "ERROR")),
    "LOG_MAX_BYTES": ("an integer >= 10000", lambda v: v >= 10000),
    "LOG_BACKUP_COUNT": ("an integer >= 0", lambda v: v >= 0),
    "LOG_CONSOLE": ("0 or 1", lambda v: v in (0, 1)),
    "DATABASE_URL": (
        "empty, sqlite:///PATH, mongodb://HOST[:PORT]/DB or mongodb+srv://...",
        lambda v: v == "" or v.startswith(("sqlite:///", "mongodb://", "mongodb+srv://", "mongomock://")),
    ),
    "MONGO_URI": ("a mongodb:// or mongodb+srv:// URI", lambda v: v.startswith(("mongodb://", "mongodb+srv://"))),
    "SIM_ENDPOINT": ("a ZeroMQ endpoint like tcp://127.0.0.1:5570", lambda v: "://" in v),
}


def _is_curve_key(value: str) -> bool:
    """40 characters of the Z85 alphabet: a ZeroMQ CURVE key as text."""
    alphabet = "0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ.-:+=^!/*?&<>()[]{}@%$#"
    return len(value) == 40 and all(c in alphabet for c in value)


def _label(name: str, source: str) -> str:
    """How to name a setting to the user: the variable, or the key and its file."""
    if source.startswith("file "):
        return f"{name.lower()} in {source[5:]}"
    return ENV_PREFIX + name


def _parse(name: str, raw: Any, kind: type, source: str) -> Any:
    where = _label(name, source)
    if kind is int:
        if isinstance(raw, bool):
            raise SettingsError(f"{where}={raw!r}: expected an integer")
        if isinstance(raw, int):
            return raw
        try:
            return int(str(raw).strip())
        except ValueError:
            raise SettingsError(f"{where}={raw!r}: expected an integer") from None
    if not isinstance(raw, str):
        raise SettingsError(f"{where}={raw!r}: expected a string")
    return raw.strip() if name != "LOG_LEVEL" else raw.strip().upper()


# ``--config PATH`` as given on this process's command line, and the absolute path it was
# put into COPYHUB_CONFIG as (``_adopt_command_line_config``): an error about that file then
# names ``--config``, not a variable the user never set.
_command_line_config: tuple[str, str] | None = None


def find_config_file(environ: Mapping[str, str], explicit: str | Path | None = None) -> tuple[Path | None, str]:
    """The settings file to read and how it was chosen: ``explicit`` (``--config``), else
    ``COPYHUB_CONFIG``, else ``copyhub.toml`` beside ``launcher.py`` when it exists.

    A file named explicitly (argument or variable) must exist: SettingsError otherwise,
    naming where the path came from: ``--config`` (also when this process's ``--config``
    reached here through COPYHUB_CONFIG, see ``_adopt_command_line_config``) or the
    environment variable.
    """
    if explicit:
        return _named_file(str(explicit), "--config"), "--config"
    given = environ.get(CONFIG_ENV) or None
    if given:
        if _command_line_config is not None and given == _command_line_config[1]:
            return _named_file(_command_line_config[0], "--config"), "--config"
        return _named_file(given, CONFIG_ENV), CONFIG_ENV
    if DEFAULT_CONFIG_PATH.is_file():
        return DEFAULT_CONFIG_PATH, "beside launcher.py"
    return None, ""


def _named_file(given: str, how: str) -> Path:
    """The settings file ``given`` by ``how`` (``--config`` or COPYHUB_CONFIG); SettingsError
    when there is none, saying where the path came from and how to fix it."""
    path = Path(given).expanduser().resolve()
    if path.is_file():
        return path
    where = "" if str(path) == given else f" ({path})"
    if how == CONFIG_ENV:
        raise SettingsError(f"the environment variable {CONFIG_ENV}={given!r} names no settings file{where}: "
                            f"point it at the file, or unset it")
    raise SettingsError(f"--config {given!r}: no settings file there{where}")


def read_config_file(path: Path) -> dict[str, Any]:
    """The file's settings by NAME (keys in any case); SettingsError naming the file and key."""
    from utils.text import SAVE_AS_UTF8, decode_text

    try:
        data = tomllib.loads(decode_text(path.read_bytes()))
    except OSError as exc:
        raise SettingsError(f"cannot read the settings file {path}: {exc.strerror or exc}") from None
    except UnicodeDecodeError as exc:
        raise SettingsError(f"settings file {path}: not UTF-8 or UTF-16 text (byte {exc.start}): {SAVE_AS_UTF8}") from None
    except tomllib.TOMLDecodeError as exc:
        raise SettingsError(f"settings file {path}: not valid TOML: {exc}") from None
    known = {f.name for f in fields(Settings) if not f.name.startswith("_")}
    out: dict[str, Any] = {}
    for key, value in data.items():
        name = key.upper()
        if name.startswith(ENV_PREFIX):
            name = name[len(ENV_PREFIX):]
        if name not in known:
            # not "python config.py lists them": config.py reads this same file and stops here too
            names = sorted(k.lower() for k in known)
            hint = difflib.get_close_matches(name.lower(), names, n=1)
            raise SettingsError(f"{key} in {path}: not a copyhub setting" + (f" (did you mean {hint[0]!r}?)" if hint else "")
                                + f"; rename or remove it. The settings a file may hold: {', '.join(names)}")
        out[name] = value
    return out


def _resolve_path(value: str, home: Path) -> str:
    p = Path(value).expanduser()
    return str(p if p.is_absolute() else (home / p).resolve())


def _resolve_sqlite_url(url: str, home: Path) -> str:
    """``sqlite:///data/x.db`` -> ``sqlite:///<home>/data/x.db``; absolute and ``:memory:`` stay."""
    if not url.startswith("sqlite:///"):
        return url
    path, sep, query = url[len("sqlite:///"):].partition("?")
    if not path or path == ":memory:" or Path(path).is_absolute() or path.startswith("/") or _WINDOWS_DRIVE.match(path):
        return url
    return "sqlite:///" + (home / path).resolve().as_posix() + (sep + query if sep else "")


def load_settings(environ: Mapping[str, str] | None = None, *, config_file: str | Path | None = None) -> Settings:
    """Build settings from the settings file, then ``COPYHUB_*`` variables, then defaults;
    refuse bad values loudly (SettingsError naming the setting and where it was set)."""
    env = os.environ if environ is None else environ
    path, how = find_config_file(env, config_file)
    from_file = read_config_file(path) if path is not None else {}
    values: dict[str, Any] = {}
    sources: dict[str, str] = {}
    shadowed: dict[str, str] = {}
    for f in fields(Settings):
        if f.name.startswith("_"):
            continue
        key = ENV_PREFIX + f.name
        if f.name in from_file:
            sources[f.name] = f"file {path}"
            values[f.name] = _parse(f.name, from_file[f.name], type(f.default), sources[f.name])
            if key in env:
                shadowed[f.name] = key
        elif key in env:
            sources[f.name] = f"env {key}"
            values[f.name] = _parse(f.name, env[key], type(f.default), sources[f.name])
    merged = {f.name: values.get(f.name, f.default) for f in fields(Settings) if not f.name.startswith("_")}

    def bad(name: str, expected: str) -> SettingsError:
        return SettingsError(f"{_label(name, sources.get(name, 'env'))}={merged[name]!r}: expected {expected}")

    for name, (expected, ok) in _VALIDATORS.items():
        if not ok(merged[name]):
            raise bad(name, expected)
    if merged["ZMQ_PUB_PORT"] == merged["ZMQ_SUB_PORT"]:
        raise SettingsError(f"{_label('ZMQ_PUB_PORT', sources.get('ZMQ_PUB_PORT', 'env'))} and "
                            f"{_label('ZMQ_SUB_PORT', sources.get('ZMQ_SUB_PORT', 'env'))} must differ")
    if merged["LEASE_MARGIN_MS"] >= merged["LEASE_TTL_MS"]:
        raise SettingsError(f"{_label('LEASE_MARGIN_MS', sources.get('LEASE_MARGIN_MS', 'env'))}={merged['LEASE_MARGIN_MS']} "
                            f"must be below {_label('LEASE_TTL_MS', sources.get('LEASE_TTL_MS', 'env'))}={merged['LEASE_TTL_MS']}")
    if env.get(HOME_ENV):
        home, home_source = Path(env[HOME_ENV]).expanduser().resolve(), f"env {HOME_ENV}"
    elif path is not None:
        home, home_source = path.parent, "the settings file's folder"
    else:
        home, home_source = ROOT, "launcher.py's folder (no settings file, no COPYHUB_HOME)"
    for name in PATH_SETTINGS:
        merged[name] = _resolve_path(merged[name], home)
    for name in OPTIONAL_PATH_SETTINGS:
        merged[name] = _resolve_path(merged[name], home) if merged[name] else ""
    merged["DATABASE_URL"] = _resolve_sqlite_url(merged["DATABASE_URL"], home)
    mongo_explicit = "MONGO_URI" in sources
    return Settings(**merged, _mongo_explicit=mongo_explicit, _sources=sources, _home=str(home),
                    _home_source=home_source, _config_file=str(path) if path else "", _shadowed=shadowed)


def settings_for(config_file: str | Path | None) -> Settings:
    """The process settings, or those of another settings file (``--config`` given to an
    entry point's ``main(argv)`` after ``config`` was imported). Exits 2 on a bad value."""
    if not config_file:
        return settings
    if settings.config_file is not None and Path(config_file).expanduser().resolve() == settings.config_file:
        return settings
    try:
        return load_settings(config_file=config_file)
    except SettingsError as exc:
        print(f"copyhub: invalid setting: {exc}", file=sys.stderr)
        raise SystemExit(2) from None


def _adopt_command_line_config() -> list[str]:
    """``--config PATH`` on the command line of a copyhub entry point (a script in this
    folder: launcher.py, cli.py, setup_db.py, config.py, nodes/*.py, python -m sim, python
    -m messaging.proxy) names the settings file: it goes into COPYHUB_CONFIG before the
    settings load, so every process the launcher starts reads the same file. Returns the
    arguments without it."""
    argv = sys.argv[1:] if len(sys.argv) > 1 else []
    try:
        script = Path(sys.argv[0]).resolve() if sys.argv and sys.argv[0] not in ("", "-c", "-m") else None
    except OSError:
        script = None
    if script is None or ROOT not in script.parents or (ROOT / "tests") in script.parents:
        return argv
    if str(ROOT) not in sys.path:
        sys.path.insert(0, str(ROOT))
    from utils.configarg import adopt_config_argument, take_config_argument

    global _command_line_config
    found = take_config_argument(argv)[1]
    if found:
        _command_line_config = (found, str(Path(found).expanduser().resolve()))
    return adopt_config_argument(argv)


_ARGV = _adopt_command_line_config()

try:
    settings = load_settings()
except SettingsError as exc:  # a bad setting must not hide behind a traceback
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


# COPYHUB_* variables of other parts (alert channels, the simulator and its stand-in, tests)
OTHER_ENV_PREFIXES = ("COPYHUB_TEST_", "COPYHUB_SIM_", "COPYHUB_STANDIN_", "COPYHUB_TELEGRAM_", "COPYHUB_ALERT_",
                      "COPYHUB_UPDATE_SCREENSHOT")


def misspelled_environment(environ: Mapping[str, str]) -> list[tuple[str, str]]:
    """``COPYHUB_*`` variables that are not settings but look like one (a typo such as
    ``COPYHUB_LOG_LEVLE``): ``[(variable, the setting's variable it resembles)]``. Other
    ``COPYHUB_*`` variables (alert channels, the simulator's, tests') are left alone."""
    names = [ENV_PREFIX + f.name for f in fields(Settings) if not f.name.startswith("_")]
    out = []
    for var in sorted(environ):
        if not var.startswith(ENV_PREFIX) or var in names or var in (CONFIG_ENV, HOME_ENV):
            continue
        if var.startswith(OTHER_ENV_PREFIXES):
            continue
        close = difflib.get_close_matches(var, names, n=1, cutoff=0.85)
        if close:
            out.append((var, close[0]))
    return out


def main(argv: list[str]) -> int:
    """``python config.py [--config PATH] [--json]``: every setting, its value and where it came from."""
    from utils.console import safe_console

    safe_console()
    if any(a in ("-h", "--help") for a in argv):
        print("usage: python config.py [--config PATH] [--json]\n\n"
              "Print every copyhub setting, its effective value (secrets masked) and where it came from:\n"
              "the settings file (--config, COPYHUB_CONFIG, or copyhub.toml beside launcher.py),\n"
              "an environment variable COPYHUB_<NAME>, or the default.")
        return 0
    unknown = [a for a in argv if a != "--json"]
    if unknown:
        print(f"config.py: error: unrecognized arguments: {' '.join(unknown)}", file=sys.stderr)
        return 2
    rows = settings.describe_sources()
    if "--json" in argv:
        print(json.dumps({name: {"value": value, "source": where} for name, value, where in rows}, default=str))
        return 0
    width = max(len(name) for name, _, _ in rows)
    vwidth = min(48, max(len(str(value)) for _, value, _ in rows))
    for name, value, where in rows:
        print(f"{name.ljust(width)}  {str(value).ljust(vwidth)}  {where}")
    for var, meant in misspelled_environment(os.environ):
        print(f"warning: {var} is set but is not a copyhub setting (did you mean {meant}?): ignored", file=sys.stderr)
    return 0


if __name__ == "__main__":
    raise SystemExit(main(_ARGV))
