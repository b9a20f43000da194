"""Fixtures that start a real fleet on loopback: sim server, bus proxy, master, slaves."""
from __future__ import annotations

import pytest

from testing.harness import LocalFleet

FAST = {
    "COPYHUB_HEARTBEAT_INTERVAL_MS": "250",
    "COPYHUB_STALE_AFTER_MS": "1500",
    "COPYHUB_SLAVE_RECONCILE_INTERVAL_MS": "200",
    "COPYHUB_CONFIG_RELOAD_INTERVAL_MS": "500",
    "COPYHUB_LEASE_TTL_MS": "3000",
    "COPYHUB_LEASE_MARGIN_MS": "1000",
}
SYMBOL_MAP = {"XAUUSD": "GOLD", "US30": "DJ30"}
# GOLD at the prop broker has 3 digits and quotes ~0.15 under the master's XAUUSD:
# 150 of its points. The seed's formula compares raw prices, so tolerance must cover it.
TOLERANCE = 300


@pytest.fixture
def fleet(tmp_path):
    f = LocalFleet(tmp_path, tick_hz=0, env=FAST)
    f.start_sim()
    f.start_proxy()
    f.sim_account("M", "MASTER", 1001)
    f.sim_account("S1", "SLAVE", 2001, suffix=".c", symbol_map=SYMBOL_MAP, slippage_tolerance=TOLERANCE)
    f.sim_account("S2", "SLAVE", 2002, suffix=".c", symbol_map=SYMBOL_MAP, slippage_tolerance=TOLERANCE)
    try:
        yield f
    finally:
        f.close()


@pytest.fixture
def running(fleet):
    """The fleet with the master and both slaves up and following."""
    fleet.start_node("master", "M")
    fleet.wait_node_running("M")
    for name in ("S1", "S2"):
        fleet.start_node("slave", name)
    for name in ("S1", "S2"):
        fleet.wait_node_running(name)
    # first fresh snapshot seen: the follow record exists, so new master positions are copied
    from testing.harness import wait_until

    wait_until(lambda: fleet.store.get_flag("follow:S1:M") and fleet.store.get_flag("follow:S2:M"), timeout=10, message="follow records")
    return fleet
