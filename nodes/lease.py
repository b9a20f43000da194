"""The account lease held by the one node that may trade an account (invariant 6).

A node must hold its account's lease in the store to send any order for it. The lease
names its holder (node, host, pid), carries an *epoch* that grows with every new holder
(a fencing token) and an expiry that the holder renews with its heartbeat.

The copy path never reads the store for this: the holder keeps two local deadlines, one
on the monotonic clock and one on the wall clock, both ``ttl - safety margin`` after the
moment it *asked* for the renewal (so they can only be earlier than the store's expiry),
and ``check()`` compares them with the clocks: two clock reads per order. Past either
deadline (the node was frozen, its host lost the store, a newer holder exists) the node
renews before it sends anything; a renewal the store refuses means another process holds
the account, and ``LeaseLost`` stops the node.

A process on the same host whose holder pid is gone (a crash, kill -9) takes the lease
at once by compare-and-swap on the epoch; any other contender waits for the expiry.
The residual window is the few microseconds between ``check()`` and ``order_send``: a
process frozen exactly there and resumed after another took over could still send one
order. MT5 has no way to fence a request on the broker's side; the window is as small as
the node can make it.
"""
from __future__ import annotations

import socket
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import psutil

from db import StoreUnavailable, now_ms


class LeaseLost(RuntimeError):
    """This process no longer holds (or never got) its account's lease: it must not trade."""


class LeaseHeld(RuntimeError):
    """Another live process holds the lease; ``lease`` is its stored document."""

    def __init__(self, lease: dict[str, Any]) -> None:
        self.lease = lease
        super().__init__(describe_holder(lease))


def describe_holder(lease: dict[str, Any] | None, *, now: int | None = None) -> str:
    """``"host VPS-1, pid 1234, node H, since 2026-11-30T12:00:00Z (expires in 8.2 s)"``."""
    if not lease:
        return "nobody"
    holder = lease.get("holder") or {}
    since = lease.get("since_ms")
    since_txt = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(since / 1000)) if since else "?"
    expires = int(lease.get("expires_ms", 0))
    left = (expires - (now if now is not None else now_ms())) / 1000
    when = "released" if expires == 0 else (f"expires in {left:.1f} s" if left > 0 else f"expired {-left:.0f} s ago")
    return (f"host {holder.get('host', '?')}, pid {holder.get('pid', '?')}, node {holder.get('node', '?')}, "
            f"since {since_txt} (epoch {lease.get('epoch')}, {when})")


@dataclass(frozen=True)
class LeaseTiming:
    """Lease time constants in milliseconds.

    ``ttl_ms``: how long a renewal keeps the lease; ``margin_ms``: how much earlier than
    the store's expiry the holder stops trading (covers clock skew between hosts and the
    time a renewal takes); ``renew_every_ms``: how often the holder renews (the heartbeat).
    """

    ttl_ms: int = 10_000
    margin_ms: int = 2_000
    renew_every_ms: int = 1_000

    def __post_init__(self) -> None:
        if not 0 < self.margin_ms < self.ttl_ms or self.renew_every_ms <= 0:
            raise ValueError(f"lease timing needs 0 < margin_ms < ttl_ms and renew_every_ms > 0, got {self}")


def holder_is_dead_here(lease: dict[str, Any], host: str, *, pid_alive: Callable[[int, int | None], bool] | None = None) -> bool:
    """True when the lease's holder ran on ``host`` and its process is gone.

    Only a process on the same host can tell; ``create_ms`` (the holder's process start
    time) guards against a reused pid.
    """
    holder = lease.get("holder") or {}
    if holder.get("host") != host or not isinstance(holder.get("pid"), int):
        return False
    return not (pid_alive or _pid_alive)(holder["pid"], holder.get("create_ms"))


def _pid_alive(pid: int, create_ms: int | None) -> bool:
    try:
        proc = psutil.Process(pid)
        if proc.status() == psutil.STATUS_ZOMBIE:
            return False
        return create_ms is None or abs(int(proc.create_time() * 1000) - int(create_ms)) < 1000
    except psutil.Error:
        return False


