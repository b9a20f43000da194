"""One daemon thread per channel: a bounded in-order queue, retry with capped exponential
backoff + jitter, and a max age after which an undeliverable alert is dropped.

One worker per channel means a dead webhook never delays Telegram (and vice versa), and
the caller only ever touches the queue under a short lock.
"""
from __future__ import annotations

import collections
import random
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from .channels import Channel, log_call
from .model import Alert
from .transport import DeliveryError


@dataclass(frozen=True)
class RetryPolicy:
    """Delays 1 s, 2 s, 4 s … up to `cap_s`, each stretched by up to `jitter` (fraction) so a
    fleet of nodes does not hammer a recovering endpoint in lockstep."""

    base_s: float = 1.0
    cap_s: float = 60.0
    jitter: float = 0.2
    max_age_s: float = 3600.0

    def __post_init__(self) -> None:
        if self.base_s <= 0 or self.cap_s < self.base_s:
            raise ValueError("retry policy needs 0 < base_s <= cap_s")
        if self.jitter < 0 or self.max_age_s <= 0:
            raise ValueError("retry policy needs jitter >= 0 and max_age_s > 0")

    def delay(self, attempt: int, rng: random.Random) -> float:
        """Delay before retry number `attempt` (1-based)."""
        raw = min(self.cap_s, self.base_s * (2 ** min(max(attempt - 1, 0), 30)))
        return raw * (1.0 + rng.random() * self.jitter)


@dataclass(frozen=True, slots=True)
class Entry:
    alert: Alert
    protected: bool  # an escalation: the last thing to drop when the queue overflows
    enqueued: float  # dispatcher clock, seconds


