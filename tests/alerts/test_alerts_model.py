"""Alert value type, phone text and webhook payload; retry delays."""
import random

import pytest

from alerts import LEVELS, Alert, RetryPolicy, format_text, level_rank, to_payload


def test_format_text_matches_the_phone_layout():
    a = Alert(account="FTMO_Slave_02", rule="daily_loss", level="warn", value=4275.0, limit=5000.0,
              unit="USD", action_taken="copying paused")
    assert format_text(a) == (
        "⚠️ FTMO_Slave_02 · daily loss\n"
        "4,275.00 USD of 5,000.00 USD limit (85.5%)\n"
        "Action: copying paused"
    )


def test_format_text_percent_unit_message_and_node_footer():
    a = Alert(account="Slave_07", rule="max_drawdown", level="flatten", value=9.6, limit=10.0, unit="%",
              action_taken="positions flattened, account locked", message="equity fell fast",
              ts_ms=1_700_000_000_000, node="slave-07")
    assert format_text(a).split("\n") == [
        "🛑 Slave_07 · max drawdown",
        "9.60% of 10.00% limit (96.0%)",
        "equity fell fast",
        "Action: positions flattened, account locked",
        "slave-07 · 2023-11-14 22:13:20 UTC",
    ]


def test_format_text_without_measurement_for_supervisor_alerts():
    a = Alert(account="slave-03", rule="node_fatal", level="critical",
              message="restarted 5 times in 60 s, giving up", node="launcher")
    lines = format_text(a).split("\n")
    assert lines[0] == "🚨 slave-03 · node fatal"
    assert lines[1] == "restarted 5 times in 60 s, giving up"


def test_format_text_is_bounded_for_telegram():
    a = Alert(account="X", rule="r", level="info", message="y" * 10_000)
    assert len(format_text(a)) <= 4096


def test_webhook_payload_is_alert_fields_plus_text():
    a = Alert(account="A", rule="daily_loss", level="pause", value=1.0, limit=2.0, unit="USD", ts_ms=5, node="n")
    p = to_payload(a)
    assert p == {"account": "A", "rule": "daily_loss", "level": "pause", "value": 1.0, "limit": 2.0,
                 "unit": "USD", "action_taken": "", "message": "", "ts_ms": 5, "node": "n",
                 "text": format_text(a)}


def test_levels_are_ordered_and_validated():
    assert [level_rank(x) for x in LEVELS] == [0, 1, 2, 3, 4]
    assert Alert(account="A", rule="r", level="WARN").level == "warn"
    with pytest.raises(ValueError):
        Alert(account="A", rule="r", level="panic")
    with pytest.raises(ValueError):
        Alert(account="", rule="r", level="info")


def test_retry_delays_double_up_to_cap_with_bounded_jitter():
    p = RetryPolicy(base_s=1.0, cap_s=8.0, jitter=0.2)
    rng = random.Random(1)
    for attempt, raw in [(1, 1), (2, 2), (3, 4), (4, 8), (5, 8), (50, 8)]:
        d = p.delay(attempt, rng)
        assert raw <= d <= raw * 1.2
    no_jitter = RetryPolicy(base_s=1.0, cap_s=8.0, jitter=0.0)
    assert [no_jitter.delay(i, rng) for i in range(1, 6)] == [1, 2, 4, 8, 8]
    with pytest.raises(ValueError):
        RetryPolicy(base_s=2.0, cap_s=1.0)
