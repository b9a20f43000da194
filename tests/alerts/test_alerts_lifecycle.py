"""Token masking in logs and errors, config errors, and close() semantics."""
import logging

import pytest

from alerts import (
    Alert,
    AlertConfigError,
    AlertDispatcher,
    DeliveryError,
    RetryPolicy,
    TelegramChannel,
    WebhookChannel,
    build_dispatcher_from_env,
)

TOKEN = "555000111:AAH_very-Secret-token_value"
FAST = RetryPolicy(base_s=0.02, cap_s=0.1, jitter=0.1)


def alert(i=0, level="warn"):
    return Alert(account=f"acct-{i:03d}", rule="daily_loss", level=level)


def test_token_masked_when_server_echoes_it(endpoint, recorder, wait):
    tg = endpoint()
    tg.mode = "401"
    disp = AlertDispatcher([TelegramChannel(TOKEN, "1", base_url=tg.url, timeout=1)], logger=recorder, retry=FAST)
    disp.send(alert())
    assert wait(lambda: disp.stats()["channels"]["telegram"]["failed"] == 1)
    disp.close(timeout=2)
    failed = recorder.events("alert delivery failed")
    assert failed and "HTTP 401" in failed[0]["error"] and "***" in failed[0]["error"]
    assert TOKEN not in recorder.text()
    assert "AAH_very-Secret" not in recorder.text()


def test_token_masked_on_connection_errors_and_in_stdlib_logs(unused_port, caplog, wait):
    logger = logging.getLogger("copyhub.test.alerts.mask")
    port = unused_port()
    with caplog.at_level(logging.DEBUG, logger="copyhub.test.alerts.mask"):
        disp = AlertDispatcher([TelegramChannel(TOKEN, "1", base_url=f"http://127.0.0.1:{port}", timeout=0.5)],
                               logger=logger, retry=FAST)
        disp.send(alert())
        assert wait(lambda: disp.stats()["channels"]["telegram"]["retries"] >= 2)
        disp.close(timeout=0.2)
    assert "alert channel down" in caplog.text
    assert TOKEN not in caplog.text


def test_token_masked_in_exceptions_and_repr():
    ch = TelegramChannel(TOKEN, "1", base_url="no-scheme.example")  # urllib echoes the whole URL
    with pytest.raises(DeliveryError) as info:
        ch.deliver(alert())
    assert TOKEN not in str(info.value) and "***" in str(info.value)
    assert info.value.retryable is False
    assert TOKEN not in repr(ch)


def test_webhook_secret_path_not_logged(unused_port, recorder, wait):
    url = f"http://127.0.0.1:{unused_port()}/services/T000/B000/SECRETPART"
    disp = build_dispatcher_from_env(recorder, environ={"COPYHUB_ALERT_WEBHOOK_URL": url}, retry=FAST)
    disp.send(alert())
    assert wait(lambda: disp.stats()["channels"]["webhook"]["retries"] >= 1)
    disp.close(timeout=0.2)
    assert "SECRETPART" not in recorder.text()
    assert "SECRETPART" not in repr(WebhookChannel(url))


@pytest.mark.parametrize("env, names", [
    ({"COPYHUB_TELEGRAM_TOKEN": TOKEN}, "COPYHUB_TELEGRAM_CHAT_ID"),
    ({"COPYHUB_TELEGRAM_CHAT_ID": "1"}, "COPYHUB_TELEGRAM_TOKEN"),
    ({"COPYHUB_ALERT_WEBHOOK_URL": f"ftp://x/{TOKEN}"}, "COPYHUB_ALERT_WEBHOOK_URL"),
    ({"COPYHUB_TELEGRAM_TOKEN": TOKEN, "COPYHUB_TELEGRAM_CHAT_ID": "1", "COPYHUB_TELEGRAM_API_URL": "localhost:99"},
     "COPYHUB_TELEGRAM_API_URL"),
])
def test_half_or_malformed_config_is_refused_without_leaking(env, names, recorder):
    with pytest.raises(AlertConfigError) as info:
        build_dispatcher_from_env(recorder, environ=env)
    assert names in str(info.value)
    assert TOKEN not in str(info.value)


def test_close_flushes_everything_queued(endpoint, recorder):
    hook = endpoint()
    disp = AlertDispatcher([WebhookChannel(hook.url, timeout=2)], logger=recorder, retry=FAST)
    for i in range(50):
        disp.send(alert(i))
    assert disp.close(timeout=20) == 0  # returns only once delivered (or out of time)
    assert [b["account"] for b in hook.bodies()] == [f"acct-{i:03d}" for i in range(50)]
    assert disp.stats()["channels"]["log"]["delivered"] == 50


def test_close_with_dead_endpoint_reports_leftovers_and_stops(unused_port, recorder):
    disp = AlertDispatcher([WebhookChannel(f"http://127.0.0.1:{unused_port()}", timeout=0.5)], logger=recorder,
                           retry=RetryPolicy(base_s=5, cap_s=5))
    for i in range(5):
        disp.send(alert(i))
    left = disp.close(timeout=0.3)
    assert left == 5
    assert recorder.events("alerts undelivered at close")[0] == {"channel": "webhook", "pending": 5}
    assert disp.send(alert(99)) is False
    assert disp.stats()["rejected_closed"] == 1
    assert disp.close(timeout=0.1) == 5  # idempotent


def test_self_test_command_reports_per_channel(endpoint, unused_port, capsys):
    from alerts.__main__ import main

    tg = endpoint()
    env = {"COPYHUB_TELEGRAM_TOKEN": TOKEN, "COPYHUB_TELEGRAM_CHAT_ID": "7", "COPYHUB_TELEGRAM_API_URL": tg.url}
    assert main(["--timeout", "5"], environ=env) == 0
    assert tg.records[0][1]["text"].startswith("ℹ️ copyhub-test · alert test")
    out = capsys.readouterr().out
    assert "telegram   delivered" in out and TOKEN not in out

    dead = {**env, "COPYHUB_TELEGRAM_API_URL": f"http://127.0.0.1:{unused_port()}"}
    assert main(["--timeout", "0.3"], environ=dead) == 1
    assert "telegram   NOT DELIVERED" in capsys.readouterr().out
