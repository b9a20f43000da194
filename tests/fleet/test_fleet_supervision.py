"""The supervision state machine, rule by rule, with a hand-driven clock."""
from fleet.supervision import Alert, Kill, Policy, Spawn, State, Supervised, Terminate

P = Policy(min_uptime_s=3, backoff_initial_s=1, backoff_max_s=60, backoff_reset_s=60, flap_limit=5,
           flap_window_s=60, heartbeat_timeout_s=10, start_timeout_s=30)


def up(s: Supervised, now: float, pid: int = 100) -> None:
    """Start and reach RUNNING (heartbeat + min uptime)."""
    assert s.request_start(now) == [Spawn(s.name)]
    s.spawned(now, pid)
    s.heartbeat(now + 0.5, pid)
    assert s.tick(now + P.min_uptime_s) == []
    assert s.state is State.RUNNING


def kinds(actions):
    return [type(a).__name__ for a in actions]


def test_starting_needs_min_uptime_and_a_heartbeat():
    s = Supervised("n", P)
    s.request_start(0)
    s.spawned(0, 1)
    assert s.tick(5) == [] and s.state is State.STARTING  # up long enough, no heartbeat yet
    s.heartbeat(5.5, 1)
    s.tick(6)
    assert s.state is State.RUNNING


def test_heartbeat_from_an_older_pid_is_ignored():
    s = Supervised("n", P)
    s.request_start(0)
    s.spawned(0, 2)
    s.heartbeat(1, pid=1)
    assert s.last_heartbeat is None


def test_backoff_doubles_up_to_the_maximum():
    assert [P.backoff_delay(n) for n in range(1, 9)] == [1, 2, 4, 8, 16, 32, 60, 60]


def test_crash_goes_to_backoff_then_restarts_when_the_delay_is_over():
    s = Supervised("n", P)
    up(s, 0)
    actions = s.exited(100, -9)
    assert s.state is State.BACKOFF and kinds(actions) == ["Alert"] and actions[0].kind == "node_crashed"
    assert s.tick(100.5) == []
    assert s.tick(101) == [Spawn("n")]
    s.spawned(101, 101)
    assert s.restarts == 1 and s.last_exit_code == -9


def test_backoff_grows_with_consecutive_crashes_and_resets_after_a_stable_run():
    s = Supervised("n", Policy(flap_limit=100, backoff_reset_s=60))
    up(s, 0)
    t = 10.0
    delays = []
    for _ in range(4):
        s.exited(t, 1)
        delays.append(s.retry_at - t)
        t = s.retry_at
        s.tick(t)
        s.spawned(t, 7)
        s.heartbeat(t, 7)
        s.tick(t + 3)
        t += 30  # run a while, less than the reset period
        s.heartbeat(t, 7)
    assert delays == [1, 2, 4, 8]
    s.heartbeat(t + 55, 7)
    s.tick(t + 61)  # RUNNING for >= backoff_reset_s since the last start
    s.exited(t + 62, 1)
    assert s.retry_at - (t + 62) == 1


def test_five_crashes_within_the_window_make_it_fatal_with_an_alert():
    s = Supervised("n", P)
    s.request_start(0)
    t = 0.0
    for i in range(4):
        s.spawned(t, i + 1)
        actions = s.exited(t + 0.1, 3)
        assert s.state is State.BACKOFF, i
        t = s.retry_at
        assert s.tick(t) == [Spawn("n")]
    s.spawned(t, 9)
    actions = s.exited(t + 0.1, 3)
    assert s.state is State.FATAL
    assert [a.kind for a in actions if isinstance(a, Alert)] == ["node_fatal"]
    assert actions[0].level == "critical" and "flapping" in s.reason
    assert s.tick(t + 1000) == []  # stays FATAL
    assert s.request_start(t + 1000) == []  # the reconcile alone does not revive it


def test_crashes_spread_wider_than_the_window_never_go_fatal():
    s = Supervised("n", Policy(flap_limit=3, flap_window_s=10, backoff_max_s=1))
    up(s, 0)
    t = 0.0
    for _ in range(10):
        t += 11
        s.exited(t, 1)
        assert s.state is State.BACKOFF
        s.tick(s.retry_at)
        s.spawned(s.retry_at, 5)


def test_fatal_is_left_by_reset_or_an_account_change():
    for leave in ("reset", "config_changed"):
        s = Supervised("n", Policy(flap_limit=1))
        s.request_start(0)
        s.spawned(0, 1)
        s.exited(0.5, 1)
        assert s.state is State.FATAL
        assert getattr(s, leave)(1) == [Spawn("n")]
        assert s.state is State.STARTING and s.crash_times == [] and s.reason == ""


def test_exit_78_holds_config_error_until_the_account_changes():
    s = Supervised("n", P)
    up(s, 0)
    actions = s.exited(5, 78)
    assert s.state is State.CONFIG_ERROR and actions[0].kind == "node_config_error"
    assert s.tick(1000) == [] and s.request_start(1000) == []
    assert s.config_changed(1001) == [Spawn("n")]


