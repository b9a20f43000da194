"""Serve one world from several processes: a main server and read replicas (issue 14).

Real terminals are one process per account; one simulator process serving a fleet of 20
nodes is on every node's path. :class:`ClusterServer` keeps the whole world in the main
process -- the only place where the world changes -- and runs ``processes`` replica
processes (``python -m sim.replica``, started as subprocesses: no fork, so Windows runs
the same code) that answer the read calls, which are nearly all of a fleet's traffic
(``positions_get``, ``symbol_info_tick``, ``account_info``, history and rates queries...).

**One world.** The simulator is deterministic given its seed and the sequence of calls
that change it, so the main process records every change, in the order it made them,
as a log entry (``adv`` a clock step of N seconds, ``mt5`` a terminal call that can change
state -- ``initialize``, ``login``, ``order_send``, ``symbol_select``... -- ``admin`` an
admin call that changes the world, ``drop`` a reaped session) and streams the log to every
replica, which applies it to its copy. A replica starts from a snapshot of the main
process's world taken under the world lock, so one that joins late or replaces a crashed
one is exact too. Log entries and forwarded reads travel over one ordered pipe per replica
(ZeroMQ keeps order within a pipe), and the main process flushes the log before it
forwards a read, so a read sees every change made before it was routed: a client that
sent an order and then reads its positions sees the order, whichever process answers.
``digest`` (a ``sys`` call) hashes a process's world, so a test can check that every
replica holds exactly the main world.

**What runs where.** Main process: every call that changes state, admin calls, the wall
clock ticker, every call of an account with an injected fault (faults may act on reads:
``price_after``, latency), and any call while no replica is up. Replicas: the read calls
of :data:`READ_FUNCTIONS` of fault-free accounts, least-loaded replica first.

**Crashes.** The main process checks its replicas every 100 ms; a replica that exited is
reported on stderr (one line), its unanswered reads are answered by the main process,
and it is restarted from a fresh snapshot (up to :data:`MAX_RESTARTS` times; after that
the main process serves alone). ``ping()`` reports each replica's pid, state, calls
served and restarts. A replica exits on its own when the main process goes away.

Pickle is used only for the snapshot, from the main process to a replica it started, on
a loopback port the main process bound; nothing from a client is ever unpickled.
"""
from __future__ import annotations

import hashlib
import io
import itertools
import os
import pickle
import subprocess
import sys
import threading
import time
from dataclasses import dataclass, field
from typing import Any

import zmq

from sim.client import ADMIN_FUNCTIONS, MT5_FUNCTIONS, NS_ADMIN, NS_MT5, NS_SYS, ST_EPOCH, ST_EXC, ST_OK, dumps
from sim.faults import Faults
from sim.server import SimServer

#: Terminal calls that never change the world (nor a terminal's login): a replica may
#: answer them. ``order_check`` only computes; the rest read.
READ_FUNCTIONS = frozenset({
    "version", "account_info", "terminal_info", "symbols_total", "symbols_get", "symbol_info",
    "symbol_info_tick", "market_book_get", "copy_rates_from", "copy_rates_from_pos",
    "copy_rates_range", "copy_ticks_from", "copy_ticks_range", "orders_total", "orders_get",
    "positions_total", "positions_get", "history_orders_total", "history_orders_get",
    "history_deals_total", "history_deals_get", "order_calc_margin", "order_calc_profit",
    "order_check"})
#: Admin calls that only read: not logged.
ADMIN_READS = frozenset({"world_summary", "now_ms", "logins", "broker_of", "terminal_logins"})
MAX_RESTARTS = 10
HEARTBEAT_S = 1.0
_NO_FAULTS = Faults()
_LOCK_TYPES = (type(threading.RLock()), type(threading.Lock()))


class _SnapshotPickler(pickle.Pickler):
    """Pickles a Simulator with its terminals; a lock becomes a fresh lock."""

    def reducer_override(self, obj: Any) -> Any:
        if isinstance(obj, _LOCK_TYPES[0]):
            return threading.RLock, ()
        if isinstance(obj, _LOCK_TYPES[1]):
            return threading.Lock, ()
        return NotImplemented


def snapshot(sim: Any, terminals: dict[str, Any]) -> bytes:
    """The world and the sessions' terminals as bytes (call with ``sim.lock`` held)."""
    buf = io.BytesIO()
    _SnapshotPickler(buf, protocol=pickle.HIGHEST_PROTOCOL).dump((sim, terminals))
    return buf.getvalue()


