"""Dedup within cooldown, escalation, recovery once, cooldown expiry — with a fake clock."""
import threading

from alerts import Alert, AlertDispatcher, Deduplicator, Verdict


def A(level, account="FTMO_01", rule="daily_loss"):
    return Alert(account=account, rule=rule, level=level)


def test_same_level_suppressed_within_cooldown_and_passes_after(fake_clock):
    d = Deduplicator(default_cooldown_s=300, clock=fake_clock)
    assert d.check(A("warn")) is Verdict.NEW
    fake_clock.advance(299)
    assert d.check(A("warn")) is Verdict.SUPPRESSED
    assert d.suppressed == 1
    fake_clock.advance(1)
    assert d.check(A("warn")) is Verdict.REMINDER
    # the reminder restarts the cooldown
    fake_clock.advance(10)
    assert d.check(A("warn")) is Verdict.SUPPRESSED


def test_escalation_passes_immediately_each_step(fake_clock):
    d = Deduplicator(clock=fake_clock)
    assert d.check(A("warn")) is Verdict.NEW
    assert d.check(A("pause")) is Verdict.ESCALATION
    assert d.check(A("flatten")) is Verdict.ESCALATION
    assert d.check(A("flatten")) is Verdict.SUPPRESSED
    assert d.check(A("critical")) is Verdict.ESCALATION


def test_recovery_passes_once(fake_clock):
    d = Deduplicator(clock=fake_clock)
    assert d.check(A("info")) is Verdict.NEW
    assert d.check(A("warn")) is Verdict.ESCALATION
    fake_clock.advance(5)
    assert d.check(A("info")) is Verdict.RECOVERY  # "back below warn", although info was sent 5 s ago
    assert d.check(A("info")) is Verdict.SUPPRESSED
    assert d.check(A("info")) is Verdict.SUPPRESSED
    assert d.check(A("warn")) is Verdict.ESCALATION  # crossing up again is news


def test_keys_are_independent_per_account_and_rule(fake_clock):
    d = Deduplicator(clock=fake_clock)
    assert d.check(A("warn", account="X")).passes
    assert d.check(A("warn", account="Y")).passes
    assert d.check(A("warn", account="X", rule="max_drawdown")).passes
    assert not d.check(A("warn", account="X")).passes


def test_cooldown_is_configurable_per_rule(fake_clock):
    d = Deduplicator(default_cooldown_s=300, cooldowns={"node_fatal": 30}, clock=fake_clock)
    assert d.check(A("critical", rule="node_fatal")).passes
    assert d.check(A("warn", rule="daily_loss")).passes
    fake_clock.advance(31)
    assert d.check(A("critical", rule="node_fatal")) is Verdict.REMINDER
    assert d.check(A("warn", rule="daily_loss")) is Verdict.SUPPRESSED


def test_reset_forgets_one_account(fake_clock):
    d = Deduplicator(clock=fake_clock)
    d.check(A("warn", account="X"))
    d.check(A("warn", account="Y"))
    d.reset("X")
    assert d.check(A("warn", account="X")) is Verdict.NEW
    assert d.check(A("warn", account="Y")) is Verdict.SUPPRESSED


def test_concurrent_duplicates_pass_exactly_once(fake_clock):
    d = Deduplicator(clock=fake_clock)
    results = []
    lock = threading.Lock()
    barrier = threading.Barrier(8)

    def worker():
        barrier.wait()
        for _ in range(200):
            v = d.check(A("warn"))
            with lock:
                results.append(v)

    threads = [threading.Thread(target=worker) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sum(v.passes for v in results) == 1
    assert d.suppressed == 8 * 200 - 1


def test_dispatcher_counts_suppressed_and_delivers_escalation(fake_clock, recorder, wait):
    disp = AlertDispatcher(logger=recorder, clock=fake_clock)
    try:
        sent = [disp.send(A(lvl)) for lvl in ("warn", "warn", "warn", "pause", "pause", "flatten")]
        assert sent == [True, False, False, True, False, True]
        fake_clock.advance(301)
        assert disp.send(A("flatten")) is True
        assert wait(lambda: disp.stats()["channels"]["log"]["delivered"] == 4)
        assert [kw["level"] for kw in recorder.events("alert")] == ["warn", "pause", "flatten", "flatten"]
        assert disp.stats()["suppressed"] == 3
    finally:
        disp.close()
