"""Fault 7 (issue 9): a pending-order copy carries the master's expiry, converted between the
two brokers' server clocks (copier/expiry.py, terminals/convert.order_from_mt5)."""
from dataclasses import replace
from datetime import datetime, timezone
from types import SimpleNamespace as NS

from copier_testkit import MASTER, context, spec, view

from copier.actions import ModifyPending, PlacePending, RecordSkip
from copier.decisions import Skip
from copier.expiry import Expiry, copy_expiry
from copier.models import PendingOrder
from copier.planner import plan
from terminals.convert import expiration_instant_ms, order_from_mt5

H = 3_600_000


def s(iso: str) -> int:
    """A wall-clock time read as if UTC (how MT5 writes server times), epoch seconds."""
    return int(datetime.fromisoformat(iso).replace(tzinfo=timezone.utc).timestamp())


def master_record(type_time=2, expiration="2025-01-06T18:00:00", setup="2025-01-06T12:00:00"):
    return NS(ticket=5, symbol="EURUSD", type=2, volume_current=0.5, price_open=1.09, price_stoplimit=0.0, sl=0.0, tp=0.0,
              time_setup_msc=s(setup) * 1000, magic=0, comment="", type_time=type_time,
              time_expiration=s(expiration) if expiration else 0)


def test_utc_plus_2_master_specified_18_00_is_19_00_at_a_utc_plus_3_follower():
    order = order_from_mt5(master_record(), offset_ms=2 * H, contract_size=100000)
    assert order.type_time == "SPECIFIED"
    assert order.expiration_ms == s("2025-01-06T16:00:00") * 1000  # on the bus: 16:00 UTC
    exp = copy_expiry(order, spec(), 3 * H, now_ms=s("2025-01-06T10:00:00") * 1000)
    assert exp == Expiry("SPECIFIED", s("2025-01-06T19:00:00"), s("2025-01-06T19:00:00") * 1000)


def test_day_order_expires_at_the_masters_midnight_not_the_followers():
    # ORDER_TIME_DAY placed 12:00 at a UTC+2 master: it ends at 00:00 master = 22:00 UTC = 01:00 (+3)
    order = order_from_mt5(master_record(type_time=1, expiration=None), offset_ms=2 * H)
    assert (order.type_time, order.expiration_ms) == ("DAY", s("2025-01-06T22:00:00") * 1000)
    exp = copy_expiry(order, spec(), 3 * H, now_ms=s("2025-01-06T10:00:00") * 1000)
    assert exp == Expiry("SPECIFIED", s("2025-01-07T01:00:00"), s("2025-01-07T01:00:00") * 1000)


def test_specified_day_is_the_end_of_that_master_day():
    assert expiration_instant_ms(3, s("2025-01-08T09:30:00"), 0) == s("2025-01-09T00:00:00") * 1000
    assert expiration_instant_ms(3, s("2025-01-09T00:00:00"), 0) == s("2025-01-09T00:00:00") * 1000  # already the end
    assert expiration_instant_ms(0, s("2025-01-09T00:00:00"), 0) == 0  # GTC never expires


def test_same_zone_follower_without_specified_uses_day_or_specified_day():
    order = order_from_mt5(master_record(type_time=1, expiration=None), offset_ms=2 * H)
    now = s("2025-01-06T10:00:00") * 1000
    day_only = replace(spec(), expiration_mode=1 | 2)
    assert copy_expiry(order, day_only, 2 * H, now) == Expiry("DAY", 0, s("2025-01-07T00:00:00") * 1000)
    spec_day = replace(spec(), expiration_mode=1 | 8)
    assert copy_expiry(order, spec_day, 2 * H, now) == Expiry("SPECIFIED_DAY", s("2025-01-06T23:59:59"),
                                                            s("2025-01-07T00:00:00") * 1000)
    # a +3 follower's day does not end when the master's does: DAY would outlive it -> refused
    refused = copy_expiry(order, day_only, 3 * H, now)
    assert isinstance(refused, Skip) and "cannot expire" in refused.reason


def test_gtc_passes_unknown_offset_waits_past_instant_refused():
    gtc = PendingOrder(ticket=5, symbol="EURUSD", type="BUY_LIMIT", volume=0.5, price_open=1.09)
    assert copy_expiry(gtc, spec(), None) == Expiry()
    order = order_from_mt5(master_record(), offset_ms=2 * H)
    assert copy_expiry(order, spec(), None, now_ms=s("2025-01-06T10:00:00") * 1000) is None
    late = copy_expiry(order, spec(), 3 * H, now_ms=s("2025-01-06T16:00:00") * 1000)
    assert isinstance(late, Skip) and "already passed" in late.reason


MO = PendingOrder(ticket=5, symbol="EURUSD", type="BUY_LIMIT", volume=0.5, price_open=1.09001, contract_size=100000,
                  type_time="SPECIFIED", expiration_ms=s("2025-01-06T16:00:00") * 1000)
NOW = s("2025-01-06T10:00:00") * 1000


def ctx(**kw):
    c = context(masters={MASTER: view([], [MO])}, **kw)
    return replace(c, slave_server_offset_ms=3 * H, now_ms=NOW)


def test_planner_places_the_copy_with_the_converted_expiry():
    (p,) = plan(ctx())
    assert isinstance(p, PlacePending)
    assert (p.type_time, p.expiration) == ("SPECIFIED", s("2025-01-06T19:00:00"))


def test_planner_waits_for_the_slave_offset_and_refuses_what_it_cannot_express():
    assert plan(replace(ctx(), slave_server_offset_ms=None)) == []
    no_specified = replace(ctx(), specs={"EURUSD.c": replace(spec(), expiration_mode=1)})
    (r,) = plan(no_specified)
    assert isinstance(r, RecordSkip) and "cannot expire" in r.reason and r.kind == "order"


def test_a_changed_master_expiry_modifies_the_copy_and_an_equal_one_does_not():
    from copier.links import Link
    from copier.tags import make_tag

    tag = make_tag(MASTER, 5)
    link = Link(slave_name="Apex_Slave_01", master_name=MASTER, master_ticket=5, kind="order", status="OPEN", slave_ticket=601,
                symbol="EURUSD.c", master_symbol="EURUSD", direction="BUY", master_volume=0.5, slave_volume=0.5, tag=tag)
    copy = PendingOrder(ticket=601, symbol="EURUSD.c", type="BUY_LIMIT", volume=0.5, price_open=1.09001, comment=tag,
                        type_time="SPECIFIED", expiration_ms=s("2025-01-06T19:00:00") * 1000)
    c = replace(ctx(), links=[link], slave_orders=[copy])
    assert plan(c) == []
    later = replace(MO, expiration_ms=MO.expiration_ms + H)
    (m,) = plan(replace(c, masters={MASTER: view([], [later])}))
    assert isinstance(m, ModifyPending) and (m.type_time, m.expiration) == ("SPECIFIED", s("2025-01-06T20:00:00"))
    # a price change alone restates the copy's own expiry (a MODIFY request carries it)
    moved = replace(MO, price_open=1.08901)
    (m,) = plan(replace(c, masters={MASTER: view([], [moved])}))
    assert (m.price, m.type_time, m.expiration) == (1.08901, "SPECIFIED", s("2025-01-06T19:00:00"))
    # the GTC copy of a formerly GTC master (placed before this fix) gets its expiry
    (m,) = plan(replace(c, slave_orders=[replace(copy, type_time="GTC", expiration_ms=0)]))
    assert (m.type_time, m.expiration) == ("SPECIFIED", s("2025-01-06T19:00:00"))
