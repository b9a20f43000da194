"""Serve one in-process Simulator over ZeroMQ (ROUTER), one terminal per client.

Why this shape:
* ROUTER + request ids (clients use DEALER) lets many clients talk at once and lets a
  client that timed out simply send again -- no REQ lockstep that wedges after a lost reply.
* Calls that can be slow (an injected latency fault on the account, history and rates
  queries, admin calls) run on a small worker pool so they do not stall every other
  terminal; every other call runs at once on the socket thread, which saves two thread
  hand-offs per call (with 20 busy clients on 2 cores: p50 0.9 -> 0.5 ms, p99 19 -> 3 ms,
  docs/benchmarks.md). Calls of one client stay in order: while one of its calls is in the
  pool, its next calls queue behind it, and a per-session lock serialises them, like the
  single IPC channel of a real terminal.
* Every engine call holds ``sim.lock`` (terminals take it themselves; admin calls and the
  ticker that advances the wall clock take it here).
* The reply carries the terminal's ``last_error()`` so the client answers ``last_error()``
  locally, and an *epoch* (server instance id) so a client notices a restarted server and
  re-initialises instead of talking to a fresh, unbound terminal.
"""
from __future__ import annotations

import queue
import threading
import time
import traceback
import uuid
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Any

import zmq

from sim.client import (
    ADMIN_FUNCTIONS,
    MT5_FUNCTIONS,
    NS_ADMIN,
    NS_MT5,
    NS_SYS,
    PROTOCOL,
    ST_EPOCH,
    ST_EXC,
    ST_OK,
    CodecError,
    dumps,
    encode_reply,
    loads,
)

_REPLY_ENDPOINT = "inproc://sim-server-replies-"
# Terminal calls that may take long on their own (big answers): always on the worker pool.
SLOW_FUNCTIONS = frozenset({"history_deals_get", "history_orders_get", "history_deals_total", "history_orders_total",
                            "copy_rates_from", "copy_rates_from_pos", "copy_rates_range", "copy_ticks_from",
                            "copy_ticks_range"})


@dataclass
class _Session:
    """A client's own terminal; ``lock`` keeps its calls in arrival order."""
    terminal: Any
    lock: threading.Lock = field(default_factory=threading.Lock)
    calls: int = 0
    last_seen: float = 0.0


