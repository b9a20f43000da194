"""Deduplication of repeated alerts, so a risk loop can raise every tick without spamming.

Rules, per (account, rule):
- first alert for the key passes (NEW);
- a higher level than the last one that passed passes at once (ESCALATION);
- a lower level passes once, as the recovery / de-escalation message (RECOVERY);
- the same level as the last one passes only when its per-rule cooldown has expired
  since it last passed (REMINDER), otherwise it is SUPPRESSED.

Only passed alerts change the state. Hysteresis (not flapping around a threshold) is
the rule evaluator's job: an escalation is never held back here.
"""
from __future__ import annotations

import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from enum import Enum

from .model import Alert

DEFAULT_COOLDOWN_S = 300.0


class Verdict(str, Enum):
    NEW = "new"
    ESCALATION = "escalation"
    RECOVERY = "recovery"
    REMINDER = "reminder"
    SUPPRESSED = "suppressed"

    @property
    def passes(self) -> bool:
        return self is not Verdict.SUPPRESSED


@dataclass
class _KeyState:
    rank: int
    last_sent: float


class Deduplicator:
    """Thread-safe; `clock` returns seconds (monotonic by default, injectable in tests)."""

    def __init__(
        self,
        default_cooldown_s: float = DEFAULT_COOLDOWN_S,
        cooldowns: Mapping[str, float] | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        if default_cooldown_s < 0:
            raise ValueError("default_cooldown_s must be >= 0")
        self._default = float(default_cooldown_s)
        self._cooldowns = {rule: float(s) for rule, s in (cooldowns or {}).items()}
        for rule, s in self._cooldowns.items():
            if s < 0:
                raise ValueError(f"cooldown for rule {rule!r} must be >= 0")
        self._clock = clock
        self._state: dict[tuple[str, str], _KeyState] = {}
        self._lock = threading.Lock()
        self.suppressed = 0

    def cooldown_for(self, rule: str) -> float:
        return self._cooldowns.get(rule, self._default)

    def check(self, alert: Alert) -> Verdict:
        """Decide and record in one step (so two threads cannot both pass a duplicate)."""
        key = (alert.account, alert.rule)
        rank = alert.rank
        with self._lock:
            now = self._clock()
            st = self._state.get(key)
            if st is None:
                verdict = Verdict.NEW
            elif rank > st.rank:
                verdict = Verdict.ESCALATION
            elif rank < st.rank:
                verdict = Verdict.RECOVERY
            elif now - st.last_sent >= self.cooldown_for(alert.rule):
                verdict = Verdict.REMINDER
            else:
                self.suppressed += 1
                return Verdict.SUPPRESSED
            self._state[key] = _KeyState(rank=rank, last_sent=now)
            return verdict

    def reset(self, account: str | None = None) -> None:
        """Forget state (all, or one account's) — e.g. at the start of a trading day."""
        with self._lock:
            if account is None:
                self._state.clear()
            else:
                for key in [k for k in self._state if k[0] == account]:
                    del self._state[key]


def is_escalation(alert: Alert, verdict: Verdict) -> bool:
    """An alert that raised its key's level: a true escalation, or a first alert at warn or above
    (the previous state was 'normal'). These are protected when a queue overflows."""
    if verdict is Verdict.ESCALATION:
        return True
    return verdict is Verdict.NEW and alert.rank > 0
