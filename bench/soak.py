"""Chaos soak: the demo trader trades the master while slave processes are killed -9 and
restarted; at the end every invariant is checked on the terminals themselves.

Fleet (real processes on loopback): simulator server ticking, bus proxy, one master
(login 1001), a hedging follower S1 (2001) and a netting follower S2 (2002), both with
`slippage_tolerance` wide enough that nothing is skipped for price; the simulator's demo
trader opens, modifies, partially closes and closes positions on the master. Every
``--kill-every`` seconds a random follower is killed with SIGKILL (TerminateProcess on
Windows) and started again at once (the account lease lets a same-host successor in
immediately). After ``--duration`` seconds the trader stops, the followers get
``--settle`` seconds, and the soak reports:

* **duplicates**: a hedging follower holding more than one position (or more volume than
  the sized master position) for one master position;
* **orphans**: a follower position tagged for a master position that is closed;
* **misses**: an open master position (opened after the follower followed) without a
  copy of the right volume and without a SKIPPED/FAILED link saying why;
* **netting target**: the netting follower's net per symbol against the signed sum of the
  master's positions (multiplier 1, same contract sizes).

Run: ``python bench/soak.py --duration 120 --kill-every 20`` (exit 1 when an invariant
broke). ``tests/integration/test_integration_soak.py`` runs a short version.
"""
from __future__ import annotations

import argparse
import json
import random
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from copier.tags import master_hash, parse_tag  # noqa: E402
from testing.harness import LocalFleet, wait_until  # noqa: E402

ENV = {"COPYHUB_HEARTBEAT_INTERVAL_MS": "250", "COPYHUB_STALE_AFTER_MS": "1500",
       "COPYHUB_SLAVE_RECONCILE_INTERVAL_MS": "200", "COPYHUB_LOG_LEVEL": "WARNING"}
SYMBOLS = "EURUSD,GBPUSD,USDJPY"
FOLLOWERS = {"S1": 2001, "S2": 2002}


def _net(positions, symbol_of=lambda s: s) -> dict[str, float]:
    out: dict[str, float] = {}
    for p in positions:
        key = symbol_of(p.symbol)
        out[key] = round(out.get(key, 0.0) + (p.volume if int(p.type) == 0 else -p.volume), 2)
    return {k: v for k, v in out.items() if abs(v) > 1e-9}


def check(fleet: LocalFleet) -> dict[str, list]:
    """The invariants on the final state; each list holds the offending cases."""
    m = fleet.terminal(1001)
    master = {int(p.identifier): p for p in m.positions_get() or ()}
    mhash = master_hash("M")
    found: dict[str, list] = {"duplicates": [], "orphans": [], "misses": [], "netting_target": []}
    s1 = fleet.terminal(2001)
    copies: dict[int, list] = {}
    for p in s1.positions_get() or ():
        tag = parse_tag(p.comment)
        if tag is None or tag[0] != mhash:
            continue
        copies.setdefault(tag[1], []).append(p)
    links = {int(t["master_ticket"]): t for t in fleet.trades("S1")}
    for ticket, ps in copies.items():
        if ticket not in master:
            found["orphans"].append({"slave": "S1", "master_ticket": ticket, "volumes": [p.volume for p in ps]})
        elif len(ps) > 1 or sum(p.volume for p in ps) > master[ticket].volume + 1e-9:
            found["duplicates"].append({"slave": "S1", "master_ticket": ticket, "volumes": [p.volume for p in ps]})
    for ticket, _mp in master.items():
        link = links.get(ticket)
        if ticket in copies or (link and link.get("status") in ("SKIPPED", "FAILED")):
            continue
        found["misses"].append({"slave": "S1", "master_ticket": ticket, "link": link and link.get("status")})
    s2 = fleet.terminal(2002)
    want = _net(master.values(), lambda s: s + ".c")
    have = _net(s2.positions_get() or ())
    skipped = {t["symbol"] for t in fleet.trades("S2") if t.get("status") in ("SKIPPED", "FAILED")}
    for sym in set(want) | set(have):
        if abs(want.get(sym, 0.0) - have.get(sym, 0.0)) > 1e-6 and sym not in skipped:
            found["netting_target"].append({"symbol": sym, "master_net": want.get(sym, 0.0), "follower_net": have.get(sym, 0.0)})
    return found


