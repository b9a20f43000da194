"""Bus security: ZeroMQ CURVE on every bus connection, ZAP on the proxy.

With CURVE each connection to the proxy is encrypted and the proxy knows the public key
of every publisher and subscriber; its ZAP handler (``ZapHandler``) lets in only keys on
the allow-list kept in the store (``bus_keys``: ``cli.py keys allow|revoke|list``). A
client without CURVE fails the handshake (mechanism mismatch); a client with an unknown
key is refused by ZAP. Both are logged by the proxy (and written to the audit trail once
per key and address), and neither ever gets a message in or out.

Keys: one key pair per host, made by ``cli.py keys create`` (``HOST.key_secret`` readable
by its owner only, ``HOST.key`` the public half to share). The files use the ZeroMQ
certificate format (``zmq.auth.load_certificate`` reads them). Secret keys never go to a
log, the store or the bus; ``KeyPair``'s repr hides its secret half.

Settings (config.py): ``BUS_HOST`` where the proxy is, ``BUS_KEY_FILE`` this host's
``.key_secret`` file, ``BUS_SERVER_KEY`` the proxy's public key (the bus host's). The
rule: CURVE is on whenever ``BUS_KEY_FILE`` is set; on loopback it is optional (off by
default), on any other address it is required -- a client refuses to connect and the
proxy refuses to start without keys (``BusSecurityError``). See docs/bus.md.
"""
from __future__ import annotations

import datetime
import ipaddress
import logging
import os
import stat
import subprocess
import threading
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import zmq
import zmq.auth
from zmq.utils import z85

KEY_CHARS = 40  # a Z85-encoded 32-byte CURVE key
ZAP_ENDPOINT = "inproc://zeromq.zap.01"  # fixed by the ZAP RFC (27/ZAP)
DOMAIN_PUBLISHERS = "copyhub-publishers"  # the proxy's XSUB side
DOMAIN_SUBSCRIBERS = "copyhub-subscribers"  # the proxy's XPUB side
ALLOW_REFRESH_S = 2.0  # how often the proxy re-reads the allow-list from the store
REFUSAL_EVENT_EVERY_S = 3600.0  # one audit event per refused key+address per hour
LOG_WINDOW_S = 60.0  # log lines per key+address (or reason+address) are limited per window:
LOG_PER_WINDOW = 20  # a client reconnecting every 2 s, or a connection flood, cannot flood the log
_Z85_ALPHABET = frozenset("0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ.-:+=^!/*?&<>()[]{}@%$#")
_LOOPBACK_NAMES = frozenset({"localhost", "ip6-localhost", "ip6-loopback"})

log = logging.getLogger("messaging.security")


class BusSecurityError(ValueError):
    """Bus keys are missing, unreadable, malformed or not private enough."""


# ---------------------------------------------------------------------------- keys
def is_curve_key(text: str) -> bool:
    """True when ``text`` is exactly a Z85 CURVE key (40 characters of the Z85 alphabet,
    which has "-": one key in 85 begins with it)."""
    return len(text) == KEY_CHARS and set(text) <= _Z85_ALPHABET


def check_public_key(text: Any, what: str = "public key") -> str:
    """``text`` stripped, if it is a Z85 CURVE key (40 characters of the Z85 alphabet);
    BusSecurityError naming ``what`` otherwise."""
    key = text.strip() if isinstance(text, str) else text
    if not isinstance(key, str) or not is_curve_key(key):
        shown = key if isinstance(key, str) and len(key) <= 60 else type(key).__name__
        raise BusSecurityError(f"{what} {shown!r} is not a CURVE key: expected {KEY_CHARS} Z85 characters "
                               "(what 'python cli.py keys create' prints)")
    return key


@dataclass(frozen=True)
class KeyPair:
    """One CURVE key pair, both halves Z85 text (40 characters). ``repr`` hides the secret."""

    public: str
    secret: str

    def __repr__(self) -> str:
        return f"KeyPair(public={self.public!r}, secret=***)"

    __str__ = __repr__


def new_key_pair() -> KeyPair:
    pub, sec = zmq.curve_keypair()
    return KeyPair(pub.decode("ascii"), sec.decode("ascii"))


