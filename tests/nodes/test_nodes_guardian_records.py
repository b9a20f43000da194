"""What the slave records when its guardian acts (the slave loop in-process, guardian on).

* a copy the guardian closed is recorded as closed by the guardian (``close_cause`` "risk",
  ``close_reason`` "closed by the guardian: flatten (daily_loss 95.x%)"), never as closed by
  hand with copyhub's own magic, and the link stays closed (never reopened);
* a master position opened while the guardian pauses or locks the account is SKIPPED with a
  reason that starts with ``risk:`` and says who and why; an operator pause keeps its text;
* the slave's status says who paused it (``paused_by``).

Demo login 2004: FTMO 2-Step 10k, hedging, SimProp-Server.
"""
from __future__ import annotations

import pytest
import structlog

from copier.accounts import validate_account
from copier.risk import DAILY
from monitoring.guardian import Guardian
from nodes.runtime import utc_ms
from nodes.slave import SlaveLoop
from tests.monitoring.monitor_kit import Events
from tests.nodes.test_nodes_copy_calls import _deal, _snapshot, make_world
from tests.nodes.test_nodes_slave_inprocess import FakeRuntime

FTMO_10K = {"profile": "ftmo_2step", "initial_balance": 10000}
SP = "SimProp-Server"
MAGIC = 234000  # copyhub's default magic number


@pytest.fixture
def world(tmp_path):
    made = make_world(tmp_path, login=2004, risk=FTMO_10K)
    yield made
    made[1].close()


class Kit:
    def __init__(self, world):
        self.sim, self.store, self.master, self.slave = world
        self.rt = FakeRuntime("S", self.store)
        cfg = validate_account(self.store.get_account("S"))
        assert cfg.magic == MAGIC
        self.loop = SlaveLoop(self.rt, self.slave, cfg, stale_after_ms=60_000, max_attempts=3)
        self.loop.executor.sleep = lambda s: None
        self.loop.start()
        self.events = Events()
        self.now = utc_ms()
        self.g = Guardian("S", "slave", cfg.risk, self.slave, self.store, log=structlog.get_logger("test"),
                          event=self.events, executor=self.loop.executor, report_in_background=False, magic=cfg.magic)
        self.g.start(self.now)
        self.loop.guardian = self.g
        self.seq = 0

    def sync(self):
        """A fresh master snapshot reaches the slave and a full pass runs."""
        self.seq += 1
        self.loop.on_message(_snapshot(self.master, self.seq))
        return self.loop.reconcile(full=True)

    def evaluate(self, points=0):
        if points:
            self.sim.move_price("EURUSD.c", points, broker=SP)
        self.now += 1000
        self.g.tick(self.now)

    def row(self, ticket):
        return self.store.get_trade("S", "M", ticket)


def test_a_guardian_pause_and_lock_skip_with_risk_reasons_and_its_closes_are_recorded_as_the_guardians(world):
    k = Kit(world)
    first = _deal(k.master, "EURUSD", volume=1.0)
    k.sync()
    assert [p.volume for p in k.slave.positions_get()] == [1.0]

    # paused by the guardian: the skip says so, with the figures, and the status says who
    while not k.g.paused_by_risk:
        k.evaluate(-10)
    assert not k.g.locked
    rv = k.g.ev.rule(DAILY)
    reason = f"risk: paused by the guardian (daily_loss {rv.used_pct:.1f}% of 500.00, pause at 85%)"
    gbp = _deal(k.master, "GBPUSD", volume=0.1)
    k.sync()
    assert k.row(gbp.order)["status"] == "SKIPPED"
    assert k.row(gbp.order)["skip_reason"] == reason + " when the master opened it"
    status = k.loop.status_info()
    assert (status["paused"], status["paused_by"], status["pause_reason"]) == (False, "risk", reason)

    # flattened by the guardian: the copy's link is closed by the guardian, not "by hand"
    while not k.g.locked:
        k.evaluate(-10)
    assert k.slave.positions_get() == ()
    rule = k.g.state.lock.reason.removeprefix("flatten level reached: ").split(" (")[0]  # "daily_loss 95.x%"
    assert rule.startswith("daily_loss 9")
    k.sync()
    link = k.row(first.order)
    assert link["status"] == "CLOSED"
    assert (link["close_cause"], link["close_reason"]) == ("risk", f"closed by the guardian: flatten ({rule})")
    [closed] = [d for kind, d in k.rt.events if kind == "link_closed" and d["master_ticket"] == first.order]
    assert closed["cause"] == "risk"

    # locked: a new master position is skipped with the lock's reason
    lock = k.g.state.lock
    jpy = _deal(k.master, "USDJPY", volume=0.1)
    k.sync()
    until = k.g.block_reason.rsplit(" until ", 1)[1]
    assert until.endswith(" UTC") and lock.until_utc_ms is not None
    assert k.row(jpy.order)["skip_reason"] == f"risk: account locked by the guardian ({rule}) until {until} when the master opened it"
    assert k.loop.status_info()["paused_by"] == "risk"

    # the guardian's close ends the link: released (the guardian no longer blocks opens), the
    # master position still open, the copy is never made again
    k.g.release_lock(by="test")
    k.g.paused_by_risk = False  # as if the account were back under the pause level
    assert not k.g.blocks_opens and k.loop.status_info()["paused_by"] is None
    for _ in range(3):
        assert not [a for a in k.sync() if type(a).__name__ == "Open"]
    assert k.slave.positions_get() == () and len(k.master.positions_get()) == 3
    assert k.row(first.order)["status"] == "CLOSED"


def test_a_guardian_close_after_a_restart_is_still_the_guardians(world):
    """The slave that reads the vanished copy's deals is not the process that closed it (a
    restart in between): the deal's comment says it was the guardian, the lock says why."""
    k = Kit(world)
    first = _deal(k.master, "EURUSD", volume=1.0)
    k.sync()
    while not k.g.locked:
        k.evaluate(-10)
    rule = k.g.state.lock.reason.removeprefix("flatten level reached: ").split(" (")[0]
    assert k.slave.positions_get() == () and k.row(first.order)["status"] == "OPEN"  # not seen by the slave yet
    again = Kit(world)  # a new process: same store and terminal, a new loop and guardian (the lock is stored)
    assert again.g.locked
    again.sync()
    link = again.row(first.order)
    assert (link["close_cause"], link["close_reason"]) == ("risk", f"closed by the guardian: flatten ({rule})")


def test_an_operator_pause_and_the_kill_switch_keep_their_text(world):
    k = Kit(world)
    k.store.set_flag("paused:S", True)
    k.loop.refresh_flags()
    r = _deal(k.master, "EURUSD", volume=0.1)
    k.sync()
    assert k.row(r.order)["skip_reason"] == "account paused when the master opened it"
    status = k.loop.status_info()
    assert (status["paused"], status["paused_by"], status["pause_reason"]) == (True, "operator", "")
    k.store.set_flag("kill_switch", True)
    k.loop.refresh_flags()
    assert k.loop.status_info()["paused_by"] == "kill_switch"
    k.store.delete_flag("kill_switch")
    k.store.delete_flag("paused:S")
    k.loop.refresh_flags()
    assert k.loop.status_info()["paused_by"] is None
