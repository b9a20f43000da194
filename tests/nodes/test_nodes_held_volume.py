"""What a follower holds per copy (``held_volume``), driven in-process against the simulator.

The link keeps the volumes the copy was opened with (the sizing ratio); ``held_volume`` says
what the follower holds now: set when the slave writes the link for a trade, corrected by
the timer's full pass from the positions it read (a manual partial close on the terminal),
never written by a pass triggered by a master change. The dashboard and ``cli.py links``
show it.
"""
from __future__ import annotations

import pytest

import cli
from dashboard import views
from tests.nodes.master_feed import feed
from tests.nodes.test_nodes_copy_calls import CountingTerminal, _deal, _loop, _settle, _snapshot, world  # noqa: F401


class StoreWrites:
    """Counts the store's writes of trade rows (``update_trade`` / ``record_intent``)."""

    def __init__(self, store, monkeypatch):
        self.calls: list[tuple[str, dict]] = []
        for name in ("update_trade", "record_intent"):
            real = getattr(store, name)

            def counted(*args, _real=real, _name=name, **kwargs):
                self.calls.append((_name, args[-1] if args else kwargs))
                return _real(*args, **kwargs)

            monkeypatch.setattr(store, name, counted)

    def mark(self) -> int:
        return len(self.calls)

    def since(self, mark: int) -> list[tuple[str, dict]]:
        return self.calls[mark:]


def _link(store, symbol="EURUSD.c"):
    [link] = [t for t in store.list_trades(slave_name="S") if t.get("symbol") == symbol and t["status"] == "OPEN"]
    return link


def _slave_volume(slave, symbol="EURUSD.c"):
    return round(sum(p.volume for p in slave.positions_get() if p.symbol == symbol), 8)


def _change(loop, master, seq):
    """The master's change reaches the slave; the pass it triggers (as the node's loop runs it)."""
    assert feed(loop, _snapshot(master, seq))
    loop.reconcile(full=False)


@pytest.fixture
def partial(world, monkeypatch):
    """Master opens 1.0 EURUSD, the slave copies it; the master closes 0.4 (change pass)."""
    sim, store, master, slave = world
    loop = _loop(store, CountingTerminal(slave))
    writes = StoreWrites(store, monkeypatch)
    opened = _deal(master, "EURUSD", volume=1.0)
    _settle(loop, master, 1)
    link = _link(store)
    assert link["slave_volume"] == 1.0 and link["held_volume"] == 1.0  # the open fill
    _deal(master, "EURUSD", side="SELL", volume=0.4, position=opened.order)
    _change(loop, master, 2)
    assert _slave_volume(slave) == 0.6  # the copy itself is reduced on the terminal
    return sim, store, master, slave, loop, writes


def test_a_partial_close_records_what_the_copy_holds_and_keeps_the_sizing_ratio(partial):
    sim, store, master, slave, loop, writes = partial
    link = _link(store)
    assert link["held_volume"] == pytest.approx(0.6)
    assert link["slave_volume"] == 1.0 and link["master_volume"] == 1.0  # the ratio the planner scales from
    mark = writes.mark()
    _settle(loop, master, 3)  # the timer's pass agrees: nothing to write
    _settle(loop, master, 4)
    assert writes.since(mark) == []
    assert _link(store)["held_volume"] == pytest.approx(0.6)


def test_a_manual_partial_close_on_the_slave_is_picked_up_by_the_next_full_pass(partial):
    sim, store, master, slave, loop, writes = partial
    [p] = slave.positions_get()
    _deal(slave, "EURUSD.c", side="SELL", volume=0.2, position=p.ticket)  # by hand on the slave's terminal
    assert _slave_volume(slave) == 0.4
    mark = writes.mark()
    _settle(loop, master, 3)
    assert [name for name, _ in writes.since(mark)] == ["update_trade"]
    assert writes.since(mark)[0][1] == {"held_volume": pytest.approx(0.4)}
    link = _link(store)
    assert link["held_volume"] == pytest.approx(0.4) and link["slave_volume"] == 1.0
    assert loop.links[("M", link["master_ticket"])]["held_volume"] == pytest.approx(0.4)  # the loop's table in step
    mark = writes.mark()
    _settle(loop, master, 4)  # no churn: written once
    assert writes.since(mark) == []
    assert len(slave.positions_get()) == 1 and _slave_volume(slave) == 0.4  # not "corrected" on the terminal


def test_a_change_pass_writes_no_held_volume(partial):
    """The delta-triggered pass (the copy path) writes only its own trade's rows: the drift
    waits for the timer's pass."""
    sim, store, master, slave, loop, writes = partial
    [p] = slave.positions_get()
    _deal(slave, "EURUSD.c", side="SELL", volume=0.2, position=p.ticket)
    _deal(master, "GBPUSD", volume=0.1)
    mark = writes.mark()
    _change(loop, master, 3)
    made = writes.since(mark)
    assert _slave_volume(slave, "GBPUSD.c") == 0.1
    assert [name for name, _ in made] == ["record_intent", "update_trade"]  # the GBPUSD copy's intent and fill
    assert all("held_volume" not in fields or fields.get("status") == "OPEN" for _, fields in made)
    assert _link(store)["held_volume"] == pytest.approx(0.6)  # EURUSD's drift not written on the copy path
    mark = writes.mark()
    _settle(loop, master, 4)
    assert [fields for _, fields in writes.since(mark)] == [{"held_volume": pytest.approx(0.4)}]


