"""cli.py and setup_db.py in-process against a temporary store (and a real bus proxy
for the commands that publish ``ctl``)."""
from __future__ import annotations

import json
import time

import pytest
from fleet_harness import sim_account

import cli
import setup_db
from db import open_store
from fleet.demo import free_port
from messaging.proxy import Proxy
from messaging.schema import Control
from messaging.subscriber import Subscriber


@pytest.fixture
def db(tmp_path):
    url = "sqlite:///" + (tmp_path / "cli.db").as_posix()
    store = open_store(url)
    store.add_account(sim_account("M1", "MASTER", 1001))
    store.add_account(sim_account("S1"))
    store.close()
    return url


@pytest.fixture
def bus():
    proxy = Proxy(f"tcp://127.0.0.1:{free_port()}", f"tcp://127.0.0.1:{free_port()}")
    yield proxy
    proxy.stop()


def run(capsys, *argv):
    code = cli.main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def test_every_command_has_json(db, capsys, tmp_path):
    for argv in (["status"], ["accounts", "list"], ["accounts", "show", "S1"], ["links", "S1"],
                 ["reset", "S1"], ["accounts", "set", "S1", "suffix=.c"]):
        code, out, err = run(capsys, "--db", db, *argv, "--json")
        assert code == 0, (argv, err)
        json.loads(out)
    code, out, _ = run(capsys, "--db", db, "events", "--json")
    assert code == 0 and all(json.loads(line)["kind"] for line in out.splitlines())


def test_account_edits_are_validated_and_audited(db, capsys, tmp_path):
    code, _, err = run(capsys, "--db", db, "accounts", "set", "S1", "slippage_tolerance=30",
                       'symbol_map={"XAUUSD":"GOLD"}', "sizing.mode=fixed", "sizing.lot=0.1")
    assert code == 0, err
    store = open_store(db)
    doc = store.get_account("S1")
    assert doc["slippage_tolerance"] == 30 and doc["symbol_map"] == {"XAUUSD": "GOLD"}
    assert doc["sizing"] == {"mode": "fixed", "lot": 0.1}

    version = store.accounts_version()
    code, _, err = run(capsys, "--db", db, "accounts", "set", "S1", "slipage_tolerance=3")
    assert code == 2 and "slipage_tolerance" in err and "did you mean" in err and len(err.strip().splitlines()) == 1
    code, _, err = run(capsys, "--db", db, "accounts", "add", json.dumps({"name": "X", "type": "SLAVE"}))
    assert code == 2 and "terminal" in err
    code, _, err = run(capsys, "--db", db, "accounts", "add", json.dumps(sim_account("S1")))
    assert code == 2 and "already exists" in err
    assert store.accounts_version() == version  # nothing written by refused commands

    path = tmp_path / "s2.json"
    path.write_text(json.dumps(sim_account("S2", login=2002)))
    assert run(capsys, "--db", db, "accounts", "add", f"@{path}")[0] == 0
    assert run(capsys, "--db", db, "accounts", "disable", "S2")[0] == 0
    assert store.get_account("S2")["enabled"] is False
    assert run(capsys, "--db", db, "accounts", "remove", "S2")[0] == 2  # no terminal, no --yes
    assert run(capsys, "--db", db, "accounts", "remove", "S2", "--yes")[0] == 0
    assert store.get_account("S2") is None
    commands = [e["data"]["command"] for e in store.list_events(kind="operator_command")]
    assert commands == ["accounts set", "accounts add", "accounts disable", "accounts remove"]
    store.close()


def test_pause_resume_flatten_kill_switch_persist_flags_and_publish(db, bus, capsys):
    sub = Subscriber(bus.xpub_endpoint, ["ctl."])
    base = ["--db", db, "--bus-pub", bus.xsub_endpoint]
    store = open_store(db)

    def next_ctl():
        msg = sub.recv(3000)
        assert isinstance(msg, Control), msg
        return msg.target, msg.command, msg.args

    assert run(capsys, *base, "pause", "S1")[0] == 0
    assert store.get_flag("paused:S1") is True and next_ctl() == ("S1", "pause", {})
    assert run(capsys, *base, "resume", "S1")[0] == 0
    assert store.get_flag("paused:S1") is None and next_ctl() == ("S1", "resume", {})

    code, _, err = run(capsys, *base, "flatten", "S1")
    assert code == 2 and "--yes" in err  # no confirmation possible without a terminal
    assert store.get_flag("flatten:S1") is None
    assert run(capsys, *base, "flatten", "S1", "--yes")[0] == 0
    assert store.get_flag("paused:S1") is True and isinstance(store.get_flag("flatten:S1"), int)
    assert [next_ctl()[1], next_ctl()[1]] == ["pause", "flatten"]
    assert run(capsys, *base, "flatten", "M1", "--yes")[0] == 2  # masters have no copies

    assert run(capsys, *base, "kill-switch", "on")[0] == 0
    assert store.get_flag("kill_switch") is True and next_ctl() == ("all", "pause", {"reason": "kill_switch"})
    code, out, _ = run(capsys, *base, "status")
    assert "KILL SWITCH ON" in out
    assert run(capsys, *base, "kill-switch", "off")[0] == 0
    assert store.get_flag("kill_switch") is None and next_ctl() == ("all", "resume", {"reason": "kill_switch"})

    assert run(capsys, *base, "pause", "Nobody")[0] == 2
    audited = [e["data"]["command"] for e in store.list_events(kind="operator_command")]
    assert audited == ["pause", "resume", "flatten", "kill-switch on", "kill-switch off"]
    sub.close()
    store.close()


