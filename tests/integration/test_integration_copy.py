"""Copying with real processes: master → bus → two slaves (hedging and netting) at another broker."""
from __future__ import annotations

import time

import pytest
import zmq

from testing.harness import wait_until
from tests.integration.mt5ops import close, market, modify, volumes

pytestmark = pytest.mark.integration


def test_open_is_copied_with_suffix_and_symbol_map_to_hedging_and_netting(running):
    m, s1, s2 = running.terminal(1001), running.terminal(2001), running.terminal(2002)
    market(m, "EURUSD", "BUY", 0.10)
    gold = market(m, "XAUUSD", "SELL", 0.20)
    wait_until(lambda: volumes(s1) == [0.1, 0.2] and volumes(s2) == [0.1, 0.2], timeout=10, message="copies on both slaves")
    assert {p.symbol for p in s1.positions_get()} == {"EURUSD.c", "GOLD"}
    assert {p.symbol for p in s2.positions_get()} == {"EURUSD.c", "GOLD"}
    assert s1.positions_get(symbol="GOLD")[0].type == 1  # SELL
    links = {t["master_ticket"]: t for t in running.trades("S1")}
    assert links[gold.order]["status"] == "OPEN" and links[gold.order]["symbol"] == "GOLD"
    assert links[gold.order]["slave_ticket"] == s1.positions_get(symbol="GOLD")[0].identifier
    assert links[gold.order]["slippage_points"] is not None


def test_close_partial_close_and_sltp_modification_are_mirrored(running):
    m, s1, s2 = running.terminal(1001), running.terminal(2001), running.terminal(2002)
    opened = market(m, "EURUSD", "BUY", 0.20)
    wait_until(lambda: volumes(s1) == [0.2] and volumes(s2) == [0.2], timeout=10, message="copies")
    close(m, opened.order, 0.05)
    wait_until(lambda: volumes(s1) == [0.15] and volumes(s2) == [0.15], timeout=10, message="partial close mirrored")
    tick = m.symbol_info_tick("EURUSD")
    sl, tp = round(tick.bid - 0.0050, 5), round(tick.bid + 0.0080, 5)
    modify(m, opened.order, sl, tp)
    wait_until(lambda: all(p.sl == sl and p.tp == tp for p in s1.positions_get() + s2.positions_get()), timeout=10, message="SL/TP mirrored")
    close(m, opened.order)
    wait_until(lambda: volumes(s1) == [] and volumes(s2) == [], timeout=10, message="close mirrored")
    wait_until(lambda: [t["status"] for t in running.trades("S1")] == ["CLOSED"], timeout=5, message="link closed")
    assert running.trades("S1")[0]["close_reason"] == "master closed"


def test_requote_then_success(running):
    running.admin.inject_fault(2001, "retcode", code=10004, count=2)
    m, s1 = running.terminal(1001), running.terminal(2001)
    market(m, "GBPUSD", "BUY", 0.10)
    wait_until(lambda: volumes(s1) == [0.1], timeout=15, message="copy after requotes")
    # the link becomes OPEN just after the fill (the slave writes it once order_send returns)
    wait_until(lambda: running.trades("S1", "OPEN"), timeout=5, message="the link recorded as open")
    link = running.trades("S1")[0]
    assert link["status"] == "OPEN" and link["attempts_sent"] == 3


def test_slippage_exceeded_is_skipped_with_the_reason(running):
    # the slave's terminal is unreachable while the master opens; by the time it is back,
    # the market has run 500 points: copying late at that price is refused, and recorded
    s1, m = running.terminal(2001), running.terminal(1001)
    running.admin.inject_fault(2001, "disconnect")
    market(m, "EURUSD", "BUY", 0.10)
    running.admin.move_price("EURUSD", 500)
    running.admin.inject_fault(2001, "reconnect")
    wait_until(lambda: running.trades("S1", "SKIPPED"), timeout=15, message="SKIPPED link")
    link = running.trades("S1")[0]
    assert "slippage" in link["skip_reason"] and "tolerance 300" in link["skip_reason"]
    time.sleep(1.0)
    assert volumes(s1) == []


