"""MongoDB on a replica set (issue 15): majority writes and primary reads where the URL names one.

mongomock shows the concern each collection carries (it does not replicate); the store
contract suite runs the same API against a live server when COPYHUB_TEST_MONGO_URI is set
(tests/db/test_store_contract.py) — a replica-set URI there runs it with these settings.
"""
from __future__ import annotations

import mongomock
import pytest
from pymongo import ReadPreference

from db import open_store
from db.mongo_store import MongoStore, names_replica_set

COLLECTIONS = ("trades", "leases", "accounts", "flags", "nodes", "events", "counters", "snapshots")


@pytest.mark.parametrize("url, expected", [
    ("mongodb://a:27017,b:27017,c:27017/copyhub?replicaSet=rs0", True),
    ("mongodb://a/copyhub?replicaset=rs0&w=1", True),
    ("mongodb+srv://user:pw@cluster0.example.net/copyhub", True),
    ("mongodb://localhost:27017/copyhub", False),
    ("mongodb://localhost:27017/copyhub?directConnection=true", False),
    ("", False),
])
def test_which_urls_name_a_replica_set(url, expected):
    assert names_replica_set(url) is expected


def test_a_replica_set_store_writes_with_majority_and_reads_the_primary():
    store = MongoStore(client=mongomock.MongoClient(), db_name="rs_test", replica_set=True)
    for name in COLLECTIONS:
        col = store._db[name]
        assert col.write_concern.document == {"w": "majority", "wtimeout": 5000}, name
        assert col.read_preference == ReadPreference.PRIMARY, name
        assert getattr(store._db, name) is col  # attribute and item access: the same collection
    store.ensure_indexes()
    doc, created = store.record_intent({"slave_name": "S", "master_name": "M", "master_ticket": 1, "status": "PENDING",
                                        "symbol": "EURUSD", "side": "BUY", "volume": 0.1})
    assert created and store.get_trade("S", "M", 1)["status"] == "PENDING"


def test_a_single_server_store_keeps_the_drivers_defaults():
    store = MongoStore(client=mongomock.MongoClient(), db_name="single_test")
    assert store.replica_set is False
    assert store._db.trades.write_concern.document == {}


def test_the_url_decides_when_the_store_opens():
    rs = open_store("mongomock://rs_url_test?replicaSet=rs0")
    single = open_store("mongomock://single_url_test")
    try:
        assert rs.replica_set and rs._db.trades.write_concern.document["w"] == "majority"
        assert not single.replica_set
    finally:
        rs.close()
        single.close()


def test_a_pymongo_client_for_a_replica_set_url_carries_the_concern():
    """The real driver (no server needed: pymongo connects lazily)."""
    store = MongoStore("mongodb://127.0.0.1:1,127.0.0.1:2/copyhub?replicaSet=rs0", db_name="copyhub")
    try:
        assert store.replica_set
        assert store._db.trades.write_concern.document == {"w": "majority", "wtimeout": 5000}
        assert store._db.leases.read_preference == ReadPreference.PRIMARY
    finally:
        store.close()
