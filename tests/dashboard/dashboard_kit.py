"""A seeded store and an in-process dashboard app for the monitor's tests."""
from __future__ import annotations

from typing import Any

from dashboard.app import create_app
from dashboard.collector import Collector
from db import now_ms, open_store


class Published(list):
    """Records the ctl messages the app publishes: [(target, command, args)]."""

    def __call__(self, target: str, command: str, **args: Any) -> bool:
        self.append((target, command, args))
        return True


def seed(store: Any) -> None:
    """One master M, two slaves S1 (copying) and S2 (a skipped and a failed copy)."""
    store.upsert_account({"name": "M", "type": "MASTER", "enabled": True, "terminal": {"kind": "sim", "login": 1001}})
    for name, login in (("S1", 2001), ("S2", 2002)):
        store.upsert_account({"name": name, "type": "SLAVE", "enabled": True, "terminal": {"kind": "sim", "login": login},
                              "follows": ["M"]})
    now = now_ms()
    store.upsert_node("M", {"role": "master", "state": "RUNNING", "pid": 11, "heartbeat_ms": now, "kind": "master",
                            "supervisor_state": "RUNNING", "restarts": 0, "proc_pid": 11,
                            "account": {"login": 1001, "balance": 10000.0, "equity": 10050.0, "margin": 100.0,
                                        "margin_free": 9950.0, "profit": 50.0, "currency": "USD"}})
    store.upsert_node("S1", {"role": "slave", "state": "RUNNING", "pid": 12, "heartbeat_ms": now, "kind": "slave",
                             "supervisor_state": "RUNNING", "restarts": 2, "proc_pid": 12,
                             "account": {"login": 2001, "balance": 5000.0, "equity": 4900.0, "margin": 50.0,
                                         "margin_free": 4850.0, "profit": -100.0, "currency": "USD"},
                             "info": {"risk": {"level": "ALERT", "locked": False, "daily_used_pct": 40.0,
                                               "daily_level": "ALERT", "daily_limit": 250.0, "overall_used_pct": 10.0,
                                               "overall_level": "OK", "overall_limit": 500.0}}})
    store.upsert_node("S2", {"role": "slave", "state": "CONFIG_ERROR", "kind": "slave", "supervisor_state": "CONFIG_ERROR",
                             "supervisor_reason": "account 'S2': field 'symbol_map' must be an object", "restarts": 0})
    store.record_intent({"slave_name": "S1", "master_name": "M", "master_ticket": 501, "symbol": "EURUSD.c",
                         "master_symbol": "EURUSD", "direction": "BUY", "master_direction": "BUY", "master_volume": 1.0,
                         "master_price": 1.1, "slave_volume": 0.5, "status": "PENDING", "master_contract_size": 100000.0})
    store.update_trade("S1", "M", 501, {"status": "OPEN", "slave_ticket": 9001, "slave_price": 1.1002,
                                        "slippage_points": 2.0, "latency_ms": 35.0})
    store.record_intent({"slave_name": "S2", "master_name": "M", "master_ticket": 501, "symbol": "EURUSD",
                         "master_symbol": "EURUSD", "direction": "BUY", "master_volume": 1.0, "status": "PENDING"})
    store.update_trade("S2", "M", 501, {"status": "SKIPPED", "skip_reason": "slippage 60.0 points > tolerance 50"})
    store.record_intent({"slave_name": "S2", "master_name": "M", "master_ticket": 502, "symbol": "XAUUSD",
                         "master_symbol": "XAUUSD", "direction": "SELL", "master_volume": 0.2, "status": "PENDING"})
    store.update_trade("S2", "M", 502, {"status": "FAILED", "skip_reason": "10019 No money (broker constraint)"})
    store.add_event("copy_opened", node="S1", account="S1", master="M", master_ticket=501, latency_ms=35.0)
    store.add_event("copy_skipped", node="S2", account="S2", master="M", master_ticket=501, reason="slippage")
    store.add_snapshot("S1", now - 60_000, {"equity": 4950.0, "balance": 5000.0})
    store.add_snapshot("S1", now - 30_000, {"equity": 4920.0, "balance": 5000.0})


def make(tmp_path, *, token: str | None = None, bind_host: str = "127.0.0.1", alerts: Any = None):
    """(store, collector, app, published) over a seeded SQLite store."""
    store = open_store(f"sqlite:///{tmp_path / 'store.db'}")
    store.ensure_indexes()
    seed(store)
    collector = Collector(store, alerts=alerts)
    collector.load_recent_final()
    collector.poll(force=True)
    published = Published()
    app = create_app(collector, store, publish=published, token=token, bind_host=bind_host, port=8080)
    return store, collector, app, published
