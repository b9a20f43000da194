"""The guardian with real processes: sim server, bus proxy, master and slave nodes.

A prop account (demo login 2004: 10k, hedging, SimProp-Server) under ``ftmo_2step``
pauses, flattens before the firm's floor, stays locked across a restart and closes a
trade opened by hand; a per-trade risk limit skips a copy with the reason recorded; a
dead alert webhook does not stop copying and gets its alerts once it is back; and a
restart mid-day rebuilds the same day-start reference from the deal history.
"""
from __future__ import annotations

import json
import statistics
import threading
import time
from datetime import datetime, timezone
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from messaging.subscriber import Subscriber
from testing.harness import LocalFleet, free_port, wait_until
from tests.integration.conftest import FAST, SYMBOL_MAP, TOLERANCE
from tests.integration.mt5ops import close, market, volumes

pytestmark = pytest.mark.integration

RISK_FAST = {**FAST, "COPYHUB_RISK_EVAL_INTERVAL_MS": "200", "COPYHUB_SNAPSHOT_INTERVAL_MS": "1000"}
FTMO_10K = {"profile": "ftmo_2step", "initial_balance": 10000}
FIRM_FLOOR = 9500.0  # 10k - 5 % of initial (day start 10k: funded today)
SLAVE = dict(suffix=".c", symbol_map=SYMBOL_MAP, slippage_tolerance=TOLERANCE)


def _fleet(tmp_path, env=None) -> LocalFleet:
    f = LocalFleet(tmp_path, tick_hz=0, env={**RISK_FAST, **(env or {})})
    f.start_sim()
    f.start_proxy()
    f.sim_account("M", "MASTER", 1001)
    return f


def _start(f: LocalFleet, *slaves: str) -> None:
    f.start_node("master", "M")
    f.wait_node_running("M")
    for name in slaves:
        f.start_node("slave", name)
    for name in slaves:
        f.wait_node_running(name)
    wait_until(lambda: all(f.store.get_flag(f"follow:{s}:M") for s in slaves), timeout=10, message="follow records")


def _events(f: LocalFleet, name: str, kind: str) -> list[dict]:
    return f.store.list_events(account=name, kind=kind, limit=None)


def _risk_info(f: LocalFleet, name: str) -> dict:
    doc = f.store.get_node(name) or {}
    return (doc.get("info") or {}).get("risk") or {}


@pytest.fixture
def fleet(tmp_path):
    f = _fleet(tmp_path)
    try:
        yield f
    finally:
        f.close()


def test_ftmo_account_pauses_flattens_before_the_floor_stays_locked_and_closes_manual_trades(fleet):
    fleet.sim_account("P", "SLAVE", 2004, risk=FTMO_10K, **SLAVE)
    _start(fleet, "P")
    status = Subscriber(fleet.bus_sub, ["status.P"])
    m, p = fleet.terminal(1001), fleet.terminal(2004)
    market(m, "EURUSD", "BUY", 1.0)
    wait_until(lambda: volumes(p) == [1.0], timeout=10, message="copy on the prop account")
    lowest = p.account_info().equity
    fleet.admin.move_price("EURUSD", -300)  # about 60 % of the daily limit in one go

    def seen_by_guardian(equity: float) -> bool:
        """The slave's heartbeat reports an evaluation of this equity (or the guardian acted)."""
        msg = status.recv(timeout_ms=100)
        risk = (msg.info.get("risk") or {}) if msg is not None else {}
        return abs((risk.get("equity") or 0) - equity) < 0.005 or bool(risk.get("locked"))

    def step(points: int = -10) -> None:
        nonlocal lowest
        fleet.admin.move_price("EURUSD", points)  # $10 per step on 1 lot: 2 % of the 500 limit
        equity = p.account_info().equity
        lowest = min(lowest, equity)
        # wait for the guardian to have evaluated this price: no step outruns it, even on a busy box
        wait_until(lambda: seen_by_guardian(equity) or not p.positions_get(), timeout=15, interval=0,
                   message="the guardian's evaluation of the step")

    for _ in range(30):
        step()
        if _events(fleet, "P", "risk_paused"):
            break
    assert _events(fleet, "P", "risk_paused") and not _events(fleet, "P", "risk_locked")
    assert volumes(p) == [1.0]  # paused, not flattened

    # paused: a new master position is not copied, and the trades row says why
    gbp = market(m, "GBPUSD", "BUY", 0.1)
    wait_until(lambda: [t for t in fleet.trades("P", "SKIPPED") if t["master_ticket"] == gbp.order], timeout=10,
               message="SKIPPED row for the position opened while paused")
    [row] = [t for t in fleet.trades("P") if t["master_ticket"] == gbp.order]
    assert "paused" in row["skip_reason"]
    assert not p.positions_get(symbol="GBPUSD.c")

    for _ in range(30):
        step()
        if _events(fleet, "P", "risk_locked"):
            break
    wait_until(lambda: p.positions_get() == (), timeout=5, message="prop account flat")
    assert lowest > FIRM_FLOOR and p.account_info().balance > FIRM_FLOOR  # never touched the firm's floor
    print(f"\nlowest equity {lowest:.2f}, balance after the flatten {p.account_info().balance:.2f} (firm floor {FIRM_FLOOR})")
    [locked] = _events(fleet, "P", "risk_locked")
    assert locked["data"]["closed"] == 1 and locked["data"]["failed"] == 0
    closes = _events(fleet, "P", "risk_position_closed")
    assert [c["data"]["why"] for c in closes] == ["flatten"] and closes[0]["data"]["copied"] is True
    assert fleet.store.get_flag("risk_lock:P")["reason"].startswith("flatten level reached")
    time.sleep(1.0)
    assert volumes(p) == []  # the master's position is still open: the locked slave does not copy it again

    # a restart of the slave process: still locked
    fleet.procs["P"].stop()
    fleet.start_node("slave", "P")
    wait_until(lambda: len(_events(fleet, "P", "risk_started")) == 2, timeout=20, message="second guardian start")
    assert _events(fleet, "P", "risk_started")[-1]["data"]["locked"] is True
    wait_until(lambda: _risk_info(fleet, "P").get("locked") is True and
               (fleet.store.get_node("P") or {}).get("pid") == fleet.procs["P"].pid, timeout=10, message="locked status")

    # a trade opened by hand while locked is closed at once, and recorded
    manual = market(p, "USDJPY.c", "SELL", 0.1, comment="by hand")
    wait_until(lambda: p.positions_get() == (), timeout=5, message="manual trade closed")

    def close_events() -> list:  # written right after the close's order_send returns
        return [c for c in _events(fleet, "P", "risk_position_closed") if c["data"]["ticket"] == manual.order]

    wait_until(close_events, timeout=5, message="the manual trade's close recorded")
    [closed] = close_events()
    assert closed["data"]["why"] == "locked" and closed["data"]["copied"] is False
    status.close()


