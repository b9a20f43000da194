"""MongoDB backend (pymongo), also run against mongomock in tests.

Why these choices: a short server-selection timeout so a down server surfaces as
StoreUnavailable within seconds instead of a hung node; unique indexes carry the
atomicity (``record_intent`` is a plain insert that loses cleanly to a racing twin);
event ids come from a ``counters`` document so they are small sortable ints, the same
shape as SQLite's.
"""
from __future__ import annotations

import hashlib
import json
import re
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import pymongo
from pymongo import ASCENDING, DESCENDING, ReadPreference, ReturnDocument, WriteConcern
from pymongo.errors import DuplicateKeyError, PyMongoError

from .base import (
    Store,
    account_name,
    check_bus_key_args,
    check_field_names,
    check_lease_args,
    lease_clock,
    next_lease,
    now_ms,
    statuses,
    trade_key,
)
from .errors import DuplicateAccount, StoreUnavailable
from .urls import DEFAULT_MONGO_DB, mask_url, scrub

NO_ID = {"_id": 0}
_DEFAULT_OPTIONS = {"serverSelectionTimeoutMS": 2000, "connectTimeoutMS": 2000,
                    "socketTimeoutMS": 20000}
# On a replica set (docs/store.md): a write is acknowledged once a majority of members hold
# it, so a primary that fails over never takes an intent, a link or a lease with it; and
# every read goes to the primary, so a node never plans on a secondary's older copy.
# WTIMEOUT_MS bounds the wait for the majority: past it the write raises (StoreUnavailable)
# and the node acts as with a store that is down (no record, no trade).
REPLICA_WRITE_CONCERN = WriteConcern(w="majority", wtimeout=5000)
REPLICA_READ_PREFERENCE = ReadPreference.PRIMARY
_mock_lock = threading.Lock()
_mock_client: Any = None


def shared_mongomock_client() -> Any:
    """One in-memory mongomock client per process, so every ``open_store("mongomock://db")``
    in a process sees the same data (like several connections to one server)."""
    global _mock_client
    with _mock_lock:
        if _mock_client is None:
            import mongomock
            _mock_client = mongomock.MongoClient()
        return _mock_client


