"""cli.py / setup_db.py: one terminal per enabled account, login pins, and what
``accounts show`` tells about pin and lease. In-process against a temporary store."""
from __future__ import annotations

import json
import uuid

import pytest

import cli
import setup_db
from db import open_store
from nodes.identity import pin_key

PATH_A = "C:/Program Files/MT5 A/terminal64.exe"
PATH_B = "C:/Program Files/MT5 B/terminal64.exe"


def seed(name, path, **kw):
    return {"name": name, "type": "SLAVE", "path": path, **kw}


@pytest.fixture(params=["sqlite", "mongomock"])
def db(request, tmp_path):
    if request.param == "sqlite":
        url = "sqlite:///" + (tmp_path / "cli.db").as_posix()
    else:
        url = f"mongomock://cli_one_terminal_{uuid.uuid4().hex[:10]}"
    store = open_store(url)
    store.add_account(seed("Alpha", PATH_A))
    store.close()
    return url


@pytest.fixture
def store(db):
    s = open_store(db)
    yield s
    s.close()


def run(capsys, *argv):
    code = cli.main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def audited(store):
    return [e["data"]["command"] for e in store.list_events(kind="operator_command")]


def test_add_with_another_accounts_terminal_is_refused_and_nothing_stored(db, store, capsys):
    version = store.accounts_version()
    dup = seed("Beta", PATH_A.upper().replace("/", "\\"))
    code, out, err = run(capsys, "--db", db, "accounts", "add", json.dumps(dup))
    assert code == cli.EXIT_ERROR == 2
    assert "refused" in err and "'Alpha'" in err and "'Beta'" in err
    assert len(err.strip().splitlines()) == 1 and out == ""
    assert store.get_account("Beta") is None
    assert store.accounts_version() == version
    assert audited(store) == []

    code, _, err = run(capsys, "--db", db, "accounts", "add",
                       json.dumps({"name": "Gamma", "type": "SLAVE", "terminal": {"kind": "mt5", "path": PATH_A.lower()}}))
    assert code == 2 and "'Alpha'" in err and "'Gamma'" in err
    assert store.get_account("Gamma") is None

    # a terminal of its own is fine
    assert run(capsys, "--db", db, "accounts", "add", json.dumps(seed("Beta", PATH_B)))[0] == 0
    assert store.get_account("Beta") is not None


def test_set_onto_another_accounts_path_is_refused(db, store, capsys):
    store.add_account({"name": "Beta", "type": "SLAVE", "terminal": {"kind": "mt5", "path": PATH_B}})
    before = store.get_account("Beta")
    version = store.accounts_version()
    code, _, err = run(capsys, "--db", db, "accounts", "set", "Beta",
                       "terminal.path=" + json.dumps(PATH_A.lower()))
    assert code == 2 and "'Alpha'" in err and "'Beta'" in err
    assert store.get_account("Beta") == before and store.accounts_version() == version
    assert audited(store) == []
    # the seed's flat path too
    code, _, err = run(capsys, "--db", db, "accounts", "set", "Alpha", "path=" + json.dumps(PATH_B))
    assert code == 2 and "'Alpha'" in err and "'Beta'" in err
    assert store.get_account("Alpha")["path"] == PATH_A
    # an unrelated edit of an account keeps working (it does not conflict with itself)
    assert run(capsys, "--db", db, "accounts", "set", "Beta", "suffix=" + json.dumps(".c"))[0] == 0


def test_disabled_duplicate_is_accepted_but_cannot_be_enabled(db, store, capsys):
    code, _, err = run(capsys, "--db", db, "accounts", "add", json.dumps(seed("Spare", PATH_A, enabled=False)))
    assert code == 0, err
    assert store.get_account("Spare")["enabled"] is False
    code, _, err = run(capsys, "--db", db, "accounts", "enable", "Spare")
    assert code == 2 and "'Alpha'" in err and "'Spare'" in err
    assert store.get_account("Spare")["enabled"] is False
    # once Alpha steps aside, the spare may take the terminal
    assert run(capsys, "--db", db, "accounts", "disable", "Alpha")[0] == 0
    assert run(capsys, "--db", db, "accounts", "enable", "Spare")[0] == 0
    assert store.get_account("Spare")["enabled"] is True
    assert audited(store) == ["accounts add", "accounts disable", "accounts enable"]


