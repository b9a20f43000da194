"""One contract, every backend: SQLite file, mongomock, and live MongoDB when
COPYHUB_TEST_MONGO_URI is set. Anything a node relies on is asserted here."""
from __future__ import annotations

import os
import uuid

import mongomock
import pytest

from db import DuplicateAccount, Store, StoreUnavailable, open_store
from db.mongo_store import MongoStore

LIVE_URI = os.environ.get("COPYHUB_TEST_MONGO_URI")
BACKENDS = [
    "sqlite",
    "mongomock",
    pytest.param("mongodb", marks=pytest.mark.skipif(
        not LIVE_URI, reason="set COPYHUB_TEST_MONGO_URI=mongodb://host:port to run against "
                             "a live MongoDB")),
]


@pytest.fixture(params=BACKENDS)
def opener(request, tmp_path):
    """A function that opens a new Store over the same storage (a second process would)."""
    opened: list[Store] = []
    if request.param == "sqlite":
        url = f"sqlite:///{tmp_path / 'sub' / 'copyhub.db'}"

        def make() -> Store:
            return open_store(url)
    elif request.param == "mongomock":
        client = mongomock.MongoClient()

        def make() -> Store:
            s = MongoStore(client=client, db_name="copyhub_test")
            s.ensure_indexes()
            return s
    else:
        import pymongo
        db_name = f"copyhub_test_{uuid.uuid4().hex[:12]}"
        base = LIVE_URI.split("?")[0].rstrip("/")
        if base.count("/") > 2:  # URI already names a db: replace it
            base = base.rsplit("/", 1)[0]
        query = ("?" + LIVE_URI.split("?", 1)[1]) if "?" in LIVE_URI else ""
        url = f"{base}/{db_name}{query}"

        def make() -> Store:
            return open_store(url)
        request.addfinalizer(lambda: pymongo.MongoClient(LIVE_URI).drop_database(db_name))

    def tracked() -> Store:
        s = make()
        opened.append(s)
        return s
    yield tracked
    for s in opened:
        s.close()


@pytest.fixture
def store(opener) -> Store:
    return opener()


MASTER = {"name": "FTMO_Master", "type": "MASTER",
          "path": "C:/Program Files/FTMO MT5/terminal64.exe", "enabled": True}
SLAVE = {"name": "Apex_Slave_01", "type": "SLAVE",
         "path": "C:/Program Files/Apex MT5/terminal64.exe", "enabled": True, "suffix": ".c",
         "symbol_map": {"XAUUSD": "GOLD", "US30": "DJ30"}, "slippage_tolerance": 50}

RICH = {"int": 7, "big": 2**53 + 1, "neg": -3, "float": 1.0, "frac": 0.1, "bool": True,
        "none": None, "text": "Ünïcode ✓", "empty_list": [], "empty_dict": {},
        "nested": {"a": [1, 2.5, {"b": [None, False, "x"]}], "deep": {"deeper": {"n": 0}}}}


def assert_same_types(a, b):
    """Equality plus exact types all the way down (1 != 1.0 in type)."""
    assert type(a) is type(b), (a, b)
    if isinstance(a, dict):
        assert a.keys() == b.keys()
        for k in a:
            assert_same_types(a[k], b[k])
    elif isinstance(a, list):
        assert len(a) == len(b)
        for x, y in zip(a, b):
            assert_same_types(x, y)
    else:
        assert a == b


# -- lifecycle ---------------------------------------------------------------------------
def test_ping_and_ensure_indexes_idempotent(store):
    assert store.ping() is True
    store.ensure_indexes()
    store.ensure_indexes()
    assert store.ping() is True


def test_close_is_idempotent_and_later_calls_raise(store):
    store.close()
    store.close()
    assert store.ping() is False
    with pytest.raises(StoreUnavailable, match="closed"):
        store.list_accounts()


def test_context_manager_closes(opener):
    with opener() as s:
        s.set_flag("k", 1)
    with pytest.raises(StoreUnavailable):
        s.get_flag("k")


def test_repr_names_backend(store):
    assert type(store).__name__ in repr(store)


