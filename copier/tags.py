"""The slave order comment that carries the master ticket ("never twice").

Format: ``"cH" + master_hash(name) + ":" + base36(ticket)``, e.g. ``cH1x9k:2n9c``.
``master_hash`` is 4 base36 chars of SHA-1 (1.7 M values, collisions between a fleet's
masters are refused by ``validate_accounts``); a 63-bit ticket needs at most 13 chars, so a
tag is at most 20 ASCII chars, under the 27-char budget every MT5 build accepts.

Brokers sometimes append to or rewrite comments (``"[sl 1.0712]"``); ``parse_tag`` only
reads the prefix, so an appended suffix is harmless. A fully rewritten comment loses the
tag, which is why links also keep the slave position identifier.
"""
from __future__ import annotations

import hashlib
import re
from functools import lru_cache

PREFIX = "cH"
HASH_LEN = 4
MAX_TAG_LEN = 27
_DIGITS = "0123456789abcdefghijklmnopqrstuvwxyz"
_TAG_RE = re.compile(r"^cH([0-9a-z]{4}):([0-9a-z]{1,13})(?![0-9a-z])")


def to_base36(n: int) -> str:
    if n < 0:
        raise ValueError("base36 of a negative number")
    if n == 0:
        return "0"
    out = []
    while n:
        n, r = divmod(n, 36)
        out.append(_DIGITS[r])
    return "".join(reversed(out))


@lru_cache(maxsize=4096)
def master_hash(name: str) -> str:
    """4 base36 chars identifying a master by name (stable across runs and hosts); cached:
    every pass maps its masters' hashes and every order's comment carries one."""
    digest = int.from_bytes(hashlib.sha1(name.encode("utf-8")).digest()[:8], "big")
    return to_base36(digest % (36**HASH_LEN)).rjust(HASH_LEN, "0")


def make_tag(master_name: str, master_ticket: int) -> str:
    tag = f"{PREFIX}{master_hash(master_name)}:{to_base36(int(master_ticket))}"
    if len(tag) > MAX_TAG_LEN:  # only reachable for tickets beyond 64 bits
        raise ValueError(f"master ticket {master_ticket} too large for a comment tag")
    return tag


def parse_tag(comment: str | None) -> tuple[str, int] | None:
    """``(master_hash, master_ticket)`` from a slave comment, or None if it is not ours."""
    if not comment:
        return None
    m = _TAG_RE.match(comment)
    if m is None:
        return None
    return m.group(1), int(m.group(2), 36)
