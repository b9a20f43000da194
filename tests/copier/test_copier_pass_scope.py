"""copier.pass_scope: when a change pass may skip reading the follower's positions, and
which finished links a loop may let go of."""
from __future__ import annotations

from copier.pass_scope import links_to_let_go, only_new_opens
from tests.copier.copier_testkit import mpos, view

NOW = 1_800_000_000_000
HOUR = 3_600_000


def _masters(*positions, fresh=True, first_sync=False):
    return {"M": view(positions, fresh=fresh, first_sync=first_sync)}


def test_a_new_master_position_without_a_link_is_an_open():
    masters = _masters(mpos(1), mpos(2))
    seen = {"M": ({1: mpos(1)}, {})}
    assert only_new_opens(frozenset({("M", 2)}), masters, {}, seen) is True


def test_a_pending_link_without_a_slave_position_is_still_an_open():
    masters = _masters(mpos(2))
    assert only_new_opens(frozenset({("M", 2)}), masters, {("M", 2): {"status": "PENDING"}}, {}) is True
    assert only_new_opens(frozenset({("M", 2)}), masters, {("M", 2): {"status": "PENDING", "slave_ticket": 7}}, {}) is False


def test_anything_but_an_open_must_read():
    masters = _masters(mpos(1), mpos(2))
    seen = {"M": ({1: mpos(1)}, {})}
    assert only_new_opens(frozenset({("M", 1)}), masters, {}, seen) is False  # known: changed (SL, volume)
    assert only_new_opens(frozenset({("M", 2)}), masters, {("M", 2): {"status": "OPEN"}}, seen) is False  # flip/change
    assert only_new_opens(frozenset({("M", 3)}), masters, {("M", 3): {"status": "OPEN"}}, seen) is False  # closed
    assert only_new_opens(frozenset({("M", 2), ("M", 1)}), masters, {}, seen) is False  # one of them is not an open
    assert only_new_opens(frozenset(), masters, {}, seen) is False and only_new_opens(None, masters, {}, seen) is False
    assert only_new_opens(frozenset({("X", 2)}), masters, {}, seen) is False  # unknown master


def test_a_stale_or_first_synced_master_must_read():
    assert only_new_opens(frozenset({("M", 2)}), _masters(mpos(2), fresh=False), {}, {}) is False
    assert only_new_opens(frozenset({("M", 2)}), _masters(mpos(2), first_sync=True), {}, {}) is False


def test_finished_links_of_gone_master_tickets_are_let_go_after_the_keep_time():
    links = {("M", 1): {"status": "CLOSED", "updated_ms": NOW - 2 * HOUR},
             ("M", 2): {"status": "SKIPPED", "updated_ms": NOW - 2 * HOUR},  # master still holds it
             ("M", 3): {"status": "FAILED", "updated_ms": NOW - HOUR // 2},  # too recent
             ("M", 4): {"status": "OPEN", "updated_ms": NOW - 2 * HOUR},  # live
             ("M", 5): {"status": "PENDING", "updated_ms": 0},
             ("M", 6): {"status": "CLOSED"}}  # no write time: as old as can be
    assert links_to_let_go(links, _masters(mpos(2)), NOW, HOUR) == [("M", 1), ("M", 6)]


def test_nothing_is_let_go_while_a_master_is_stale_or_there_is_none():
    links = {("M", 1): {"status": "CLOSED", "updated_ms": 0}}
    assert links_to_let_go(links, _masters(fresh=False), NOW, HOUR) == []
    assert links_to_let_go(links, {}, NOW, HOUR) == []
    assert links_to_let_go(links, _masters(), NOW, HOUR) == [("M", 1)]