# -- accounts ----------------------------------------------------------------------------
def test_accounts_add_get_list_sorted(store):
    assert store.list_accounts() == []
    assert store.get_account("FTMO_Master") is None
    store.add_account(SLAVE)
    store.add_account(MASTER)
    assert [a["name"] for a in store.list_accounts()] == ["Apex_Slave_01", "FTMO_Master"]
    assert store.get_account("Apex_Slave_01") == SLAVE
    assert "_id" not in store.get_account("FTMO_Master")
    assert all("_id" not in a for a in store.list_accounts())


def test_add_account_does_not_mutate_input(store):
    doc = dict(MASTER)
    store.add_account(doc)
    assert doc == MASTER


def test_add_duplicate_account_raises(store):
    store.add_account(MASTER)
    with pytest.raises(DuplicateAccount, match="FTMO_Master"):
        store.add_account({**MASTER, "enabled": False})
    assert store.get_account("FTMO_Master")["enabled"] is True


@pytest.mark.parametrize("bad", [{}, {"name": ""}, {"name": 5}, {"type": "MASTER"}])
def test_account_needs_a_name(store, bad):
    with pytest.raises(ValueError, match="name"):
        store.add_account(bad)
    with pytest.raises(ValueError, match="name"):
        store.upsert_account(bad)


def test_field_names_refused_alike(store):
    with pytest.raises(ValueError, match="a.b"):
        store.add_account({"name": "X", "a.b": 1})
    with pytest.raises(ValueError, match=r"\$set"):
        store.upsert_account({"name": "X", "$set": 1})
    store.add_account({"name": "X"})
    with pytest.raises(ValueError):
        store.update_account("X", {"risk.max": 1})


def test_upsert_account_idempotent(store):
    assert store.upsert_account(SLAVE) is True
    assert store.upsert_account(SLAVE) is False
    assert store.upsert_account(dict(reversed(list(SLAVE.items())))) is False  # key order
    changed = {**SLAVE, "slippage_tolerance": 30}
    assert store.upsert_account(changed) is True
    assert store.get_account("Apex_Slave_01") == changed
    assert store.upsert_account(changed) is False


def test_upsert_account_replaces_whole_document(store):
    store.upsert_account(SLAVE)
    slim = {"name": "Apex_Slave_01", "type": "SLAVE", "enabled": False}
    assert store.upsert_account(slim) is True
    assert store.get_account("Apex_Slave_01") == slim


def test_update_account_set_semantics(store):
    store.add_account(SLAVE)
    assert store.update_account("Apex_Slave_01", {"enabled": False, "host": "vps-1"}) is True
    doc = store.get_account("Apex_Slave_01")
    assert doc == {**SLAVE, "enabled": False, "host": "vps-1"}
    # nested values are replaced, not merged ($set on a top-level key)
    assert store.update_account("Apex_Slave_01", {"symbol_map": {"US30": "WS30"}}) is True
    assert store.get_account("Apex_Slave_01")["symbol_map"] == {"US30": "WS30"}
    # identical values: nothing changed
    assert store.update_account("Apex_Slave_01", {"enabled": False}) is False
    assert store.update_account("Apex_Slave_01", {}) is False
    assert store.update_account("Nope", {"enabled": True}) is False
    assert store.get_account("Nope") is None


def test_update_account_rename_and_collision(store):
    store.add_account(MASTER)
    store.add_account(SLAVE)
    with pytest.raises(DuplicateAccount):
        store.update_account("Apex_Slave_01", {"name": "FTMO_Master"})
    assert store.get_account("Apex_Slave_01") == SLAVE
    assert store.update_account("Apex_Slave_01", {"name": "Apex_Slave_02"}) is True
    assert store.get_account("Apex_Slave_01") is None
    assert store.get_account("Apex_Slave_02") == {**SLAVE, "name": "Apex_Slave_02"}


def test_unset_account_fields(store):
    store.add_account(SLAVE)
    assert store.unset_account_fields("Apex_Slave_01", ["suffix", "not_there"]) is True
    assert "suffix" not in store.get_account("Apex_Slave_01")
    assert store.unset_account_fields("Apex_Slave_01", ["suffix"]) is False
    assert store.unset_account_fields("Apex_Slave_01", []) is False
    assert store.unset_account_fields("Nope", ["suffix"]) is False
    with pytest.raises(ValueError):
        store.unset_account_fields("Apex_Slave_01", ["name"])


def test_remove_account(store):
    store.add_account(MASTER)
    assert store.remove_account("FTMO_Master") is True
    assert store.remove_account("FTMO_Master") is False
    assert store.list_accounts() == []


