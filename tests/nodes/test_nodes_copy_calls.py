"""Terminal calls on the copy path, counted (issue 14): a regression fails here, not in a timing.

The slave loop is driven in-process against the simulator with its risk guardian on, as a
node runs it. Every call the loop makes to its terminal is recorded; between the master's
change reaching the slave and ``order_send`` an open makes at most two (the pass's
``positions_get`` and one fresh tick), and so does a close, whose confirmation comes from the
``order_send`` result and the next regular pass (no ``positions_get`` after it).
"""
from __future__ import annotations

import pytest
import structlog

from copier.accounts import validate_account
from db import open_store
from messaging.schema import Snapshot
from monitoring.guardian import Guardian
from nodes.runtime import utc_ms
from nodes.slave import METRICS_MAX_AGE_MS, SlaveLoop
from sim import Simulator
from terminals.convert import ContractSizes, positions_by_identifier
from tests.nodes.master_feed import feed
from tests.nodes.test_nodes_slave_inprocess import FakeRuntime

RISK = {"profile": "ftmo_2step", "initial_balance": 10000, "max_positions": 50}
OPEN_BUDGET = 2  # positions_get + one fresh tick
CLOSE_BUDGET = 2


class CountingTerminal:
    """Records the name of every terminal function called (constants pass through)."""

    def __init__(self, mt5):
        self._mt5 = mt5
        self.calls: list[str] = []

    def __getattr__(self, name):
        attr = getattr(self._mt5, name)
        if not callable(attr):
            return attr

        def call(*args, **kwargs):
            self.calls.append(name)
            return attr(*args, **kwargs)

        return call

    def mark(self) -> int:
        return len(self.calls)

    def since(self, mark: int) -> list[str]:
        return self.calls[mark:]


def make_world(tmp_path, login: int = 2001, **slave_fields):
    """The demo simulator, master M (1001) and slave S (``login``: 2001 hedging, 2002
    netting on SimProp) following it: ``(sim, store, master terminal, slave terminal)``."""
    sim = Simulator.demo(seed=3)
    store = open_store(f"sqlite:///{tmp_path / 's.db'}")
    store.upsert_account({"name": "M", "type": "MASTER", "terminal": {"kind": "sim", "login": 1001}})
    store.upsert_account({"name": "S", "type": "SLAVE", "suffix": ".c", "slippage_tolerance": 300, **slave_fields,
                          "terminal": {"kind": "sim", "login": login}})
    store.set_flag("follow:S:M", {"since_ms": 0})
    master = sim.terminal()
    master.initialize(login=1001)
    slave = sim.terminal()
    slave.initialize(login=login)
    return sim, store, master, slave


@pytest.fixture
def world(tmp_path):
    made = make_world(tmp_path, risk=RISK)
    yield made
    made[1].close()


def _loop(store, mt5):
    rt = FakeRuntime("S", store)
    cfg = validate_account(store.get_account("S"))
    loop = SlaveLoop(rt, mt5, cfg, stale_after_ms=60_000, max_attempts=3)
    loop.executor.sleep = lambda s: None
    loop.start()
    guardian = Guardian("S", "slave", cfg.risk, mt5, store, log=structlog.get_logger("test"), event=lambda *a, **k: None,
                        executor=loop.executor, report_in_background=False)
    guardian.start(utc_ms())
    assert guardian.actions_enabled
    loop.guardian = guardian
    return loop


def _snapshot(master, seq):
    positions = positions_by_identifier(master.positions_get(), contract_size=ContractSizes(master))
    return Snapshot(master="M", epoch="e1", seq=seq, ts_ms=utc_ms(), positions=tuple(positions.values()), orders=())


def _deal(mt5, symbol, side="BUY", volume=0.1, position=0, comment=""):
    tick = mt5.symbol_info_tick(symbol)
    req = {"action": 1, "symbol": symbol, "volume": volume, "type": 0 if side == "BUY" else 1,
           "price": tick.ask if side == "BUY" else tick.bid, "type_filling": 1, "comment": comment}
    if position:
        req["position"] = position
    r = mt5.order_send(req)
    assert r.retcode == 10009, r
    return r


def _change(loop, master, seq):
    """The master's change reaches the slave; the pass it triggers (as _turn runs it)."""
    assert feed(loop, _snapshot(master, seq))
    loop.reconcile(full=False)


def _before_send(calls: list[str]) -> list[str]:
    assert "order_send" in calls, calls
    return calls[: calls.index("order_send")]


def _settle(loop, master, seq):
    feed(loop, _snapshot(master, seq))
    loop.reconcile(full=True)


