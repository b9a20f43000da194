"""cli.py links: HELD is what the copy holds NOW (README: "HELD: lots the copy holds now")."""
from __future__ import annotations

import json

import pytest
from fleet_harness import sim_account

import cli
from db import open_store

# (master ticket, what the record holds) -> HELD shown
LINKS = [
    # never held anything: the master's volume is not what the copy holds
    (1, {"status": "SKIPPED", "master_volume": 0.17, "skip_reason": "slippage 95 > 50"}, "-"),
    (2, {"status": "FAILED", "master_volume": 0.2, "slave_volume": 0.2, "error": "no money"}, "-"),
    (3, {"status": "PENDING", "master_volume": 0.3, "slave_volume": 0.3}, "-"),
    (4, {"status": "PENDING", "master_volume": 0.3, "slave_volume": 0.3, "held_volume": 0.0}, "-"),  # after a flip
    # held once, holds nothing now (the record keeps the last held volume: --json)
    (5, {"status": "CLOSED", "master_volume": 0.1, "slave_volume": 0.1, "held_volume": 0.1}, "-"),
    # an OPEN pending-order copy is an order: no lots held yet
    (6, {"status": "OPEN", "kind": "order", "master_volume": 0.5, "slave_volume": 0.5}, "-"),
    # OPEN: what it holds, to the volume precision
    (7, {"status": "OPEN", "kind": "position", "master_volume": 0.16, "slave_volume": 0.08,
         "held_volume": 0.05333333}, "0.05"),  # a netting share of the net position
    (8, {"status": "OPEN", "kind": "position", "master_volume": 1.0, "slave_volume": 1.0, "held_volume": 0.6}, "0.6"),
    (9, {"status": "OPEN", "kind": "position", "master_volume": 1.0, "slave_volume": 0.01, "held_volume": 0.011},
     "0.011"),  # a 0.001-lot step needs 3 decimals
    (10, {"status": "OPEN", "kind": "position", "master_volume": 1.0, "slave_volume": 0.005,
          "held_volume": 0.01666667}, "0.017"),  # a share on a 0.001-step symbol
    (11, {"status": "OPEN", "kind": "position", "master_volume": 2.0, "slave_volume": 2.0}, "2.0"),  # before held_volume
    (12, {"status": "OPEN", "kind": "position", "master_volume": 1.0, "slave_volume": 1.0, "held_volume": 0.0}, "-"),
]


@pytest.fixture
def db(tmp_path):
    url = "sqlite:///" + (tmp_path / "held.db").as_posix()
    with open_store(url) as store:
        store.add_account(sim_account("M1", "MASTER", 1001))
        store.add_account(sim_account("S1"))
        for ticket, fields, _shown in LINKS:
            store.record_intent({"slave_name": "S1", "master_name": "M1", "master_ticket": ticket, "symbol": "EURUSD",
                                 "direction": "BUY", **fields})
    return url


def test_held_is_what_the_copy_holds_now_and_a_dash_when_nothing(db, capsys):
    assert cli.main(["--db", db, "links", "S1"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0].split()[:7] == ["MASTER", "M.TICKET", "S.TICKET", "SYMBOL", "DIR", "HELD", "OPENED"]
    shown = {int(line.split()[1]): line.split()[5] for line in lines[2:]}
    assert shown == {ticket: held for ticket, _fields, held in LINKS}


def test_json_keeps_every_stored_value(db, capsys):
    assert cli.main(["--db", db, "--json", "links", "S1"]) == 0
    links = {t["master_ticket"]: t for t in json.loads(capsys.readouterr().out)["links"]}
    assert links[7]["held_volume"] == 0.05333333 and links[5]["held_volume"] == 0.1
    assert links[1]["master_volume"] == 0.17 and "held_volume" not in links[1]
