"""The JSON API, the controls (same code path as cli.py, origin in the audit trail) and /metrics."""
from __future__ import annotations

import json
import subprocess
import sys

import pytest
from prometheus_client.parser import text_string_to_metric_families

from tests.conftest import ROOT

POST = {"X-CopyHub-Request": "1"}




def test_nodes_show_state_restarts_and_the_reason_when_not_running(env):
    _, _, client, _ = env
    nodes = {n["name"]: n for n in client.get("/api/v1/nodes").json()["nodes"]}
    assert nodes["S1"]["state"] == "RUNNING" and nodes["S1"]["restarts"] == 2 and nodes["S1"]["reason"] is None
    assert nodes["S2"]["state"] == "CONFIG_ERROR" and "symbol_map" in nodes["S2"]["reason"]
    assert nodes["M"]["heartbeat_age_s"] is not None


def test_accounts_carry_money_and_the_guardians_gauges(env):
    _, _, client, _ = env
    accounts = {a["name"]: a for a in client.get("/api/v1/accounts").json()["accounts"]}
    s1 = accounts["S1"]
    assert (s1["balance"], s1["equity"], s1["profit"]) == (5000.0, 4900.0, -100.0)
    assert s1["margin_level"] == pytest.approx(9800.0)
    assert s1["risk"]["limits"]["daily"] == {"used_ratio": 0.4, "level": "ALERT", "limit_money": 250.0, "headroom_money": None}
    assert s1["risk"]["level"] == "ALERT" and s1["open_copies"] == 1
    risk = client.get("/api/v1/risk").json()["risk"]
    assert risk["S1"]["limits"]["overall"]["used_ratio"] == 0.1 and risk["M"] is None


def test_links_filter_by_slave_status_and_symbol(env):
    _, _, client, _ = env
    assert client.get("/api/v1/links").json()["count"] == 3
    bad = client.get("/api/v1/links", params={"status": "SKIPPED,FAILED"}).json()["links"]
    assert {(r["slave"], r["status"]) for r in bad} == {("S2", "SKIPPED"), ("S2", "FAILED")}
    assert all(r["reason"] for r in bad)
    only = client.get("/api/v1/links", params={"slave": "S1"}).json()["links"]
    assert [(r["master_ticket"], r["latency_ms"], r["slippage_points"]) for r in only] == [(501, 35.0, 2.0)]
    assert client.get("/api/v1/links", params={"symbol": "XAUUSD"}).json()["count"] == 1
    assert client.get("/api/v1/links", params={"status": "NOPE"}).status_code == 422


def test_positions_put_copies_side_by_side(env):
    _, _, client, _ = env
    rows = {r["master_ticket"]: r for r in client.get("/api/v1/positions").json()["positions"]}
    assert {c["slave"]: c["status"] for c in rows[501]["copies"]} == {"S1": "OPEN", "S2": "SKIPPED"}
    assert rows[502]["copies"][0]["reason"].startswith("10019")


def test_events_since_and_by_account(env):
    store, _, client, _ = env
    all_events = client.get("/api/v1/events").json()["events"]
    assert [e["kind"] for e in all_events] == ["copy_opened", "copy_skipped"]
    assert [e["kind"] for e in client.get("/api/v1/events", params={"account": "S2"}).json()["events"]] == ["copy_skipped"]
    assert client.get("/api/v1/events", params={"since": str(all_events[-1]["ts_ms"] + 1)}).json()["events"] == []
    assert len(client.get("/api/v1/events", params={"since": "10m"}).json()["events"]) == 2
    assert client.get("/api/v1/events", params={"since": "yesterday-ish"}).status_code == 422


def test_exposure_per_account_and_total(env):
    _, _, client, _ = env
    exp = client.get("/api/v1/exposure").json()
    row = next(r for r in exp["rows"] if r["account"] == "S1")
    assert row["symbol"] == "EURUSD.c" and row["net_lots"] == 0.5
    assert row["notional"] == pytest.approx(0.5 * 100000 * 1.1002)
    assert {t["symbol"] for t in exp["totals"]} == {"EURUSD"}  # the underlying: the master's symbol


def test_pause_from_the_dashboard_is_the_cli_pause_with_its_origin(env, tmp_path):
    store, _, client, published = env
    r = client.post("/api/v1/accounts/S1/pause", headers=POST)
    assert r.status_code == 200 and r.json()["paused"] is True
    assert store.get_flag("paused:S1") is True
    assert published == [("S1", "pause", {})]
    ev = store.list_events(kind="operator_command")[-1]
    assert ev["data"]["command"] == "pause" and ev["data"]["origin"] == "dashboard" and ev["node"] == "dashboard"
    status = subprocess.run([sys.executable, str(ROOT / "cli.py"), "--db", f"sqlite:///{tmp_path / 'store.db'}",
                             "--bus-pub", "tcp://127.0.0.1:1", "status", "--json"], capture_output=True, text=True, timeout=60)
    rows = {r["name"]: r for r in json.loads(status.stdout)["nodes"]}
    assert rows["S1"]["paused"] is True, status.stdout
    assert client.post("/api/v1/accounts/S1/resume", headers=POST).json()["paused"] is False
    assert store.get_flag("paused:S1") is None


