"""Prometheus metrics of the monitor (``/metrics``), through ``prometheus_client``.

Copy figures are observed once per link as the monitor sees it (a histogram sample when
a copy is first seen OPEN with its latency; a counter step per status a link reaches);
node and account figures are read from the collector's current state at scrape time.
"""
from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

from prometheus_client import CollectorRegistry, Counter, Histogram, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily

LATENCY_BUCKETS_S = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0)
SLIPPAGE_BUCKETS_POINTS = (0.0, 1.0, 2.0, 5.0, 10.0, 20.0, 50.0, 100.0, 200.0, 500.0)
CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"


class _StateCollector:
    """Node and account gauges from ``read()`` -> (node rows, account rows), at scrape time."""

    def __init__(self, read: Callable[[], tuple[list[dict[str, Any]], list[dict[str, Any]]]]) -> None:
        self.read = read

    def describe(self) -> list:
        return []  # unchecked collector: families are built at scrape time

    def collect(self) -> Iterator[Any]:
        nodes, accounts = self.read()
        up = GaugeMetricFamily("copyhub_node_up", "1 when the node is RUNNING", labels=["node"])
        restarts = CounterMetricFamily("copyhub_node_restarts", "restarts of the node by its launcher", labels=["node"])
        for n in nodes:
            up.add_metric([n["name"]], 1.0 if n["state"] == "RUNNING" else 0.0)
            restarts.add_metric([n["name"]], float(n.get("restarts") or 0))
        equity = GaugeMetricFamily("copyhub_account_equity", "account equity in its deposit currency", labels=["account"])
        used = GaugeMetricFamily("copyhub_risk_used_ratio", "fraction of the risk limit used (1 = at the limit)",
                                 labels=["account", "limit"])
        for a in accounts:
            if a.get("equity") is not None:
                equity.add_metric([a["name"]], float(a["equity"]))
            for limit, g in ((a.get("risk") or {}).get("limits") or {}).items():
                used.add_metric([a["name"], limit], float(g["used_ratio"]))
        yield from (up, restarts, equity, used)


class Metrics:
    """The monitor's registry; ``observe_copy`` and ``count_status`` are called by the collector."""

    def __init__(self, read_state: Callable[[], tuple[list[dict[str, Any]], list[dict[str, Any]]]]) -> None:
        self.registry = CollectorRegistry(auto_describe=False)
        self.latency = Histogram("copyhub_copy_latency_seconds", "master open to slave fill (s)",
                                 ["master", "slave"], buckets=LATENCY_BUCKETS_S, registry=self.registry)
        self.slippage = Histogram("copyhub_copy_slippage_points", "slave fill price against the master's, in points",
                                  ["master", "slave"], buckets=SLIPPAGE_BUCKETS_POINTS, registry=self.registry)
        self.copies = Counter("copyhub_copies", "copies by the status they reached", ["slave", "status"],
                              registry=self.registry)
        self.registry.register(_StateCollector(read_state))

    def observe_copy(self, master: str, slave: str, latency_ms: float | None, slippage_points: float | None) -> None:
        """One copy made: its latency (ms, recorded in seconds) and slippage (points)."""
        if latency_ms is not None:
            self.latency.labels(master=master, slave=slave).observe(max(0.0, latency_ms) / 1000.0)
        if slippage_points is not None:
            self.slippage.labels(master=master, slave=slave).observe(abs(slippage_points))

    def count_status(self, slave: str, status: str) -> None:
        self.copies.labels(slave=slave, status=status).inc()

    def render(self) -> bytes:
        """The Prometheus text exposition."""
        return generate_latest(self.registry)
