"""The per-node supervision state machine: pure, no I/O, time passed in.

Modelled on what circus and supervisord do, reduced to what a copy-trading fleet needs::

    STOPPED --start--> STARTING --(up >= min_uptime and first heartbeat)--> RUNNING
    STARTING/RUNNING --crash--> BACKOFF --(delay elapsed)--> STARTING
    BACKOFF/STARTING/RUNNING --(flap_limit crashes within flap_window)--> FATAL
    any running state --exit 78--> CONFIG_ERROR          (held until the account changes)
    any running state --exit 75--> STARTING at once       (a restart, not a crash)
    any running state --exit 0 unasked--> STOPPED         (someone stopped it on purpose)
    any running state --stop--> STOPPING --exit--> STOPPED
    FATAL / CONFIG_ERROR / STOPPED --reset or account change--> STARTING

A crash is any other exit, including the kill that follows a missed heartbeat: a hung
node is a dead node. Backoff doubles from ``backoff_initial_s`` to ``backoff_max_s`` and
falls back to the start once the node has stayed RUNNING for ``backoff_reset_s``.

Every method takes ``now`` (monotonic seconds) and returns the actions the caller must
carry out (spawn, terminate, kill, alert). Keeping time and I/O out makes every rule a
plain unit test.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from enum import Enum

EXIT_OK = 0
EXIT_RESTART = 75  # EX_TEMPFAIL: "restart me", e.g. a config change the node cannot hot-reload
EXIT_CONFIG = 78  # EX_CONFIG: the account document is bad; the node wrote the reason
STOPPED_ON_REQUEST = "stopped by the launcher"  # a graceful stop the caller gave no reason for (its shutdown)


class State(str, Enum):
    STOPPED = "STOPPED"
    STARTING = "STARTING"
    RUNNING = "RUNNING"
    BACKOFF = "BACKOFF"
    STOPPING = "STOPPING"
    FATAL = "FATAL"
    CONFIG_ERROR = "CONFIG_ERROR"


# States in which a process exists (or is about to be told to exit).
ALIVE_STATES = frozenset({State.STARTING, State.RUNNING, State.STOPPING})
# States only an operator reset or an account change can leave.
HELD_STATES = frozenset({State.FATAL, State.CONFIG_ERROR, State.STOPPED})


@dataclass(frozen=True)
class Policy:
    """Supervision knobs; the defaults are what the launcher uses in production."""

    min_uptime_s: float = 3.0
    backoff_initial_s: float = 1.0
    backoff_max_s: float = 60.0
    backoff_reset_s: float = 60.0
    flap_limit: int = 5
    flap_window_s: float = 60.0
    heartbeat_timeout_s: float = 10.0  # 0 disables liveness (processes without a heartbeat)
    start_timeout_s: float = 30.0  # first heartbeat must arrive within this
    # False: RUNNING after min_uptime alone; liveness starts with the first heartbeat
    # (for processes that may or may not publish one, like the monitor).
    require_first_heartbeat: bool = True

    @property
    def needs_heartbeat(self) -> bool:
        return self.heartbeat_timeout_s > 0 and self.require_first_heartbeat

    @property
    def checks_liveness(self) -> bool:
        return self.heartbeat_timeout_s > 0

    def backoff_delay(self, consecutive_crashes: int) -> float:
        """Delay before restart number ``consecutive_crashes`` (1-based): 1, 2, 4 ... max."""
        n = max(1, consecutive_crashes)
        return min(self.backoff_max_s, self.backoff_initial_s * (2 ** (n - 1)))


@dataclass(frozen=True)
class Spawn:
    name: str


@dataclass(frozen=True)
class Terminate:
    """Ask the process to exit gracefully (the caller enforces a deadline)."""
    name: str


@dataclass(frozen=True)
class Kill:
    """Kill the process tree now (hung, or never came up)."""
    name: str
    reason: str


@dataclass(frozen=True)
class Alert:
    name: str
    kind: str  # event kind for the audit trail
    level: str  # info | warning | error | critical
    message: str


Action = Spawn | Terminate | Kill | Alert


@dataclass
class Supervised:
    """Supervision state of one node. Mutated only through its methods."""

    name: str
    policy: Policy = field(default_factory=Policy)
    state: State = State.STOPPED
    pid: int | None = None
    started_at: float | None = None  # monotonic time of the current spawn
    running_since: float | None = None
    last_heartbeat: float | None = None
    retry_at: float | None = None
    crash_times: list[float] = field(default_factory=list)
    quick_restarts: list[float] = field(default_factory=list)  # exit-75 times
    consecutive_crashes: int = 0
    spawns: int = 0
    last_exit_code: int | None = None
    reason: str = ""
    kill_reason: str | None = None  # set once a Kill was issued for this incarnation
    restart_after_stop: bool = False

    # -- derived -----------------------------------------------------------------
    @property
    def restarts(self) -> int:
        """Spawns after the first one."""
        return max(0, self.spawns - 1)

    def uptime(self, now: float) -> float:
        if self.state in ALIVE_STATES and self.started_at is not None:
            return max(0.0, now - self.started_at)
        return 0.0

    # -- operator / reconcile requests --------------------------------------------
    def request_start(self, now: float) -> list[Action]:
        """The account is wanted up. Only STOPPED starts here; FATAL and CONFIG_ERROR
        are left only by ``reset`` or ``config_changed``."""
        if self.state is State.STOPPED:
            return self._spawn()
        return []

    def request_stop(self, now: float) -> list[Action]:
        """Stop for good (account disabled, removed, or launcher shutdown)."""
        self.restart_after_stop = False
        if self.state in (State.STARTING, State.RUNNING):
            self.state = State.STOPPING
            self.reason = ""  # an earlier incarnation's reason is not why this one stops
            return [Terminate(self.name)]
        if self.state is State.STOPPING:
            return []
        self.state = State.STOPPED
        self.retry_at = None
        return []

    def request_restart(self, now: float) -> list[Action]:
        """Stop gracefully and start again (e.g. the account's role changed)."""
        if self.state in (State.STARTING, State.RUNNING):
            self.state = State.STOPPING
            self.restart_after_stop = True
            return [Terminate(self.name)]
        if self.state is State.STOPPING:
            self.restart_after_stop = True
            return []
        return self.reset(now)

    def reset(self, now: float) -> list[Action]:
        """Operator reset: forget the crash history and start if not already up."""
        self.crash_times.clear()
        self.quick_restarts.clear()
        self.consecutive_crashes = 0
        if self.state in HELD_STATES or self.state is State.BACKOFF:
            self.reason = ""
            return self._spawn()
        return []

    def config_changed(self, now: float) -> list[Action]:
        """The account document changed. A running node hot-reloads it (or exits 75);
        a node held in FATAL or CONFIG_ERROR gets a fresh chance."""
        if self.state in (State.FATAL, State.CONFIG_ERROR):
            return self.reset(now)
        return []

    def hold_config_error(self, reason: str) -> list[Action]:
        """The caller found the account document invalid before spawning (it may do so
        on a Spawn action: STARTING without a pid)."""
        if self.pid is not None or self.state is State.STOPPING:
            return []
        changed = self.state is not State.CONFIG_ERROR or self.reason != reason
        self.state = State.CONFIG_ERROR
        self.reason = reason
        self.retry_at = None
        if not changed:
            return []
        return [Alert(self.name, "node_config_error", "error", reason)]

    # -- process facts ----------------------------------------------------------
    def spawned(self, now: float, pid: int) -> None:
        """A new process is up. The reason of the previous incarnation ("disabled; N open
        copies left unmanaged", "exited with code -9; restart in 1 s") is over: it does not
        describe this process (the caller keeps it as the last restart reason; the exit
        code stays in ``last_exit_code``, the count in ``restarts``)."""
        self.spawns += 1
        self.pid = pid
        self.started_at = now
        self.running_since = None
        self.last_heartbeat = None
        self.kill_reason = None
        self.reason = ""

    def heartbeat(self, now: float, pid: int | None = None) -> None:
        """A status heartbeat from the current incarnation (stale pids are ignored)."""
        if self.state not in (State.STARTING, State.RUNNING):
            return
        if pid is not None and self.pid is not None and pid != self.pid:
            return
        if self.last_heartbeat is None or now > self.last_heartbeat:
            self.last_heartbeat = now

    def spawn_failed(self, now: float, error: str) -> list[Action]:
        """Popen itself failed (missing script, bad interpreter): treat as a crash."""
        self.pid = None
        self.started_at = now
        return self._crashed(now, None, f"could not start: {error}")

    def exited(self, now: float, code: int | None) -> list[Action]:
        """The process is gone with ``code`` (negative: killed by that signal)."""
        self.last_exit_code = code
        self.pid = None
        was = self.state
        kill_reason, self.kill_reason = self.kill_reason, None
        if was is State.STOPPING:
            if self.restart_after_stop:
                self.restart_after_stop = False
                return self._spawn()
            self.state = State.STOPPED
            # the caller may have said why ("disabled"); else this, never what the node
            # last said while it ran (its terminal error, a silent bus): that is over
            self.reason = self.reason or (STOPPED_ON_REQUEST if code == EXIT_OK
                                          else f"{STOPPED_ON_REQUEST} (exit code {code})")
            return []
        if was not in (State.STARTING, State.RUNNING):
            return []  # a late exit report for a process we already wrote off
        if kill_reason is not None:
            return self._crashed(now, code, kill_reason)
        if code == EXIT_OK:
            self.state = State.STOPPED
            self.reason = "exited with code 0 on its own (a ctl stop?); reset or edit the account to start it"
            return [Alert(self.name, "node_stopped", "warning", self.reason)]
        if code == EXIT_CONFIG:
            self.state = State.CONFIG_ERROR
            self.reason = "bad account document (exit 78); fix the account to start it again"
            return [Alert(self.name, "node_config_error", "error", self.reason)]
        if code == EXIT_RESTART:
            self.quick_restarts = [t for t in self.quick_restarts if now - t < self.policy.flap_window_s]
            self.quick_restarts.append(now)
            if len(self.quick_restarts) <= 2 * self.policy.flap_limit:
                self.reason = "restart requested by the node (exit 75)"
                return self._spawn()
            return self._crashed(now, code, "restart loop: too many exit-75 requests")
        return self._crashed(now, code, f"exited with code {code}")

    def tick(self, now: float) -> list[Action]:
        """Timers: promotion to RUNNING, backoff expiry, liveness, backoff reset."""
        p = self.policy
        if self.state is State.STARTING and self.kill_reason is None and self.started_at is not None:
            up = now - self.started_at
            got_heartbeat = self.last_heartbeat is not None or not p.needs_heartbeat
            if got_heartbeat and up >= p.min_uptime_s:
                self.state = State.RUNNING
                self.running_since = now
                return []
            if p.needs_heartbeat and self.last_heartbeat is None and up > p.start_timeout_s:
                return self._kill(f"no heartbeat within {p.start_timeout_s:g} s of start")
            if p.checks_liveness and self.last_heartbeat is not None and now - self.last_heartbeat > p.heartbeat_timeout_s:
                return self._kill(f"no heartbeat for {p.heartbeat_timeout_s:g} s")
            return []
        if self.state is State.RUNNING and self.kill_reason is None:
            if p.checks_liveness and self.last_heartbeat is not None and now - self.last_heartbeat > p.heartbeat_timeout_s:
                return self._kill(f"no heartbeat for {p.heartbeat_timeout_s:g} s")
            if self.consecutive_crashes and self.running_since is not None and now - self.running_since >= p.backoff_reset_s:
                self.consecutive_crashes = 0
            return []
        if self.state is State.BACKOFF and self.retry_at is not None and now >= self.retry_at:
            return self._spawn()
        return []

    # -- internals --------------------------------------------------------------
    def _spawn(self) -> list[Action]:
        self.state = State.STARTING
        self.retry_at = None
        return [Spawn(self.name)]

    def _kill(self, reason: str) -> list[Action]:
        self.kill_reason = reason
        return [Kill(self.name, reason), Alert(self.name, "node_unresponsive", "error", reason)]

    def _crashed(self, now: float, code: int | None, why: str) -> list[Action]:
        p = self.policy
        self.crash_times = [t for t in self.crash_times if now - t < p.flap_window_s]
        self.crash_times.append(now)
        if len(self.crash_times) >= p.flap_limit:
            self.state = State.FATAL
            self.retry_at = None
            self.reason = (f"flapping: {len(self.crash_times)} crashes within {p.flap_window_s:g} s "
                           f"(last: {why}); reset or edit the account to start it")
            return [Alert(self.name, "node_fatal", "critical", self.reason)]
        self.consecutive_crashes += 1
        delay = p.backoff_delay(self.consecutive_crashes)
        self.state = State.BACKOFF
        self.retry_at = now + delay
        self.reason = f"{why}; restart in {delay:g} s"
        return [Alert(self.name, "node_crashed", "error", self.reason)]
