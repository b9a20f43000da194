"""End to end with the real nodes, the simulator and the demo trader: launcher.py --demo."""
from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path

import psutil
import pytest
from fleet_harness import ROOT, alive, kill_tree_seen, wait_for

from copier.tags import parse_tag
from db import open_store
from fleet.demo import free_port

pytestmark = pytest.mark.integration
SLAVES = ("Demo_FX_Ratio", "Demo_Prop_Hedge", "Demo_Prop_Netting")


class Demo:
    """``launcher.py --demo`` in its own data dir with free ports."""

    def __init__(self, data_dir: Path, *extra: str) -> None:
        self.data_dir = data_dir
        self.db = "sqlite:///" + (data_dir / "copyhub.db").as_posix()
        ports = set()
        while len(ports) < 3:
            ports.add(free_port())
        pub, sub, sim = sorted(ports)
        self.bus_pub, self.bus_sub = f"tcp://127.0.0.1:{pub}", f"tcp://127.0.0.1:{sub}"
        self.sim = f"tcp://127.0.0.1:{sim}"
        self.stdout = data_dir / "launcher.stdout"
        # Its own home: the file naming the running demo goes to data_dir/data, not the repo's.
        self.env = {**os.environ, "COPYHUB_HOME": str(data_dir)}
        self.pointer = data_dir / "data" / "running-demo.json"
        data_dir.mkdir(parents=True, exist_ok=True)
        self._out = open(self.stdout, "wb")
        self.proc = subprocess.Popen(
            [sys.executable, str(ROOT / "launcher.py"), "--demo", "--data-dir", str(data_dir), "--bus-pub",
             self.bus_pub, "--bus-sub", self.bus_sub, "--sim-endpoint", self.sim, "--trader-rate", "1", *extra],
            stdout=self._out, stderr=subprocess.STDOUT, cwd=str(data_dir), env=self.env)
        self.ps = psutil.Process(self.proc.pid)
        self.seen: dict[int, psutil.Process] = {}
        self._store = None

    @property
    def store(self):
        if self._store is None:
            self._store = wait_for(lambda: self._try_open(), 10, "the demo store")
        return self._store

    def _try_open(self):
        try:
            return open_store(self.db)
        except Exception:
            return None

    def track(self) -> None:
        try:
            for p in self.ps.children(recursive=True):
                self.seen.setdefault(p.pid, p)
        except psutil.NoSuchProcess:
            pass

    def node(self, name: str) -> dict:
        self.track()
        return self.store.get_node(name) or {}

    def cli(self, *argv: str) -> subprocess.CompletedProcess:
        return subprocess.run([sys.executable, str(ROOT / "cli.py"), "--db", self.db, "--bus-pub", self.bus_pub,
                               *argv], capture_output=True, text=True, timeout=30)

    def sim_cli(self, *argv: str) -> dict:
        res = subprocess.run([sys.executable, "-m", "sim", *argv, "--endpoint", self.sim, "--json"],
                             capture_output=True, text=True, timeout=30, cwd=str(ROOT))
        assert res.returncode == 0, res.stderr
        return json.loads(res.stdout)

    def copies(self, slave: str) -> list[dict]:
        return [t for t in self.store.list_trades(slave_name=slave) if t.get("status") in ("OPEN", "CLOSED")]

    def close(self) -> None:
        self.track()
        kill_tree_seen(self.proc, self.seen)
        if self._store is not None:
            self._store.close()
        self._out.close()


def test_demo_with_duration_copies_onto_every_slave_and_exits_clean(tmp_path):
    demo = Demo(tmp_path / "demo", "--duration", "20")
    try:
        while demo.proc.poll() is None:
            demo.track()
            time.sleep(0.2)
        out = demo.stdout.read_text()
        assert demo.proc.returncode == 0, out[-3000:]
        assert len(demo.seen) >= 7  # proxy, sim, trader, master, three slaves
        assert [p.pid for p in demo.seen.values() if alive(p)] == []
        store = demo.store
        for slave in SLAVES:
            assert demo.copies(slave), f"{slave} copied nothing: {store.list_trades(slave_name=slave)}"
        hedge = {t["symbol"] for t in demo.copies("Demo_Prop_Hedge")}
        assert all(s.endswith(".c") or s in ("GOLD", "DJ30") for s in hedge)
        assert "copy summary" in out and all(s in out.split("copy summary")[1] for s in SLAVES)
        assert "python cli.py --db" in out and "status" in out  # the banner says what to watch
        # and how to trade on the master: the demo's simulator is not on 5570 here
        assert f"  sim   : {demo.sim}  (simulated brokers; trade on the master: python -m sim trade --login 1001 " \
               f"--endpoint {demo.sim} buy EURUSD 0.10)" in out
        assert all(store.get_node(n)["supervisor_state"] == "STOPPED" for n in SLAVES)
    finally:
        demo.close()


