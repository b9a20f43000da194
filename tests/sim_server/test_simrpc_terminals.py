"""Terminals with paths over ZeroMQ: keywords, the shared current login of one terminal,
the wrong_login fault and AdminClient.switch_terminal, and the CLI commands for them."""
from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from sim import Simulator
from sim.cli import main
from sim.client import AdminClient, SimUnavailable, connect, wait_until_up
from sim.server import SimServer
from sim.world import DEMO_WORLD, parse_world, tomllib
from testing.harness import free_port

ROOT = Path(__file__).resolve().parents[2]
pytestmark = pytest.mark.timeout(60)

FTMO = "C:\\MT5\\FTMO\\terminal64.exe"      # logged into 1001 (SimFX-Live)
PROP = "D:/Terminals/Prop/terminal64.exe"     # logged into 2004 (SimProp-Server)
BUY_PROP = {"action": 1, "symbol": "EURUSD.c", "volume": 0.1, "type": 0, "type_filling": 2}
BUY_FX = {"action": 1, "symbol": "EURUSD", "volume": 0.1, "type": 0, "type_filling": 1}
TERMINALS_TOML = ("\n[[terminals]]\npath = 'C:\\MT5\\FTMO\\terminal64.exe'\nlogin = 1001\n"
                  "\n[[terminals]]\npath = 'D:/Terminals/Prop/terminal64.exe'\nlogin = 2004\n")


@pytest.fixture
def served():
    """A fresh in-process server of the demo world plus two terminals; (endpoint, sim, admin)."""
    data = tomllib.loads(DEMO_WORLD.read_text(encoding="utf-8") + TERMINALS_TOML)
    sim = Simulator(parse_world(data, "rpc-terminals"))
    srv = SimServer(sim, "tcp://127.0.0.1:*", tick_hz=0)
    endpoint = srv.start()
    admin = AdminClient(endpoint)
    try:
        yield endpoint, sim, admin
    finally:
        admin.close()
        srv.stop()


def test_keywords_and_bad_timeout_over_the_wire(served):
    endpoint, _, _ = served
    mt5 = connect(endpoint)
    assert mt5.initialize(path=None, login=2001, timeout=5000, portable=False) is True
    assert mt5.login(login=2002, server="SimProp-Server", timeout=1000) is True
    assert mt5.account_info().login == 2002
    assert mt5.login(2001, timeout=0) is False
    assert mt5.last_error() == (-2, "Terminal: Invalid params")
    assert mt5.account_info().login == 2002
    assert mt5.initialize(login=2001, timeout=-1) is False
    assert mt5.last_error() == (-2, "Terminal: Invalid params")
    assert mt5.initialize(login=2001, portable="no") is False
    assert mt5.last_error() == (-2, "Terminal: Invalid params")


def test_unknown_path_is_process_create_failed(served):
    endpoint, _, _ = served
    mt5 = connect(endpoint)
    assert mt5.initialize("C:\\Nowhere\\terminal64.exe", login=1001) is False
    assert mt5.last_error() == (-10003, "IPC initialize failed, Process create failed")
    assert mt5.account_info() is None


def test_two_clients_on_one_path_share_its_login(served):
    endpoint, sim, admin = served
    first, second = connect(endpoint), connect(endpoint)
    assert first.initialize(path=FTMO) is True
    assert first.account_info().login == 1001 and first.terminal_info().path == "C:\\MT5\\FTMO"
    assert second.initialize(path="c:/mt5/ftmo/terminal64.EXE", login=2001) is True  # same terminal
    info = first.account_info()
    assert info.login == 2001 and info.server == "SimProp-Server"
    r = first.order_send(BUY_PROP)
    assert r.retcode == 10009
    assert len(sim.accounts[2001].positions) == 1 and not sim.accounts[1001].positions
    assert [p.ticket for p in second.positions_get()] == [r.order]
    assert admin.terminal_logins() == {FTMO: 2001, PROP: 2004}


def test_wrong_login_fault_through_admin(served):
    endpoint, sim, admin = served
    admin.inject_fault(2001, "wrong_login", actual=2002)
    mt5 = connect(endpoint, login=2001)
    assert mt5.last_error() == (1, "Success")
    assert mt5.account_info().login == 2002
    assert mt5.order_send(BUY_PROP).retcode == 10009
    assert len(sim.accounts[2002].positions) == 1 and not sim.accounts[2001].positions
    with pytest.raises(ValueError):
        admin.inject_fault(2001, "wrong_login", actual=31337)
    admin.clear_faults(2001)
    assert mt5.login(2001) is True and mt5.account_info().login == 2001


