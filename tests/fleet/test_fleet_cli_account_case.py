"""cli.py accounts add/set store ``type`` in upper case, whatever case it was typed in."""
from __future__ import annotations

import json

import pytest
from fleet_harness import sim_account

import cli
from db import open_store


@pytest.fixture
def db(tmp_path):
    url = "sqlite:///" + (tmp_path / "case.db").as_posix()
    with open_store(url) as store:
        store.add_account(sim_account("M1", "MASTER", 1001))
    return url


def run(capsys, *argv):
    code = cli.main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


@pytest.mark.parametrize("typ,stored", [("slave", "SLAVE"), ("Slave", "SLAVE"), ("master", "MASTER")])
def test_accounts_add_stores_the_type_in_upper_case(db, capsys, typ, stored):
    code, out, err = run(capsys, "--db", db, "accounts", "add", json.dumps(sim_account("A1", typ, 2001)))
    assert code == 0, err
    with open_store(db) as store:
        assert store.get_account("A1")["type"] == stored
    code, out, _ = run(capsys, "--db", db, "--json", "accounts", "list")
    assert [(a["name"], a["type"]) for a in json.loads(out)["accounts"]] == [("A1", stored), ("M1", "MASTER")]


def test_accounts_set_stores_the_type_in_upper_case_and_fixes_an_old_lower_case_one(db, capsys):
    with open_store(db) as store:  # stored before add/set normalised it (or by hand)
        store.add_account(sim_account("S1", "slave", 2002))
    code, out, _ = run(capsys, "--db", db, "accounts", "list")
    assert code == 0
    row = next(line for line in out.splitlines() if line.startswith("S1 "))
    assert row.split()[1] == "slave"
    assert row.endswith("type stored as 'slave': python cli.py accounts set S1 type=SLAVE")

    code, _, err = run(capsys, "--db", db, "accounts", "set", "S1", "type=slave")
    assert code == 0, err
    with open_store(db) as store:
        assert store.get_account("S1")["type"] == "SLAVE"
    code, out, _ = run(capsys, "--db", db, "accounts", "set", "M1", "type=master", "--json")
    assert code == 0 and json.loads(out)["changed"] is False  # MASTER already: the same value
    code, out, _ = run(capsys, "--db", db, "--json", "accounts", "list")
    assert {a["name"]: (a["type"], a["problem"]) for a in json.loads(out)["accounts"]} == {
        "M1": ("MASTER", ""), "S1": ("SLAVE", "")}


def test_accounts_add_refuses_an_unknown_field_naming_the_nearest(db, capsys):
    doc = {**sim_account("A1", "SLAVE", 2001), "colour": "red", "sufix": ".c"}
    code, _, err = run(capsys, "--db", db, "accounts", "add", json.dumps(doc))
    assert code == 2
    assert err.startswith("cli: error: refused: account 'A1': unknown field 'colour'; known fields: copy_existing, ")
    code, _, err = run(capsys, "--db", db, "accounts", "add", json.dumps({**sim_account("A1", "SLAVE", 2001), "sufix": ".c"}))
    assert err.startswith("cli: error: refused: account 'A1': unknown field 'sufix' (did you mean 'suffix'?); known fields: ")