class MongoStore(Store):
    """The Store API on one MongoDB database.

    Either ``MongoStore(url=...)`` (pymongo client owned and closed by the store) or
    ``MongoStore(client=..., db_name=...)`` with an injected (e.g. mongomock) client,
    which ``close()`` leaves open for its owner.
    """

    def __init__(self, url: str | None = None, *, client: Any = None,
                 db_name: str = DEFAULT_MONGO_DB, secrets: tuple[str, ...] = (),
                 replica_set: bool | None = None) -> None:
        self._secrets = secrets
        self._closed = False
        self._indexes_ready = False
        self._owns_client = client is None
        self.label = mask_url(url) if url else f"{type(client).__module__}://{db_name}"
        if client is None:
            if not url:
                raise ValueError("MongoStore needs a url or a client")
            given = {k.lower() for k in _query_keys(url)}
            opts = {k: v for k, v in _DEFAULT_OPTIONS.items() if k.lower() not in given}
            try:
                client = pymongo.MongoClient(url, appname="copyhub", **opts)
            except (PyMongoError, ValueError, TypeError) as exc:
                raise StoreUnavailable(self._describe(exc)) from None
        self._client = client
        # ``replica_set`` None: decided by the URL (``replicaSet=`` or ``mongodb+srv://``)
        self.replica_set = names_replica_set(url or "") if replica_set is None else replica_set
        db = client[db_name]
        self._db = _Concerned(db, REPLICA_WRITE_CONCERN, REPLICA_READ_PREFERENCE) if self.replica_set else db
        self.db_name = db_name

    def __repr__(self) -> str:
        return f"MongoStore({self.label!r})"

    # -- plumbing --------------------------------------------------------------------
    def _describe(self, exc: BaseException) -> str:
        text = scrub(f"{type(exc).__name__}: {exc}", self._secrets)
        text = text.split(", Topology Description:")[0]  # the driver's dump adds nothing useful
        return f"MongoDB store {self.label} unavailable: {text}"

    @contextmanager
    def _guard(self) -> Iterator[Any]:
        """Map driver failures to StoreUnavailable with credentials scrubbed."""
        if self._closed:
            raise StoreUnavailable(f"store {self.label} is closed")
        try:
            yield self._db
        except DuplicateKeyError:
            raise
        except PyMongoError as exc:
            raise StoreUnavailable(self._describe(exc)) from None

    def _ready(self) -> None:
        """Unique indexes make record_intent/add_account/acquire_lease atomic; make sure
        they exist."""
        if not self._indexes_ready:
            self.ensure_indexes()

    # -- lifecycle -------------------------------------------------------------------
    def ensure_indexes(self) -> None:
        with self._guard() as db:
            db.accounts.create_index([("name", ASCENDING)], unique=True, name="name_unique")
            db.trades.create_index([("slave_name", ASCENDING), ("master_name", ASCENDING),
                                    ("master_ticket", ASCENDING)], unique=True, name="trade_key")
            db.trades.create_index([("created_ms", ASCENDING)], name="created")
            db.trades.create_index([("slave_name", ASCENDING), ("status", ASCENDING)],
                                   name="slave_status")
            db.trades.create_index([("master_name", ASCENDING), ("status", ASCENDING)],
                                   name="master_status")
            db.events.create_index([("id", ASCENDING)], unique=True, name="id_unique")
            db.events.create_index([("ts_ms", ASCENDING)], name="ts")
            db.events.create_index([("account", ASCENDING), ("id", ASCENDING)], name="account_id")
            db.events.create_index([("kind", ASCENDING), ("id", ASCENDING)], name="kind_id")
            db.nodes.create_index([("name", ASCENDING)], unique=True, name="name_unique")
            db.snapshots.create_index([("account", ASCENDING), ("ts_ms", ASCENDING)],
                                      name="account_ts")
            db.flags.create_index([("key", ASCENDING)], unique=True, name="key_unique")
            db.leases.create_index([("account", ASCENDING)], unique=True, name="account_unique")
            db.bus_keys.create_index([("public_key", ASCENDING)], unique=True, name="public_key_unique")
        self._indexes_ready = True

    def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        if self._owns_client:
            try:
                self._client.close()
            except Exception:
                pass

    def ping(self) -> bool:
        if self._closed:
            return False
        try:
            self._client.admin.command("ping")
            return True
        except Exception:
            return False

    # -- accounts --------------------------------------------------------------------
    def list_accounts(self) -> list[dict]:
        with self._guard() as db:
            return list(db.accounts.find({}, NO_ID).sort("name", ASCENDING))

    def get_account(self, name: str) -> dict | None:
        with self._guard() as db:
            return db.accounts.find_one({"name": name}, NO_ID)

    def add_account(self, doc: dict) -> None:
        name = account_name(doc)
        check_field_names(doc)
        self._ready()
        try:
            with self._guard() as db:
                db.accounts.insert_one(dict(doc))
        except DuplicateKeyError:
            raise DuplicateAccount(f"account {name!r} already exists") from None

    def upsert_account(self, doc: dict) -> bool:
        name = account_name(doc)
        check_field_names(doc)
        self._ready()
        for _ in range(3):  # a racing twin may insert between our read and write
            try:
                with self._guard() as db:
                    old = db.accounts.find_one({"name": name}, NO_ID)
                    if old == doc:
                        return False
                    db.accounts.replace_one({"name": name}, dict(doc), upsert=True)
                    return True
            except DuplicateKeyError:
                continue
        raise StoreUnavailable(f"MongoDB store {self.label}: upsert of account {name!r} "
                               "kept racing another writer")

    def update_account(self, name: str, fields: dict) -> bool:
        check_field_names(fields)
        if not fields:
            return False
        if "name" in fields:
            account_name(fields)
        try:
            with self._guard() as db:
                return db.accounts.update_one({"name": name}, {"$set": dict(fields)}
                                              ).modified_count > 0
        except DuplicateKeyError:
            raise DuplicateAccount(f"cannot rename account {name!r}: "
                                   "the new name already exists") from None

    def unset_account_fields(self, name: str, keys: list[str]) -> bool:
        keys = list(keys)
        check_field_names(keys)
        if "name" in keys:
            raise ValueError("cannot unset an account's 'name'")
        if not keys:
            return False
        with self._guard() as db:
            return db.accounts.update_one({"name": name}, {"$unset": {k: "" for k in keys}}
                                          ).modified_count > 0

    def remove_account(self, name: str) -> bool:
        with self._guard() as db:
            return db.accounts.delete_one({"name": name}).deleted_count > 0

    def accounts_version(self) -> str:
        h = hashlib.sha1()
        for doc in self.list_accounts():
            h.update(json.dumps(doc, sort_keys=True, default=repr).encode() + b"\n")
        return h.hexdigest()

    # -- trades ----------------------------------------------------------------------
    @staticmethod
    def _key(slave_name: str, master_name: str, master_ticket: Any) -> dict:
        return {"slave_name": slave_name, "master_name": master_name,
                "master_ticket": master_ticket}

    def record_intent(self, trade: dict) -> tuple[dict, bool]:
        key = self._key(*trade_key(trade))
        check_field_names(trade)
        self._ready()
        t = now_ms()
        doc = {**trade}
        doc.setdefault("status", "PENDING")
        doc.setdefault("created_ms", t)
        doc.setdefault("updated_ms", t)
        try:
            with self._guard() as db:
                db.trades.insert_one(dict(doc))
            return doc, True
        except DuplicateKeyError:
            with self._guard() as db:
                existing = db.trades.find_one(key, NO_ID)
            if existing is None:  # deleted in between: extremely unlikely, be explicit
                raise StoreUnavailable(f"trade {key} vanished during record_intent") from None
            return existing, False

    def update_trade(self, slave_name: str, master_name: str, master_ticket: Any,
                     fields: dict) -> dict | None:
        check_field_names(fields)
        key = self._key(slave_name, master_name, master_ticket)
        for k, v in key.items():
            if k in fields and fields[k] != v:
                raise ValueError(f"update_trade cannot change the key field {k!r}")
        upd = {**fields}
        upd.setdefault("updated_ms", now_ms())
        with self._guard() as db:
            return db.trades.find_one_and_update(key, {"$set": upd}, projection=NO_ID,
                                                 return_document=ReturnDocument.AFTER)

    def get_trade(self, slave_name: str, master_name: str, master_ticket: Any) -> dict | None:
        with self._guard() as db:
            return db.trades.find_one(self._key(slave_name, master_name, master_ticket), NO_ID)

    @staticmethod
    def _trade_filter(slave_name: str | None, master_name: str | None,
                      status: str | list[str] | None) -> dict:
        q: dict[str, Any] = {}
        if slave_name is not None:
            q["slave_name"] = slave_name
        if master_name is not None:
            q["master_name"] = master_name
        wanted = statuses(status)
        if wanted is not None:
            q["status"] = {"$in": wanted}
        return q

    def list_trades(self, *, slave_name: str | None = None, master_name: str | None = None,
                    status: str | list[str] | None = None, limit: int | None = None) -> list[dict]:
        with self._guard() as db:
            cur = db.trades.find(self._trade_filter(slave_name, master_name, status), NO_ID
                                 ).sort([("created_ms", ASCENDING), ("_id", ASCENDING)])
            if limit is not None:
                if int(limit) <= 0:
                    return []
                cur = cur.limit(int(limit))
            return list(cur)

    def count_trades(self, *, slave_name: str | None = None, master_name: str | None = None,
                     status: str | list[str] | None = None) -> int:
        with self._guard() as db:
            return int(db.trades.count_documents(
                self._trade_filter(slave_name, master_name, status)))

    # -- events ----------------------------------------------------------------------
    def _next_id(self, counter: str) -> int:
        for _ in range(3):  # concurrent first upserts of the counter may collide on _id
            try:
                with self._guard() as db:
                    doc = db.counters.find_one_and_update(
                        {"_id": counter}, {"$inc": {"seq": 1}}, upsert=True,
                        return_document=ReturnDocument.AFTER)
                return int(doc["seq"])
            except DuplicateKeyError:
                continue
        raise StoreUnavailable(f"MongoDB store {self.label}: cannot allocate a {counter} id")

    def add_event(self, kind: str, *, node: str | None = None, account: str | None = None,
                  level: str = "info", **data: Any) -> None:
        check_field_names(data, what="event data")
        self._ready()
        doc = {"id": self._next_id("events"), "ts_ms": now_ms(), "kind": kind, "node": node,
               "account": account, "level": level, "data": dict(data)}
        with self._guard() as db:
            db.events.insert_one(doc)

    def list_events(self, *, since_ms: int | None = None, account: str | None = None,
                    kind: str | None = None, after_id: int | None = None, limit: int | None = 500,
                    tail: bool = False) -> list[dict]:
        q: dict[str, Any] = {}
        if since_ms is not None:
            q["ts_ms"] = {"$gte": since_ms}
        if account is not None:
            q["account"] = account
        if kind is not None:
            q["kind"] = kind
        if after_id is not None:
            q["id"] = {"$gt": after_id}
        if limit is not None and int(limit) <= 0:
            return []
        with self._guard() as db:
            cur = db.events.find(q, NO_ID).sort("id", DESCENDING if tail else ASCENDING)
            if limit is not None:
                cur = cur.limit(int(limit))
            out = list(cur)
        if tail:
            out.reverse()
        return out

    # -- nodes -----------------------------------------------------------------------
    def upsert_node(self, name: str, fields: dict) -> None:
        check_field_names(fields)
        upd = {**fields, "name": name}
        for _ in range(3):
            try:
                with self._guard() as db:
                    db.nodes.update_one({"name": name}, {"$set": upd}, upsert=True)
                return
            except DuplicateKeyError:
                continue
        raise StoreUnavailable(f"MongoDB store {self.label}: upsert of node {name!r} kept racing")

    def get_node(self, name: str) -> dict | None:
        with self._guard() as db:
            return db.nodes.find_one({"name": name}, NO_ID)

    def list_nodes(self) -> list[dict]:
        with self._guard() as db:
            return list(db.nodes.find({}, NO_ID).sort("name", ASCENDING))

    def remove_node(self, name: str) -> bool:
        with self._guard() as db:
            return db.nodes.delete_one({"name": name}).deleted_count > 0

    # -- snapshots -------------------------------------------------------------------
    def add_snapshot(self, account: str, ts_ms: int, metrics: dict) -> None:
        check_field_names(metrics, what="metric")
        with self._guard() as db:
            db.snapshots.insert_one({"account": account, "ts_ms": int(ts_ms),
                                     "metrics": dict(metrics)})

    def list_snapshots(self, account: str, *, since_ms: int | None = None,
                       until_ms: int | None = None, limit: int | None = None,
                       tail: bool = False) -> list[dict]:
        q: dict[str, Any] = {"account": account}
        rng: dict[str, int] = {}
        if since_ms is not None:
            rng["$gte"] = since_ms
        if until_ms is not None:
            rng["$lte"] = until_ms
        if rng:
            q["ts_ms"] = rng
        if limit is not None and int(limit) <= 0:
            return []
        order = DESCENDING if tail else ASCENDING
        with self._guard() as db:
            cur = db.snapshots.find(q, NO_ID).sort([("ts_ms", order), ("_id", order)])
            if limit is not None:
                cur = cur.limit(int(limit))
            out = list(cur)
        if tail:
            out.reverse()
        return out

    # -- control flags ---------------------------------------------------------------
    def get_flag(self, key: str, default: Any = None) -> Any:
        with self._guard() as db:
            doc = db.flags.find_one({"key": key})
        return doc["value"] if doc is not None else default

    def set_flag(self, key: str, value: Any) -> None:
        for _ in range(3):
            try:
                with self._guard() as db:
                    db.flags.update_one({"key": key}, {"$set": {"value": value}}, upsert=True)
                return
            except DuplicateKeyError:
                continue
        raise StoreUnavailable(f"MongoDB store {self.label}: set_flag {key!r} kept racing")

    def delete_flag(self, key: str) -> bool:
        with self._guard() as db:
            return db.flags.delete_one({"key": key}).deleted_count > 0

    def list_flags(self, prefix: str = "") -> dict[str, Any]:
        q = {"key": {"$regex": "^" + re.escape(prefix)}} if prefix else {}
        with self._guard() as db:
            return {d["key"]: d["value"] for d in db.flags.find(q).sort("key", ASCENDING)}

    # -- leases ----------------------------------------------------------------------
    # Every write is one conditional find_one_and_update whose filter restates what the
    # decision was based on (holder/epoch/expiry), so a lease changed in between by
    # another process or host is never overwritten: the update matches nothing and we
    # re-read. A missing lease is created by insert_one, guarded by the unique index.
    _LEASE_ATTEMPTS = 5

    def _find_lease(self, account: str) -> dict | None:
        with self._guard() as db:
            return db.leases.find_one({"account": account}, NO_ID)

    def _swap_lease(self, cond: dict, lease: dict) -> dict | None:
        """Write ``lease`` where the stored one still matches ``cond``; None if it did not."""
        with self._guard() as db:
            return db.leases.find_one_and_update({"account": lease["account"], **cond},
                                                 {"$set": lease}, projection=NO_ID,
                                                 return_document=ReturnDocument.AFTER)

    @staticmethod
    def _lease_cond(current: dict, lease: dict, now: int, steal_epoch: int | None) -> dict:
        """The filter under which ``next_lease`` granted ``lease`` from ``current``."""
        if lease["epoch"] == current["epoch"]:  # same holder, not released
            return {"holder_id": lease["holder_id"], "epoch": current["epoch"],
                    "expires_ms": {"$gt": 0}}
        if steal_epoch is not None and steal_epoch == current["epoch"]:
            return {"epoch": current["epoch"]}
        return {"epoch": current["epoch"], "expires_ms": {"$lte": now}}

    def get_lease(self, account: str) -> dict | None:
        check_lease_args(account)
        return self._find_lease(account)

    def list_leases(self) -> list[dict]:
        with self._guard() as db:
            return list(db.leases.find({}, NO_ID).sort("account", ASCENDING))

    def acquire_lease(self, account: str, holder_id: str, holder: dict, *, ttl_ms: int,
                      now_ms: int | None = None,
                      steal_epoch: int | None = None) -> tuple[dict, bool]:
        now = lease_clock(now_ms)
        check_lease_args(account, holder_id, ttl_ms=ttl_ms, now=now, steal_epoch=steal_epoch,
                         holder=holder)
        self._ready()
        for _ in range(self._LEASE_ATTEMPTS):
            current = self._find_lease(account)
            lease = next_lease(current, account, holder_id, holder, ttl_ms=ttl_ms, now=now,
                               steal_epoch=steal_epoch)
            if lease is None:
                return current, False  # type: ignore[return-value]  # refused: it exists
            if current is None:
                try:
                    with self._guard() as db:
                        db.leases.insert_one(dict(lease))
                    return lease, True
                except DuplicateKeyError:
                    continue  # a racing twin created it first: judge its lease instead
            stored = self._swap_lease(self._lease_cond(current, lease, now, steal_epoch), lease)
            if stored is not None:
                return stored, True
        raise StoreUnavailable(f"MongoDB store {self.label}: acquire_lease {account!r} "
                               "kept racing other writers")

    def renew_lease(self, account: str, holder_id: str, epoch: int, *, ttl_ms: int,
                    now_ms: int | None = None) -> dict | None:
        now = lease_clock(now_ms)
        check_lease_args(account, holder_id, ttl_ms=ttl_ms, now=now, epoch=epoch)
        with self._guard() as db:
            return db.leases.find_one_and_update(
                {"account": account, "holder_id": holder_id, "epoch": epoch,
                 "expires_ms": {"$gt": 0}},
                {"$set": {"renewed_ms": now, "expires_ms": now + ttl_ms}}, projection=NO_ID,
                return_document=ReturnDocument.AFTER)

    def release_lease(self, account: str, holder_id: str, epoch: int) -> bool:
        check_lease_args(account, holder_id, epoch=epoch)
        with self._guard() as db:
            return db.leases.update_one(
                {"account": account, "holder_id": holder_id, "epoch": epoch,
                 "expires_ms": {"$gt": 0}}, {"$set": {"expires_ms": 0}}).modified_count > 0


    # -- bus keys --------------------------------------------------------------------
    def allow_bus_key(self, public_key: str, name: str, *, now_ms: int | None = None) -> bool:
        check_bus_key_args(public_key, name)
        added = lease_clock(now_ms)
        self._ready()
        try:
            with self._guard() as db:
                result = db.bus_keys.update_one({"public_key": public_key},
                                                {"$set": {"name": name}, "$setOnInsert": {"added_ms": added}},
                                                upsert=True)
        except DuplicateKeyError:  # a racing twin inserted it: rename only
            with self._guard() as db:
                result = db.bus_keys.update_one({"public_key": public_key}, {"$set": {"name": name}})
            return result.modified_count > 0
        return result.upserted_id is not None or result.modified_count > 0

    def revoke_bus_key(self, public_key: str) -> bool:
        with self._guard() as db:
            return db.bus_keys.delete_one({"public_key": public_key}).deleted_count > 0

    def list_bus_keys(self) -> list[dict]:
        with self._guard() as db:
            docs = db.bus_keys.find({}, NO_ID).sort([("name", ASCENDING), ("public_key", ASCENDING)])
            return [{"public_key": d["public_key"], "name": d["name"], "added_ms": d["added_ms"]} for d in docs]