def key_paths(key_dir: str | Path, name: str) -> tuple[Path, Path]:
    """``(NAME.key_secret, NAME.key)`` in ``key_dir``; BusSecurityError for a name that
    is not a plain file name."""
    if not name or any(c in name for c in '/\\:*?"<>|') or name in (".", ".."):
        raise BusSecurityError(f"key name {name!r}: use a plain name such as the host's name (VPS-1)")
    folder = Path(key_dir).expanduser()
    return folder / f"{name}.key_secret", folder / f"{name}.key"


def _certificate(keys: KeyPair, *, secret: bool) -> str:
    banner = ("#   ZeroMQ CURVE **Secret** Certificate (copyhub bus)\n"
              "#   DO NOT give this file to anyone; it stays readable by its owner only.\n" if secret else
              "#   ZeroMQ CURVE Public Certificate (copyhub bus): safe to share.\n")
    lines = [f"#   ****  Generated on {datetime.datetime.now():%Y-%m-%d %H:%M:%S} by copyhub  ****\n", banner, "\n",
             "metadata\n", "curve\n", f'    public-key = "{keys.public}"\n']
    if secret:
        lines.append(f'    secret-key = "{keys.secret}"\n')
    return "".join(lines)


def restrict_to_owner(path: str | Path) -> str:
    """Make ``path`` readable and writable by its owner only; returns what was done.

    POSIX: mode 0600. Windows: ``icacls PATH /inheritance:r /grant:r USER:F`` -- the
    inherited entries (Users, Administrators, SYSTEM) are removed and only the current
    user keeps access. BusSecurityError when that fails."""
    p = Path(path)
    if os.name != "nt":
        os.chmod(p, stat.S_IRUSR | stat.S_IWUSR)
        return "mode 0600 (owner read/write only)"
    user = os.environ.get("USERNAME") or ""
    domain = os.environ.get("USERDOMAIN") or ""
    who = f"{domain}\\{user}" if domain and user else user
    if not who:
        raise BusSecurityError(f"cannot restrict {p}: USERNAME is not set; restrict it by hand "
                               "(Properties > Security: only your account)")
    cmd = ["icacls", str(p), "/inheritance:r", "/grant:r", f"{who}:F"]
    try:
        done = subprocess.run(cmd, capture_output=True, text=True, timeout=30)
    except (OSError, subprocess.SubprocessError) as exc:
        raise BusSecurityError(f"cannot restrict {p} with icacls: {exc}") from None
    if done.returncode != 0:
        raise BusSecurityError(f"icacls could not restrict {p}: {(done.stdout + done.stderr).strip()}")
    return f"ACL: only {who} (icacls /inheritance:r /grant:r {who}:F)"


def owner_only_problem(path: str | Path) -> str | None:
    """Why ``path`` is readable by others (POSIX: group or other permission bits set), or
    None. On Windows None: the ACL is set by ``restrict_to_owner`` and not re-checked
    here (checking ACLs needs the Windows security API); keep key files in your profile."""
    if os.name == "nt":
        return None
    mode = Path(path).stat().st_mode
    if mode & (stat.S_IRWXG | stat.S_IRWXO):
        return f"{path} is readable by other users (mode {stat.S_IMODE(mode):04o}); run: chmod 600 {path}"
    return None


