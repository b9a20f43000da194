"""Account leases (invariant 6: one account, one writer), on every backend of the
contract suite, plus MongoDB races injected deterministically on mongomock. The
multi-process SQLite races live in test_store_concurrency.py."""
from __future__ import annotations

import uuid

import mongomock
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from test_store_contract import opener, store  # noqa: F401  (same backends, same fixtures)

from db import StoreUnavailable, now_ms
from db.mongo_store import MongoStore

HOLDER = {"node": "H", "host": "VPS-1", "pid": 1234, "role": "slave"}
OTHER = {"node": "H", "host": "VPS-2", "pid": 99, "role": "slave"}
LEASE_KEYS = {"account", "holder_id", "holder", "epoch", "since_ms", "renewed_ms", "expires_ms"}


def assert_lease(lease, holder_id, epoch, since, renewed, expires, holder=HOLDER, account="A"):
    assert set(lease) == LEASE_KEYS, lease
    assert lease == {"account": account, "holder_id": holder_id, "holder": holder,
                     "epoch": epoch, "since_ms": since, "renewed_ms": renewed,
                     "expires_ms": expires}
    assert all(type(lease[k]) is int for k in ("epoch", "since_ms", "renewed_ms", "expires_ms"))


# -- acquire -----------------------------------------------------------------------------
def test_first_acquire_gets_epoch_1_and_is_stored(store):
    assert store.get_lease("A") is None and store.list_leases() == []
    lease, ok = store.acquire_lease("A", "h1", HOLDER, ttl_ms=10_000, now_ms=1_000)
    assert ok is True
    assert_lease(lease, "h1", 1, 1_000, 1_000, 11_000)
    assert store.get_lease("A") == lease
    assert store.list_leases() == [lease]


def test_second_holder_refused_while_valid(store):
    first, _ = store.acquire_lease("A", "h1", HOLDER, ttl_ms=10_000, now_ms=1_000)
    for t in (1_000, 5_000, 10_999):
        got, ok = store.acquire_lease("A", "h2", OTHER, ttl_ms=10_000, now_ms=t)
        assert ok is False
        assert got == first  # the current lease comes back, unchanged
    assert store.get_lease("A") == first


def test_after_expiry_new_holder_gets_next_epoch_and_old_cannot_renew(store):
    store.acquire_lease("A", "h1", HOLDER, ttl_ms=10_000, now_ms=1_000)
    lease, ok = store.acquire_lease("A", "h2", OTHER, ttl_ms=5_000, now_ms=11_000)  # expires <= now
    assert ok is True
    assert_lease(lease, "h2", 2, 11_000, 11_000, 16_000, holder=OTHER)
    assert store.renew_lease("A", "h1", 1, ttl_ms=10_000, now_ms=11_001) is None
    assert store.renew_lease("A", "h1", 2, ttl_ms=10_000, now_ms=11_001) is None  # not its epoch
    assert store.release_lease("A", "h1", 1) is False
    assert store.get_lease("A") == lease
    # and the old holder cannot take it back while it is valid
    got, ok = store.acquire_lease("A", "h1", HOLDER, ttl_ms=10_000, now_ms=12_000)
    assert (ok, got) == (False, lease)


def test_same_holder_reacquire_keeps_epoch_and_since(store):
    store.acquire_lease("A", "h1", HOLDER, ttl_ms=10_000, now_ms=1_000)
    moved = {**HOLDER, "pid": 4321}
    lease, ok = store.acquire_lease("A", "h1", moved, ttl_ms=10_000, now_ms=2_000)
    assert ok is True
    assert_lease(lease, "h1", 1, 1_000, 2_000, 12_000, holder=moved)
    # even after its own expiry, as long as nobody took it in between
    lease, ok = store.acquire_lease("A", "h1", moved, ttl_ms=10_000, now_ms=50_000)
    assert ok is True
    assert_lease(lease, "h1", 1, 1_000, 50_000, 60_000, holder=moved)


