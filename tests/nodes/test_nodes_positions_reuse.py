"""An open copied with one terminal call: the change pass plans on the positions read after
the account's last order (issue 14), and reads them again whenever that is not safe."""
from __future__ import annotations

import pytest

from nodes.runtime import utc_ms
from nodes.slave import POSITIONS_REUSE_MS
from tests.nodes.test_nodes_copy_calls import (
    RISK,
    CountingTerminal,
    _before_send,
    _change,
    _deal,
    _loop,
    _settle,
    make_world,
)


@pytest.fixture
def world(tmp_path):
    made = make_world(tmp_path, risk=RISK)
    yield made
    made[1].close()


def _ready(world):
    """A slave loop after its full pass (positions read, nothing sent since)."""
    sim, store, master, slave = world
    term = CountingTerminal(slave)
    loop = _loop(store, term)
    _settle(loop, master, 1)
    return loop, term


def test_an_open_after_a_read_makes_one_terminal_call_before_order_send(world):
    sim, store, master, slave = world
    loop, term = _ready(world)
    _deal(master, "EURUSD")
    mark = term.mark()
    _change(loop, master, 2)
    assert _before_send(term.since(mark)) == ["symbol_info_tick"]
    assert [round(p.volume, 2) for p in slave.positions_get()] == [0.1]


def test_after_our_own_order_the_refresh_reads_once_and_the_next_open_needs_no_read(world):
    sim, store, master, slave = world
    loop, term = _ready(world)
    _deal(master, "EURUSD")
    _change(loop, master, 2)
    mark = term.mark()
    loop.refresh_positions()
    loop.refresh_positions()  # nothing sent since the first: no second read
    assert term.since(mark) == ["positions_get"]
    _deal(master, "GBPUSD")
    mark = term.mark()
    _change(loop, master, 3)
    assert _before_send(term.since(mark)) == ["symbol_info_tick"]
    assert sorted(p.symbol for p in slave.positions_get()) == ["EURUSD.c", "GBPUSD.c"]
    assert [r["status"] for r in store.list_trades(slave_name="S")] == ["OPEN", "OPEN"]


def test_without_a_read_after_our_own_order_the_next_open_reads_the_positions(world):
    sim, store, master, slave = world
    loop, term = _ready(world)
    _deal(master, "EURUSD")
    _change(loop, master, 2)  # an order went out: the last read is older than it
    _deal(master, "GBPUSD")
    mark = term.mark()
    _change(loop, master, 3)
    assert "positions_get" in _before_send(term.since(mark))


def test_a_read_older_than_the_reuse_limit_is_read_again(world):
    sim, store, master, slave = world
    loop, term = _ready(world)
    positions, _, sends = loop._positions_read
    loop._positions_read = (positions, utc_ms() - POSITIONS_REUSE_MS, sends)
    _deal(master, "EURUSD")
    mark = term.mark()
    _change(loop, master, 2)
    assert sorted(_before_send(term.since(mark))) == ["positions_get", "symbol_info_tick"]


def test_a_close_and_a_modification_always_read_the_positions(world):
    sim, store, master, slave = world
    loop, term = _ready(world)
    opened = _deal(master, "EURUSD")
    _change(loop, master, 2)
    loop.refresh_positions()
    pos = master.positions_get(ticket=opened.order)[0]
    r = master.order_send({"action": 6, "position": opened.order, "symbol": "EURUSD", "sl": round(pos.price_open - 0.005, 5),
                           "tp": 0.0})
    assert r.retcode == 10009, r
    mark = term.mark()
    _change(loop, master, 3)
    calls = term.since(mark)
    assert "positions_get" in _before_send(calls)  # the SL is copied, planned on a fresh read
    loop.refresh_positions()
    _deal(master, "EURUSD", side="SELL", position=opened.order)
    mark = term.mark()
    _change(loop, master, 4)
    assert "positions_get" in _before_send(term.since(mark))
    assert slave.positions_get() == ()


def test_a_close_sent_by_the_guardian_or_a_flatten_makes_the_read_stale(world):
    sim, store, master, slave = world
    loop, term = _ready(world)
    _deal(master, "EURUSD")
    _change(loop, master, 2)
    loop.refresh_positions()
    assert loop.flatten(reason="test") == 1  # through the same Executor as every order
    _deal(master, "GBPUSD")
    mark = term.mark()
    _change(loop, master, 3)
    assert "positions_get" in _before_send(term.since(mark))


def test_a_hand_trade_in_the_window_is_seen_by_the_next_timer_pass(world):
    """What a reused read can miss: a position no order of ours made, for at most
    POSITIONS_REUSE_MS; the timer's pass reads it."""
    sim, store, master, slave = world
    loop, term = _ready(world)
    _deal(slave, "USDJPY.c", volume=0.02)  # the trader's own position on the follower
    _deal(master, "EURUSD")
    _change(loop, master, 2)
    assert loop._positions_read[0] == []  # the open planned on the read before the hand trade
    _settle(loop, master, 3)
    assert sorted(p.symbol for p in loop._positions_read[0]) == ["EURUSD.c", "USDJPY.c"]


@pytest.fixture
def netting(tmp_path):
    made = make_world(tmp_path, 2002)
    yield made
    made[1].close()


def test_a_netting_account_reads_its_positions_for_every_open(netting):
    sim, store, master, slave = netting
    loop, term = _ready(netting)
    assert loop.margin_mode == "netting"
    _deal(master, "EURUSD")
    mark = term.mark()
    _change(loop, master, 2)
    assert "positions_get" in _before_send(term.since(mark))
