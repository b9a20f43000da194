"""A dead endpoint never blocks the caller or other channels; alerts wait in order and are
delivered when it returns; too-old alerts are dropped with a log line."""
import threading

from alerts import Alert, AlertDispatcher, RetryPolicy, TelegramChannel, WebhookChannel

TOKEN = "987654:ZZZ-another_Secret"
FAST = RetryPolicy(base_s=0.02, cap_s=0.1, jitter=0.1)


def numbered(i, level="warn"):
    # distinct accounts, so dedup lets every one through
    return Alert(account=f"acct-{i:04d}", rule="daily_loss", level=level, value=float(i), limit=1000.0, unit="USD")


def accounts(bodies):
    return [b["account"] for b in bodies]


def test_thousand_sends_complete_while_endpoint_hangs_then_delivered_in_order(endpoint, recorder, wait):
    hook = endpoint()
    hook.mode = "hold"
    disp = AlertDispatcher([WebhookChannel(hook.url + "/h", timeout=0.3)], logger=recorder,
                           include_log=False, queue_size=2000, retry=FAST)
    try:
        disp.send(numbered(0))
        assert wait(lambda: hook.held >= 1)  # the worker is now stuck inside a request

        completed = 0
        for i in range(1, 1001):
            disp.send(numbered(i))
            completed += 1
        assert completed == 1000
        # all sends returned while the endpoint was still hung and had accepted nothing
        assert not hook.gate.is_set() and hook.records == []

        hook.mode = "ok"
        hook.gate.set()
        assert wait(lambda: len(hook.records) == 1001, timeout=30)
        assert accounts(hook.bodies()) == [f"acct-{i:04d}" for i in range(1001)]
        # the endpoint records a body before it answers; the dispatcher counts it once answered
        assert wait(lambda: disp.stats()["channels"]["webhook"]["delivered"] == 1001, timeout=10)
        st = disp.stats()["channels"]["webhook"]
        assert st["delivered"] == 1001 and st["retries"] >= 1 and st["dropped_overflow"] == 0
    finally:
        disp.close(timeout=5)


def test_closed_port_then_endpoint_comes_up_on_it(endpoint, recorder, wait, unused_port):
    port = unused_port()
    disp = AlertDispatcher([WebhookChannel(f"http://127.0.0.1:{port}/x", timeout=0.5)], logger=recorder,
                           include_log=False, retry=FAST)
    try:
        for i in range(20):
            disp.send(numbered(i))
        assert wait(lambda: disp.stats()["channels"]["webhook"]["retries"] >= 2)
        assert disp.stats()["channels"]["webhook"]["delivered"] == 0
        down = recorder.events("alert channel down, will retry")
        assert len(down) == 1 and "connection failed" in down[0]["error"]

        hook = endpoint(port)
        assert wait(lambda: len(hook.records) == 20)
        assert accounts(hook.bodies()) == [f"acct-{i:04d}" for i in range(20)]
        assert recorder.events("alert channel recovered")
    finally:
        disp.close(timeout=5)


def test_server_500_then_recovers_in_order(endpoint, recorder, wait):
    hook = endpoint()
    hook.mode = "500"
    disp = AlertDispatcher([WebhookChannel(hook.url, timeout=1)], logger=recorder, include_log=False, retry=FAST)
    try:
        for i in range(10):
            disp.send(numbered(i))
        assert wait(lambda: hook.failures >= 3)
        hook.mode = "ok"
        assert wait(lambda: len(hook.records) == 10)
        assert accounts(hook.bodies()) == [f"acct-{i:04d}" for i in range(10)]
        assert disp.stats()["channels"]["webhook"]["failed"] == 0
    finally:
        disp.close(timeout=5)


def test_hung_webhook_does_not_delay_telegram(endpoint, recorder, wait):
    hook, tg = endpoint(), endpoint()
    hook.mode = "hold"
    disp = AlertDispatcher(
        [WebhookChannel(hook.url, timeout=5), TelegramChannel(TOKEN, "1", base_url=tg.url, timeout=2)],
        logger=recorder, retry=FAST)
    try:
        for i in range(30):
            disp.send(numbered(i))
        # telegram and the log get everything while the webhook still hangs on its first request
        assert wait(lambda: len(tg.records) == 30)
        assert wait(lambda: disp.stats()["channels"]["log"]["delivered"] == 30)
        assert hook.records == [] and not hook.gate.is_set()
        assert [b["text"].split(" · ")[0] for b in tg.bodies()] == ["⚠️ " + f"acct-{i:04d}" for i in range(30)]
    finally:
        hook.mode = "ok"
        hook.gate.set()
        disp.close(timeout=5)


