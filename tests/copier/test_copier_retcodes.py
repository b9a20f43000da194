"""The one retcode table (invariant 8) and the stops adjustment (fault 10)."""
from __future__ import annotations

from dataclasses import replace

import pytest

from copier import retcodes as R
from copier.actions import MarkClosed, Open, RecordSkip
from copier.links import Link
from copier.models import Quote, SymbolSpec
from copier.planner import plan
from copier.sltp import adjust_stops, min_stop_points
from sim import constants as SC
from tests.copier.copier_testkit import MASTER, SLAVE, cfg, context, mpos, quote, view

ALL_CODES = [c for c in range(10004, 10047) if c not in (10005, 10037)]


def test_every_mt5_trade_retcode_has_one_class_and_its_real_name():
    assert sorted(R.TABLE) == ALL_CODES
    for code, row in R.TABLE.items():
        assert row.cls in R.CLASSES and row.meaning
        assert getattr(SC, f"TRADE_RETCODE_{row.name}") == code  # the package's constant names
        assert not (row.retry_now and row.unknown)
        assert (row.retry_now or row.unknown) <= (row.cls == R.TRANSIENT)


@pytest.mark.parametrize("code,cls", [
    (10018, "transient"), (10021, "transient"), (10031, "transient"), (10027, "transient"), (10026, "transient"),
    (10017, "transient"), (10044, "transient"), (10004, "transient"), (10020, "transient"), (10012, "transient"),
    (10024, "transient"), (10029, "transient"),
    (10016, "constraint"), (10014, "constraint"), (10045, "constraint"), (10046, "constraint"), (10030, "constraint"),
    (10019, "permanent"), (10013, "permanent"), (10006, "permanent"), (10036, "permanent"), (99999, "permanent"),
    (10009, "done"), (10008, "done"), (10010, "done"), (10025, "done"),
])
def test_classes(code, cls):
    assert R.retcode_class(code) == cls


def test_position_closed_is_done_for_a_close():
    assert R.retcode_class(10036, closing=True) == "done"


def test_client_side_codes():
    assert R.retcode_class(None) == "transient" and R.lookup(None).unknown  # no reply: may have executed
    assert R.retcode_class(-10005) == "transient" and R.lookup(-10005).unknown
    assert R.retcode_class(-2) == "permanent"  # malformed request
    assert R.retcode_class(-8) == "transient" and not R.lookup(-8).unknown


def test_which_failures_count_as_attempts():
    assert R.counts_as_attempt(10012) and R.counts_as_attempt(10011) and R.counts_as_attempt(None)
    for code in (10018, 10021, 10027, 10031, 10004, 10017, -8):
        assert not R.counts_as_attempt(code), code


@pytest.mark.parametrize("code", [10018, 10021, 10031, 10027, 10026, 10017, 10044, 10024, -8])
def test_transient_rejects_are_deferred_not_failed(code):
    assert R.reject_disposition(code) == "defer"


@pytest.mark.parametrize("code", [10016, 10014, 10019, 10013, 10006, 10045])
def test_constraint_and_permanent_rejects_fail(code):
    assert R.reject_disposition(code) == "fail"


def test_describe():
    assert R.describe(10018) == "10018 MARKET_CLOSED (market is closed; transient)"
    assert R.describe(None).startswith("no reply")


# ----------------------------------------------------------------------------- stops (fault 10)
GOLD = SymbolSpec(name="GOLD", digits=3, point=0.001, tick_size=0.001, tick_value=0.1, contract_size=100, volume_min=0.01,
                  volume_step=0.01, volume_max=20, filling_mode=1, stops_level=50, freeze_level=10)
GOLD_Q = Quote(bid=2649.850, ask=2650.150)


