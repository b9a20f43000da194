"""The master's terminal calls per poll (issue 14): a poll where only prices moved reads
``orders_get`` and ``positions_get`` and nothing else; a change is published only after one
``account_info()`` confirmed the login, and a wrong account publishes nothing."""
from __future__ import annotations

import pytest

from nodes.identity import WrongAccount
from nodes.master import MasterLoop
from sim import Simulator
from tests.nodes.test_nodes_copy_calls import CountingTerminal
from tests.nodes.test_nodes_master_snapshot import FakeRuntime


class Runtime(FakeRuntime):
    def __init__(self):
        super().__init__()
        self.verified = []
        self.wrong = False

    def verify_account(self, mt5, cfg, info):
        self.verified.append(int(info.login))
        if self.wrong:
            raise WrongAccount("terminal logged into another account", int(info.login), "x")


def _buy(mt5, symbol="EURUSD"):
    tick = mt5.symbol_info_tick(symbol)
    r = mt5.order_send({"action": 1, "symbol": symbol, "volume": 0.1, "type": 0, "price": tick.ask, "type_filling": 1})
    assert r.retcode == 10009
    return r


@pytest.fixture
def master():
    sim = Simulator.demo(seed=2)
    raw = sim.terminal()
    assert raw.initialize(login=1001)
    for _ in range(3):
        _buy(raw)
    term = CountingTerminal(raw)
    rt = Runtime()
    loop = MasterLoop(rt, term, poll_ms=20, heartbeat_ms=10**9, cfg=object())
    assert loop.poll_once()  # first poll: the heartbeat refresh confirms the account
    loop._next_heartbeat = 10**15  # no heartbeat refresh in the polls below
    return sim, raw, term, rt, loop


def test_a_poll_where_only_prices_moved_reads_two_things(master):
    sim, raw, term, rt, loop = master
    published = len(rt.published)
    for _ in range(5):
        sim.advance(1.0)  # prices (price_current, profit) move
        mark = term.mark()
        assert loop.poll_once()
        assert term.since(mark) == ["orders_get", "positions_get"]
    assert len(rt.published) == published


def test_a_change_is_confirmed_by_one_account_info_before_it_is_published(master):
    sim, raw, term, rt, loop = master
    _buy(raw)
    mark = term.mark()
    verified = len(rt.verified)
    assert loop.poll_once()
    assert term.since(mark) == ["orders_get", "positions_get", "account_info"]
    assert len(rt.verified) == verified + 1
    assert len(rt.published[-1].upsert_positions) == 1


def test_a_wrong_account_publishes_nothing(master):
    sim, raw, term, rt, loop = master
    _buy(raw)
    rt.wrong = True
    published = len(rt.published)
    with pytest.raises(WrongAccount):
        loop.poll_once()
    assert len(rt.published) == published
    rt.wrong = False
    assert loop.poll_once()  # once right again, the change goes out
    assert len(rt.published) == published + 1


def test_a_poll_where_only_prices_moved_converts_nothing(master, monkeypatch):
    """The steady-poll path: the raw records are compared before any conversion."""
    import nodes.master as master_mod

    sim, raw, term, rt, loop = master
    loop.poll_once()  # the snapshot the fixture's poll scheduled
    converted = []
    real = master_mod.positions_by_identifier
    monkeypatch.setattr(master_mod, "positions_by_identifier", lambda *a, **k: converted.append(1) or real(*a, **k))
    published = len(rt.published)
    for _ in range(5):
        sim.advance(1.0)
        assert loop.poll_once()
    assert converted == [] and len(rt.published) == published
    pos = raw.positions_get()[0]
    r = raw.order_send({"action": 6, "position": pos.ticket, "symbol": pos.symbol, "sl": round(pos.price_open - 0.01, 5),
                        "tp": 0.0})
    assert r.retcode == 10009
    assert loop.poll_once()
    assert converted == [1] and rt.published[-1].upsert_positions[0].sl == round(pos.price_open - 0.01, 5)


def test_a_due_snapshot_converts_and_carries_fresh_prices(master):
    sim, raw, term, rt, loop = master
    loop.poll_once()
    sim.advance(5.0)
    loop.publisher.request_snapshot()
    assert loop.poll_once()
    snap = rt.published[-1]
    want = {p.identifier: p.price_current for p in raw.positions_get()}
    assert type(snap).__name__ == "Snapshot" and {p.identifier: p.price_current for p in snap.positions} == want


def test_a_change_refused_for_a_wrong_account_is_not_skipped_by_the_next_poll(master):
    sim, raw, term, rt, loop = master
    loop.poll_once()
    _buy(raw)
    rt.wrong = True
    with pytest.raises(WrongAccount):
        loop.poll_once()
    rt.wrong = False
    published = len(rt.published)
    assert loop.poll_once()  # same records as the refused poll: still converted and published
    assert len(rt.published) == published + 1 and len(rt.published[-1].upsert_positions) == 1
