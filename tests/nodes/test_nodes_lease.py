"""nodes/lease.py: the account lease (invariant 6) against a real store (SQLite and
mongomock), with injected monotonic and wall clocks; no real waiting."""
from __future__ import annotations

import os
import subprocess
import sys
import uuid

import psutil
import pytest

from db import StoreUnavailable, open_store
from nodes.lease import AccountLease, LeaseHeld, LeaseLost, LeaseTiming, describe_holder, holder_is_dead_here

T0_WALL = 1_700_000_000_000  # a realistic UTC epoch in ms
TIMING = LeaseTiming(ttl_ms=10_000, margin_ms=2_000, renew_every_ms=1_000)
ACCOUNT = "S1"


class Clocks:
    """A monotonic clock (seconds) and a wall clock (epoch ms) moved by the test."""

    def __init__(self) -> None:
        self.mono = 100.0
        self.wall = T0_WALL

    def clock(self) -> float:
        return self.mono

    def wall_ms(self) -> int:
        return self.wall

    def advance(self, seconds: float, *, wall: bool = True, mono: bool = True) -> None:
        if mono:
            self.mono += seconds
        if wall:
            self.wall += int(round(seconds * 1000))


class Counting:
    """Proxy over a store counting every method call by name."""

    def __init__(self, inner) -> None:
        self._inner = inner
        self.calls: list[str] = []

    def __getattr__(self, name):
        attr = getattr(self._inner, name)
        if not callable(attr):
            return attr

        def counted(*a, **kw):
            self.calls.append(name)
            return attr(*a, **kw)
        return counted

    def count(self, name: str | None = None) -> int:
        return len(self.calls) if name is None else self.calls.count(name)


@pytest.fixture(params=["sqlite", "mongomock"])
def store(request, tmp_path):
    if request.param == "sqlite":
        s = open_store(f"sqlite:///{tmp_path / 's.db'}")
    else:
        s = open_store(f"mongomock://leasetest_{uuid.uuid4().hex[:10]}")
    yield s
    s.close()


@pytest.fixture
def clocks():
    return Clocks()


def make(store, clocks, *, host="VPS-1", node="S1", role="slave", timing=TIMING):
    return AccountLease(store, ACCOUNT, node=node, role=role, timing=timing, host=host,
                        clock=clocks.clock, wall_ms=clocks.wall_ms)


def dead_pid() -> int:
    proc = subprocess.Popen([sys.executable, "-c", "pass"])
    proc.wait()
    assert not psutil.pid_exists(proc.pid) or psutil.Process(proc.pid).status() == psutil.STATUS_ZOMBIE
    return proc.pid


# ------------------------------------------------------------------ acquire
def test_acquire_gives_epoch_1_and_held(store, clocks):
    lease = make(store, clocks)
    assert lease.held is False
    doc = lease.acquire()
    assert doc["epoch"] == 1 and lease.epoch == 1 and lease.held is True
    stored = store.get_lease(ACCOUNT)
    assert stored["holder_id"] == lease.holder_id and stored["epoch"] == 1
    assert stored["holder"]["host"] == "VPS-1" and stored["holder"]["pid"] == os.getpid()
    assert stored["expires_ms"] == T0_WALL + TIMING.ttl_ms  # judged with the injected wall clock
    assert lease.info()["epoch"] == 1 and lease.info()["held"] is True


def test_second_holder_gets_lease_held_naming_host_and_pid(store, clocks):
    first = make(store, clocks, host="VPS-1")
    first.acquire()
    second = make(store, clocks, host="VPS-2", node="S1b")
    with pytest.raises(LeaseHeld) as info:
        second.acquire()
    assert info.value.lease["holder_id"] == first.holder_id
    text = str(info.value)
    assert "host VPS-1" in text and f"pid {os.getpid()}" in text and "epoch 1" in text
    assert second.epoch is None and second.held is False
    with pytest.raises(LeaseLost):
        second.check()
    assert store.get_lease(ACCOUNT)["holder_id"] == first.holder_id  # unchanged


# ------------------------------------------------------------------ check
def test_check_while_fresh_makes_no_store_call(store, clocks):
    counting = Counting(store)
    lease = make(counting, clocks)
    lease.acquire()
    counting.calls.clear()
    for _ in range(50):
        lease.check()
        clocks.advance(0.1)  # up to 5 s of the 8 s usable window
    assert lease.held
    assert counting.count() == 0


