"""Planner rules on a hedging slave; each test names the rule of docs/copier.md it guards."""
from dataclasses import replace

from copier_testkit import MASTER, SLAVE, cfg, closure, context, mpos, quote, spec, view

from copier.actions import Adopt, Close, MarkClosed, ModifySLTP, Open, RecordSkip
from copier.links import Link
from copier.models import AccountMetrics, Position
from copier.planner import plan
from copier.tags import make_tag

TAG1 = make_tag(MASTER, 1)


def link(ticket=1, status="OPEN", **kw) -> Link:
    base = dict(slave_name=SLAVE, master_name=MASTER, master_ticket=ticket, kind="position", status=status, slave_ticket=501,
                symbol="EURUSD.c", master_symbol="EURUSD", direction="BUY", master_direction="BUY", master_volume=1.0,
                slave_volume=1.0, attempts=1, tag=make_tag(MASTER, ticket))
    base.update(kw)
    return Link(**base)


def spos(ident=501, volume=1.0, comment=TAG1, side="BUY", sl=0.0, tp=0.0, price=1.1001, symbol="EURUSD.c", t=1) -> Position:
    return Position(ticket=ident, identifier=ident, symbol=symbol, side=side, volume=volume, price_open=price, sl=sl, tp=tp,
                    comment=comment, time_msc=t)


def types(actions):
    return [type(a).__name__ for a in actions]


# ---------------------------------------------------------------- rule 1: absence is not a close
def test_rule1_stale_master_without_the_position_closes_nothing():
    ctx = context(masters={MASTER: view([], fresh=False)}, links=[link()], slave_positions=[spos()])
    assert plan(ctx) == []


def test_rule1_missing_master_closes_nothing():
    assert plan(context(masters={}, links=[link()], slave_positions=[spos()])) == []


def test_rule1_stale_master_opens_nothing():
    assert plan(context(masters={MASTER: view([mpos(1)], fresh=False)})) == []


def test_rule1_control_fresh_master_without_the_position_closes():
    acts = plan(context(masters={MASTER: view([])}, links=[link()], slave_positions=[spos()]))
    assert types(acts) == ["Close"] and acts[0].reason == "master closed" and acts[0].volume == 1.0


# ---------------------------------------------------------------- rule 2: first sync
def test_rule2_first_sync_skips_existing_positions():
    acts = plan(context(masters={MASTER: view([mpos(1)], first_sync=True)}))
    assert types(acts) == ["RecordSkip"] and "existed before follow" in acts[0].reason and acts[0].status == "SKIPPED"


def test_rule2_copy_existing_copies_them():
    acts = plan(context(cfg(copy_existing=True), masters={MASTER: view([mpos(1)], first_sync=True)}))
    assert types(acts) == ["Open"]


# ---------------------------------------------------------------- rule 3: new master positions
def test_rule3_open_carries_everything_for_the_request():
    acts = plan(context(masters={MASTER: view([mpos(7, volume=0.4, price=1.1001, sl=1.0950, tp=1.1100)])}))
    (o,) = acts
    assert isinstance(o, Open)
    assert (o.symbol, o.side, o.volume, o.sl, o.tp) == ("EURUSD.c", "BUY", 0.4, 1.095, 1.11)
    assert (o.deviation, o.magic, o.comment, o.type_filling) == (50, 234000, make_tag(MASTER, 7), 1)
    assert (o.master_price, o.reference_price, o.master_volume, o.purpose) == (1.1001, 1.1001, 0.4, "new")


def test_rule3_reverse_and_no_sltp():
    (o,) = plan(context(cfg(reverse=True), masters={MASTER: view([mpos(7, sl=1.0950, tp=1.1100, price=1.1000)])}))
    assert (o.side, o.sl, o.tp) == ("SELL", 1.11, 1.095)
    (o,) = plan(context(cfg(copy_sltp=False), masters={MASTER: view([mpos(7, sl=1.0950, tp=1.1100)])}))
    assert (o.sl, o.tp) == (0.0, 0.0)


def test_rule3_unfollowed_master_is_ignored():
    assert plan(context(cfg(follows=["Other"]), masters={MASTER: view([mpos(1)])})) == []


