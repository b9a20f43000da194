"""What a follower holds per copy (copier/held.py): the links' ``held_volume``."""
from __future__ import annotations

import pytest
from copier_testkit import MASTER, SLAVE, SlaveModel, cfg, context, mpos, view

from copier.held import added_held, held_changed, held_volumes, recorded_held, reduced_held
from copier.links import Link
from copier.models import Position
from copier.tags import make_tag

M2 = "Other_Master"


def link(ticket, master=MASTER, direction="BUY", status="OPEN", mv=1.0, sv=1.0, slave_ticket=0, kind="position",
         lot_ratio=0.0) -> Link:
    return Link(slave_name=SLAVE, master_name=master, master_ticket=ticket, kind=kind, status=status,
                slave_ticket=slave_ticket, symbol="EURUSD.c", master_symbol="EURUSD", direction=direction,
                master_direction=direction, master_volume=mv, slave_volume=sv, tag=make_tag(master, ticket),
                lot_ratio=lot_ratio)


def pos(ident, volume, side="BUY", comment=None, master=MASTER, ticket=1, symbol="EURUSD.c") -> Position:
    return Position(ticket=ident, identifier=ident, symbol=symbol, side=side, volume=volume, price_open=1.1001,
                    time_msc=ident, comment=make_tag(master, ticket) if comment is None else comment)


def hedging(masters, links, positions, **kw):
    return context(cfg(), masters, links, positions, **kw)


def netting(masters, links, positions, **kw):
    return context(cfg(**kw.pop("cfg", {})), masters, links, positions, netting=True, **kw)


# ----------------------------------------------------------------- the record's field


def test_recorded_held_prefers_held_volume_and_falls_back_to_the_opening_volume():
    assert recorded_held({"slave_volume": 1.0, "held_volume": 0.6}) == 0.6
    assert recorded_held({"slave_volume": 1.0, "held_volume": 0.0}) == 0.0  # held nothing: not "absent"
    assert recorded_held({"slave_volume": 1.0}) == 1.0  # a link written before the field existed
    assert recorded_held({"slave_volume": 1.0, "held_volume": None}) == 1.0
    assert recorded_held({"held_volume": "0.6", "slave_volume": True}) is None  # not numbers: absent
    assert recorded_held({}) is None


def test_a_change_is_written_only_beyond_half_a_volume_step():
    assert held_changed(None, 0.5, 0.01)
    assert not held_changed(0.5, 0.504, 0.01)
    assert held_changed(0.5, 0.506, 0.01)
    assert held_changed(0.5, 0.49, 0.01)
    assert not held_changed(0.5, 0.5 + 1e-12, 0.0)  # no step known: float noise only
    assert held_changed(0.5, 0.5001, 0.0)


def test_a_close_reduces_and_a_fill_adds_to_what_the_copy_held():
    assert reduced_held(1.0, 0.4) == 0.6
    assert reduced_held(0.3, 0.4) == 0.0  # floored
    assert reduced_held(None, 0.4) == 0.0
    assert added_held(0.6, 0.2) == 0.8
    assert added_held(None, 0.2) == 0.2


# ----------------------------------------------------------------- hedging follower


def test_hedging_a_link_holds_the_sum_of_its_positions():
    """A copy with an add: one position found by its tag, one by the link's slave ticket."""
    masters = {MASTER: view([mpos(1, volume=1.0)])}
    links = [link(1, slave_ticket=501)]
    positions = [pos(500, 0.6), pos(501, 0.3, comment="renamed by the broker"), pos(502, 0.2, comment="")]
    assert held_volumes(hedging(masters, links, positions)) == {(MASTER, 1): 0.9}


def test_hedging_a_partial_close_shows_the_reduced_volume_while_the_ratio_stays():
    masters = {MASTER: view([mpos(1, volume=0.6)])}
    links = [link(1, mv=1.0, sv=1.0, slave_ticket=500)]
    assert held_volumes(hedging(masters, links, [pos(500, 0.6)])) == {(MASTER, 1): 0.6}
    assert links[0].slave_volume == 1.0 and links[0].master_volume == 1.0


def test_hedging_two_links_on_one_symbol_are_kept_apart_by_their_tags():
    masters = {MASTER: view([mpos(1, volume=1.0), mpos(2, volume=0.5)])}
    links = [link(1, slave_ticket=500), link(2, slave_ticket=510)]
    positions = [pos(500, 0.7), pos(510, 0.5, ticket=2), pos(511, 0.1, ticket=2)]
    assert held_volumes(hedging(masters, links, positions)) == {(MASTER, 1): 0.7, (MASTER, 2): 0.6}


def test_hedging_nothing_is_decided_for_a_vanished_copy_or_what_the_pass_acted_on():
    masters = {MASTER: view([mpos(1), mpos(2)])}
    links = [link(1, slave_ticket=500), link(2, slave_ticket=510)]
    positions = [pos(510, 0.5, ticket=2)]
    assert held_volumes(hedging(masters, links, positions)) == {(MASTER, 2): 0.5}  # link 1's copy vanished
    assert held_volumes(hedging(masters, links, positions), skip_keys={(MASTER, 2)}) == {}
    assert held_volumes(hedging(masters, links, positions), skip_symbols={"EURUSD.c"}) == {}


def test_hedging_only_open_position_links_on_the_links_side():
    masters = {MASTER: view([mpos(1), mpos(2), mpos(3)])}
    links = [link(1, slave_ticket=500), link(2, status="PENDING"), link(3, kind="order", slave_ticket=520)]
    positions = [pos(500, 0.5), pos(501, 0.2, side="SELL"), pos(510, 0.5, ticket=2)]  # 501: a flip's old side
    assert held_volumes(hedging(masters, links, positions)) == {(MASTER, 1): 0.5}


