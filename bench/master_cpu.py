"""Where a master's CPU goes: 100 positions polled, terminal time vs everything else.

    python bench/master_cpu.py [--positions 100] [--polls 2000] [--profile] [--json]

Drives ``nodes.master.MasterLoop.poll_once`` in-process against the simulator (prices
moving between polls, as in a live market, and one real change every 50 polls), with a
publisher that encodes every message as the bus would. Terminal calls are timed
separately (over RPC they cost the terminal's time, not the node's CPU), so the figure
that matters is the node's own CPU per poll and its share of a core at a 20 ms poll.
``--profile`` prints the top functions of the node's own work (cProfile).
"""
from __future__ import annotations

import argparse
import cProfile
import json
import os
import pstats
import sys
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import structlog  # noqa: E402

from messaging.codec import encode  # noqa: E402
from nodes.master import MasterLoop  # noqa: E402
from nodes.runtime import utc_ms  # noqa: E402
from sim import Simulator  # noqa: E402

FX = "SimFX-Live"


class _Runtime:
    def __init__(self) -> None:
        self.name = "M"
        self.log = structlog.get_logger("bench")
        self.last_error = None
        self.publisher = self
        self.bytes = 0
        self.subscriber = None  # no bus here: the heartbeat's bus counters read 0
        self.confirms = 0

    def publish(self, msg: Any) -> None:
        self.bytes += len(encode(msg)[1])

    def event(self, kind: str, **data: Any) -> None:
        pass

    def publish_status(self, metrics: Any, info: Any) -> None:
        from messaging.schema import Status

        self.publish(Status(node=self.name, role="master", state="RUNNING", pid=1, ts_ms=1, account=metrics, info=info))

    def set_error(self, error: str | None) -> None:
        self.last_error = error

    def verify_account(self, mt5: Any, cfg: Any, info: Any) -> None:
        self.confirms += 1


class _Timed:
    """The terminal, with the time spent inside its calls added up (ns)."""

    def __init__(self, mt5: Any) -> None:
        self._mt5 = mt5
        self.ns = 0
        self.calls: dict[str, int] = {}

    def __getattr__(self, name: str) -> Any:
        attr = getattr(self._mt5, name)
        if not callable(attr):
            return attr

        def call(*a: Any, **k: Any) -> Any:
            t0 = time.process_time_ns()  # CPU time, like the total: a loaded machine does not skew the split
            try:
                return attr(*a, **k)
            finally:
                self.ns += time.process_time_ns() - t0
                self.calls[name] = self.calls.get(name, 0) + 1

        return call


def run(positions: int, polls: int, profile: bool) -> dict:
    structlog.configure(wrapper_class=structlog.make_filtering_bound_logger(40))
    sim = Simulator.demo(seed=1)
    raw = sim.terminal()
    assert raw.initialize(login=1001)
    symbols = ["EURUSD", "GBPUSD", "USDJPY", "XAUUSD"]
    for i in range(positions):
        s = symbols[i % len(symbols)]
        tick = raw.symbol_info_tick(s)
        r = raw.order_send({"action": 1, "symbol": s, "volume": 0.01, "type": 0, "price": tick.ask, "type_filling": 1,
                            "deviation": 50})
        assert r.retcode == 10009, r
    mt5 = _Timed(raw)
    rt = _Runtime()
    loop = MasterLoop(rt, mt5, poll_ms=20, heartbeat_ms=1000, cfg=object())
    loop.poll_once()
    prof = cProfile.Profile() if profile else None
    sim_ns = 0
    mt5.ns, rt.confirms, mt5.calls = 0, 0, {}
    t_cpu = time.process_time_ns()
    for i in range(polls):
        t0 = time.process_time_ns()
        sim.advance(0.02)  # the market moves between polls (not the node's CPU)
        if i % 50 == 25:
            tick = raw.symbol_info_tick("EURUSD")
            raw.order_send({"action": 1, "symbol": "EURUSD", "volume": 0.01, "type": 0, "price": tick.ask,
                            "type_filling": 1, "deviation": 50})
        sim_ns += time.process_time_ns() - t0
        if prof:
            prof.enable()
        loop.poll_once()
        if i % 50 == 0:  # the 1 s heartbeat: once every 50 polls at 20 ms
            loop._next_heartbeat = 0
            loop.heartbeat(utc_ms())
        if prof:
            prof.disable()
    total_ns = time.process_time_ns() - t_cpu - sim_ns
    own_ns = total_ns - mt5.ns
    out = {
        "positions": positions, "polls": polls,
        "terminal_us_per_poll": round(mt5.ns / polls / 1000, 1),
        "node_us_per_poll": round(own_ns / polls / 1000, 1),
        "node_core_pct_at_20ms": round(own_ns / polls / 20e6 * 100, 2),
        "calls_per_poll": {k: round(v / polls, 3) for k, v in sorted(mt5.calls.items())},
        "account_confirms_per_poll": round(rt.confirms / polls, 3),
        "load_avg": [round(x, 2) for x in os.getloadavg()] if hasattr(os, "getloadavg") else None,
    }
    if prof:
        stats = pstats.Stats(prof)
        stats.sort_stats("tottime").print_stats(18)
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--positions", type=int, default=100)
    ap.add_argument("--polls", type=int, default=2000)
    ap.add_argument("--profile", action="store_true")
    ap.add_argument("--json", action="store_true")
    a = ap.parse_args()
    res = run(a.positions, a.polls, a.profile)
    if a.json:
        print(json.dumps(res))
        return
    print(f"master, {res['positions']} positions, {res['polls']} polls (load average {res['load_avg']})")
    print(f"  node's own CPU per poll  {res['node_us_per_poll']:8.1f} µs  = {res['node_core_pct_at_20ms']:.2f} % of a core at 20 ms")
    print(f"  terminal time per poll   {res['terminal_us_per_poll']:8.1f} µs  (in-process simulator; over RPC it is the terminal's)")
    print(f"  terminal calls per poll  {res['calls_per_poll']}")
    print(f"  account_info confirmations per poll {res['account_confirms_per_poll']}")


if __name__ == "__main__":
    main()