def test_rule3_filters_and_translation_failures_are_recorded_skips():
    masters = {MASTER: view([mpos(1, symbol="XAUUSD"), mpos(2, symbol="GBPUSD"), mpos(3, symbol="US30")])}
    acts = plan(context(cfg(symbols_deny=["XAU*"]), masters=masters, available={"EURUSD.c", "GBPUSD.c"},
                        specs={"GBPUSD.c": spec("GBPUSD.c")}, quotes={"GBPUSD.c": quote(1.1000)}))
    assert types(acts) == ["Open", "RecordSkip", "RecordSkip"]
    reasons = {a.master_ticket: a.reason for a in acts if isinstance(a, RecordSkip)}
    assert "denied" in reasons[1] and "not available on slave" in reasons[3]


def test_rule3_volume_below_minimum_is_skipped():
    (s,) = plan(context(cfg(sizing={"mode": "multiplier", "multiplier": 0.01}), masters={MASTER: view([mpos(1, volume=0.4)])}))
    assert isinstance(s, RecordSkip) and "below minimum" in s.reason


def test_rule3_sizing_uses_metrics():
    m = AccountMetrics(login=1, balance=100_000, equity=100_000, margin=0, margin_free=0, profit=0)
    sl = AccountMetrics(login=2, balance=25_000, equity=25_000, margin=0, margin_free=0, profit=0)
    (o,) = plan(context(cfg(sizing="balance_ratio"), masters={MASTER: view([mpos(1, volume=2.0)], metrics=m)}, slave_metrics=sl))
    assert o.volume == 0.5
    (s,) = plan(context(cfg(sizing="balance_ratio"), masters={MASTER: view([mpos(1, volume=2.0)])}, slave_metrics=sl))
    assert isinstance(s, RecordSkip) and "metrics" in s.reason


def test_rule3_max_open_positions():
    acts = plan(context(cfg(max_open_positions=2), masters={MASTER: view([mpos(1), mpos(2), mpos(3)])}, links=[]))
    assert types(acts) == ["Open", "Open", "RecordSkip"] and "max_open_positions" in acts[2].reason
    # existing live links count
    acts = plan(context(cfg(max_open_positions=1), masters={MASTER: view([mpos(1), mpos(2)])}, links=[link(1)],
                        slave_positions=[spos()]))
    assert types(acts) == ["RecordSkip"] and acts[0].master_ticket == 2


def test_rule3_slippage():
    (s,) = plan(context(masters={MASTER: view([mpos(1, price=1.0990)])}))  # ask 1.1001: 110 points away
    assert isinstance(s, RecordSkip) and s.reason.startswith("slippage 110.0 points > tolerance 50")
    (o,) = plan(context(cfg(slippage_tolerance=110), masters={MASTER: view([mpos(1, price=1.0990)])}))
    assert isinstance(o, Open)


def test_rule3_paused_records_skip_so_it_is_never_opened_late():
    (s,) = plan(context(masters={MASTER: view([mpos(1)])}, paused=True))
    assert isinstance(s, RecordSkip) and s.reason.startswith("account paused")


def test_rule3_no_quote_or_spec_yet_waits():
    assert plan(context(masters={MASTER: view([mpos(1)])}, quotes={})) == []
    assert plan(context(masters={MASTER: view([mpos(1)])}, specs={})) == []


def test_rule3_trade_mode_refusals():
    # close-only and disabled are transient: the open is planned, the server's 10044/10017 defers it
    for mode in (0, 3):
        (o,) = plan(context(masters={MASTER: view([mpos(1)])}, specs={"EURUSD.c": spec(trade_mode=mode)}))
        assert isinstance(o, Open) and o.side == "BUY", mode
    (s,) = plan(context(masters={MASTER: view([mpos(1, side="SELL", price=1.1)])}, specs={"EURUSD.c": spec(trade_mode=1)}))
    assert "long-only" in s.reason


def test_rule3_existing_tagged_copy_without_link_is_adopted_not_reopened():
    (a,) = plan(context(masters={MASTER: view([mpos(1)])}, slave_positions=[spos()]))
    assert isinstance(a, Adopt) and a.slave_ticket == 501 and a.master_ticket == 1


