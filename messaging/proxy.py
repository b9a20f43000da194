"""The bus proxy: XSUB (publishers connect) <-> XPUB (subscribers connect).

    python -m messaging.proxy [--xsub tcp://127.0.0.1:5555] [--xpub tcp://127.0.0.1:5556]
                              [--parent-pid PID]

Forwarding runs inside libzmq (``zmq.proxy_steerable``) in a worker thread, so the
proxy adds only a few microseconds per hop. The main thread waits for a signal
(SIGINT, SIGTERM, SIGBREAK on Windows) or for the parent process to vanish, then
sends TERMINATE on the control socket and exits 0. It never parses messages: bad
input is the subscribers' job to refuse, and the proxy cannot crash on it.

Once bound it prints one line to stdout, ``READY xsub=<endpoint> xpub=<endpoint>``,
with the real endpoints (a ``:*`` port is resolved), so a supervisor can wait for it.

CURVE (messaging/security.py, docs/bus.md "Security"): with ``BUS_KEY_FILE`` set both
sockets are CURVE servers and a ZAP handler admits only the public keys on the store's
allow-list (``--db``, default the settings' store); bound anywhere but loopback without
keys, the proxy refuses to start (exit 2).
"""
from __future__ import annotations

import argparse
import logging
import signal
import sys
import threading
import time
from collections.abc import Callable
from typing import Any

import psutil
import zmq

from messaging.security import (
    DOMAIN_PUBLISHERS,
    DOMAIN_SUBSCRIBERS,
    AllowList,
    BusSecurityError,
    HandshakeWatch,
    Refusals,
    ServerCurve,
    ZapHandler,
    describe_curve,
    process_settings,
    server_curve,
)

DEFAULT_XSUB = "tcp://127.0.0.1:5555"
DEFAULT_XPUB = "tcp://127.0.0.1:5556"
# Per-peer queue limits. PUB/SUB drops (never blocks) beyond them; the Clone sequence
# numbers turn such a drop into a visible gap and a snapshot request. 100k messages
# of ~1 KB bound the memory a stuck subscriber can pin at ~100 MB.
PROXY_HWM = 100_000
# Refuse absurd frames at the door (the schema refuses > 1 MiB payloads anyway).
PROXY_MAXMSGSIZE = 4 * 1024 * 1024

log = logging.getLogger("messaging.proxy")


def _stop_signals() -> list[int]:
    sigs = [signal.SIGINT, signal.SIGTERM]
    if hasattr(signal, "SIGBREAK"):  # Windows console Ctrl+Break / CTRL_BREAK_EVENT
        sigs.append(signal.SIGBREAK)
    return sigs


def parent_watch(pid: int) -> Callable[[], bool]:
    """A check that is False once ``pid`` is gone (or is a zombie, or was reused)."""
    try:
        proc = psutil.Process(pid)
        created = proc.create_time()
    except psutil.Error:
        return lambda: False

    def alive() -> bool:
        try:
            return proc.create_time() == created and proc.status() != psutil.STATUS_ZOMBIE
        except psutil.Error:
            return False

    return alive