def test_a_flatten_with_commission_realises_no_more_than_the_limit_and_is_recorded_as_the_guardians(fleet):
    """The user's trial (FTMO 2-Step 10k, 3 lots copied, $3 per lot and side charged by the
    simulator on every deal): with ``flatten_at`` 99 % the buffer to the firm's line (5.00) is
    smaller than the exit commission (9.00). The guardian counts that commission in what is
    used, so the flatten fires where the realised loss is 99 %: the balance after the closes
    stays above 9,500. Measured on equity alone it realised 99 % + 9.00, past the line.
    The pause's skip says ``risk: paused by the guardian (...)``, the heartbeat says who
    paused, and the copy's link is closed by the guardian (cause ``risk``), not by hand."""
    fleet.sim_account("P", "SLAVE", 2004, risk={**FTMO_10K, "flatten_at": 0.99}, **SLAVE)
    _start(fleet, "P")
    status = Subscriber(fleet.bus_sub, ["status.P"])
    m, p = fleet.terminal(1001), fleet.terminal(2004)
    first = market(m, "EURUSD", "BUY", 3.0)
    wait_until(lambda: volumes(p) == [3.0], timeout=10, message="3 lots copied on the prop account")
    assert p.account_info().balance == pytest.approx(10_000.0 - 9.0)  # the entry side, charged by the simulator
    last: dict = {}

    def seen_by_guardian(equity: float) -> bool:
        msg = status.recv(timeout_ms=100)
        if msg is not None:
            last.clear()
            last.update(msg.info)
        risk = (msg.info.get("risk") or {}) if msg is not None else {}
        return abs((risk.get("equity") or 0) - equity) < 0.005 or bool(risk.get("locked"))

    def step(points: int) -> None:
        fleet.admin.move_price("EURUSD", points)
        equity = p.account_info().equity
        wait_until(lambda: seen_by_guardian(equity) or not p.positions_get(), timeout=15, interval=0,
                   message="the guardian's evaluation of the step")

    step(-140)  # $420 on 3 lots: past the pause level (85 %) with the round turn counted
    wait_until(lambda: _events(fleet, "P", "risk_paused"), timeout=5, message="paused")
    assert last["risk"]["closing_cost"] == 9.0
    assert last["paused"] is False and last["paused_by"] == "risk"
    assert last["pause_reason"].startswith("risk: paused by the guardian (daily_loss ")
    gbp = market(m, "GBPUSD", "BUY", 0.1)
    wait_until(lambda: [t for t in fleet.trades("P", "SKIPPED") if t["master_ticket"] == gbp.order], timeout=10,
               message="SKIPPED row for the position opened while paused")
    [row] = [t for t in fleet.trades("P") if t["master_ticket"] == gbp.order]
    assert row["skip_reason"].startswith("risk: paused by the guardian (daily_loss ")
    assert row["skip_reason"].endswith("% of 500.00, pause at 85%) when the master opened it")

    for _ in range(40):  # $3 per step on 3 lots
        step(-1)
        if _events(fleet, "P", "risk_locked"):
            break
    wait_until(lambda: p.positions_get() == (), timeout=5, message="prop account flat")
    balance = p.account_info().balance
    [started] = _events(fleet, "P", "risk_flatten_started")
    [daily] = [r for r in started["data"]["rules"] if r["rule"] == "daily_loss"]
    print(f"\nflatten at {daily['used_money']:.2f} used ({daily['used_pct']:.2f} %, of which "
          f"{started['data']['closing_cost']:.2f} closing cost); balance after {balance:.2f} (firm floor {FIRM_FLOOR})")
    assert balance > FIRM_FLOOR  # the realised loss stays within FTMO's 500
    assert started["data"]["closing_cost"] == 9.0 and 495.0 <= daily["used_money"] < 498.0
    assert 10_000.0 - balance == pytest.approx(daily["used_money"], abs=0.01)  # realised = what it measured

    # the copy's link: closed by the guardian, for good
    def link():
        return fleet.store.get_trade("P", "M", first.order)

    wait_until(lambda: link()["status"] == "CLOSED", timeout=10, message="the copy's link closed")
    rule = fleet.store.get_flag("risk_lock:P")["reason"].removeprefix("flatten level reached: ").split(" (")[0]
    assert (link()["close_cause"], link()["close_reason"]) == ("risk", f"closed by the guardian: flatten ({rule})")
    closed = [e for e in _events(fleet, "P", "link_closed") if e["data"]["master_ticket"] == first.order]
    assert [e["data"]["cause"] for e in closed] == ["risk"]
    time.sleep(1.0)
    assert volumes(p) == []  # never reopened while the master holds its position
    status.close()


