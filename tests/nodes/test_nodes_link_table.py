"""LinkTable: the live index and the order always agree with the plain dict's."""
from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from nodes.link_table import LIVE, LinkTable

STATUSES = ["PENDING", "OPEN", "CLOSED", "SKIPPED", "FAILED"]
ops = st.lists(st.tuples(st.sampled_from(["set", "del"]), st.tuples(st.sampled_from("AB"), st.integers(1, 8)),
                         st.sampled_from(STATUSES)), max_size=60)


@settings(max_examples=300, deadline=None)
@given(ops, st.sets(st.tuples(st.sampled_from("AB"), st.integers(1, 8))))
def test_live_and_order_follow_every_assignment_and_deletion(steps, keys):
    table, plain = LinkTable(), {}
    for op, key, status in steps:
        if op == "set":
            rec = {"status": status}
            table[key] = plain[key] = rec
        elif key in plain:
            del table[key]
            del plain[key]
    assert dict(table) == plain
    assert table.live == {k: r for k, r in plain.items() if r["status"] in LIVE}
    assert table.in_order([*keys, ("C", 99)]) == [k for k in plain if k in keys]
    assert table.in_order(table.live) == [k for k in plain if plain[k]["status"] in LIVE]


def test_bulk_changes_are_refused_so_the_index_cannot_drift():
    table = LinkTable()
    table[("M", 1)] = {"status": "OPEN"}
    for call in (lambda: table.update({("M", 2): {}}), lambda: table.pop(("M", 1)), lambda: table.setdefault(("M", 3), {}),
                 table.clear, table.popitem):
        with pytest.raises(TypeError):
            call()
    assert list(table.live) == [("M", 1)]
