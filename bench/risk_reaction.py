"""Risk reaction time: from the price move that crosses the flatten level to the last
close the guardian sends.

    python bench/risk_reaction.py [--mode inprocess|processes] [--trials N] [--eval-ms 1000] [--positions 3] [--json]

``inprocess`` (default): a fresh demo simulator per trial, login 2004 (10k) under
``ftmo_2step``, ``--positions`` EURUSD.c positions. A "node" thread runs the guardian
the way the slave loop does (sleep until ``ms_until_due``, then ``tick``); a "market"
thread moves the price in 10-point steps at random instants (uniform within one
evaluation interval, so crossings land at every phase of the schedule), and after each
step reads the account: the first step where equity <= the flatten level (day
reference - flatten_at x daily limit) is the crossing. Times are ``perf_counter``
around the move and around each close's ``order_send``.

``processes``: the real fleet (sim server, proxy, master, slave node) via LocalFleet;
the master opens the positions, the slave (login 2001, a 500 daily limit) copies them,
the bench moves the price over the simulator's admin RPC. One trial per broker day (the simulator clock jumps a day,
the lock lapses at the reset). The crossing time is taken when the move RPC returns;
the close time is the ``sent_ms`` the slave records in its ``risk_position_closed``
events (wall clock, ms resolution).

Goal: p99 <= 1.5 x the evaluation interval.
"""
from __future__ import annotations

import argparse
import json
import platform
import random
import statistics
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

FTMO_10K = {"profile": "ftmo_2step", "initial_balance": 10000}
STEP_POINTS = 10


def pct(xs: list[float], p: float) -> float:
    s = sorted(xs)
    return s[min(len(s) - 1, int(round(p / 100 * (len(s) - 1))))]


def summary(samples_ms: list[float], eval_ms: int) -> dict[str, Any]:
    p99 = pct(samples_ms, 99)
    return {
        "n": len(samples_ms), "eval_ms": eval_ms,
        "p50_ms": round(pct(samples_ms, 50), 2), "p90_ms": round(pct(samples_ms, 90), 2),
        "p99_ms": round(p99, 2), "max_ms": round(max(samples_ms), 2), "mean_ms": round(statistics.fmean(samples_ms), 2),
        "goal_ms": 1.5 * eval_ms, "goal_met": p99 <= 1.5 * eval_ms,
    }


# ---------------------------------------------------------------------- in-process
class Recording:
    """The terminal, recording when each close request goes out (perf_counter)."""

    def __init__(self, mt5: Any) -> None:
        self._mt5 = mt5
        self.close_sent: list[float] = []

    def __getattr__(self, name: str) -> Any:
        return getattr(self._mt5, name)

    def order_send(self, request: dict) -> Any:
        if request.get("position"):
            self.close_sent.append(time.perf_counter())
        return self._mt5.order_send(request)


def _open(mt5: Any, symbol: str, volume: float) -> None:
    tick = mt5.symbol_info_tick(symbol)
    r = mt5.order_send({"action": mt5.TRADE_ACTION_DEAL, "symbol": symbol, "volume": volume, "type": mt5.ORDER_TYPE_BUY,
                        "price": tick.ask, "deviation": 20, "type_filling": mt5.ORDER_FILLING_IOC})
    if r is None or r.retcode != mt5.TRADE_RETCODE_DONE:
        raise SystemExit(f"bench: open failed {r!r} {mt5.last_error()}")


