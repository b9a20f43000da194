import sys

import pytest

from terminals import TerminalError, open_terminal, terminal_spec


def test_seed_flat_path_means_a_real_mt5_terminal():
    spec = terminal_spec({"name": "FTMO_Master", "path": "C:/MT5/terminal64.exe"})
    assert spec == {"kind": "mt5", "path": "C:/MT5/terminal64.exe"}


def test_terminal_spec_wins_over_path():
    spec = terminal_spec({"name": "a", "path": "x", "terminal": {"kind": "sim", "login": 2001}})
    assert spec["kind"] == "sim"


def test_no_terminal_at_all_is_a_clear_error():
    with pytest.raises(TerminalError, match="nothing to connect to"):
        terminal_spec({"name": "a"})


@pytest.mark.skipif(sys.platform == "win32", reason="checks the non-Windows message")
def test_real_mt5_off_windows_says_what_to_use_instead():
    with pytest.raises(TerminalError, match="only on Windows.*mt5linux.*sim"):
        open_terminal({"name": "a", "terminal": {"kind": "mt5", "path": "x"}})


def test_missing_mt5linux_package_says_what_to_install(monkeypatch):
    monkeypatch.setitem(sys.modules, "mt5linux", None)
    with pytest.raises(TerminalError, match="pip install mt5linux"):
        open_terminal({"name": "a", "terminal": {"kind": "mt5linux", "host": "h", "port": 1}})


def test_unknown_kind_is_refused():
    with pytest.raises(TerminalError, match="unknown"):
        open_terminal({"name": "a", "terminal": {"kind": "ctrader"}})


def test_password_comes_from_the_named_environment_variable(monkeypatch):
    from terminals import factory
    from terminals.bridge import SERVER_SOURCE

    seen = {}

    class FakeMT5:
        """The Windows package as seen by the bridge's server-side helper."""

        @staticmethod
        def initialize(*args, **kwargs):
            seen["kwargs"] = kwargs
            return True

        @staticmethod
        def last_error():
            return (1, "Success")

    class FakeClient:
        """mt5linux's client, with its rpyc server namespace in-process."""

        def __init__(self, host, port, timeout):
            seen["addr"] = (host, port, timeout)
            self.ns = {"mt5": FakeMT5}

        def execute(self, code):
            assert code == SERVER_SOURCE
            exec(code, self.ns)

        def eval(self, expr):
            return eval(expr, self.ns)

    monkeypatch.setitem(sys.modules, "mt5linux", type(sys)("mt5linux"))
    sys.modules["mt5linux"].MetaTrader5 = FakeClient
    spec = {"kind": "mt5linux", "host": "h", "port": 9, "login": 7, "server": "S", "password_env": "PW"}
    open_terminal({"name": "a", "terminal": spec}, environ={"PW": "secret"})
    assert seen["kwargs"] == {"login": 7, "server": "S", "password": "secret"}
    assert seen["addr"] == ("h", 9, 10.0)
    with pytest.raises(TerminalError, match="'PW'"):
        factory.open_terminal({"name": "a", "terminal": spec}, environ={})
