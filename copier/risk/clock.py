"""Timekeeping for risk rules: broker server time, UTC, and the firm's trading day.

MT5 timestamps are the broker's *server wall clock written as if it were UTC*
(EET brokers show +2/+3 h). Prop firms reset their daily limits on *their* clock
(midnight Europe/Prague for FTMO, 17:00 New York or server midnight for others), so
every comparison here is done on true UTC instants, never on local wall clocks.

``ServerClock`` converts between the two epochs. Its offset is one of:

* an ``int`` — fixed minutes east of UTC (e.g. a value the node measured by
  comparing a fresh tick time with real UTC);
* ``"ny_close"`` — the usual prop-broker convention: server = New York + 7 h, i.e.
  UTC+2 in (US) winter and UTC+3 in (US) summer, so server midnight = 17:00 New York;
* an IANA zone name (``"Europe/Athens"``, ``"Europe/Helsinki"``...) — the server clock
  follows that zone's DST (EU switch dates);
* a callable ``f(utc_datetime) -> minutes`` for anything else.

A DST switch makes the server wall clock jump; conversions of an ambiguous server
time pick the first occurrence (fold=0).
"""
from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta, timezone
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

UTC = timezone.utc
_EPOCH = datetime(1970, 1, 1)  # naive: server wall-clock epoch
_EPOCH_UTC = datetime(1970, 1, 1, tzinfo=UTC)

OffsetSpec = int | str | Callable[[datetime], int]
SERVER = "server"
NY_CLOSE = "ny_close"


def _utc_ms(dt: datetime) -> int:
    return (dt - _EPOCH_UTC) // timedelta(milliseconds=1)


def utc_from_ms(ms: int) -> datetime:
    """UTC-aware datetime from epoch milliseconds."""
    return _EPOCH_UTC + timedelta(milliseconds=ms)


def ms_from_utc(dt: datetime) -> int:
    """Epoch milliseconds of an aware datetime."""
    return _utc_ms(dt.astimezone(UTC))


def _offset_minutes(aware: datetime) -> int:
    """Minutes east of UTC of an aware datetime (``astimezone`` always gives one)."""
    offset = aware.utcoffset()
    if offset is None:
        raise ValueError(f"naive datetime {aware!r} has no UTC offset")
    return int(offset // timedelta(minutes=1))


def _zone(name: str) -> ZoneInfo:
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError) as exc:  # ValueError: malformed key
        raise ValueError(f"unknown time zone {name!r} (on Windows install the tzdata package)") from exc


def validate_offset(spec: OffsetSpec) -> None:
    """Raise ValueError when ``spec`` cannot describe a server clock."""
    ServerClock(spec)


@dataclass(frozen=True)
class ServerClock:
    """Converts between broker server time (ms, wall clock as if UTC) and true UTC."""

    offset: OffsetSpec = NY_CLOSE

    def __post_init__(self) -> None:
        spec = self.offset
        if isinstance(spec, bool):
            raise ValueError("offset must be minutes, 'ny_close', a zone name or a callable")
        if isinstance(spec, int):
            if not -14 * 60 <= spec <= 14 * 60:
                raise ValueError(f"offset {spec} minutes is outside -840..840")
        elif isinstance(spec, str):
            _zone("America/New_York" if spec == NY_CLOSE else spec)
        elif not callable(spec):
            raise ValueError("offset must be minutes, 'ny_close', a zone name or a callable")

    # -- offset at an instant -------------------------------------------------
    def offset_minutes_at(self, utc_dt: datetime) -> int:
        """Server offset (minutes east of UTC) in force at a UTC instant."""
        spec = self.offset
        if isinstance(spec, int):
            return spec
        if isinstance(spec, str):
            if spec == NY_CLOSE:
                return _offset_minutes(utc_dt.astimezone(ZoneInfo("America/New_York"))) + 7 * 60
            return _offset_minutes(utc_dt.astimezone(_zone(spec)))
        return int(spec(utc_dt))

    # -- conversions ----------------------------------------------------------
    def server_wall(self, utc_dt: datetime) -> datetime:
        """Naive server wall-clock datetime for a UTC instant."""
        utc_dt = utc_dt.astimezone(UTC)
        return (utc_dt + timedelta(minutes=self.offset_minutes_at(utc_dt))).replace(tzinfo=None)

    def wall_to_utc(self, wall: datetime) -> datetime:
        """UTC instant of a naive server wall-clock time (first occurrence if ambiguous)."""
        spec = self.offset
        if isinstance(spec, int):
            return (wall - timedelta(minutes=spec)).replace(tzinfo=UTC)
        if isinstance(spec, str):
            if spec == NY_CLOSE:
                ny_wall = wall - timedelta(hours=7)
                return ny_wall.replace(tzinfo=ZoneInfo("America/New_York"), fold=0).astimezone(UTC)
            return wall.replace(tzinfo=_zone(spec), fold=0).astimezone(UTC)
        # Generic callable of UTC: fixed-point iteration (converges in 2 steps
        # except inside a DST gap, where the first guess is kept).
        guess = wall.replace(tzinfo=UTC)
        for _ in range(3):
            nxt = (wall - timedelta(minutes=int(spec(guess)))).replace(tzinfo=UTC)
            if nxt == guess:
                break
            guess = nxt
        return guess

    def to_utc(self, server_ms: int) -> datetime:
        """UTC instant of an MT5 server timestamp in milliseconds."""
        return self.wall_to_utc(_EPOCH + timedelta(milliseconds=server_ms))

    def to_utc_ms(self, server_ms: int) -> int:
        return _utc_ms(self.to_utc(server_ms))

    def to_server_ms(self, utc_dt: datetime) -> int:
        """MT5-style server milliseconds for a UTC instant."""
        return (self.server_wall(utc_dt) - _EPOCH) // timedelta(milliseconds=1)


