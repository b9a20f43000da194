"""Several hosts, for real: network namespaces joined by veth links (testing/netns.py).

Three "hosts" on a private subnet (10.77.0.0/24): BUS runs the bus proxy and the master's
launcher; HOST-A and HOST-B run followers, each launcher with its own ``--host``, all on
one SQLite store file and one simulator (Unix socket, untouched by the link cuts: each
host's terminals are local to it). The bus runs CURVE with a key pair per host made by
``cli.py keys create --allow``. Proven here:

* copies flow across hosts with CURVE on, and ``cli.py status`` says which host runs
  which node (the copy latency across the veth link is printed; docs/benchmarks.md);
* a publisher with an unknown key, and one without CURVE, cannot inject a position
  (no trade results; the proxy logs the refusals);
* cutting a follower host's link (``ip link set ... down``) for longer than the stale
  limit while the master closes positions closes nothing on that host until the link
  is back, and then exactly the right copies;
* launchers on three hosts claiming one host-less account never both trade it, also
  when its holder dies and another host takes over.

Skipped, with the reason, where namespaces cannot be made (not Linux, not root, no
iproute2, a container without the capability).
"""
from __future__ import annotations

import json
import os
import signal
import statistics
import subprocess
import sys
import time
from datetime import datetime
from pathlib import Path

import pytest

from testing import netns
from testing.harness import wait_until, write_world_with_slaves
from tests.integration.mt5ops import close, market, volumes

WHY_NOT = netns.problem()
pytestmark = [pytest.mark.integration, pytest.mark.timeout(300),
              pytest.mark.skipif(WHY_NOT is not None, reason=f"network namespaces unavailable: {WHY_NOT}")]

ROOT = Path(__file__).resolve().parents[2]
STALE_AFTER_MS = 1500
FAST = {
    "COPYHUB_HEARTBEAT_INTERVAL_MS": "250",
    "COPYHUB_STALE_AFTER_MS": str(STALE_AFTER_MS),
    "COPYHUB_SLAVE_RECONCILE_INTERVAL_MS": "200",
    "COPYHUB_CONFIG_RELOAD_INTERVAL_MS": "500",
    "COPYHUB_LEASE_TTL_MS": "3000",
    "COPYHUB_LEASE_MARGIN_MS": "1000",
}
HOSTS = ["BUS", "HOST-A", "HOST-B"]
SLAVES = {"SA": (3001, "HOST-A"), "SB": (3002, "HOST-B"), "SX": (3003, None)}  # SX: no host, any launcher may claim it
FORGED_TICKET = 990_001
FAR_PAST, FAR_FUTURE = datetime(2000, 1, 1), datetime(2100, 1, 1)


@pytest.fixture(scope="module")
def hosts(tmp_path_factory):
    world = write_world_with_slaves(tmp_path_factory.mktemp("world") / "world.toml", 3)
    fleet = netns.MultiHostFleet(HOSTS, env=FAST, world=str(world))
    try:
        fleet.account("M", "MASTER", 1001, "BUS")
        for name, (login, host) in SLAVES.items():
            fleet.account(name, "SLAVE", login, host, suffix=".c", slippage_tolerance=5000)
        for host in HOSTS:
            fleet.start_launcher(host)
        fleet.wait_running(["M", *SLAVES], timeout=90)
        wait_until(lambda: all(fleet.store.get_flag(f"follow:{n}:M") for n in SLAVES), timeout=60,
                   message="every follower has seen the master's state across the bus")
        yield fleet
    finally:
        fleet.close()


def open_trades(fleet, slave: str) -> list[dict]:
    return fleet.store.list_trades(slave_name=slave, status="OPEN")


def deals(mt5) -> dict[str, int]:
    """Opening and closing BUY/SELL deals on one account."""
    rows = [d for d in (mt5.history_deals_get(FAR_PAST, FAR_FUTURE) or ())
            if int(d.type) in (mt5.DEAL_TYPE_BUY, mt5.DEAL_TYPE_SELL)]
    return {"in": sum(1 for d in rows if int(d.entry) == mt5.DEAL_ENTRY_IN),
            "out": sum(1 for d in rows if int(d.entry) in (mt5.DEAL_ENTRY_OUT, mt5.DEAL_ENTRY_OUT_BY))}