def inprocess_trial(eval_ms: int, positions: int, rng: random.Random) -> float:
    import structlog

    from copier.orders import RetryPolicy
    from db import open_store
    from monitoring.guardian import Guardian
    from nodes.execution import Executor
    from sim import Simulator

    sim = Simulator.demo(seed=rng.randrange(1 << 30))
    raw = sim.terminal()
    raw.initialize(login=2004)
    mt5 = Recording(raw)
    store = open_store("sqlite:///:memory:")
    g = Guardian("bench", "slave", FTMO_10K, mt5, store, log=structlog.get_logger("bench"), event=lambda *a, **k: None,
                 alerts=None, eval_interval_ms=eval_ms, snapshot_interval_ms=3_600_000, report_interval_ms=3_600_000,
                 executor=Executor(mt5, RetryPolicy(max_attempts=3)))
    now = lambda: time.time_ns() // 1_000_000  # noqa: E731
    g.start(now())
    cfg = g.config
    flatten_equity = g.state.day_start_balance - cfg.flatten_at * cfg.daily_limit_amount(g.state.day_start_balance)
    volume = round(1.5 / positions, 2)
    for _ in range(positions):
        _open(raw, "EURUSD.c", volume)
    # close to the level: 80 % of the limit used
    loss_to_go = raw.account_info().equity - (g.state.day_start_balance - 0.80 * 500)
    sim.move_price("EURUSD.c", -loss_to_go / (volume * positions), broker="SimProp-Server")
    stop = threading.Event()

    def node() -> None:
        while not stop.is_set():
            g.tick(now())
            stop.wait(max(1, g.ms_until_due(now())) / 1000)

    t = threading.Thread(target=node, daemon=True)
    t.start()
    time.sleep(rng.uniform(0, eval_ms) / 1000)
    crossed = None
    for _ in range(200):
        sim.move_price("EURUSD.c", -STEP_POINTS, broker="SimProp-Server")
        t_move = time.perf_counter()
        info = raw.account_info()
        if info.equity <= flatten_equity and raw.positions_get():
            crossed = t_move
            break
        time.sleep(rng.uniform(0, eval_ms) / 1000)
    if crossed is None:
        raise SystemExit("bench: the flatten level was never crossed")
    deadline = time.monotonic() + 10 * eval_ms / 1000 + 5
    while raw.positions_get() and time.monotonic() < deadline:
        time.sleep(0.001)
    stop.set()
    t.join(5)
    store.close()
    if raw.positions_get() or len(mt5.close_sent) < positions:
        raise SystemExit("bench: the guardian did not flatten")
    return (max(mt5.close_sent) - crossed) * 1000


