"""A short chaos soak on real processes (bench/soak.py has the long one): the demo trader
trades the master while followers are killed -9 and restarted; at the end the terminals
hold no duplicate, no orphan, no miss, and the netting follower is on target."""
from __future__ import annotations

import pytest

from bench.soak import check, soak

pytestmark = pytest.mark.integration


def test_short_soak_with_kill_9_keeps_every_invariant(tmp_path):
    result = soak(tmp_path, duration_s=30, kill_every_s=7, settle_s=30, seed=5, rate=2.0)
    assert result["kills"] >= 3 and result["master_deals"] > 10, result
    assert result["ok"], result


def test_the_soak_check_sees_a_duplicate_and_an_orphan(tmp_path):
    """The checker itself can fail: a second copy of one master position and a copy whose
    master position is gone are both reported."""
    from copier.tags import make_tag
    from testing.harness import LocalFleet
    from tests.integration.mt5ops import close, market

    fleet = LocalFleet(tmp_path, tick_hz=0)
    try:
        fleet.start_sim()
        fleet.sim_account("M", "MASTER", 1001)
        m, s1 = fleet.terminal(1001), fleet.terminal(2001)
        kept = market(m, "EURUSD", "BUY", 0.10)
        gone = market(m, "GBPUSD", "BUY", 0.10)
        close(m, gone.order)
        for _ in range(2):  # two copies of one master position
            market(s1, "EURUSD.c", "BUY", 0.10, comment=make_tag("M", kept.order))
        market(s1, "GBPUSD.c", "BUY", 0.10, comment=make_tag("M", gone.order))
        found = check(fleet)
        assert [d["master_ticket"] for d in found["duplicates"]] == [kept.order]
        assert [o["master_ticket"] for o in found["orphans"]] == [gone.order]
    finally:
        fleet.close()
