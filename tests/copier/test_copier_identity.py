"""copier/identity.py (pure rules) and nodes/identity.py (pinning with a real store):
a node trades only the account it was configured for (invariant 6)."""
from __future__ import annotations

import uuid
from types import SimpleNamespace

import pytest

from copier.identity import Expected, account_mismatch, same_server
from db import open_store
from nodes.identity import PIN_PREFIX, WrongAccount, check_account, expected_account, pin_key


# ------------------------------------------------------------------ pure rules
def test_same_login_is_no_mismatch():
    assert account_mismatch("S1", Expected(5001, "FTMO-Demo"), 5001, "FTMO-Demo") is None
    assert account_mismatch("S1", Expected(5001), 5001, "anything") is None


def test_other_login_names_both_logins_and_the_account():
    msg = account_mismatch("S1", Expected(5001, "FTMO-Demo"), 7777, "FTMO-Demo")
    assert msg is not None
    assert "7777" in msg and "5001" in msg and "'S1'" in msg
    assert "account document" in msg
    assert "server" not in msg.split(";")[0]  # only the login is wrong


def test_server_compare_ignores_case_and_blanks():
    assert same_server("FTMO-Demo", " ftmo-demo ")
    assert not same_server("FTMO-Demo", "FTMO-Live")
    assert account_mismatch("S1", Expected(5001, "FTMO-Demo"), 5001, "  ftmo-DEMO\t") is None
    msg = account_mismatch("S1", Expected(5001, "FTMO-Demo"), 5001, "FTMO-Live")
    assert msg is not None and "'FTMO-Live'" in msg and "'FTMO-Demo'" in msg


def test_both_wrong_names_both():
    msg = account_mismatch("S1", Expected(5001, "FTMO-Demo"), 9, "Other")
    assert "login 9" in msg and "server 'Other'" in msg


def test_expected_server_none_is_not_checked():
    assert account_mismatch("S1", Expected(5001, None), 5001, "Whatever-Server") is None
    assert account_mismatch("S1", Expected(5001, ""), 5001, "Whatever-Server") is None
    assert account_mismatch("S1", Expected(None, None), 1, "x") is None


def test_pin_source_points_at_the_pin_command():
    msg = account_mismatch("S1", Expected(5001, None, "pin"), 42, "X")
    assert "pinned login" in msg and "cli.py accounts pin" in msg
    doc_msg = account_mismatch("S1", Expected(5001, None, "document"), 42, "X")
    assert "cli.py accounts pin" not in doc_msg


# ------------------------------------------------------------------ node side, real store
@pytest.fixture(params=["sqlite", "mongomock"])
def store(request, tmp_path):
    if request.param == "sqlite":
        s = open_store(f"sqlite:///{tmp_path / 's.db'}")
    else:
        s = open_store(f"mongomock://identity_{uuid.uuid4().hex[:10]}")
    yield s
    s.close()


def info(login, server="Broker-Demo"):
    return SimpleNamespace(login=login, server=server)


def test_pin_key():
    assert pin_key("S1") == PIN_PREFIX + "S1" == "login_pin:S1"


def test_document_login_wins_over_a_pin(store):
    store.set_flag(pin_key("S1"), {"login": 7, "server": "X"})
    terminal = {"kind": "mt5", "path": "C:/MT5/t.exe", "login": 5, "server": "Broker-Demo"}
    assert expected_account(store, "S1", terminal) == Expected(5, "Broker-Demo", "document")
    assert check_account(store, "S1", terminal, info(5)) is None
    with pytest.raises(WrongAccount) as exc:
        check_account(store, "S1", terminal, info(7, "X"))
    assert exc.value.login == 7 and "account document" in str(exc.value)
    assert store.get_flag(pin_key("S1")) == {"login": 7, "server": "X"}  # untouched


def test_document_server_is_checked(store):
    terminal = {"kind": "mt5", "path": "p", "login": 5, "server": "Broker-Demo"}
    assert check_account(store, "S1", terminal, info(5, "broker-demo ")) is None
    with pytest.raises(WrongAccount) as exc:
        check_account(store, "S1", terminal, info(5, "Broker-Live"))
    assert exc.value.server == "Broker-Live"


def test_no_login_pins_the_first_and_refuses_another(store):
    terminal = {"kind": "mt5", "path": "C:/MT5/t.exe"}
    assert store.get_flag(pin_key("S1")) is None
    note = check_account(store, "S1", terminal, info(5001, "Broker-Demo"))
    assert note is not None and "5001" in note
    pin = store.get_flag(pin_key("S1"))
    assert pin["login"] == 5001 and pin["server"] == "Broker-Demo" and isinstance(pin["since_ms"], int)
    assert expected_account(store, "S1", terminal) == Expected(5001, "Broker-Demo", "pin")

    assert check_account(store, "S1", terminal, info(5001, "Broker-Demo")) is None  # same login passes

    with pytest.raises(WrongAccount) as exc:
        check_account(store, "S1", terminal, info(6002, "Broker-Demo"))
    assert exc.value.login == 6002
    assert "6002" in str(exc.value) and "5001" in str(exc.value) and "cli.py accounts pin" in str(exc.value)
    assert store.get_flag(pin_key("S1"))["login"] == 5001  # the pin is not overwritten

    # pins are per account
    assert check_account(store, "S2", terminal, info(6002)) is not None
    assert store.get_flag(pin_key("S2"))["login"] == 6002


def test_pin_without_server_does_not_check_server(store):
    store.set_flag(pin_key("S1"), {"login": 5, "server": ""})
    assert check_account(store, "S1", {"kind": "mt5", "path": "p"}, info(5, "Any-Server")) is None


def test_cleared_pin_repins_the_next_login(store):
    terminal = {"kind": "mt5", "path": "p"}
    check_account(store, "S1", terminal, info(1))
    store.delete_flag(pin_key("S1"))
    assert check_account(store, "S1", terminal, info(2)) is not None
    assert store.get_flag(pin_key("S1"))["login"] == 2