def world_digest(sim: Any) -> str:
    """SHA-256 (hex) of everything a terminal can observe of the world: clock, prices,
    every account's money, positions, orders and history, faults, terminal logins and
    the request counter. Two processes with equal digests answer every call alike."""
    h = hashlib.sha256()
    with sim.lock:
        h.update(repr((sim._now, sim.request_id, sim.activity, sorted(sim.market.prices.items()))).encode())
        for key, f in sorted(sim.market.feeds.items()):
            h.update(repr((key, f.bid, f.ask, f.time_msc, f.ticks.n, f.bars.n)).encode())
        for login, a in sorted(sim.accounts.items()):
            h.update(repr((login, a.balance, a.credit, list(a.positions.values()), list(a.orders.values()),
                           a.hist_orders, a.hist_deals, sorted(a.selected), sorted(a.books))).encode())
        h.update(repr(sorted((k, vars(v)) for k, v in sim.faults.items())).encode())
        h.update(repr(sorted((k, t.login) for k, t in sim.terminals.items())).encode())
    return h.hexdigest()


@dataclass
class _Replica:
    index: int
    ident: bytes
    proc: subprocess.Popen | None = None
    live: bool = False
    outstanding: dict[bytes, tuple] = field(default_factory=dict)  # tag -> parsed request
    served: int = 0
    restarts: int = 0
    started: float = 0.0


