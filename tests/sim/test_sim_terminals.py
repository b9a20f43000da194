"""Terminals with paths: initialize(path=...), a current login shared by every session on one
terminal, the wrong_login fault, the operator's switch_terminal, and the package's keywords."""
import json

import pytest

from sim import Simulator
from sim.world import DEMO_WORLD, WorldError, load_world, parse_world, tomllib

FTMO = "C:\\MT5\\FTMO\\terminal64.exe"      # logged into 1001 (SimFX-Live)
PROP = "D:/Terminals/Prop/terminal64.exe"     # logged into 2004 (SimProp-Server, password)
BUY_FX = {"action": 1, "symbol": "EURUSD", "volume": 0.1, "type": 0, "type_filling": 1}
BUY_PROP = {"action": 1, "symbol": "EURUSD.c", "volume": 0.1, "type": 0, "type_filling": 2}
INVALID = (-2, "Terminal: Invalid params")
NO_PROCESS = (-10003, "IPC initialize failed, Process create failed")
AUTH = (-6, "Terminal: Authorization failed")


def world_data() -> dict:
    data = tomllib.loads(DEMO_WORLD.read_text(encoding="utf-8"))
    for a in data["accounts"]:
        if a["login"] == 2004:
            a["password"] = "p2004"
    data["terminals"] = [{"path": FTMO, "login": 1001}, {"path": PROP, "login": 2004}]
    return data


@pytest.fixture
def sim():
    return Simulator(parse_world(world_data(), "terminals-test"))


# --- keywords -------------------------------------------------------------------------------

def test_initialize_and_login_take_the_packages_keywords(sim):
    mt5 = sim.terminal()
    assert mt5.initialize(path=None, login=2001, timeout=5000, portable=False) is True
    assert mt5.account_info().login == 2001
    assert mt5.initialize(None, login=2003, server="SimFX-Live", timeout=1) is True
    assert mt5.account_info().login == 2003
    assert mt5.login(login=2002, password=None, server="SimProp-Server", timeout=60000) is True
    assert mt5.account_info().login == 2002 and mt5.last_error() == (1, "Success")
    assert mt5.login(2001, timeout=10) is True and mt5.account_info().login == 2001
    assert mt5.initialize(path=FTMO, timeout=100, portable=True) is True
    assert mt5.account_info().login == 1001


@pytest.mark.parametrize("kw", [{"timeout": 0}, {"timeout": -5}, {"timeout": "60000"}, {"timeout": 1.5},
                                {"timeout": True}, {"timeout": None}, {"portable": 1}, {"portable": "yes"},
                                {"portable": None}, {"login": "2001"}, {"login": True}])
def test_initialize_refuses_bad_timeout_portable_login(sim, kw):
    mt5 = sim.terminal()
    assert mt5.initialize(**{"login": 2001, **kw}) is False
    assert mt5.last_error() == INVALID
    assert mt5.account_info() is None


@pytest.mark.parametrize("kw", [{"timeout": 0}, {"timeout": -1}, {"timeout": 2.0}, {"timeout": "1"},
                                {"login": None}, {"login": "2002"}])
def test_login_refuses_bad_arguments_and_keeps_the_account(sim, kw):
    mt5 = sim.terminal()
    assert mt5.initialize(login=2001)
    assert mt5.login(**{"login": 2002, **kw}) is False
    assert mt5.last_error() == INVALID
    assert mt5.account_info().login == 2001


# --- paths ----------------------------------------------------------------------------------

def test_unknown_path_fails_like_a_missing_terminal(sim):
    mt5 = sim.terminal()
    assert mt5.initialize(login=2001)
    assert mt5.initialize("C:\\MT5\\Nope\\terminal64.exe", login=1001) is False
    assert mt5.last_error() == NO_PROCESS
    assert mt5.account_info() is None  # a failed initialize leaves the terminal unbound
    assert mt5.initialize(path="C:\\MT5\\FTMO") is False and mt5.last_error() == NO_PROCESS
    demo = Simulator.demo().terminal()  # a world without terminals knows no path at all
    assert demo.initialize(FTMO, login=1001) is False and demo.last_error() == NO_PROCESS
    assert demo.initialize(login=1001) is True


