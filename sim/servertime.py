"""Broker server time: UTC plus a fixed offset, optionally with EU or US DST.

MT5 writes times as the broker's server wall-clock *as if it were UTC* (reference §6).
Most brokers run EET (+2 winter / +3 summer, EU rules); "New York close" brokers use
+2/+3 switching on US dates. Transitions are cached per year so that converting a time
is a couple of comparisons (``advance`` runs 10×/s).
"""
from __future__ import annotations

import calendar
from datetime import datetime, timezone
from functools import lru_cache

HOUR_MS = 3_600_000
DST_RULES = ("none", "eu", "us")


def _last_sunday(year: int, month: int) -> int:
    last = calendar.monthrange(year, month)[1]
    wd = calendar.weekday(year, month, last)  # Monday=0 .. Sunday=6
    return last - (wd + 1) % 7


def _nth_sunday(year: int, month: int, n: int) -> int:
    first_wd = calendar.weekday(year, month, 1)
    first_sunday = 1 + (6 - first_wd) % 7
    return first_sunday + 7 * (n - 1)


def _utc_ms(year: int, month: int, day: int, hour: int) -> int:
    return calendar.timegm((year, month, day, hour, 0, 0)) * 1000


@lru_cache(maxsize=256)
def dst_window_utc_ms(rule: str, year: int) -> tuple[int, int]:
    """(start, end) of summer time in UTC ms for ``year``; (0, 0) when no DST."""
    if rule == "eu":  # last Sunday of March / October, 01:00 UTC
        return (_utc_ms(year, 3, _last_sunday(year, 3), 1), _utc_ms(year, 10, _last_sunday(year, 10), 1))
    if rule == "us":  # 2nd Sunday of March 02:00 EST (07:00 UTC) / 1st Sunday of Nov 02:00 EDT (06:00 UTC)
        return (_utc_ms(year, 3, _nth_sunday(year, 3, 2), 7), _utc_ms(year, 11, _nth_sunday(year, 11, 1), 6))
    return (0, 0)


class ServerClock:
    """Converts between UTC ms and a broker's server-time ms."""

    __slots__ = ("base_ms", "rule")

    def __init__(self, utc_offset_hours: float, dst: str = "none") -> None:
        if dst not in DST_RULES:
            raise ValueError(f"dst must be one of {DST_RULES}, got {dst!r}")
        self.base_ms = int(round(utc_offset_hours * HOUR_MS))
        self.rule = dst

    def offset_ms(self, utc_ms: int) -> int:
        if self.rule == "none":
            return self.base_ms
        year = datetime.fromtimestamp(utc_ms / 1000, tz=timezone.utc).year
        start, end = dst_window_utc_ms(self.rule, year)
        return self.base_ms + (HOUR_MS if start <= utc_ms < end else 0)

    def to_server(self, utc_ms: int) -> int:
        return utc_ms + self.offset_ms(utc_ms)

    def to_utc(self, server_ms: int) -> int:
        """Inverse of ``to_server`` (ambiguous hour at the autumn switch -> earlier one)."""
        for extra in (HOUR_MS, 0):
            guess = server_ms - self.base_ms - extra
            if self.to_server(guess) == server_ms:
                return guess
        return server_ms - self.base_ms  # spring-forward gap: not a valid wall time

    def describe(self) -> str:
        hours = self.base_ms / HOUR_MS
        return f"UTC{hours:+g}" + ("" if self.rule == "none" else f" ({self.rule.upper()} DST)")
