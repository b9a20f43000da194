"""The page in a real headless Chromium (Debian's chromium + chromium-driver, driven by Selenium)
against a fleet on the simulator: a master trade appears with its copies without a reload,
pause pauses (store and CLI agree), flatten asks for confirmation first."""
from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest

from testing.harness import LocalFleet, free_port, wait_until
from tests.conftest import ROOT

pytestmark = pytest.mark.integration

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
DRIVER = shutil.which("chromedriver") or "/usr/bin/chromedriver"
FAST = {"COPYHUB_HEARTBEAT_INTERVAL_MS": "250", "COPYHUB_STALE_AFTER_MS": "1500",
        "COPYHUB_SLAVE_RECONCILE_INTERVAL_MS": "200", "COPYHUB_CONFIG_RELOAD_INTERVAL_MS": "500",
        "COPYHUB_LEASE_TTL_MS": "3000", "COPYHUB_LEASE_MARGIN_MS": "1000"}


def browser():
    """Headless Chromium, or a skip naming what is missing (CI installs both: .ci/run)."""
    if not (Path(CHROMIUM).exists() and Path(DRIVER).exists()):
        if os.environ.get("CI"):
            pytest.fail("chromium / chromium-driver missing: .ci/run installs them")
        pytest.skip("needs Debian's chromium and chromium-driver (apt-get install chromium chromium-driver)")
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    opts = webdriver.ChromeOptions()
    opts.binary_location = CHROMIUM
    for arg in ("--headless=new", "--no-sandbox", "--disable-dev-shm-usage", "--disable-gpu", "--window-size=1500,2000",
                "--no-first-run", "--disable-extensions"):
        opts.add_argument(arg)
    return webdriver.Chrome(service=Service(DRIVER), options=opts)


def texts(driver, selector):
    """innerText of every match, read in the page in one go (rows are re-rendered on every push)."""
    return driver.execute_script(
        "return Array.from(document.querySelectorAll(arguments[0])).map(e => e.innerText);", selector)


def click(driver, selector):
    assert driver.execute_script("const e = document.querySelector(arguments[0]); if (e) e.click(); return !!e;",
                                 selector), f"nothing to click at {selector}"


def wait_css(driver, selector, timeout=20.0, text=None):
    def found():
        got = texts(driver, selector)
        return got if got and (text is None or all(text in t for t in got)) else None
    return wait_until(found, timeout=timeout, interval=0.1, message=f"{selector} on the page")


@pytest.fixture
def fleet_with_monitor(tmp_path):
    f = LocalFleet(tmp_path, tick_hz=0, env=FAST)
    try:
        f.start_sim()
        f.start_proxy()
        f.sim_account("M", "MASTER", 1001)
        for name, login in (("S1", 2001), ("S2", 2002)):
            f.sim_account(name, "SLAVE", login, suffix=".c", slippage_tolerance=300)
        f.start_node("master", "M")
        f.wait_node_running("M")
        for name in ("S1", "S2"):
            f.start_node("slave", name)
        for name in ("S1", "S2"):
            f.wait_node_running(name)
        wait_until(lambda: f.store.get_flag("follow:S1:M") and f.store.get_flag("follow:S2:M"), timeout=15,
                   message="follow records")
        port = free_port()
        f.start_node("monitor", "monitor", args=["--http-port", str(port)])
        url = f"http://127.0.0.1:{port}/"

        def up():
            import urllib.request
            try:
                with urllib.request.urlopen(url + "api/v1/nodes", timeout=1) as r:
                    return r.status == 200
            except OSError:
                if not f.procs["monitor"].alive():
                    raise RuntimeError(f.procs["monitor"].output()[-3000:]) from None
                return False
        wait_until(up, timeout=30, message="monitor HTTP")
        yield f, url
    finally:
        f.close()