class ChannelWorker:
    def __init__(
        self,
        channel: Channel,
        logger: Any,
        capacity: int,
        policy: RetryPolicy,
        clock: Callable[[], float],
        rng: random.Random,
        name: str | None = None,
    ) -> None:
        if capacity < 1:
            raise ValueError("queue capacity must be >= 1")
        self.channel = channel
        self.name = name or channel.name
        self._log = logger
        self._capacity = capacity
        self._policy = policy
        self._clock = clock
        self._rng = rng
        self._q: collections.deque[Entry] = collections.deque()
        self._cond = threading.Condition(threading.Lock())
        self._inflight: Entry | None = None
        self._attempts = 0
        self._stopping = False
        self._aborted = False
        self._deadline: float | None = None  # time.monotonic() by which close() wants us gone
        self._down = False
        self._overflow_reported = 0
        self.enqueued = 0
        self.delivered = 0
        self.dropped_overflow = 0
        self.dropped_escalations = 0
        self.dropped_expired = 0
        self.failed = 0
        self.retries = 0
        self._thread = threading.Thread(target=self._run, name=f"alerts-{self.name}", daemon=True)

    # ---- caller side (must stay cheap) -------------------------------------------------
    def start(self) -> None:
        self._thread.start()

    def put(self, entry: Entry) -> bool:
        with self._cond:
            if self._stopping:
                return False
            q = self._q
            q.append(entry)
            self.enqueued += 1
            if len(q) > self._capacity:
                victim = next((i for i, e in enumerate(q) if not e.protected), None)
                if victim is None:  # all escalations: stay bounded, lose the oldest
                    victim = 0
                    self.dropped_escalations += 1
                del q[victim]
                self.dropped_overflow += 1
            self._cond.notify()
        return True

    def pending(self) -> int:
        with self._cond:
            return len(self._q) + (1 if self._inflight is not None else 0)

    def request_stop(self, deadline: float) -> None:
        """Stop taking alerts; deliver what is queued until `deadline` (time.monotonic())."""
        with self._cond:
            self._stopping = True
            self._deadline = deadline
            self._cond.notify_all()

    def abort(self) -> None:
        with self._cond:
            self._stopping = True
            self._aborted = True
            self._cond.notify_all()

    def join(self, timeout: float | None) -> None:
        if self._thread.is_alive():
            self._thread.join(timeout)

    def is_alive(self) -> bool:
        return self._thread.is_alive()

    def stats(self) -> dict[str, int]:
        with self._cond:
            return {
                "enqueued": self.enqueued,
                "delivered": self.delivered,
                "queued": len(self._q) + (1 if self._inflight is not None else 0),
                "dropped_overflow": self.dropped_overflow,
                "dropped_escalations": self.dropped_escalations,
                "dropped_expired": self.dropped_expired,
                "failed": self.failed,
                "retries": self.retries,
            }

    # ---- worker thread ------------------------------------------------------------------
    def _past_deadline(self) -> bool:
        return self._deadline is not None and time.monotonic() >= self._deadline

    def _next(self) -> tuple[Entry | None, int]:
        """Head of line (the in-flight entry first, so order survives retries)."""
        with self._cond:
            while self._inflight is None and not self._q and not self._stopping:
                self._cond.wait()
            if self._aborted or (self._stopping and self._past_deadline()):
                return None, 0
            if self._inflight is None:
                if not self._q:
                    return None, 0  # stopping and drained
                self._inflight = self._q.popleft()
                self._attempts = 0
            new_drops = self.dropped_overflow - self._overflow_reported
            self._overflow_reported = self.dropped_overflow
            return self._inflight, new_drops

    def _finish(self, counter: str) -> None:
        with self._cond:
            self._inflight = None
            setattr(self, counter, getattr(self, counter) + 1)

    def _say(self, method: str, event: str, **kw: Any) -> None:
        """Diagnostics must never kill the worker, even with a broken logger."""
        try:
            log_call(self._log, method, event, **kw)
        except Exception:
            pass

    def _run(self) -> None:
        while True:
            try:
                if not self._step():
                    return
            except Exception as e:  # e.g. a broken injected clock: keep the worker alive
                self._say("error", "alert worker error", channel=self.name, error=f"{type(e).__name__}: {e}")
                self._sleep(self._policy.base_s)

    def _step(self) -> bool:
        """One delivery attempt for the head of line; False when the worker should exit."""
        entry, new_drops = self._next()
        if entry is None:
            return False
        if new_drops:
            self._say("warning", "alerts dropped, queue full", channel=self.name,
                      dropped=new_drops, capacity=self._capacity)
        a = entry.alert
        age = self._clock() - entry.enqueued
        if age > self._policy.max_age_s:
            self._say("error", "alert dropped, too old to deliver", channel=self.name,
                      account=a.account, rule=a.rule, level=a.level, age_s=round(age, 1),
                      attempts=self._attempts)
            self._finish("dropped_expired")
            return True
        try:
            self.channel.deliver(a)
        except DeliveryError as e:
            err = e
        except Exception as e:  # a bug in a channel must not kill the worker
            err = DeliveryError(f"{type(e).__name__}: {e}", retryable=False)
        else:
            self._finish("delivered")
            if self._down:
                self._down = False
                self._say("info", "alert channel recovered", channel=self.name)
            return True
        if not err.retryable:
            self._say("error", "alert delivery failed", channel=self.name, error=str(err),
                      account=a.account, rule=a.rule, level=a.level)
            self._finish("failed")
            return True
        self._attempts += 1
        self.retries += 1
        delay = err.retry_after if err.retry_after is not None else self._policy.delay(self._attempts, self._rng)
        delay = min(delay, self._policy.max_age_s)
        if not self._down:
            self._down = True
            self._say("warning", "alert channel down, will retry", channel=self.name,
                      error=str(err), retry_in_s=round(delay, 2), queued=self.pending())
        else:
            self._say("debug", "alert retry failed", channel=self.name, error=str(err),
                      attempt=self._attempts, retry_in_s=round(delay, 2))
        self._sleep(delay)
        return True

    def _sleep(self, delay: float) -> None:
        end = time.monotonic() + delay
        with self._cond:
            while not self._aborted:
                now = time.monotonic()
                remaining = end - now
                if self._deadline is not None:
                    remaining = min(remaining, self._deadline - now)
                if remaining <= 0:
                    return
                self._cond.wait(remaining)
