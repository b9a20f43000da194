"""The slave loop driven in-process against the simulator: crash windows a process test cannot hit exactly."""
from __future__ import annotations

import pytest
import structlog

from copier.accounts import validate_account
from db import open_store
from messaging.schema import Snapshot
from nodes.slave import SlaveLoop
from sim import Simulator
from terminals.convert import ContractSizes, positions_by_identifier
from tests.nodes.master_feed import feed


class Crash(BaseException):
    """Stands for the process dying: nothing after it runs."""


class FakeRuntime:
    def __init__(self, name, store):
        self.name = name
        self.store = store
        self.log = structlog.get_logger("test")
        self.last_error = None
        self.published = []
        self.events = []
        self.subscriber = self
        self.publisher = self
        self.stop_code = None

    def publish(self, msg):
        self.published.append(msg)

    def subscribe(self, topic):
        pass

    def unsubscribe(self, topic):
        pass

    def event(self, kind, **data):
        self.events.append((kind, data))

    def set_error(self, error):
        self.last_error = error

    def request_stop(self, code=0):
        self.stop_code = code

    def read_account_doc(self):
        return self.store.get_account(self.name)


class CrashAfterSend:
    """The terminal executes the order, then the process dies before anything is recorded."""

    def __init__(self, mt5):
        self._mt5 = mt5

    def __getattr__(self, name):
        return getattr(self._mt5, name)

    def order_send(self, request):
        self._mt5.order_send(request)
        raise Crash()


@pytest.fixture
def world(tmp_path):
    sim = Simulator.demo(seed=3)
    store = open_store(f"sqlite:///{tmp_path / 's.db'}")
    store.upsert_account({"name": "M", "type": "MASTER", "terminal": {"kind": "sim", "login": 1001}})
    store.upsert_account({"name": "S", "type": "SLAVE", "suffix": ".c", "slippage_tolerance": 300, "terminal": {"kind": "sim", "login": 2001}})
    store.set_flag("follow:S:M", {"since_ms": 0})
    master = sim.terminal()
    master.initialize(login=1001)
    yield sim, store, master
    store.close()


def _terminal(sim, login):
    t = sim.terminal()
    assert t.initialize(login=login)
    return t


def _loop(store, mt5):
    rt = FakeRuntime("S", store)
    cfg = validate_account(store.get_account("S"))
    loop = SlaveLoop(rt, mt5, cfg, stale_after_ms=60_000, max_attempts=3)
    loop.start()
    return loop


def _snapshot(master, seq=1):
    from nodes.runtime import utc_ms

    positions = positions_by_identifier(master.positions_get(), contract_size=ContractSizes(master))  # as the master node does
    return Snapshot(master="M", epoch="e1", seq=seq, ts_ms=utc_ms(), positions=tuple(positions.values()), orders=())


def _buy(master, symbol="EURUSD", volume=0.1):
    tick = master.symbol_info_tick(symbol)
    r = master.order_send({"action": 1, "symbol": symbol, "volume": volume, "type": 0, "price": tick.ask, "type_filling": 1})
    assert r.retcode == 10009
    return r


def test_killed_between_send_and_record_restart_makes_no_duplicate(world):
    sim, store, master = world
    _buy(master)
    loop = _loop(store, CrashAfterSend(_terminal(sim, 2001)))
    loop.on_message(_snapshot(master))
    with pytest.raises(Crash):
        loop.reconcile()
    slave = _terminal(sim, 2001)
    assert len(slave.positions_get()) == 1  # the order did execute
    [intent] = store.list_trades(slave_name="S")
    assert intent["status"] == "PENDING"  # the intent was durable before order_send

    restarted = _loop(store, _terminal(sim, 2001))
    restarted.on_message(_snapshot(master))
    restarted.reconcile()
    restarted.reconcile()
    assert len(slave.positions_get()) == 1
    [link] = store.list_trades(slave_name="S")
    assert link["status"] == "OPEN" and link["slave_ticket"] == slave.positions_get()[0].identifier