# ---------------------------------------------------------------- rule 4: PENDING intents
def test_rule4_pending_with_tagged_position_is_adopted():
    acts = plan(context(masters={MASTER: view([mpos(1)])}, links=[link(status="PENDING", slave_ticket=0)], slave_positions=[spos()]))
    assert types(acts) == ["Adopt"] and acts[0].slave_ticket == 501


def test_rule4_pending_found_by_identifier_when_broker_rewrote_comment():
    acts = plan(context(masters={MASTER: view([mpos(1)])}, links=[link(status="PENDING")], slave_positions=[spos(comment="[sl]")]))
    assert types(acts) == ["Adopt"]


def test_rule4_pending_not_found_is_retried_with_same_tag():
    (o,) = plan(context(masters={MASTER: view([mpos(1)])}, links=[link(status="PENDING", slave_ticket=0, attempts=2)]))
    assert isinstance(o, Open) and o.purpose == "retry" and o.comment == TAG1 and o.volume == 1.0


def test_rule4_pending_gives_up_after_max_attempts():
    (s,) = plan(context(masters={MASTER: view([mpos(1)])}, links=[link(status="PENDING", slave_ticket=0, attempts=3)]))
    assert isinstance(s, RecordSkip) and s.status == "FAILED"


def test_rule4_pending_retry_rechecks_slippage():
    (s,) = plan(context(masters={MASTER: view([mpos(1, price=1.0990)])}, links=[link(status="PENDING", slave_ticket=0)]))
    assert isinstance(s, RecordSkip) and "slippage" in s.reason


def test_rule4_pending_stale_master_waits_and_closed_master_closes_link():
    assert plan(context(masters={MASTER: view([mpos(1)], fresh=False)}, links=[link(status="PENDING", slave_ticket=0)])) == []
    (m,) = plan(context(masters={MASTER: view([])}, links=[link(status="PENDING", slave_ticket=0)]))
    assert isinstance(m, MarkClosed)


def test_rule4_paused_does_not_retry():
    assert plan(context(masters={MASTER: view([mpos(1)])}, links=[link(status="PENDING", slave_ticket=0)], paused=True)) == []


# ---------------------------------------------------------------- rule 5: OPEN links, master present
def test_rule5_closed_on_slave_is_never_reopened():
    # its deals are not read yet: nothing decided (reasons from history, docs/copier.md)
    assert plan(context(masters={MASTER: view([mpos(1)])}, links=[link()], slave_positions=[])) == []
    acts = plan(context(masters={MASTER: view([mpos(1)])}, links=[link()], slave_positions=[], closures={501: closure(501, "sl")}))
    assert types(acts) == ["MarkClosed"] and acts[0].reason == "closed by SL on slave" and acts[0].cause == "sl"
    # a seed-era row without a slave ticket has no history to read
    acts = plan(context(masters={MASTER: view([mpos(1)])}, links=[link(slave_ticket=0)], slave_positions=[]))
    assert types(acts) == ["MarkClosed"] and acts[0].reason == "closed on slave"


def test_rule5_partial_close_is_proportional():
    l = link(master_volume=1.0, slave_volume=0.3, )
    (c,) = plan(context(masters={MASTER: view([mpos(1, volume=0.5)])}, links=[l], slave_positions=[spos(volume=0.3)]))
    assert isinstance(c, Close) and c.volume == 0.15 and c.partial and c.reason == "master partial close"


def test_rule5_partial_close_below_minimum_closes_fully():
    l = link(master_volume=1.0, slave_volume=0.01)
    (c,) = plan(context(masters={MASTER: view([mpos(1, volume=0.5)])}, links=[l], slave_positions=[spos(volume=0.01)]))
    assert c.volume == 0.01 and not c.partial


def test_rule5_partial_close_takes_newest_positions_first():
    l = link(master_volume=1.0, slave_volume=1.0)
    positions = [spos(501, volume=1.0, t=1), spos(502, volume=0.5, t=2)]  # 0.5 added later
    acts = plan(context(masters={MASTER: view([mpos(1, volume=0.8)])}, links=[l], slave_positions=positions))
    assert [(a.slave_ticket, a.volume) for a in acts] == [(502, 0.5), (501, 0.2)]


