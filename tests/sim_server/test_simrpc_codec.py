"""The wire codec round-trips every value the MT5 surface produces or accepts."""
import math
from datetime import date, datetime, timedelta, timezone

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from sim.client import FAST_REPLY, CodecError, decode_reply, dumps, encode_reply, loads
from sim.records import RATES_DTYPE, RECORD_TYPES, TICKS_DTYPE


def rt(v):
    return loads(dumps(v))


def same(a, b):
    """Equality that also checks types all the way down (True != 1, tuple != list)."""
    if type(a) is not type(b):
        return False
    if isinstance(a, float):
        return (math.isnan(a) and math.isnan(b)) or (a == b and math.copysign(1, a) == math.copysign(1, b))
    if isinstance(a, np.ndarray):
        return a.dtype == b.dtype and a.shape == b.shape and a.tobytes() == b.tobytes()
    if isinstance(a, (list, tuple)):
        return len(a) == len(b) and all(same(x, y) for x, y in zip(a, b))
    if isinstance(a, dict):
        return list(a) == list(b) and all(same(a[k], b[k]) for k in a)
    return a == b


def make_record(name):
    cls = RECORD_TYPES[name]
    return cls(*[i if i % 3 else f"s{i}" for i in range(len(cls._fields))])


@pytest.mark.parametrize("name", sorted(RECORD_TYPES))
def test_every_record_type_round_trips_as_its_class(name):
    rec = make_record(name)
    back = rt(rec)
    assert type(back) is RECORD_TYPES[name]
    assert same(back, rec)


def test_nested_records_and_tuples_keep_their_types():
    req = RECORD_TYPES["TradeRequest"](*([1] * 16 + [0]))
    res = RECORD_TYPES["OrderSendResult"](10009, 5, 6, 0.1, 1.1, 1.0, 1.2, "Request executed", 0, 0, req)
    back = rt((res, [res], ()))
    assert same(back, (res, [res], ()))
    assert type(back[0].request) is RECORD_TYPES["TradeRequest"]


@pytest.mark.parametrize("dtype", [RATES_DTYPE, TICKS_DTYPE])
def test_structured_arrays_round_trip_bytes_and_dtype(dtype):
    arr = np.zeros(5, dtype=dtype)
    for i, f in enumerate(dtype.names):
        arr[f] = np.arange(5) * (i + 1)
    back = rt(arr)
    assert same(back, arr)
    back[0] = back[1]  # writeable like the engine's own arrays
    empty = np.zeros(0, dtype=dtype)
    assert same(rt(empty), empty)
    assert same(rt([arr, empty]), [arr, empty])


def test_datetimes_keep_naive_or_aware():
    naive = datetime(2024, 1, 2, 3, 4, 5, 678901)
    aware = datetime(2024, 1, 2, 3, 4, 5, tzinfo=timezone.utc)
    plus2 = datetime(2024, 1, 2, 3, 4, 5, tzinfo=timezone(timedelta(hours=2)))
    for d in (naive, aware, plus2, date(2024, 5, 6)):
        back = rt(d)
        assert back == d and type(back) is type(d)
        if isinstance(d, datetime):
            assert back.utcoffset() == d.utcoffset()


def test_dicts_with_reserved_or_non_str_keys_are_escaped():
    for d in ({"$t": [1]}, {"$n": "Tick", "v": []}, {1: "a", (2, 3): None}, {"a": {"$a": 1}}):
        assert same(rt(d), d)


def test_order_send_request_dict_round_trips():
    req = {"action": 1, "symbol": "EURUSD", "volume": 0.1, "type": 0, "price": 1.08765,
           "sl": 0.0, "tp": 1.1, "deviation": 20, "magic": 2**40, "comment": "x" * 40,
           "type_filling": 1, "type_time": 0, "expiration": datetime(2030, 1, 1)}
    assert same(rt(req), req)


def test_refuses_unknown_types_and_malformed_input():
    with pytest.raises(CodecError):
        dumps(object())
    with pytest.raises(CodecError):
        dumps(np.array([object()], dtype=object))
    for bad in ([b"{"], [b'{"$n":"Nope","v":[]}'], [b'{"$a":"<i8","s":[1],"i":1}'], []):
        with pytest.raises(CodecError):
            loads(bad)


def test_numpy_scalars_travel_as_python_values():
    assert same(rt([np.int64(3), np.float64(1.5), np.bool_(True)]), [3, 1.5, True])


