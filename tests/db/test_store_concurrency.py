"""Many real processes on one SQLite file: the races record_intent and acquire_lease must
win exactly once, and concurrent writers never surface "database is locked". Uses subprocess (not fork)
so the test means the same on Windows."""
from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
import time
from pathlib import Path

from db import open_store

ROOT = str(Path(__file__).resolve().parents[2])

RACE = r"""
import json, os, sys, time
sys.path.insert(0, {root!r})
from db import open_store
store = open_store({url!r})
go = {go!r}
while not os.path.exists(go):
    time.sleep(0.001)
out = []
for ticket in range({keys}):
    doc, created = store.record_intent({{"slave_name": "S", "master_name": "M",
                                        "master_ticket": ticket, "by": os.getpid()}})
    out.append([ticket, created, doc["by"]])
store.close()
print(json.dumps(out))
"""

WRITER = r"""
import json, os, sys, time
sys.path.insert(0, {root!r})
go = {go!r}
while not os.path.exists(go):
    time.sleep(0.001)
from db import open_store
store = open_store({url!r})     # opened after "go": schema creation races too
me = {idx}
for i in range({ops}):
    store.add_event("w", node=f"p{{me}}", n=i)
    store.set_flag(f"p{{me}}.last", i)
    store.upsert_node(f"p{{me}}", {{"i": i}})
    store.record_intent({{"slave_name": f"S{{me}}", "master_name": "M", "master_ticket": i}})
    store.update_trade(f"S{{me}}", "M", i, {{"status": "OPEN"}})
    store.upsert_account({{"name": "shared", "writer": me, "i": i}})
store.close()
print("ok")
"""

LEASE_RACE = r"""
import json, os, sys, time
sys.path.insert(0, {root!r})
from db import open_store
store = open_store({url!r})
go = {go!r}
while not os.path.exists(go):
    time.sleep(0.001)
out = []
for i in range({keys}):
    lease, ok = store.acquire_lease(f"A{{i}}", "p{idx}", {{"pid": os.getpid()}},
                                    ttl_ms=600000, steal_epoch={steal})
    out.append([i, ok, lease["holder_id"], lease["epoch"]])
store.close()
print(json.dumps(out))
"""


def _run_all(code_by_proc: list[str], go: Path, timeout: float = 120) -> list[str]:
    env = {**os.environ, "PYTHONPATH": ROOT}
    procs = [subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE,
                              stderr=subprocess.PIPE, text=True, env=env)
             for code in code_by_proc]
    time.sleep(0.3)  # let them reach the barrier; correctness does not depend on it
    go.write_text("go")
    outs = []
    for p in procs:
        out, err = p.communicate(timeout=timeout)
        assert p.returncode == 0, err
        assert "locked" not in err.lower(), err
        outs.append(out)
    return outs


def test_record_intent_race_creates_exactly_once(tmp_path):
    url = f"sqlite:///{tmp_path / 'race.db'}"
    open_store(url).close()  # schema exists; the race is on the rows only
    go = tmp_path / "go"
    nproc, keys = 6, 25
    code = RACE.format(root=ROOT, url=url, go=str(go), keys=keys)
    results = [json.loads(o) for o in _run_all([code] * nproc, go)]
    for ticket in range(keys):
        rows = [r[ticket] for r in results]
        assert sum(1 for _, created, _ in rows if created) == 1, rows
        assert len({by for _, _, by in rows}) == 1, rows  # everyone sees the winner's row
    with open_store(url) as s:
        assert s.count_trades() == keys
        assert s.count_trades(status="PENDING") == keys


def test_concurrent_writer_processes_never_lock(tmp_path):
    url = f"sqlite:///{tmp_path / 'fresh' / 'writers.db'}"  # not created yet
    go = tmp_path / "go"
    nproc, ops = 5, 40
    codes = [WRITER.format(root=ROOT, url=url, go=str(go), idx=i, ops=ops) for i in range(nproc)]
    assert all(o.strip() == "ok" for o in _run_all(codes, go))
    with open_store(url) as s:
        events = s.list_events(limit=None)
        assert len(events) == nproc * ops
        ids = [e["id"] for e in events]
        assert ids == sorted(set(ids))
        for i in range(nproc):
            assert [e["data"]["n"] for e in events if e["node"] == f"p{i}"] == list(range(ops))
            assert s.get_flag(f"p{i}.last") == ops - 1
            assert s.get_node(f"p{i}") == {"name": f"p{i}", "i": ops - 1}
            assert s.count_trades(slave_name=f"S{i}", status="OPEN") == ops
        assert s.get_account("shared")["i"] == ops - 1