def test_admin_switch_terminal(served):
    endpoint, sim, admin = served
    mt5 = connect(endpoint)
    assert mt5.initialize(FTMO) and mt5.account_info().login == 1001
    admin.switch_terminal("c:\\MT5\\ftmo\\terminal64.exe", 2003)
    assert mt5.account_info().login == 2003
    assert mt5.order_send(BUY_FX).retcode == 10009 and len(sim.accounts[2003].positions) == 1
    with pytest.raises(ValueError, match="unknown terminal path"):
        admin.switch_terminal("C:\\Nope\\terminal64.exe", 2003)
    with pytest.raises(ValueError, match="unknown login"):
        admin.switch_terminal(FTMO, 1)
    assert admin.world_summary()["terminals"][0] == {"path": FTMO, "folder": "C:\\MT5\\FTMO", "login": 2003}


def _run(capsys, *argv):
    try:
        code = main([str(a) for a in argv])
    except SystemExit as exc:
        code = exc.code
    out, err = capsys.readouterr()
    return code, out, err


def test_cli_terminals_switch_and_wrong_login(served, capsys):
    endpoint, sim, _ = served
    ep = ["--endpoint", endpoint]
    code, out, err = _run(capsys, "terminals", *ep, "--json")
    assert code == 0 and json.loads(out) == {FTMO: 1001, PROP: 2004}, err
    code, out, err = _run(capsys, "switch-terminal", *ep, "c:/mt5/ftmo/terminal64.exe", 2003, "--json")
    assert code == 0 and json.loads(out) == {"path": "c:/mt5/ftmo/terminal64.exe", "login": 2003}, err
    assert sim.terminal_logins()[FTMO] == 2003
    code, out, err = _run(capsys, "terminals", *ep)
    assert code == 0 and "2003" in out and FTMO in out
    code, _, err = _run(capsys, "switch-terminal", *ep, "C:\\Nope\\t.exe", 2003)
    assert code == 2 and "unknown terminal path" in err and len(err.strip().splitlines()) == 1
    code, out, err = _run(capsys, "fault", *ep, "--login", 2001, "wrong-login", "--actual", 2002, "--json")
    assert code == 0 and json.loads(out) == {"login": 2001, "fault": "wrong_login", "actual": 2002}, err
    assert sim.faults[2001].wrong_login == 2002
    code, _, err = _run(capsys, "fault", *ep, "--login", 2001, "wrong-login")
    assert code == 2 and "--actual" in err
    code, _, err = _run(capsys, "fault", *ep, "--login", 2001, "wrong-login", "--actual", 987654)
    assert code == 2 and "unknown login 987654" in err
    code, out, err = _run(capsys, "fault", *ep, "--login", 2001, "right-login")
    assert code == 0 and sim.faults[2001].wrong_login == 0, err


def test_served_world_file_with_terminals_and_session_replay(tmp_path):
    """``python -m sim serve --world`` with [[terminals]]; a restarted server gets the
    client's initialize(path=...) replayed, so the client is back on that terminal."""
    world = tmp_path / "w.toml"
    world.write_text(DEMO_WORLD.read_text(encoding="utf-8") + TERMINALS_TOML, encoding="utf-8")
    endpoint = f"tcp://127.0.0.1:{free_port()}"

    def serve():
        proc = subprocess.Popen([sys.executable, "-m", "sim", "serve", "--endpoint", endpoint, "--tick-hz", "0",
                                 "--world", str(world)], cwd=ROOT, stdout=subprocess.DEVNULL,
                                stderr=subprocess.PIPE, text=True)
        try:
            wait_until_up(endpoint, timeout_s=20)
        except SimUnavailable:
            proc.kill()
            raise AssertionError(proc.stderr.read()) from None
        return proc

    proc = serve()
    try:
        mt5 = connect(endpoint)
        assert mt5.initialize(path=PROP) is True and mt5.account_info().login == 2004
        proc.kill()
        proc.wait(10)
        proc = serve()
        assert mt5.account_info().login == 2004  # replayed initialize(path=PROP)
        assert mt5.terminal_info().path == "D:\\Terminals\\Prop"
    finally:
        proc.kill()
        proc.wait(10)