@pytest.fixture(scope="module")
def demo(tmp_path_factory):
    d = Demo(tmp_path_factory.mktemp("demo_fleet"))
    try:
        wait_for(lambda: all(d.node(n).get("supervisor_state") == "RUNNING" for n in SLAVES), 30, "demo slaves up")
        yield d
        d.track()
        d.proc.send_signal(signal.SIGTERM)
        assert d.proc.wait(60) == 0
        assert f"the demo's store and logs stay in {d.data_dir}" in d.stdout.read_text()
        # a plain cli.py status after the demo stopped says where its store stayed
        res = subprocess.run([sys.executable, str(ROOT / "cli.py"), "status"], capture_output=True, text=True,
                             timeout=30, env=d.env, cwd=str(d.data_dir))
        assert res.returncode == 2 and "the demo that ran here has stopped" in res.stderr
        assert f"--db {d.db}" in res.stderr or f"--db sqlite:///{(d.data_dir / 'copyhub.db').as_posix()}" in res.stderr
        assert [p.pid for p in d.seen.values() if alive(p)] == []
    finally:
        d.close()


def test_kill9_of_a_real_slave_comes_back_without_duplicates(demo):
    slave = "Demo_FX_Ratio"
    wait_for(lambda: any(t["status"] == "OPEN" for t in demo.copies(slave)), 30, f"{slave} to hold a copy")
    old = demo.node(slave)["proc_pid"]
    psutil.Process(old).kill()
    doc = wait_for(lambda: (d := demo.node(slave)).get("supervisor_state") == "RUNNING"
                   and d.get("proc_pid") != old and d, 20, f"{slave} back")
    assert doc["restarts"] == 1
    time.sleep(3.0)  # a few reconcile rounds after the restart
    positions = demo.sim_cli("positions", "--login", "2003")
    tags = Counter(parse_tag(p["comment"]) for p in positions if parse_tag(p["comment"]))
    assert tags and all(n == 1 for n in tags.values()), tags
    open_links = Counter(t["master_ticket"] for t in demo.store.list_trades(slave_name=slave, status="OPEN"))
    assert all(n == 1 for n in open_links.values())


def test_symbol_map_edit_is_applied_by_the_running_slave_without_restart(demo):
    slave = "Demo_Prop_Hedge"
    before = demo.node(slave)
    pid, restarts = before["proc_pid"], before["restarts"]

    def edit_and_wait_reload(*assignments: str) -> None:
        last = max([e["id"] for e in demo.store.list_events(account=slave)] or [0])
        res = demo.cli("accounts", "set", slave, *assignments)
        assert res.returncode == 0, res.stderr
        wait_for(lambda: demo.store.list_events(account=slave, kind="config_reloaded", after_id=last), 15,
                 "config_reloaded")

    def master_gold() -> int:
        res = demo.sim_cli("trade", "buy", "XAUUSD", "0.1", "--login", "1001")
        return res.get("order") or res.get("deal")

    def outcome(ticket: int) -> dict:
        def done():
            t = next((t for t in demo.store.list_trades(slave_name=slave) if t["master_ticket"] == ticket), None)
            return t if t and t["status"] != "PENDING" else None
        return wait_for(done, 15, f"{slave}'s outcome for master ticket {ticket}")

    edit_and_wait_reload('symbol_map={"US30":"DJ30"}', "slippage_tolerance=100000")
    unmapped = outcome(master_gold())
    assert unmapped["status"] == "SKIPPED" and "XAUUSD.c" in unmapped["skip_reason"]  # suffix only, no map

    edit_and_wait_reload('symbol_map={"XAUUSD":"GOLD","US30":"DJ30"}')
    mapped = outcome(master_gold())
    assert mapped["status"] == "OPEN" and mapped["symbol"] == "GOLD"

    after = demo.node(slave)
    assert after["proc_pid"] == pid and after["restarts"] == restarts


def test_plain_cli_status_finds_the_running_demo(demo):
    """README: during ``launcher.py --demo``, ``python cli.py status`` (no --db) shows the
    demo's fleet, although the default store does not exist."""
    assert demo.pointer.exists()
    res = subprocess.run([sys.executable, str(ROOT / "cli.py"), "status"], capture_output=True, text=True,
                         timeout=30, env=demo.env, cwd=str(demo.data_dir))
    assert res.returncode == 0, res.stderr
    assert "showing the running demo's store" in res.stderr
    assert all(name in res.stdout for name in SLAVES)
    assert not (demo.data_dir / "data" / "copyhub.db").exists()  # nothing created at the default place
