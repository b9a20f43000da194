"""The demo trader performs all four kinds of actions, in-process, reproducibly."""
import threading

import pytest

from sim import Simulator
from sim.trader import ACTIONS, CLOSE, MODIFY, OPEN, PARTIAL, DemoTrader, filling_for, round_volume


def bound_terminal(seed=0):
    sim = Simulator.demo(seed=seed, comment_limit=31)
    login = sorted(int(x) for x in sim.logins())[0]
    mt5 = sim.terminal()
    assert mt5.initialize(login=login)
    symbols = [s.name for s in mt5.symbols_get() if s.trade_mode == mt5.SYMBOL_TRADE_MODE_FULL][:3]
    return sim, mt5, symbols


def run_steps(seed, n=150):
    sim, mt5, symbols = bound_terminal()
    trader = DemoTrader(mt5, symbols, max_positions=4, seed=seed)
    acts = []
    for _ in range(n):
        before = {p.ticket: p for p in trader.my_positions()}
        act = trader.step()
        after = {p.ticket: p for p in trader.my_positions()}
        acts.append((act, before, after))
        sim.advance(1.0)
    return mt5, trader, acts


def test_all_four_actions_succeed_with_their_effects():
    mt5, trader, acts = run_steps(seed=3)
    done = [a for a, _, _ in acts if a.ok]
    assert {a.kind for a in done} == set(ACTIONS)
    assert len(done) >= len(acts) * 0.9, [a for a, _, _ in acts if not a.ok][:5]
    for act, before, after in acts:
        if not act.ok:
            continue
        if act.kind == OPEN:
            assert act.ticket in after and act.ticket not in before
        elif act.kind == CLOSE:
            assert act.ticket in before and act.ticket not in after
        elif act.kind == PARTIAL:
            assert after[act.ticket].volume == pytest.approx(before[act.ticket].volume - act.volume)
        elif act.kind == MODIFY:
            assert after[act.ticket].sl != 0 and after[act.ticket].tp != 0
        assert len(after) <= trader.max_positions


def test_same_seed_same_actions_and_different_seed_differs():
    a = [x[0] for x in run_steps(seed=11, n=40)[2]]
    b = [x[0] for x in run_steps(seed=11, n=40)[2]]
    c = [x[0] for x in run_steps(seed=12, n=40)[2]]
    assert a == b and a != c


def test_leaves_positions_without_its_magic_alone():
    sim, mt5, symbols = bound_terminal()
    info = mt5.symbol_info(symbols[0])
    tick = mt5.symbol_info_tick(symbols[0])
    manual = mt5.order_send({"action": mt5.TRADE_ACTION_DEAL, "symbol": symbols[0],
                             "volume": info.volume_min, "type": mt5.ORDER_TYPE_BUY,
                             "price": tick.ask, "deviation": 20, "magic": 1,
                             "type_filling": filling_for(info.filling_mode, mt5)})
    assert manual.retcode == mt5.TRADE_RETCODE_DONE
    mine = mt5.positions_get(ticket=manual.order)[0]
    trader = DemoTrader(mt5, symbols, max_positions=3, seed=5)
    for _ in range(80):
        trader.step()
    assert mt5.positions_get(ticket=manual.order)[0] == mine._replace(
        price_current=mt5.positions_get(ticket=manual.order)[0].price_current,
        profit=mt5.positions_get(ticket=manual.order)[0].profit)


def test_run_honours_stop_and_reports_each_action():
    _, mt5, symbols = bound_terminal()
    trader = DemoTrader(mt5, symbols, seed=1)
    stop = threading.Event()
    seen = []

    def on_action(act):
        seen.append(act)
        if len(seen) == 5:
            stop.set()

    assert trader.run(rate=500, stop=stop, on_action=on_action) == 5
    assert len(seen) == 5
    with pytest.raises(ValueError):
        trader.run(rate=0)


def test_filling_and_volume_helpers():
    class M:
        ORDER_FILLING_FOK, ORDER_FILLING_IOC, ORDER_FILLING_RETURN = 0, 1, 2
    assert [filling_for(m, M) for m in (1, 2, 3, 4, 0, 6)] == [0, 1, 0, 2, 2, 1]
    assert round_volume(0.30000000000000004, 0.01) == 0.3
    assert round_volume(7, 1.0) == 7.0
