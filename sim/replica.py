"""A replica process of a multi-process simulator server (see sim/cluster.py).

    python -m sim.replica <main-endpoint> <index> <main-pid>

Started by :class:`sim.cluster.ClusterServer`, never by hand. Connects a DEALER to the
main process, says hello, receives a snapshot of the world and then, in order, on the
one pipe: log entries (changes the main process made, applied here in the same order),
read calls to answer (``R``), heartbeats (``H``) and quit (``Q``). Exits when the main
process has been silent for :data:`SILENCE_S` seconds or its pid is gone, so a killed
server leaves no replica behind (on Windows too: no signals needed).
"""
from __future__ import annotations

import os
import pickle
import sys
import time
from typing import Any

import zmq

SILENCE_S = 10.0


def _alive(pid: int) -> bool:
    try:
        import psutil
    except ImportError:  # pragma: no cover - psutil is a project requirement
        return True
    return psutil.pid_exists(pid)


def apply(sim: Any, server: Any, entry: list) -> None:
    """Apply one log entry of the main process to this copy of the world. A call that
    raised there raises here too (same state, same code) and is ignored alike."""
    from sim.server import _Session

    kind = entry[0]
    if kind == "adv":
        sim.advance(entry[1])
    elif kind == "mt5":
        _kind, cid, fn, args, kwargs = entry
        sess = server._sessions.get(cid)
        if sess is None:
            sess = server._sessions[cid] = _Session(sim.terminal())
        term = sess.terminal
        term._skip_latency = True  # the main process slept it already
        try:
            getattr(term, fn)(*args, **kwargs)
        except Exception:
            pass
        finally:
            term._skip_latency = False
    elif kind == "admin":
        _kind, fn, args, kwargs = entry
        try:
            with sim.lock:
                getattr(sim, fn)(*args, **kwargs)
        except Exception:
            pass
    elif kind == "drop":
        server._sessions.pop(entry[1], None)
    else:
        raise ValueError(f"unknown log entry {kind!r}")


def main(argv: list[str]) -> int:
    from sim.client import loads
    from sim.server import SimServer, _Session

    if len(argv) != 3:
        print("usage: python -m sim.replica <main-endpoint> <index> <main-pid>", file=sys.stderr)
        return 2
    endpoint, index, parent = argv[0], int(argv[1]), int(argv[2])
    ctx = zmq.Context()
    sock = ctx.socket(zmq.DEALER)
    sock.setsockopt(zmq.LINGER, 0)
    sock.setsockopt(zmq.RCVHWM, 0)
    sock.setsockopt(zmq.SNDHWM, 0)
    sock.setsockopt(zmq.IDENTITY, b"r%d" % index)
    sock.connect(endpoint)
    sock.send_multipart([b"hello", str(os.getpid()).encode()])
    poller = zmq.Poller()
    poller.register(sock, zmq.POLLIN)
    server = None
    sim = None
    last = time.monotonic()
    try:
        while True:
            if not poller.poll(1000):
                if time.monotonic() - last > SILENCE_S or not _alive(parent):
                    return 0
                continue
            last = time.monotonic()
            while True:
                try:
                    frames = sock.recv_multipart(zmq.NOBLOCK)
                except zmq.Again:
                    break
                kind = frames[0]
                if kind == b"L":
                    apply(sim, server, loads(frames[1:]))
                elif kind == b"R":
                    parsed = SimServer._parse(frames[2:])
                    if parsed is not None and parsed[3] == "sys" and parsed[4] == "digest":
                        parsed = parsed[:5] + ([],) + parsed[6:]  # "replica k": that is me
                    if parsed is not None and server is not None:
                        sock.send_multipart([b"P", frames[1], *server._run(parsed)], copy=False)
                elif kind == b"S":
                    sim, terms = pickle.loads(frames[2])
                    server = SimServer(sim, "tcp://127.0.0.1:*", tick_hz=0, workers=0, context=ctx)
                    server.epoch = frames[1].decode()
                    server._sessions = {cid: _Session(t) for cid, t in terms.items()}
                elif kind == b"Q":
                    return 0
    except KeyboardInterrupt:  # Ctrl+C reaches the whole console group; the main process decides
        return 0
    finally:
        sock.close(linger=0)
        ctx.term()


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
