"""Reasons from history in the slave loop: history read only for a vanished position, a failed
read decides nothing, a close is recorded with the cause its deal gives."""
from __future__ import annotations

import nodes.slave as slave_mod
from tests.nodes.test_nodes_slave_inprocess import _buy, _loop, _snapshot, _terminal, world  # noqa: F401  (fixture)

SP = "SimProp-Server"


class History:
    """Counts history reads; ``fail`` makes them return None, ``empty`` returns no deals."""

    def __init__(self, mt5):
        self._mt5 = mt5
        self.reads = []
        self.fail = False
        self.empty = False

    def __getattr__(self, name):
        return getattr(self._mt5, name)

    def history_deals_get(self, *args, **kwargs):
        self.reads.append(kwargs.get("position"))
        if self.fail:
            return None
        if self.empty:
            return ()
        return self._mt5.history_deals_get(*args, **kwargs)


def _copied(sim, store, master):
    doc = store.get_account("S")
    store.upsert_account({**doc, "copy_sltp": False})  # the SL below is the follower's own
    _buy(master)
    term = History(_terminal(sim, 2001))
    loop = _loop(store, term)
    loop.on_message(_snapshot(master))
    loop.reconcile()
    (p,) = term.positions_get()
    return loop, term, p


def _stop_on_slave(sim, p):
    """The follower's own SL, 150 points under its entry, fires; the master (no SL) holds."""
    sl = round(p.price_open - 0.00150, 5)
    r = sim.manual_trade(2001, {"action": 6, "symbol": p.symbol, "position": p.ticket, "sl": sl, "tp": 0.0})
    assert r.retcode == 10009
    sim.set_price(p.symbol, sl - 0.00010, broker=SP)


def test_history_is_read_once_for_a_vanished_position_and_sl_is_recorded(world):
    sim, store, master = world
    loop, term, p = _copied(sim, store, master)
    for _ in range(3):
        loop.reconcile()
    assert term.reads == []  # nothing vanished: never read
    _stop_on_slave(sim, p)
    acts = loop.reconcile()
    assert term.reads == [p.identifier]
    assert [type(a).__name__ for a in acts] == ["MarkClosed"]
    (link,) = store.list_trades(slave_name="S")
    assert (link["status"], link["close_reason"], link["close_cause"]) == ("CLOSED", "closed by SL on slave", "sl")
    assert link["close_deal"] == term.history_deals_get(position=p.identifier)[-1].ticket
    for _ in range(3):
        loop.on_message(_snapshot(master))
        assert loop.reconcile() == []
    assert term.positions_get() == () and len(master.positions_get()) == 1  # never reopened
    assert term.reads.count(p.identifier) == 2  # once by the loop, once by this test


def test_a_failed_history_read_decides_nothing(world):
    sim, store, master = world
    loop, term, p = _copied(sim, store, master)
    _stop_on_slave(sim, p)
    term.fail = True
    loop.on_message(_snapshot(master))
    assert loop.reconcile() == []
    assert "deal history" in loop.rt.last_error
    assert store.list_trades(slave_name="S")[0]["status"] == "OPEN"
    term.fail = False
    loop.reconcile()
    assert loop.rt.last_error is None
    assert store.list_trades(slave_name="S")[0]["close_reason"] == "closed by SL on slave"


def test_no_closing_deal_waits_then_is_final(world, monkeypatch):
    sim, store, master = world
    loop, term, p = _copied(sim, store, master)
    _stop_on_slave(sim, p)
    term.empty = True  # the history trails the position list
    for _ in range(2):
        assert loop.reconcile() == []
    assert store.list_trades(slave_name="S")[0]["status"] == "OPEN"
    assert term.reads == [p.identifier, p.identifier]  # read again while it is unknown
    monkeypatch.setattr(slave_mod, "HISTORY_GRACE_MS", 0)
    loop.reconcile()
    (link,) = store.list_trades(slave_name="S")
    assert (link["status"], link["close_cause"]) == ("CLOSED", "unknown")
