"""copyhub against bbstrader's TradeCopier on one simulator world: the peer ratio.

    python bench/peer.py [--slaves 1] [--trades 30] [--burst 100] [--peer-sleep 0.02] [--json]

One simulator server (ticking at 10 Hz; an order executes at the millisecond it arrives), one
master account traded by the bench, and two followers of it side by side on the same broker:
copyhub (bus proxy, master node, ``--slaves`` slave nodes) and bbstrader's ``TradeCopier``
(unchanged, one process, ``--slaves`` destinations, polling every ``--peer-sleep`` s) under
``python -m sim run --endpoint`` (the simulator's ``MetaTrader5`` stand-in, sim/standin),
bound to the same served world. Every master
trade is copied by both at once, so both see the same market and the same load.

Measured on the simulator's own clock (deal times of one world, no cross-process clocks):

* copy latency: slave position open time − master position open time, per copy (p50/p99);
* burst: ``--burst`` positions opened on the master in a row → the open time of the last
  copy when a follower first holds ``--burst`` copies;
* extra copies (more positions than the master holds), copies left open after the master
  closed everything, and stray orders: positions on the master account that the bench did
  not send (an order of the peer's that went to the wrong terminal);
* idle CPU: % of a core of each copier's processes over 5 s with nothing to copy.

Prints both and the ratios copyhub/peer (< 1: copyhub is faster / lighter). Needs the optional
bench requirements: ``pip install --no-deps -r requirements-bench.txt`` (bbstrader without its
toolkit; the few modules its copier imports are listed there). Without them it says so and
exits 2. The peer runs in a child process (``--peer-worker``) whose toolkit-only imports
(quantstats, exchange_calendars) are stubbed: its copier module does not use them.
"""
from __future__ import annotations

import argparse
import importlib.util
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
import types
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

BROKER = "SimFX-Live"
SYMBOL = "EURUSD"
MASTER_LOGIN = 1001
COPYHUB_FIRST = 3001
PEER_FIRST = 4001


def _terminal_path(login: int) -> str:
    return f"C:/peer/{login}/terminal64.exe"


def write_world(dst: Path, slaves: int) -> Path:
    """The demo world plus ``slaves`` followers for each copier on the master's broker, and a
    terminal install per account the peer uses (it switches one connection between them)."""
    demo = (ROOT / "sim" / "worlds" / "demo.toml").read_text()
    extra = []
    for first, label in ((COPYHUB_FIRST, "copyhub"), (PEER_FIRST, "peer")):
        for i in range(slaves):
            extra.append(f'\n[[accounts]]\nlogin = {first + i}\nbroker = "{BROKER}"\nname = "{label} {i + 1}"\n'
                         f'margin_mode = "hedging"\nbalance = 100000\nleverage = 100\n')
    for login in [MASTER_LOGIN, *(PEER_FIRST + i for i in range(slaves))]:
        extra.append(f'\n[[terminals]]\npath = "{_terminal_path(login)}"\nlogin = {login}\n')
    dst.write_text(demo + "".join(extra))
    return dst


def pct(values: list[float], p: float) -> float:
    if not values:
        return float("nan")
    xs = sorted(values)
    return xs[min(len(xs) - 1, max(0, round(p / 100 * (len(xs) - 1))))]


def summary(values: list[float]) -> dict:
    return {"n": len(values), "p50": pct(values, 50), "p99": pct(values, 99),
            "mean": statistics.fmean(values) if values else float("nan")}