class SimServer:
    """ZeroMQ front end of a Simulator.

    ``tick_hz > 0``: the world clock follows the wall clock (``set_time(utc now)`` at start,
    then ``advance(elapsed)`` at ``tick_hz``).  ``tick_hz == 0``: the clock stays at the
    world's own start time and moves only through admin ``advance``/``set_time`` -- the
    deterministic mode tests and rehearsals of exact scenarios use.
    """

    def __init__(self, sim: Any, endpoint: str = "tcp://127.0.0.1:5570",
                 tick_hz: float = 10.0, workers: int = 8, session_ttl: float = 900.0,
                 context: zmq.Context | None = None) -> None:
        if tick_hz < 0:
            raise ValueError("tick_hz must be >= 0")
        self.sim = sim
        self.requested_endpoint = endpoint
        self.endpoint = endpoint
        self.tick_hz = float(tick_hz)
        self.session_ttl = float(session_ttl)
        self.epoch = uuid.uuid4().hex
        self._ctx = context or zmq.Context()
        self._own_ctx = context is None
        # workers == 0: handle requests on the router thread (lowest latency, but one slow
        # call -- e.g. an injected latency fault -- then delays every client).
        self.workers = max(0, int(workers))
        self._jobs: queue.SimpleQueue = queue.SimpleQueue()
        self._worker_threads: list[threading.Thread] = []
        self._sessions: dict[str, _Session] = {}
        self._sessions_lock = threading.Lock()
        self._in_pool: dict[str, int] = {}  # client id -> its calls queued or running on the pool
        self._stop = threading.Event()
        self._reply_ep = _REPLY_ENDPOINT + self.epoch
        self._router: zmq.Socket | None = None
        self._pull: zmq.Socket | None = None
        self._ticker: threading.Thread | None = None
        self._loop_thread: threading.Thread | None = None

    # ------------------------------------------------------------------ lifecycle
    def bind(self) -> str:
        """Bind the sockets and start the ticker; returns the concrete endpoint."""
        self._router = self._ctx.socket(zmq.ROUTER)
        self._router.setsockopt(zmq.LINGER, 0)
        # A reply to a client that vanished is dropped instead of raising.
        self._router.setsockopt(zmq.ROUTER_MANDATORY, 0)
        self._router.bind(self.requested_endpoint)
        self.endpoint = self._router.getsockopt_string(zmq.LAST_ENDPOINT)
        self._pull = self._ctx.socket(zmq.PULL)
        self._pull.setsockopt(zmq.LINGER, 0)
        self._pull.bind(self._reply_ep)
        for i in range(self.workers):
            t = threading.Thread(target=self._work, name=f"sim-rpc-{i}", daemon=True)
            t.start()
            self._worker_threads.append(t)
        if self.tick_hz > 0:
            with self.sim.lock:
                self.sim.set_time(datetime.now(timezone.utc))
            self._ticker = threading.Thread(target=self._tick_loop, name="sim-ticker",
                                            daemon=True)
            self._ticker.start()
        return self.endpoint

    def serve_forever(self) -> None:
        """Route requests and replies until :meth:`stop` is called (any thread)."""
        assert self._router is not None and self._pull is not None, "call bind() first"
        poller = zmq.Poller()
        for sock in self._poll_sockets():
            poller.register(sock, zmq.POLLIN)
        router, pull = self._router, self._pull
        next_reap = time.monotonic() + min(5.0, self.session_ttl)
        while not self._stop.is_set():
            events = dict(poller.poll(100))
            now = time.monotonic()
            if now >= next_reap:
                self._reap()
                next_reap = now + min(5.0, self.session_ttl)
            self._on_turn(events, now)
            if pull in events:
                while True:
                    try:
                        router.send_multipart(pull.recv_multipart(zmq.NOBLOCK, copy=False),
                                              copy=False)
                    except zmq.Again:
                        break
            if router in events:
                while True:
                    try:
                        frames = router.recv_multipart(zmq.NOBLOCK)
                    except zmq.Again:
                        break
                    parsed = self._parse(frames)
                    if parsed is not None:
                        self._route(parsed, frames)
        self._close()

    def _poll_sockets(self) -> list:
        """The sockets the loop waits on: clients (router) and finished replies (pull)."""
        return [self._router, self._pull]

    def _on_turn(self, events: dict, now: float) -> None:
        """Once per loop turn, before requests are read (a subclass's upkeep; none here)."""

    def _route(self, parsed: tuple, frames: list[bytes]) -> None:
        """Answer one parsed request: inline (fast calls, or no worker threads) or queued
        for the worker pool."""
        assert self._router is not None
        if not self._worker_threads or self._inline(parsed):
            self._router.send_multipart(self._run(parsed), copy=False)
            return
        cid = parsed[2]
        with self._sessions_lock:
            self._in_pool[cid] = self._in_pool.get(cid, 0) + 1
        self._jobs.put(parsed)

    def start(self) -> str:
        """bind() and serve in a background thread (for embedding and tests)."""
        ep = self.bind()
        self._loop_thread = threading.Thread(target=self.serve_forever, name="sim-router",
                                             daemon=True)
        self._loop_thread.start()
        return ep

    def stop(self, join: bool = True) -> None:
        self._stop.set()
        if join and self._loop_thread is not None:
            self._loop_thread.join(5)

    def _close(self) -> None:
        for _ in self._worker_threads:
            self._jobs.put(None)
        for t in self._worker_threads:
            t.join(5)
        if self._ticker is not None:
            self._ticker.join(2)
        for s in (self._router, self._pull):
            if s is not None:
                s.close(linger=0)
        # A worker still asleep in an injected latency holds a socket; term() would wait
        # for it, so leave that context to process exit.
        if self._own_ctx and not any(t.is_alive() for t in self._worker_threads):
            self._ctx.term()

    # ------------------------------------------------------------------ ticker
    def _tick_loop(self) -> None:
        period = 1.0 / self.tick_hz
        failed = False
        while not self._stop.wait(period):
            try:
                self._catch_up()
            except Exception:  # keep serving; report once, not at 10 Hz
                if not failed:
                    traceback.print_exc()
                    failed = True

    def _catch_up(self) -> None:
        """Advance the world clock to the wall clock (realtime mode only).

        The ticker does it at ``tick_hz``; a trade request does it too, so deal and position
        times carry the millisecond the order executed, as on a real server, instead of the
        last tick's time (which would add up to a tick period to every measured latency).
        """
        with self.sim.lock:
            lag_ms = time.time_ns() // 1_000_000 - self.sim.now_ms()
            if lag_ms > 0:  # absolute, so building the world or a slow step never leaves a lag behind
                self.sim.advance(lag_ms / 1000.0)

    # ------------------------------------------------------------------ requests
    # ------------------------------------------------------------------ requests
    def _work(self) -> None:
        """Worker thread: run queued requests, hand replies to the router thread."""
        push = self._ctx.socket(zmq.PUSH)
        push.setsockopt(zmq.LINGER, 0)
        push.connect(self._reply_ep)
        try:
            while True:
                parsed = self._jobs.get()
                if parsed is None:
                    return
                try:
                    push.send_multipart(self._run(parsed), copy=False)
                except Exception:  # never lose a worker to one bad request
                    traceback.print_exc()
                finally:
                    with self._sessions_lock:
                        left = self._in_pool.get(parsed[2], 1) - 1
                        if left > 0:
                            self._in_pool[parsed[2]] = left
                        else:
                            self._in_pool.pop(parsed[2], None)
        finally:
            push.close(linger=0)

    def _handle(self, frames: list[bytes]) -> list | None:
        """Run one request; return the reply frames (None: unparseable, nobody to answer)."""
        parsed = self._parse(frames)
        return None if parsed is None else self._run(parsed)

    @staticmethod
    def _parse(frames: list[bytes]) -> tuple | None:
        """(envelope, rid, cid, ns, fn, args, kwargs, epoch), or None: not our protocol."""
        # Envelope: [identity, body...] from DEALER, [identity, b"", body...] from REQ.
        if len(frames) < 2:
            return None
        envelope = frames[:2] if frames[1] == b"" else frames[:1]
        body = frames[len(envelope):]
        try:
            rid, cid, ns, fn, args, kwargs, epoch = loads(body)
            if not isinstance(args, list) or not isinstance(kwargs, dict):
                raise CodecError("args must be a list and kwargs a dict")
        except (CodecError, TypeError, ValueError):
            return None  # no rid to answer to
        return envelope, rid, str(cid), ns, fn, args, kwargs, epoch

    def _inline(self, parsed: tuple) -> bool:
        """May this call run on the socket thread? Not when it may be slow (a history or
        rates query, an admin call, a latency fault on the account) and not while an
        earlier call of the same client is still on the pool (calls stay in order)."""
        _env, _rid, cid, ns, fn, _a, _k, _e = parsed
        if ns == NS_SYS:
            return True
        if ns != NS_MT5 or fn in SLOW_FUNCTIONS or cid in self._in_pool:
            return False
        sess = self._sessions.get(cid)
        if sess is None:
            return True
        login = sess.terminal._current()
        fault = self.sim.faults.get(login) if login is not None else None
        return fault is None or fault.latency_ms <= 0

    def _run(self, parsed: tuple) -> list:
        envelope, rid, cid, ns, fn, args, kwargs, epoch = parsed
        try:
            reply = self._dispatch(cid, ns, fn, tuple(args), kwargs, epoch)
        except Exception as exc:  # a bug, not a client error: answer instead of going silent
            reply = (ST_EXC, [type(exc).__name__, str(exc)], None)
        status, payload, err = reply
        try:
            out = encode_reply(rid, status, payload, err, self.epoch)
        except CodecError as exc:
            out = dumps([rid, ST_EXC, ["TypeError", str(exc)], err, self.epoch])
        return envelope + out

    def _session(self, cid: str, create: bool) -> _Session | None:
        with self._sessions_lock:
            s = self._sessions.get(cid)
            if s is None and create:
                s = self._sessions[cid] = _Session(self.sim.terminal())
            return s

    def _reap(self) -> None:
        """Forget terminals idle longer than ``session_ttl`` (CLI runs leave one each)."""
        cutoff = time.monotonic() - self.session_ttl
        with self._sessions_lock:
            for cid in [c for c, s in self._sessions.items()
                        if s.last_seen < cutoff and not s.lock.locked()]:
                del self._sessions[cid]

    def _dispatch(self, cid: str, ns: str, fn: str, args: tuple, kwargs: dict,
                  epoch: str) -> tuple[str, Any, Any]:
        if ns == NS_MT5:
            if fn not in MT5_FUNCTIONS:
                return ST_EXC, ["AttributeError", f"module has no attribute {fn!r}"], None
            if epoch and epoch != self.epoch:
                return ST_EPOCH, None, None     # restarted server: client must re-initialise
            # A client that has talked to this server before (epoch set) but has no session
            # any more was reaped; tell it to re-initialise rather than answer unbound.
            sess = self._session(cid, create=not epoch or fn in ("initialize", "login"))
            if sess is None:
                return ST_EPOCH, None, None
            with sess.lock:
                sess.calls += 1
                sess.last_seen = time.monotonic()
                term = sess.terminal
                # Not under sim.lock here: the terminal takes it itself, and sleeps an
                # injected latency *outside* it -- holding it would stall the whole world.
                # The session lock makes (call, last_error) atomic for this terminal.
                if self.tick_hz > 0 and fn in ("order_send", "order_check"):
                    self._catch_up()
                try:
                    result = getattr(term, fn)(*args, **kwargs)
                    err = term.last_error()
                except Exception as exc:
                    return ST_EXC, [type(exc).__name__, str(exc)], term.last_error()
            return ST_OK, result, err
        if ns == NS_ADMIN:
            if fn not in ADMIN_FUNCTIONS:
                return ST_EXC, ["AttributeError", f"no admin call {fn!r}"], None
            try:
                with self.sim.lock:
                    return ST_OK, getattr(self.sim, fn)(*args, **kwargs), None
            except Exception as exc:
                return ST_EXC, [type(exc).__name__, str(exc)], None
        if ns == NS_SYS and fn == "ping":
            return ST_OK, self._ping(), None
        if ns == NS_SYS and fn == "digest":
            if args:  # a replica that is up answers itself (sim.cluster); here: none is
                return ST_EXC, ["ValueError", f"no live replica {args[0]!r}"], None
            from sim.cluster import world_digest
            return ST_OK, world_digest(self.sim), None
        return ST_EXC, ["ValueError", f"unknown call {ns}.{fn}"], None

    def _ping(self) -> dict:
        """What ``AdminClient.ping()`` returns: protocol, epoch, endpoint, tick_hz, clients."""
        with self._sessions_lock:
            clients = len(self._sessions)
        return {"protocol": PROTOCOL, "epoch": self.epoch, "endpoint": self.endpoint,
                "tick_hz": self.tick_hz, "clients": clients, "processes": 1}