def soak(workdir: Path, *, duration_s: float, kill_every_s: float, settle_s: float, seed: int, rate: float) -> dict:
    rng = random.Random(seed)
    fleet = LocalFleet(workdir, tick_hz=5, env=ENV, seed=seed)
    kills = 0
    try:
        fleet.start_sim()
        fleet.start_proxy()
        fleet.sim_account("M", "MASTER", 1001)
        for name, login in FOLLOWERS.items():
            fleet.sim_account(name, "SLAVE", login, suffix=".c", slippage_tolerance=100_000)
        fleet.start_node("master", "M")
        fleet.wait_node_running("M")
        for name in FOLLOWERS:
            fleet.start_node("slave", name)
        for name in FOLLOWERS:
            fleet.wait_node_running(name)
        wait_until(lambda: all(fleet.store.get_flag(f"follow:{n}:M") for n in FOLLOWERS), timeout=15, message="follow records")
        import subprocess

        trader = subprocess.Popen([sys.executable, "-m", "sim", "trader", "--endpoint", fleet.sim_endpoint, "--login", "1001",
                                   "--rate", str(rate), "--symbols", SYMBOLS, "--seed", str(seed), "--max-positions", "8",
                                   "--duration", str(duration_s)], cwd=str(ROOT), env=fleet.env,
                                  stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        end = time.monotonic() + duration_s
        next_kill = time.monotonic() + kill_every_s
        while time.monotonic() < end:
            time.sleep(0.2)
            if time.monotonic() >= next_kill:
                victim = rng.choice(sorted(FOLLOWERS))
                fleet.procs[victim].kill()
                fleet.start_node("slave", victim)
                kills += 1
                next_kill = time.monotonic() + kill_every_s
        trader.wait(timeout=30)
        for name in FOLLOWERS:
            fleet.wait_node_running(name, timeout=30)
        deadline = time.monotonic() + settle_s
        found = check(fleet)
        while any(found.values()) and time.monotonic() < deadline:  # copies catch up after the last kill
            time.sleep(1.0)
            found = check(fleet)
        from datetime import datetime

        deals = fleet.terminal(1001).history_deals_get(datetime(2000, 1, 1), datetime(2100, 1, 1)) or ()
        return {"duration_s": duration_s, "kills": kills, "master_deals": len(deals),
                **{k: v for k, v in found.items()}, "ok": not any(found.values())}
    finally:
        fleet.close()


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--duration", type=float, default=120.0, help="seconds of trading")
    ap.add_argument("--kill-every", type=float, default=20.0, help="seconds between kill -9s")
    ap.add_argument("--settle", type=float, default=30.0, help="seconds allowed to converge at the end")
    ap.add_argument("--rate", type=float, default=2.0, help="demo trader actions per second")
    ap.add_argument("--seed", type=int, default=11)
    ap.add_argument("--json", action="store_true")
    args = ap.parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="copyhub-soak-") as tmp:
        result = soak(Path(tmp), duration_s=args.duration, kill_every_s=args.kill_every, settle_s=args.settle,
                      seed=args.seed, rate=args.rate)
    if args.json:
        print(json.dumps(result, indent=2))
    else:
        print(f"soak {result['duration_s']:g} s, {result['kills']} kill -9, {result['master_deals']} master deals: "
              + ("OK (0 duplicates, 0 orphans, 0 misses, netting on target)" if result["ok"] else "BROKEN"))
        for key in ("duplicates", "orphans", "misses", "netting_target"):
            for case in result[key]:
                print(f"  {key}: {case}")
    return 0 if result["ok"] else 1


if __name__ == "__main__":
    raise SystemExit(main())