def test_one_store_shared_by_threads(tmp_path):
    store = open_store(f"sqlite:///{tmp_path / 't.db'}")
    errors: list[BaseException] = []

    def work(t: int) -> None:
        try:
            for i in range(50):
                store.record_intent({"slave_name": "S", "master_name": "M", "master_ticket": i})
                store.add_event("t", n=t * 1000 + i)
                store.get_flag("x")
        except BaseException as exc:  # pragma: no cover - reported below
            errors.append(exc)

    threads = [threading.Thread(target=work, args=(t,)) for t in range(8)]
    for th in threads:
        th.start()
    for th in threads:
        th.join()
    assert errors == []
    assert store.count_trades() == 50
    assert len(store.list_events(limit=None)) == 400
    store.close()


def test_mongomock_record_intent_threads_race_once():
    """The Mongo path relies on the unique index: racing inserts lose cleanly."""
    import mongomock

    from db.mongo_store import MongoStore
    client = mongomock.MongoClient()
    stores = [MongoStore(client=client, db_name="race") for _ in range(6)]
    results: list[bool] = []
    barrier = threading.Barrier(len(stores))

    def go(s):
        barrier.wait()
        results.append(s.record_intent({"slave_name": "S", "master_name": "M",
                                        "master_ticket": 1})[1])

    threads = [threading.Thread(target=go, args=(s,)) for s in stores]
    for th in threads:
        th.start()
    for th in threads:
        th.join()
    assert sorted(results) == [False] * 5 + [True]
    assert stores[0].count_trades() == 1


def _lease_race(tmp_path, *, setup, steal) -> list[list]:
    """6 processes race acquire_lease on 40 accounts; per account: each process's
    [ok, holder_id it saw, epoch it saw]."""
    url = f"sqlite:///{tmp_path / 'lease.db'}"
    nproc, keys = 6, 40
    with open_store(url) as s:
        for i in range(keys):
            setup(s, f"A{i}")
    go = tmp_path / "go"
    codes = [LEASE_RACE.format(root=ROOT, url=url, go=str(go), keys=keys, idx=p, steal=steal)
             for p in range(nproc)]
    results = [json.loads(o) for o in _run_all(codes, go)]
    per_account = [[r[i][1:] for r in results] for i in range(keys)]
    with open_store(url) as s:
        for i, rows in enumerate(per_account):
            winners = [holder for ok, holder, _ in rows if ok]
            assert len(winners) == 1, rows
            stored = s.get_lease(f"A{i}")
            assert stored["holder_id"] == winners[0]
            # everyone saw the winner's lease: the losers got it back with their refusal
            assert {(holder, epoch) for _, holder, epoch in rows} == \
                {(stored["holder_id"], stored["epoch"])}, rows
    return per_account


def test_acquire_lease_race_has_exactly_one_winner(tmp_path):
    per_account = _lease_race(tmp_path, setup=lambda s, a: None, steal=None)
    assert all(epoch == 1 for rows in per_account for _, _, epoch in rows)


def test_acquire_lease_race_after_expiry_one_winner_next_epoch(tmp_path):
    def expired(s, account):  # epoch 1 held by a dead node, long expired
        s.acquire_lease(account, "dead", {}, ttl_ms=1, now_ms=1)
    per_account = _lease_race(tmp_path, setup=expired, steal=None)
    assert all(epoch == 2 for rows in per_account for _, _, epoch in rows)


def test_steal_lease_race_one_winner_next_epoch(tmp_path):
    def valid(s, account):  # epoch 1 still valid: only the compare-and-swap can take it
        s.acquire_lease(account, "frozen", {}, ttl_ms=3_600_000)
    per_account = _lease_race(tmp_path, setup=valid, steal=1)
    assert all(epoch == 2 for rows in per_account for _, _, epoch in rows)
