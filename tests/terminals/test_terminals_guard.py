"""terminals.guard: any exception from an adapter becomes the MT5 failure behaviour."""
from __future__ import annotations

import sys
import timeit
from collections import namedtuple

import pytest
import zmq

from terminals import GuardedTerminal, TerminalError, error_for, guard, open_terminal
from terminals.guard import FAILURE_VALUES

Pos = namedtuple("TradePosition", "ticket volume")


class FakeModule:
    """A module-like terminal whose next call raises ``self.exc`` (when set)."""

    ORDER_TYPE_BUY = 0
    TRADE_ACTION_DEAL = 1
    TradePosition = Pos
    __version__ = "5.0.45"

    def __init__(self) -> None:
        self.exc: BaseException | None = None
        self.error = (1, "Success")
        self.calls: list[tuple] = []

    def _maybe_raise(self, name, args, kwargs):
        self.calls.append((name, args, kwargs))
        if self.exc is not None:
            raise self.exc

    def last_error(self):
        return self.error

    def __getattr__(self, name):
        if name not in FAILURE_VALUES:
            raise AttributeError(name)

        def call(*args, **kwargs):
            self._maybe_raise(name, args, kwargs)
            if name == "positions_get":
                return (Pos(1, 0.1),)
            if name in ("initialize", "login", "symbol_select"):
                return True
            return "ok"

        return call


class RemoteError(Exception):
    pass


RemoteError.__module__ = "rpyc.core.vinegar"  # what rpyc makes of a non-builtin remote exception


@pytest.mark.parametrize("exc, code, word", [
    (ConnectionRefusedError(111, "Connection refused"), -10004, "connection refused"),
    (ConnectionResetError(104, "Connection reset by peer"), -10004, "connection lost"),
    (BrokenPipeError(32, "Broken pipe"), -10004, "connection lost"),
    (EOFError("connection closed by peer"), -10004, "EOFError"),
    (OSError(113, "No route to host"), -10004, "No route"),
    (ConnectionError("not connected"), -10004, "not connected"),
    (TimeoutError("result expired"), -10005, "result expired"),
    (TimeoutError("timed out"), -10005, "timed out"),
    (zmq.Again(), -10005, "Again"),
    (zmq.ZMQError(zmq.ETERM), -10004, "ZMQError"),
    (RemoteError("boom"), -10004, "RemoteError"),
    (TypeError("positions_get() takes no positional arguments"), -2, "TypeError"),
    (ValueError("bad"), -2, "ValueError"),
    (KeyError("x"), -10000, "KeyError"),
    (RuntimeError("simulator server error"), -10000, "RuntimeError"),
])
def test_every_exception_class_maps_to_an_mt5_error(exc, code, word):
    fake = FakeModule()
    mt5 = guard(fake)
    fake.exc = exc
    assert mt5.positions_get() is None
    got = mt5.last_error()
    assert got[0] == code and word in got[1], got
    assert error_for(exc) == got
    assert {-10004: "No IPC connection", -10005: "IPC timeout", -2: "Terminal: Invalid params",
            -10000: "IPC internal failure"}[code] in got[1]


def test_failure_values_are_the_packages():
    fake = FakeModule()
    fake.exc = EOFError()
    mt5 = guard(fake)
    assert mt5.initialize(login=1, password="hunter2") is False
    assert mt5.login(1) is False
    assert mt5.shutdown() is None
    assert mt5.symbol_select("EURUSD", True) is False
    assert mt5.symbols_total() == 0
    for name, fail in FAILURE_VALUES.items():
        if name != "last_error":
            assert getattr(mt5, name)() == fail, name


def test_constants_record_types_and_other_attributes_pass_through():
    fake = FakeModule()
    mt5 = guard(fake)
    assert mt5.ORDER_TYPE_BUY == 0 and mt5.TRADE_ACTION_DEAL == 1
    assert mt5.TradePosition is Pos
    assert mt5.__version__ == "5.0.45"
    assert mt5.inner is fake and guard(mt5) is mt5
    with pytest.raises(AttributeError):
        _ = mt5.SYMBOL_FILLING_FOK  # absent stays absent (reference pitfall 2)
    mt5.some_setting = 5  # writes go to the adapter (e.g. the sim client's timeout_ms)
    assert fake.some_setting == 5
    assert "positions_get" in dir(mt5)


def test_success_returns_the_result_and_last_error_delegates_to_the_module():
    fake = FakeModule()
    mt5 = guard(fake)
    assert mt5.positions_get(symbol="EURUSD") == (Pos(1, 0.1),)
    assert fake.calls[-1] == ("positions_get", (), {"symbol": "EURUSD"})
    fake.error = (-4, "Terminal: Not found")
    assert mt5.last_error() == (-4, "Terminal: Not found")
    fake.exc = EOFError("gone")
    assert mt5.account_info() is None
    assert mt5.last_error()[0] == -10004  # the guard's error while the failure stands
    fake.exc = None
    assert mt5.account_info() == "ok"
    assert mt5.last_error() == (-4, "Terminal: Not found")  # the module's own again