def test_intent_is_written_before_order_send(world):
    sim, store, master = world
    _buy(master)
    seen = {}

    class Spy(CrashAfterSend):
        def order_send(self, request):
            seen["rows"] = store.list_trades(slave_name="S")
            return self._mt5.order_send(request)

    loop = _loop(store, Spy(_terminal(sim, 2001)))
    loop.on_message(_snapshot(master))
    loop.reconcile()
    assert [r["status"] for r in seen["rows"]] == ["PENDING"]
    assert seen["rows"][0]["tag"] and store.list_trades(slave_name="S")[0]["status"] == "OPEN"


def test_terminal_none_on_the_slave_trades_nothing(world):
    sim, store, master = world
    _buy(master)
    slave = _terminal(sim, 2001)
    loop = _loop(store, slave)
    sim.inject_fault(2001, "disconnect")
    loop.on_message(_snapshot(master))
    assert loop.reconcile() == []
    assert loop.rt.last_error and "-10004" in loop.rt.last_error
    sim.inject_fault(2001, "reconnect")
    loop.reconcile()
    assert len(slave.positions_get()) == 1


def test_store_down_means_no_order_is_sent(world, monkeypatch):
    from db import StoreUnavailable

    sim, store, master = world
    _buy(master)
    slave = _terminal(sim, 2001)
    loop = _loop(store, slave)

    def down(*a, **k):
        raise StoreUnavailable("store is down")

    monkeypatch.setattr(store, "record_intent", down)
    monkeypatch.setattr(store, "update_trade", down)
    loop.on_message(_snapshot(master))
    loop.reconcile()
    assert slave.positions_get() == ()  # no intent, no trade
    monkeypatch.undo()
    loop.reconcile()
    assert len(slave.positions_get()) == 1


def test_flatten_closes_copies_but_not_manual_trades(world):
    sim, store, master = world
    _buy(master)
    slave = _terminal(sim, 2001)
    manual = _buy(slave, "GBPUSD.c")
    loop = _loop(store, slave)
    loop.on_message(_snapshot(master))
    loop.reconcile()
    assert len(slave.positions_get()) == 2
    loop.flatten(reason="operator flatten")
    assert [p.ticket for p in slave.positions_get()] == [manual.order]
    assert store.list_trades(slave_name="S")[0]["close_reason"] == "operator flatten"
    loop.reconcile()  # flattened links are never reopened
    assert [p.ticket for p in slave.positions_get()] == [manual.order]


def test_reload_with_the_store_down_is_postponed_not_fatal(world, monkeypatch):
    from db import StoreUnavailable

    sim, store, master = world
    loop = _loop(store, _terminal(sim, 2001))

    def down(*a, **k):
        raise StoreUnavailable("store is down")

    for name in ("get_account", "get_flag", "list_accounts"):
        monkeypatch.setattr(store, name, down)
    loop.reload()  # must not raise
    assert loop.cfg.name == "S"


def test_hot_reload_applies_symbol_map_without_restart(world):
    sim, store, master = world
    _buy(master, "XAUUSD", 0.1)
    slave = _terminal(sim, 2001)
    loop = _loop(store, slave)
    loop.on_message(_snapshot(master))
    loop.reconcile()
    [skipped] = store.list_trades(slave_name="S")
    assert skipped["status"] == "SKIPPED" and "XAUUSD.c" in skipped["skip_reason"]
    store.update_account("S", {"symbol_map": {"XAUUSD": "GOLD"}})
    loop.reload()
    assert loop.rt.stop_code is None and loop.cfg.symbol_map == {"XAUUSD": "GOLD"}
    _buy(master, "XAUUSD", 0.1)
    feed(loop, _snapshot(master, seq=2))
    loop.reconcile()
    assert [p.symbol for p in slave.positions_get()] == ["GOLD"]


def test_change_that_needs_a_restart_exits_75(world):
    sim, store, master = world
    loop = _loop(store, _terminal(sim, 2001))
    store.update_account("S", {"magic": 99})
    loop.reload()
    assert loop.rt.stop_code == 75