def names_replica_set(url: str) -> bool:
    """True when a MongoDB URL names a replica set: a ``replicaSet=`` option, or a
    ``mongodb+srv://`` URL (its DNS TXT record names the set; Atlas is always one)."""
    if url.lower().startswith("mongodb+srv://"):
        return True
    return any(k.lower() == "replicaset" for k in _query_keys(url))


class _Concerned:
    """A database whose every collection (``db.trades``, ``db["trades"]``) carries one write
    concern and read preference, set per collection so that any client — pymongo or
    mongomock in tests — shows them on ``collection.write_concern``."""

    def __init__(self, db: Any, write_concern: WriteConcern, read_preference: Any) -> None:
        self._db = db
        self._wc = write_concern
        self._rp = read_preference
        self._collections: dict[str, Any] = {}

    def __getitem__(self, name: str) -> Any:
        col = self._collections.get(name)
        if col is None:
            col = self._db.get_collection(name, write_concern=self._wc, read_preference=self._rp)
            self._collections[name] = col
        return col

    def __getattr__(self, name: str) -> Any:
        if name.startswith("_"):
            raise AttributeError(name)
        return self[name]


def _query_keys(url: str) -> list[str]:
    from urllib.parse import parse_qsl, urlsplit
    try:
        return [k for k, _ in parse_qsl(urlsplit(url).query)]
    except ValueError:
        return []