def test_flatten_needs_the_account_name_confirmed_and_only_for_slaves(env):
    store, _, client, published = env
    preview = client.get("/api/v1/accounts/S1/flatten").json()
    assert preview["account"] == "S1" and [c["master_ticket"] for c in preview["open_copies"]] == [501]
    assert client.post("/api/v1/accounts/S1/flatten", headers=POST, json={}).status_code == 422
    assert store.get_flag("flatten:S1") is None and published == []
    assert client.post("/api/v1/accounts/M/flatten", headers=POST, json={"confirm": "M"}).status_code == 409
    r = client.post("/api/v1/accounts/S1/flatten", headers=POST, json={"confirm": "S1"})
    assert r.status_code == 200 and store.get_flag("flatten:S1") and store.get_flag("paused:S1")
    assert published == [("S1", "pause", {}), ("S1", "flatten", {})]


def test_kill_switch_release_and_unknown_accounts(env):
    store, _, client, published = env
    assert client.post("/api/v1/kill-switch", headers=POST, json={"on": True}).json()["kill_switch"] is True
    assert store.get_flag("kill_switch") is True and published[-1] == ("all", "pause", {"reason": "kill_switch"})
    assert client.post("/api/v1/kill-switch", headers=POST, json={"on": "yes"}).status_code == 422
    client.post("/api/v1/kill-switch", headers=POST, json={"on": False})
    assert store.get_flag("kill_switch") is None
    # S1's guardian reports no lock (seed: info.risk.locked false): nothing is requested, the answer says so
    answer = client.post("/api/v1/accounts/S1/release", headers=POST).json()
    assert answer == {"account": "S1", "locked": False, "release_requested": False,
                      "message": "S1 has no risk lock: nothing to release"}
    assert store.get_flag("risk_release:S1") is None
    r = client.post("/api/v1/accounts/NOPE/pause", headers=POST)
    assert r.status_code == 404 and "known: M, S1, S2" in r.json()["detail"]
    commands = [(e["data"]["command"], e["data"]["origin"]) for e in store.list_events(kind="operator_command")]
    assert commands == [("kill-switch on", "dashboard"), ("kill-switch off", "dashboard"), ("release", "dashboard")]


def test_metrics_parse_and_the_latency_histogram_counts_the_copies(env):
    store, collector, client, _ = env
    store.record_intent({"slave_name": "S1", "master_name": "M", "master_ticket": 503, "symbol": "EURUSD.c",
                         "status": "PENDING", "direction": "SELL", "slave_volume": 0.1})
    store.update_trade("S1", "M", 503, {"status": "OPEN", "latency_ms": 120.0, "slippage_points": 0.0})
    store.add_event("copy_opened", node="S1", account="S1", master="M", master_ticket=503)
    collector.poll(force=True)
    text = client.get("/metrics").text
    fams = {f.name: f for f in text_string_to_metric_families(text)}
    count = {s.labels["slave"]: s.value for s in fams["copyhub_copy_latency_seconds"].samples
             if s.name.endswith("_count")}
    assert count == {"S1": 2.0}
    le = {s.labels["le"]: s.value for s in fams["copyhub_copy_latency_seconds"].samples if s.name.endswith("_bucket")}
    assert le["0.05"] == 1.0 and le["0.25"] == 2.0
    copies = {(s.labels["slave"], s.labels["status"]): s.value for s in fams["copyhub_copies"].samples
              if s.name == "copyhub_copies_total"}
    assert copies[("S2", "SKIPPED")] == 1.0 and copies[("S2", "FAILED")] == 1.0 and copies[("S1", "OPEN")] == 2.0
    up = {s.labels["node"]: s.value for s in fams["copyhub_node_up"].samples}
    assert up == {"M": 1.0, "S1": 1.0, "S2": 0.0}
    assert {s.labels["node"]: s.value for s in fams["copyhub_node_restarts"].samples}["S1"] == 2.0
    assert {s.labels["account"]: s.value for s in fams["copyhub_account_equity"].samples}["S1"] == 4900.0
    used = {(s.labels["account"], s.labels["limit"]): s.value for s in fams["copyhub_risk_used_ratio"].samples}
    assert used == {("S1", "daily"): 0.4, ("S1", "overall"): 0.1}
    assert "copyhub_copy_slippage_points_bucket" in text


def test_state_and_openapi(env):
    _, _, client, _ = env
    state = client.get("/api/v1/state").json()
    assert set(state) == {"fleet", "positions", "events", "charts"}
    assert state["charts"]["equity"]["S1"][0][1] == 4950.0
    assert sum(b["count"] for b in state["charts"]["latency_ms"]) == 1
    paths = client.get("/api/v1/openapi.json").json()["paths"]
    assert "/api/v1/accounts/{name}/pause" in paths and "post" in paths["/api/v1/kill-switch"]


def test_page_and_its_assets_are_served_locally(env):
    _, _, client, _ = env
    page = client.get("/").text
    assert "/static/app.js" in page and "/static/style.css" in page
    assert "http://" not in page and "https://" not in page  # no CDN
    for asset in ("app.js", "style.css"):
        body = client.get(f"/static/{asset}").text
        assert "https://" not in body and "http://" not in body
    assert client.get("/static/../app.py").status_code == 404


def test_the_page_answers_head_like_get_without_a_body(env):
    """Uptime checks and ``curl -I`` send HEAD: the page says 200 with GET's headers."""
    _, _, client, _ = env
    head, get = client.head("/"), client.get("/")
    assert head.status_code == get.status_code == 200
    assert head.headers["content-type"] == get.headers["content-type"] == "text/html; charset=utf-8"
    assert head.headers["content-length"] == get.headers["content-length"] and head.content == b""
