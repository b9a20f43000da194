"""Delivery to local stand-ins for the Telegram Bot API and a JSON webhook."""
import logging

from alerts import (
    Alert,
    AlertDispatcher,
    RetryPolicy,
    TelegramChannel,
    WebhookChannel,
    build_dispatcher_from_env,
    format_text,
    to_payload,
)

TOKEN = "123456789:AAF-secret_TokenValue"
FAST = RetryPolicy(base_s=0.02, cap_s=0.1, jitter=0.1)


def alert(account="FTMO_Slave_02", level="pause", **kw):
    base = dict(rule="daily_loss", value=4275.0, limit=5000.0, unit="USD", action_taken="copying paused",
                node="slave-02", ts_ms=1_700_000_000_000)
    base.update(kw)
    return Alert(account=account, level=level, **base)


def test_telegram_and_webhook_receive_the_right_requests(endpoint, recorder, wait):
    tg, hook = endpoint(), endpoint()
    disp = AlertDispatcher(
        [TelegramChannel(TOKEN, "-100777", base_url=tg.url, timeout=2), WebhookChannel(hook.url + "/hooks/abc", timeout=2)],
        logger=recorder, retry=FAST)
    a = alert()
    assert disp.send(a)
    assert wait(lambda: len(tg.records) == 1 and len(hook.records) == 1)
    disp.close()

    path, body = tg.records[0]
    assert path == f"/bot{TOKEN}/sendMessage"
    assert body["chat_id"] == "-100777"
    assert body["text"] == format_text(a)
    assert TOKEN not in str(body)

    path, body = hook.records[0]
    assert path == "/hooks/abc"
    assert body == to_payload(a)
    assert body["text"].startswith("⏸️ FTMO_Slave_02 · daily loss\n4,275.00 USD of 5,000.00 USD limit (85.5%)")

    logged = recorder.events("alert")
    assert len(logged) == 1 and logged[0]["account"] == "FTMO_Slave_02" and logged[0]["level"] == "pause"


def test_log_channel_uses_level_matching_severity(recorder, wait):
    disp = AlertDispatcher(logger=recorder)
    for i, lvl in enumerate(["info", "warn", "pause", "flatten", "critical"]):
        disp.send(alert(account=f"A{i}", level=lvl))
    assert disp.close() == 0
    methods = [m for m, e, _ in recorder.calls if e == "alert"]
    assert methods == ["info", "warning", "warning", "error", "critical"]


def test_stdlib_logger_is_accepted(caplog):
    logger = logging.getLogger("copyhub.test.alerts")
    with caplog.at_level(logging.INFO, logger="copyhub.test.alerts"):
        disp = AlertDispatcher(logger=logger)
        disp.send(alert(level="warn"))
        assert disp.close() == 0
    assert "alert" in caplog.text and "FTMO_Slave_02" in caplog.text


def test_default_logger_is_structlog():
    disp = AlertDispatcher()
    try:
        assert hasattr(disp.logger, "warning")
        assert disp.send(alert())
    finally:
        assert disp.close() == 0


def test_build_from_env_enables_configured_channels(endpoint, recorder, wait):
    tg, hook = endpoint(), endpoint()
    env = {
        "COPYHUB_TELEGRAM_TOKEN": TOKEN,
        "COPYHUB_TELEGRAM_CHAT_ID": "42",
        "COPYHUB_TELEGRAM_API_URL": tg.url,
        "COPYHUB_ALERT_WEBHOOK_URL": hook.url + "/x",
    }
    disp = build_dispatcher_from_env(recorder, environ=env, retry=FAST)
    assert disp.channel_names == ["log", "telegram", "webhook"]
    disp.send(alert())
    assert wait(lambda: len(tg.records) == 1 and len(hook.records) == 1)
    assert disp.close() == 0
    assert tg.records[0][0] == f"/bot{TOKEN}/sendMessage"
    assert tg.records[0][1]["chat_id"] == "42"
    assert TOKEN not in recorder.text()


def test_build_from_env_reads_os_environ(monkeypatch, endpoint, recorder, wait):
    hook = endpoint()
    for var in ("COPYHUB_TELEGRAM_TOKEN", "COPYHUB_TELEGRAM_CHAT_ID", "COPYHUB_TELEGRAM_API_URL"):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setenv("COPYHUB_ALERT_WEBHOOK_URL", hook.url + "/y")
    disp = build_dispatcher_from_env(recorder)
    assert disp.channel_names == ["log", "webhook"]
    disp.send(alert())
    assert wait(lambda: len(hook.records) == 1)
    assert disp.close() == 0


def test_only_log_channel_when_nothing_configured(recorder):
    disp = build_dispatcher_from_env(recorder, environ={})
    assert disp.channel_names == ["log"]
    assert disp.close() == 0


def test_telegram_429_retry_after_is_honoured(endpoint, recorder, wait):
    tg = endpoint()
    tg.mode = "429"
    disp = AlertDispatcher([TelegramChannel(TOKEN, "1", base_url=tg.url, timeout=2)], logger=recorder,
                           include_log=False, retry=RetryPolicy(base_s=30, cap_s=60))
    disp.send(alert())
    assert wait(lambda: tg.failures >= 2)  # retry_after=0 overrides the 30 s backoff
    tg.mode = "ok"
    assert wait(lambda: len(tg.records) == 1)
    assert disp.close() == 0
