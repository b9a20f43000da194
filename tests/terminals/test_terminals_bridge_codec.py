"""The mt5linux adapter's wire format and loading rules, in-process (no rpyc, no server)."""
from __future__ import annotations

import importlib.metadata
import sys
from collections import namedtuple
from datetime import datetime, timedelta, timezone

import numpy as np
import pytest

from sim.records import OrderSendResult, TradeRequest
from terminals import TerminalError, open_terminal
from terminals.bridge import SERVER_SOURCE, Mt5LinuxBridge, decode_result, encode_arg


def server_namespace(mt5) -> dict:
    ns = {"mt5": mt5}
    exec(SERVER_SOURCE, ns)
    return ns


class EchoMT5:
    """Returns whatever the test stores in ``result``; records the arguments it got."""

    ORDER_TYPE_BUY = 0
    __version__ = "5.0.5735"
    result = None
    got = None

    @classmethod
    def positions_get(cls, *args, **kwargs):
        cls.got = (args, kwargs)
        return cls.result

    @staticmethod
    def last_error():
        return (1, "Success")


def roundtrip(result):
    EchoMT5.result = result
    out, err, types = server_namespace(EchoMT5)["_copyhub_call"]("positions_get", ("t", ()), ("d", ()))
    assert err == (1, "Success")
    return decode_result(out, dict(types))


def test_arguments_survive_the_trip():
    call = server_namespace(EchoMT5)["_copyhub_call"]
    aware = datetime(2024, 1, 2, 3, 4, 5, tzinfo=timezone(timedelta(hours=2)))
    naive = datetime(2024, 1, 2, 3, 4, 5)
    request = {"action": 1, "volume": np.float64(0.5), "type": np.int64(0), "comment": "c",
               "nested": [1, (2, 3)]}
    args = (aware, naive, request)
    call("positions_get", ("t", tuple(encode_arg(a) for a in args)),
         ("d", (("symbol", encode_arg("EURUSD")),)))
    got_args, got_kwargs = EchoMT5.got
    assert got_args == (aware, naive, {"action": 1, "volume": 0.5, "type": 0, "comment": "c",
                                       "nested": [1, (2, 3)]})
    assert got_args[0].utcoffset() == timedelta(hours=2) and got_args[1].tzinfo is None
    assert type(got_args[2]["volume"]) is float and type(got_args[2]["type"]) is int
    assert got_kwargs == {"symbol": "EURUSD"}


def test_records_come_back_as_the_simulators_types():
    req = TradeRequest(1, 0, 0, "EURUSD", 0.1, 1.1, 0.0, 0.0, 0.0, 20, 0, 1, 0, 0, "x", 0, 0)
    res = OrderSendResult(10009, 5, 6, 0.1, 1.1, 1.0, 1.2, "Request executed", 1, 0, req)
    got = roundtrip(res)
    assert got == res and type(got) is OrderSendResult and type(got.request) is TradeRequest
    assert roundtrip((res, res)) == (res, res)
    assert roundtrip(()) == () and roundtrip(None) is None and roundtrip(3.5) == 3.5
    assert roundtrip((500, 5735, "1 Jan 2024")) == (500, 5735, "1 Jan 2024")
    assert roundtrip({"a": [1, 2]}) == {"a": [1, 2]}


def test_unknown_or_longer_record_types_follow_the_server():
    Newer = namedtuple("TradePosition", "ticket volume brand_new_field")
    got = roundtrip((Newer(1, 0.1, "x"),))
    assert got[0]._fields == ("ticket", "volume", "brand_new_field") and tuple(got[0]) == (1, 0.1, "x")
    Odd = namedtuple("SomethingElse", "a b")
    assert roundtrip(Odd(1, 2))._asdict() == {"a": 1, "b": 2}


def test_numpy_results():
    from sim.records import RATES_DTYPE

    rates = np.zeros(3, dtype=RATES_DTYPE)
    rates["close"] = [1.0, 2.0, 3.0]
    got = roundtrip(rates)
    assert got.dtype == RATES_DTYPE and got.tobytes() == rates.tobytes()
    plain = np.arange(6, dtype="<f8").reshape(2, 3)
    assert np.array_equal(roundtrip(plain), plain)
    assert roundtrip(np.float64(2.5)) == 2.5 and type(roundtrip(np.int32(3))) is int


def test_unsendable_argument_is_a_type_error():
    from decimal import Decimal

    with pytest.raises(TypeError, match="Decimal"):
        encode_arg({"volume": Decimal("0.1")})


def test_not_connected_calls_raise_connection_error():
    bridge = Mt5LinuxBridge(None, "h", 1)
    with pytest.raises(ConnectionError, match="initialize"):
        bridge.positions_get()
    assert bridge.shutdown() is None


def test_any_import_failure_names_the_version_to_install(monkeypatch):
    def broken(name, *a, **k):
        if name == "mt5linux":
            raise SyntaxError("unterminated string literal (detected at line 1755)")
        return real(name, *a, **k)

    import importlib

    real = importlib.import_module
    monkeypatch.setattr(importlib, "import_module", broken)
    with pytest.raises(TerminalError, match=r"SyntaxError.*pip install mt5linux==1\.0\.11"):
        open_terminal({"name": "a", "terminal": {"kind": "mt5linux", "host": "h", "port": 1}})


def test_unsupported_release_is_refused(monkeypatch):
    monkeypatch.setitem(sys.modules, "mt5linux", type(sys)("mt5linux"))
    monkeypatch.setattr(importlib.metadata, "version", lambda name: "1.1.1")
    with pytest.raises(TerminalError, match=r"mt5linux 1\.1\.1 is not supported.*mt5linux==1\.0\.11"):
        open_terminal({"name": "a", "terminal": {"kind": "mt5linux", "host": "h", "port": 1}})
