"""Bytes on the wire: ``encode(message) -> [topic, payload]`` and ``decode(frames)``.

JSON via the stdlib (compact separators, ``allow_nan=False``) keeps the bus readable
with any ZeroMQ tool and needs no extra dependency; see docs/benchmarks.md for what it
costs against the latency goal.
"""
from __future__ import annotations

import json

from messaging.schema import MAX_MESSAGE_BYTES, MalformedMessage, Message, decode, to_payload

__all__ = ["encode", "decode", "MalformedMessage"]

_dumps = json.JSONEncoder(separators=(",", ":"), allow_nan=False, ensure_ascii=False).encode


def encode(message: Message, *, check: bool = False) -> list[bytes]:
    """Serialise ``message``; raise MalformedMessage if a receiver would refuse it.

    Non-finite numbers and oversize payloads are always refused here, so the bug shows
    at the sender. ``check=True`` additionally runs the receiver's full validation
    (decode) on the result: senders use it to fail loudly instead of publishing data
    that every subscriber would silently drop.
    """
    try:
        topic = message.topic.encode("ascii")
        payload = _dumps(to_payload(message)).encode("utf-8")
    except (ValueError, TypeError) as exc:  # NaN/inf, non-ASCII name, non-JSON value
        raise MalformedMessage(f"cannot encode {message.kind}: {exc}") from None
    if len(payload) > MAX_MESSAGE_BYTES:
        raise MalformedMessage(f"{message.kind} payload of {len(payload)} bytes exceeds {MAX_MESSAGE_BYTES}")
    frames = [topic, payload]
    if check:
        decode(frames)
    return frames
