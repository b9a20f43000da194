"""Schema and codec: round trips, refusal of every kind of malformation, fuzzing."""
from __future__ import annotations

import copy
import json

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from copier.models import AccountMetrics, PendingOrder, Position
from messaging.codec import encode
from messaging.schema import (
    MAX_MESSAGE_BYTES,
    Control,
    Delta,
    Event,
    MalformedMessage,
    Snapshot,
    Status,
    decode,
    is_valid_name,
)

POS = Position(ticket=11, identifier=10, symbol="EURUSD", side="BUY", volume=0.5,
               price_open=1.08512, sl=1.08, tp=1.09, time_msc=1_700_000_000_000,
               time_update_msc=1_700_000_000_500, magic=7, comment="x", price_current=1.0852,
               profit=3.5)
ORD = PendingOrder(ticket=21, symbol="XAUUSD", type="SELL_STOP_LIMIT", volume=1.0,
                   price_open=1900.5, price_stoplimit=1901.0, sl=1910.0, tp=1880.0,
                   time_setup_msc=5, magic=1, comment="")
MET = AccountMetrics(login=123, balance=1000.0, equity=1010.5, margin=20.0,
                     margin_free=990.5, profit=10.5, currency="EUR", leverage=500,
                     server_time_msc=99)

SAMPLES = [
    Snapshot(master="m1", epoch="e1", seq=3, ts_ms=1, positions=(POS,), orders=(ORD,), metrics=MET),
    Snapshot(master="m1", epoch="e1", seq=0, ts_ms=0),
    Delta(master="m-2", epoch="e", seq=4, ts_ms=2, upsert_positions=(POS,), upsert_orders=(ORD,),
          remove_positions=(99,), remove_orders=(98, 97)),
    Delta(master="m_3", epoch="e", seq=5, ts_ms=2),
    Status(node="s1", role="slave", state="running", pid=42, ts_ms=3, account=MET, error=None,
           info={"lag_ms": 3, "nested": {"a": [1, 2.5, None, True, "ü"]}}),
    Status(node="px", role="proxy", state="up", pid=0, ts_ms=3, error="boom"),
    Event(node="s1", ts_ms=4, event="copy.opened", level="warning", data={"ticket": 5}),
    Control(target="all", command="pause", sender="cli", ts_ms=5, args={}),
    Control(target="m1", command="snapshot", sender="s1", ts_ms=5, args={"why": "gap"}),
]


@pytest.mark.parametrize("msg", SAMPLES, ids=lambda m: m.kind)
def test_round_trip_every_kind(msg):
    frames = encode(msg)
    assert frames[0] == msg.topic.encode()
    back = decode(frames)
    assert back == msg
    assert type(back) is type(msg)
    assert encode(back) == frames


def test_decoded_positions_are_typed_models():
    msg = decode(encode(SAMPLES[0]))
    assert isinstance(msg.positions[0], Position)
    assert isinstance(msg.orders[0], PendingOrder)
    assert isinstance(msg.metrics, AccountMetrics)


def test_integers_on_the_wire_are_accepted_as_prices():
    topic, payload = encode(SAMPLES[0])
    d = json.loads(payload)
    d["positions"][0]["price_open"] = 2
    msg = decode([topic, json.dumps(d).encode()])
    assert msg.positions[0].price_open == 2.0 and isinstance(msg.positions[0].price_open, float)


def test_optional_model_fields_may_be_absent_and_unknown_keys_ignored():
    topic, payload = encode(SAMPLES[0])
    d = json.loads(payload)
    for k in ("sl", "tp", "comment", "profit"):
        del d["positions"][0][k]
    d["positions"][0]["future_field"] = {"x": 1}
    d["future_top_level"] = 1
    msg = decode([topic, json.dumps(d).encode()])
    assert msg.positions[0].sl == 0.0 and msg.positions[0].comment == ""


# ----------------------------------------------------------------- malformations

def _payload(i: int) -> dict:
    return json.loads(encode(SAMPLES[i])[1])


def _mut(i, fn, topic=None):
    d = _payload(i)
    fn(d)
    return [topic or SAMPLES[i].topic.encode(), json.dumps(d).encode()]


def _set(path, value):
    def fn(d):
        cur = d
        for p in path[:-1]:
            cur = cur[p]
        cur[path[-1]] = value
    return fn


def _del(path):
    def fn(d):
        cur = d
        for p in path[:-1]:
            cur = cur[p]
        del cur[path[-1]]
    return fn


GOOD_TOPIC = b"pos.m1"
GOOD_SNAP = encode(SAMPLES[0])[1]