def test_an_open_makes_at_most_two_terminal_calls_before_order_send(world):
    sim, store, master, slave = world
    term = CountingTerminal(slave)
    loop = _loop(store, term)
    _settle(loop, master, 1)
    loop._metrics_ms = utc_ms() - METRICS_MAX_AGE_MS // 2  # older than the timer pass's TTL: still not read here
    _deal(master, "EURUSD")
    mark = term.mark()
    _change(loop, master, 2)
    calls = term.since(mark)
    before = _before_send(calls)
    assert len(before) <= OPEN_BUDGET, before
    assert before.count("symbol_info_tick") == 1 and "account_info" not in before
    assert calls.count("order_send") == 1
    assert [round(p.volume, 2) for p in slave.positions_get()] == [0.1]
    assert store.list_trades(slave_name="S")[0]["status"] == "OPEN"


def test_a_second_symbol_opened_while_others_are_held_reads_one_tick(world):
    sim, store, master, slave = world
    term = CountingTerminal(slave)
    loop = _loop(store, term)
    _deal(master, "EURUSD")
    _deal(master, "GBPUSD")
    _settle(loop, master, 1)
    assert len(slave.positions_get()) == 2
    _deal(master, "USDJPY")
    mark = term.mark()
    _change(loop, master, 2)
    before = _before_send(term.since(mark))
    assert len(before) <= OPEN_BUDGET, before
    assert len(slave.positions_get()) == 3


def test_a_close_makes_at_most_two_calls_before_and_none_after_order_send(world):
    sim, store, master, slave = world
    term = CountingTerminal(slave)
    loop = _loop(store, term)
    opened = _deal(master, "EURUSD")
    _settle(loop, master, 1)
    assert len(slave.positions_get()) == 1
    _deal(master, "EURUSD", side="SELL", position=opened.order)
    mark = term.mark()
    _change(loop, master, 2)
    calls = term.since(mark)
    before = _before_send(calls)
    assert len(before) <= CLOSE_BUDGET, before
    assert calls[calls.index("order_send") + 1:] == []  # confirmed by the result, not by a re-read
    assert slave.positions_get() == ()
    [link] = store.list_trades(slave_name="S")
    assert link["status"] == "CLOSED"
    mark = term.mark()
    _settle(loop, master, 3)  # the next regular pass agrees, and reads no history for it
    assert "history_deals_get" not in term.since(mark) and "order_send" not in term.since(mark)
    assert store.list_trades(slave_name="S")[0]["status"] == "CLOSED"


def test_a_link_with_two_positions_is_closed_only_when_both_are_gone(world):
    """Without the re-read, the link's other positions come from the pass (hedging adds)."""
    sim, store, master, slave = world
    term = CountingTerminal(slave)
    loop = _loop(store, term)
    opened = _deal(master, "EURUSD")
    _settle(loop, master, 1)
    [first] = slave.positions_get()
    _deal(slave, "EURUSD.c", volume=0.05, comment=first.comment)  # a second position carrying the link's tag (an add)
    _deal(master, "EURUSD", side="SELL", position=opened.order)
    _change(loop, master, 2)
    assert slave.positions_get() == ()
    assert store.list_trades(slave_name="S")[0]["status"] == "CLOSED"


def test_a_burst_checks_risk_against_the_fills_of_the_same_pass(world):
    """max_positions counts the copies opened earlier in the same pass (no re-read)."""
    sim, store, master, slave = world
    store.upsert_account({**store.get_account("S"), "risk": {**RISK, "max_positions": 3}})
    term = CountingTerminal(slave)
    loop = _loop(store, term)
    _settle(loop, master, 1)
    for _ in range(5):
        _deal(master, "EURUSD", volume=0.01)
    mark = term.mark()
    _change(loop, master, 2)
    assert term.since(mark).count("order_send") == 3
    assert len(slave.positions_get()) == 3
    skipped = [r for r in store.list_trades(slave_name="S") if r["status"] == "SKIPPED"]
    assert len(skipped) == 2 and all("max 3" in r["skip_reason"] for r in skipped)


def test_pre_trade_without_the_pass_data_still_reads_the_account(world):
    """Callers outside a pass keep the fresh-read path (3 calls)."""
    sim, store, master, slave = world
    term = CountingTerminal(slave)
    loop = _loop(store, term)
    tick = slave.symbol_info_tick("EURUSD.c")
    mark = term.mark()
    assert loop.guardian.pre_trade("EURUSD.c", "BUY", 0.1, tick.ask, 0.0, 0.00001, 1.0) is None
    assert {"account_info", "positions_get", "symbol_info_tick"} <= set(term.since(mark))


def test_a_reused_quote_is_never_sent_with(world):
    """A symbol the change did not touch keeps the last pass's quote for planning, but an
    order for it is sent with a tick read then (the executor reads one)."""
    sim, store, master, slave = world
    loop = _loop(store, slave)
    _settle(loop, master, 1)
    loop.quotes["EURUSD.c"] = loop._quote("EURUSD.c")
    loop._fresh = set()
    assert loop.fresh_quote("EURUSD.c") is None
    loop._fresh = {"EURUSD.c"}
    assert loop.fresh_quote("EURUSD.c") is loop.quotes["EURUSD.c"]
