"""Prices: one seeded random walk per underlying, quoted per broker symbol.

Each broker symbol's bid = underlying + offset, rounded to its tick size/digits;
ask = bid + spread * point. A symbol whose session is closed keeps its last quote (no
ticks), like a real feed over a weekend. Ticks and M1 bars are kept in fixed-size numpy
ring buffers (bounded memory, O(1) append) in broker server time; other timeframes are
aggregated from M1 bars on request. Before the live history, a world's ``history_days``
of M1 bars come from ``sim.deephistory`` (generated from the seed, on demand); the
``bars_*`` queries join both.
"""
from __future__ import annotations

import math
import random
from datetime import datetime, timezone

import numpy as np

from . import constants as C
from .deephistory import DAY, DeepHistory
from .records import RATES_DTYPE, TICKS_DTYPE
from .servertime import ServerClock, dst_window_utc_ms
from .world import ALWAYS_OPEN, Session, SymbolDef, World

TICK_FLAGS = C.TICK_FLAG_BID | C.TICK_FLAG_ASK

#: timeframe -> bucket length in seconds (W1 / MN1 handled separately)
TIMEFRAME_SECONDS: dict[int, int] = {
    **{m: m * 60 for m in (1, 2, 3, 4, 5, 6, 10, 12, 15, 20, 30)},
    **{0x4000 + h: h * 3600 for h in (1, 2, 3, 4, 6, 8, 12)},
    C.TIMEFRAME_D1: 86400,
    C.TIMEFRAME_W1: 7 * 86400,
    C.TIMEFRAME_MN1: 0,
}


def session_open(sessions: Session, server_ms: int) -> bool:
    """Is ``server_ms`` (server wall clock as epoch ms) inside a trading session?"""
    if sessions is ALWAYS_OPEN:
        return True
    secs = server_ms // 1000
    day = secs // 86400
    weekday = (day + 4) % 7  # 1970-01-01 was a Thursday; Sunday = 0 like DAY_OF_WEEK_*
    minute = (secs % 86400) // 60
    return any(a <= minute < b for a, b in sessions[weekday])


def session_mask(sessions: Session, server_s: np.ndarray) -> np.ndarray:
    """``session_open`` for an array of server times (seconds): a bool array."""
    if sessions is ALWAYS_OPEN:
        return np.ones(len(server_s), dtype=bool)
    day = server_s // 86400
    weekday = (day + 4) % 7
    minute = (server_s % 86400) // 60
    mask = np.zeros(len(server_s), dtype=bool)
    for wd in range(7):
        on_day = weekday == wd
        for a, b in sessions[wd]:
            mask |= on_day & (minute >= a) & (minute < b)
    return mask


def aggregate(t: np.ndarray, o: np.ndarray, h: np.ndarray, l: np.ndarray, c: np.ndarray,
              n: np.ndarray, timeframe: int, spread: int) -> np.ndarray:
    """M1 bars (server seconds, oldest first) -> bars of ``timeframe`` (RATES_DTYPE)."""
    size = TIMEFRAME_SECONDS[timeframe]
    if len(t) == 0:
        return np.zeros(0, dtype=RATES_DTYPE)
    if timeframe == C.TIMEFRAME_MN1:
        keys = t.astype("datetime64[s]").astype("datetime64[M]").astype("datetime64[s]").astype("i8")
    elif timeframe == C.TIMEFRAME_W1:
        sunday = 3 * 86400  # 1970-01-04 was a Sunday; MT5 weeks start on Sunday
        keys = (t - sunday) // size * size + sunday
    else:
        keys = t - t % size
    starts = np.flatnonzero(np.r_[True, keys[1:] != keys[:-1]])
    ends = np.r_[starts[1:], len(t)] - 1
    out = np.zeros(len(starts), dtype=RATES_DTYPE)
    out["time"] = keys[starts]
    out["open"] = o[starts]
    out["high"] = np.maximum.reduceat(h, starts)
    out["low"] = np.minimum.reduceat(l, starts)
    out["close"] = c[ends]
    out["tick_volume"] = np.add.reduceat(n, starts)
    out["spread"] = spread
    return out