class Proxy:
    """Owns the sockets and the forwarding thread; ``stop()`` is safe from any thread.

    ``curve`` (messaging/security.py): the bus host's key pair; both sides become CURVE
    servers and ``allow`` (an AllowList) decides which client keys get in, through a ZAP
    handler in this proxy's own ZeroMQ context. Refused connections are counted and
    logged by ``refusals``. Call ``poll_security()`` regularly (``main`` does, every
    0.1 s): it logs handshakes refused for a missing CURVE and, after a key was revoked,
    rebinds both sockets so that every peer reconnects and is authenticated again.
    """

    def __init__(self, xsub: str, xpub: str, *, context: zmq.Context | None = None,
                 hwm: int = PROXY_HWM, curve: ServerCurve | None = None, allow: AllowList | None = None,
                 refusals: Refusals | None = None) -> None:
        if curve is not None and allow is None:
            raise ValueError("a CURVE proxy needs an allow-list")
        self.curve = curve
        self.allow = allow
        self.refusals = refusals or Refusals()
        self._own_context = context is None and curve is not None
        # ZAP is per context: a CURVE proxy gets a context of its own.
        self._ctx = zmq.Context() if self._own_context else (context or zmq.Context.instance())
        self._hwm = hwm
        self._zap = ZapHandler(self._ctx, allow, self.refusals) if curve is not None and allow is not None else None
        self._watch: HandshakeWatch | None = None
        self.restarts = 0
        self.xsub_endpoint = ""
        self.xpub_endpoint = ""
        try:
            self._start(xsub, xpub)
        except BaseException:
            self._close_security()
            raise

    def _start(self, xsub: str, xpub: str, bind_timeout_s: float = 0.0) -> None:
        self._ctl_addr = f"inproc://copyhub-proxy-ctl-{id(self)}-{self.restarts}"
        self._ctl = self._ctx.socket(zmq.PAIR)
        self._ctl.bind(self._ctl_addr)
        self._ready = threading.Event()
        self._error: BaseException | None = None
        self._thread = threading.Thread(target=self._run, args=(xsub, xpub, self._hwm, bind_timeout_s),
                                        name="bus-proxy", daemon=True)
        self._thread.start()
        self._ready.wait()
        if self._error is not None:
            self._thread.join()
            self._ctl.close(linger=0)
            raise self._error

    def _run(self, xsub: str, xpub: str, hwm: int, bind_timeout_s: float) -> None:
        front = self._ctx.socket(zmq.XSUB)
        back = self._ctx.socket(zmq.XPUB)
        ctl = self._ctx.socket(zmq.PAIR)
        try:
            for s in (front, back):
                s.setsockopt(zmq.LINGER, 0)
                s.setsockopt(zmq.SNDHWM, hwm)
                s.setsockopt(zmq.RCVHWM, hwm)
            front.setsockopt(zmq.MAXMSGSIZE, PROXY_MAXMSGSIZE)
            if self.curve is not None:
                self.curve.apply(front, DOMAIN_PUBLISHERS)
                self.curve.apply(back, DOMAIN_SUBSCRIBERS)
                self._watch = HandshakeWatch({"publisher": front, "subscriber": back}, self.refusals)
            _bind(front, xsub, bind_timeout_s)
            _bind(back, xpub, bind_timeout_s)
            self.xsub_endpoint = front.getsockopt_string(zmq.LAST_ENDPOINT)
            self.xpub_endpoint = back.getsockopt_string(zmq.LAST_ENDPOINT)
            ctl.connect(self._ctl_addr)
        except BaseException as exc:  # bind failure (port in use, bad endpoint)
            self._error = exc
            for s in (front, back, ctl):
                s.close(linger=0)
            if self._watch is not None:
                self._watch.close()
                self._watch = None
            self._ready.set()
            return
        self._ready.set()
        try:
            zmq.proxy_steerable(front, back, None, ctl)
        except zmq.ContextTerminated:
            pass
        finally:
            for s in (front, back, ctl):
                s.close(linger=0)

    def poll_security(self) -> None:
        """After a revocation, rebind (every peer reconnects and
        goes through ZAP again, so a revoked key's open connections end). Call from the
        thread that owns this Proxy."""
        if self.allow is not None and self.allow.revoked.is_set():
            self.allow.revoked.clear()
            self.restart()

    def restart(self, timeout: float = 5.0) -> None:
        """Close both sockets (dropping every connection) and bind them again on the same
        endpoints. Messages in flight are lost: the Clone sequence numbers make that a gap
        the slaves repair from a snapshot, as after a proxy restart."""
        xsub, xpub = self.xsub_endpoint, self.xpub_endpoint
        self._stop_forwarding(timeout)
        self.restarts += 1
        self._start(xsub, xpub, bind_timeout_s=timeout)
        log.info("bus proxy rebound (%d): xsub=%s xpub=%s", self.restarts, xsub, xpub)

    def _stop_forwarding(self, timeout: float) -> None:
        if self._thread.is_alive():
            self._ctl.send(b"TERMINATE")
            self._thread.join(timeout)
        self._ctl.close(linger=0)
        if self._watch is not None:
            self._watch.close()
            self._watch = None

    def _close_security(self) -> None:
        if self._zap is not None:
            self._zap.stop()
            self._zap = None
        if self._own_context:
            self._ctx.term()

    def stop(self, timeout: float = 5.0) -> None:
        self._stop_forwarding(timeout)
        self._close_security()

    @property
    def running(self) -> bool:
        return self._thread.is_alive()


def _bind(sock: zmq.Socket, endpoint: str, timeout_s: float) -> None:
    """Bind, retrying "address in use" for up to ``timeout_s`` (a rebind right after the
    previous socket closed: libzmq releases the port asynchronously)."""
    deadline = time.monotonic() + timeout_s
    while True:
        try:
            sock.bind(endpoint)
            return
        except zmq.ZMQError as exc:
            if exc.errno != zmq.EADDRINUSE or time.monotonic() >= deadline:
                raise
            time.sleep(0.05)


def settings_endpoints() -> tuple[list[str], str, str]:
    """(arguments without ``--config``, XSUB, XPUB) from the copyhub settings
    (``BUS_HOST``, ``ZMQ_PUB_PORT``, ``ZMQ_SUB_PORT``), read only when run as an entry
    point; the built-in defaults outside a copyhub checkout."""
    try:
        import config
    except ImportError:
        return sys.argv[1:], DEFAULT_XSUB, DEFAULT_XPUB
    return config._ARGV, config.settings.bus_pub_endpoint, config.settings.bus_sub_endpoint


AllowSource = Callable[[str], "tuple[AllowList, Callable[[dict[str, Any]], None], Callable[[], None]]"]