BAD = {
    "one frame": [GOOD_TOPIC],
    "three frames": [GOOD_TOPIC, GOOD_SNAP, b""],
    "not a list": b"pos.m1",
    "frame not bytes": [GOOD_TOPIC, "text"],
    "topic of other master": [b"pos.m2", GOOD_SNAP],
    "topic of other kind": [b"status.m1", GOOD_SNAP],
    "non-ascii topic": ["pos.m\u00e9".encode(), GOOD_SNAP],
    "bad json": [GOOD_TOPIC, b"{not json"],
    "not utf8": [GOOD_TOPIC, b"\xff\xfe{}"],
    "json array": [GOOD_TOPIC, b"[1,2]"],
    "NaN literal": [GOOD_TOPIC, GOOD_SNAP.replace(b'"price_open":1.08512', b'"price_open":NaN')],
    "Infinity literal": [GOOD_TOPIC, GOOD_SNAP.replace(b'"sl":1.08', b'"sl":-Infinity')],
    "overflowing float": [GOOD_TOPIC, GOOD_SNAP.replace(b'"tp":1.09', b'"tp":1e999')],
    "huge int as price": [GOOD_TOPIC, GOOD_SNAP.replace(b'"tp":1.09', b'"tp":' + b"9" * 400)],
    "oversize": [GOOD_TOPIC, b" " * (MAX_MESSAGE_BYTES + 1)],
    "deep nesting": [b"event.s1", b'{"v":3,"kind":"event","node":"s1","ts_ms":1,"event":"x",'
                                  b'"level":"info","data":{"a":' + b"[" * 100_000 + b"]" * 100_000 + b"}}"],
    "unknown version": _mut(0, _set(["v"], 4)),
    "old version 1 (before exposure sizing)": _mut(0, _set(["v"], 1)),
    "old version 2 (before pending-order expiry)": _mut(0, _set(["v"], 2)),
    "version as string": _mut(0, _set(["v"], "1")),
    "missing version": _mut(0, _del(["v"])),
    "unknown kind": _mut(0, _set(["kind"], "gossip")),
    "missing seq": _mut(0, _del(["seq"])),
    "negative seq": _mut(0, _set(["seq"], -1)),
    "bool seq": _mut(0, _set(["seq"], True)),
    "float seq": _mut(0, _set(["seq"], 1.0)),
    "empty epoch": _mut(0, _set(["epoch"], "")),
    "master with dot": _mut(0, _set(["master"], "a.b"), topic=b"pos.a.b"),
    "master named all": _mut(0, _set(["master"], "all"), topic=b"pos.all"),
    "positions not list": _mut(0, _set(["positions"], {})),
    "position not object": _mut(0, _set(["positions"], [1])),
    "position missing ticket": _mut(0, _del(["positions", 0, "ticket"])),
    "position missing symbol": _mut(0, _del(["positions", 0, "symbol"])),
    "position empty symbol": _mut(0, _set(["positions", 0, "symbol"], "")),
    "position bad side": _mut(0, _set(["positions", 0, "side"], "LONG")),
    "position negative volume": _mut(0, _set(["positions", 0, "volume"], -0.1)),
    "position zero volume": _mut(0, _set(["positions", 0, "volume"], 0)),
    "position volume string": _mut(0, _set(["positions", 0, "volume"], "0.1")),
    "position ticket zero": _mut(0, _set(["positions", 0, "ticket"], 0)),
    "position magic float": _mut(0, _set(["positions", 0, "magic"], 1.5)),
    "position comment number": _mut(0, _set(["positions", 0, "comment"], 5)),
    "position price null": _mut(0, _set(["positions", 0, "price_open"], None)),
    "int beyond 64 bits": _mut(0, _set(["positions", 0, "magic"], 1 << 70)),
    "duplicate identifiers": _mut(0, lambda d: d["positions"].append(d["positions"][0])),
    "order bad type": _mut(0, _set(["orders", 0, "type"], "BUY")),
    "order without type_time (v3)": _mut(0, _del(["orders", 0, "type_time"])),
    "order without expiration_ms (v3)": _mut(0, _del(["orders", 0, "expiration_ms"])),
    "order bad type_time": _mut(0, _set(["orders", 0, "type_time"], "GTD")),
    "order negative expiration": _mut(0, _set(["orders", 0, "expiration_ms"], -1)),
    "DAY order without its instant": _mut(0, _set(["orders", 0, "type_time"], "DAY")),
    "order negative volume": _mut(0, _set(["orders", 0, "volume"], -1)),
    "metrics wrong type": _mut(0, _set(["metrics"], [1])),
    "metrics missing equity": _mut(0, _del(["metrics", "equity"])),
    "snapshot missing metrics": _mut(0, _del(["metrics"])),
    "delta missing upserts": _mut(2, _del(["upserts"])),
    "delta removes not ints": _mut(2, _set(["removes", "positions"], ["10"])),
    "delta upsert and remove same": _mut(2, _set(["removes", "positions"], [10])),
    "delta order upsert and remove": _mut(2, _set(["removes", "orders"], [21])),
    "delta duplicate removes": _mut(2, _set(["removes", "orders"], [1, 1])),
    "status bad role": _mut(4, _set(["role"], "boss")),
    "status missing pid": _mut(4, _del(["pid"])),
    "status info not object": _mut(4, _set(["info"], [])),
    "status error number": _mut(4, _set(["error"], 3)),
    "status empty state": _mut(4, _set(["state"], "")),
    "event bad level": _mut(6, _set(["level"], "loud")),
    "event empty name": _mut(6, _set(["event"], "")),
    "event data null": _mut(6, _set(["data"], None)),
    "ctl unknown command": _mut(7, _set(["command"], "rm -rf")),
    "ctl topic mismatch": _mut(7, _set(["target"], "s1")),
    "ctl missing sender": _mut(7, _del(["sender"])),
    "ctl args list": _mut(7, _set(["args"], [])),
}