def test_path_without_login_attaches_to_the_terminals_account(sim):
    mt5 = sim.terminal()
    assert mt5.initialize(FTMO) is True
    a = mt5.account_info()
    assert a.login == 1001 and a.server == "SimFX-Live"
    ti = mt5.terminal_info()
    assert ti.path == "C:\\MT5\\FTMO"           # the installation folder, not the exe
    assert ti.data_path.startswith("C:\\Users\\trader\\AppData\\Roaming\\MetaQuotes\\Terminal\\")
    prop = sim.terminal()
    assert prop.initialize(path=PROP) is True  # logged in already: no password needed
    assert prop.account_info().login == 2004 and prop.account_info().server == "SimProp-Server"
    assert prop.terminal_info().path == "D:\\Terminals\\Prop"
    assert prop.terminal_info().data_path != ti.data_path
    plain = sim.terminal()
    plain.initialize(login=1001)
    assert plain.terminal_info().path != ti.path
    assert mt5.initialize(FTMO, server="SimProp-Server") is False and mt5.last_error() == AUTH


def test_second_session_logging_the_terminal_in_switches_the_first(sim):
    first, second, private = sim.terminal(), sim.terminal(), sim.terminal()
    assert first.initialize(path=FTMO) and first.account_info().login == 1001
    assert private.initialize(login=1001)
    assert second.initialize(path=FTMO, login=2001) is True
    assert first.account_info().login == 2001 and first.account_info().server == "SimProp-Server"
    r = first.order_send(BUY_PROP)
    assert r.retcode == 10009
    assert [p.ticket for p in sim.accounts[2001].positions.values()] == [r.order]
    assert not sim.accounts[1001].positions
    assert first.order_send(BUY_FX).retcode == 10013  # SimFX's symbol is unknown on 2001's server
    assert private.account_info().login == 1001      # a session without a path is its own terminal
    assert private.positions_get() == ()
    assert sim.terminal_logins() == {FTMO: 2001, PROP: 2004}


def test_paths_compare_case_and_separator_insensitively(sim):
    a, b = sim.terminal(), sim.terminal()
    assert a.initialize("c:/mt5/ftmo/TERMINAL64.EXE") is True and a.account_info().login == 1001
    assert b.initialize("C:\\\\MT5//Ftmo\\terminal64.exe", login=2003) is True
    assert a.account_info().login == 2003
    assert sim.terminal_logins()[FTMO] == 2003
    c = sim.terminal()
    assert c.initialize("d:\\terminals\\prop\\terminal64.exe") and c.account_info().login == 2004


def test_login_on_an_attached_session_switches_the_whole_terminal(sim):
    a, b = sim.terminal(), sim.terminal()
    assert a.initialize(FTMO) and b.initialize(FTMO)
    assert b.login(login=2002) is True
    assert a.account_info().login == 2002
    assert a.positions_get() == () and a.order_send(BUY_PROP).retcode == 10009
    assert len(sim.accounts[2002].positions) == 1
    b.shutdown()  # closing one session leaves the terminal logged in
    fresh = sim.terminal()
    assert fresh.initialize(FTMO) and fresh.account_info().login == 2002
    assert a.account_info().login == 2002


def test_terminal_passwords(sim):
    a = sim.terminal()
    assert a.initialize(FTMO)
    assert a.login(2004) is False and a.last_error() == AUTH    # FTMO never saved 2004's password
    assert a.account_info().login == 1001                      # a failed login keeps the account
    assert a.initialize(FTMO, login=2004, password="bad") is False and a.last_error() == AUTH
    b = sim.terminal()
    assert b.initialize(FTMO) and b.account_info().login == 1001
    assert b.initialize(FTMO, login=2004, password="p2004") is True
    assert b.login(1001) is True and b.login(2004) is True  # saved by now, as a real terminal does
    assert b.account_info().login == 2004
    c = sim.terminal()
    assert c.initialize(PROP, login=2004) is True  # the terminal's own account, saved password


# --- wrong_login fault & switch_terminal ------------------------------------------------------

def test_wrong_login_fault_lands_on_another_account(sim):
    sim.inject_fault(2001, "wrong_login", actual=2002)
    mt5 = sim.terminal()
    assert mt5.initialize(login=2001, server="SimProp-Server") is True
    assert mt5.last_error() == (1, "Success")
    assert mt5.account_info().login == 2002
    r = mt5.order_send(BUY_PROP)
    assert r.retcode == 10009
    assert len(sim.accounts[2002].positions) == 1 and not sim.accounts[2001].positions
    assert [p.ticket for p in mt5.positions_get()] == [r.order]
    other = sim.terminal()
    assert other.initialize(login=2003) and other.login(2001) is True
    assert other.account_info().login == 2002
    # on a terminal with a path the terminal itself ends on the wrong account
    t = sim.terminal()
    assert t.initialize(FTMO, login=2001) is True
    assert sim.terminal_logins()[FTMO] == 2002 and t.account_info().login == 2002
    sim.inject_fault(2001, "right_login")
    assert mt5.initialize(login=2001) and mt5.account_info().login == 2001
    sim.inject_fault(2001, "wrong_login", actual=2003)
    sim.clear_faults(2001)
    assert mt5.login(2001) and mt5.account_info().login == 2001