def main(argv: list[str] | None = None, *, xsub: str = DEFAULT_XSUB, xpub: str = DEFAULT_XPUB,
         settings: Any = None, allow_source: AllowSource | None = None, prog: str = "python -m messaging.proxy") -> int:
    """``python -m messaging.proxy`` (``prog``: the name usage and errors give): bind XSUB (``xsub``, publishers connect) and XPUB
    (``xpub``, subscribers connect) unless given on the command line. CURVE follows
    ``settings`` (default: this process's; messaging/security.py): on with
    ``BUS_KEY_FILE``, required off loopback -- exit 2 with the reason when it is
    required and the keys are missing or bad. ``allow_source(db_url)`` gives the CURVE
    allow-list (the store's, from ``python -m fleet.busproxy``, which the launcher runs):
    ``(AllowList, record a refusal, close)``; without it a CURVE proxy exits 2."""
    ap = argparse.ArgumentParser(prog=prog, description=__doc__.split("\n")[0])
    ap.add_argument("--xsub", default=xsub, help=f"endpoint publishers connect to (default {xsub}: ZMQ_PUB_PORT)")
    ap.add_argument("--xpub", default=xpub, help=f"endpoint subscribers connect to (default {xpub}: ZMQ_SUB_PORT)")
    ap.add_argument("--parent-pid", type=int, default=None,
                    help="exit when this process is gone (checked every second)")
    ap.add_argument("--hwm", type=int, default=PROXY_HWM, help="per-peer queue limit (messages)")
    ap.add_argument("--db", default=None,
                    help="store holding the allow-list of bus keys, with CURVE (default: the settings' store)")
    args = ap.parse_args(argv)
    if not logging.getLogger().handlers:
        logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s %(message)s")
    cfg = settings if settings is not None else process_settings()
    try:
        curve = server_curve([args.xsub, args.xpub], cfg)
    except BusSecurityError as exc:
        log.error("bus proxy not started: %s", exc)
        return 2
    allow = record = close_store = None
    if curve is not None:
        db_url = args.db or (cfg.database_url if cfg is not None else "")
        if not db_url:
            log.error("bus proxy not started: CURVE needs the store holding the allow-list (--db)")
            return 2
        if allow_source is None:
            log.error("bus proxy not started: with CURVE the allow-list comes from the store; "
                      "run python -m fleet.busproxy (what the launcher runs)")
            return 2
        allow, record, close_store = allow_source(db_url)
        allow.start()
        if not allow.loaded:
            log.error("bus allow-list not readable yet: every bus connection is refused until the store answers")
        elif not len(allow):
            log.warning("the bus allow-list is empty: every connection is refused; python cli.py keys allow ...")

    stop = threading.Event()
    reason: list[str] = []

    def on_signal(signum, _frame) -> None:
        reason.append(signal.Signals(signum).name)
        stop.set()

    for sig in _stop_signals():
        signal.signal(sig, on_signal)
    parent_alive = parent_watch(args.parent_pid) if args.parent_pid else (lambda: True)

    try:
        proxy = Proxy(args.xsub, args.xpub, hwm=args.hwm, curve=curve, allow=allow, refusals=Refusals(record))
    except zmq.ZMQError as exc:
        log.error("cannot bind bus proxy (xsub=%s xpub=%s): %s", args.xsub, args.xpub, exc)
        if allow is not None:
            allow.stop()
        return 2
    print(f"READY xsub={proxy.xsub_endpoint} xpub={proxy.xpub_endpoint}", flush=True)
    log.info("bus proxy up: xsub=%s xpub=%s, %s%s", proxy.xsub_endpoint, proxy.xpub_endpoint, describe_curve(curve),
             f", {len(allow)} allowed keys" if allow is not None else "")

    next_parent_check = time.monotonic() + 1.0
    # Short sleeps rather than Event.wait(): the signal handler runs between them on
    # every platform, and time.sleep is interruptible by Ctrl+C on Windows.
    while not stop.is_set() and proxy.running:
        time.sleep(0.1)
        try:
            proxy.poll_security()
        except zmq.ZMQError as exc:  # a rebind that failed: the supervisor restarts us
            log.error("bus proxy could not rebind after a key revocation: %s", exc)
            break
        if args.parent_pid and time.monotonic() >= next_parent_check:
            next_parent_check = time.monotonic() + 1.0
            if not parent_alive():
                reason.append(f"parent {args.parent_pid} gone")
                break
    crashed = not proxy.running
    proxy.stop()
    if allow is not None:
        allow.stop()
    if close_store is not None:
        close_store()
    if crashed:
        log.error("bus proxy forwarding thread stopped unexpectedly")
        return 1
    log.info("bus proxy stopped (%s)", reason[0] if reason else "?")
    return 0


if __name__ == "__main__":
    _argv, _xsub, _xpub = settings_endpoints()
    sys.exit(main(_argv, xsub=_xsub, xpub=_xpub))