def test_check_past_local_deadline_renews_once(store, clocks):
    counting = Counting(store)
    lease = make(counting, clocks)
    lease.acquire()
    counting.calls.clear()
    usable_s = (TIMING.ttl_ms - TIMING.margin_ms) / 1000
    clocks.advance(usable_s - 0.01)
    lease.check()
    assert counting.count() == 0
    clocks.advance(0.01)  # exactly at the deadline: not fresh any more
    assert lease.held is False
    lease.check()
    assert counting.calls == ["renew_lease"]
    assert lease.held is True
    assert store.get_lease(ACCOUNT)["expires_ms"] == clocks.wall + TIMING.ttl_ms
    counting.calls.clear()
    lease.check()  # fresh again
    assert counting.count() == 0


def test_check_after_takeover_raises_lease_lost_naming_new_holder_and_stays_lost(store, clocks):
    first = make(store, clocks, host="VPS-1")
    first.acquire()
    clocks.advance(TIMING.ttl_ms / 1000 + 0.5)  # frozen past the store's expiry
    second = make(store, clocks, host="VPS-2", node="S1b")
    assert second.try_acquire() is True and second.epoch == 2

    counting = Counting(store)
    first.store = counting
    with pytest.raises(LeaseLost) as info:
        first.check()
    assert "VPS-2" in str(info.value) and "epoch 2" in str(info.value)
    assert first.lost and "VPS-2" in first.lost
    assert first.held is False and first.renew(force=True) is False
    calls = counting.count()
    for _ in range(3):
        with pytest.raises(LeaseLost):
            first.check()
    assert counting.count() == calls  # lost for good, without asking the store again
    first.release()  # a lost lease is not released on the new holder's behalf
    assert store.get_lease(ACCOUNT)["holder_id"] == second.holder_id
    assert store.get_lease(ACCOUNT)["expires_ms"] > clocks.wall
    second.check()


def test_wall_clock_jump_forces_renewal_with_monotonic_unchanged(store, clocks):
    counting = Counting(store)
    lease = make(counting, clocks)
    lease.acquire()
    counting.calls.clear()
    clocks.advance(9.0, mono=False)  # host suspended: the monotonic clock did not move
    assert lease.held is False
    lease.check()
    assert counting.calls == ["renew_lease"]
    assert lease.held is True


def test_monotonic_jump_alone_also_forces_renewal(store, clocks):
    counting = Counting(store)
    lease = make(counting, clocks)
    lease.acquire()
    counting.calls.clear()
    clocks.advance(9.0, wall=False)
    lease.check()
    assert counting.calls == ["renew_lease"]


def test_check_when_store_down_past_deadline_raises_lease_lost(store, clocks):
    lease = make(store, clocks)
    lease.acquire()

    class Down:
        def __getattr__(self, name):
            def fail(*a, **kw):
                raise StoreUnavailable("down")
            return fail

    lease.store = Down()
    lease.check()  # fresh: the store is not asked
    clocks.advance(8.0)
    with pytest.raises(LeaseLost, match="cannot renew"):
        lease.check()


# ------------------------------------------------------------------ renew
def test_renew_is_rate_limited_unless_forced(store, clocks):
    counting = Counting(store)
    lease = make(counting, clocks)
    lease.acquire()
    counting.calls.clear()
    assert lease.renew() is True
    clocks.advance(0.5)
    assert lease.renew() is True
    assert counting.count("renew_lease") == 0
    assert lease.renew(force=True) is True
    assert counting.count("renew_lease") == 1
    clocks.advance(0.9)  # 0.9 s since the forced renewal
    assert lease.renew() is True
    assert counting.count("renew_lease") == 1
    clocks.advance(0.1)
    assert lease.renew() is True
    assert counting.count("renew_lease") == 2
    assert store.get_lease(ACCOUNT)["renewed_ms"] == clocks.wall


def test_renew_before_acquire_is_false_without_store_call(store, clocks):
    counting = Counting(store)
    lease = make(counting, clocks)
    assert lease.renew(force=True) is False and counting.count() == 0


