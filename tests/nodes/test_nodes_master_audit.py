"""The master's audit record of a change waits until the change has been copied (issue 14).

A published change gets its ``master_change`` log lines and ``master_changes`` event once
no change went out for ``CHANGE_RECORD_QUIET_MS`` (the store write and the log line no
longer take the CPU the proxy and the slaves need right after the publish), at the latest
after ``CHANGE_RECORD_MAX_WAIT_MS``, and always when the node stops. Nothing is lost: every
published delta gets exactly one event, with its ``seq`` and the ms the poll saw it."""
from __future__ import annotations

import pytest

from nodes.master import CHANGE_RECORD_MAX_WAIT_MS, CHANGE_RECORD_QUIET_MS
from tests.nodes.test_nodes_master_calls import _buy, master  # noqa: F401  (fixture)


def _changes(rt):
    return [data for kind, data in rt.events if kind == "master_changes"]


def _publish_a_change(raw, loop, rt):
    """Open one master position and poll: returns (the published delta, its seen ms)."""
    _buy(raw)
    published = len(rt.published)
    assert loop.poll_once()
    (delta,) = [m for m in rt.published[published:] if type(m).__name__ == "Delta"]  # (a due snapshot may follow)
    return delta, loop.unrecorded[-1][0]


def test_the_poll_that_publishes_a_change_writes_no_record(master):  # noqa: F811
    sim, raw, term, rt, loop = master
    loop.poll_once()
    before = len(_changes(rt))
    delta, seen = _publish_a_change(raw, loop, rt)
    assert loop.record_changes(seen) == 0
    assert loop.record_changes(seen + CHANGE_RECORD_QUIET_MS - 1) == 0
    assert len(_changes(rt)) == before


def test_a_record_is_written_once_the_bus_was_quiet(master):  # noqa: F811
    sim, raw, term, rt, loop = master
    loop.poll_once()
    before = len(_changes(rt))
    delta, seen = _publish_a_change(raw, loop, rt)
    assert loop.record_changes(seen + CHANGE_RECORD_QUIET_MS) == 1
    (record,) = _changes(rt)[before:]
    ticket = delta.upsert_positions[0].identifier
    assert record["seq"] == delta.seq and record["seen_ms"] == seen
    assert any(c.endswith(f":{ticket}") for c in record["changes"])
    assert loop.record_changes(seen + 10 * CHANGE_RECORD_QUIET_MS) == 0  # written once


def test_changes_in_every_poll_are_recorded_after_the_longest_wait(master, monkeypatch):  # noqa: F811
    import nodes.master as master_mod

    sim, raw, term, rt, loop = master
    loop.poll_once()
    before = len(_changes(rt))
    clock = [10**12]
    monkeypatch.setattr(master_mod, "utc_ms", lambda: clock[0])
    deltas = []
    while clock[0] - 10**12 < CHANGE_RECORD_MAX_WAIT_MS:  # a change in every 20 ms poll
        deltas.append(_publish_a_change(raw, loop, rt)[0])
        assert loop.record_changes(clock[0]) == 0  # never right after a publish...
        clock[0] += 20
    deltas.append(_publish_a_change(raw, loop, rt)[0])
    assert loop.record_changes(clock[0]) == len(deltas)  # ...until the oldest waited the longest
    records = _changes(rt)[before:]
    assert [r["seq"] for r in records] == [d.seq for d in deltas]  # one each, in order
    assert records[0]["seen_ms"] == 10**12


def test_a_stopping_node_writes_what_waits(master):  # noqa: F811
    sim, raw, term, rt, loop = master
    loop.poll_once()
    before = len(_changes(rt))
    delta, seen = _publish_a_change(raw, loop, rt)
    assert loop.record_changes(seen, force=True) == 1
    assert [r["seq"] for r in _changes(rt)[before:]] == [delta.seq]
    assert loop.unrecorded == []


@pytest.mark.parametrize("closing", [False, True])
def test_a_refused_change_has_no_record(master, closing):  # noqa: F811
    """A change the login check refused was never published: nothing to record."""
    from nodes.identity import WrongAccount

    sim, raw, term, rt, loop = master
    loop.poll_once()
    before = len(_changes(rt))
    _buy(raw)
    rt.wrong = True
    with pytest.raises(WrongAccount):
        loop.poll_once()
    assert loop.unrecorded == []
    assert loop.record_changes(10**15, force=closing) == 0
    assert len(_changes(rt)) == before