def test_rule5_master_add_opens_the_extra_with_same_tag():
    l = link(master_volume=1.0, slave_volume=0.5)
    (o,) = plan(context(masters={MASTER: view([mpos(1, volume=1.5, price_current=1.1001)])}, links=[l],
                        slave_positions=[spos(volume=0.5)]))
    assert isinstance(o, Open) and o.purpose == "add" and o.volume == 0.25 and o.comment == TAG1


def test_rule5_slave_side_reduction_is_not_topped_up():
    l = link(master_volume=1.0, slave_volume=1.0)
    assert plan(context(masters={MASTER: view([mpos(1)])}, links=[l], slave_positions=[spos(volume=0.4)])) == []


def test_rule5_sltp_follows_master():
    (m,) = plan(context(masters={MASTER: view([mpos(1, sl=1.0950, tp=1.1100)])}, links=[link()],
                        slave_positions=[spos(sl=1.0900, tp=1.1100)]))
    assert isinstance(m, ModifySLTP) and (m.slave_ticket, m.sl, m.tp) == (501, 1.095, 1.11)
    assert plan(context(cfg(copy_sltp=False), masters={MASTER: view([mpos(1, sl=1.0950)])}, links=[link()],
                        slave_positions=[spos(sl=1.0900)])) == []


def test_rule5_unplaceable_sl_keeps_a_valid_current_level_without_churn():
    s = {"EURUSD.c": spec(stops_level=100)}
    ctx = context(masters={MASTER: view([mpos(1, sl=1.0995)])}, links=[link()], slave_positions=[spos(sl=1.0900)], specs=s)
    assert plan(ctx) == []
    # but an unprotected copy gets the nearest valid SL
    ctx = context(masters={MASTER: view([mpos(1, sl=1.0995)])}, links=[link()], slave_positions=[spos(sl=0.0)], specs=s)
    (m,) = plan(ctx)
    assert abs(m.sl - 1.0990) < 1e-9


def test_rule5_master_flip_closes_the_old_side_and_opens_the_new_one():
    # netting master flip (same identifier, other side): not a close - see test_copier_planner_flips.py
    f, c, o = plan(context(masters={MASTER: view([mpos(1, side="SELL")])}, links=[link()], slave_positions=[spos()]))
    assert (type(f).__name__, f.direction, f.status) == ("Flip", "SELL", "PENDING")
    assert isinstance(c, Close) and c.reason == "master flipped" and not c.ends_link
    assert isinstance(o, Open) and (o.side, o.volume, o.purpose) == ("SELL", 1.0, "retry")


# ---------------------------------------------------------------- rule 6: master closed
def test_rule6_master_closed_closes_every_slave_position_of_the_link():
    acts = plan(context(masters={MASTER: view([])}, links=[link()], slave_positions=[spos(501), spos(502, volume=0.2, t=2)]))
    assert sorted((a.slave_ticket, a.volume, a.reason) for a in acts) == [(501, 1.0, "master closed"), (502, 0.2, "master closed")]


def test_rule6_already_gone_marks_closed():
    # our own close went through (its reply lost, or a crash before the record)
    (m,) = plan(context(masters={MASTER: view([])}, links=[link()], closures={501: closure(501, "own", deal=9)}))
    assert isinstance(m, MarkClosed) and m.reason == "master closed" and m.cause == "own"
    # the slave's SL got there first: that is what happened to the copy
    (m,) = plan(context(masters={MASTER: view([])}, links=[link()], closures={501: closure(501, "sl", deal=9)}))
    assert isinstance(m, MarkClosed) and m.reason == "closed by SL on slave"


# ---------------------------------------------------------------- rule 7: terminal links
def test_rule7_terminal_links_are_never_reopened():
    for status in ("CLOSED", "SKIPPED", "FAILED"):
        assert plan(context(masters={MASTER: view([mpos(1)])}, links=[link(status=status)])) == [], status