@pytest.mark.parametrize("frames", list(BAD.values()), ids=list(BAD.keys()))
def test_malformed_is_refused(frames):
    with pytest.raises(MalformedMessage) as info:
        decode(frames)
    assert info.value.reason


def test_encode_refuses_what_receivers_would_drop():
    bad = Snapshot(master="m1", epoch="e", seq=1, ts_ms=0,
                   positions=(Position(1, 1, "EURUSD", "BUY", 0.1, float("nan")),))
    with pytest.raises(MalformedMessage):
        encode(bad)
    neg = Snapshot(master="m1", epoch="e", seq=1, ts_ms=0,
                   positions=(Position(1, 1, "EURUSD", "BUY", -0.1, 1.0),))
    encode(neg)  # cheap path only refuses what JSON cannot carry ...
    with pytest.raises(MalformedMessage):
        encode(neg, check=True)  # ... the checked path refuses everything decode would
    with pytest.raises(MalformedMessage):
        encode(Event(node="s\u00e9", ts_ms=0, event="x"))


def test_names():
    assert is_valid_name("master-1_A")
    for bad in ("", "a.b", "a b", "all", "x" * 65, None, 3, "é"):
        assert not is_valid_name(bad)


# ------------------------------------------------------------------------ fuzzing

json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=True, allow_infinity=True)
    | st.text(max_size=8),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4),
    max_leaves=20,
)


def _mutations(base: dict) -> st.SearchStrategy:
    """A valid payload with one random key replaced, removed or added."""
    keys = st.sampled_from(sorted(base))
    return st.one_of(
        st.tuples(st.just("set"), keys, json_values),
        st.tuples(st.just("del"), keys, st.none()),
        st.tuples(st.just("set"), st.text(max_size=6), json_values),
    )


def _apply(base: dict, op) -> dict:
    d = copy.deepcopy(base)
    action, key, value = op
    if action == "del":
        d.pop(key, None)
    else:
        d[key] = value
    return d


def _check_decode(frames):
    try:
        msg = decode(frames)
    except MalformedMessage:
        return
    again = encode(msg)
    assert decode(again) == msg
    assert encode(decode(again)) == again


FUZZ = settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])


@FUZZ
@given(st.lists(st.binary(max_size=64), max_size=4))
def test_fuzz_random_frames(frames):
    _check_decode(frames)


@FUZZ
@given(st.sampled_from([s.topic.encode() for s in SAMPLES] + [b"pos.m1", b"x"]), json_values)
def test_fuzz_random_json(topic, value):
    _check_decode([topic, json.dumps(value).encode()])


@FUZZ
@given(st.integers(0, len(SAMPLES) - 1), st.data())
def test_fuzz_mutated_valid_payloads(i, data):
    base = json.loads(encode(SAMPLES[i])[1])
    d = _apply(base, data.draw(_mutations(base)))
    # also mutate inside a nested model when there is one
    if data.draw(st.booleans()):
        for key in ("positions", "orders"):
            if isinstance(d.get(key), list) and d[key] and isinstance(d[key][0], dict) and d[key][0]:
                d[key][0] = _apply(d[key][0], data.draw(_mutations(d[key][0])))
    _check_decode([SAMPLES[i].topic.encode(), json.dumps(d).encode()])


@FUZZ
@given(st.integers(0, len(SAMPLES) - 1), st.integers(0, 400), st.binary(min_size=1, max_size=3))
def test_fuzz_corrupted_bytes(i, pos, junk):
    topic, payload = encode(SAMPLES[i])
    pos %= len(payload)
    _check_decode([topic, payload[:pos] + junk + payload[pos + len(junk):]])


@FUZZ
@given(st.sampled_from(SAMPLES))
def test_property_encode_decode_stable(msg):
    frames = encode(msg)
    assert encode(decode(frames)) == frames
