"""The msgspec fast path (messaging/fastwire.py) agrees with the stdlib validator.

Whatever the fast path accepts, the stdlib validator accepts too and builds the very same
message (compared with == and by re-encoding, so 2 vs 2.0 is caught); whatever it refuses
goes to the stdlib validator, which gives the reason. Checked on every sample, every
malformation of test_bus_schema and fuzzed payloads.
"""
from __future__ import annotations

import copy
import json

import pytest
from hypothesis import given
from hypothesis import strategies as st

from messaging import schema
from messaging.codec import encode
from messaging.fastwire import fast_from_payload
from messaging.schema import MalformedMessage, decode, from_payload, parse_json
from tests.messaging.test_bus_schema import BAD, FUZZ, SAMPLES, _apply, _mutations, json_values


def _slow(payload: bytes):
    try:
        return from_payload(parse_json(payload))
    except MalformedMessage:
        return None


def _agree(payload: bytes) -> None:
    fast = fast_from_payload(payload)
    if fast is None:
        return  # the stdlib validator decides: same behaviour as before by construction
    slow = _slow(payload)
    assert slow is not None, f"fast path accepted what the validator refuses: {payload[:200]!r}"
    assert fast == slow and type(fast) is type(slow)
    assert encode(fast) == encode(slow)


@pytest.mark.parametrize("msg", SAMPLES, ids=lambda m: m.kind)
def test_every_sample_takes_the_fast_path_with_the_same_result(msg):
    payload = encode(msg)[1]
    assert fast_from_payload(payload) == msg
    _agree(payload)


@pytest.mark.parametrize("frames", [f for f in BAD.values() if isinstance(f, list) and len(f) == 2
                                    and isinstance(f[1], bytes)], ids=lambda f: str(len(f[1])))
def test_no_malformation_is_accepted_by_the_fast_path(frames):
    _agree(frames[1])


def test_a_valid_message_never_runs_the_stdlib_validator(monkeypatch):
    def boom(_d):
        raise AssertionError("slow path used")

    monkeypatch.setattr(schema, "from_payload", boom)
    for msg in SAMPLES:
        assert decode(encode(msg)) == msg


def test_a_refused_message_keeps_the_stdlib_reason():
    payload = json.loads(encode(SAMPLES[0])[1])
    payload["positions"][0]["volume"] = -0.1
    with pytest.raises(MalformedMessage, match=r"snapshot.positions\[0\].volume: volume must be > 0, got -0.1"):
        decode([b"pos.m1", json.dumps(payload).encode()])


@FUZZ
@given(st.integers(0, len(SAMPLES) - 1), st.data())
def test_fuzz_mutations_agree(i, data):
    base = json.loads(encode(SAMPLES[i])[1])
    d = _apply(base, data.draw(_mutations(base)))
    for key in ("positions", "orders"):
        if isinstance(d.get(key), list) and d[key] and isinstance(d[key][0], dict) and d[key][0]:
            d[key][0] = _apply(d[key][0], data.draw(_mutations(d[key][0])))
    if isinstance(d.get("upserts"), dict):
        ups = copy.deepcopy(d["upserts"])
        for key in ("positions", "orders"):
            if isinstance(ups.get(key), list) and ups[key] and isinstance(ups[key][0], dict):
                ups[key][0] = _apply(ups[key][0], data.draw(_mutations(ups[key][0])))
        d["upserts"] = ups
    _agree(json.dumps(d).encode())


@FUZZ
@given(json_values)
def test_fuzz_random_json_agrees(value):
    _agree(json.dumps(value).encode())


@FUZZ
@given(st.integers(0, len(SAMPLES) - 1), st.integers(0, 400), st.binary(min_size=1, max_size=3))
def test_fuzz_corrupted_bytes_agree(i, pos, junk):
    payload = encode(SAMPLES[i])[1]
    pos %= len(payload)
    _agree(payload[:pos] + junk + payload[pos + len(junk):])