def test_rule7_late_fill_of_a_failed_intent_is_closed_once_the_master_is_gone():
    (c,) = plan(context(masters={MASTER: view([])}, links=[link(status="FAILED")], slave_positions=[spos()]))
    assert isinstance(c, Close) and "orphan" in c.reason
    assert plan(context(masters={MASTER: view([mpos(1)])}, links=[link(status="FAILED")], slave_positions=[spos()])) == []


# ---------------------------------------------------------------- rule 9: manual trades
def test_rule9_manual_positions_are_never_touched():
    manual = [spos(800, comment="my trade"), spos(801, comment=""), spos(802, comment="cHzzzz:5")]  # unknown master hash
    ctx = context(masters={MASTER: view([])}, links=[], slave_positions=manual)
    assert plan(ctx) == []


def test_orphan_tagged_copy_without_any_link_is_closed_when_master_fresh_lacks_it():
    (c,) = plan(context(masters={MASTER: view([])}, slave_positions=[spos()]))
    assert isinstance(c, Close) and c.slave_ticket == 501
    assert plan(context(masters={MASTER: view([], fresh=False)}, slave_positions=[spos()])) == []


def test_actions_come_in_safe_order():
    masters = {MASTER: view([mpos(2)])}
    acts = plan(context(masters=masters, links=[link(1)], slave_positions=[spos()]))
    assert types(acts) == ["Close", "Open"]


def test_retry_volume_scales_with_master_partial_close():
    l = link(status="PENDING", slave_ticket=0, master_volume=1.0, slave_volume=0.6)
    (o,) = plan(context(masters={MASTER: view([mpos(1, volume=0.5)])}, links=[l]))
    assert o.volume == 0.3


def test_quote_missing_skips_sltp_sync_only():
    acts = plan(context(masters={MASTER: view([mpos(1, volume=0.5, sl=1.09)])}, links=[link()], slave_positions=[spos()], quotes={}))
    assert types(acts) == ["Close"]


def test_link_with_unknown_baseline_keeps_volume_alone():
    l = replace(link(), master_volume=0.0, slave_volume=0.0)  # a seed-era row
    assert plan(context(masters={MASTER: view([mpos(1, volume=0.3)])}, links=[l], slave_positions=[spos()])) == []


def test_rule4_adopted_intent_is_managed_in_the_same_pass():
    acts = plan(context(masters={MASTER: view([])}, links=[link(status="PENDING", slave_ticket=0)], slave_positions=[spos()]))
    assert types(acts) == ["Adopt", "Close"] and acts[1].reason == "master closed"


def test_paused_still_closes_and_modifies():
    acts = plan(context(masters={MASTER: view([mpos(1, volume=0.5, sl=1.0950)])}, links=[link()], slave_positions=[spos(sl=1.09)],
                        paused=True))
    assert types(acts) == ["Close", "ModifySLTP"]


# ---------------------------------------------------------------- a change pass plans what the change touched
def test_a_focused_pass_plans_only_the_links_the_change_touched():
    """``focus_links`` (a pass triggered by a master change): other links wait for the full pass."""
    tag2 = make_tag(MASTER, 2)
    links = [link(1), link(2, slave_ticket=502, tag=tag2)]
    positions = [spos(501), spos(502, comment=tag2)]
    masters = {MASTER: view([mpos(2)])}  # the master closed ticket 1; ticket 2 is unchanged
    full = plan(context(masters=masters, links=links, slave_positions=positions))
    assert [(type(a).__name__, a.master_ticket) for a in full] == [("Close", 1)]
    touched = plan(context(masters=masters, links=links, slave_positions=positions, focus_links=frozenset({(MASTER, 1)})))
    assert touched == full
    other = plan(context(masters=masters, links=links, slave_positions=positions, focus_links=frozenset({(MASTER, 2)})))
    assert other == []  # ticket 1's close waits for the timer's full pass
    # and a new master position is opened whatever the focus (it has no link yet)
    fresh = plan(context(masters={MASTER: view([mpos(2), mpos(3)])}, links=links[1:], slave_positions=positions[1:],
                         focus_links=frozenset({(MASTER, 3)})))
    assert [(type(a).__name__, a.master_ticket) for a in fresh] == [("Open", 3)]