def test_flags_are_kept_when_the_bus_is_down(db, capsys):
    code, out, _ = run(capsys, "--db", db, "--bus-pub", f"tcp://127.0.0.1:{free_port()}", "pause", "S1", "--json")
    assert code == 0 and json.loads(out) == {"account": "S1", "paused": True, "published": False}
    store = open_store(db)
    assert store.get_flag("paused:S1") is True
    store.close()


def test_events_filters_and_since(db, capsys):
    store = open_store(db)
    store.add_event("node_crashed", node="launcher", account="S1", level="error", message="boom")
    store.add_event("node_started", node="launcher", account="M1")
    store.close()
    code, out, _ = run(capsys, "--db", db, "events", "--account", "S1", "--since", "5m")
    assert code == 0 and "node_crashed" in out and "node_started" not in out
    assert run(capsys, "--db", db, "events", "--since", "last tuesday")[0] == 2


def test_bad_store_url_is_one_line_exit_2(capsys):
    code, _, err = run(capsys, "--db", "postgres://x/y", "status")
    assert code == 2 and len(err.strip().splitlines()) == 1


def test_setup_db_twice_changes_nothing_and_check_names_fields(tmp_path, capsys):
    for url in ("sqlite:///" + (tmp_path / "s.db").as_posix(), "mongomock://setup_db_test"):
        assert setup_db.main(["--db", url, "--sample", "--demo"]) == 0
        store = open_store(url)
        version, flags, nodes = store.accounts_version(), store.list_flags(), store.list_nodes()
        docs = store.list_accounts()
        assert {d["name"] for d in docs} == {"FTMO_Master", "Apex_Slave_01", "Demo_Master", "Demo_Prop_Hedge",
                                             "Demo_Prop_Netting", "Demo_FX_Ratio"}
        assert setup_db.main(["--db", url, "--sample", "--demo"]) == 0
        assert store.accounts_version() == version and store.list_accounts() == docs
        assert store.list_flags() == flags and store.list_nodes() == nodes
        capsys.readouterr()

        assert setup_db.main(["--db", url, "--check"]) == 0
        store.update_account("Apex_Slave_01", {"slippage_tolerance": "wide"})
        store.add_account({"name": "Typo", "type": "SLAVE", "path": "x", "symbl_map": {}})
        capsys.readouterr()
        assert setup_db.main(["--db", url, "--check", "--json"]) == 1
        problems = json.loads(capsys.readouterr().out)["problems"]
        assert {(p["account"], p["field"]) for p in problems} == {("Apex_Slave_01", "slippage_tolerance"),
                                                                  ("Typo", "symbl_map")}
        store.remove_account("Typo")
        store.remove_account("Apex_Slave_01")
        store.close()


