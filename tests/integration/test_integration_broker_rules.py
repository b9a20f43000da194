"""Issue 9, faults 6-8 on real processes (sim server, bus proxy, master and slave nodes):
FIFO followers, pending-order expiry across time zones, and a pending order that fills
between the master's two terminal reads."""
from __future__ import annotations

import time
from datetime import datetime, timezone

import pytest

from testing.harness import LocalFleet, wait_until
from tests.integration.conftest import FAST
from tests.integration.mt5ops import close, market, volumes

pytestmark = pytest.mark.integration

MASTER_SERVER, SLAVE_SERVER = "SimEET-Server", "SimMSK-Server"
MASTER, FOLLOWER, FIFO = 1001, 2001, 2005


def _symbol(name: str, offset: float = 0.0) -> str:
    return f'''
[brokers.{{broker}}.symbols."{name}"]
underlying = "EURUSD"
offset = {offset}
digits = 5
contract_size = 100000
volume_min = 0.01
volume_step = 0.01
volume_max = 100
filling_mode = 3
spread = 5
calc_mode = "forex"
currency_base = "EUR"
currency_profit = "USD"
'''


def world(start: str) -> str:
    """Master broker at UTC+2, follower broker at UTC+3, neither with DST; a hedging
    follower and a hedging FIFO follower (ACCOUNT_FIFO_CLOSE)."""
    return f'''
[world]
start = "{start}"
history_hours = 1

[underlyings]
EURUSD = {{ price = 1.08500, volatility = 0.0010 }}

[brokers.{MASTER_SERVER}]
utc_offset = 2
first_order_ticket = 50000001
first_deal_ticket = 30000001
{_symbol("EURUSD").replace("{broker}", MASTER_SERVER)}
[brokers.{SLAVE_SERVER}]
utc_offset = 3
first_order_ticket = 70000001
first_deal_ticket = 60000001
{_symbol("EURUSD.c", 0.00002).replace("{broker}", SLAVE_SERVER)}
[[accounts]]
login = {MASTER}
broker = "{MASTER_SERVER}"
balance = 100000

[[accounts]]
login = {FOLLOWER}
broker = "{SLAVE_SERVER}"
balance = 100000

[[accounts]]
login = {FIFO}
broker = "{SLAVE_SERVER}"
balance = 100000
fifo_close = true
'''


