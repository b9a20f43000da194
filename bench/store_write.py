"""The store's write on the copy path: ``record_intent`` latency, percentiles in µs.

Two modes measured interleaved in one run (the machine is shared and noisy):

* ``thread``: the store as shipped, WAL checkpoints in its background thread
  (``db/sqlite_checkpoint.py``);
* ``auto``: SQLite's automatic checkpoint inside the commit that crosses 1,000 pages
  (what the store did before).

Each round writes ``--writes`` intents plus their ``update_trade`` (as a copy does) to a
fresh file. Run: ``python bench/store_write.py [--rounds 3 --writes 4000]``.

``--writers N`` measures instead what ten slaves copying one master change meet: N
processes released together by a barrier, each writing its intent, then (0.5 ms later, its
``order_send``) the trade's update and its event, every 20 ms, on one file. Two modes,
interleaved: ``retry`` (shipped: SQLite's busy handler off, the store's own short waits)
and ``handler`` (before: SQLite's busy handler, 1, 2, 5, 10 ms ... between tries).
"""
from __future__ import annotations

import argparse
import multiprocessing as mp
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from db import open_store  # noqa: E402


def one_round(mode: str, writes: int) -> list[float]:
    with tempfile.TemporaryDirectory() as d:
        store = open_store(f"sqlite:///{d}/s.db")
        if mode == "auto":
            store._checkpointer.stop()
            store._conn.execute("PRAGMA wal_autocheckpoint=1000")
        out = []
        try:
            for i in range(writes):
                t0 = time.perf_counter()
                store.record_intent({"slave_name": "S", "master_name": "M", "master_ticket": i, "status": "PENDING",
                                     "kind": "position", "symbol": "EURUSD.c", "side": "BUY", "slave_volume": 0.1,
                                     "comment": "CH|M|12345678"})
                out.append((time.perf_counter() - t0) * 1e6)
                store.update_trade("S", "M", i, {"status": "OPEN", "slave_ticket": 7_000_000 + i, "slave_price": 1.08})
        finally:
            store.close()
        return out


def _writer(i: int, path: str, mode: str, barrier, rounds: int, out) -> None:
    store = open_store(f"sqlite:///{path}")
    if mode == "handler":  # SQLite's own busy handler waits inside the call (the store before)
        store._conn.execute("PRAGMA busy_timeout=2000")
    lat = []
    try:
        for r in range(rounds):
            barrier.wait()
            t0 = time.perf_counter()
            store.record_intent({"slave_name": f"S{i:02d}", "master_name": "M", "master_ticket": r, "status": "PENDING",
                                 "kind": "position", "symbol": "EURUSD.c", "side": "BUY", "slave_volume": 0.1,
                                 "comment": "CH|M|12345678"})
            lat.append((time.perf_counter() - t0) * 1e6)
            time.sleep(0.0005)  # order_send
            store.update_trade(f"S{i:02d}", "M", r, {"status": "OPEN", "slave_ticket": 7_000_000 + r, "slave_price": 1.08})
            store.add_event("copy_opened", node=f"S{i:02d}", account=f"S{i:02d}", master="M", master_ticket=r)
            time.sleep(0.02)
    finally:
        store.close()
    out.put(lat)


def contended_round(mode: str, writers: int, rounds: int) -> list[float]:
    """record_intent latencies (µs) of ``writers`` processes writing together."""
    ctx = mp.get_context("spawn")
    with tempfile.TemporaryDirectory() as d:
        path = f"{d}/s.db"
        open_store(f"sqlite:///{path}").close()
        barrier, out = ctx.Barrier(writers), ctx.Queue()
        procs = [ctx.Process(target=_writer, args=(i, path, mode, barrier, rounds, out)) for i in range(writers)]
        for proc in procs:
            proc.start()
        values = [v for _ in procs for v in out.get(timeout=300)]
        for proc in procs:
            proc.join()
        return values


def pct(values: list[float], p: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(p / 100 * len(ordered)))]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--writes", type=int, default=4000)
    ap.add_argument("--writers", type=int, default=0, help="N processes writing together (see above)")
    args = ap.parse_args()
    if args.writers:
        contended(args.writers, args.rounds, args.writes)
        return
    results: dict[str, list[float]] = {"thread": [], "auto": []}
    for _ in range(args.rounds):
        for mode in results:
            results[mode] += one_round(mode, args.writes)
    print(f"{'mode':<8}{'n':>7}{'p50':>8}{'p90':>8}{'p99':>8}{'p99.9':>8}{'max':>9}   record_intent, µs")
    for mode, values in results.items():
        print(f"{mode:<8}{len(values):>7}" + "".join(f"{pct(values, p):>8.0f}" for p in (50, 90, 99, 99.9))
              + f"{max(values):>9.0f}")
    for p in (50, 99, 99.9):
        print(f"p{p:g} thread/auto: {pct(results['thread'], p) / pct(results['auto'], p):.2f}", end="   ")
    print(f"max thread/auto: {max(results['thread']) / max(results['auto']):.2f}")


def contended(writers: int, rounds: int, writes: int) -> None:
    per_round = max(1, writes // 40)  # copies per process per round (--writes 4000: 100)
    results: dict[str, list[float]] = {"retry": [], "handler": []}
    for _ in range(rounds):
        for mode in results:
            results[mode] += contended_round(mode, writers, per_round)
    print(f"{writers} writers together; {'mode':<8}{'n':>7}{'p50':>8}{'p90':>8}{'p99':>8}{'max':>9}   record_intent, µs")
    for mode, values in results.items():
        print(f"{'':<{len(str(writers)) + 19}}{mode:<8}{len(values):>7}"
              + "".join(f"{pct(values, p):>8.0f}" for p in (50, 90, 99)) + f"{max(values):>9.0f}")
    print("   ".join(f"p{p:g} retry/handler: {pct(results['retry'], p) / pct(results['handler'], p):.2f}"
                      for p in (50, 90, 99)))


if __name__ == "__main__":
    main()