scalars = st.one_of(
    st.none(), st.booleans(), st.integers(min_value=-2**70, max_value=2**70),
    st.floats(allow_nan=True, allow_infinity=True), st.text(max_size=20),
    st.datetimes(timezones=st.one_of(st.none(), st.just(timezone.utc))),
)
records = st.sampled_from(sorted(RECORD_TYPES)).flatmap(
    lambda n: st.lists(scalars, min_size=len(RECORD_TYPES[n]._fields),
                       max_size=len(RECORD_TYPES[n]._fields)).map(lambda v, n=n: RECORD_TYPES[n](*v)))
arrays = st.integers(0, 6).flatmap(
    lambda n: st.lists(st.integers(-2**62, 2**62), min_size=n, max_size=n).map(
        lambda xs: np.array([(x, x / 3, x % 7) for x in xs],
                            dtype=[("a", "<i8"), ("b", "<f8"), ("c", "<u4")]) if xs else
        np.zeros(0, dtype=[("a", "<i8"), ("b", "<f8"), ("c", "<u4")])))
values = st.recursive(
    st.one_of(scalars, records, arrays),
    lambda inner: st.one_of(
        st.lists(inner, max_size=4), st.lists(inner, max_size=4).map(tuple),
        st.dictionaries(st.one_of(st.text(max_size=5), st.integers()), inner, max_size=4)),
    max_leaves=20)


@settings(max_examples=300, deadline=None)
@given(values)
def test_codec_round_trips_any_value(v):
    assert same(rt(v), v)


# -- replies: flat records and tuples of them as msgpack, everything else as JSON ---------

def reply_rt(payload, err=(1, "Success")):
    rid, status, out, e, epoch = decode_reply(encode_reply(7, "ok", payload, err, "ep"))
    assert (rid, status, epoch) == (7, "ok", "ep") and same(e, err)
    return out


@pytest.mark.parametrize("name", sorted(RECORD_TYPES))
def test_a_record_reply_round_trips_as_its_class_one_or_many(name):
    rec = make_record(name)
    assert same(reply_rt(rec), rec)
    assert same(reply_rt((rec, rec, rec)), (rec, rec, rec))
    flat = name not in ("OrderSendResult", "OrderCheckResult")  # these hold a TradeRequest: JSON
    assert (encode_reply(7, "ok", rec, None, "ep")[0] == FAST_REPLY) is flat


def test_the_hot_replies_travel_as_msgpack_and_the_rest_as_json():
    pos = RECORD_TYPES["TradePosition"](*range(len(RECORD_TYPES["TradePosition"]._fields)))
    assert encode_reply(1, "ok", (pos,) * 100, (1, "Success"), "e")[0] == FAST_REPLY
    for payload in (None, (), True, 3, 1.5, "x", {"a": 1}, [pos], (pos, make_record("Tick"))):
        frames = encode_reply(1, "ok", payload, (1, "Success"), "e")
        assert frames[0] != FAST_REPLY and same(decode_reply(frames)[2], payload)
    assert encode_reply(1, "exc", pos, None, "e")[0] != FAST_REPLY  # an error's payload is never a record


def test_a_record_msgpack_cannot_carry_falls_back_to_json():
    tick = RECORD_TYPES["Tick"](2**70, float("nan"), 1.1, 0.0, 0, 1, 2, 0.0)  # int past 64 bits
    frames = encode_reply(1, "ok", tick, None, "e")
    assert frames[0] != FAST_REPLY and same(decode_reply(frames)[2], tick)


def test_malformed_msgpack_replies_are_codec_errors():
    good = encode_reply(1, "ok", make_record("Tick"), (1, "Success"), "e")
    for bad in ([FAST_REPLY], [FAST_REPLY, good[1]], [FAST_REPLY, b"\xc1", good[2]], [FAST_REPLY, good[1], b"\x93\x01"],
                [FAST_REPLY, good[1].replace(b"Tick", b"Nope"), good[2]], [*good, b"extra"],
                [FAST_REPLY, good[1], encode_reply(1, "ok", make_record("AccountInfo"), None, "e")[2]]):
        with pytest.raises(CodecError):
            decode_reply(bad)
    with pytest.raises(CodecError):
        decode_reply(dumps({"not": "a reply"}))


@settings(max_examples=300, deadline=None)
@given(st.one_of(values, st.lists(records, min_size=1, max_size=5).map(tuple)))
def test_any_reply_round_trips(v):
    assert same(reply_rt(v), v)