# ------------------------------------------------------------------ release
def test_release_lets_a_new_holder_acquire_at_once_with_higher_epoch(store, clocks):
    first = make(store, clocks, host="VPS-1")
    first.acquire()
    first.release()
    assert first.epoch is None and first.held is False
    with pytest.raises(LeaseLost):
        first.check()
    second = make(store, clocks, host="VPS-2", node="S1b")
    assert second.try_acquire() is True  # no waiting for the expiry
    assert second.epoch == 2
    first.release()  # idempotent, harmless
    assert store.get_lease(ACCOUNT)["holder_id"] == second.holder_id


def test_same_holder_reacquire_after_release_is_a_new_tenure(store, clocks):
    lease = make(store, clocks)
    lease.acquire()
    lease.release()
    assert lease.try_acquire() is True and lease.epoch == 2


# ------------------------------------------------------------------ wait (standby)
def test_wait_returns_true_once_the_holder_expires_and_reports_meanwhile(store, clocks):
    holder = make(store, clocks, host="VPS-1")
    holder.acquire()
    expires = store.get_lease(ACCOUNT)["expires_ms"]
    standby = make(store, clocks, host="VPS-2", node="S1b", role="standby")
    seen, slept = [], []

    def sleep(s):
        slept.append(s)
        clocks.advance(s)

    got = standby.wait(lambda: False, seen.append, poll_s=1.0, sleep=sleep)
    assert got is True
    assert clocks.wall >= expires  # not a moment before the holder's expiry
    assert standby.epoch == 2 and standby.held
    assert len(seen) == len(slept) == 10  # one report per poll while waiting
    assert all(s == 1.0 for s in slept)
    assert all(lease is not None and lease["holder_id"] == holder.holder_id and lease["epoch"] == 1
               for lease in seen)
    assert store.get_lease(ACCOUNT)["holder_id"] == standby.holder_id


def test_wait_returns_false_when_should_stop(store, clocks):
    holder = make(store, clocks, host="VPS-1")
    holder.acquire()
    standby = make(store, clocks, host="VPS-2", role="standby")
    counting = Counting(store)
    standby.store = counting
    assert standby.wait(lambda: True, lambda _: pytest.fail("no poll"), sleep=lambda s: None) is False
    assert counting.count() == 0

    polls = iter([False, False, True])
    seen = []
    assert standby.wait(lambda: next(polls), seen.append, poll_s=0.5, sleep=clocks.advance) is False
    assert len(seen) == 2 and standby.epoch is None
    assert store.get_lease(ACCOUNT)["holder_id"] == holder.holder_id


class Flaky:
    """A real store whose lease calls raise StoreUnavailable for the first ``n`` calls."""

    def __init__(self, inner, n: int) -> None:
        self.inner, self.n, self.raised = inner, n, 0

    def _maybe(self):
        if self.raised < self.n:
            self.raised += 1
            raise StoreUnavailable("store is down")

    def get_lease(self, account):
        self._maybe()
        return self.inner.get_lease(account)

    def acquire_lease(self, *a, **kw):
        self._maybe()
        return self.inner.acquire_lease(*a, **kw)

    def renew_lease(self, *a, **kw):
        return self.inner.renew_lease(*a, **kw)

    def release_lease(self, *a, **kw):
        return self.inner.release_lease(*a, **kw)


def test_store_down_during_wait_is_reported_as_none_not_a_free_lease(store, clocks):
    holder = make(store, clocks, host="VPS-1")
    holder.acquire()
    standby = make(Flaky(store, 3), clocks, host="VPS-2", role="standby")
    seen = []
    stop_after = iter([False] * 5 + [True])
    got = standby.wait(lambda: next(stop_after), seen.append, poll_s=1.0, sleep=clocks.advance)
    assert got is False
    assert seen[:3] == [None, None, None]
    assert [lease["holder_id"] for lease in seen[3:]] == [holder.holder_id] * 2
    assert standby.epoch is None


def test_store_down_with_no_lease_at_all_never_counts_as_acquired(store, clocks):
    standby = make(Flaky(store, 100), clocks, role="standby")
    seen = []
    stop_after = iter([False] * 4 + [True])
    assert standby.wait(lambda: next(stop_after), seen.append, sleep=clocks.advance) is False
    assert seen == [None] * 4 and standby.epoch is None and not standby.held
    with pytest.raises(LeaseLost):
        standby.check()