def status_rows(fleet) -> dict[str, dict]:
    out = subprocess.run([sys.executable, str(ROOT / "cli.py"), "--db", fleet.local.db_url, "--json", "status"],
                         capture_output=True, text=True, cwd=ROOT, env=fleet.local.env, timeout=60)
    assert out.returncode == 0, out.stderr
    return {r["name"]: r for r in json.loads(out.stdout)["nodes"]}


def all_copied(fleet, count: int, slaves=tuple(SLAVES)) -> bool:
    return all(len(open_trades(fleet, s)) == count for s in slaves)


def pct(values: list[float], p: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(p / 100 * (len(ordered) - 1)))]


def test_copies_flow_across_hosts_with_curve_and_status_names_the_hosts(hosts):
    assert "CURVE on" in hosts.proxy_log() and "xsub=tcp://10.77.0.1:" in hosts.proxy_log()
    rows = status_rows(hosts)
    assert rows["M"]["host"] == "BUS" and rows["bus-proxy"]["host"] == "BUS"
    assert rows["SA"]["host"] == "HOST-A" and rows["SB"]["host"] == "HOST-B"
    assert rows["SX"]["host"] in HOSTS
    m = hosts.terminal(1001)
    latency: list[int] = []
    for i in range(8):
        sent_ms = time.time_ns() // 1_000_000
        r = market(m, "EURUSD", "BUY" if i % 2 == 0 else "SELL", 0.1)
        wait_until(lambda: all_copied(hosts, 1), timeout=30, message=f"copy {i} on every host")
        for name in ("SA", "SB"):  # the followers across a veth link from the bus host
            trade = hosts.store.get_trade(name, "M", r.order)
            latency.append(int(trade["filled_ms"]) - sent_ms)
        close(m, r.order)
        wait_until(lambda: all_copied(hosts, 0), timeout=30, message=f"close {i} on every host")
    print(f"\ncopy latency across the veth link (master order_send -> follower fill, ms): n={len(latency)} "
          f"p50={pct(latency, 50)} p90={pct(latency, 90)} max={max(latency)} mean={statistics.fmean(latency):.1f}")
    assert len(latency) == 16


ROGUE = r"""
import sys, time
from copier.models import Position
from messaging.publisher import Publisher
from messaging.schema import Delta, Snapshot
from messaging.security import ClientCurve, new_key_pair

mode, endpoint, server_key, seconds = sys.argv[1], sys.argv[2], sys.argv[3], float(sys.argv[4])
curve = ClientCurve(new_key_pair(), server_key) if mode == "unknown-key" else None
print("KEY", curve.keys.public if curve else "none", flush=True)
pub = Publisher(endpoint, curve=curve)
forged = Position(ticket=990001, identifier=990001, symbol="EURUSD", side="BUY", volume=1000000.0,
                  price_open=1.085, time_msc=int(time.time() * 1000), contract_size=100000.0)
deadline, seq = time.monotonic() + seconds, 1
while time.monotonic() < deadline:
    now = int(time.time() * 1000)
    pub.publish(Snapshot(master="M", epoch="forged", seq=seq, ts_ms=now, positions=(forged,)))
    pub.publish(Delta(master="M", epoch="forged", seq=seq + 1, ts_ms=now, upsert_positions=(forged,)))
    seq += 2
    time.sleep(0.05)
pub.close(0)
print("SENT", seq - 1, flush=True)
"""


def test_publishers_with_an_unknown_key_or_without_curve_cannot_inject(hosts):
    endpoint = f"tcp://{hosts.bus_ip}:5555"
    server_key = hosts.keys["BUS"]
    plain_marks = ("mechanism mismatch", "hung up in handshake")  # a plain client shows as one or the other

    def plain_refusals() -> int:
        return sum(hosts.proxy_log().count(mark) for mark in plain_marks)

    plain_before = plain_refusals()
    rogues = {mode: hosts.run_in("HOST-B", [sys.executable, "-c", ROGUE, mode, endpoint, server_key, "6"], f"rogue-{mode}")
              for mode in ("unknown-key", "no-curve")}
    for proc in rogues.values():
        assert proc.popen.wait(timeout=60) == 0, proc.output()
    rogue_key = rogues["unknown-key"].output().split("KEY ", 1)[1].split()[0]
    assert "SENT" in rogues["no-curve"].output()
    wait_until(lambda: rogue_key in hosts.proxy_log(), timeout=20, message="the unknown key's refusal in the proxy log")
    wait_until(lambda: plain_refusals() > plain_before, timeout=20, message="the plain client's refusal in the proxy log")
    assert "unknown key, publisher" in hosts.proxy_log()
    events = hosts.store.list_events(kind="bus_connection_refused", limit=None)
    assert "unknown key" in {e["data"]["reason"] for e in events}
    for name, (login, _host) in SLAVES.items():
        assert hosts.store.get_trade(name, "M", FORGED_TICKET) is None
        assert volumes(hosts.terminal(login)) == []
    # and the real master still copies at once
    m = hosts.terminal(1001)
    r = market(m, "GBPUSD", "SELL", 0.2)
    wait_until(lambda: all_copied(hosts, 1), timeout=30, message="the real master's copy after the attack")
    close(m, r.order)
    wait_until(lambda: all_copied(hosts, 0), timeout=30, message="its close")