def test_a_failing_close_is_retried_with_backoff_not_every_pass(world):
    sim, store, master = world
    opened = _buy(master)
    calls = []

    class Counting(CrashAfterSend):
        def order_send(self, request):
            calls.append(request.get("position", 0))
            return self._mt5.order_send(request)

    slave = _terminal(sim, 2001)
    loop = _loop(store, Counting(slave))
    loop.on_message(_snapshot(master))
    loop.reconcile()
    assert len(slave.positions_get()) == 1
    close_req = {"action": 1, "symbol": "EURUSD", "volume": 0.1, "type": 1, "position": opened.order, "price": master.symbol_info_tick("EURUSD").bid, "type_filling": 1}
    assert master.order_send(close_req).retcode == 10009
    sim.inject_fault(2001, "retcode", code=10006, count=50)  # the slave broker rejects every close
    feed(loop, _snapshot(master, seq=2))
    calls.clear()
    for _ in range(5):
        loop.reconcile()
    assert len(calls) == 1  # one attempt, then backing off (1 s, 2 s, …) instead of hammering
    sim.clear_faults(2001)
    loop.actions.backoff.clear()  # as if the backoff delay had passed
    loop.reconcile()
    assert slave.positions_get() == ()


def test_kill_switch_file_stops_new_opens(world, tmp_path):
    sim, store, master = world
    slave = _terminal(sim, 2001)
    loop = _loop(store, slave)
    loop.kill_switch_file = tmp_path / "KILL_SWITCH"
    loop.kill_switch_file.write_text("")
    _buy(master)
    loop.on_message(_snapshot(master))
    loop.reconcile()
    assert slave.positions_get() == ()
    [link] = store.list_trades(slave_name="S")
    assert link["status"] == "SKIPPED" and "paused" in link["skip_reason"]


def test_dry_run_plans_and_records_but_sends_nothing(world):
    sim, store, master = world
    opened = _buy(master)
    slave = _terminal(sim, 2001)
    loop = _loop(store, slave)
    loop.on_message(_snapshot(master))
    loop.reconcile()  # a real copy first
    assert len(slave.positions_get()) == 1
    store.update_account("S", {"dry_run": True})
    loop.reload()
    master.order_send({"action": 1, "symbol": "EURUSD", "volume": 0.1, "type": 1, "position": opened.order, "price": master.symbol_info_tick("EURUSD").bid, "type_filling": 1})
    _buy(master, "GBPUSD")
    feed(loop, _snapshot(master, seq=2))
    loop.reconcile()
    loop.reconcile()
    assert [p.symbol for p in slave.positions_get()] == ["EURUSD.c"]  # neither the close nor the open was sent
    rows = {r["master_symbol"]: r for r in store.list_trades(slave_name="S")}
    assert rows["GBPUSD"]["status"] == "SKIPPED" and rows["GBPUSD"]["skip_reason"].startswith("dry run")
    assert sum(1 for kind, _ in loop.rt.events if kind == "dry_run_close") == 1


def test_a_pending_copy_filling_between_the_slaves_two_reads_is_adopted_not_closed(world):
    """Fault 8's kind on the follower's own reads: its copy fills between its orders and
    positions reads; it must be adopted as the position, not marked "removed on slave"."""
    from nodes.runtime import utc_ms
    from terminals.convert import orders_by_ticket

    sim, store, master = world
    sim.set_price("EURUSD", 1.10000, broker="SimFX-Live")
    r = master.order_send({"action": 5, "symbol": "EURUSD", "volume": 0.1, "type": 4, "price": 1.10100, "type_filling": 1})
    assert r.retcode == 10009
    orders = orders_by_ticket(master.orders_get(), contract_size=ContractSizes(master))
    loop = _loop(store, _terminal(sim, 2001))
    loop.on_message(Snapshot(master="M", epoch="e1", seq=1, ts_ms=utc_ms(), positions=(), orders=tuple(orders.values())))
    loop.reconcile()
    slave = _terminal(sim, 2001)
    assert len(slave.orders_get()) == 1
    # the price triggers both stops right after the first of the slave's two reads
    sim.inject_fault(2001, "price_after", call="positions_get,orders_get", symbol="EURUSD", bid=1.10200, broker="SimFX-Live")
    loop.reconcile()
    [link] = store.list_trades(slave_name="S")
    assert link["status"] == "OPEN" and link["kind"] == "position", link
    assert link["slave_ticket"] == slave.positions_get()[0].identifier
