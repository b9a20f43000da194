"""AlertDispatcher: the one object a node holds. `send` dedups and enqueues, nothing more,
so a trading loop never waits on a phone notification."""
from __future__ import annotations

import random
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from .channels import Channel, LogChannel, adapt_logger, log_call
from .dedup import DEFAULT_COOLDOWN_S, Deduplicator, is_escalation
from .model import Alert
from .worker import ChannelWorker, Entry, RetryPolicy

DEFAULT_QUEUE_SIZE = 1000


class AlertDispatcher:
    """Fan-out of alerts to the log channel (always) and any configured channels.

    Each channel has its own bounded queue and daemon worker thread. `clock` (seconds)
    drives dedup cooldowns and the max age of queued alerts; inject a fake in tests.
    """

    def __init__(
        self,
        channels: Sequence[Channel] = (),
        logger: Any | None = None,
        *,
        include_log: bool = True,
        queue_size: int = DEFAULT_QUEUE_SIZE,
        retry: RetryPolicy | None = None,
        default_cooldown_s: float = DEFAULT_COOLDOWN_S,
        cooldowns: Mapping[str, float] | None = None,
        clock: Callable[[], float] = time.monotonic,
        rng: random.Random | None = None,
    ) -> None:
        self.logger = adapt_logger(logger)
        self._clock = clock
        self._dedup = Deduplicator(default_cooldown_s, cooldowns, clock)
        all_channels: list[Channel] = ([LogChannel(self.logger)] if include_log else []) + list(channels)
        policy = retry or RetryPolicy()
        rng = rng or random.Random()
        self._workers: list[ChannelWorker] = []
        seen: dict[str, int] = {}
        for ch in all_channels:
            n = seen.get(ch.name, 0)
            seen[ch.name] = n + 1
            name = ch.name if n == 0 else f"{ch.name}{n + 1}"
            self._workers.append(ChannelWorker(ch, self.logger, queue_size, policy, clock, rng, name=name))
        self._lock = threading.Lock()
        self._closed = False
        self.accepted = 0
        self.rejected_closed = 0
        for w in self._workers:
            w.start()

    @property
    def channel_names(self) -> list[str]:
        return [w.name for w in self._workers]

    def send(self, alert: Alert) -> bool:
        """Enqueue for every channel unless deduplicated away or closed. Never blocks on I/O.

        Returns True when the alert was queued, False when suppressed or after close().
        """
        if self._closed:
            with self._lock:
                self.rejected_closed += 1
            return False
        verdict = self._dedup.check(alert)
        if not verdict.passes:
            return False
        entry = Entry(alert, is_escalation(alert, verdict), self._clock())
        for w in self._workers:
            w.put(entry)
        with self._lock:
            self.accepted += 1
        return True

    def reset_dedup(self, account: str | None = None) -> None:
        """Forget dedup state, e.g. when a new trading day resets the daily-loss rule."""
        self._dedup.reset(account)

    def stats(self) -> dict[str, Any]:
        return {
            "accepted": self.accepted,
            "suppressed": self._dedup.suppressed,
            "rejected_closed": self.rejected_closed,
            "channels": {w.name: w.stats() for w in self._workers},
        }

    def close(self, timeout: float = 5.0) -> int:
        """Stop accepting, deliver what can be delivered within `timeout` seconds, stop the
        workers. Returns how many alerts were left undelivered (summed over channels)."""
        with self._lock:
            already = self._closed
            self._closed = True
        deadline = time.monotonic() + max(0.0, timeout)
        if not already:
            for w in self._workers:
                w.request_stop(deadline)
        for w in self._workers:
            w.join(max(0.0, deadline - time.monotonic()))
        left = 0
        for w in self._workers:
            w.abort()  # a worker still inside one HTTP call exits when it returns (<= timeout)
            pending = w.pending()
            left += pending
            if pending and not already:
                log_call(self.logger, "warning", "alerts undelivered at close", channel=w.name, pending=pending)
        return left

    def __enter__(self) -> AlertDispatcher:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
