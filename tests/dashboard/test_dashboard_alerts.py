"""Copies that end FAILED or SKIPPED raise an alert with the reason, through alerts/, deduplicated."""
from __future__ import annotations

import time

from dashboard_kit import make

from alerts import AlertDispatcher
from dashboard.collector import CopyAlerts


class Recorder:
    name = "recorder"

    def __init__(self) -> None:
        self.sent = []

    def deliver(self, alert) -> None:
        self.sent.append(alert)


def dispatcher(channel: Recorder, clock) -> AlertDispatcher:
    return AlertDispatcher([channel], include_log=False, clock=clock)


def wait_sent(d: AlertDispatcher, timeout: float = 5.0) -> None:
    d.close(timeout=timeout)


def ev(kind: str, slave: str, ticket: int, reason: str) -> dict:
    return {"kind": kind, "account": slave, "node": slave, "data": {"master": "M", "master_ticket": ticket, "reason": reason}}


def test_one_alert_per_copy_and_per_reason_within_the_cooldown():
    rec, now = Recorder(), [0.0]
    d = dispatcher(rec, lambda: now[0])
    alerts = CopyAlerts(d)
    assert alerts.on_event(ev("copy_failed", "S1", 1, "10019 No money"))
    assert not alerts.on_event(ev("copy_failed", "S1", 1, "10019 No money"))  # the same copy again
    assert not alerts.on_event(ev("copy_failed", "S1", 2, "10019 No money"))  # same reason, another copy: cooldown
    assert alerts.on_event(ev("copy_skipped", "S1", 3, "slippage 61.0 points > tolerance 50"))
    assert not alerts.on_event(ev("copy_skipped", "S1", 4, "slippage 75.5 points > tolerance 50"))  # numbers blanked
    assert alerts.on_event(ev("copy_skipped", "S2", 4, "slippage 75.5 points > tolerance 50"))  # another account
    assert not alerts.on_event({"kind": "copy_opened", "account": "S1", "data": {}})
    deadline = time.monotonic() + 5
    while len(rec.sent) < 3 and time.monotonic() < deadline:
        time.sleep(0.01)
    now[0] = 301.0  # past the 300 s cooldown: a reminder
    assert alerts.on_event(ev("copy_failed", "S1", 5, "10019 No money"))
    wait_sent(d)
    assert [(a.account, a.level) for a in rec.sent] == [("S1", "critical"), ("S1", "warn"), ("S2", "warn"), ("S1", "critical")]
    assert "10019 No money" in rec.sent[0].message and "#1" in rec.sent[0].message


def test_the_collector_alerts_on_new_events_only_not_on_history(tmp_path):
    rec = Recorder()
    d = dispatcher(rec, lambda: 0.0)
    store, collector, _app, _ = make(tmp_path, alerts=d)  # the seed holds an old copy_skipped
    store.add_event("copy_failed", node="S2", account="S2", level="error", master="M", master_ticket=502,
                    reason="10019 No money (broker constraint)", retcode=10019)
    collector.poll(force=True)
    wait_sent(d)
    assert len(rec.sent) == 1 and rec.sent[0].account == "S2" and "retcode 10019" in rec.sent[0].message
    store.close()