def test_accounts_version_tracks_content(opener):
    a, b = opener(), opener()
    v0 = a.accounts_version()
    assert isinstance(v0, str) and v0
    a.add_account(MASTER)
    v1 = a.accounts_version()
    assert v1 != v0
    assert b.accounts_version() == v1  # another connection sees the same fingerprint
    a.set_flag("unrelated", 1)
    a.add_event("noise")
    assert a.accounts_version() == v1
    a.update_account("FTMO_Master", {"enabled": False})
    v2 = a.accounts_version()
    assert v2 not in (v0, v1)
    a.update_account("FTMO_Master", {"enabled": True})
    assert a.accounts_version() == v1
    a.remove_account("FTMO_Master")
    assert a.accounts_version() == v0


def test_accounts_round_trip_types(store):
    doc = {"name": "R", **RICH}
    store.add_account(doc)
    assert_same_types(store.get_account("R"), doc)
    store.update_account("R", {"float": 2.0, "int": 3})
    got = store.get_account("R")
    assert_same_types(got["float"], 2.0)
    assert_same_types(got["int"], 3)


# -- trades ------------------------------------------------------------------------------
def intent(ticket=12345678, slave="Apex_Slave_01", master="FTMO_Master", **extra):
    return {"master_ticket": ticket, "slave_name": slave, "master_name": master,
            "symbol": "EURUSD.c", "direction": "BUY", "master_symbol": "EURUSD",
            "master_volume": 0.5, "kind": "position", "tag": f"cp:{ticket}", **extra}


def test_record_intent_fills_defaults(store):
    doc, created = store.record_intent(intent())
    assert created is True
    assert doc["status"] == "PENDING"
    assert isinstance(doc["created_ms"], int) and doc["created_ms"] > 0
    assert doc["updated_ms"] == doc["created_ms"]
    assert store.get_trade("Apex_Slave_01", "FTMO_Master", 12345678) == doc
    assert "_id" not in doc


def test_record_intent_keeps_given_fields(store):
    doc, created = store.record_intent(intent(status="SKIPPED", skip_reason="symbol",
                                              created_ms=5, updated_ms=6))
    assert created and doc["status"] == "SKIPPED" and doc["created_ms"] == 5
    assert store.get_trade("Apex_Slave_01", "FTMO_Master", 12345678)["skip_reason"] == "symbol"


def test_record_intent_existing_key_returns_stored(store):
    first, c1 = store.record_intent(intent(attempts=1))
    store.update_trade("Apex_Slave_01", "FTMO_Master", 12345678, {"status": "OPEN",
                                                                  "slave_ticket": 87654321})
    again, c2 = store.record_intent(intent(attempts=99, symbol="OTHER"))
    assert (c1, c2) == (True, False)
    assert again["status"] == "OPEN" and again["attempts"] == 1 and again["symbol"] == "EURUSD.c"
    assert store.count_trades() == 1


def test_trade_key_is_the_triple(store):
    assert store.record_intent(intent())[1]
    assert store.record_intent(intent(slave="Other_Slave"))[1]
    assert store.record_intent(intent(master="Other_Master"))[1]
    assert store.record_intent(intent(ticket=12345679))[1]
    assert not store.record_intent(intent())[1]
    assert store.count_trades() == 4


def test_record_intent_needs_key(store):
    for missing in ("slave_name", "master_name", "master_ticket"):
        bad = intent()
        del bad[missing]
        with pytest.raises(ValueError, match=missing):
            store.record_intent(bad)