def server_ms_to_utc(server_ms: int, offset: OffsetSpec) -> datetime:
    """Broker server time (ms) -> aware UTC datetime."""
    return ServerClock(offset).to_utc(server_ms)


def to_firm_time(utc_dt: datetime, tz: str, clock: ServerClock | None = None) -> datetime:
    """UTC -> the firm's wall clock (aware for a zone, naive for ``"server"``)."""
    if tz == SERVER:
        return (clock or ServerClock()).server_wall(utc_dt)
    return utc_dt.astimezone(_zone(tz))


def _local_to_utc(d: date, t: time, tz: str, clock: ServerClock | None) -> datetime:
    naive = datetime.combine(d, t)
    if tz == SERVER:
        return (clock or ServerClock()).wall_to_utc(naive)
    return naive.replace(tzinfo=_zone(tz), fold=0).astimezone(UTC)


def last_reset_instant(
    now_utc: datetime, reset_time: time, tz: str, clock: ServerClock | None = None
) -> datetime:
    """The latest reset at or before ``now_utc``, as a UTC datetime.

    ``tz`` is an IANA zone name or ``"server"`` (the broker's wall clock through
    ``clock``). Computed in the firm's zone, so it is right on DST switch days.
    """
    now_utc = now_utc.astimezone(UTC)
    local = to_firm_time(now_utc, tz, clock)
    day = local.date()
    for _ in range(3):
        cand = _local_to_utc(day, reset_time, tz, clock)
        if cand <= now_utc:
            return cand
        day -= timedelta(days=1)
    raise AssertionError("no reset found in three days")  # pragma: no cover


def next_reset_instant(
    now_utc: datetime, reset_time: time, tz: str, clock: ServerClock | None = None
) -> datetime:
    """The first reset strictly after ``now_utc`` (UTC)."""
    last = last_reset_instant(now_utc, reset_time, tz, clock)
    day = to_firm_time(last, tz, clock).date()
    for step in (1, 2):
        cand = _local_to_utc(day + timedelta(days=step), reset_time, tz, clock)
        if cand > now_utc:
            return cand
    raise AssertionError("no next reset found")  # pragma: no cover


def trading_day_of(
    now_utc: datetime, reset_time: time, tz: str, clock: ServerClock | None = None
) -> date:
    """The calendar date that labels the trading day containing ``now_utc``.

    It is the firm-zone date on which most of the day falls: a midnight reset labels
    the day by its own date, a 17:00 New York reset labels it by the next date (the
    usual forex convention: Monday's session opens Sunday 17:00).
    """
    start = last_reset_instant(now_utc, reset_time, tz, clock)
    return (to_firm_time(start, tz, clock) + timedelta(hours=12)).date()


def day_bounds(
    day: date, reset_time: time, tz: str, clock: ServerClock | None = None
) -> tuple[datetime, datetime]:
    """UTC [start, end) of the trading day labelled ``day``."""
    for start_day in (day, day - timedelta(days=1)):
        if (datetime.combine(start_day, reset_time) + timedelta(hours=12)).date() == day:
            start = _local_to_utc(start_day, reset_time, tz, clock)
            return start, next_reset_instant(start, reset_time, tz, clock)
    raise AssertionError("unreachable")  # pragma: no cover
