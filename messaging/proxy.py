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
"""
from __future__ import annotations

import argparse
import logging
import signal
import sys
import threading
import time
from collections.abc import Callable

import psutil
import zmq

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
    """Owns the sockets and the forwarding thread; ``stop()`` is safe from any thread."""

    def __init__(self, xsub: str, xpub: str, *, context: zmq.Context | None = None,
                 hwm: int = PROXY_HWM) -> None:
        self._ctx = context or zmq.Context.instance()
        self._ctl_addr = f"inproc://copyhub-proxy-ctl-{id(self)}"
        self._ctl = self._ctx.socket(zmq.PAIR)
        self._ctl.bind(self._ctl_addr)
        self._ready = threading.Event()
        self._error: BaseException | None = None
        self.xsub_endpoint = ""
        self.xpub_endpoint = ""
        self._thread = threading.Thread(target=self._run, args=(xsub, xpub, hwm),
                                        name="bus-proxy", daemon=True)
        self._thread.start()
        self._ready.wait()
        if self._error is not None:
            self._thread.join()
            self._ctl.close(linger=0)
            raise self._error

    def _run(self, xsub: str, xpub: str, hwm: int) -> None:
        front = self._ctx.socket(zmq.XSUB)
        back = self._ctx.socket(zmq.XPUB)
        ctl = self._ctx.socket(zmq.PAIR)
        try:
            for s in (front, back):
                s.setsockopt(zmq.LINGER, 0)
                s.setsockopt(zmq.SNDHWM, hwm)
                s.setsockopt(zmq.RCVHWM, hwm)
            front.setsockopt(zmq.MAXMSGSIZE, PROXY_MAXMSGSIZE)
            front.bind(xsub)
            back.bind(xpub)
            self.xsub_endpoint = front.getsockopt_string(zmq.LAST_ENDPOINT)
            self.xpub_endpoint = back.getsockopt_string(zmq.LAST_ENDPOINT)
            ctl.connect(self._ctl_addr)
        except BaseException as exc:  # bind failure (port in use, bad endpoint)
            self._error = exc
            for s in (front, back, ctl):
                s.close(linger=0)
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

    def stop(self, timeout: float = 5.0) -> None:
        if self._thread.is_alive():
            self._ctl.send(b"TERMINATE")
            self._thread.join(timeout)
        self._ctl.close(linger=0)

    @property
    def running(self) -> bool:
        return self._thread.is_alive()


def settings_endpoints() -> tuple[list[str], str, str]:
    """(arguments without ``--config``, XSUB, XPUB) from the copyhub settings
    (``BUS_HOST``, ``ZMQ_PUB_PORT``, ``ZMQ_SUB_PORT``), read only when run as an entry
    point; the built-in defaults outside a copyhub checkout."""
    try:
        import config
    except ImportError:
        return sys.argv[1:], DEFAULT_XSUB, DEFAULT_XPUB
    return config._ARGV, config.settings.bus_pub_endpoint, config.settings.bus_sub_endpoint


def main(argv: list[str] | None = None, *, xsub: str = DEFAULT_XSUB, xpub: str = DEFAULT_XPUB) -> int:
    """``python -m messaging.proxy``: bind XSUB (``xsub``, publishers connect) and XPUB
    (``xpub``, subscribers connect) unless given on the command line."""
    ap = argparse.ArgumentParser(prog="python -m messaging.proxy", description=__doc__.split("\n")[0])
    ap.add_argument("--xsub", default=xsub, help=f"endpoint publishers connect to (default {xsub}: ZMQ_PUB_PORT)")
    ap.add_argument("--xpub", default=xpub, help=f"endpoint subscribers connect to (default {xpub}: ZMQ_SUB_PORT)")
    ap.add_argument("--parent-pid", type=int, default=None,
                    help="exit when this process is gone (checked every second)")
    ap.add_argument("--hwm", type=int, default=PROXY_HWM, help="per-peer queue limit (messages)")
    args = ap.parse_args(argv)
    if not logging.getLogger().handlers:
        logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s %(message)s")

    stop = threading.Event()
    reason: list[str] = []

    def on_signal(signum, _frame) -> None:
        reason.append(signal.Signals(signum).name)
        stop.set()

    for sig in _stop_signals():
        signal.signal(sig, on_signal)
    parent_alive = parent_watch(args.parent_pid) if args.parent_pid else (lambda: True)

    try:
        proxy = Proxy(args.xsub, args.xpub, hwm=args.hwm)
    except zmq.ZMQError as exc:
        log.error("cannot bind bus proxy (xsub=%s xpub=%s): %s", args.xsub, args.xpub, exc)
        return 2
    print(f"READY xsub={proxy.xsub_endpoint} xpub={proxy.xpub_endpoint}", flush=True)
    log.info("bus proxy up: xsub=%s xpub=%s", proxy.xsub_endpoint, proxy.xpub_endpoint)

    next_parent_check = time.monotonic() + 1.0
    # Short sleeps rather than Event.wait(): the signal handler runs between them on
    # every platform, and time.sleep is interruptible by Ctrl+C on Windows.
    while not stop.is_set() and proxy.running:
        time.sleep(0.1)
        if args.parent_pid and time.monotonic() >= next_parent_check:
            next_parent_check = time.monotonic() + 1.0
            if not parent_alive():
                reason.append(f"parent {args.parent_pid} gone")
                break
    crashed = not proxy.running
    proxy.stop()
    if crashed:
        log.error("bus proxy forwarding thread stopped unexpectedly")
        return 1
    log.info("bus proxy stopped (%s)", reason[0] if reason else "?")
    return 0


if __name__ == "__main__":
    _argv, _xsub, _xpub = settings_endpoints()
    sys.exit(main(_argv, xsub=_xsub, xpub=_xpub))