def test_update_trade(store):
    store.record_intent(intent(updated_ms=0))
    got = store.update_trade("Apex_Slave_01", "FTMO_Master", 12345678,
                             {"status": "OPEN", "slave_ticket": 87654321, "slave_price": 1.08512,
                              "open_time": "2025-11-23T10:30:00Z", "latency_ms": 41})
    assert got["status"] == "OPEN" and got["slave_ticket"] == 87654321
    assert got["updated_ms"] > 0
    assert got["symbol"] == "EURUSD.c"  # untouched fields stay
    assert got == store.get_trade("Apex_Slave_01", "FTMO_Master", 12345678)
    assert "_id" not in got
    explicit = store.update_trade("Apex_Slave_01", "FTMO_Master", 12345678,
                                  {"updated_ms": 42, "status": "CLOSED",
                                   "close_time": "2025-11-23T11:00:00Z", "close_reason": "master"})
    assert explicit["updated_ms"] == 42
    assert store.list_trades(status="CLOSED") == [explicit]
    assert store.update_trade("Apex_Slave_01", "FTMO_Master", 1, {"status": "OPEN"}) is None
    with pytest.raises(ValueError, match="master_ticket"):
        store.update_trade("Apex_Slave_01", "FTMO_Master", 12345678, {"master_ticket": 2})
    # restating the same key value is harmless
    assert store.update_trade("Apex_Slave_01", "FTMO_Master", 12345678,
                              {"master_ticket": 12345678})["master_ticket"] == 12345678


def test_list_and_count_trades_filters_and_order(store):
    rows = [("S1", "M1", 1, "OPEN", 300), ("S1", "M1", 2, "CLOSED", 100),
            ("S2", "M1", 1, "PENDING", 200), ("S1", "M2", 9, "FAILED", 400),
            ("S2", "M2", 9, "OPEN", 50)]
    for slave, master, ticket, status, created in rows:
        store.record_intent(intent(ticket, slave, master, status=status, created_ms=created))
    assert [t["created_ms"] for t in store.list_trades()] == [50, 100, 200, 300, 400]
    assert [t["master_ticket"] for t in store.list_trades(slave_name="S1")] == [2, 1, 9]
    assert [t["slave_name"] for t in store.list_trades(master_name="M2")] == ["S2", "S1"]
    assert [t["created_ms"] for t in store.list_trades(status="OPEN")] == [50, 300]
    assert [t["created_ms"] for t in store.list_trades(status=["OPEN", "PENDING"])] == [50, 200, 300]
    assert store.list_trades(status=[]) == []
    assert store.list_trades(slave_name="S1", master_name="M1", status="OPEN")[0]["master_ticket"] == 1
    assert [t["created_ms"] for t in store.list_trades(limit=2)] == [50, 100]
    assert store.list_trades(limit=0) == []
    assert store.count_trades() == 5
    assert store.count_trades(slave_name="S1") == 3
    assert store.count_trades(status=["OPEN", "FAILED"]) == 3
    assert store.count_trades(slave_name="S2", status="OPEN") == 1
    assert store.count_trades(master_name="nobody") == 0
    assert store.count_trades(status=[]) == 0


def test_status_column_follows_updates(store):
    store.record_intent(intent())
    assert store.count_trades(status="PENDING") == 1
    store.update_trade("Apex_Slave_01", "FTMO_Master", 12345678, {"status": "OPEN"})
    assert store.count_trades(status="PENDING") == 0
    assert store.count_trades(status="OPEN") == 1


def test_trade_round_trip_types(store):
    doc, _ = store.record_intent(intent(extra=RICH, master_volume=1.0, slave_volume=1,
                                        slippage_points=-3))
    got = store.get_trade("Apex_Slave_01", "FTMO_Master", 12345678)
    assert_same_types(got, doc)
    assert type(got["master_volume"]) is float and type(got["slave_volume"]) is int


# -- events ------------------------------------------------------------------------------
def test_events_add_and_list(store):
    store.add_event("copy_open", node="slave-1", account="Apex_Slave_01", ticket=5, price=1.1)
    store.add_event("alert", node="monitor", level="warning", text="dd 4%")
    store.add_event("copy_open", node="slave-2", account="Other", ticket=6)
    ev = store.list_events()
    assert [e["kind"] for e in ev] == ["copy_open", "alert", "copy_open"]
    assert set(ev[0]) == {"id", "ts_ms", "kind", "node", "account", "level", "data"}
    assert ev[0]["data"] == {"ticket": 5, "price": 1.1}
    assert ev[0]["level"] == "info" and ev[1]["level"] == "warning"
    assert ev[1]["account"] is None and ev[1]["node"] == "monitor"
    ids = [e["id"] for e in ev]
    assert all(type(i) is int for i in ids) and ids == sorted(set(ids))
    assert all(type(e["ts_ms"]) is int for e in ev)