def test_add_duplicate_via_flat_path_with_terminal_login_is_refused(db, store, capsys):
    dup = {"name": "Beta", "type": "SLAVE", "path": PATH_A, "terminal": {"kind": "mt5", "login": 5}}
    code, _, _ = run(capsys, "--db", db, "accounts", "add", json.dumps(dup))
    assert code == 2 and store.get_account("Beta") is None  # the seed's flat path names the same terminal
    assert setup_db.main(["--db", db, "--check"]) == 0  # nothing bad was stored


def test_setup_db_check_names_both_accounts_sharing_a_terminal(db, store, capsys):
    assert setup_db.main(["--db", db, "--check"]) == 0
    store.add_account({"name": "Beta", "type": "SLAVE", "terminal": {"kind": "mt5", "path": PATH_A.lower()}})
    capsys.readouterr()
    assert setup_db.main(["--db", db, "--check"]) == 1
    out = capsys.readouterr().out
    lines = [line for line in out.splitlines() if "field 'terminal'" in line]
    assert len(lines) == 2
    assert all("'Alpha'" in line and "'Beta'" in line for line in lines)
    assert setup_db.main(["--db", db, "--check", "--json"]) == 1
    problems = json.loads(capsys.readouterr().out)["problems"]
    assert {(p["account"], p["field"]) for p in problems} == {("Alpha", "terminal"), ("Beta", "terminal")}


def test_pin_writes_flag_and_audit_and_clear_removes_it(db, store, capsys):
    code, out, err = run(capsys, "--db", db, "accounts", "pin", "Alpha", "--login", "5", "--server", "X", "--json")
    assert code == 0, err
    pin = store.get_flag(pin_key("Alpha"))
    assert pin["login"] == 5 and pin["server"] == "X" and isinstance(pin["since_ms"], int)
    assert json.loads(out)["pin"]["login"] == 5
    events = store.list_events(kind="operator_command")
    assert [(e["data"]["command"], e["account"], e["data"]["login"], e["data"]["server"]) for e in events] == \
        [("accounts pin", "Alpha", 5, "X")]

    code, _, err = run(capsys, "--db", db, "accounts", "pin", "Alpha", "--clear")
    assert code == 0, err
    assert store.get_flag(pin_key("Alpha")) is None
    assert audited(store) == ["accounts pin", "accounts pin --clear"]


def test_pin_without_login_and_nothing_reported_is_refused(db, store, capsys):
    code, _, err = run(capsys, "--db", db, "accounts", "pin", "Alpha")
    assert code == 2 and "--login" in err
    assert store.get_flag(pin_key("Alpha")) is None and audited(store) == []


def test_pin_refused_when_the_document_names_its_login(db, store, capsys):
    store.add_account({"name": "Beta", "type": "SLAVE", "terminal": {"kind": "mt5", "path": PATH_B, "login": 7}})
    code, _, err = run(capsys, "--db", db, "accounts", "pin", "Beta", "--login", "5")
    assert code == 2 and "terminal.login" in err
    assert store.get_flag(pin_key("Beta")) is None and audited(store) == []
    assert run(capsys, "--db", db, "accounts", "pin", "Nobody", "--login", "5")[0] == 2


def test_show_json_includes_pin_and_lease(db, store, capsys):
    code, out, err = run(capsys, "--db", db, "accounts", "show", "Alpha", "--json")
    assert code == 0, err
    shown = json.loads(out)
    assert shown["name"] == "Alpha" and shown["path"] == PATH_A
    assert shown["_copyhub"] == {"pinned_login": None, "lease": None}

    assert run(capsys, "--db", db, "accounts", "pin", "Alpha", "--login", "5", "--server", "X")[0] == 0
    holder = {"node": "Alpha", "host": "VPS-1", "pid": 4242, "role": "slave"}
    lease, ok = store.acquire_lease("Alpha", "VPS-1:4242:abc", holder, ttl_ms=10_000)
    assert ok
    code, out, err = run(capsys, "--db", db, "accounts", "show", "Alpha", "--json")
    assert code == 0, err
    extra = json.loads(out)["_copyhub"]
    assert extra["pinned_login"]["login"] == 5 and extra["pinned_login"]["server"] == "X"
    assert extra["lease"]["epoch"] == 1 and extra["lease"]["holder"] == holder
    assert extra["lease"]["holder_id"] == "VPS-1:4242:abc"

    code, out, _ = run(capsys, "--db", db, "accounts", "show", "Alpha")
    assert code == 0 and "pinned login: 5 on 'X'" in out and "host VPS-1, pid 4242" in out
