"""A slave's pass does not grow with the account's history: finished links whose master
ticket is gone leave the loop's memory after FINISHED_LINK_KEEP_MS (the store keeps them),
and a master ticket whose finished link the loop let go of is never copied again."""
from __future__ import annotations

import pytest

import nodes.slave as slave_mod
from tests.nodes.test_nodes_copy_calls import CountingTerminal, _change, _deal, _loop, _settle, make_world


@pytest.fixture
def world(tmp_path):
    made = make_world(tmp_path)
    yield made
    made[1].close()


def _round_trips(loop, master, n, seq):
    for _ in range(n):
        opened = _deal(master, "EURUSD")
        seq += 1
        _change(loop, master, seq)
        _deal(master, "EURUSD", side="SELL", position=opened.order)
        seq += 1
        _change(loop, master, seq)
    return seq


def test_finished_links_of_gone_master_tickets_leave_memory_after_the_keep_time(world, monkeypatch):
    sim, store, master, slave = world
    loop = _loop(store, CountingTerminal(slave))
    seq = _round_trips(loop, master, 5, 1)
    _settle(loop, master, seq + 1)
    assert len(loop.links) == 5 and all(r["status"] == "CLOSED" for r in loop.links.values())
    _settle(loop, master, seq + 2)
    assert len(loop.links) == 5  # younger than the keep time: kept
    monkeypatch.setattr(slave_mod, "FINISHED_LINK_KEEP_MS", -1)
    _settle(loop, master, seq + 3)
    assert loop.links == {} and loop._link_cache == {}
    assert [r["status"] for r in store.list_trades(slave_name="S")] == ["CLOSED"] * 5  # the store keeps them


def test_a_finished_link_whose_master_position_is_still_open_is_kept(world, monkeypatch):
    sim, store, master, slave = world
    loop = _loop(store, CountingTerminal(slave))
    _deal(master, "EURUSD")
    _settle(loop, master, 1)
    [own] = slave.positions_get()
    _deal(slave, own.symbol, side="SELL", position=own.ticket)  # the follower closes its copy by hand
    _settle(loop, master, 2)
    [(key, rec)] = loop.links.items()
    assert rec["status"] == "CLOSED"
    monkeypatch.setattr(slave_mod, "FINISHED_LINK_KEEP_MS", -1)
    _settle(loop, master, 3)
    assert key in loop.links  # the master still holds it: the link stays, nothing recopied
    assert slave.positions_get() == ()


def test_a_master_ticket_whose_finished_link_was_let_go_is_not_copied_again(world):
    sim, store, master, slave = world
    term = CountingTerminal(slave)
    loop = _loop(store, term)
    _deal(master, "EURUSD")
    _settle(loop, master, 1)
    [own] = slave.positions_get()
    _deal(slave, own.symbol, side="SELL", position=own.ticket)
    _settle(loop, master, 2)
    [key] = loop.links
    del loop.links[key]  # as if let go while the master still held it
    mark = term.mark()
    _settle(loop, master, 3)
    assert "order_send" not in term.since(mark) and slave.positions_get() == ()
    assert loop.links[key]["status"] == "CLOSED" and store.list_trades(slave_name="S")[0]["status"] == "CLOSED"


def test_nothing_is_let_go_while_a_master_mirror_is_stale(world, monkeypatch):
    sim, store, master, slave = world
    loop = _loop(store, CountingTerminal(slave))
    seq = _round_trips(loop, master, 2, 1)
    _settle(loop, master, seq + 1)
    monkeypatch.setattr(slave_mod, "FINISHED_LINK_KEEP_MS", -1)
    later = slave_mod.utc_ms() + 2 * loop.stale_after_ms  # the master silent past the stale limit
    views = {"M": slave_mod.MasterView(state=loop.mirrors["M"].state(later), metrics=None, first_sync=False)}
    assert not views["M"].fresh
    assert loop._prune_finished(views, later) == 0 and len(loop.links) == 2
    fresh = {"M": slave_mod.MasterView(state=loop.mirrors["M"].state(slave_mod.utc_ms()), metrics=None, first_sync=False)}
    assert loop._prune_finished(fresh, slave_mod.utc_ms()) == 2 and loop.links == {}


def test_a_new_copy_writes_its_intent_once(world):
    """The check against a finished link costs nothing extra: one write before order_send."""
    sim, store, master, slave = world
    loop = _loop(store, CountingTerminal(slave))
    _settle(loop, master, 1)
    writes = []
    real_record, real_update = store.record_intent, store.update_trade
    store.record_intent = lambda *a, **k: writes.append("record_intent") or real_record(*a, **k)
    store.update_trade = lambda *a, **k: writes.append("update_trade") or real_update(*a, **k)
    send = loop.executor.mt5.order_send
    loop.executor.mt5 = type("T", (), {"__getattr__": lambda self, n: getattr(slave, n),
                                        "order_send": lambda self, r: writes.append("order_send") or send(r)})()
    _deal(master, "EURUSD")
    _change(loop, master, 2)
    assert writes[: writes.index("order_send")] == ["record_intent"]