def test_release_then_new_holder_gets_next_epoch(store):
    held, _ = store.acquire_lease("A", "h1", HOLDER, ttl_ms=10_000, now_ms=1_000)
    assert store.release_lease("A", "h1", 2) is False  # wrong epoch
    assert store.release_lease("A", "h2", 1) is False  # wrong holder
    assert store.release_lease("B", "h1", 1) is False  # no lease
    assert store.release_lease("A", "h1", 1) is True
    assert store.get_lease("A") == {**held, "expires_ms": 0}
    assert store.release_lease("A", "h1", 1) is False  # already released
    lease, ok = store.acquire_lease("A", "h2", OTHER, ttl_ms=10_000, now_ms=2_000)
    assert ok is True
    assert_lease(lease, "h2", 2, 2_000, 2_000, 12_000, holder=OTHER)


def test_released_lease_is_not_revived_by_its_last_holder(store):
    """Release gives the lease up for good: a stale renew cannot revive it, and the same
    holder_id acquiring again is a new tenure with a new epoch (its old orders are fenced)."""
    store.acquire_lease("A", "h1", HOLDER, ttl_ms=10_000, now_ms=1_000)
    assert store.release_lease("A", "h1", 1) is True
    assert store.renew_lease("A", "h1", 1, ttl_ms=10_000, now_ms=1_500) is None
    assert store.get_lease("A")["expires_ms"] == 0
    lease, ok = store.acquire_lease("A", "h1", HOLDER, ttl_ms=10_000, now_ms=2_000)
    assert ok is True
    assert_lease(lease, "h1", 2, 2_000, 2_000, 12_000)


def test_steal_epoch_is_a_compare_and_swap(store):
    held, _ = store.acquire_lease("A", "h1", HOLDER, ttl_ms=60_000, now_ms=1_000)
    for wrong in (0, 2, 7):
        got, ok = store.acquire_lease("A", "h2", OTHER, ttl_ms=10_000, now_ms=2_000,
                                      steal_epoch=wrong)
        assert (ok, got) == (False, held)
    lease, ok = store.acquire_lease("A", "h2", OTHER, ttl_ms=10_000, now_ms=2_000, steal_epoch=1)
    assert ok is True
    assert_lease(lease, "h2", 2, 2_000, 2_000, 12_000, holder=OTHER)
    # a second thief with the same (now stale) proof loses
    got, ok = store.acquire_lease("A", "h3", OTHER, ttl_ms=10_000, now_ms=2_001, steal_epoch=1)
    assert (ok, got) == (False, lease)
    assert store.renew_lease("A", "h1", 1, ttl_ms=60_000, now_ms=2_002) is None


def test_steal_epoch_on_a_missing_lease_just_creates_it(store):
    lease, ok = store.acquire_lease("A", "h1", HOLDER, ttl_ms=10, now_ms=5, steal_epoch=3)
    assert ok is True and lease["epoch"] == 1


# -- renew -------------------------------------------------------------------------------
def test_renew_extends_and_keeps_the_rest(store):
    store.acquire_lease("A", "h1", HOLDER, ttl_ms=10_000, now_ms=1_000)
    lease = store.renew_lease("A", "h1", 1, ttl_ms=20_000, now_ms=6_000)
    assert_lease(lease, "h1", 1, 1_000, 6_000, 26_000)
    assert store.get_lease("A") == lease
    assert store.renew_lease("A", "h2", 1, ttl_ms=20_000, now_ms=7_000) is None
    assert store.renew_lease("A", "h1", 2, ttl_ms=20_000, now_ms=7_000) is None
    assert store.renew_lease("nope", "h1", 1, ttl_ms=20_000, now_ms=7_000) is None
    assert store.get_lease("A") == lease


def test_renew_of_expired_but_untaken_lease_works(store):
    store.acquire_lease("A", "h1", HOLDER, ttl_ms=10_000, now_ms=1_000)
    lease = store.renew_lease("A", "h1", 1, ttl_ms=10_000, now_ms=30_000)
    assert_lease(lease, "h1", 1, 1_000, 30_000, 40_000)
    got, ok = store.acquire_lease("A", "h2", OTHER, ttl_ms=10_000, now_ms=35_000)
    assert (ok, got) == (False, lease)


