"""Reset instants, trading days and server-time conversion, DST switch days included."""
from datetime import date, datetime, time, timedelta, timezone

import pytest
from risk_testkit import srv, utc

from copier.risk import ServerClock, day_bounds, last_reset_instant, next_reset_instant, trading_day_of

NY = ServerClock("ny_close")
MIDNIGHT = time(0, 0)


def test_ny_close_server_is_utc_plus_2_in_winter_and_plus_3_in_summer():
    assert NY.to_utc(srv(2026, 1, 15, 12)) == utc(2026, 1, 15, 10)
    assert NY.to_utc(srv(2026, 7, 15, 12)) == utc(2026, 7, 15, 9)
    # Round trip, both regimes.
    for ms in (srv(2026, 1, 15, 12), srv(2026, 7, 15, 12)):
        assert NY.to_server_ms(NY.to_utc(ms)) == ms


def test_fixed_and_zone_offsets():
    assert ServerClock(120).to_utc(srv(2026, 7, 1, 3)) == utc(2026, 7, 1, 1)
    eet = ServerClock("Europe/Athens")  # follows EU DST
    assert eet.to_utc(srv(2026, 3, 20, 12)) == utc(2026, 3, 20, 10)  # EU winter still
    assert NY.to_utc(srv(2026, 3, 20, 12)) == utc(2026, 3, 20, 9)  # US summer already
    with pytest.raises(ValueError):
        ServerClock("Mars/Olympus")


def test_callable_offset_of_utc():
    def offset(u):
        return 180 if u.month in (6, 7, 8) else 120

    c = ServerClock(offset)
    assert c.to_utc(srv(2026, 7, 1, 3)) == utc(2026, 7, 1, 0)
    assert c.to_server_ms(utc(2026, 1, 1, 0)) == srv(2026, 1, 1, 2)


def test_prague_midnight_is_01_server_on_ordinary_days():
    # Winter: Prague UTC+1, server UTC+2. Summer: Prague UTC+2, server UTC+3.
    for day, expect_utc in ((date(2026, 1, 15), utc(2026, 1, 14, 23)), (date(2026, 7, 15), utc(2026, 7, 14, 22))):
        start, end = day_bounds(day, MIDNIGHT, "Europe/Prague", NY)
        assert start == expect_utc
        assert NY.to_server_ms(start) == srv(day.year, day.month, day.day, 1)
        assert end - start == timedelta(hours=24)


def test_prague_midnight_moves_to_02_server_between_us_and_eu_dst_switches():
    # 2026: US DST starts Mar 8, EU DST starts Mar 29; EU ends Oct 25, US ends Nov 1.
    for d in (date(2026, 3, 10), date(2026, 10, 28)):
        start, _ = day_bounds(d, MIDNIGHT, "Europe/Prague", NY)
        assert NY.to_server_ms(start) == srv(d.year, d.month, d.day, 2)
    # A deal at 01:30 server on Mar 10 is still Mar 9 for FTMO; on Mar 5 it is Mar 5.
    at = NY.to_utc(srv(2026, 3, 10, 1, 30))
    assert trading_day_of(at, MIDNIGHT, "Europe/Prague", NY) == date(2026, 3, 9)
    at = NY.to_utc(srv(2026, 3, 5, 1, 30))
    assert trading_day_of(at, MIDNIGHT, "Europe/Prague", NY) == date(2026, 3, 5)


def test_eu_switch_days_are_23_and_25_hours_long():
    s, e = day_bounds(date(2026, 3, 29), MIDNIGHT, "Europe/Prague", NY)
    assert (s, e) == (utc(2026, 3, 28, 23), utc(2026, 3, 29, 22))
    s, e = day_bounds(date(2026, 10, 25), MIDNIGHT, "Europe/Prague", NY)
    assert e - s == timedelta(hours=25)


def test_server_midnight_reset_on_us_switch_day():
    # Nov 1 2026 02:00 NY: server goes from UTC+3 to UTC+2; server day Nov 1 lasts 25 h.
    s, e = day_bounds(date(2026, 11, 1), MIDNIGHT, "server", NY)
    assert s == utc(2026, 10, 31, 21)
    assert e == utc(2026, 11, 1, 22)


def test_new_york_1700_equals_server_midnight_and_labels_next_day():
    for probe in (utc(2026, 1, 14, 12), utc(2026, 7, 14, 12), utc(2026, 3, 10, 12)):
        ny = last_reset_instant(probe, time(17, 0), "America/New_York")
        sv = last_reset_instant(probe, MIDNIGHT, "server", NY)
        assert ny == sv
        assert trading_day_of(probe, time(17, 0), "America/New_York") == trading_day_of(probe, MIDNIGHT, "server", NY)
    # Sunday 18:00 New York belongs to Monday's trading day.
    sunday_evening = datetime(2026, 11, 22, 23, 0, tzinfo=timezone.utc)  # 18:00 EST
    assert trading_day_of(sunday_evening, time(17, 0), "America/New_York") == date(2026, 11, 23)


def test_reset_instant_boundaries():
    r = utc(2026, 11, 19, 23)
    assert last_reset_instant(r, MIDNIGHT, "Europe/Prague") == r
    assert last_reset_instant(r - timedelta(milliseconds=1), MIDNIGHT, "Europe/Prague") == r - timedelta(days=1)
    assert next_reset_instant(r, MIDNIGHT, "Europe/Prague") == r + timedelta(days=1)
