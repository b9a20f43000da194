"""The slave's own time on the copy path, without the terminal's round trips.

The slave loop (``nodes.slave.SlaveLoop``, its risk guardian on) is driven in-process
against the in-process simulator, as tests/nodes/test_nodes_copy_calls.py does: the
master opens a position, the change reaches the slave as a bus message, and the time
from ``on_message`` to the slave's ``order_send`` is measured (then the master closes
it, so each open is planned against the same small book). The terminal calls cost
microseconds here, so what is measured is copyhub's own work: decode-free message
apply, planning, the guardian's pre-trade check, the SQLite intent write and the fence.
With ``--held N`` the slave holds N other copies (the planner walks every link). With
``--history N`` the store holds N finished copies of earlier days (an account that has
traded for weeks); the timer's full pass runs every 20 opens, as every second in a node,
and lets them go (``SlaveLoop._prune_finished``) — ``--keep-history`` measures the loop
that kept every finished link in memory (before).

Run: ``python bench/slave_pass.py [--opens 300] [--held 0] [--history 0 [--keep-history]] [--profile]``.
"""
from __future__ import annotations

import argparse
import cProfile
import logging
import pstats
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import structlog  # noqa: E402

from copier.accounts import validate_account  # noqa: E402
from db import open_store  # noqa: E402
from messaging.schema import Snapshot  # noqa: E402
from monitoring.guardian import Guardian  # noqa: E402
from nodes.runtime import utc_ms  # noqa: E402
from nodes.slave import SlaveLoop  # noqa: E402
from sim import Simulator  # noqa: E402
from terminals.convert import ContractSizes, positions_by_identifier  # noqa: E402

RISK = {"profile": "ftmo_2step", "initial_balance": 100000, "max_positions": 1000}


class Runtime:
    """What the loop needs of a node's runtime, without a bus or a process: messages it
    would publish and subscriptions are dropped, events ignored."""

    def __init__(self, name: str, store) -> None:
        self.name, self.store = name, store
        self.log = structlog.get_logger("bench").bind(account=name)
        self.last_error = None
        self.subscriber = self.publisher = self

    def publish(self, msg) -> None:
        pass

    def subscribe(self, topic: str) -> None:
        pass

    def unsubscribe(self, topic: str) -> None:
        pass

    def event(self, kind: str, **data) -> None:
        pass

    def set_error(self, error) -> None:
        self.last_error = error

    def request_stop(self, code: int = 0) -> None:
        pass

    def read_account_doc(self):
        return self.store.get_account(self.name)


def pct(values: list[float], p: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(p / 100 * len(ordered)))]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--opens", type=int, default=300)
    ap.add_argument("--held", type=int, default=0, help="other copies the slave holds meanwhile")
    ap.add_argument("--history", type=int, default=0, help="finished copies of earlier days in the store")
    ap.add_argument("--keep-history", action="store_true", help="keep every finished link in memory (before)")
    ap.add_argument("--profile", action="store_true", help="print the top of a cProfile by own time")
    args = ap.parse_args()
    if args.keep_history:
        import nodes.slave as slave_mod

        slave_mod.FINISHED_LINK_KEEP_MS = 10**15
    structlog.configure(wrapper_class=structlog.make_filtering_bound_logger(logging.WARNING))
    workdir = tempfile.mkdtemp()
    sim = Simulator.demo(seed=3)
    store = open_store(f"sqlite:///{workdir}/bench.db")
    store.upsert_account({"name": "M", "type": "MASTER", "terminal": {"kind": "sim", "login": 1001}})
    store.upsert_account({"name": "S", "type": "SLAVE", "suffix": ".c", "slippage_tolerance": 300, "risk": RISK,
                          "terminal": {"kind": "sim", "login": 2001}})
    store.set_flag("follow:S:M", {"since_ms": 0})
    master, slave = sim.terminal(), sim.terminal()
    master.initialize(login=1001)
    slave.initialize(login=2001)
    sent: list[float] = []
    send = slave.order_send

    def timed_send(request):
        sent.append(time.perf_counter())
        return send(request)

    slave.order_send = timed_send
    old = utc_ms() - 30 * 86_400_000
    for i in range(args.history):  # finished copies of earlier days
        store.record_intent({"slave_name": "S", "master_name": "M", "master_ticket": 10_000_000 + i, "status": "CLOSED",
                             "kind": "position", "symbol": "EURUSD.c", "created_ms": old, "updated_ms": old})
    cfg = validate_account(store.get_account("S"))
    loop = SlaveLoop(Runtime("S", store), slave, cfg, stale_after_ms=60_000, max_attempts=3)
    loop.executor.sleep = lambda s: None
    loop.start()
    guardian = Guardian("S", "slave", cfg.risk, slave, store, log=structlog.get_logger("bench"), event=lambda *a, **k: None,
                        executor=loop.executor, report_in_background=False)
    guardian.start(utc_ms())
    loop.guardian = guardian
    seq = [0]

    def change() -> Snapshot:
        seq[0] += 1
        held = positions_by_identifier(master.positions_get(), contract_size=ContractSizes(master))
        return Snapshot(master="M", epoch="bench", seq=seq[0], ts_ms=utc_ms(), positions=tuple(held.values()), orders=())

    def deal(side: str = "BUY", position: int = 0):
        tick = master.symbol_info_tick("EURUSD")
        req = {"action": 1, "symbol": "EURUSD", "volume": 0.01, "type": 0 if side == "BUY" else 1,
               "price": tick.ask if side == "BUY" else tick.bid, "type_filling": 1}
        if position:
            req["position"] = position
        return master.order_send(req)

    for _ in range(args.held):
        deal()
    loop.on_message(change())
    loop.reconcile(full=True)
    profile = cProfile.Profile()
    to_send: list[float] = []
    for i in range(args.opens):
        opened = deal()
        msg = change()
        sent.clear()
        if args.profile and i >= 10:
            profile.enable()
        t0 = time.perf_counter()
        loop.on_message(msg)
        loop.reconcile(full=False)
        if args.profile and i >= 10:
            profile.disable()
        if sent and i >= 10:
            to_send.append((sent[0] - t0) * 1000)
        deal("SELL", opened.order)
        loop.on_message(change())
        loop.reconcile(full=i % 20 == 19)  # the timer's full pass, every 20 opens
    print(f"slave's own work, master change -> order_send, {len(to_send)} opens, {args.held} other copies held, "
          f"{args.history} finished in the store{' (all kept in memory)' if args.keep_history else ''}; "
          f"{len(loop.links)} links in memory at the end (ms):")
    print("  " + "  ".join(f"p{p:g} {pct(to_send, p):.3f}" for p in (50, 90, 99)) + f"  max {max(to_send):.3f}")
    if args.profile:
        pstats.Stats(profile).sort_stats("tottime").print_stats(25)
    store.close()


if __name__ == "__main__":
    main()
