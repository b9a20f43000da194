"""Deep price history: M1 bars before the live history, generated from the seed on demand.

A world declares ``history_days`` (``[world]``); each underlying then has that many days of
M1 history before the live history starts (``start - history_hours``), so strategy code that
reads months of bars (``copy_rates_from(sym, TIMEFRAME_H1, datetime(2023, 10, 5), 10)``)
gets them. Nothing is stored up front: one random number per day fixes the daily path
(a geometric random walk backwards from the underlying's start price, so the deep history
joins the live one without a jump), and a day's 1,440 minutes are a Brownian bridge
between its two anchors drawn from a generator seeded by (seed, underlying, day). A day
therefore always comes out the same, whichever query asks for it and in whatever order,
and only the days a query touches are computed (a small LRU cache keeps recent ones).

Units: times are UTC epoch seconds here; ``Feed`` (sim/market.py) maps them to broker server
time, applies the symbol's offset/rounding and its sessions. ``volatility`` is the
underlying's relative standard deviation per square-root hour, as for the live walk.
"""
from __future__ import annotations

import hashlib
import math
from collections import OrderedDict

import numpy as np

DAY = 86_400
MINUTES = 1_440
CACHE_DAYS = 96  # per underlying: ~5.5 MB of float64 columns


def _generator(seed: int, name: str, key: object) -> np.random.Generator:
    digest = hashlib.sha256(f"copyhub-sim-deep:{seed}:{name}:{key}".encode()).digest()
    return np.random.default_rng(int.from_bytes(digest[:16], "little"))


class DeepHistory:
    """Deterministic M1 history of one underlying over ``[start, end)`` (UTC seconds)."""

    def __init__(self, seed: int, name: str, price: float, volatility: float, end_utc_s: int,
                 days: float) -> None:
        self.seed = seed
        self.name = name
        self.end = int(end_utc_s) - int(end_utc_s) % 60
        self.days = int(math.ceil(days))
        self.start = self.end - self.days * DAY
        self.volatility = float(volatility)
        z = _generator(seed, name, "anchors").standard_normal(self.days)
        step = self.volatility * math.sqrt(24.0)  # one day of the walk
        # log price at end - k days (k = 0 .. days), walking backwards from the start price
        self.log_anchor = math.log(price) - np.concatenate(([0.0], np.cumsum(step * z)))
        self._cache: OrderedDict[int, np.ndarray] = OrderedDict()

    def _days(self, ks: list[int]) -> np.ndarray:
        """(len(ks), 5, 1440) array: open, high, low, close, tick_volume of each minute of
        day ``k`` (which covers ``[end - (k+1) days, end - k days)``), for each k in ``ks``."""
        out = np.empty((len(ks), 5, MINUTES))
        missing = []
        for i, k in enumerate(ks):  # cached days first: remembering new ones may evict them
            day = self._cache.get(k)
            if day is None:
                missing.append(i)
            else:
                self._cache.move_to_end(k)
                out[i] = day
        if missing:  # one generator per day (so a day never depends on the query), math batched
            z = np.empty((len(missing), 3, MINUTES))
            n = np.empty((len(missing), MINUTES))
            for j, i in enumerate(missing):
                rng = _generator(self.seed, self.name, ks[i])
                z[j] = rng.standard_normal((3, MINUTES))
                n[j] = rng.integers(12, 120, MINUTES)
            sd = self.volatility * math.sqrt(60.0 / 3600.0)  # one minute of the walk
            walk = np.zeros((len(missing), MINUTES + 1))
            np.cumsum(sd * z[:, 0], axis=1, out=walk[:, 1:])
            frac = np.arange(MINUTES + 1) / MINUTES
            kk = np.array([ks[i] for i in missing])
            a0 = self.log_anchor[kk + 1][:, None]  # a day's start is one day further back
            a1 = self.log_anchor[kk][:, None]
            path = np.exp(a0 + frac * (a1 - a0) + walk - frac * walk[:, -1:])
            o, c = path[:, :-1], path[:, 1:]
            h = np.maximum(o, c) * np.exp(np.abs(z[:, 1]) * sd * 0.5)
            lo = np.minimum(o, c) * np.exp(-np.abs(z[:, 2]) * sd * 0.5)
            fresh = np.stack((o, h, lo, c, n), axis=1)
            for j, i in enumerate(missing):
                out[i] = fresh[j]
                if j >= len(missing) - CACHE_DAYS:  # keep the newest of a big batch
                    self._remember(ks[i], fresh[j])
        return out

    def _remember(self, k: int, day: np.ndarray) -> None:
        self._cache[k] = day
        self._cache.move_to_end(k)
        if len(self._cache) > CACHE_DAYS:
            self._cache.popitem(last=False)

    def m1(self, lo_utc_s: int, hi_utc_s: int) -> tuple[np.ndarray, ...]:
        """M1 bars with open time in ``[lo, hi)`` (clipped to the covered span), oldest first:
        (time UTC s, open, high, low, close, tick_volume) of the underlying's price."""
        lo = max(int(lo_utc_s), self.start)
        hi = min(int(hi_utc_s), self.end)
        if hi <= lo:
            e = np.zeros(0)
            return np.zeros(0, dtype="i8"), e, e, e, e, np.zeros(0, dtype="u8")
        k_new = (self.end - hi) // DAY
        k_old = (self.end - lo - 1) // DAY
        ks = list(range(k_old, k_new - 1, -1))  # oldest day first
        days = self._days(ks)
        t0 = self.end - (k_old + 1) * DAY
        t = t0 + 60 * np.arange(len(ks) * MINUTES, dtype="i8")
        a = int(np.searchsorted(t, lo))
        b = int(np.searchsorted(t, hi))
        o, h, low, c, n = (days[:, i, :].reshape(-1)[a:b] for i in range(5))
        return t[a:b], o, h, low, c, n.astype("u8")
