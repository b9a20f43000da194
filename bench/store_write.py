"""The store's write on the copy path: ``record_intent`` latency, percentiles in µs.

Two modes measured interleaved in one run (the machine is shared and noisy):

* ``thread``: the store as shipped, WAL checkpoints in its background thread
  (``db/sqlite_checkpoint.py``);
* ``auto``: SQLite's automatic checkpoint inside the commit that crosses 1,000 pages
  (what the store did before).

Each round writes ``--writes`` intents plus their ``update_trade`` (as a copy does) to a
fresh file. Run: ``python bench/store_write.py [--rounds 3 --writes 4000]``.
"""
from __future__ import annotations

import argparse
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


def pct(values: list[float], p: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(p / 100 * len(ordered)))]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--writes", type=int, default=4000)
    args = ap.parse_args()
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


if __name__ == "__main__":
    main()