def test_the_views_show_what_the_follower_holds(partial, capsys, tmp_path):
    sim, store, master, slave, loop, writes = partial
    trades = store.list_trades(slave_name="S")
    [row] = [r for r in views.exposure(trades, {})["rows"] if r["account"] == "S"]
    assert row["net_lots"] == pytest.approx(0.6)  # not the 1.0 the copy opened with
    [copy] = [views.link_row(t) for t in trades]
    assert copy["held_volume"] == pytest.approx(0.6) and copy["slave_volume"] == 1.0
    assert cli.main(["--db", f"sqlite:///{tmp_path / 's.db'}", "links", "S"]) == 0  # the world's store
    out = capsys.readouterr().out.splitlines()
    header = out[0].split()
    [line] = [ln.split() for ln in out if "EURUSD.c" in ln]
    assert line[header.index("HELD")] == "0.6" and line[header.index("OPENED")] == "1.0"


def test_views_fall_back_to_the_opening_volume_for_links_written_before_held_volume():
    old = {"slave_name": "S", "master_name": "M", "master_ticket": 1, "status": "OPEN", "kind": "position",
           "symbol": "EURUSD.c", "master_symbol": "EURUSD", "direction": "SELL", "slave_volume": 0.3}
    [row] = views.exposure([old], {})["rows"]
    assert row["net_lots"] == pytest.approx(-0.3)
    assert views.link_row(old)["held_volume"] == 0.3
    assert cli._held(old) == 0.3 and cli._held({**old, "status": "CLOSED"}) == "-"  # HELD: what it holds now


@pytest.fixture
def netting_world(world):
    sim, store, master, slave = world
    store.upsert_account({**store.get_account("S"), "terminal": {"kind": "sim", "login": 2002}})
    netting = sim.terminal()
    assert netting.initialize(login=2002)
    return sim, store, master, netting


def test_netting_copies_hold_their_share_of_the_net_position(netting_world, monkeypatch):
    """Two master positions in one net position; the master partially closes one."""
    sim, store, master, slave = netting_world
    loop = _loop(store, slave)
    assert loop.margin_mode == "netting"
    writes = StoreWrites(store, monkeypatch)
    first = _deal(master, "EURUSD", volume=1.0)
    _deal(master, "EURUSD", volume=0.5)
    _settle(loop, master, 1)
    _settle(loop, master, 2)
    assert _slave_volume(slave) == 1.5
    held = {t["master_ticket"]: t["held_volume"] for t in store.list_trades(slave_name="S")}
    assert sorted(held.values()) == pytest.approx([0.5, 1.0])
    _deal(master, "EURUSD", side="SELL", volume=0.4, position=first.order)
    _change(loop, master, 3)
    assert _slave_volume(slave) == pytest.approx(1.1)
    mark = writes.mark()
    _settle(loop, master, 4)
    _settle(loop, master, 5)
    assert writes.since(mark) == []  # the close booked 0.4 to the copy whose master shrank: already right
    rows = {t["master_ticket"]: t for t in store.list_trades(slave_name="S")}
    assert rows[first.order]["held_volume"] == pytest.approx(0.6) and rows[first.order]["slave_volume"] == 1.0
    assert sum(t["held_volume"] for t in rows.values()) == pytest.approx(1.1)
    [row] = [r for r in views.exposure(list(rows.values()), {})["rows"] if r["account"] == "S"]
    assert row["net_lots"] == pytest.approx(1.1)


def test_one_netting_reduction_for_two_masters_is_split_by_the_full_pass(netting_world, monkeypatch):
    """Both masters shrink before the slave's pass: the planner sends one reduction of the
    net position, booked to one copy; the timer's pass gives each copy its share."""
    sim, store, master, slave = netting_world
    loop = _loop(store, slave)
    first = _deal(master, "EURUSD", volume=1.0)
    second = _deal(master, "EURUSD", volume=0.5)
    _settle(loop, master, 1)
    _settle(loop, master, 2)
    _deal(master, "EURUSD", side="SELL", volume=0.4, position=first.order)
    _deal(master, "EURUSD", side="SELL", volume=0.2, position=second.order)
    _change(loop, master, 3)
    assert _slave_volume(slave) == pytest.approx(0.9)
    booked = {t["master_ticket"]: t["held_volume"] for t in store.list_trades(slave_name="S")}
    assert booked == {first.order: pytest.approx(0.4), second.order: pytest.approx(0.5)}  # all 0.6 booked to the first
    writes = StoreWrites(store, monkeypatch)
    _settle(loop, master, 4)
    assert sorted(fields["held_volume"] for _, fields in writes.calls) == pytest.approx([0.3, 0.6])
    rows = {t["master_ticket"]: t for t in store.list_trades(slave_name="S")}
    assert rows[first.order]["held_volume"] == pytest.approx(0.6) and rows[second.order]["held_volume"] == pytest.approx(0.3)
    assert rows[first.order]["slave_volume"] == 1.0 and rows[second.order]["slave_volume"] == 0.5
    mark = writes.mark()
    _settle(loop, master, 5)
    assert writes.since(mark) == []


def test_links_written_before_held_volume_are_valued_by_the_first_full_pass(partial, monkeypatch):
    """An upgrade: the row carries only the opening volumes; after the restart the timer's
    pass writes what the copy holds, once."""
    sim, store, master, slave, loop, writes = partial
    ticket = _link(store)["master_ticket"]
    store.update_trade("S", "M", ticket, {"held_volume": None})  # as written before the field existed
    assert views.link_row(_link(store))["held_volume"] == 1.0  # the fallback: the opening volume
    restarted = _loop(store, CountingTerminal(slave))
    mark = writes.mark()
    _settle(restarted, master, 3)
    assert [fields for _, fields in writes.since(mark)] == [{"held_volume": pytest.approx(0.6)}]
    assert _link(store)["held_volume"] == pytest.approx(0.6)
    mark = writes.mark()
    _settle(restarted, master, 4)
    assert writes.since(mark) == []