def test_wrong_login_fault_checks_its_parameters(sim):
    with pytest.raises(ValueError):
        sim.inject_fault(2001, "wrong_login")
    with pytest.raises(ValueError):
        sim.inject_fault(2001, "wrong_login", actual=424242)
    with pytest.raises(TypeError):
        sim.inject_fault(2001, "right_login", actual=2002)
    sim.inject_fault(2001, "wrong_login", actual=2002)
    assert next(a for a in sim.world_summary()["accounts"] if a["login"] == 2001)["faults"] == {"wrong_login": 2002}


def test_operator_switches_a_terminal_by_hand(sim):
    a, b = sim.terminal(), sim.terminal()
    assert a.initialize(FTMO) and b.initialize(PROP)
    sim.switch_terminal("c:/mt5/ftmo/terminal64.exe", 2003)
    assert a.account_info().login == 2003 and b.account_info().login == 2004
    assert a.order_send(BUY_FX).retcode == 10009 and len(sim.accounts[2003].positions) == 1
    sim.switch_terminal(FTMO, 2004)  # by hand: no password asked
    assert a.account_info().login == 2004
    assert sim.terminal_logins() == {FTMO: 2004, PROP: 2004}
    summary = sim.world_summary()["terminals"]
    assert summary == [{"path": FTMO, "folder": "C:\\MT5\\FTMO", "login": 2004},
                       {"path": PROP, "folder": "D:\\Terminals\\Prop", "login": 2004}]
    with pytest.raises(ValueError, match="unknown terminal path"):
        sim.switch_terminal("C:\\Other\\terminal64.exe", 2003)
    with pytest.raises(ValueError, match="unknown login"):
        sim.switch_terminal(FTMO, 999)
    with pytest.raises(ValueError, match="unknown login"):
        sim.switch_terminal(FTMO, True)


# --- world files ----------------------------------------------------------------------------

def test_terminals_in_toml_and_json_world_files(tmp_path):
    text = DEMO_WORLD.read_text(encoding="utf-8") + (
        "\n[[terminals]]\npath = 'C:\\MT5\\FTMO\\terminal64.exe'\nlogin = 1001\n"
        "\n[[terminals]]\npath = \"C:\\\\MT5\\\\Spare\\\\terminal64.exe\"\n")
    toml = tmp_path / "w.toml"
    toml.write_text(text, encoding="utf-8")
    w = load_world(toml)
    assert [(t.path, t.login) for t in w.terminals] == [(FTMO, 1001), ("C:\\MT5\\Spare\\terminal64.exe", None)]
    js = tmp_path / "w.json"
    data = world_data()
    js.write_text(json.dumps(data, default=str), encoding="utf-8")
    assert [(t.path, t.login) for t in load_world(js).terminals] == [(FTMO, 1001), (PROP, 2004)]
    spare = Simulator(w).terminal()
    assert spare.initialize("C:\\MT5\\Spare\\terminal64.exe") is False and spare.last_error() == AUTH
    assert spare.initialize("C:\\MT5\\Spare\\terminal64.exe", login=2001) is True
    assert spare.account_info().login == 2001
    assert load_world(DEMO_WORLD).terminals == ()


@pytest.mark.parametrize("terminals, fragment", [
    ([{"path": FTMO}, {"path": "c:/mt5/ftmo/TERMINAL64.exe"}], "terminals[1].path"),
    ([{"path": FTMO, "login": 999}], "terminals[0].login"),
    ([{"path": FTMO, "login": "1001"}], "terminals[0].login"),
    ([{"path": ""}], "terminals[0].path"),
    ([{"login": 1001}], "terminals[0].path"),
    ([{"path": FTMO, "folder": "x"}], "terminals[0].folder"),
    ({"path": FTMO}, "terminals"),
])
def test_bad_terminals_are_refused_with_the_key(terminals, fragment):
    data = world_data()
    data["terminals"] = terminals
    with pytest.raises(WorldError) as e:
        parse_world(data, "bad")
    assert f"bad: {fragment}:" in str(e.value)
