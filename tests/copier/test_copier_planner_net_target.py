"""Fault 9: a netting follower's target per symbol is the signed sum of the sized master
positions, whatever order they came in (size each, sum, round the sum down toward zero).

The model (copier_testkit.SlaveModel) does what the slave node does with each action,
including "a full close that leaves nothing tagged ends the link" unless the close says
otherwise (``Close.ends_link``), which is how fault 9 (b) recorded "master closed".
"""
from dataclasses import replace

import pytest
from copier_testkit import MASTER, SlaveModel, cfg, mpos, quote, spec, view

from copier.actions import Adopt, Close, MarkClosed, Open
from copier.planner_netting import net_target

HALF = cfg(sizing={"mode": "multiplier", "multiplier": 0.5})
SPECS = {"EURUSD.c": spec("EURUSD.c"), "GBPUSD.c": spec("GBPUSD.c")}
QUOTES = {"EURUSD.c": quote(1.1000), "GBPUSD.c": quote(1.2700)}


class Master:
    """A hedging master: positions by identifier."""

    def __init__(self) -> None:
        self.positions: dict = {}
        self.next = 1

    def open(self, symbol: str, side: str, volume: float) -> int:
        t, self.next = self.next, self.next + 1
        q = QUOTES[symbol + ".c"]
        self.positions[t] = mpos(t, symbol=symbol, side=side, volume=volume, price=q.ask if side == "BUY" else q.bid)
        return t

    def close(self, t: int, volume: float | None = None) -> None:
        p = self.positions[t]
        left = round(p.volume - (volume if volume is not None else p.volume), 8)
        if left > 1e-9:
            self.positions[t] = replace(p, volume=left)
        else:
            del self.positions[t]

    def view(self):
        return {MASTER: view(self.positions.values())}


def settle(model: SlaveModel, master: Master, slave_cfg=HALF, passes: int = 4) -> list:
    """Plan and apply until nothing is left to do; returns every action taken."""
    done = []
    for _ in range(passes):
        acts = model.plan(slave_cfg, master.view(), specs=SPECS, quotes=QUOTES)
        if not acts:
            return done
        model.apply(acts)
        done += acts
    raise AssertionError(f"did not settle: {model.plan(slave_cfg, master.view(), specs=SPECS, quotes=QUOTES)}")


def net(model: SlaveModel, symbol: str) -> float:
    return round(sum(p.volume if p.side == "BUY" else -p.volume for p in model.positions.values() if p.symbol == symbol), 8)


def test_fault9a_buy_020_sell_060_then_close_050_of_the_sell_holds_plus_005():
    m, s = Master(), SlaveModel(netting=True)
    buy = m.open("EURUSD", "BUY", 0.20)
    settle(s, m)
    assert net(s, "EURUSD.c") == 0.10
    sell = m.open("EURUSD", "SELL", 0.60)
    settle(s, m)
    assert net(s, "EURUSD.c") == -0.20
    m.close(sell, 0.50)
    settle(s, m)
    assert net(s, "EURUSD.c") == 0.05  # +0.10 − 0.05; the seed held +0.10
    assert {k[1]: l.status for k, l in s.links.items()} == {buy: "OPEN", sell: "OPEN"}


def test_fault9b_buy_020_sell_010_then_close_010_of_the_buy_is_flat_and_nothing_says_master_closed():
    m, s = Master(), SlaveModel(netting=True)
    buy = m.open("GBPUSD", "BUY", 0.20)
    settle(s, m)
    sell = m.open("GBPUSD", "SELL", 0.10)
    settle(s, m)
    assert net(s, "GBPUSD.c") == 0.05
    m.close(buy, 0.10)
    acts = settle(s, m)
    assert net(s, "GBPUSD.c") == 0.0  # +0.05 − 0.05; the seed held −0.05
    closes = [a for a in acts if isinstance(a, Close)]
    assert closes and all(not c.ends_link and c.reason != "master closed" for c in closes)
    assert not [a for a in acts if isinstance(a, MarkClosed)]
    assert {k[1]: l.status for k, l in s.links.items()} == {buy: "OPEN", sell: "OPEN"}
    # and when the master really closes them, the links end with "master closed"
    m.close(buy)
    m.close(sell)
    settle(s, m)
    assert net(s, "GBPUSD.c") == 0.0
    assert {l.status for l in s.links.values()} == {"CLOSED"} and {l.reason for l in s.links.values()} == {"master closed"}