# ----------------------------------------------------------------- netting follower


def test_netting_one_copy_holds_the_position():
    masters = {MASTER: view([mpos(1, volume=0.6)])}
    links = [link(1, mv=1.0, sv=1.0, slave_ticket=700)]
    assert held_volumes(netting(masters, links, [pos(700, 0.6)])) == {(MASTER, 1): 0.6}


def test_netting_copies_share_the_position_by_their_planner_shares():
    """lot_ratio x the master's volume now, scaled so the shares add up to the position."""
    masters = {MASTER: view([mpos(1, volume=1.0)]), M2: view([mpos(2, volume=0.5)], name=M2)}
    links = [link(1, slave_ticket=700), link(2, master=M2, mv=0.5, sv=0.3, slave_ticket=700)]
    assert held_volumes(netting(masters, links, [pos(700, 1.3)])) == {(MASTER, 1): 1.0, (M2, 2): 0.3}
    # MASTER partially closed to 0.4 and the slave followed (1.3 - 0.6)
    masters[MASTER] = view([mpos(1, volume=0.4)])
    assert held_volumes(netting(masters, links, [pos(700, 0.7)])) == {(MASTER, 1): 0.4, (M2, 2): 0.3}
    # a manual partial close of the net position to 0.35: both copies hold half their share
    assert held_volumes(netting(masters, links, [pos(700, 0.35)])) == {(MASTER, 1): 0.2, (M2, 2): 0.15}


def test_netting_opposite_copies_net_to_the_position():
    masters = {MASTER: view([mpos(1, volume=1.0)]), M2: view([mpos(2, side="SELL", volume=0.3)], name=M2)}
    links = [link(1, slave_ticket=700), link(2, master=M2, direction="SELL", mv=0.3, sv=0.3, slave_ticket=700)]
    held = held_volumes(netting(masters, links, [pos(700, 0.7)]))
    assert held == {(MASTER, 1): 1.0, (M2, 2): 0.3}
    assert held[(MASTER, 1)] - held[(M2, 2)] == pytest.approx(0.7)


def test_netting_max_lot_caps_a_share_as_the_planner_does():
    masters = {MASTER: view([mpos(1, volume=3.0)]), M2: view([mpos(2, volume=0.5)], name=M2)}
    links = [link(1, mv=3.0, sv=3.0, slave_ticket=700), link(2, master=M2, mv=0.5, sv=0.5, slave_ticket=700)]
    held = held_volumes(netting(masters, links, [pos(700, 2.5)], cfg={"max_lot": 2.0}))
    assert held == {(MASTER, 1): 2.0, (M2, 2): 0.5}


@pytest.mark.parametrize("case", ["stale", "closed", "flipped", "flat", "manual", "other_side", "acted", "pending_gone"])
def test_netting_a_symbol_the_planner_is_about_to_act_on_is_not_valued(case):
    m1, m2 = mpos(1, volume=1.0), mpos(2, volume=0.5)
    masters = {MASTER: view([m1]), M2: view([m2], name=M2)}
    links = [link(1, slave_ticket=700), link(2, master=M2, mv=0.5, sv=0.5, slave_ticket=700)]
    positions = [pos(700, 1.5)]
    skip_keys: set = set()
    if case == "stale":
        masters[M2] = view([m2], fresh=False, name=M2)
    elif case == "closed":
        masters[M2] = view([], name=M2)
    elif case == "flipped":
        masters[M2] = view([mpos(2, side="SELL", volume=0.5)], name=M2)
    elif case == "flat":
        positions = []
    elif case == "manual":
        positions = [pos(701, 1.5, comment="")]
    elif case == "other_side":
        positions = [pos(700, 0.5, side="SELL")]
    elif case == "acted":
        skip_keys = {(M2, 2)}
    elif case == "pending_gone":  # a pending copy vanished: its fill may be in the position
        links.append(link(3, kind="order", slave_ticket=990))
    assert held_volumes(netting(masters, links, positions), skip_keys=skip_keys) == {}


def test_netting_held_follows_the_planners_own_reduction():
    """Plan and apply on the model: the master partially closes, the planner books the
    reduction, and the held volumes are the copies' shares of what the slave holds."""
    model = SlaveModel(netting=True)
    slave_cfg = cfg()
    masters = {MASTER: view([mpos(1, volume=1.0)]), M2: view([mpos(2, volume=0.5)], name=M2)}
    for _ in range(2):
        model.apply(model.plan(slave_cfg, masters))
    [net] = model.positions.values()
    assert net.volume == pytest.approx(1.5)
    assert held_volumes(model.ctx(slave_cfg, masters)) == {(MASTER, 1): 1.0, (M2, 2): 0.5}
    masters[MASTER] = view([mpos(1, volume=0.4)])
    model.apply(model.plan(slave_cfg, masters))
    [net] = model.positions.values()
    assert net.volume == pytest.approx(0.9)
    held = held_volumes(model.ctx(slave_cfg, masters))
    assert held == {(MASTER, 1): 0.4, (M2, 2): 0.5}
    assert model.links[(MASTER, 1)].slave_volume == 1.0  # the sizing ratio is untouched


def test_the_link_value_loads_held_volume_and_leaves_it_none_when_absent():
    row = {"slave_name": SLAVE, "master_name": MASTER, "master_ticket": 1, "slave_volume": 1.0}
    assert Link.from_record(row).held_volume is None
    assert Link.from_record({**row, "held_volume": 0}).held_volume == 0.0
    assert Link.from_record({**row, "held_volume": 0.6}).to_record()["held_volume"] == 0.6