def test_live_trade_pause_and_flatten_confirmation_in_chromium(fleet_with_monitor):
    fleet, url = fleet_with_monitor
    sys.path.insert(0, str(ROOT / "tests" / "integration"))
    from mt5ops import market

    driver = browser()
    try:
        driver.get(url)
        wait_css(driver, "#conn", text="live")
        wait_css(driver, 'tr[data-account="S1"]')
        driver.execute_script("window.__loadedOnce = 'yes';")  # gone if the page reloads

        mt5 = fleet.terminal(1001)
        ticket = int(market(mt5, "EURUSD", "BUY", 0.1).order)
        for slave in ("S1", "S2"):
            wait_css(driver, f'tr.copy[data-slave="{slave}"][data-master-ticket="{ticket}"] td.status', timeout=20, text="OPEN")
        wait_css(driver, f'tr.master[data-master-ticket="{ticket}"]')
        assert driver.execute_script("return window.__loadedOnce;") == "yes"  # pushed, not reloaded

        # pause S2 from the page: the store and the CLI both see it
        click(driver, 'tr[data-account="S2"] button[data-action="pause"]')
        wait_until(lambda: fleet.store.get_flag("paused:S2") is True, timeout=10, message="paused:S2 in the store")
        status = subprocess.run([sys.executable, str(ROOT / "cli.py"), "--db", fleet.db_url, "--bus-pub", fleet.bus_pub,
                                 "status", "--json"], capture_output=True, text=True, timeout=60)
        assert {r["name"]: r for r in json.loads(status.stdout)["nodes"]}["S2"]["paused"] is True, status.stdout
        wait_css(driver, 'tr[data-account="S2"][data-paused="true"]', timeout=10)
        audit = fleet.store.list_events(kind="operator_command")
        assert [(e["data"]["command"], e["data"]["origin"], e["account"]) for e in audit] == [("pause", "dashboard", "S2")]

        # flatten asks first, naming the account and its open copies; cancel changes nothing
        click(driver, 'tr[data-account="S1"] button[data-action="flatten"]')
        dialog = wait_css(driver, "#confirm-dialog[open]", timeout=10)[0]
        assert "S1" in dialog and "EURUSD" in dialog
        assert texts(driver, "#confirm-dialog .open-count") == ["1"]
        click(driver, "#confirm-cancel")
        wait_until(lambda: not texts(driver, "#confirm-dialog[open]"), timeout=5, message="dialog closed")
        time.sleep(0.5)  # the cancelled request would have been sent by now
        assert fleet.store.get_flag("flatten:S1") is None and fleet.store.get_flag("paused:S1") is None
        click(driver, 'tr[data-account="S1"] button[data-action="flatten"]')
        wait_css(driver, "#confirm-dialog[open]", timeout=10)
        click(driver, "#confirm-ok")
        wait_until(lambda: fleet.store.get_flag("paused:S1") is True, timeout=10, message="flatten applied")
        wait_until(lambda: not [t for t in fleet.trades("S1", "OPEN")], timeout=20, message="S1 flattened")
    finally:
        driver.quit()


def test_demo_page_screenshot(tmp_path):
    """The demo as a user starts it; the picture in the README comes from here
    (COPYHUB_UPDATE_SCREENSHOT=1 writes docs/dashboard.png)."""
    port = free_port()
    ports = [free_port() for _ in range(3)]
    env = {**os.environ, "COPYHUB_DASHBOARD_PORT": str(port), "PYTHONPATH": str(ROOT)}
    out = open(tmp_path / "launcher.out", "wb")
    proc = subprocess.Popen([sys.executable, str(ROOT / "launcher.py"), "--demo", "--data-dir", str(tmp_path),
                             "--bus-pub", f"tcp://127.0.0.1:{ports[0]}", "--bus-sub", f"tcp://127.0.0.1:{ports[1]}",
                             "--sim-endpoint", f"tcp://127.0.0.1:{ports[2]}", "--trader-rate", "2", "--duration", "60"],
                            stdout=out, stderr=subprocess.STDOUT, cwd=str(tmp_path), env=env)
    driver = None
    try:
        wait_until(lambda: f"http://127.0.0.1:{port}/" in (tmp_path / "launcher.out").read_text(errors="replace")
                   or proc.poll() is not None, timeout=60, message="demo banner")
        assert proc.poll() is None, (tmp_path / "launcher.out").read_text()[-3000:]
        driver = browser()
        driver.get(f"http://127.0.0.1:{port}/")
        wait_css(driver, "#conn", text="live")
        wait_until(lambda: len(texts(driver, "tr.copy td.status")) >= 6, timeout=45, message="copies on the page")
        # the picture shows the fleet settled: every node RUNNING (the launcher's min uptime passed)
        wait_until(lambda: set(texts(driver, "#nodes tbody tr:not([data-node='demo-trader']) td:nth-child(3)"))
                   == {"RUNNING"}, timeout=30, message="every node RUNNING on the page")
        time.sleep(2)
        shot = ROOT / "docs" / "dashboard.png" if os.environ.get("COPYHUB_UPDATE_SCREENSHOT") else tmp_path / "dashboard.png"
        driver.set_window_size(1500, 2000)
        driver.save_screenshot(str(shot))
        assert shot.stat().st_size > 10_000
    finally:
        if driver is not None:
            driver.quit()
        proc.terminate()
        try:
            proc.wait(60)
        except subprocess.TimeoutExpired:
            proc.kill()
        out.close()