def test_permanent_client_error_is_dropped_not_retried(endpoint, recorder, wait):
    tg = endpoint()
    disp = AlertDispatcher([TelegramChannel(TOKEN, "1", base_url=tg.url, timeout=1)],
                           logger=recorder, include_log=False, retry=FAST)
    try:
        tg.ok_body = {"ok": False, "description": "Bad Request: chat not found"}
        disp.send(numbered(1))
        disp.send(numbered(2))
        assert wait(lambda: disp.stats()["channels"]["telegram"]["failed"] == 2)
        failed = recorder.events("alert delivery failed")
        assert "chat not found" in failed[0]["error"]
        assert disp.stats()["channels"]["telegram"]["retries"] == 0
    finally:
        disp.close(timeout=5)


def test_alert_older_than_max_age_is_dropped_with_a_log_line(endpoint, recorder, wait, fake_clock):
    hook = endpoint()
    hook.mode = "500"
    policy = RetryPolicy(base_s=0.02, cap_s=0.05, jitter=0.0, max_age_s=3600)
    disp = AlertDispatcher([WebhookChannel(hook.url, timeout=1)], logger=recorder, include_log=False,
                           retry=policy, clock=fake_clock)
    try:
        disp.send(numbered(1))
        assert wait(lambda: hook.failures >= 2)
        fake_clock.advance(3601)
        disp.send(numbered(2))  # young: must survive the drop of #1
        assert wait(lambda: disp.stats()["channels"]["webhook"]["dropped_expired"] == 1)
        dropped = recorder.events("alert dropped, too old to deliver")
        assert dropped[0]["account"] == "acct-0001" and dropped[0]["age_s"] >= 3600
        hook.mode = "ok"
        assert wait(lambda: len(hook.records) == 1)
        assert accounts(hook.bodies()) == ["acct-0002"]
    finally:
        disp.close(timeout=5)


class BlockingChannel:
    """Holds its first delivery until released, then records."""

    name = "fake"

    def __init__(self):
        self.release = threading.Event()
        self.entered = threading.Event()
        self.got = []

    def deliver(self, alert):
        self.entered.set()
        self.release.wait(30)
        self.got.append((alert.account, alert.level))


def test_queue_full_drops_oldest_non_escalation_and_counts(recorder, wait):
    ch = BlockingChannel()
    disp = AlertDispatcher([ch], logger=recorder, include_log=False, queue_size=4, retry=FAST)
    try:
        disp.send(Alert(account="first", rule="r", level="info"))
        assert wait(ch.entered.is_set)  # in flight, not counted in the queue
        disp.send(Alert(account="A", rule="daily_loss", level="warn"))   # escalation from normal
        disp.send(Alert(account="n1", rule="r", level="info"))
        disp.send(Alert(account="A", rule="daily_loss", level="pause"))  # escalation
        disp.send(Alert(account="n2", rule="r", level="info"))
        disp.send(Alert(account="n3", rule="r", level="info"))            # overflow: n1 goes
        disp.send(Alert(account="n4", rule="r", level="info"))            # overflow: n2 goes
        disp.send(Alert(account="A", rule="daily_loss", level="flatten")) # overflow: n3 goes
        st = disp.stats()["channels"]["fake"]
        assert st["dropped_overflow"] == 3 and st["dropped_escalations"] == 0 and st["queued"] == 5
        ch.release.set()
        assert wait(lambda: len(ch.got) == 5)
        assert ch.got == [("first", "info"), ("A", "warn"), ("A", "pause"), ("n4", "info"), ("A", "flatten")]
        assert wait(lambda: recorder.events("alerts dropped, queue full"))
        assert recorder.events("alerts dropped, queue full")[0]["dropped"] == 3
    finally:
        disp.close(timeout=5)


def test_queue_of_only_escalations_stays_bounded(recorder, wait):
    ch = BlockingChannel()
    disp = AlertDispatcher([ch], logger=recorder, include_log=False, queue_size=2, retry=FAST)
    try:
        disp.send(Alert(account="first", rule="r", level="info"))
        assert wait(ch.entered.is_set)
        for acct in ("a", "b", "c"):
            disp.send(Alert(account=acct, rule="r", level="flatten"))
        st = disp.stats()["channels"]["fake"]
        assert st["dropped_overflow"] == 1 and st["dropped_escalations"] == 1
        ch.release.set()
        assert wait(lambda: len(ch.got) == 3)
        assert [a for a, _ in ch.got] == ["first", "b", "c"]
    finally:
        disp.close(timeout=5)