# ---------------------------------------------------------------------- processes
def processes_trials(trials: int, eval_ms: int, positions: int, rng: random.Random, progress: bool) -> list[float]:
    from testing.harness import LocalFleet, wait_until

    env = {"COPYHUB_HEARTBEAT_INTERVAL_MS": "250", "COPYHUB_STALE_AFTER_MS": "1500",
           "COPYHUB_SLAVE_RECONCILE_INTERVAL_MS": "200", "COPYHUB_RISK_EVAL_INTERVAL_MS": str(eval_ms),
           "COPYHUB_SNAPSHOT_INTERVAL_MS": "10000"}
    out = []
    with tempfile.TemporaryDirectory() as tmp, LocalFleet(Path(tmp), tick_hz=0, env=env) as f:
        f.start_sim()
        f.start_proxy()
        f.sim_account("M", "MASTER", 1001)
        # one trial per day on one account: the 100k account with a 500 daily limit (as the
        # 10k FTMO account has) and room overall for many losing days
        f.sim_account("P", "SLAVE", 2001, suffix=".c", slippage_tolerance=300,
                      risk={"profile": "ftmo_2step", "initial_balance": 100000, "daily_limit_money": 500,
                            "overall_limit_pct": 50})
        f.start_node("master", "M")
        f.wait_node_running("M")
        f.start_node("slave", "P")
        f.wait_node_running("P")
        wait_until(lambda: f.store.get_flag("follow:P:M"), timeout=10, message="follow record")
        m, p = f.terminal(1001), f.terminal(2001)
        volume = round(1.5 / positions, 2)
        for i in range(trials):
            if i:
                f.admin.advance(24 * 3600)  # next broker day: the lock lapses at the reset
                f.admin.move_price("EURUSD", 1)
                wait_until(lambda: not (f.store.get_flag("risk_lock:P") or {}), timeout=10, message="lock lapsed")
            tickets = []
            for _ in range(positions):
                tick = m.symbol_info_tick("EURUSD")
                r = m.order_send({"action": m.TRADE_ACTION_DEAL, "symbol": "EURUSD", "volume": volume,
                                  "type": m.ORDER_TYPE_BUY, "price": tick.ask, "deviation": 20,
                                  "type_filling": m.ORDER_FILLING_IOC})
                tickets.append(r.order)
            wait_until(lambda: len(p.positions_get() or ()) == positions, timeout=10, message="copies")
            state = f.store.get_flag("risk_state:P")["state"]
            start_balance = state["day_start_balance"]
            flatten_equity = start_balance - 0.95 * 500
            loss_to_go = p.account_info().equity - (start_balance - 0.80 * 500)
            f.admin.move_price("EURUSD", -loss_to_go / (volume * positions))
            time.sleep(rng.uniform(0, eval_ms) / 1000)
            last_id = (f.store.list_events(account="P", tail=True, limit=1) or [{"id": 0}])[-1]["id"]
            crossed = None
            for _ in range(200):
                f.admin.move_price("EURUSD", -STEP_POINTS)
                t_move = time.time() * 1000
                if p.account_info().equity <= flatten_equity and p.positions_get():
                    crossed = t_move
                    break
                time.sleep(rng.uniform(0, eval_ms) / 1000)
            if crossed is None:
                raise SystemExit("bench: the flatten level was never crossed")
            wait_until(lambda: not p.positions_get(), timeout=10, message="flat")
            closes = wait_until(lambda: [e for e in f.store.list_events(account="P", kind="risk_position_closed",
                                                                         after_id=last_id, limit=None)
                                         if e["data"]["why"] == "flatten"], timeout=5, message="close events")
            out.append(max(e["data"]["sent_ms"] for e in closes) - crossed)
            for t in tickets:
                pos = m.positions_get(ticket=t)
                if pos:
                    tick = m.symbol_info_tick("EURUSD")
                    m.order_send({"action": m.TRADE_ACTION_DEAL, "symbol": "EURUSD", "volume": pos[0].volume,
                                  "position": t, "type": m.ORDER_TYPE_SELL, "price": tick.bid, "deviation": 50,
                                  "type_filling": m.ORDER_FILLING_IOC})
            if progress:
                print(f"trial {i + 1}/{trials}: {out[-1]:.1f} ms", file=sys.stderr)
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--mode", choices=("inprocess", "processes"), default="inprocess")
    ap.add_argument("--trials", type=int, default=None, help="default 60 in-process, 10 with processes")
    ap.add_argument("--eval-ms", type=int, default=1000, help="guardian evaluation interval")
    ap.add_argument("--positions", type=int, default=3)
    ap.add_argument("--seed", type=int, default=7)
    ap.add_argument("--json", action="store_true")
    args = ap.parse_args()
    import logging

    import structlog

    structlog.configure(wrapper_class=structlog.make_filtering_bound_logger(logging.CRITICAL))  # quiet guardian logs
    trials = args.trials or (60 if args.mode == "inprocess" else 10)
    rng = random.Random(args.seed)
    if args.mode == "inprocess":
        samples = []
        for i in range(trials):
            samples.append(inprocess_trial(args.eval_ms, args.positions, rng))
            if not args.json:
                print(f"trial {i + 1}/{trials}: {samples[-1]:.1f} ms", file=sys.stderr)
    else:
        samples = processes_trials(trials, args.eval_ms, args.positions, rng, progress=not args.json)
    result = {"mode": args.mode, "positions": args.positions, **summary(samples, args.eval_ms),
              "python": platform.python_version(), "machine": platform.machine()}
    if args.json:
        print(json.dumps(result))
        return
    print(f"\nrisk reaction ({args.mode}, {args.positions} positions, eval every {args.eval_ms} ms): "
          "crossing move -> last close sent")
    print("| n | p50 ms | p90 ms | p99 ms | max ms | goal p99 <= | met |")
    print("|---:|---:|---:|---:|---:|---:|:---:|")
    r = result
    print(f"| {r['n']} | {r['p50_ms']} | {r['p90_ms']} | {r['p99_ms']} | {r['max_ms']} | {r['goal_ms']:.0f} | "
          f"{'yes' if r['goal_met'] else 'NO'} |")


if __name__ == "__main__":
    main()