def create_key_files(key_dir: str | Path, name: str, *, overwrite: bool = False) -> tuple[KeyPair, Path, Path, str]:
    """Make a key pair and write ``NAME.key_secret`` (owner-only, created that way: never
    readable by others, not even briefly on POSIX) and ``NAME.key`` (public) into
    ``key_dir`` (created if missing). Returns (keys, secret path, public path, how the
    secret file was restricted). BusSecurityError if the secret file exists and not
    ``overwrite`` (a host's key is replaced on purpose only: its public key must be
    re-allowed)."""
    secret_path, public_path = key_paths(key_dir, name)
    if secret_path.exists() and not overwrite:
        raise BusSecurityError(f"{secret_path} exists; keep it, or pass --force to replace it "
                               "(then allow the new public key and revoke the old one)")
    secret_path.parent.mkdir(parents=True, exist_ok=True)
    keys = new_key_pair()
    if secret_path.exists():
        secret_path.unlink()
    flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_BINARY", 0)
    fd = os.open(secret_path, flags, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8", newline="\n") as f:
        f.write(_certificate(keys, secret=True))
    how = restrict_to_owner(secret_path)
    public_path.write_text(_certificate(keys, secret=False), encoding="utf-8", newline="\n")
    return keys, secret_path, public_path, how


def load_key_file(path: str | Path, *, check_private: bool = True) -> KeyPair:
    """The key pair in a ``.key_secret`` file. BusSecurityError (naming the file, never
    the secret) when it is missing, holds no secret key, holds a secret that does not
    match its public key, or (``check_private``, POSIX) is readable by other users."""
    p = Path(path).expanduser()
    if not p.is_file():
        raise BusSecurityError(f"bus key file {p} does not exist (python cli.py keys create makes one)")
    if check_private:
        problem = owner_only_problem(p)
        if problem:
            raise BusSecurityError(f"bus key file refused: {problem}")
    try:
        pub, sec = zmq.auth.load_certificate(str(p))
    except (OSError, ValueError) as exc:
        raise BusSecurityError(f"bus key file {p} is not a CURVE certificate: {exc}") from None
    if not sec:
        raise BusSecurityError(f"bus key file {p} holds no secret key: give the .key_secret file, not the .key")
    try:
        public = check_public_key(pub.decode("ascii"), f"public key in {p}")
        secret = sec.decode("ascii")
        derived = zmq.curve_public(sec).decode("ascii")
    except (UnicodeDecodeError, zmq.ZMQError, ValueError):
        raise BusSecurityError(f"bus key file {p}: the secret key is malformed") from None
    if derived != public:
        raise BusSecurityError(f"bus key file {p}: the secret key does not belong to its public key")
    return KeyPair(public, secret)


# ---------------------------------------------------------------------------- where CURVE is needed
def endpoint_host(endpoint: str) -> str | None:
    """The host part of ``tcp://HOST:PORT`` (brackets stripped); None for other transports."""
    if not endpoint.startswith("tcp://"):
        return None
    host = endpoint[len("tcp://"):].rpartition(":")[0]
    if ";" in host:  # tcp://source;dest form: the destination counts
        host = host.rpartition(";")[2]
    return host.strip("[]")


def is_loopback_endpoint(endpoint: str) -> bool:
    """True for endpoints that never leave this machine: ``tcp://`` to a loopback address
    or ``localhost``, ``inproc://`` and ``ipc://``. ``tcp://*:PORT`` and ``tcp://0.0.0.0``
    listen on every interface: not loopback."""
    host = endpoint_host(endpoint)
    if host is None:
        return endpoint.startswith(("inproc://", "ipc://"))
    if host.lower() in _LOOPBACK_NAMES:
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


# ---------------------------------------------------------------------------- socket roles
@dataclass(frozen=True)
class ClientCurve:
    """What a connecting bus socket (PUB, SUB) needs: its key pair and the proxy's public key."""

    keys: KeyPair
    server_public: str

    def apply(self, sock: zmq.Socket) -> None:
        """Set the CURVE options; call before ``connect``."""
        sock.setsockopt(zmq.CURVE_SERVERKEY, self.server_public.encode("ascii"))
        sock.setsockopt(zmq.CURVE_PUBLICKEY, self.keys.public.encode("ascii"))
        sock.setsockopt(zmq.CURVE_SECRETKEY, self.keys.secret.encode("ascii"))


@dataclass(frozen=True)
class ServerCurve:
    """What the proxy's bound sockets need: the bus host's key pair."""

    keys: KeyPair

    def apply(self, sock: zmq.Socket, domain: str) -> None:
        """Make ``sock`` a CURVE server whose clients ZAP authenticates under ``domain``;
        call before ``bind``."""
        sock.setsockopt(zmq.CURVE_SERVER, 1)
        sock.setsockopt(zmq.CURVE_SECRETKEY, self.keys.secret.encode("ascii"))
        sock.setsockopt(zmq.CURVE_PUBLICKEY, self.keys.public.encode("ascii"))
        sock.setsockopt(zmq.ZAP_DOMAIN, domain.encode("ascii"))
        if hasattr(zmq, "ZAP_ENFORCE_DOMAIN"):  # fail closed if no ZAP handler answers
            sock.setsockopt(zmq.ZAP_ENFORCE_DOMAIN, 1)


_key_cache: dict[tuple[str, float], KeyPair] = {}
_key_cache_lock = threading.Lock()


def _cached_key_file(path: str) -> KeyPair:
    p = Path(path).expanduser()
    try:
        mtime = p.stat().st_mtime
    except OSError:
        mtime = -1.0
    with _key_cache_lock:
        keys = _key_cache.get((str(p), mtime))
        if keys is None:
            keys = load_key_file(p)
            _key_cache[(str(p), mtime)] = keys
        return keys


def process_settings() -> Any:
    """This process's copyhub settings (``config.settings``), or None outside a copyhub checkout."""
    try:
        import config
    except (ImportError, SystemExit):
        return None
    return config.settings


def client_curve(endpoint: str, settings: Any = None) -> ClientCurve | None:
    """The CURVE options a socket connecting to ``endpoint`` uses, from ``settings``
    (default: this process's). None when CURVE is off: no ``BUS_KEY_FILE`` and a
    loopback ``endpoint``. BusSecurityError when CURVE is required (``endpoint`` is not
    loopback) or configured, and the keys are missing or bad."""
    cfg = process_settings() if settings is None else settings
    key_file = getattr(cfg, "BUS_KEY_FILE", "") if cfg is not None else ""
    server_key = getattr(cfg, "BUS_SERVER_KEY", "") if cfg is not None else ""
    if not key_file:
        if is_loopback_endpoint(endpoint):
            return None
        raise BusSecurityError(
            f"the bus at {endpoint} is not on this machine, and copyhub never crosses a network without "
            "CURVE: set BUS_KEY_FILE (python cli.py keys create) and BUS_SERVER_KEY (the bus host's public "
            "key) -- docs/operations.md, 'Several hosts'")
    if not server_key:
        raise BusSecurityError(f"BUS_KEY_FILE is set but BUS_SERVER_KEY is empty: set it to the bus host's public "
                               f"key (python cli.py keys show on the bus host) to connect to {endpoint}")
    return ClientCurve(_cached_key_file(key_file), check_public_key(server_key, "BUS_SERVER_KEY"))


def server_curve(endpoints: Iterable[str], settings: Any = None) -> ServerCurve | None:
    """The proxy's CURVE key pair for binding ``endpoints``, from ``settings`` (default:
    this process's). None when every endpoint is loopback and no ``BUS_KEY_FILE`` is set.
    BusSecurityError when an endpoint is not loopback and there are no keys, when the key
    file is bad, or when ``BUS_SERVER_KEY`` is set to another key than the file's (the
    clients on this host would then fail their handshake)."""
    cfg = process_settings() if settings is None else settings
    key_file = getattr(cfg, "BUS_KEY_FILE", "") if cfg is not None else ""
    eps = list(endpoints)
    if not key_file:
        exposed = [ep for ep in eps if not is_loopback_endpoint(ep)]
        if not exposed:
            return None
        raise BusSecurityError(
            f"the bus proxy would listen on {', '.join(exposed)}, reachable from other machines, and refuses to "
            "without CURVE keys: set BUS_KEY_FILE to this host's .key_secret file (python cli.py keys create "
            "--allow) -- docs/operations.md, 'Several hosts'")
    keys = load_key_file(key_file)
    server_key = getattr(cfg, "BUS_SERVER_KEY", "") if cfg is not None else ""
    if server_key and server_key != keys.public:
        raise BusSecurityError(f"BUS_SERVER_KEY {server_key} is not the public key of BUS_KEY_FILE {key_file} "
                               f"({keys.public}); on the bus host BUS_SERVER_KEY must be its own public key")
    return ServerCurve(keys)


# ---------------------------------------------------------------------------- the allow-list
class AllowList:
    """The public keys the proxy lets in, ``{public key: name}``, re-read every
    ``refresh_s`` seconds by a background thread from ``load`` (the store's ``bus_keys``).

    When ``load`` fails the last list stays in force (fail closed at start: empty). A key
    that disappears sets ``revoked`` (an Event): the proxy then drops every connection so
    that the revoked key's established ones end too (ZAP only runs at the handshake)."""

    def __init__(self, load: Callable[[], Mapping[str, str]], *, refresh_s: float = ALLOW_REFRESH_S) -> None:
        self._load = load
        self.refresh_s = refresh_s
        self._keys: dict[str, str] = {}
        self.loaded = False
        self.revoked = threading.Event()
        self.failures = 0
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self.refresh()

    def refresh(self) -> bool:
        """Re-read now; True when it worked."""
        try:
            keys = {check_public_key(k): str(v) for k, v in dict(self._load()).items()}
        except Exception as exc:  # store down, bad row: keep the last list
            self.failures += 1
            if self.failures == 1 or self.failures % 30 == 0:
                log.error("bus allow-list not readable (keeping the last one, %d keys): %s", len(self._keys), exc)
            return False
        if self.failures:
            log.info("bus allow-list readable again (%d keys)", len(keys))
            self.failures = 0
        gone = set(self._keys) - set(keys)
        if gone and self.loaded:
            log.warning("bus keys revoked: %s; dropping every bus connection so they reconnect and re-authenticate",
                        ", ".join(f"{self._keys[k]} ({k})" for k in sorted(gone)))
            self.revoked.set()
        self._keys = keys
        self.loaded = True
        return True

    def name_of(self, public_key: str) -> str | None:
        """The allow-list name of ``public_key``, or None when it is not allowed."""
        return self._keys.get(public_key)

    def __len__(self) -> int:
        return len(self._keys)

    def start(self) -> AllowList:
        self._thread = threading.Thread(target=self._run, name="bus-allow-list", daemon=True)
        self._thread.start()
        return self

    def _run(self) -> None:
        while not self._stop.wait(self.refresh_s):
            self.refresh()

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(5)


# ---------------------------------------------------------------------------- ZAP
class Refusals:
    """Counts and reports refused connections: log lines (at most ``LOG_PER_WINDOW`` per
    key -- or reason, when there is no key -- and address in ``LOG_WINDOW_S`` seconds; the
    next line says how many were left out) and, through ``on_event``, one audit event per
    key and address per ``REFUSAL_EVENT_EVERY_S``."""

    def __init__(self, on_event: Callable[[dict[str, Any]], None] | None = None) -> None:
        self.on_event = on_event
        self.total = 0
        self.by_reason: dict[str, int] = {}
        self._seen: dict[tuple[str, str], int] = {}
        self._window: dict[tuple[str, str], list[float | int]] = {}  # ident -> [start, logged, left out]
        self._evented: dict[tuple[str, str], float] = {}
        self._lock = threading.Lock()

    def refuse(self, reason: str, *, side: str, address: str = "", key: str = "", detail: str = "",
               level: int = logging.WARNING, audit: bool = True) -> None:
        """Count one refused connection; log it (``level``) and, with ``audit``, pass it
        to ``on_event`` (rate-limited per key and address as the class says)."""
        with self._lock:
            self.total += 1
            self.by_reason[reason] = self.by_reason.get(reason, 0) + 1
            ident = (key or reason, address)
            n = self._seen[ident] = self._seen.get(ident, 0) + 1
            now = time.monotonic()
            window = self._window.setdefault(ident, [now, 0, 0])
            if now - window[0] >= LOG_WINDOW_S:
                window[0], window[1] = now, 0
            write = window[1] < LOG_PER_WINDOW
            left_out = int(window[2]) if write else 0
            if write:
                window[1], window[2] = window[1] + 1, 0
            else:
                window[2] += 1
            send_event = audit and now - self._evented.get(ident, -REFUSAL_EVENT_EVERY_S) >= REFUSAL_EVENT_EVERY_S
            if send_event:
                self._evented[ident] = now
        if write:
            log.log(level, "bus connection refused (%s, %s%s%s): %s [#%d from there%s]", reason, side,
                    f", from {address}" if address else "", f", public key {key}" if key else "", detail, n,
                    f"; {left_out} more not logged" if left_out else "")
        if send_event and self.on_event is not None:
            try:
                self.on_event({"reason": reason, "side": side, "address": address, "public_key": key,
                               "detail": detail})
            except Exception as exc:  # the audit trail is best effort; the log line is written
                log.error("could not record the refused bus connection in the store: %s", exc)


HUNG_UP = "hung up in handshake"  # Refusals reason of a connection closed mid-handshake
_SIDE = {DOMAIN_PUBLISHERS: "publisher", DOMAIN_SUBSCRIBERS: "subscriber"}


class ZapHandler:
    """The proxy's ZAP handler (RFC 27): accepts a CURVE client whose public key is on
    ``allow``, refuses every other request (other mechanisms, unknown keys). Binds
    ``inproc://zeromq.zap.01`` in ``context`` -- one handler per context, started before
    any CURVE server socket of that context binds. ``accepted`` counts accepted handshakes."""

    def __init__(self, context: zmq.Context, allow: AllowList, refusals: Refusals) -> None:
        self._ctx = context
        self.allow = allow
        self.refusals = refusals
        self.accepted = 0
        self._stop = threading.Event()
        self._ready = threading.Event()
        self._error: BaseException | None = None
        self._thread = threading.Thread(target=self._run, name="bus-zap", daemon=True)
        self._thread.start()
        self._ready.wait()
        if self._error is not None:
            raise self._error

    def _run(self) -> None:
        sock = self._ctx.socket(zmq.REP)
        sock.setsockopt(zmq.LINGER, 0)
        try:
            sock.bind(ZAP_ENDPOINT)
        except zmq.ZMQError as exc:
            self._error = exc
            sock.close(linger=0)
            self._ready.set()
            return
        self._ready.set()
        poller = zmq.Poller()
        poller.register(sock, zmq.POLLIN)
        try:
            while not self._stop.is_set():
                if not poller.poll(200):
                    continue
                request = sock.recv_multipart()
                sock.send_multipart(self.reply(request))
        except zmq.ContextTerminated:
            pass
        finally:
            sock.close(linger=0)

    def reply(self, request: list[bytes]) -> list[bytes]:
        """The ZAP reply frames for one request (public for tests): 200 with the key's
        allow-list name as the user id, or 400 after logging the refusal."""
        if len(request) < 6:
            return [b"1.0", request[1] if len(request) > 1 else b"", b"500", b"malformed ZAP request", b"", b""]
        version, request_id, domain_b, address_b, _identity, mechanism_b = request[:6]
        domain = domain_b.decode("ascii", "replace")
        side = _SIDE.get(domain, domain or "?")
        address = address_b.decode("ascii", "replace")
        mechanism = mechanism_b.decode("ascii", "replace")

        def answer(code: bytes, text: bytes, user: bytes = b"") -> list[bytes]:
            return [version, request_id, code, text, user, b""]

        if mechanism != "CURVE" or len(request) < 7 or len(request[6]) != 32:
            self.refusals.refuse("not CURVE", side=side, address=address, detail=f"mechanism {mechanism}")
            return answer(b"400", b"CURVE required")
        key = z85.encode(request[6]).decode("ascii")
        name = self.allow.name_of(key)
        if name is None:
            self.refusals.refuse("unknown key", side=side, address=address, key=key,
                                 detail=f"not on the allow-list; if it is yours: python cli.py keys allow {key} --name HOST")
            return answer(b"400", b"key not allowed")
        self.accepted += 1
        log.debug("bus %s %s (%s) from %s accepted", side, name, key, address)
        return answer(b"200", b"OK", name.encode("utf-8"))

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(5)


class HandshakeWatch:
    """Logs the handshakes the proxy's CURVE sockets refuse before ZAP is asked: a peer
    without CURVE (mechanism mismatch) or one whose keys do not fit this proxy's (a wrong
    ``BUS_SERVER_KEY`` on that host). Reads socket monitors in a thread of its own, so an
    accepted connection's peer address is looked up at once; it is named when exactly
    one connection was accepted on that side in the last ``_PEER_WINDOW_S`` (ZeroMQ does
    not tie a failed handshake to its connection). A peer that hangs up during the
    handshake is logged at INFO, without an audit event: a port check (the launcher's "is
    the proxy up?") looks like that, and so does, depending on who notices first, a client
    without CURVE or with another server key (libzmq gives up after one or two attempts,
    so such a client shows as a mismatch or as a hang-up)."""

    _PEER_WINDOW_S = 2.0

    def __init__(self, sockets: Mapping[str, zmq.Socket], refusals: Refusals) -> None:
        self.refusals = refusals
        self._monitors: list[tuple[str, zmq.Socket]] = []
        events = zmq.EVENT_ACCEPTED | zmq.EVENT_HANDSHAKE_FAILED_PROTOCOL | zmq.EVENT_HANDSHAKE_FAILED_NO_DETAIL
        for side, sock in sockets.items():  # call from the thread that owns the sockets
            self._monitors.append((side, sock.get_monitor_socket(events)))
        self._accepted: dict[str, list[tuple[float, str]]] = {side: [] for side in sockets}
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="bus-handshakes", daemon=True)
        self._thread.start()

    def _run(self) -> None:
        from zmq.utils.monitor import recv_monitor_message

        poller = zmq.Poller()
        for _side, mon in self._monitors:
            poller.register(mon, zmq.POLLIN)
        try:
            while not self._stop.is_set():
                ready = dict(poller.poll(100))
                for side, mon in self._monitors:
                    if mon in ready:
                        self._handle(side, recv_monitor_message(mon))
        except (zmq.ContextTerminated, zmq.ZMQError):
            pass
        finally:
            for _side, mon in self._monitors:
                mon.close(linger=0)

    def _handle(self, side: str, ev: dict[str, Any]) -> None:
        kind, value = ev["event"], int(ev["value"])
        now = time.monotonic()
        recent = [(t, peer) for t, peer in self._accepted[side] if now - t <= self._PEER_WINDOW_S]
        if kind == zmq.EVENT_ACCEPTED:
            recent.append((now, _peer_of(value)))
            self._accepted[side] = recent
            return
        self._accepted[side] = recent
        address = recent[0][1] if len(recent) == 1 else ""
        if kind == zmq.EVENT_HANDSHAKE_FAILED_NO_DETAIL:  # the peer hung up during the handshake
            self.refusals.refuse(HUNG_UP, side=side, address=address, level=logging.INFO, audit=False,
                                 detail=f"code {value}: a port check (the launcher's, cli.py's), or a client that "
                                        "gave up on us first: no CURVE, or another server key")
            return
        if value == zmq.PROTOCOL_ERROR_ZMTP_MECHANISM_MISMATCH:
            reason, detail = "not CURVE", "the peer does not use CURVE (mechanism mismatch)"
        elif value == zmq.PROTOCOL_ERROR_ZMTP_CRYPTOGRAPHIC:
            reason, detail = "wrong server key", ("the peer's CURVE handshake does not decrypt with this proxy's "
                                                  "key: its BUS_SERVER_KEY is not this proxy's public key")
        else:
            reason, detail = "handshake failed", f"ZMTP protocol error 0x{value:08x}"
        self.refusals.refuse(reason, side=side, address=address, detail=detail)

    def close(self) -> None:
        self._stop.set()
        self._thread.join(5)


def _peer_of(fd: int) -> str:
    """``ip:port`` of the accepted connection ``fd`` (best effort; "" when unknown)."""
    import socket

    try:
        s = socket.socket(fileno=fd)
    except OSError:
        return ""
    try:
        host, port = s.getpeername()[:2]
        return f"{host}:{port}"
    except OSError:
        return ""
    finally:
        s.detach()


def describe_curve(curve: ClientCurve | ServerCurve | None) -> str:
    """For start-up log lines: whether CURVE is on and with which public key (never the secret)."""
    if curve is None:
        return "CURVE off (loopback)"
    if isinstance(curve, ClientCurve):
        return f"CURVE on, this host's key {curve.keys.public}, proxy key {curve.server_public}"
    return f"CURVE on, proxy key {curve.keys.public}"


__all__ = ["AllowList", "BusSecurityError", "ClientCurve", "HandshakeWatch", "KeyPair", "Refusals", "ServerCurve",
           "ZapHandler", "check_public_key", "client_curve", "create_key_files", "describe_curve", "endpoint_host",
           "is_loopback_endpoint", "key_paths", "load_key_file", "new_key_pair", "owner_only_problem",
           "process_settings", "restrict_to_owner", "server_curve"]