@pytest.fixture
def zones_fleet(tmp_path):
    # the world starts now, so each node's server-offset estimate (tick time vs UTC) is right
    start = datetime.fromtimestamp(int(time.time()), tz=timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")
    path = tmp_path / "zones.toml"
    path.write_text(world(start))
    f = LocalFleet(tmp_path, tick_hz=0, env=FAST)
    try:
        f.start_sim(str(path))
        f.start_proxy()
        f.sim_account("M", "MASTER", MASTER)
        f.sim_account("S", "SLAVE", FOLLOWER, suffix=".c", slippage_tolerance=300)
        f.sim_account("F", "SLAVE", FIFO, suffix=".c", slippage_tolerance=300)
        f.start_node("master", "M")
        f.wait_node_running("M")
        for name in ("S", "F"):
            f.start_node("slave", name)
        for name in ("S", "F"):
            f.wait_node_running(name)
        wait_until(lambda: f.store.get_flag("follow:S:M") and f.store.get_flag("follow:F:M"), timeout=10, message="follow records")
        yield f
    finally:
        f.close()


def _link(fleet, slave, ticket):
    return next((t for t in fleet.trades(slave) if int(t["master_ticket"]) == ticket), None)


def test_fault6_fifo_follower_closes_the_oldest_copy_and_keeps_0_10(zones_fleet):
    fleet, admin = zones_fleet, zones_fleet.admin
    m, f = fleet.terminal(MASTER), fleet.terminal(FIFO)
    assert f.account_info().fifo_close is True
    a = market(m, "EURUSD", "BUY", 0.10).order
    wait_until(lambda: volumes(f, "EURUSD.c") == [0.10], timeout=15, message="copy of A")
    admin.advance(1)  # B' is strictly younger than A'
    b = market(m, "EURUSD", "BUY", 0.10).order
    wait_until(lambda: volumes(f, "EURUSD.c") == [0.10, 0.10], timeout=15, message="copy of B")
    a_copy = _link(fleet, "F", a)["slave_ticket"]
    b_copy = _link(fleet, "F", b)["slave_ticket"]
    close(m, b)
    wait_until(lambda: volumes(f, "EURUSD.c") == [0.10], timeout=15, message="FIFO follower back to 0.10")
    (left,) = f.positions_get(symbol="EURUSD.c")
    assert left.ticket == b_copy and not f.positions_get(ticket=a_copy)  # A' (the oldest) was closed
    wait_until(lambda: _link(fleet, "F", a)["slave_ticket"] == b_copy and _link(fleet, "F", b)["status"] == "CLOSED",
               timeout=10, message="links re-pointed")
    assert _link(fleet, "F", a)["status"] == "OPEN"
    # the hedging (non-FIFO) follower closed B' itself
    s = fleet.terminal(FOLLOWER)
    wait_until(lambda: volumes(s, "EURUSD.c") == [0.10], timeout=15, message="hedging follower")
    # FIFO partial close: the master halves A; the follower halves the copy A now tracks
    close(m, a, 0.05)
    wait_until(lambda: volumes(f, "EURUSD.c") == [0.05], timeout=15, message="FIFO partial close")
    close(m, a)
    wait_until(lambda: volumes(f, "EURUSD.c") == [], timeout=15, message="all closed")
    wait_until(lambda: _link(fleet, "F", a)["status"] == "CLOSED", timeout=10, message="A closed")


def _server_s(iso: str) -> int:
    return int(datetime.fromisoformat(iso).replace(tzinfo=timezone.utc).timestamp())


def test_fault7_expiry_travels_across_time_zones_and_the_copy_expires_with_the_master_down(zones_fleet):
    fleet, admin = zones_fleet, zones_fleet.admin
    m, s = fleet.terminal(MASTER), fleet.terminal(FOLLOWER)
    tick = m.symbol_info_tick("EURUSD")
    expires = int(tick.time) + 180  # master server time (UTC+2), three minutes ahead
    r = m.order_send({"action": m.TRADE_ACTION_PENDING, "symbol": "EURUSD", "volume": 0.10, "type": m.ORDER_TYPE_BUY_LIMIT,
                      "price": round(tick.ask - 0.00200, 5), "type_filling": m.ORDER_FILLING_RETURN,
                      "type_time": m.ORDER_TIME_SPECIFIED, "expiration": expires})
    assert r.retcode == m.TRADE_RETCODE_DONE, r
    wait_until(lambda: len(s.orders_get() or ()) == 1, timeout=15, message="pending copy")
    (copy,) = s.orders_get()
    # UTC+2 -> UTC+3: the same instant is one hour later on the follower's server clock
    assert copy.type_time == s.ORDER_TIME_SPECIFIED and copy.time_expiration == expires + 3600
    fleet.procs["M"].kill()  # the master node is down across the expiry
    admin.advance(240)
    assert s.orders_get() == () and m.orders_get() == ()
    assert s.history_orders_get(ticket=copy.ticket)[0].state == s.ORDER_STATE_EXPIRED
    admin.set_price("EURUSD", round(tick.bid - 0.00400, 5), broker=MASTER_SERVER)  # through the limit
    time.sleep(1.0)  # a few reconcile passes of the follower
    assert s.positions_get() == () and m.positions_get() == ()  # no trade the master never had


def test_fault8_buy_stop_filling_between_the_masters_reads_keeps_the_copy(zones_fleet):
    fleet, admin = zones_fleet, zones_fleet.admin
    m, s = fleet.terminal(MASTER), fleet.terminal(FOLLOWER)
    tick = m.symbol_info_tick("EURUSD")
    stop = round(tick.ask + 0.00100, 5)
    r = m.order_send({"action": m.TRADE_ACTION_PENDING, "symbol": "EURUSD", "volume": 0.20, "type": m.ORDER_TYPE_BUY_STOP,
                      "price": stop, "type_filling": m.ORDER_FILLING_RETURN})
    assert r.retcode == m.TRADE_RETCODE_DONE, r
    wait_until(lambda: len(s.orders_get() or ()) == 1, timeout=15, message="pending copy")
    # a slow terminal (150 ms a call), and the stop triggers right after the first of the
    # master's two reads of its next poll: the widest window, hit every time
    admin.inject_fault(MASTER, "latency", ms=150)
    admin.inject_fault(MASTER, "price_after", call="positions_get,orders_get", symbol="EURUSD",
                       bid=round(stop + 0.00050, 5), broker=MASTER_SERVER)
    wait_until(lambda: s.symbol_info_tick("EURUSD.c").bid > stop, timeout=10, message="the stop triggered")
    wait_until(lambda: (_link(fleet, "S", r.order) or {}).get("kind") == "position", timeout=15, message="copy adopted")
    time.sleep(1.5)  # several master polls and follower passes
    link = _link(fleet, "S", r.order)
    assert link["status"] == "OPEN" and not link.get("close_reason"), link
    assert volumes(s, "EURUSD.c") == [0.20]
    admin.clear_faults(MASTER)
    assert m.positions_get()[0].identifier == r.order  # the master position is open and copied
