"""Failures surface as StoreUnavailable with a readable, credential-free message;
URLs parse the documented way."""
from __future__ import annotations

import sqlite3

import pytest

from db import StoreUnavailable, mask_url, open_store
from db.mongo_store import MongoStore
from db.sqlite_store import SQLiteStore
from db.urls import DEFAULT_MONGO_DB, parse_store_url, scrub

PASSWORD = "S3cr%40tPw"  # percent-encoded "S3cr@tPw"
DOWN = f"mongodb://trader:{PASSWORD}@127.0.0.1:1/copyhub?serverSelectionTimeoutMS=200"


def assert_no_secret(text: str) -> None:
    assert PASSWORD not in text and "S3cr@tPw" not in text, text


# -- MongoDB down ------------------------------------------------------------------------
def test_unreachable_mongo_raises_store_unavailable():
    with pytest.raises(StoreUnavailable) as info:
        open_store(DOWN)
    msg = str(info.value)
    assert "127.0.0.1:1" in msg and "trader:***@" in msg
    assert_no_secret(msg)
    assert info.value.__cause__ is None and info.value.__suppress_context__


def test_lazy_mongo_store_fails_per_call_and_masks():
    store = open_store(DOWN, ensure_indexes=False)
    try:
        assert_no_secret(repr(store))
        assert "trader:***@127.0.0.1:1" in repr(store)
        assert store.ping() is False
        for call in (store.list_accounts, lambda: store.add_event("x"),
                     lambda: store.get_flag("k"), lambda: store.record_intent(
                         {"slave_name": "S", "master_name": "M", "master_ticket": 1})):
            with pytest.raises(StoreUnavailable) as info:
                call()
            assert_no_secret(str(info.value))
    finally:
        store.close()


def test_malformed_mongo_url_does_not_leak_password():
    with pytest.raises((StoreUnavailable, ValueError)) as info:
        open_store(f"mongodb://trader:{PASSWORD}@127.0.0.1:notaport/x")
    assert_no_secret(str(info.value))


def test_mongo_default_database_name():
    assert parse_store_url("mongodb://localhost:27017").db_name == DEFAULT_MONGO_DB
    assert parse_store_url("mongodb://localhost:27017/").db_name == DEFAULT_MONGO_DB
    assert parse_store_url("mongodb://a:1,b:2/fleet?replicaSet=rs0").db_name == "fleet"
    store = open_store("mongodb://127.0.0.1:1", ensure_indexes=False)
    assert store.db_name == DEFAULT_MONGO_DB
    store.close()


def test_mongomock_url_shares_data_within_process():
    a = open_store("mongomock://shared_test_db")
    b = open_store("mongomock://shared_test_db")
    a.set_flag("seen", 1)
    assert b.get_flag("seen") == 1
    assert open_store("mongomock://another_db").get_flag("seen") is None
    a.delete_flag("seen")


def test_mongo_store_needs_url_or_client():
    with pytest.raises(ValueError):
        MongoStore()


# -- masking -----------------------------------------------------------------------------
@pytest.mark.parametrize("url,masked", [
    ("mongodb://u:p4ss@h:27017/db", "mongodb://u:***@h:27017/db"),
    ("mongodb+srv://u:p%40ss@cluster0.example.net/db?retryWrites=true",
     "mongodb+srv://u:***@cluster0.example.net/db?retryWrites=true"),
    ("mongodb://u:p@a:1,b:2/db?replicaSet=rs0", "mongodb://u:***@a:1,b:2/db?replicaSet=rs0"),
    ("mongodb://onlyuser@h/db", "mongodb://onlyuser@h/db"),
    ("mongodb://h/db?tlsCertificateKeyFilePassword=zz&x=1",
     "mongodb://h/db?tlsCertificateKeyFilePassword=***&x=1"),
    ("sqlite:///data/copyhub.db", "sqlite:///data/copyhub.db"),
])
def test_mask_url(url, masked):
    assert mask_url(url) == masked


def test_scrub_removes_raw_and_decoded_secrets():
    secrets = parse_store_url(f"mongodb://u:{PASSWORD}@h/db").secrets
    assert scrub("auth failed for S3cr@tPw / S3cr%40tPw", secrets) == "auth failed for *** / ***"


# -- SQLite failures ---------------------------------------------------------------------
def test_unwritable_sqlite_path(tmp_path):
    blocker = tmp_path / "a_file"
    blocker.write_text("not a directory")
    with pytest.raises(StoreUnavailable, match="cannot open SQLite store"):
        open_store(f"sqlite:///{blocker / 'sub' / 'copyhub.db'}")


def test_sqlite_path_that_is_a_directory(tmp_path):
    with pytest.raises(StoreUnavailable):
        open_store(f"sqlite:///{tmp_path}")


def test_sqlite_file_that_is_not_a_database(tmp_path):
    junk = tmp_path / "junk.db"
    junk.write_bytes(b"this is not sqlite" * 100)
    with pytest.raises(StoreUnavailable):
        open_store(f"sqlite:///{junk}")


def test_sqlite_locked_too_long_is_unavailable_and_reads_continue(tmp_path):
    path = tmp_path / "locked.db"
    store = open_store(f"sqlite:///{path}?timeout=0.3")
    store.set_flag("k", 1)
    holder = sqlite3.connect(str(path), isolation_level=None)
    holder.execute("BEGIN IMMEDIATE")  # another process holds the write lock
    try:
        assert store.get_flag("k") == 1  # WAL: readers are not blocked by a writer
        with pytest.raises(StoreUnavailable, match="locked"):
            store.set_flag("k", 2)
    finally:
        holder.execute("ROLLBACK")
        holder.close()
    store.set_flag("k", 3)  # lock released: writes work again
    assert store.get_flag("k") == 3
    store.close()


def test_sqlite_wal_mode_and_parent_dirs(tmp_path):
    store = open_store(f"sqlite:///{tmp_path / 'a' / 'b' / 'c.db'}")
    assert isinstance(store, SQLiteStore)
    assert store.journal_mode == "wal"
    assert (tmp_path / "a" / "b" / "c.db").exists()
    store.close()


def test_sqlite_memory_store():
    with open_store("sqlite:///:memory:") as s:
        s.set_flag("x", [1])
        assert s.get_flag("x") == [1]


def test_sqlite_relative_path_resolves_from_cwd(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    with open_store("sqlite:///rel/dir/copyhub.db") as s:
        s.set_flag("x", 1)
    assert (tmp_path / "rel" / "dir" / "copyhub.db").exists()


def test_sqlite_url_parsing():
    assert parse_store_url("sqlite:///data/x.db").path == "data/x.db"
    assert parse_store_url("sqlite:////var/lib/x.db").path == "/var/lib/x.db"
    assert parse_store_url("sqlite:///C:/copyhub/x.db").path == "C:/copyhub/x.db"
    assert parse_store_url("sqlite:///x.db?timeout=5").options == {"timeout": "5"}
    with pytest.raises(ValueError):
        open_store("sqlite:///x.db?synchronous=SOMETIMES")


@pytest.mark.parametrize("bad", ["", "copyhub.db", "sqlite://x.db", "sqlite:///",
                                 "postgres://h/db", "sqlite:///x.db?timeout=abc"])
def test_bad_urls_are_value_errors(bad):
    with pytest.raises(ValueError):
        open_store(bad)
