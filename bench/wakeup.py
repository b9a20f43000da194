"""The machine's floor for one process hand-off: a ZeroMQ REQ/REP round trip on loopback.

Two processes (this one and a REP echo child), 200-byte messages. ``tight``: requests back
to back (both processes stay awake); ``every 20 ms``: one request per 20 ms, as a copy
arrives (both processes are asleep when it comes, so the round trip includes two wake-ups).
A copy's hub window holds about eight such hand-offs (master → proxy → slave, the slave's
two terminal calls, the master's login check), so on a machine whose idle round trip is
0.3 ms p50 / 1.4 ms p99 that alone is ~2 ms before any of copyhub's own work.

The last column is this process's CPU time per round trip (``time.process_time``: user +
system, libzmq's I/O thread included): what a node pays for each terminal call over the
simulator's RPC before any decoding, and how much more it pays when it sleeps between calls.

Run: ``python bench/wakeup.py [--n 300]``.
"""
from __future__ import annotations

import argparse
import subprocess
import sys
import time

import zmq

ECHO = """
import sys, zmq
ctx = zmq.Context(); rep = ctx.socket(zmq.REP); port = rep.bind_to_random_port("tcp://127.0.0.1")
print(port, flush=True)
while True:
    m = rep.recv()
    rep.send(m)
    if m == b"quit":
        break
"""


def pct(values: list[float], p: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(p / 100 * len(ordered)))]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--n", type=int, default=300)
    args = ap.parse_args()
    child = subprocess.Popen([sys.executable, "-c", ECHO], stdout=subprocess.PIPE, text=True)
    try:
        port = int(child.stdout.readline())
        req = zmq.Context.instance().socket(zmq.REQ)
        req.connect(f"tcp://127.0.0.1:{port}")
        payload = b"x" * 200
        print(f"{'mode':<12}{'n':>6}{'p50 µs':>9}{'p90 µs':>9}{'p99 µs':>9}{'max µs':>9}{'CPU µs/rt':>11}")
        for mode, gap in (("tight", 0.0), ("every 20 ms", 0.02)):
            times = []
            cpu = 0.0
            for _ in range(args.n):
                if gap:
                    time.sleep(gap)
                c0, t0 = time.process_time(), time.perf_counter()
                req.send(payload)
                req.recv()
                times.append((time.perf_counter() - t0) * 1e6)
                cpu += time.process_time() - c0
            print(f"{mode:<12}{len(times):>6}" + "".join(f"{pct(times, p):>9.0f}" for p in (50, 90, 99))
                  + f"{max(times):>9.0f}{cpu / len(times) * 1e6:>11.0f}")
        req.send(b"quit")
        req.recv()
        req.close(linger=0)
    finally:
        child.wait(timeout=5)


if __name__ == "__main__":
    main()