def test_default_now_is_the_local_clock(store):
    before = now_ms()
    lease, ok = store.acquire_lease("A", "h1", HOLDER, ttl_ms=60_000)
    after = now_ms()
    assert ok and before <= lease["since_ms"] == lease["renewed_ms"] <= after
    assert lease["expires_ms"] == lease["renewed_ms"] + 60_000
    renewed = store.renew_lease("A", "h1", 1, ttl_ms=1_000)
    assert lease["renewed_ms"] <= renewed["renewed_ms"] <= now_ms()


# -- listing, connections ----------------------------------------------------------------
def test_list_leases_sorted_and_seen_by_other_connections(opener):  # noqa: F811
    a, b = opener(), opener()
    for account in ("Zeta", "Alpha", "Mid"):
        a.acquire_lease(account, f"h-{account}", HOLDER, ttl_ms=1_000, now_ms=1)
    assert [x["account"] for x in b.list_leases()] == ["Alpha", "Mid", "Zeta"]
    got, ok = b.acquire_lease("Mid", "other", OTHER, ttl_ms=1_000, now_ms=2)
    assert ok is False and got["holder_id"] == "h-Mid"
    assert all("_id" not in x for x in b.list_leases())


# -- arguments and failures --------------------------------------------------------------
BAD_CALLS = {
    "empty account": lambda s: s.acquire_lease("", "h", {}, ttl_ms=1),
    "account not str": lambda s: s.acquire_lease(5, "h", {}, ttl_ms=1),
    "empty holder_id": lambda s: s.acquire_lease("A", "", {}, ttl_ms=1),
    "holder_id None": lambda s: s.acquire_lease("A", None, {}, ttl_ms=1),
    "ttl zero": lambda s: s.acquire_lease("A", "h", {}, ttl_ms=0),
    "ttl negative": lambda s: s.acquire_lease("A", "h", {}, ttl_ms=-5),
    "ttl float": lambda s: s.acquire_lease("A", "h", {}, ttl_ms=1.5),
    "ttl bool": lambda s: s.acquire_lease("A", "h", {}, ttl_ms=True),
    "ttl str": lambda s: s.acquire_lease("A", "h", {}, ttl_ms="10"),
    "holder not dict": lambda s: s.acquire_lease("A", "h", "node", ttl_ms=1),
    "holder bad key": lambda s: s.acquire_lease("A", "h", {"a.b": 1}, ttl_ms=1),
    "now negative": lambda s: s.acquire_lease("A", "h", {}, ttl_ms=1, now_ms=-1),
    "steal not int": lambda s: s.acquire_lease("A", "h", {}, ttl_ms=1, steal_epoch="1"),
    "renew empty account": lambda s: s.renew_lease("", "h", 1, ttl_ms=1),
    "renew empty holder": lambda s: s.renew_lease("A", "", 1, ttl_ms=1),
    "renew ttl zero": lambda s: s.renew_lease("A", "h", 1, ttl_ms=0),
    "renew epoch str": lambda s: s.renew_lease("A", "h", "1", ttl_ms=1),
    "release empty holder": lambda s: s.release_lease("A", "", 1),
    "release epoch None": lambda s: s.release_lease("A", "h", None),
    "get empty account": lambda s: s.get_lease(""),
}


@pytest.mark.parametrize("name", sorted(BAD_CALLS))
def test_bad_arguments_raise_value_error_and_change_nothing(store, name):
    held, _ = store.acquire_lease("A", "h", HOLDER, ttl_ms=1_000, now_ms=1)
    with pytest.raises(ValueError):
        BAD_CALLS[name](store)
    assert store.list_leases() == [held]


def test_closed_store_raises_store_unavailable(store):
    store.acquire_lease("A", "h", HOLDER, ttl_ms=1_000, now_ms=1)
    store.close()
    for call in (lambda: store.get_lease("A"), store.list_leases,
                 lambda: store.acquire_lease("A", "h", HOLDER, ttl_ms=1_000),
                 lambda: store.renew_lease("A", "h", 1, ttl_ms=1_000),
                 lambda: store.release_lease("A", "h", 1)):
        with pytest.raises(StoreUnavailable):
            call()