# ----------------------------------------------------------------------------- the peer
def _import_peer_copier():
    """bbstrader's TradeCopier without running ``bbstrader/__init__`` (the whole toolkit):
    package shells for ``bbstrader`` and ``bbstrader.metatrader``, an empty ``quantstats``
    (reports) and ``exchange_calendars`` (its rates module's calendars): the copier calls
    neither."""
    spec = importlib.util.find_spec("bbstrader")
    if spec is None or not spec.submodule_search_locations:
        raise ImportError("bbstrader is not installed (pip install --no-deps -r requirements-bench.txt)")
    base = Path(list(spec.submodule_search_locations)[0])
    for name, path in (("bbstrader", base), ("bbstrader.metatrader", base / "metatrader")):
        mod = types.ModuleType(name)
        mod.__path__ = [str(path)]
        sys.modules.setdefault(name, mod)
    sys.modules.setdefault("quantstats", types.ModuleType("quantstats"))
    if importlib.util.find_spec("exchange_calendars") is None:  # trading calendars for its rates module
        cal = types.ModuleType("exchange_calendars")
        cal.get_calendar = cal.get_calendar_names = lambda *a, **k: []  # type: ignore[attr-defined]
        sys.modules["exchange_calendars"] = cal
    from bbstrader.metatrader.copier import TradeCopier

    return TradeCopier


def peer_worker(dests: list[int], sleeptime: float) -> None:
    """Run bbstrader's copier: master → ``dests``, until killed. Started through
    ``python -m sim run --endpoint EP``, so ``import MetaTrader5`` is the simulator's stand-in."""
    TradeCopier = _import_peer_copier()
    source = {"login": MASTER_LOGIN, "server": BROKER, "path": _terminal_path(MASTER_LOGIN), "copy": True, "id": 1,
              "unique": False}
    destinations = [{"login": d, "server": BROKER, "path": _terminal_path(d), "copy": True, "symbols": "all",
                     "mode": "replicate", "slippage": 5.0, "copy_what": "positions"} for d in dests]
    TradeCopier(source, destinations, sleeptime=sleeptime).run()


def peer_available() -> str | None:
    try:
        spec = importlib.util.find_spec("bbstrader")
        if spec is None:
            return "bbstrader is not installed"
        for mod in ("loguru", "pandas", "currency_converter", "tabulate", "scipy"):
            if importlib.util.find_spec(mod) is None:
                return f"{mod} (needed by bbstrader's copier) is not installed"
    except Exception as exc:  # pragma: no cover - environment problems
        return str(exc)
    return None


# ----------------------------------------------------------------------------- the run
def _send(m, side: str, position: int = 0):
    from testing.harness import market_order

    return market_order(m, SYMBOL, side, 0.01, position)


def _wait(cond, timeout: float, what: str) -> None:
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        if cond():
            return
        time.sleep(0.005)
    raise TimeoutError(what)