def test_malformed_bus_messages_are_dropped_and_copying_goes_on(running):
    ctx = zmq.Context.instance()
    raw = ctx.socket(zmq.PUB)
    raw.connect(running.bus_pub)
    time.sleep(0.3)  # slow joiner
    for frames in ([b"pos.M", b"{not json"], [b"pos.M", b'{"v":1,"kind":"snapshot","master":"M","epoch":"x","seq":99,"ts_ms":1,"positions":[{"ticket":"NaN"}],"orders":[]}'], [b"pos.M"], [b"pos.M", b'{"v":1,"kind":"snapshot","master":"M","epoch":"x","seq":999,"ts_ms":1,"positions":[],"orders":[],"metrics":null,"extra":' + b"1" * 10 + b"}"]):
        raw.send_multipart(frames)
    raw.close(0)
    m, s1 = running.terminal(1001), running.terminal(2001)
    opened = market(m, "USDJPY", "SELL", 0.10)
    wait_until(lambda: volumes(s1) == [0.1], timeout=10, message="copy after garbage")
    time.sleep(1.0)
    # the forged (well-formed) empty snapshot of a wrong epoch must not have closed anything for long
    assert volumes(s1) == [0.1]
    assert running.procs["S1"].alive() and running.procs["S2"].alive()
    close(m, opened.order)
    wait_until(lambda: volumes(s1) == [], timeout=10, message="close")


def test_bad_account_document_refuses_to_start_and_says_why(fleet):
    fleet.sim_account("Bad", "SLAVE", 2003, slippage_tolerance="abc")
    proc = fleet.start_node("slave", "Bad")
    assert proc.popen.wait(20) == 78
    doc = fleet.store.get_node("Bad")
    assert doc["state"] == "CONFIG_ERROR"
    assert "slippage_tolerance" in doc["reason"] and "Bad" in doc["reason"]
    assert "slippage_tolerance" in proc.output()


def test_pending_order_is_copied_modified_and_removed(running):
    m, s1 = running.terminal(1001), running.terminal(2001)
    tick = m.symbol_info_tick("EURUSD")
    price = round(tick.ask - 0.0100, 5)
    r = m.order_send({"action": m.TRADE_ACTION_PENDING, "symbol": "EURUSD", "volume": 0.10, "type": m.ORDER_TYPE_BUY_LIMIT, "price": price, "type_filling": m.ORDER_FILLING_RETURN, "type_time": m.ORDER_TIME_GTC})
    assert r is not None and r.retcode in (m.TRADE_RETCODE_DONE, m.TRADE_RETCODE_PLACED), (r, m.last_error())
    wait_until(lambda: len(s1.orders_get() or ()) == 1, timeout=10, message="pending copy")
    copy = s1.orders_get()[0]
    assert copy.symbol == "EURUSD.c" and copy.type == s1.ORDER_TYPE_BUY_LIMIT and abs(copy.price_open - price) < 0.0002
    new_price = round(price - 0.0020, 5)
    res = m.order_send({"action": m.TRADE_ACTION_MODIFY, "order": r.order, "price": new_price, "sl": 0.0, "tp": 0.0, "type_time": m.ORDER_TIME_GTC})
    assert res.retcode == m.TRADE_RETCODE_DONE, res
    wait_until(lambda: abs(s1.orders_get()[0].price_open - new_price) < 0.0002, timeout=10, message="pending modified")
    res = m.order_send({"action": m.TRADE_ACTION_REMOVE, "order": r.order})
    assert res.retcode == m.TRADE_RETCODE_DONE, res
    wait_until(lambda: (s1.orders_get() or ()) == (), timeout=10, message="pending removed")


def test_a_master_stored_in_lower_case_is_followed_and_copied(tmp_path):
    """Validation accepts ``"type": "master"`` (a document written by hand into MongoDB, or
    added before the CLI stored one spelling) and the launcher starts it as a master: the
    slaves must subscribe to it too (copier.accounts.is_master_doc), or nothing is copied."""
    from testing.harness import LocalFleet
    from tests.integration.conftest import FAST

    f = LocalFleet(tmp_path, tick_hz=0, env=FAST)
    try:
        f.start_sim()
        f.start_proxy()
        f.sim_account("M", "master", 1001)
        f.sim_account("S1", "slave", 2001, suffix=".c")
        f.start_node("master", "M")
        f.wait_node_running("M")
        f.start_node("slave", "S1")
        f.wait_node_running("S1")
        wait_until(lambda: f.store.get_flag("follow:S1:M"), timeout=10, message="S1 follows the lower-case master")
        market(f.terminal(1001), "EURUSD", "BUY", 0.10)
        wait_until(lambda: volumes(f.terminal(2001)) == [0.1], timeout=10, message="the copy")
    finally:
        f.close()
