"""The security model: loopback without login; elsewhere a token on every call; CSRF-safe controls."""
from __future__ import annotations

import os
import subprocess
import sys

import pytest
from dashboard_kit import make
from fastapi.testclient import TestClient

from dashboard import security
from tests.conftest import ROOT

TOKEN = "s3cret-token-0123456789"
POST = {"X-CopyHub-Request": "1"}


@pytest.mark.parametrize("host,loopback", [("127.0.0.1", True), ("127.0.0.2", True), ("::1", True), ("[::1]", True),
                                           ("localhost", True), ("0.0.0.0", False), ("::", False),
                                           ("192.168.1.10", False), ("vps.example", False)])
def test_what_counts_as_loopback(host, loopback):
    assert security.is_loopback(host) is loopback


def test_non_loopback_needs_a_long_enough_token():
    assert security.required_token("127.0.0.1", "") is None
    with pytest.raises(security.DashboardConfigError, match="COPYHUB_DASHBOARD_TOKEN"):
        security.required_token("0.0.0.0", None)
    with pytest.raises(security.DashboardConfigError, match="at least 16"):
        security.required_token("0.0.0.0", "short")
    assert security.required_token("0.0.0.0", TOKEN) == TOKEN


def test_the_node_refuses_to_start_on_a_public_bind_without_a_token(tmp_path):
    env = {k: v for k, v in os.environ.items() if k != "COPYHUB_DASHBOARD_TOKEN"}
    res = subprocess.run([sys.executable, str(ROOT / "nodes" / "monitor.py"), "--db", f"sqlite:///{tmp_path / 's.db'}",
                          "--http-host", "0.0.0.0", "--http-port", "1", "--log-dir", str(tmp_path)],
                         capture_output=True, text=True, timeout=60, env={**env, "PYTHONPATH": str(ROOT)})
    assert res.returncode == 78, res.stderr
    assert "COPYHUB_DASHBOARD_TOKEN" in res.stderr and "not loopback" in res.stderr


@pytest.fixture
def guarded(tmp_path):
    store, collector, app, published = make(tmp_path, token=TOKEN, bind_host="0.0.0.0")
    with TestClient(app, base_url="http://10.0.0.5:8080") as client:
        yield store, client, published
    store.close()


@pytest.mark.parametrize("path", ["/api/v1/nodes", "/api/v1/accounts", "/api/v1/links", "/api/v1/events",
                                  "/api/v1/exposure", "/api/v1/risk", "/api/v1/state", "/api/v1/stream",
                                  "/api/v1/openapi.json", "/metrics", "/api/v1/accounts/S1/flatten"])
def test_every_read_needs_the_token(guarded, path):
    _, client, _ = guarded
    assert client.get(path).status_code == 401
    assert client.get(path, headers={"Authorization": "Bearer wrong-token-0123456789"}).status_code == 401


def test_reads_with_the_bearer_token(guarded):
    _, client, _ = guarded
    auth = {"Authorization": f"Bearer {TOKEN}"}
    assert client.get("/api/v1/nodes", headers=auth).status_code == 200
    assert client.get("/metrics", headers=auth).status_code == 200


def test_controls_need_the_token_and_change_nothing_without_it(guarded):
    store, client, published = guarded
    assert client.post("/api/v1/accounts/S1/pause", headers=POST).status_code == 401
    assert client.post("/api/v1/kill-switch", headers=POST, json={"on": True}).status_code == 401
    assert store.get_flag("paused:S1") is None and store.get_flag("kill_switch") is None and published == []
    r = client.post("/api/v1/accounts/S1/pause", headers={**POST, "Authorization": f"Bearer {TOKEN}"})
    assert r.status_code == 200 and store.get_flag("paused:S1") is True


def test_the_page_asks_for_the_token_and_the_cookie_is_not_the_token(guarded):
    _, client, _ = guarded
    login = client.get("/")
    assert login.status_code == 401 and 'name="token"' in login.text and TOKEN not in login.text
    assert client.head("/").status_code == 401  # HEAD is a read like GET: no token, no page
    assert client.post("/login", data={"token": "wrong-token-0123456789"}).status_code == 401
    r = client.post("/login", data={"token": TOKEN}, follow_redirects=False)
    assert r.status_code == 303
    cookie = r.cookies.get(security.COOKIE)
    assert cookie and TOKEN not in cookie
    assert "httponly" in r.headers["set-cookie"].lower() and "samesite=strict" in r.headers["set-cookie"].lower()
    client.cookies.set(security.COOKIE, cookie)
    assert client.get("/").status_code == 200 and "/static/app.js" in client.get("/").text
    assert client.get("/api/v1/accounts").status_code == 200


def test_controls_are_post_only_and_refuse_cross_site_requests(tmp_path):
    store, _, app, published = make(tmp_path)  # loopback, no token: CSRF is what protects it
    with TestClient(app, base_url="http://127.0.0.1:8080") as client:
        assert client.get("/api/v1/accounts/S1/pause").status_code == 405
        assert client.post("/api/v1/accounts/S1/pause").status_code == 403  # a plain form post: no custom header
        evil = {**POST, "Origin": "http://evil.example"}
        assert client.post("/api/v1/accounts/S1/pause", headers=evil).status_code == 403
        assert client.post("/api/v1/accounts/S1/pause", headers={**POST, "Origin": "null"}).status_code == 403
        assert store.get_flag("paused:S1") is None and published == []
        same = {**POST, "Origin": "http://127.0.0.1:8080"}
        assert client.post("/api/v1/accounts/S1/pause", headers=same).status_code == 200
    store.close()


def test_dns_rebinding_is_refused_by_the_host_check(tmp_path):
    store, _, app, _ = make(tmp_path)
    with TestClient(app, base_url="http://attacker.example:8080") as client:
        assert client.get("/api/v1/nodes").status_code == 403
    with TestClient(app, base_url="http://localhost:8080") as client:
        assert client.get("/api/v1/nodes").status_code == 200
    store.close()


def test_token_comparison_is_constant_time_and_never_logged(guarded, caplog):
    assert security.same(TOKEN, TOKEN) and not security.same(TOKEN, TOKEN[:-1]) and not security.same(None, TOKEN)
    _, client, _ = guarded
    client.post("/login", data={"token": "wrong-token-0123456789"})
    client.get("/api/v1/nodes", headers={"Authorization": f"Bearer {TOKEN}"})
    assert TOKEN not in caplog.text and "wrong-token" not in caplog.text