# -- property: a random history against an independent model -----------------------------
HOLDERS = ["h0", "h1", "h2"]
OPS = st.lists(st.tuples(
    st.sampled_from(["acquire", "acquire", "renew", "release", "steal"]),
    st.sampled_from(HOLDERS),
    st.integers(0, 300),            # clock advance, ms (0: same instant)
    st.integers(1, 250),            # ttl_ms
    st.sampled_from(["current", "mine", "other"])),  # which epoch renew/release/steal use
    min_size=1, max_size=30)


def _model_acquire(cur, h, now, ttl, steal):
    if cur is not None:
        same = cur["holder_id"] == h and cur["expires_ms"] != 0
        if not (same or cur["expires_ms"] <= now or steal == cur["epoch"]):
            return cur, False
        if same:
            return {**cur, "renewed_ms": now, "expires_ms": now + ttl}, True
    epoch = 1 if cur is None else cur["epoch"] + 1
    return {"account": None, "holder_id": h, "holder": {"id": h}, "epoch": epoch,
            "since_ms": now, "renewed_ms": now, "expires_ms": now + ttl}, True


@settings(max_examples=60, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
@given(ops=OPS, start=st.integers(0, 10**12))
def test_random_history_matches_model_and_epoch_never_decreases(store, ops, start):
    account = f"acc-{uuid.uuid4().hex}"  # the store outlives examples: one account each
    model, now, mine = None, start, {}
    owner_of_epoch: dict[int, str] = {}
    last_epoch = 0
    for op, h, dt, ttl, which in ops:
        now += dt
        epoch = {"current": (model or {}).get("epoch", 1), "mine": mine.get(h, 1),
                 "other": (model or {}).get("epoch", 1) + 1}[which]
        if op in ("acquire", "steal"):
            steal = epoch if op == "steal" else None
            got, ok = store.acquire_lease(account, h, {"id": h}, ttl_ms=ttl, now_ms=now,
                                          steal_epoch=steal)
            want, want_ok = _model_acquire(model, h, now, ttl, steal)
            want = {**want, "account": account}
            assert (got, ok) == (want, want_ok), (op, h, now, steal)
            model = want
            if ok:
                mine[h] = got["epoch"]
        else:
            valid = (model is not None and model["holder_id"] == h and model["epoch"] == epoch
                     and model["expires_ms"] != 0)
            if op == "renew":
                got = store.renew_lease(account, h, epoch, ttl_ms=ttl, now_ms=now)
                if valid:
                    model = {**model, "renewed_ms": now, "expires_ms": now + ttl}
                assert got == (model if valid else None), (op, h, now, epoch)
            else:
                assert store.release_lease(account, h, epoch) is valid, (op, h, epoch)
                if valid:
                    model = {**model, "expires_ms": 0}
        stored = store.get_lease(account)
        assert stored == model
        if stored is not None:
            assert stored["epoch"] >= last_epoch  # fencing token never goes back
            last_epoch = stored["epoch"]
            # one epoch, one holder: two tenures never share a fencing token
            assert owner_of_epoch.setdefault(stored["epoch"], stored["holder_id"]) \
                == stored["holder_id"]


# -- MongoDB races, injected between the read and the conditional write -----------------
def _mongo_pair() -> tuple[MongoStore, MongoStore]:
    client = mongomock.MongoClient()
    a, b = MongoStore(client=client, db_name="lease"), MongoStore(client=client, db_name="lease")
    a.ensure_indexes()
    return a, b


def _race_after_first_read(monkeypatch, store: MongoStore, meanwhile, *, hide: bool) -> None:
    """Make ``store``'s first lease read return what it saw *before* ``meanwhile`` ran
    (None if ``hide``), as if another host wrote between our read and our write."""
    real = store._find_lease
    state = {"first": True}

    def racing(account):
        if not state["first"]:
            return real(account)
        state["first"] = False
        seen = None if hide else real(account)
        meanwhile()
        return seen
    monkeypatch.setattr(store, "_find_lease", racing)


def test_mongo_two_first_acquires_loser_gets_winner(monkeypatch):
    a, b = _mongo_pair()
    _race_after_first_read(monkeypatch, b, lambda: a.acquire_lease(
        "A", "h1", HOLDER, ttl_ms=10_000, now_ms=1_000), hide=True)
    got, ok = b.acquire_lease("A", "h2", OTHER, ttl_ms=10_000, now_ms=1_000)
    assert ok is False
    assert_lease(got, "h1", 1, 1_000, 1_000, 11_000)
    assert a.list_leases() == [got]


def test_mongo_first_acquire_racing_its_own_twin_succeeds(monkeypatch):
    a, b = _mongo_pair()
    _race_after_first_read(monkeypatch, b, lambda: a.acquire_lease(
        "A", "h1", HOLDER, ttl_ms=10_000, now_ms=1_000), hide=True)
    got, ok = b.acquire_lease("A", "h1", HOLDER, ttl_ms=10_000, now_ms=1_500)
    assert ok is True
    assert_lease(got, "h1", 1, 1_000, 1_500, 11_500)


def test_mongo_expiry_takeover_is_fenced_by_epoch(monkeypatch):
    """b judged epoch 1 expired; meanwhile a took it (epoch 2) with a slower clock, so the
    new lease also looks expired to b. b must end at epoch 3, never write a second
    epoch 2 for another holder."""
    a, b = _mongo_pair()
    a.acquire_lease("A", "old", HOLDER, ttl_ms=100, now_ms=100)
    _race_after_first_read(monkeypatch, b, lambda: a.acquire_lease(
        "A", "h1", HOLDER, ttl_ms=50, now_ms=300), hide=False)
    got, ok = b.acquire_lease("A", "h2", OTHER, ttl_ms=100, now_ms=1_000)
    assert ok is True
    assert_lease(got, "h2", 3, 1_000, 1_000, 1_100, holder=OTHER)
    assert a.renew_lease("A", "h1", 2, ttl_ms=100, now_ms=1_001) is None


def test_mongo_expiry_takeover_loses_to_a_valid_new_lease(monkeypatch):
    a, b = _mongo_pair()
    a.acquire_lease("A", "old", HOLDER, ttl_ms=100, now_ms=100)
    _race_after_first_read(monkeypatch, b, lambda: a.acquire_lease(
        "A", "h1", HOLDER, ttl_ms=10_000, now_ms=1_000), hide=False)
    got, ok = b.acquire_lease("A", "h2", OTHER, ttl_ms=100, now_ms=1_000)
    assert ok is False
    assert_lease(got, "h1", 2, 1_000, 1_000, 11_000)


def test_mongo_two_thieves_one_winner(monkeypatch):
    a, b = _mongo_pair()
    a.acquire_lease("A", "dead", HOLDER, ttl_ms=60_000, now_ms=100)
    _race_after_first_read(monkeypatch, b, lambda: a.acquire_lease(
        "A", "h1", HOLDER, ttl_ms=60_000, now_ms=200, steal_epoch=1), hide=False)
    got, ok = b.acquire_lease("A", "h2", OTHER, ttl_ms=60_000, now_ms=200, steal_epoch=1)
    assert ok is False
    assert_lease(got, "h1", 2, 200, 200, 60_200)


def test_mongo_same_holder_reacquire_loses_to_a_steal(monkeypatch):
    a, b = _mongo_pair()
    a.acquire_lease("A", "h1", HOLDER, ttl_ms=60_000, now_ms=100)
    _race_after_first_read(monkeypatch, b, lambda: a.acquire_lease(
        "A", "h2", OTHER, ttl_ms=60_000, now_ms=200, steal_epoch=1), hide=False)
    got, ok = b.acquire_lease("A", "h1", HOLDER, ttl_ms=60_000, now_ms=300)
    assert ok is False
    assert_lease(got, "h2", 2, 200, 200, 60_200, holder=OTHER)


def test_mongo_lease_index_is_unique_on_account():
    a, _ = _mongo_pair()
    info = a._db.leases.index_information()
    assert info["account_unique"]["unique"] is True
    assert info["account_unique"]["key"] == [("account", 1)]