def test_exit_75_restarts_at_once_without_counting_a_crash():
    s = Supervised("n", Policy(flap_limit=2))
    up(s, 0)
    for i in range(3):
        assert s.exited(10 + i, 75) == [Spawn("n")]
        s.spawned(10 + i, 50 + i)
    assert s.crash_times == [] and s.state is State.STARTING and s.restarts == 3


def test_an_exit_75_loop_is_eventually_a_crash():
    s = Supervised("n", Policy(flap_limit=2, flap_window_s=60))
    up(s, 0)
    results = []
    for i in range(6):
        results.append(kinds(s.exited(10 + i, 75)))
        if s.state is State.STARTING:
            s.spawned(10 + i, 60 + i)
    assert results[:4] == [["Spawn"]] * 4 and results[4] == ["Alert"]


def test_exit_0_unasked_means_stopped_on_purpose():
    s = Supervised("n", P)
    up(s, 0)
    actions = s.exited(10, 0)
    assert s.state is State.STOPPED and actions[0].kind == "node_stopped"
    assert s.tick(1000) == []


def test_missing_heartbeat_kills_once_and_counts_as_a_crash():
    s = Supervised("n", P)
    up(s, 0)
    assert s.tick(10.4) == []  # last heartbeat at 0.5: 9.9 s ago
    s.heartbeat(13, 100)
    assert s.tick(22) == []
    actions = s.tick(23.5)
    assert isinstance(actions[0], Kill) and "no heartbeat" in actions[0].reason
    assert s.tick(24) == []  # the kill is issued once
    s.exited(25, -9)
    assert s.state is State.BACKOFF and "no heartbeat" in s.reason and len(s.crash_times) == 1


def test_no_first_heartbeat_within_start_timeout_kills():
    s = Supervised("n", P)
    s.request_start(0)
    s.spawned(0, 1)
    assert s.tick(29) == []
    assert isinstance(s.tick(31)[0], Kill)


def test_processes_without_heartbeat_run_on_uptime_alone():
    s = Supervised("proxy", Policy(heartbeat_timeout_s=0, min_uptime_s=1))
    s.request_start(0)
    s.spawned(0, 1)
    s.tick(1)
    assert s.state is State.RUNNING
    assert s.tick(10_000) == []


def test_optional_heartbeat_starts_liveness_once_seen():
    s = Supervised("monitor", Policy(require_first_heartbeat=False, heartbeat_timeout_s=10, min_uptime_s=1))
    s.request_start(0)
    s.spawned(0, 1)
    s.tick(1)
    assert s.state is State.RUNNING and s.tick(500) == []
    s.heartbeat(500, 1)
    assert isinstance(s.tick(511)[0], Kill)


def test_stop_is_graceful_and_ends_stopped_without_restart():
    s = Supervised("n", P)
    up(s, 0)
    assert s.request_stop(10) == [Terminate("n")]
    assert s.state is State.STOPPING
    assert s.tick(100) == []  # no liveness kill while stopping
    assert s.exited(11, 0) == [] and s.state is State.STOPPED


def test_stop_during_backoff_cancels_the_restart():
    s = Supervised("n", P)
    up(s, 0)
    s.exited(10, 1)
    assert s.request_stop(10.5) == [] and s.state is State.STOPPED
    assert s.tick(100) == []


def test_restart_request_stops_then_spawns():
    s = Supervised("n", P)
    up(s, 0)
    assert s.request_restart(10) == [Terminate("n")]
    assert s.exited(11, 0) == [Spawn("n")]
    assert s.crash_times == []


def test_config_error_found_before_spawn_is_held_and_alerted_once():
    s = Supervised("n", P)
    assert s.request_start(0) == [Spawn("n")]
    first = s.hold_config_error("field 'sizing' is bad")
    again = s.hold_config_error("field 'sizing' is bad")
    assert s.state is State.CONFIG_ERROR and len(first) == 1 and again == []
    assert s.spawns == 0


def test_failed_spawn_is_a_crash():
    s = Supervised("n", P)
    s.request_start(0)
    actions = s.spawn_failed(0, "No such file")
    assert s.state is State.BACKOFF and "could not start" in actions[0].message


def test_a_graceful_stop_ends_with_its_own_reason_not_an_earlier_one():
    """STOPPED after a stop the caller gave no reason for says so: neither the reason of an
    earlier incarnation nor (in the launcher's row) what the node said while it ran."""
    s = Supervised("n", P)
    up(s, 0)
    s.exited(10, 75)  # a restart the node asked for, then up again
    assert s.reason == "restart requested by the node (exit 75)"
    s.spawned(10, 2)
    s.heartbeat(10.5, 2)
    s.tick(14)
    assert s.request_stop(20) == [Terminate("n")] and s.reason == ""
    assert s.exited(21, 0) == [] and (s.state, s.reason) == (State.STOPPED, "stopped by the launcher")
    t = Supervised("t", P)  # the caller said why (the launcher's "disabled"): that stays
    up(t, 0)
    t.request_stop(10)
    t.reason = "disabled"
    t.exited(11, 0)
    assert (t.state, t.reason) == (State.STOPPED, "disabled")
    k = Supervised("k", P)  # still up at the stop deadline: killed
    up(k, 0)
    k.request_stop(10)
    k.exited(20, -9)
    assert (k.state, k.reason) == (State.STOPPED, "stopped by the launcher (exit code -9)")