def test_a_raising_last_error_is_an_error_too():
    class Broken(FakeModule):
        def last_error(self):
            raise EOFError("closed")

    mt5 = guard(Broken())
    assert mt5.last_error()[0] == -10004


def test_keyboard_interrupt_still_propagates():
    fake = FakeModule()
    fake.exc = KeyboardInterrupt()
    with pytest.raises(KeyboardInterrupt):
        guard(fake).positions_get()


def test_messages_never_carry_the_arguments(caplog):
    fake = FakeModule()
    fake.exc = ConnectionRefusedError(111, "Connection refused")
    mt5 = guard(fake, label="acct")
    with caplog.at_level("DEBUG", logger="copyhub.terminals"):
        assert mt5.initialize(login=7, password="hunter2", server="S") is False
    assert "hunter2" not in str(mt5.last_error()) and "hunter2" not in caplog.text
    assert "initialize" in caplog.text and "acct" in caplog.text


def test_long_remote_messages_are_cut_to_their_first_line():
    exc = TypeError("bad argument\n\n========= Remote Traceback (1) =========\n" + "x" * 5000)
    code, text = error_for(exc)
    assert code == -2 and "Remote Traceback" not in text and len(text) < 250


def test_open_terminal_guards_the_sim_kind_and_passes_timeout_and_portable(monkeypatch):
    seen = {}

    class FakeSim(FakeModule):
        def initialize(self, *args, **kwargs):
            seen.update(kwargs)
            return True

    import sim.client

    monkeypatch.setattr(sim.client, "connect", lambda endpoint: FakeSim())
    spec = {"kind": "sim", "login": 2001, "timeout": 1500, "portable": True}
    mt5 = open_terminal({"name": "a", "terminal": spec})
    assert isinstance(mt5, GuardedTerminal)
    assert seen == {"login": 2001, "timeout": 1500, "portable": True}
    seen.clear()
    open_terminal({"name": "a", "terminal": {"kind": "sim", "login": 2001}})
    assert seen == {"login": 2001}  # only what the spec sets
    mt5.inner.exc = EOFError()
    assert mt5.positions_get() is None and mt5.last_error()[0] == -10004


def test_open_terminal_raises_terminal_error_never_a_raw_exception(monkeypatch):
    import sim.client

    def boom(endpoint):
        raise zmq.ZMQError(zmq.EINVAL, "Invalid argument")

    monkeypatch.setattr(sim.client, "connect", boom)
    with pytest.raises(TerminalError, match="cannot open the 'sim' terminal.*ZMQError"):
        open_terminal({"name": "a", "terminal": {"kind": "sim", "login": 2001}})

    class Refusing(FakeModule):
        def initialize(self, *args, **kwargs):
            raise ConnectionRefusedError(111, "Connection refused")

    monkeypatch.setattr(sim.client, "connect", lambda endpoint: Refusing())
    with pytest.raises(TerminalError, match=r"initialize failed: \(-10004, .*refused"):
        open_terminal({"name": "a", "terminal": {"kind": "sim", "login": 2001}})


@pytest.mark.skipif(sys.platform == "win32", reason="fakes the Windows package off Windows")
def test_mt5_kind_passes_path_credentials_timeout_and_portable(monkeypatch):
    seen = {}
    fake = type(sys)("MetaTrader5")

    def initialize(*args, **kwargs):
        seen["call"] = (args, kwargs)
        return True

    fake.initialize = initialize
    fake.last_error = lambda: (1, "Success")
    monkeypatch.setitem(sys.modules, "MetaTrader5", fake)
    monkeypatch.setattr(sys, "platform", "win32")
    spec = {"kind": "mt5", "path": "C:/MT5/terminal64.exe", "login": 5, "timeout": 30000,
            "portable": False}
    mt5 = open_terminal({"name": "a", "terminal": spec})
    assert seen["call"] == (("C:/MT5/terminal64.exe",), {"login": 5, "timeout": 30000, "portable": False})
    assert isinstance(mt5, GuardedTerminal) and mt5.inner is fake


def test_guard_overhead_is_small():
    fake = FakeModule()
    raw = fake.positions_get  # a bound closure: the cheapest possible call
    mt5 = guard(fake)
    n = 20000
    t_raw = min(timeit.repeat(lambda: fake.positions_get(), number=n, repeat=3)) / n
    t_guard = min(timeit.repeat(lambda: mt5.positions_get(), number=n, repeat=3)) / n
    assert raw() == mt5.positions_get()
    # well under the cost of any real terminal call (tens of microseconds at least)
    assert t_guard - t_raw < 20e-6, (t_raw, t_guard)
