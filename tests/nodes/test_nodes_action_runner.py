"""The slave's ``ActionRunner``: the order of its writes, fences and sends, in-process on the simulator.

The loop holds the runner and hands it each action with the pass's data; the guarantees of
invariant 2 live here: the PENDING intent is durable before ``order_send``, and the lease
``fence()`` runs right before every ``order_send`` (and before any write of an action).
"""
from __future__ import annotations

import pytest
import structlog

from copier.accounts import validate_account
from copier.actions import Open
from copier.orders import RetryPolicy
from copier.tags import make_tag
from db import open_store
from nodes.execution import Executor
from nodes.lease import LeaseLost
from nodes.slave_actions import ActionRunner, PassData
from sim import Simulator
from tests.nodes.test_nodes_slave_inprocess import (
    FakeRuntime,
    _buy,
    _snapshot,
    _terminal,
)


@pytest.fixture
def world(tmp_path):
    """A simulator with master M (login 1001) and slave S (2001) followed from the start."""
    sim = Simulator.demo(seed=3)
    store = open_store(f"sqlite:///{tmp_path / 's.db'}")
    store.upsert_account({"name": "M", "type": "MASTER", "terminal": {"kind": "sim", "login": 1001}})
    store.upsert_account({"name": "S", "type": "SLAVE", "suffix": ".c", "slippage_tolerance": 300,
                          "terminal": {"kind": "sim", "login": 2001}})
    store.set_flag("follow:S:M", {"since_ms": 0})
    master = sim.terminal()
    master.initialize(login=1001)
    yield sim, store, master
    store.close()


class Journal:
    """One ordered record of store writes, fences and terminal calls."""

    def __init__(self) -> None:
        self.entries: list[str] = []
        self.lease_lost = False

    def fence(self) -> None:
        self.entries.append("fence")
        if self.lease_lost:
            raise LeaseLost("another process holds the lease")


class JournalTerminal:
    def __init__(self, mt5, journal: Journal, *, lose_lease_on: str = "") -> None:
        self._mt5, self._journal, self._lose_on = mt5, journal, lose_lease_on

    def __getattr__(self, name):
        attr = getattr(self._mt5, name)
        if not callable(attr):
            return attr

        def call(*args, **kwargs):
            self._journal.entries.append(name)
            if name == self._lose_on:
                self._journal.lease_lost = True
            return attr(*args, **kwargs)

        return call


class JournalStore:
    def __init__(self, store, journal: Journal) -> None:
        self._store, self._journal = store, journal

    def __getattr__(self, name):
        return getattr(self._store, name)

    def record_intent(self, doc):
        self._journal.entries.append(f"record_intent:{doc.get('status')}")
        return self._store.record_intent(doc)

    def update_trade(self, *args, **kwargs):
        self._journal.entries.append("update_trade")
        return self._store.update_trade(*args, **kwargs)


class FencedRuntime(FakeRuntime):
    def __init__(self, name, store, journal: Journal) -> None:
        super().__init__(name, JournalStore(store, journal))
        self.fence = journal.fence


def _fenced_loop(store, mt5, journal):
    from nodes.slave import SlaveLoop

    loop = SlaveLoop(FencedRuntime("S", store, journal), mt5, validate_account(store.get_account("S")),
                     stale_after_ms=60_000, max_attempts=3)
    loop.start()
    return loop


def test_the_intent_is_written_then_the_fence_runs_right_before_order_send(world):
    sim, store, master = world
    _buy(master)
    journal = Journal()
    loop = _fenced_loop(store, JournalTerminal(_terminal(sim, 2001), journal), journal)
    loop.on_message(_snapshot(master))
    journal.entries.clear()
    loop.reconcile()
    e = journal.entries
    assert e.count("order_send") == 1, e
    send = e.index("order_send")
    assert e[send - 1] == "fence", e  # the last thing before the send
    assert "record_intent:PENDING" in e[:send], e  # the intent is durable first
    assert e.index("record_intent:PENDING") > e.index("fence"), e  # and the action was fenced before any write
    [link] = store.list_trades(slave_name="S")
    assert link["status"] == "OPEN"


def test_a_lease_lost_during_the_pass_writes_no_record_and_sends_nothing(world):
    sim, store, master = world
    _buy(master)
    journal = Journal()
    slave = _terminal(sim, 2001)
    loop = _fenced_loop(store, JournalTerminal(slave, journal, lose_lease_on="symbol_info_tick"), journal)
    loop.on_message(_snapshot(master))
    with pytest.raises(LeaseLost):
        loop.reconcile()  # the pass read its quotes, then the lease went: the runner's fence stops the action
    assert "order_send" not in journal.entries and not any(x.startswith("record_intent") for x in journal.entries)
    assert store.list_trades(slave_name="S") == [] and slave.positions_get() == ()


def test_the_runner_alone_keeps_the_intent_pending_when_the_lease_goes_between_record_and_send(world):
    """Held by the loop, usable without it: the crash window between the intent and the send."""
    sim, store, _master = world
    journal = Journal()
    slave = _terminal(sim, 2001)
    terminal = JournalTerminal(slave, journal)
    js = JournalStore(store, journal)
    executor = Executor(terminal, RetryPolicy(max_attempts=3), sleep=lambda s: None, fence=journal.fence)
    events: list[str] = []
    runner = ActionRunner(name="S", store=js, terminal=terminal, executor=executor, links={}, log=structlog.get_logger("test"),
                          event=lambda kind, **kw: events.append(kind), fence=lambda: None)
    cfg = validate_account(store.get_account("S"))
    tick = slave.symbol_info_tick("EURUSD.c")
    action = Open("M", 7, "EURUSD.c", "BUY", 0.1, 0.0, 0.0, 1, 300, cfg.magic, make_tag("M", 7), tick.ask, tick.ask,
                  master_symbol="EURUSD", master_side="BUY", master_volume=0.1)
    data = PassData(cfg=cfg, views={}, specs={}, quotes={}, fresh=set())
    journal.lease_lost = True  # lost after the loop's own fence: only the executor's catches it
    with pytest.raises(LeaseLost):
        runner.execute(action, data)
    assert "order_send" not in journal.entries and journal.entries[-1] == "fence"
    [intent] = store.list_trades(slave_name="S")
    assert intent["status"] == "PENDING" and intent["master_ticket"] == 7  # the next holder finds it by its tag
    assert slave.positions_get() == ()
    journal.lease_lost = False
    runner.execute(action, data)
    [link] = store.list_trades(slave_name="S")
    assert link["status"] == "OPEN" and link["slave_ticket"] == slave.positions_get()[0].identifier
    assert runner.counts["copied"] == 1 and "copy_opened" in events


def test_a_reconnected_terminal_is_the_one_the_runner_reads(world):
    """After a reconnect the loop, its Executor and its runner all use the new terminal:
    a flatten (the runner's reads and the Executor's sends) goes to it, not the old one."""
    sim, store, master = world
    _buy(master)
    old_journal, new_journal = Journal(), Journal()
    slave = _terminal(sim, 2001)
    loop = _fenced_loop(store, JournalTerminal(slave, old_journal), Journal())
    loop.on_message(_snapshot(master))
    loop.reconcile()
    assert len(slave.positions_get()) == 1
    loop.use_terminal(JournalTerminal(_terminal(sim, 2001), new_journal))
    old_journal.entries.clear()
    assert loop.flatten(reason="operator flatten") == 1
    assert old_journal.entries == []
    assert {"positions_get", "orders_get", "order_send"} <= set(new_journal.entries)
    assert slave.positions_get() == ()