def run(slaves: int, trades: int, burst: int, peer_sleep: float) -> dict:
    import psutil

    from testing.harness import LocalFleet

    env = {"COPYHUB_LOG_LEVEL": "WARNING", "COPYHUB_MASTER_POLL_INTERVAL_MS": "20"}
    with tempfile.TemporaryDirectory() as tmp:
        tmp_path = Path(tmp)
        world = write_world(tmp_path / "world.toml", slaves)
        fleet = LocalFleet(tmp_path, tick_hz=10, env=env)
        peer = None
        try:
            fleet.start_sim(str(world))
            fleet.start_proxy()
            fleet.sim_account("M", "MASTER", MASTER_LOGIN)
            names = [f"S{i + 1:02d}" for i in range(slaves)]
            for i, name in enumerate(names):
                fleet.sim_account(name, "SLAVE", COPYHUB_FIRST + i, slippage_tolerance=5000)
            fleet.start_node("master", "M")
            fleet.wait_node_running("M")
            for name in names:
                fleet.start_node("slave", name)
            for name in names:
                fleet.wait_node_running(name, timeout=30)
            peer_log = open(tmp_path / "peer.out", "wb")
            # the peer runs unchanged under `python -m sim run` (issue 13's MetaTrader5 stand-in,
            # bound to the same served world)
            peer = subprocess.Popen([sys.executable, "-m", "sim", "run", "--endpoint", fleet.sim_endpoint,
                                     "--login", str(MASTER_LOGIN), str(Path(__file__).resolve()), "--peer-worker",
                                     "--dests", ",".join(str(PEER_FIRST + i) for i in range(slaves)), "--peer-sleep", str(peer_sleep)],
                                    cwd=ROOT, env={**os.environ, "HOME": str(tmp_path), "USERPROFILE": str(tmp_path)},
                                    stdout=peer_log, stderr=subprocess.STDOUT)
            m = fleet.terminal(MASTER_LOGIN)
            followers = {"copyhub": [fleet.terminal(COPYHUB_FIRST + i) for i in range(slaves)],
                         "peer": [fleet.terminal(PEER_FIRST + i) for i in range(slaves)]}
            time.sleep(3.0)  # both copiers up and synced
            if peer.poll() is not None:
                raise RuntimeError(f"the peer copier exited: {(tmp_path / 'peer.out').read_text()[-2000:]}")
            lat: dict[str, list[float]] = {"copyhub": [], "peer": []}
            for i in range(trades):
                r = _send(m, "BUY" if i % 2 == 0 else "SELL")
                mpos = m.positions_get(ticket=r.order)[0]
                try:
                    _wait(lambda: all(len(t.positions_get(symbol=SYMBOL) or ()) == 1 for ts in followers.values() for t in ts),
                          30, f"copies of trade {i}")
                except TimeoutError:
                    counts = {who: [len(t.positions_get(symbol=SYMBOL) or ()) for t in ts] for who, ts in followers.items()}
                    raise TimeoutError(f"copies of trade {i}: positions per follower {counts} (want 1 each)") from None
                for who, ts in followers.items():
                    for t in ts:
                        lat[who].append(t.positions_get(symbol=SYMBOL)[0].time_msc - mpos.time_msc)
                _send(m, "SELL" if mpos.type == 0 else "BUY", position=r.order)
                _wait(lambda: all(not (t.positions_get(symbol=SYMBOL) or ()) for ts in followers.values() for t in ts),
                      30, f"closes of trade {i}")
                time.sleep(0.1)
            # burst
            first = None
            for _ in range(burst):
                r = _send(m, "BUY")
                first = first or m.positions_get(ticket=r.order)[0].time_msc
            # the time each follower first holds ``burst`` copies (sim clock of its last fill then)
            reached: dict[str, int] = {}

            def burst_done() -> bool:
                for who, ts in followers.items():
                    if who in reached:
                        continue
                    held = [t.positions_get(symbol=SYMBOL) or () for t in ts]
                    if all(len(h) >= burst for h in held):
                        reached[who] = max(p.time_msc for h in held for p in h)
                return len(reached) == len(followers)

            try:
                _wait(burst_done, 180, "burst copies")
            except TimeoutError:
                counts = {who: [len(t.positions_get(symbol=SYMBOL) or ()) for t in ts] for who, ts in followers.items()}
                raise TimeoutError(f"burst copies: {counts} of {burst}; peer log: "
                                   f"{(tmp_path / 'peer.out').read_text()[-1500:]}") from None
            burst_ms = {who: t - first for who, t in reached.items()}
            time.sleep(1.0)
            # Orders that landed on the MASTER account without the bench sending them: the peer
            # switches its one terminal connection between accounts from several threads, so an
            # order meant for a follower can go to the source (copyhub then copies it, rightly).
            stray = [p for p in m.positions_get(symbol=SYMBOL) or () if p.magic or p.comment]
            target = len(m.positions_get(symbol=SYMBOL) or ())
            extra = {who: sum(max(0, len(t.positions_get(symbol=SYMBOL) or ()) - target) for t in ts)
                     for who, ts in followers.items()}
            for p in m.positions_get(symbol=SYMBOL) or ():
                _send(m, "SELL", position=p.ticket)
            try:  # every copy closed with its master position; what stays open is an orphan
                _wait(lambda: all(not (t.positions_get(symbol=SYMBOL) or ()) for ts in followers.values() for t in ts),
                      60, "burst closes")
            except TimeoutError:
                pass
            still = len(m.positions_get(symbol=SYMBOL) or ())  # new stray orders of the peer may have landed there
            orphans = {who: sum(max(0, len(t.positions_get(symbol=SYMBOL) or ()) - still) for t in ts)
                       for who, ts in followers.items()}
            # idle CPU
            time.sleep(2.0)
            procs = {"copyhub": [psutil.Process(fleet.procs[n].pid) for n in ["M", *names]], "peer": [psutil.Process(peer.pid)]}
            for ps in procs.values():
                for p in ps:
                    p.cpu_percent(None)
            time.sleep(5.0)
            idle = {who: sum(p.cpu_percent(None) for p in ps) for who, ps in procs.items()}
        finally:
            if peer is not None:
                peer.terminate()
                try:
                    peer.wait(10)
                except subprocess.TimeoutExpired:
                    peer.kill()
            fleet.close()
    out = {"slaves": slaves, "peer_sleep_s": peer_sleep, "latency_ms": {w: summary(v) for w, v in lat.items()},
           "burst_ms": burst_ms, "burst": burst, "burst_extra_copies": extra, "orphans_after_burst": orphans, "stray_orders_on_master": len(stray), "idle_cpu_pct": idle,
           "load_avg": [round(x, 2) for x in os.getloadavg()] if hasattr(os, "getloadavg") else None}
    c, p = out["latency_ms"]["copyhub"], out["latency_ms"]["peer"]
    out["ratio"] = {"p50": c["p50"] / p["p50"] if p["p50"] else None, "p99": c["p99"] / p["p99"] if p["p99"] else None,
                    "burst": burst_ms["copyhub"] / burst_ms["peer"] if burst_ms["peer"] else None,
                    "idle_cpu": idle["copyhub"] / idle["peer"] if idle["peer"] else None}
    return out


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--slaves", type=int, default=1)
    ap.add_argument("--trades", type=int, default=30)
    ap.add_argument("--burst", type=int, default=100)
    ap.add_argument("--peer-sleep", type=float, default=0.02, help="the peer's poll interval (s)")
    ap.add_argument("--json", action="store_true")
    ap.add_argument("--peer-worker", action="store_true", help=argparse.SUPPRESS)
    ap.add_argument("--dests", help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.peer_worker:
        peer_worker([int(x) for x in args.dests.split(",")], args.peer_sleep)
        return 0
    missing = peer_available()
    if missing:
        print(f"bench/peer.py: {missing}; install the optional bench requirements: "
              "pip install --no-deps -r requirements-bench.txt", file=sys.stderr)
        return 2
    res = run(args.slaves, args.trades, args.burst, args.peer_sleep)
    if args.json:
        print(json.dumps(res, indent=2))
        return 0
    print(f"copyhub vs bbstrader TradeCopier (polling every {args.peer_sleep * 1000:g} ms), {args.slaves} slave(s), "
          f"load average {res['load_avg']}")
    print(f"{'':22}{'copyhub':>10}{'peer':>10}{'ratio':>8}")
    for key in ("p50", "p99"):
        c, p = res["latency_ms"]["copyhub"][key], res["latency_ms"]["peer"][key]
        print(f"{'copy latency ' + key + ' ms':22}{c:>10.1f}{p:>10.1f}{res['ratio'][key]:>8.2f}")
    print(f"{'burst ' + str(args.burst) + ' ms':22}{res['burst_ms']['copyhub']:>10.0f}{res['burst_ms']['peer']:>10.0f}"
          f"{res['ratio']['burst']:>8.2f}")
    print(f"{'burst extra copies':22}{res['burst_extra_copies']['copyhub']:>10}{res['burst_extra_copies']['peer']:>10}")
    print(f"stray orders on the master account (sent by the peer to the wrong terminal): {res['stray_orders_on_master']}")
    print(f"{'copies w/o master pos':22}{res['orphans_after_burst']['copyhub']:>10}{res['orphans_after_burst']['peer']:>10}")
    print(f"{'idle CPU % of a core':22}{res['idle_cpu_pct']['copyhub']:>10.1f}{res['idle_cpu_pct']['peer']:>10.1f}"
          f"{(res['ratio']['idle_cpu'] or float('nan')):>8.2f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