def test_cut_follower_link_closes_nothing_there_until_it_is_back_then_exactly_the_right_copies(hosts):
    assert hosts.lab is not None
    m, sa = hosts.terminal(1001), hosts.terminal(3001)
    before = deals(sa)
    tickets = [market(m, "EURUSD", "BUY", v).order for v in (0.1, 0.2, 0.3)]
    wait_until(lambda: all_copied(hosts, 3), timeout=30, message="three copies on every host")
    hosts.lab.set_link("HOST-A", up=False)
    cut_at = time.monotonic()
    try:
        close(m, tickets[0])
        close(m, tickets[1])
        wait_until(lambda: len(open_trades(hosts, "SB")) == 1, timeout=30,
                   message="HOST-B (still linked) closes its two copies")
        # HOST-A notices: its follower's bus goes silent (nodes/notes.py), past the stale limit
        wait_until(lambda: "heard nothing on the bus" in str(((hosts.store.get_node("SA") or {}).get("info") or {})
                                                              .get("note")), timeout=30, message="SA reports the bus silent")
        time.sleep(max(0.0, 2 * STALE_AFTER_MS / 1000 - (time.monotonic() - cut_at)))
        assert volumes(sa) == [0.1, 0.2, 0.3]  # nothing closed while cut off
        assert len(open_trades(hosts, "SA")) == 3
        assert deals(sa) == {"in": before["in"] + 3, "out": before["out"]}
    finally:
        hosts.lab.set_link("HOST-A", up=True)
    try:
        # the slave records a close in the ticket map just after its order: wait for both
        wait_until(lambda: volumes(sa) == [0.3] and [t["master_ticket"] for t in open_trades(hosts, "SA")] == [tickets[2]],
                   timeout=40, message="HOST-A closes the two copies once linked again")
        time.sleep(1.0)  # a few more reconcile passes: nothing else moves
        assert volumes(sa) == [0.3]
        assert deals(sa) == {"in": before["in"] + 3, "out": before["out"] + 2}  # exactly the right copies, once
    finally:  # the next test starts flat, whatever happened here
        for pos in m.positions_get() or ():
            close(m, pos.ticket)
        wait_until(lambda: all_copied(hosts, 0), timeout=30, message="the last close on every host")


def test_hostless_account_claimed_by_three_launchers_has_one_writer(hosts):
    m, sx = hosts.terminal(1001), hosts.terminal(3003)
    rows = status_rows(hosts)
    lease = hosts.store.get_lease("SX")
    holder_host = lease["holder"]["host"]
    assert rows["SX"]["host"] == holder_host
    assert sorted(rows["SX"].get("standby_hosts") or []) == sorted(h for h in HOSTS if h != holder_host)
    # the holder dies without a word; the lease expires and one standby (maybe on another host) takes over
    os.kill(int(lease["holder"]["pid"]), signal.SIGKILL)
    wait_until(lambda: (hosts.store.get_lease("SX") or {}).get("epoch", 0) > lease["epoch"], timeout=30,
               message="a standby takes SX's lease")
    for volume in (0.1, 0.2, 0.3):
        market(m, "USDJPY", "BUY", volume)
    wait_until(lambda: volumes(sx) == [0.1, 0.2, 0.3], timeout=40, message="the new holder copies")
    time.sleep(1.5)  # several passes of every process that might think it is SX's writer
    assert volumes(sx) == [0.1, 0.2, 0.3]
    # every master open and close became exactly one deal on SX, over the whole module
    master = deals(m)
    assert deals(sx) == master, (deals(sx), master)
    for pos in m.positions_get() or ():
        close(m, pos.ticket)
    wait_until(lambda: volumes(sx) == [], timeout=30, message="SX flat again")
    time.sleep(1.0)
    assert deals(sx) == deals(m)