# ------------------------------------------------------------------ dead holders on this host
def test_holder_is_dead_here():
    gone = dead_pid()
    assert holder_is_dead_here({"holder": {"host": "VPS-1", "pid": gone}}, "VPS-1") is True
    me = psutil.Process()
    alive = {"host": "VPS-1", "pid": os.getpid(), "create_ms": int(me.create_time() * 1000)}
    assert holder_is_dead_here({"holder": alive}, "VPS-1") is False
    assert holder_is_dead_here({"holder": {"host": "VPS-1", "pid": os.getpid()}}, "VPS-1") is False
    # another host: this process cannot tell, so never "dead"
    assert holder_is_dead_here({"holder": {"host": "VPS-2", "pid": gone}}, "VPS-1") is False
    # our pid but another start time: the pid was reused, the holder is gone
    reused = {**alive, "create_ms": alive["create_ms"] - 3_600_000}
    assert holder_is_dead_here({"holder": reused}, "VPS-1") is True
    assert holder_is_dead_here({"holder": {"host": "VPS-1", "pid": "123"}}, "VPS-1") is False
    assert holder_is_dead_here({}, "VPS-1") is False
    assert holder_is_dead_here({"holder": {"host": "VPS-1", "pid": 7}}, "VPS-1",
                               pid_alive=lambda pid, created: False) is True


def test_try_acquire_steals_from_a_dead_same_host_holder(store, clocks):
    ghost = {"node": "S1", "host": "VPS-1", "pid": dead_pid(), "role": "slave"}
    store.acquire_lease(ACCOUNT, "ghost", ghost, ttl_ms=60_000, now_ms=clocks.wall)
    lease = make(store, clocks, host="VPS-1")
    assert lease.try_acquire() is True  # long before the ghost's expiry
    assert lease.epoch == 2 and lease.held
    assert store.get_lease(ACCOUNT)["holder_id"] == lease.holder_id


def test_try_acquire_does_not_steal_from_a_live_or_remote_holder(store, clocks):
    me = psutil.Process()
    live = {"node": "S1", "host": "VPS-1", "pid": me.pid, "role": "slave",
            "create_ms": int(me.create_time() * 1000)}
    store.acquire_lease(ACCOUNT, "live", live, ttl_ms=60_000, now_ms=clocks.wall)
    lease = make(store, clocks, host="VPS-1")
    assert lease.try_acquire() is False and lease.epoch is None
    assert store.get_lease(ACCOUNT)["holder_id"] == "live"


def test_dead_holder_on_another_host_is_waited_out(store, clocks):
    remote = {"node": "S1", "host": "VPS-9", "pid": dead_pid(), "role": "slave"}
    store.acquire_lease(ACCOUNT, "remote", remote, ttl_ms=10_000, now_ms=clocks.wall)
    lease = make(store, clocks, host="VPS-1")
    assert lease.try_acquire() is False
    clocks.advance(10.0)
    assert lease.try_acquire() is True and lease.epoch == 2


# ------------------------------------------------------------------ timing and text
@pytest.mark.parametrize("kw", [dict(ttl_ms=10_000, margin_ms=10_000), dict(ttl_ms=10_000, margin_ms=12_000),
                                dict(ttl_ms=10_000, margin_ms=0), dict(renew_every_ms=0)])
def test_lease_timing_refuses_bad_values(kw):
    with pytest.raises(ValueError):
        LeaseTiming(**kw)


def test_lease_timing_accepts_margin_below_ttl():
    assert LeaseTiming(ttl_ms=10_000, margin_ms=9_999).margin_ms == 9_999


def test_describe_holder():
    assert describe_holder(None) == "nobody"
    lease = {"holder": {"host": "VPS-1", "pid": 42, "node": "S1"}, "epoch": 3,
             "since_ms": T0_WALL, "expires_ms": T0_WALL + 8_200}
    text = describe_holder(lease, now=T0_WALL)
    assert "host VPS-1" in text and "pid 42" in text and "node S1" in text
    assert "epoch 3" in text and "expires in 8.2 s" in text