def test_events_filters_and_paging(store):
    for i in range(12):
        store.add_event("tick" if i % 2 else "copy", account=f"A{i % 3}", n=i)
    allev = store.list_events()
    assert [e["data"]["n"] for e in allev] == list(range(12))
    assert [e["data"]["n"] for e in store.list_events(kind="tick")] == [1, 3, 5, 7, 9, 11]
    assert [e["data"]["n"] for e in store.list_events(account="A1")] == [1, 4, 7, 10]
    assert [e["data"]["n"] for e in store.list_events(account="A1", kind="tick")] == [1, 7]
    assert [e["data"]["n"] for e in store.list_events(limit=3)] == [0, 1, 2]
    assert [e["data"]["n"] for e in store.list_events(limit=3, tail=True)] == [9, 10, 11]
    assert store.list_events(limit=0) == []
    # follow-style paging with after_id never repeats or skips
    seen, after = [], None
    while True:
        page = store.list_events(after_id=after, limit=5)
        if not page:
            break
        seen += [e["data"]["n"] for e in page]
        after = page[-1]["id"]
    assert seen == list(range(12))
    store.add_event("late", n=12)
    assert [e["data"]["n"] for e in store.list_events(after_id=after)] == [12]
    # since_ms is inclusive and ts_ms is monotone enough for a lower bound
    first_ts = allev[0]["ts_ms"]
    assert len(store.list_events(since_ms=first_ts)) == 13
    assert store.list_events(since_ms=allev[-1]["ts_ms"] + 10**9) == []


def test_event_ids_continue_across_connections(opener):
    a, b = opener(), opener()
    a.add_event("x")
    b.add_event("y")
    a.add_event("z")
    ev = b.list_events()
    assert [e["kind"] for e in ev] == ["x", "y", "z"]
    assert [e["id"] for e in ev] == sorted({e["id"] for e in ev})


def test_event_data_round_trip(store):
    store.add_event("rich", **RICH)
    assert_same_types(store.list_events(kind="rich")[0]["data"], RICH)


# -- nodes -------------------------------------------------------------------------------
def test_nodes_merge_get_list_remove(store):
    assert store.get_node("slave-1") is None
    store.upsert_node("slave-1", {"pid": 100, "state": "starting"})
    store.upsert_node("slave-1", {"state": "running", "heartbeat_ms": 5})
    store.upsert_node("master-1", {"pid": 7})
    assert store.get_node("slave-1") == {"name": "slave-1", "pid": 100, "state": "running",
                                         "heartbeat_ms": 5}
    assert [n["name"] for n in store.list_nodes()] == ["master-1", "slave-1"]
    assert all("_id" not in n for n in store.list_nodes())
    store.upsert_node("master-1", {})
    assert store.get_node("master-1") == {"name": "master-1", "pid": 7}
    assert store.remove_node("master-1") is True
    assert store.remove_node("master-1") is False
    assert [n["name"] for n in store.list_nodes()] == ["slave-1"]


def test_node_round_trip(store):
    store.upsert_node("n", RICH)
    assert_same_types(store.get_node("n"), {**RICH, "name": "n"})