def test_a_copy_over_the_per_trade_risk_limit_is_skipped_with_the_reason(fleet):
    fleet.sim_account("P", "SLAVE", 2001, risk={"profile": "ftmo_2step", "initial_balance": 100000,
                                                "max_risk_per_trade_pct": 0.5}, **SLAVE)
    _start(fleet, "P")
    m, p = fleet.terminal(1001), fleet.terminal(2001)
    tick = m.symbol_info_tick("EURUSD")
    sl = round(tick.bid - 0.0100, 5)  # 1000 points: $1000 at SL for 1 lot = 1 % of 100k
    big = market(m, "EURUSD", "BUY", 1.0, sl=sl)
    small = market(m, "EURUSD", "BUY", 0.2, sl=sl)  # $200 = 0.2 %: within the limit
    wait_until(lambda: volumes(p) == [0.2], timeout=10, message="the small copy")
    wait_until(lambda: fleet.store.get_trade("P", "M", big.order) and
               fleet.store.get_trade("P", "M", big.order)["status"] == "SKIPPED", timeout=10, message="SKIPPED")
    row = fleet.store.get_trade("P", "M", big.order)
    assert row["skip_reason"].startswith("risk:") and "risk at SL" in row["skip_reason"] and "max 0.5%" in row["skip_reason"]
    assert fleet.store.get_trade("P", "M", small.order)["status"] == "OPEN"
    time.sleep(0.8)
    assert volumes(p) == [0.2]  # a skip is final: never retried


class _Webhook:
    """A JSON webhook receiver on a fixed port, started and stopped by the test."""

    def __init__(self, port: int) -> None:
        self.port, self.bodies, self.server = port, [], None

    def start(self) -> None:
        hook = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args):
                pass

            def do_POST(self):
                body = json.loads(self.rfile.read(int(self.headers.get("Content-Length", "0"))) or b"null")
                hook.bodies.append(body)
                self.send_response(200)
                self.send_header("Content-Length", "0")
                self.end_headers()

        self.server = ThreadingHTTPServer(("127.0.0.1", self.port), Handler)
        self.server.daemon_threads = True
        threading.Thread(target=self.server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True).start()

    def stop(self) -> None:
        if self.server is not None:
            self.server.shutdown()
            self.server.server_close()


def _copy_round_trips(f: LocalFleet, m, p, n: int) -> list[float]:
    """Open on the master, time until the copy exists on the slave (test-side wall clock), close."""
    out = []
    for _ in range(n):
        t0 = time.perf_counter()
        r = market(m, "EURUSD", "BUY", 0.01)
        wait_until(lambda: len(p.positions_get(symbol="EURUSD.c")) == 1, timeout=10, interval=0.002, message="copy")
        out.append((time.perf_counter() - t0) * 1000)
        close(m, r.order)
        wait_until(lambda: p.positions_get(symbol="EURUSD.c") == (), timeout=10, interval=0.005, message="close")
    return out