def test_sl_20_points_away_with_stops_level_50_is_placed_50_points_away():
    adj = adjust_stops("BUY", 2649.830, 0.0, GOLD_Q, GOLD)
    assert adj.sl == 2649.800 and adj.tp == 0.0
    assert adj.note == "SL 2649.830 -> 2649.800 (stops level 50, freeze level 10 points; bid 2649.850)"
    sell = adjust_stops("SELL", 2650.170, 0.0, GOLD_Q, GOLD)
    assert sell.sl == 2650.200 and "ask 2650.150" in sell.note


def test_freeze_level_wider_than_stops_level_sets_the_distance():
    wide = replace(GOLD, stops_level=10, freeze_level=30)
    assert min_stop_points(wide) == 30
    assert adjust_stops("BUY", 2649.830, 0.0, GOLD_Q, wide).sl == 2649.820


def test_valid_levels_are_kept_and_an_invalid_tp_is_dropped_and_said():
    kept = adjust_stops("BUY", 2649.700, 2651.000, GOLD_Q, GOLD)
    assert (kept.sl, kept.tp, kept.note) == (2649.700, 2651.000, "")
    adj = adjust_stops("BUY", 2649.700, 2649.880, GOLD_Q, GOLD)
    assert adj.sl == 2649.700 and adj.tp == 0.0 and adj.note.startswith("TP 2649.880 dropped")


def test_planner_open_carries_the_moved_sl_and_says_so():
    master = mpos(1, "XAUUSD", price=2649.85, sl=2649.83, contract_size=100)
    ctx = context(masters={MASTER: view([master])}, specs={"GOLD": GOLD}, quotes={"GOLD": GOLD_Q},
                  slave_cfg=cfg(slippage_tolerance=500, suffix=""))
    (op,) = plan(ctx)
    assert isinstance(op, Open) and op.symbol == "GOLD" and op.sl == 2649.800
    assert op.stops_note.startswith("SL 2649.830 -> 2649.800")


# ----------------------------------------------------------------------------- transient: planner side
def _deferred_link(**kw) -> Link:
    """What the slave leaves after a transient reject: PENDING, attempt not counted."""
    return Link(SLAVE, MASTER, 1, status="PENDING", symbol="EURUSD.c", master_symbol="EURUSD", direction="BUY",
                master_volume=1.0, slave_volume=1.0, attempts=0, **kw)


def test_a_deferred_copy_is_planned_again_at_the_same_price():
    ctx = context(masters={MASTER: view([mpos(1)])}, links=[_deferred_link()], quotes={"EURUSD.c": quote(1.1001)})
    (op,) = plan(ctx)
    assert isinstance(op, Open) and op.purpose == "retry" and op.volume == 1.0


def test_a_deferred_copy_is_skipped_with_the_slippage_reason_once_the_price_moved():
    ctx = context(masters={MASTER: view([mpos(1)])}, links=[_deferred_link()], quotes={"EURUSD.c": quote(1.1060)})
    (skip,) = plan(ctx)
    assert isinstance(skip, RecordSkip) and skip.status == "SKIPPED" and skip.reason.startswith("slippage 600.0 points")


def test_a_deferred_copy_whose_master_closed_is_marked_closed_not_failed():
    ctx = context(masters={MASTER: view([])}, links=[_deferred_link()], quotes={"EURUSD.c": quote(1.1001)})
    (mark,) = plan(ctx)
    assert isinstance(mark, MarkClosed) and "master closed" in mark.reason


def test_a_deferred_copy_waits_while_the_master_is_stale():
    ctx = context(masters={MASTER: view([mpos(1)], fresh=False)}, links=[_deferred_link()], quotes={"EURUSD.c": quote(1.1001)})
    assert plan(ctx) == []


def test_a_deferred_copy_on_a_netting_slave_is_planned_again():
    ctx = context(masters={MASTER: view([mpos(1)])}, links=[_deferred_link()], quotes={"EURUSD.c": quote(1.1001)}, netting=True)
    (op,) = plan(ctx)
    assert isinstance(op, Open) and op.purpose == "retry"