# -- snapshots ---------------------------------------------------------------------------
def test_snapshots(store):
    for ts in (300, 100, 200, 400):
        store.add_snapshot("A", ts, {"balance": 10000.0, "equity": 10000.0 + ts, "positions": ts // 100})
    store.add_snapshot("B", 150, {"balance": 1.0})
    got = store.list_snapshots("A")
    assert [s["ts_ms"] for s in got] == [100, 200, 300, 400]
    assert got[0] == {"account": "A", "ts_ms": 100,
                      "metrics": {"balance": 10000.0, "equity": 10100.0, "positions": 1}}
    assert_same_types(got[0]["metrics"]["positions"], 1)
    assert [s["ts_ms"] for s in store.list_snapshots("A", since_ms=200)] == [200, 300, 400]
    assert [s["ts_ms"] for s in store.list_snapshots("A", until_ms=300)] == [100, 200, 300]
    assert [s["ts_ms"] for s in store.list_snapshots("A", since_ms=150, until_ms=300)] == [200, 300]
    assert [s["ts_ms"] for s in store.list_snapshots("A", limit=2)] == [100, 200]
    assert [s["ts_ms"] for s in store.list_snapshots("A", limit=2, tail=True)] == [300, 400]
    assert [s["ts_ms"] for s in store.list_snapshots("B")] == [150]
    assert store.list_snapshots("nobody") == []
    assert all("_id" not in s for s in got)


# -- flags -------------------------------------------------------------------------------
def test_flags(store):
    assert store.get_flag("pause.Apex") is None
    assert store.get_flag("pause.Apex", default=False) is False
    store.set_flag("pause.Apex", True)
    store.set_flag("pause.Other", {"by": "cli", "ms": 5})
    store.set_flag("kill", None)
    store.set_flag("risk.lock[x]", [1, 2.0])
    assert store.get_flag("pause.Apex") is True
    assert store.get_flag("kill", default="absent") is None  # a stored None is not absence
    store.set_flag("pause.Apex", False)
    assert store.get_flag("pause.Apex") is False
    assert store.list_flags("pause.") == {"pause.Apex": False,
                                          "pause.Other": {"by": "cli", "ms": 5}}
    assert store.list_flags("risk.lock[") == {"risk.lock[x]": [1, 2.0]}
    assert store.list_flags("pause.*") == {}
    assert set(store.list_flags()) == {"pause.Apex", "pause.Other", "kill", "risk.lock[x]"}
    assert store.delete_flag("kill") is True
    assert store.delete_flag("kill") is False
    assert store.get_flag("kill", default="absent") == "absent"


@pytest.mark.parametrize("value", [0, 1.0, 2**40, -1.5, "x", True, [], {}, [1, [2, {"a": None}]],
                                   RICH])
def test_flag_round_trip(store, value):
    store.set_flag("v", value)
    assert_same_types(store.get_flag("v"), value)


def test_second_connection_sees_writes(opener):
    a, b = opener(), opener()
    a.add_account(MASTER)
    a.record_intent(intent())
    a.upsert_node("n", {"x": 1})
    a.set_flag("f", 1)
    a.add_snapshot("A", 1, {"e": 1.0})
    assert b.get_account("FTMO_Master") == MASTER
    assert b.count_trades() == 1
    assert b.get_node("n") == {"name": "n", "x": 1}
    assert b.get_flag("f") == 1
    assert len(b.list_snapshots("A")) == 1
    with pytest.raises(DuplicateAccount):
        b.add_account(MASTER)


# -- bus keys: the proxy's CURVE allow-list -------------------------------------------
KEY_A = "rq:rM>}U?@Lns47E1%kR.o@n%FcmmsL/@{H8]yf7"
KEY_B = "Yne@$w-vo<fVvi]a<NY6T1ed:M$fCG*[IaLV{hID"


def test_bus_keys_allow_list_revoke(store):
    assert store.list_bus_keys() == []
    assert store.allow_bus_key(KEY_B, "VPS-2", now_ms=2000) is True
    assert store.allow_bus_key(KEY_A, "VPS-1", now_ms=1000) is True
    assert store.allow_bus_key(KEY_A, "VPS-1", now_ms=5000) is False  # nothing changed
    assert store.list_bus_keys() == [{"public_key": KEY_A, "name": "VPS-1", "added_ms": 1000},
                                     {"public_key": KEY_B, "name": "VPS-2", "added_ms": 2000}]
    assert store.allow_bus_key(KEY_A, "VPS-9", now_ms=9000) is True  # rename keeps added_ms
    assert store.list_bus_keys()[1] == {"public_key": KEY_A, "name": "VPS-9", "added_ms": 1000}
    assert store.revoke_bus_key(KEY_A) is True
    assert store.revoke_bus_key(KEY_A) is False
    assert [k["public_key"] for k in store.list_bus_keys()] == [KEY_B]


@pytest.mark.parametrize("key,name", [("short", "VPS-1"), (KEY_A[:-1] + " ", "VPS-1"), (None, "VPS-1"),
                                      (KEY_A, ""), (KEY_A, None)])
def test_bus_keys_refuse_malformed(store, key, name):
    with pytest.raises(ValueError):
        store.allow_bus_key(key, name)
    assert store.list_bus_keys() == []


def test_bus_keys_seen_by_a_second_connection(opener):
    a, b = opener(), opener()
    a.allow_bus_key(KEY_A, "VPS-1", now_ms=1)
    assert b.list_bus_keys() == [{"public_key": KEY_A, "name": "VPS-1", "added_ms": 1}]
    b.revoke_bus_key(KEY_A)
    assert a.list_bus_keys() == []