def test_a_dead_alert_webhook_does_not_stop_copying_and_alerts_arrive_when_it_returns(tmp_path, capsys):
    port = free_port()
    hook = _Webhook(port)
    f = _fleet(tmp_path, env={"COPYHUB_ALERT_WEBHOOK_URL": f"http://127.0.0.1:{port}/hook"})
    try:
        f.sim_account("P", "SLAVE", 2004, risk={**FTMO_10K, "warn_at": 0.05, "pause_at": 0.9, "flatten_at": 0.99}, **SLAVE)
        _start(f, "P")
        m, p = f.terminal(1001), f.terminal(2004)
        before = _copy_round_trips(f, m, p, 6)
        # a losing position takes the account past warn: the alert goes to a dead webhook
        hold = market(m, "GBPUSD", "BUY", 0.5)
        wait_until(lambda: len(p.positions_get(symbol="GBPUSD.c")) == 1, timeout=10, message="copy")
        f.admin.move_price("GBPUSD", -150)
        wait_until(lambda: [e for e in _events(f, "P", "risk_level") if e["data"]["new"] == "WARN"], timeout=10,
                   message="warn level")
        during = _copy_round_trips(f, m, p, 6)  # copying goes on while the alert worker retries
        assert volumes(p) == [0.5]
        time.sleep(1.0)
        assert hook.bodies == []
        hook.start()
        wait_until(lambda: any(b.get("account") == "P" and b.get("rule") == "daily_loss" and b.get("level") == "warn"
                               for b in hook.bodies), timeout=30, message="the warn alert delivered")
        close(m, hold.order)
        wait_until(lambda: volumes(p) == [], timeout=10, message="close")
        warn = next(b for b in hook.bodies if b.get("rule") == "daily_loss")
        assert "P · daily loss" in warn["text"] and "Action:" in warn["text"]
        with capsys.disabled():
            print(f"\ncopy round trip ms (master order_send -> copy seen), no alert pending: median "
                  f"{statistics.median(before):.1f} max {max(before):.1f}; webhook down and alerts being retried: "
                  f"median {statistics.median(during):.1f} "
                  f"max {max(during):.1f}")
    finally:
        hook.stop()
        f.close()


def test_a_restart_mid_day_rebuilds_the_same_reference_from_history(fleet):
    utc = lambda *a: datetime(*a, tzinfo=timezone.utc)  # noqa: E731
    fleet.admin.set_time(utc(2025, 1, 5, 21, 30))  # Sunday evening, before FTMO's reset (23:00 UTC)
    fleet.sim_account("P", "SLAVE", 2004, risk=FTMO_10K, **SLAVE)
    _start(fleet, "P")
    m, p = fleet.terminal(1001), fleet.terminal(2004)

    def round_trip(points: int) -> None:
        r = market(m, "EURUSD", "BUY", 0.5)
        wait_until(lambda: volumes(p) == [0.5], timeout=10, message="copy")
        fleet.admin.move_price("EURUSD", points)
        close(m, r.order)
        wait_until(lambda: volumes(p) == [], timeout=10, message="close")

    round_trip(+120)  # yesterday: a win
    fleet.admin.set_time(utc(2025, 1, 5, 23, 0, 30))  # a new FTMO day
    fleet.admin.move_price("EURUSD", 1)
    round_trip(-60)  # today: a loss
    round_trip(+20)
    balance = p.account_info().balance
    wait_until(lambda: _risk_info(fleet, "P").get("day") == "2025-01-06" and
               _risk_info(fleet, "P").get("balance") == balance, timeout=10, message="status after today's trades")
    before = _risk_info(fleet, "P")
    assert before["day_start_balance"] != pytest.approx(balance)  # today's trades moved the balance

    fleet.procs["P"].stop()
    fleet.store.delete_flag("risk_state:P")  # nothing persisted: history alone must give the reference
    fleet.start_node("slave", "P")
    wait_until(lambda: len(_events(fleet, "P", "risk_started")) == 2, timeout=20, message="restarted guardian")
    wait_until(lambda: (fleet.store.get_node("P") or {}).get("pid") == fleet.procs["P"].pid and _risk_info(fleet, "P"),
               timeout=10, message="status of the new process")
    after = _risk_info(fleet, "P")
    assert after["day"] == before["day"]
    assert after["day_start_balance"] == pytest.approx(before["day_start_balance"])
    assert after["daily_reference"] == pytest.approx(before["daily_reference"])
    assert _events(fleet, "P", "risk_started")[-1]["data"]["day_start_balance"] == pytest.approx(before["day_start_balance"])