class AccountLease:
    """One process's claim on one account's lease.

    ``acquire()`` once (or ``wait()`` as a standby), then ``renew()`` with every
    heartbeat, ``check()`` before every order, ``release()`` on a clean exit.
    """

    def __init__(self, store: Any, account: str, *, node: str, role: str, timing: LeaseTiming = LeaseTiming(),
                 host: str | None = None, clock: Callable[[], float] = time.monotonic,
                 wall_ms: Callable[[], int] = now_ms) -> None:
        self.store = store
        self.account = account
        self.host = host or socket.gethostname()
        self.timing = timing
        self.clock = clock
        self.wall_ms = wall_ms
        me = psutil.Process()
        self.holder = {"node": node, "host": self.host, "pid": me.pid, "role": role,
                       "create_ms": int(me.create_time() * 1000)}
        self.holder_id = f"{self.host}:{me.pid}:{uuid.uuid4().hex[:12]}"
        self.epoch: int | None = None
        self.lease: dict[str, Any] | None = None
        self.lost: str | None = None
        self._mono_deadline = 0.0
        self._wall_deadline = 0
        self._last_renew = -1e18

    # ------------------------------------------------------------------ claim
    def try_acquire(self) -> bool:
        """One attempt; True when this process holds the lease now. Raises StoreUnavailable."""
        asked_mono, asked_wall = self.clock(), self.wall_ms()
        current = self.store.get_lease(self.account)
        steal = None
        if (current is not None and current.get("holder_id") != self.holder_id
                and int(current.get("expires_ms", 0)) > asked_wall and holder_is_dead_here(current, self.host)):
            steal = int(current["epoch"])  # its process is gone: no need to wait for the expiry
        lease, ok = self.store.acquire_lease(self.account, self.holder_id, self.holder, ttl_ms=self.timing.ttl_ms,
                                             now_ms=asked_wall, steal_epoch=steal)
        self.lease = lease
        if ok:
            self.epoch = int(lease["epoch"])
            self.lost = None
            self._granted(asked_mono, asked_wall)
        return ok

    def acquire(self) -> dict[str, Any]:
        """Take the lease now or raise ``LeaseHeld`` naming the holder."""
        if not self.try_acquire():
            assert self.lease is not None
            raise LeaseHeld(self.lease)
        assert self.lease is not None
        return self.lease

    def wait(self, should_stop: Callable[[], bool], on_wait: Callable[[dict[str, Any] | None], None],
             *, poll_s: float = 0.5, sleep: Callable[[float], Any] = time.sleep) -> bool:
        """Standby: poll until the lease is ours (True) or ``should_stop()`` (False).

        ``on_wait(current_lease)`` runs on every poll (the node publishes its STANDBY
        status there). A store that is down is waited out, never treated as a free lease.
        """
        while not should_stop():
            try:
                if self.try_acquire():
                    return True
                on_wait(self.lease)
            except StoreUnavailable:
                on_wait(None)
            sleep(poll_s)
        return False

    # ------------------------------------------------------------------ keep
    def renew(self, *, force: bool = False) -> bool:
        """Extend the lease (at most every ``renew_every_ms`` unless ``force``).

        False and ``lost`` set when the store says another holder exists; a store that
        is down raises StoreUnavailable and the local deadlines simply run out.
        """
        if self.epoch is None or self.lost:
            return False
        now = self.clock()
        if not force and (now - self._last_renew) * 1000 < self.timing.renew_every_ms:
            return True
        asked_wall = self.wall_ms()
        lease = self.store.renew_lease(self.account, self.holder_id, self.epoch, ttl_ms=self.timing.ttl_ms, now_ms=asked_wall)
        if lease is None:
            current = self._quiet_get()
            self.lost = f"lease of {self.account!r} lost to {describe_holder(current)}"
            self.lease = current
            return False
        self.lease = lease
        self._granted(now, asked_wall)
        return True

    def check(self) -> None:
        """Before every order: raise ``LeaseLost`` unless this process may trade now.

        Two clock reads while the lease is fresh; past a local deadline one renewal.
        """
        if self.lost:
            raise LeaseLost(self.lost)
        if self.epoch is None:
            raise LeaseLost(f"lease of {self.account!r} not acquired")
        if self.clock() < self._mono_deadline and self.wall_ms() < self._wall_deadline:
            return
        try:
            renewed = self.renew(force=True)
        except StoreUnavailable as exc:
            raise LeaseLost(f"lease of {self.account!r} expired locally and the store cannot renew it: {exc}") from None
        if not renewed:
            raise LeaseLost(self.lost or f"lease of {self.account!r} lost")

    @property
    def held(self) -> bool:
        """Cheap: the lease is ours and fresh by both local clocks."""
        return (self.epoch is not None and not self.lost
                and self.clock() < self._mono_deadline and self.wall_ms() < self._wall_deadline)

    def release(self) -> None:
        """Give the lease up on a clean exit so a successor need not wait; never raises."""
        if self.epoch is None or self.lost:
            return
        try:
            self.store.release_lease(self.account, self.holder_id, self.epoch)
        except StoreUnavailable:
            pass
        self.epoch = None

    def info(self) -> dict[str, Any]:
        """For the node's status: epoch, host, seconds left locally."""
        left = max(0.0, self._mono_deadline - self.clock()) if self.epoch is not None else 0.0
        return {"epoch": self.epoch, "host": self.host, "held": self.held, "valid_s": round(left, 1), "lost": self.lost}

    # ------------------------------------------------------------------ internals
    def _granted(self, asked_mono: float, asked_wall: int) -> None:
        usable_ms = self.timing.ttl_ms - self.timing.margin_ms
        self._mono_deadline = asked_mono + usable_ms / 1000
        self._wall_deadline = asked_wall + usable_ms
        self._last_renew = asked_mono

    def _quiet_get(self) -> dict[str, Any] | None:
        try:
            return self.store.get_lease(self.account)
        except StoreUnavailable:
            return None