def test_net_target_rounds_the_sum_down_toward_zero():
    sp = spec()
    assert net_target(0.015, sp) == 0.01
    assert net_target(-0.015, sp) == -0.01
    assert net_target(0.0099999, sp) == 0.01  # float noise on a grid line
    assert net_target(0.009, sp) == 0.0
    assert net_target(-0.2999999999, sp) == -0.3
    assert net_target(250.0, sp) == 100.0  # volume_max
    assert net_target(0.15, spec(vmin=0.2, step=0.01)) == 0.0


def test_three_half_lot_shares_that_each_round_to_nothing_sum_to_one_step():
    # multiplier 0.5 of 0.01: each copy alone is 0.005, under the minimum; three make 0.015 -> 0.01
    m, s = Master(), SlaveModel(netting=True)
    first = m.open("EURUSD", "BUY", 0.01)
    acts = settle(s, m)
    assert net(s, "EURUSD.c") == 0.0 and [type(a) for a in acts] == [Adopt]  # registered, counted, no deal
    m.open("EURUSD", "BUY", 0.01)
    settle(s, m)
    assert net(s, "EURUSD.c") == 0.01
    m.open("EURUSD", "BUY", 0.01)
    settle(s, m)
    assert net(s, "EURUSD.c") == 0.01  # 0.015 rounded down
    m.open("EURUSD", "BUY", 0.01)
    settle(s, m)
    assert net(s, "EURUSD.c") == 0.02
    m.close(first)
    settle(s, m)
    assert net(s, "EURUSD.c") == 0.01


@pytest.mark.parametrize("order", [(0, 1, 2, 3), (3, 2, 1, 0), (1, 3, 0, 2), (2, 0, 3, 1)])
def test_mixed_sides_three_and_more_positions_any_order_give_the_same_net(order):
    legs = [("BUY", 0.33), ("SELL", 0.17), ("BUY", 0.05), ("SELL", 0.41)]  # ×0.5: .165 −.085 +.025 −.205 = −0.10
    m, s = Master(), SlaveModel(netting=True)
    for i in order:
        m.open("EURUSD", *legs[i])
        settle(s, m)
    assert net(s, "EURUSD.c") == -0.10
    assert plan_is_empty(s, m)


def plan_is_empty(s: SlaveModel, m: Master) -> bool:
    return s.plan(HALF, m.view(), specs=SPECS, quotes=QUOTES) == []


def test_a_new_copy_trades_only_the_change_of_the_net():
    m, s = Master(), SlaveModel(netting=True)
    m.open("EURUSD", "BUY", 0.33)  # 0.165 -> 0.16
    settle(s, m)
    assert net(s, "EURUSD.c") == 0.16
    m.open("EURUSD", "BUY", 0.01)  # 0.170 -> 0.17: one step, not the copy's own (sub-minimum) 0.005
    (o,) = s.plan(HALF, m.view(), specs=SPECS, quotes=QUOTES)
    assert isinstance(o, Open) and o.volume == 0.01 and o.purpose == "new" and o.lot_ratio == 0.5


def test_partial_reduce_of_one_of_three_is_one_close_booked_to_it_and_keeps_every_link():
    m, s = Master(), SlaveModel(netting=True)
    a = m.open("EURUSD", "BUY", 0.40)
    b = m.open("EURUSD", "BUY", 0.20)
    c = m.open("EURUSD", "SELL", 0.10)
    settle(s, m)
    assert net(s, "EURUSD.c") == 0.25
    m.close(b, 0.10)
    (close,) = s.plan(HALF, m.view(), specs=SPECS, quotes=QUOTES)
    assert isinstance(close, Close) and close.volume == 0.05 and close.master_ticket == b and not close.ends_link
    settle(s, m)
    assert net(s, "EURUSD.c") == 0.20 and {l.status for l in s.links.values()} == {"OPEN"}
    assert {k[1] for k in s.links} == {a, b, c}
