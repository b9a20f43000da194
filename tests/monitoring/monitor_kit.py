"""In-process helpers for the guardian tests: the simulator, a SQLite store, a fake clock,
and recorders standing in for the node's event sink and the alert dispatcher."""
from __future__ import annotations

import structlog

from copier.orders import RetryPolicy
from db import open_store
from monitoring.guardian import Guardian
from nodes.execution import Executor
from sim import Simulator

FTMO_10K = {"profile": "ftmo_2step", "initial_balance": 10000}
EVAL_MS = 1000
WALL_START = 1_800_000_000_000  # 2027: deliberately far from the simulator's 2025 clock


class Events:
    def __init__(self) -> None:
        self.items: list[tuple[str, dict]] = []

    def __call__(self, kind: str, *, level: str = "info", **data) -> None:
        self.items.append((kind, {"level": level, **data}))

    def kinds(self) -> list[str]:
        return [k for k, _ in self.items]

    def of(self, kind: str) -> list[dict]:
        return [d for k, d in self.items if k == kind]


class Alerts:
    """Records what the guardian hands to the dispatcher (delivery is tested in tests/alerts)."""

    def __init__(self) -> None:
        self.sent = []
        self.resets = []

    def send(self, alert) -> bool:
        self.sent.append(alert)
        return True

    def reset_dedup(self, account=None) -> None:
        self.resets.append(account)

    def levels(self, rule: str) -> list[str]:
        return [a.level for a in self.sent if a.rule == rule]


class Clock:
    def __init__(self, start: int = WALL_START) -> None:
        self.now = start

    def step(self, ms: int = EVAL_MS) -> int:
        self.now += ms
        return self.now


class Env:
    """One simulator + store; ``guardian()`` builds guardians the way a node does."""

    def __init__(self, tmp_path) -> None:
        self.sim = Simulator.demo(seed=1)
        self.store = open_store(f"sqlite:///{tmp_path / 'store.db'}")
        self.clock = Clock()
        self.terminals = {}

    def terminal(self, login: int = 2004):
        t = self.sim.terminal()
        assert t.initialize(login=login)
        return t

    def guardian(self, risk=FTMO_10K, *, name="A", role="slave", login=2004, mt5=None, events=None, alerts=None,
                 snapshot_interval_ms=10_000, start=True, report_in_background=False) -> Guardian:
        mt5 = mt5 or self.terminal(login)
        g = Guardian(name, role, risk, mt5, self.store, log=structlog.get_logger("test"),
                     event=events if events is not None else Events(), alerts=alerts if alerts is not None else Alerts(),
                     eval_interval_ms=EVAL_MS, snapshot_interval_ms=snapshot_interval_ms,
                     report_in_background=report_in_background,
                     executor=Executor(mt5, RetryPolicy(max_attempts=3), sleep=lambda s: None))
        if start:
            g.start(self.clock.now)
        return g


def market(mt5, symbol: str, side: str, volume: float, *, sl: float = 0.0, comment: str = ""):
    tick = mt5.symbol_info_tick(symbol)
    r = mt5.order_send({"action": mt5.TRADE_ACTION_DEAL, "symbol": symbol, "volume": volume,
                        "type": mt5.ORDER_TYPE_BUY if side == "BUY" else mt5.ORDER_TYPE_SELL,
                        "price": tick.ask if side == "BUY" else tick.bid, "sl": sl, "deviation": 20,
                        "type_filling": mt5.ORDER_FILLING_IOC, "comment": comment})
    assert r is not None and r.retcode == mt5.TRADE_RETCODE_DONE, (r, mt5.last_error())
    return r


def drive(env: Env, g: Guardian, *, points: int = -10, until, max_steps: int = 400, symbol="EURUSD.c",
          broker="SimProp-Server") -> list[dict]:
    """Move the price by ``points`` per step, one evaluation per step, until ``until(g)``.
    Returns the status after each step (what the guardian saw)."""
    seen = []
    for _ in range(max_steps):
        env.sim.move_price(symbol, points, broker=broker)
        g.tick(env.clock.step())
        seen.append(g.status_info())
        if until(g):
            return seen
    raise AssertionError(f"condition not reached in {max_steps} steps; last status {seen[-1]}")