def bucket_seconds(timeframe: int) -> int:
    """Longest bar of ``timeframe`` in seconds (MN1: 31 days)."""
    return TIMEFRAME_SECONDS[timeframe] or 31 * DAY


def round_price(value: float, tick_size: float, digits: int) -> float:
    return round(round(value / tick_size) * tick_size, digits)


class _Ring:
    """Fixed-capacity columnar ring buffer."""

    def __init__(self, capacity: int, columns: dict[str, str]) -> None:
        self.cap = capacity
        self.n = 0
        self.head = 0  # next write position
        self.cols = {k: np.zeros(capacity, dtype=t) for k, t in columns.items()}

    def append(self, **values) -> None:
        i = self.head
        for k, v in values.items():
            self.cols[k][i] = v
        self.head = (i + 1) % self.cap
        if self.n < self.cap:
            self.n += 1

    def last_index(self) -> int:
        return (self.head - 1) % self.cap

    def ordered(self, key: str) -> np.ndarray:
        a = self.cols[key]
        if self.n < self.cap:
            return a[: self.n]
        return np.concatenate((a[self.head:], a[: self.head]))


class Feed:
    """Quotes and history of one broker symbol."""

    def __init__(self, broker: str, sym: SymbolDef, clock: ServerClock, tick_cap: int, bar_cap: int) -> None:
        self.broker = broker
        self.sym = sym
        self.clock = clock
        self.bid = 0.0
        self.ask = 0.0
        self.time_msc = 0  # server ms of the last tick
        self.ticks = _Ring(tick_cap, {"t": "i8", "b": "f8", "a": "f8"})
        self.bars = _Ring(bar_cap, {"t": "i8", "o": "f8", "h": "f8", "l": "f8", "c": "f8", "n": "u8"})
        self.day = -1
        self.session_open = 0.0
        self.session_close = 0.0  # previous day's close
        self.bidhigh = self.bidlow = self.askhigh = self.asklow = 0.0
        self.prev_bid = 0.0
        # operator override of the session schedule (admin ``set_session``): True = open,
        # False = closed (e.g. a broker holiday or halt), None = the world file's sessions
        self.session_override: bool | None = None
        # the underlying's M1 history before the live history (world ``history_days``)
        self.deep: DeepHistory | None = None

    def quote_for(self, underlying_price: float) -> tuple[float, float]:
        s = self.sym
        bid = round_price(underlying_price + s.offset, s.tick_size, s.digits)
        return bid, round(bid + s.spread * s.point, s.digits)

    def is_open(self, server_ms: int) -> bool:
        if self.session_override is not None:
            return self.session_override
        return session_open(self.sym.sessions, server_ms)

    def push(self, bid: float, ask: float, server_ms: int) -> None:
        """Record a tick (server time) and update bars and daily statistics."""
        self.bid, self.ask, self.time_msc = bid, ask, server_ms
        self.ticks.append(t=server_ms, b=bid, a=ask)
        sec = server_ms // 1000
        bar_t = sec - sec % 60
        bars = self.bars
        if bars.n and bars.cols["t"][bars.last_index()] == bar_t:
            i = bars.last_index()
            c = bars.cols
            if bid > c["h"][i]:
                c["h"][i] = bid
            if bid < c["l"][i]:
                c["l"][i] = bid
            c["c"][i] = bid
            c["n"][i] += 1
        else:
            bars.append(t=bar_t, o=bid, h=bid, l=bid, c=bid, n=1)
        day = sec // 86400
        if day != self.day:
            if self.day >= 0:
                self.session_close = self.prev_bid
            self.day = day
            self.session_open = bid
            self.bidhigh = self.bidlow = bid
            self.askhigh = self.asklow = ask
        else:
            self.bidhigh = max(self.bidhigh, bid)
            self.bidlow = min(self.bidlow, bid)
            self.askhigh = max(self.askhigh, ask)
            self.asklow = min(self.asklow, ask)
        self.prev_bid = bid

    # --- history queries (all times in server seconds / ms) --------------------------
    def tick_array(self) -> np.ndarray:
        t = self.ticks.ordered("t")
        out = np.zeros(len(t), dtype=TICKS_DTYPE)
        out["time_msc"] = t
        out["time"] = t // 1000
        out["bid"] = self.ticks.ordered("b")
        out["ask"] = self.ticks.ordered("a")
        out["flags"] = TICK_FLAGS
        return out

    def rates(self, timeframe: int) -> np.ndarray:
        """All bars of ``timeframe`` still in the live M1 ring, oldest first, current bar last."""
        r = self.bars
        return aggregate(*(r.ordered(k) for k in ("t", "o", "h", "l", "c", "n")), timeframe, self.sym.spread)

    # --- deep + live bars (server seconds) -----------------------------------------------
    def _to_server_s(self, t_utc: np.ndarray) -> np.ndarray:
        clock = self.clock
        out = t_utc + clock.base_ms // 1000
        if clock.rule != "none" and len(t_utc):
            y0 = datetime.fromtimestamp(int(t_utc[0]), tz=timezone.utc).year
            y1 = datetime.fromtimestamp(int(t_utc[-1]), tz=timezone.utc).year
            summer = np.zeros(len(t_utc), dtype=bool)
            for year in range(y0, y1 + 1):
                a, b = dst_window_utc_ms(clock.rule, year)
                summer |= (t_utc >= a // 1000) & (t_utc < b // 1000)
            out = out + summer * 3600
        return out

    def earliest_s(self) -> int | None:
        """Server time of the oldest bar there is (deep history first), None: no bars."""
        if self.deep is not None and self.deep.days:
            return int(self._to_server_s(np.array([self.deep.start], dtype="i8"))[0])
        if self.bars.n:
            return int(self.bars.ordered("t")[0])
        return None

    def latest_s(self) -> int | None:
        """Server time of the current (newest) M1 bar, None: no bars."""
        if self.bars.n:
            return int(self.bars.cols["t"][self.bars.last_index()])
        if self.deep is not None and self.deep.days:
            return int(self._to_server_s(np.array([self.deep.end - 60], dtype="i8"))[0])
        return None

    def m1_window(self, lo_s: int, hi_s: int) -> tuple[np.ndarray, ...]:
        """M1 bars with server open time in ``[lo_s, hi_s)``: deep history (session-filtered,
        quoted for this symbol), then the live ring. (t, o, h, l, c, n), oldest first."""
        parts = []
        deep = self.deep
        if deep is not None and deep.days and lo_s < hi_s:
            t_utc, o, h, l, c, n = deep.m1(lo_s - DAY, hi_s + DAY)  # any server offset fits a day
            ts = self._to_server_s(t_utc)
            keep = (ts >= lo_s) & (ts < hi_s) & session_mask(self.sym.sessions, ts)
            if len(ts) > 1:  # the repeated hour when summer time ends: keep the first
                keep &= np.r_[True, ts[1:] > np.maximum.accumulate(ts)[:-1]]
            s = self.sym

            def quote(p: np.ndarray) -> np.ndarray:
                return np.round(np.round((p[keep] + s.offset) / s.tick_size) * s.tick_size, s.digits)

            parts.append((ts[keep], quote(o), quote(h), quote(l), quote(c), n[keep]))
        r = self.bars
        t = r.ordered("t")
        sel = (t >= lo_s) & (t < hi_s)
        parts.append((t[sel], *(r.ordered(k)[sel] for k in ("o", "h", "l", "c", "n"))))
        if len(parts) == 1:
            return parts[0]
        return tuple(np.concatenate([p[i] for p in parts]) for i in range(6))

    def bars_between(self, timeframe: int, lo_s: int, hi_s: int) -> np.ndarray:
        """Complete bars of ``timeframe`` whose open time is in ``[lo_s, hi_s]`` (server s)."""
        if hi_s < lo_s:
            return np.zeros(0, dtype=RATES_DTYPE)
        out = aggregate(*self.m1_window(lo_s, hi_s + bucket_seconds(timeframe)), timeframe,
                        self.sym.spread)
        return out[(out["time"] >= lo_s) & (out["time"] <= hi_s)]

    def bars_until(self, timeframe: int, date_s: int, count: int) -> np.ndarray:
        """The last ``count`` bars of ``timeframe`` opened at or before ``date_s`` (fewer
        when history runs out), oldest first."""
        if count <= 0:
            return np.zeros(0, dtype=RATES_DTYPE)
        earliest = self.earliest_s()
        if earliest is None:
            return np.zeros(0, dtype=RATES_DTYPE)
        span = (count + 1) * bucket_seconds(timeframe)
        while True:  # widen the window until it holds count bars (sessions leave gaps)
            lo = date_s - span
            out = self.bars_between(timeframe, lo, date_s)
            if len(out) >= count or lo <= earliest:
                return out[len(out) - count:] if len(out) > count else out
            span *= 2

    def bars_from_pos(self, timeframe: int, start_pos: int, count: int) -> np.ndarray:
        """``count`` bars ending ``start_pos`` bars before the current one (0 = current)."""
        latest = self.latest_s()
        if latest is None or count <= 0:
            return np.zeros(0, dtype=RATES_DTYPE)
        out = self.bars_until(timeframe, latest, start_pos + count)
        end = max(0, len(out) - start_pos)
        return out[max(0, end - count):end]


class Market:
    """All underlyings and broker feeds; deterministic given seed and call sequence."""

    def __init__(self, world: World, seed: int, clocks: dict[str, ServerClock]) -> None:
        self.world = world
        self.seed = seed
        self.clocks = clocks
        self.feeds: dict[tuple[str, str], Feed] = {}
        self.by_underlying: dict[str, list[Feed]] = {u: [] for u in world.underlyings}
        for bname, b in world.brokers.items():
            for sname, s in b.symbols.items():
                f = Feed(bname, s, clocks[bname], world.tick_history, world.bar_history)
                self.feeds[(bname, sname)] = f
                self.by_underlying[s.underlying].append(f)
        self.prices: dict[str, float] = {}
        self.rngs: dict[str, random.Random] = {}

    def reset(self, start_utc_ms: int) -> None:
        """Regenerate the pre-start history so that it ends at ``start_utc_ms``."""
        w = self.world
        for bname, b in w.brokers.items():
            for sname in b.symbols:
                old = self.feeds[(bname, sname)]
                self.feeds[(bname, sname)] = Feed(bname, old.sym, old.clock, w.tick_history, w.bar_history)
        self.by_underlying = {u: [] for u in w.underlyings}
        for f in self.feeds.values():
            self.by_underlying[f.sym.underlying].append(f)
        self.prices = {u.name: u.price for u in w.underlyings.values()}
        self.rngs = {u: random.Random(f"copyhub-sim:{self.seed}:{u}") for u in w.underlyings}
        step_ms = int(w.history_step_seconds * 1000)
        t = start_utc_ms - int(w.history_hours * 3_600_000)
        if w.history_days > 0:  # deep history ends where the live history starts, at its price
            for name, und in w.underlyings.items():
                deep = DeepHistory(self.seed, name, und.price, und.volatility, t // 1000, w.history_days)
                for f in self.by_underlying[name]:
                    f.deep = deep
        for f in self.feeds.values():  # initial quote, even if the session is closed
            bid, ask = f.quote_for(self.prices[f.sym.underlying])
            f.push(bid, ask, f.clock.to_server(t))
        while t + step_ms <= start_utc_ms:
            t += step_ms
            self.step(t, step_ms / 1000.0)

    def step(self, utc_ms: int, dt_seconds: float) -> list[Feed]:
        """Move every underlying one random step and requote; returns feeds that ticked."""
        changed: list[Feed] = []
        scale = math.sqrt(max(dt_seconds, 0.0) / 3600.0)
        for name, und in self.world.underlyings.items():
            if und.volatility > 0 and scale > 0:
                z = self.rngs[name].gauss(0.0, 1.0)
                self.prices[name] *= math.exp(und.volatility * scale * z)
            changed.extend(self._requote(name, utc_ms))
        return changed

    def set_underlying(self, name: str, price: float, utc_ms: int) -> list[Feed]:
        self.prices[name] = price
        return self._requote(name, utc_ms)

    def _requote(self, name: str, utc_ms: int) -> list[Feed]:
        out = []
        price = self.prices[name]
        for f in self.by_underlying[name]:
            server_ms = f.clock.to_server(utc_ms)
            if not f.is_open(server_ms):
                continue
            bid, ask = f.quote_for(price)
            if bid != f.bid or ask != f.ask:
                f.push(bid, ask, server_ms)
                out.append(f)
        return out