class ClusterServer(SimServer):
    """A :class:`SimServer` whose read calls are answered by ``processes`` replica
    processes holding the same world (see the module docstring). ``processes=0`` behaves
    exactly like SimServer. Other arguments as :class:`SimServer`."""

    def __init__(self, sim: Any, endpoint: str = "tcp://127.0.0.1:5570", tick_hz: float = 10.0,
                 workers: int = 8, session_ttl: float = 900.0, context: zmq.Context | None = None,
                 processes: int = 2) -> None:
        super().__init__(sim, endpoint, tick_hz=tick_hz, workers=workers, session_ttl=session_ttl,
                         context=context)
        if processes < 0:
            raise ValueError("processes must be >= 0")
        self.replicas = [_Replica(i, b"r%d" % i) for i in range(int(processes))]
        self._by_ident = {r.ident: r for r in self.replicas}
        self._log_lock = threading.Lock()
        self._pending: list[list] = []   # encoded log entries not yet sent
        self.logged = 0                  # log entries made
        self.main_served = 0             # terminal calls answered by this process
        self._tags = itertools.count(1)
        self._rr = 0
        self._next_check = self._next_beat = 0.0  # monotonic s: the next replica check and heartbeat (serve loop)
        self._rep: zmq.Socket | None = None
        self.replica_endpoint = ""

    # ------------------------------------------------------------------ lifecycle
    def bind(self) -> str:
        ep = super().bind()
        if self.replicas:
            rep = self._rep = self._ctx.socket(zmq.ROUTER)
            rep.setsockopt(zmq.LINGER, 0)
            rep.setsockopt(zmq.SNDHWM, 0)      # a log entry must never be dropped
            rep.setsockopt(zmq.RCVHWM, 0)
            rep.setsockopt(zmq.ROUTER_MANDATORY, 1)  # an unroutable send raises: the replica is gone
            rep.bind("tcp://127.0.0.1:*")
            self.replica_endpoint = rep.getsockopt_string(zmq.LAST_ENDPOINT)
            for r in self.replicas:
                self._spawn(r)
        return ep

    def _spawn(self, r: _Replica) -> None:
        cmd = [sys.executable, "-m", "sim.replica", self.replica_endpoint, str(r.index), str(os.getpid())]
        root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
        env = dict(os.environ)
        env["PYTHONPATH"] = root + (os.pathsep + env["PYTHONPATH"] if env.get("PYTHONPATH") else "")
        r.proc = subprocess.Popen(cmd, cwd=root, env=env, stdin=subprocess.DEVNULL)
        r.live = False
        r.started = time.monotonic()

    def _close(self) -> None:
        for r in self.replicas:
            if r.live and self._rep is not None:
                try:
                    self._rep.send_multipart([r.ident, b"Q"])
                except zmq.ZMQError:
                    pass
        for r in self.replicas:
            if r.proc is not None:
                try:
                    r.proc.wait(3)
                except subprocess.TimeoutExpired:
                    r.proc.kill()
                    r.proc.wait(3)
        if self._rep is not None:
            self._rep.close(linger=0)
        super()._close()

    # ------------------------------------------------------------------ the log
    def _log(self, entry: list) -> None:
        """Record one change (call with ``sim.lock`` held, right after making it)."""
        if not self.replicas:
            return
        frames = dumps(entry)
        with self._log_lock:
            self._pending.append(frames)
            self.logged += 1

    def _flush(self) -> None:
        """Send pending log entries to every live replica (router thread only)."""
        if not self._pending:
            return
        with self._log_lock:
            pending, self._pending = self._pending, []
        for r in self.replicas:
            if r.live:
                for frames in pending:
                    if not self._send(r, [b"L", *frames]):
                        break

    def _send(self, r: _Replica, frames: list) -> bool:
        try:
            self._rep.send_multipart([r.ident, *frames], copy=False)  # type: ignore[union-attr]
            return True
        except zmq.ZMQError:  # not connected any more: it died
            self._lost(r, "its connection closed")
            return False

    def _catch_up(self) -> None:
        with self.sim.lock:
            lag_ms = time.time_ns() // 1_000_000 - self.sim.now_ms()
            if lag_ms > 0:
                seconds = lag_ms / 1000.0
                self.sim.advance(seconds)
                self._log(["adv", seconds])

    def _reap(self) -> None:
        before = set(self._sessions)
        super()._reap()
        gone = before - set(self._sessions)
        if gone:
            with self.sim.lock:
                for cid in sorted(gone):
                    self._log(["drop", cid])

    # ------------------------------------------------------------------ requests
    def _run(self, parsed: tuple) -> list:
        if parsed[3] == NS_MT5:
            self.main_served += 1
        return super()._run(parsed)

    def _faulty(self, login: int | None) -> bool:
        f = self.sim.faults.get(login) if login is not None else None
        return f is not None and f != _NO_FAULTS

    def _dispatch(self, cid: str, ns: str, fn: str, args: tuple, kwargs: dict,
                  epoch: str) -> tuple[str, Any, Any]:
        if not self.replicas:
            return super()._dispatch(cid, ns, fn, args, kwargs, epoch)
        if ns == NS_ADMIN and fn in ADMIN_FUNCTIONS and fn not in ADMIN_READS:
            with self.sim.lock:
                try:
                    return ST_OK, getattr(self.sim, fn)(*args, **kwargs), None
                except Exception as exc:
                    return ST_EXC, [type(exc).__name__, str(exc)], None
                finally:  # a refused call changed nothing, but replaying it is harmless
                    self._log(["admin", fn, list(args), kwargs])
        if ns != NS_MT5 or fn not in MT5_FUNCTIONS or fn == "last_error" or (epoch and epoch != self.epoch):
            return super()._dispatch(cid, ns, fn, args, kwargs, epoch)
        if fn in READ_FUNCTIONS:
            sess = self._sessions.get(cid)
            if sess is None or not self._faulty(sess.terminal._current()):
                return super()._dispatch(cid, ns, fn, args, kwargs, epoch)
        # A call that changes the world (or may: a fault acting on a read): logged.
        sess = self._session(cid, create=not epoch or fn in ("initialize", "login"))
        if sess is None:
            return ST_EPOCH, None, None
        with sess.lock:
            sess.calls += 1
            sess.last_seen = time.monotonic()
            term = sess.terminal
            if self.tick_hz > 0 and fn in ("order_send", "order_check"):
                self._catch_up()
            term._latency()  # an injected latency sleeps outside the world lock
            with self.sim.lock:
                term._skip_latency = True
                try:
                    result = getattr(term, fn)(*args, **kwargs)
                    return ST_OK, result, term.last_error()
                except Exception as exc:
                    return ST_EXC, [type(exc).__name__, str(exc)], term.last_error()
                finally:
                    term._skip_latency = False
                    self._log(["mt5", cid, fn, list(args), kwargs])

    def _replica_for(self, parsed: tuple) -> _Replica | None:
        """The replica to answer this request, or None: the main process answers."""
        _env, _rid, cid, ns, fn, args, _kw, epoch = parsed
        if ns == NS_SYS and fn == "digest" and args:
            r = self.replicas[args[0]] if isinstance(args[0], int) and 0 <= args[0] < len(self.replicas) else None
            return r if r is not None and r.live else None
        if ns != NS_MT5 or fn not in READ_FUNCTIONS or epoch != self.epoch or cid in self._in_pool:
            return None
        sess = self._sessions.get(cid)
        if sess is None or sess.lock.locked():
            return None
        login = sess.terminal._current()
        if login is None or self._faulty(login):
            return None
        best = None
        n = len(self.replicas)
        self._rr = (self._rr + 1) % n  # ties: take turns
        for i in range(n):
            r = self.replicas[(self._rr + i) % n]
            if r.live and (best is None or len(r.outstanding) < len(best.outstanding)):
                best = r
        if best is not None:
            sess.calls += 1
            sess.last_seen = time.monotonic()
        return best

    def _forward(self, r: _Replica, parsed: tuple, frames: list) -> None:
        self._flush()  # the replica applies every change made so far before this read
        tag = next(self._tags).to_bytes(8, "little")
        if self._send(r, [b"R", tag, *frames]):
            r.outstanding[tag] = parsed
        else:
            self._rep_router_send(self._run(parsed))

    def _rep_router_send(self, frames: list) -> None:
        self._router.send_multipart(frames, copy=False)  # type: ignore[union-attr]

    # ------------------------------------------------------------------ replicas
    def _welcome(self, r: _Replica) -> None:
        """A replica said hello: send it the world as of now; it gets every later change."""
        with self.sim.lock:
            self._flush()
            with self._sessions_lock:
                terms = {cid: s.terminal for cid, s in self._sessions.items()}
            blob = snapshot(self.sim, terms)
            r.live = True
            r.outstanding.clear()
        if not self._send(r, [b"S", self.epoch.encode(), blob]):
            return

    def _lost(self, r: _Replica, why: str) -> None:
        """A replica is gone: answer its reads here, report it, start another."""
        r.live = False
        pending, r.outstanding = r.outstanding, {}
        for parsed in pending.values():
            self._rep_router_send(self._run(parsed))
        code = r.proc.poll() if r.proc is not None else None
        if r.proc is not None and code is None:
            r.proc.kill()
            code = r.proc.wait(5)
        pid = r.proc.pid if r.proc is not None else None
        if r.restarts < MAX_RESTARTS:
            r.restarts += 1
            print(f"sim server: replica {r.index} (pid {pid}) {why} (exit code {code}); "
                  f"{len(pending)} call(s) answered here; restarting it ({r.restarts}/{MAX_RESTARTS})",
                  file=sys.stderr, flush=True)
            self._spawn(r)
        else:
            print(f"sim server: replica {r.index} (pid {pid}) {why} (exit code {code}); not restarted "
                  f"after {MAX_RESTARTS} restarts: this process serves its calls",
                  file=sys.stderr, flush=True)
            r.proc = None

    def _check_replicas(self) -> None:
        for r in self.replicas:
            if r.proc is not None and r.proc.poll() is not None:
                self._lost(r, "exited")
            elif r.proc is not None and not r.live and time.monotonic() - r.started > 60:
                self._lost(r, "did not start within 60 s")

    def replica_status(self) -> list[dict]:
        """Each replica: index, pid, live, calls served, unanswered calls, restarts."""
        return [{"index": r.index, "pid": r.proc.pid if r.proc is not None else None, "live": r.live,
                 "served": r.served, "outstanding": len(r.outstanding), "restarts": r.restarts}
                for r in self.replicas]

    # ------------------------------------------------------------------ the loop
    def _poll_sockets(self) -> list:
        """The single server's sockets, plus the replicas' answers (rep) when there are any."""
        return super()._poll_sockets() + ([self._rep] if self.replicas and self._rep is not None else [])

    def _on_turn(self, events: dict, now: float) -> None:
        """Replica upkeep each turn: restart dead ones, flush the change log, heartbeat them,
        and pass their answers back to the clients."""
        if not self.replicas:
            return
        if now >= self._next_check:
            self._check_replicas()
            self._next_check = now + 0.1
        self._flush()
        if now >= self._next_beat:
            for r in self.replicas:
                if r.live:
                    self._send(r, [b"H"])
            self._next_beat = now + HEARTBEAT_S
        if self._rep in events:
            assert self._router is not None and self._rep is not None
            while True:
                try:
                    frames = self._rep.recv_multipart(zmq.NOBLOCK, copy=False)
                except zmq.Again:
                    break
                r = self._by_ident.get(frames[0].bytes)
                kind = frames[1].bytes if len(frames) > 1 else b""
                if r is None:
                    continue
                if kind == b"P" and len(frames) > 3:
                    if r.outstanding.pop(frames[2].bytes, None) is not None:
                        r.served += 1
                        self._router.send_multipart(frames[3:], copy=False)
                elif kind == b"hello":
                    self._welcome(r)

    def _route(self, parsed: tuple, frames: list[bytes]) -> None:
        """A read a replica can answer goes to it; everything else as the single server does."""
        r = self._replica_for(parsed) if self.replicas else None
        if r is not None:
            self._forward(r, parsed, frames)
        else:
            super()._route(parsed, frames)

    def _ping(self) -> dict:
        info = super()._ping()
        info["processes"] = len(self.replicas) + 1
        info["main_served"] = self.main_served
        info["replicas"] = self.replica_status()
        return info