def test_events_follow_prints_new_events_as_they_come(db):
    import subprocess
    import sys

    from fleet_harness import ROOT, wait_for

    proc = subprocess.Popen([sys.executable, str(ROOT / "cli.py"), "--db", db, "events", "--follow", "--json"],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        time.sleep(1.0)  # let it print the (empty) backlog and start following
        store = open_store(db)
        store.add_event("node_fatal", node="launcher", account="S1", level="critical", message="flapping")
        store.close()
        line = wait_for(lambda: proc.stdout.readline(), 10, "a followed event")
        assert json.loads(line)["kind"] == "node_fatal"
    finally:
        proc.kill()
        proc.wait(10)


def test_event_data_is_shown_in_whole_pairs_never_cut_mid_value():
    from cli import EVENT_DATA_WIDTH, event_brief

    data = {"master": "FTMO_SIGNAL", "master_ticket": 50000123, "slave_ticket": 7100456,
            "reason": "slippage 812.4 points > tolerance 300 at send time", "symbol": "XAUUSD.c",
            "volume": 0.37, "price": 2411.52, "retcode": 10009, "note": None}
    text = event_brief(data)
    assert len(text) <= EVENT_DATA_WIDTH
    shown, _, more = text.partition(" … +")
    full = [f"reason={data['reason']}"] + [f"{k}={v}" for k, v in data.items() if v is not None and k != "reason"]
    [k] = [k for k in range(1, len(full)) if shown == " ".join(full[:k])]  # whole pairs, the reason first
    assert k == 4  # the reason and three more fit whole; the symbol pair would not with the tail
    assert more == f"{len(full) - k} more, --json"
    assert event_brief({"a": 1, "b": None}) == "a=1"
    assert event_brief({}) == ""
    long = event_brief({"reason": "x" * 300, "k": 1})
    assert long.startswith("reason=xxx") and "…" in long and len(long) <= EVENT_DATA_WIDTH


def test_accounts_list_shows_the_fleets_problems_as_check_does(db, capsys):
    """A follower naming no master passes its own fields; list says what --check says."""
    code, out, _ = run(capsys, "--db", db, "accounts", "add",
                       json.dumps({"name": "FTMO_100k", "type": "SLAVE", "follows": ["My_Master"],
                                   "terminal": {"kind": "sim", "login": 2005}}))
    assert code == 0
    code, out, _ = run(capsys, "--db", db, "--json", "accounts", "list")
    rows = {r["name"]: r["problem"] for r in json.loads(out)["accounts"]}
    assert rows["M1"] == "" and rows["S1"] == ""
    assert "'follows'" in rows["FTMO_100k"] and "My_Master" in rows["FTMO_100k"]
    assert setup_db.main(["--db", db, "--check"]) == 1
    text = capsys.readouterr().out
    line = next(ln for ln in text.splitlines() if "FTMO_100k" in ln)
    assert line.count("field") == 1 and line.count("FTMO_100k") == 1  # said once, not twice


def test_accounts_add_of_a_missing_file_says_so(db, capsys, tmp_path):
    code, _, err = run(capsys, "--db", db, "accounts", "add", str(tmp_path / "nofile.json"))
    assert code == 2 and "no such file" in err and "nofile.json" in err
    code, _, err = run(capsys, "--db", db, "accounts", "add", "{not json")
    assert code == 2 and "not a JSON document" in err


@pytest.mark.parametrize("encoding", ["utf-8", "utf-8-sig", "utf-16", "utf-16-le-bom", "utf-16-be-bom"])
def test_accounts_add_reads_a_file_the_way_windows_editors_and_shells_save_it(db, capsys, tmp_path, encoding):
    """Notepad's "UTF-8 with BOM" and Windows PowerShell 5.1's ``>``/Out-File (UTF-16 LE with
    a BOM) are what a Windows user's account file is; a non-ASCII comment must survive."""
    import codecs

    doc = {**sim_account("S2", login=2002), "notes": "compte démo — €"}
    text = json.dumps(doc, ensure_ascii=False)
    data = {"utf-16-le-bom": codecs.BOM_UTF16_LE + text.encode("utf-16-le"),
            "utf-16-be-bom": codecs.BOM_UTF16_BE + text.encode("utf-16-be")}.get(encoding) or text.encode(encoding)
    path = tmp_path / "s2.json"
    path.write_bytes(data)
    code, _, err = run(capsys, "--db", db, "accounts", "add", str(path))
    assert code == 0, err
    with open_store(db) as store:
        assert store.get_account("S2")["notes"] == "compte démo — €"


def test_accounts_add_of_a_file_in_another_encoding_says_to_save_it_as_utf8(db, capsys, tmp_path):
    path = tmp_path / "s2.json"
    data = json.dumps({**sim_account("S2", login=2002), "notes": "démo"}, ensure_ascii=False).encode("cp1252")
    path.write_bytes(data)
    code, _, err = run(capsys, "--db", db, "accounts", "add", str(path))
    at = data.index(b"\xe9")  # the é, not valid UTF-8 on its own
    assert code == 2 and err == f"cli: error: {path} is not UTF-8 or UTF-16 text (byte {at}): save it as UTF-8\n"


def test_accounts_add_warns_of_what_the_fleet_rules_still_hold_against_it(db, capsys):
    """The README's example follows a master not added yet: added, with a warning naming it,
    and the warning is gone once the master exists."""
    code, out, err = run(capsys, "--db", db, "--json", "accounts", "add",
                         json.dumps(sim_account("F1", login=7002, follows=["My_Master"])))
    assert code == 0 and "warning" in err and "My_Master" in err and "setup_db.py --check" in err
    assert any("My_Master" in w for w in json.loads(out)["warnings"])
    code, _, err = run(capsys, "--db", db, "accounts", "add", json.dumps(sim_account("My_Master", "MASTER", login=7001)))
    assert code == 0, err
    code, _, err = run(capsys, "--db", db, "accounts", "set", "F1", "slippage_tolerance=40")
    assert code == 0 and "warning" not in err
