"""What a user's trial of the operator CLI found, each as a kind of fault, without
processes: a RUNNING node showing the launcher's reason of an earlier incarnation, a
guardian pause not shown in PAUSED, risk_percent sizing showing the fallback as the sized
lot, a release on an account with no lock, a risk WARN with no cause, the last column of
a table cut, a reset of a running node."""
from __future__ import annotations

import json
from types import SimpleNamespace

from fleet_harness import sim_account

import cli
from copier.sizing import SizingConfig
from db import open_store
from fleet.options import Child
from fleet.records import FleetRecorder
from fleet.report import risk_cause, sizing_presented, status_row, status_table
from fleet.supervision import Policy, State, Supervised

NOW = 1_700_000_000_000
UNMANAGED = ("disabled; 10 open copies left unmanaged (nothing closes or follows them now): "
             "EURUSD.c #7100003 (master FTMO_Master #5100001)")


def _column(table: str, header: str, nxt: str | None) -> list[str]:
    """The cells of one left-aligned column of a ``format_table`` text, by its header."""
    lines = table.splitlines()
    start = lines[0].index(header)
    end = lines[0].index(nxt) if nxt else None
    return [line[start:end].strip() for line in lines[2:]]


def _db(tmp_path, *accounts):
    url = "sqlite:///" + (tmp_path / "t.db").as_posix()
    store = open_store(url)
    for doc in accounts:
        store.add_account(doc)
    return url, store


class _Log:
    def __getattr__(self, level):
        return lambda *a, **kw: None


# ---------------------------------------------------------------- 1. stale REASON on a RUNNING node
def _up(s: Supervised, now: float, pid: int) -> None:
    s.spawned(now, pid)
    s.heartbeat(now + 0.5, pid)
    s.tick(now + 5)
    assert s.state is State.RUNNING


def test_a_node_running_again_keeps_no_reason_of_its_earlier_incarnation():
    s = Supervised("Prop_Fixed", Policy())
    s.request_start(0)
    _up(s, 0, 100)
    s.exited(10, -9)  # kill -9
    assert (s.state, s.reason) == (State.BACKOFF, "exited with code -9; restart in 1 s")
    s.tick(11)  # the backoff is over: spawn again
    _up(s, 11, 101)
    assert (s.state, s.reason, s.last_exit_code, s.restarts) == (State.RUNNING, "", -9, 1)

    d = Supervised("Net_Risk", Policy())  # disabled with open copies, enabled again
    d.request_start(0)
    _up(d, 0, 200)
    d.request_stop(10)
    d.reason = UNMANAGED  # what the launcher says when it stops it (runner._stopped_on_purpose)
    d.exited(11, 0)
    assert (d.state, d.reason) == (State.STOPPED, UNMANAGED)
    d.request_start(60)
    _up(d, 60, 201)
    assert (d.state, d.reason, d.last_exit_code, d.restarts) == (State.RUNNING, "", 0, 1)


def test_the_launchers_fields_of_a_running_node_carry_no_old_reason():
    c = Child("Net_Risk", "slave", Supervised("Net_Risk", Policy()))
    rec = FleetRecorder(store=None, opts=SimpleNamespace(host="H1"), log=_Log(), pid=1, clock=lambda: 100.0,
                        publisher=lambda: None)
    c.sup.request_start(0)
    _up(c.sup, 0, 200)
    c.sup.request_stop(10)
    c.sup.reason = UNMANAGED
    c.sup.exited(11, 0)
    assert rec.node_fields(c)["supervisor_reason"] == UNMANAGED  # STOPPED: the launcher's reason
    c.sup.request_start(60)
    _up(c.sup, 60, 201)
    fields = rec.node_fields(c)
    assert (fields["supervisor_state"], fields["supervisor_reason"], fields["last_exit_code"],
            fields["restarts"]) == ("RUNNING", None, 0, 1)
    c.note = "heard nothing on the bus for 4 s"  # what the node says about itself now: shown
    assert rec.node_fields(c)["supervisor_reason"] == "heard nothing on the bus for 4 s"


def _running_doc(**kw):
    doc = {"name": "Prop_Fixed", "role": "slave", "state": "RUNNING", "pid": 28110, "heartbeat_ms": NOW - 800,
           "reason": None, "error": None, "info": {"links_open": 10, "paused": False},
           "supervisor_state": "RUNNING", "proc_pid": 28110, "uptime_s": 240.0, "restarts": 1,
           "last_exit_code": -9, "last_restart_reason": "exited with code -9; restart in 1 s",
           "supervisor_reason": "exited with code -9; restart in 1 s"}  # written by a launcher before the fix
    doc.update(kw)
    return doc


def test_status_of_a_running_node_shows_what_it_says_now_not_the_launchers_old_reason():
    rows = [status_row(_running_doc(), now_ms=NOW, flags={}),
            status_row(_running_doc(name="Net_Risk", supervisor_reason=UNMANAGED, last_exit_code=0,
                                    last_restart_reason=UNMANAGED), now_ms=NOW, flags={})]
    assert [(r["state"], r["reason"], r["restarts"], r["last_exit_code"]) for r in rows] == [
        ("RUNNING", None, 1, -9), ("RUNNING", None, 1, 0)]
    assert rows[0]["last_restart_reason"] == "exited with code -9; restart in 1 s"
    table = status_table(rows, now_ms=NOW)
    assert _column(table, "REASON", None) == ["", ""]
    assert "unmanaged" not in table and "restart in" not in table
    # the node's own words are shown; a node document gone stale (a node blocked on the
    # store) leaves what the launcher says (its echo of the node's note)
    own = status_row(_running_doc(reason="heard nothing on the bus for 4 s"), now_ms=NOW, flags={})
    assert own["reason"] == "heard nothing on the bus for 4 s"
    blocked = status_row(_running_doc(heartbeat_ms=NOW - 30_000, supervisor_reason="waiting on the store for 31.0 s"),
                         now_ms=NOW, flags={})
    assert blocked["reason"] == "waiting on the store for 31.0 s"
    held = status_row(_running_doc(supervisor_state="BACKOFF", proc_pid=None), now_ms=NOW, flags={})
    assert (held["state"], held["reason"]) == ("BACKOFF", "exited with code -9; restart in 1 s")


# ---------------------------------------------------------------- 2. PAUSED shows the guardian's pause
def _slave(name, risk=None, **info):
    return {"name": name, "role": "slave", "state": "RUNNING", "pid": 1, "heartbeat_ms": NOW - 500,
            "supervisor_state": "RUNNING", "proc_pid": 1,
            "info": {"links_open": 0, "paused": False, "risk": risk, **info}}


def test_paused_shows_the_guardians_pause_and_lock_beside_the_operators():
    docs = [_slave("A_risk", {"paused_by_risk": True, "locked": False}),
            _slave("B_locked", {"paused_by_risk": True, "locked": True}),
            _slave("C_both", {"paused_by_risk": False, "locked": True}),
            _slave("D_operator", {"paused_by_risk": False, "locked": False}),
            _slave("E_none", None),
            _slave("F_blind", {"paused_by_risk": False, "locked": False, "blocks_opens": True, "blind": True}),
            _slave("G_says", None, paused_by="risk")]  # a slave that names who paused it
    rows = [status_row(d, now_ms=NOW, flags={"paused:C_both": True, "paused:D_operator": True}) for d in docs]
    assert [(r["paused"], r["paused_by_operator"], r["paused_by_risk"]) for r in rows] == [
        (True, False, "risk"), (True, False, "locked"), (True, True, "locked"), (True, True, None),
        (False, False, None), (True, False, "risk"), (True, False, "risk")]
    assert _column(status_table(rows, now_ms=NOW), "PAUSED", "REASON") == [
        "risk", "locked", "yes, locked", "yes", "no", "risk", "risk"]


def test_cli_status_paused_column_reads_the_slaves_risk_state(tmp_path, capsys):
    url, store = _db(tmp_path, sim_account("Prop_Fixed"))
    store.upsert_node("Prop_Fixed", {**_slave("Prop_Fixed", {"level": "FLATTEN", "locked": True, "paused_by_risk": True,
                                                             "lock_reason": "daily loss limit"}),
                                     "heartbeat_ms": None})
    store.close()
    assert cli.main(["--db", url, "status"]) == 0
    out = capsys.readouterr().out
    nodes = out.split("\n\n")[0]
    assert _column(nodes, "PAUSED", "REASON") == ["locked"]


# ---------------------------------------------------------------- 3. risk_percent sizing
def _sized(symbol, volume, note=""):
    return {"master": "M", "master_symbol": symbol, "follower_symbol": symbol + ".c", "master_contract_size": 100000.0,
            "follower_contract_size": 100000.0, "lot_factor": None, "volume": volume, "fx": "", "fx_rate": None,
            "note": note}


def test_risk_percent_rows_say_the_lots_follow_the_sl_and_never_show_the_fallback_as_sized():
    rows = [_sized("EURUSD", 0.05), _sized("XAUUSD", None, "volume 0.05 below minimum 0.1 for XAUUSD.c (step 0.1)"),
            {**_sized("US30", None, "symbol 'US30.c' not available on slave (master 'US30')"), "follower_symbol": "",
             "follower_contract_size": None}]
    out = sizing_presented(rows, SizingConfig(mode="risk_percent", percent=1.0, fallback_lot=0.05))
    assert [(r["volume"], r.get("fallback_volume"), r.get("sl_dependent"), r["note"]) for r in out] == [
        (None, 0.05, True, "risk_percent: depends on the master's SL; without an SL: fallback_lot 0.05"),
        (None, None, True, "risk_percent: depends on the master's SL; a master trade WITHOUT an SL would be skipped: "
                           "fallback_lot 0.05: volume 0.05 below minimum 0.1 for XAUUSD.c (step 0.1)"),
        (None, None, None, "symbol 'US30.c' not available on slave (master 'US30')")]
    bare = sizing_presented([_sized("EURUSD", None, "risk_percent sizing needs a stop loss on the master position "
                                                     "(none set, no fallback_lot)")],
                            SizingConfig(mode="risk_percent", percent=1.0))
    assert bare[0]["note"] == ("risk_percent: depends on the master's SL; no fallback_lot: a master trade WITHOUT an "
                               "SL would be skipped")
    same = [_sized("EURUSD", 1.0)]
    assert sizing_presented(same, SizingConfig(mode="same")) == same  # every other mode: unchanged


class _Terminal:
    """Just what nodes/sizing_report.py reads of a terminal."""

    def __init__(self, login, symbols):
        self.login, self.symbols = login, symbols

    def account_info(self):
        return SimpleNamespace(login=self.login, balance=100000.0, equity=100000.0, margin=0.0, margin_free=100000.0,
                               profit=0.0, currency="USD", leverage=100)

    def symbols_get(self):
        return list(self.symbols.values())

    def symbol_info(self, name):
        return self.symbols.get(name)

    def shutdown(self):
        pass


def _symbol(name, volume_min=0.01, volume_step=0.01):
    return SimpleNamespace(name=name, digits=5, point=0.00001, trade_tick_size=0.00001, trade_tick_value=1.0,
                           trade_contract_size=100000.0, volume_min=volume_min, volume_step=volume_step,
                           volume_max=100.0, filling_mode=2, trade_stops_level=0, trade_freeze_level=0, trade_mode=4,
                           trade_exemode=2, currency_base="EUR", currency_profit="USD", visible=True)


def test_cli_sizing_on_a_risk_percent_follower(tmp_path, capsys, monkeypatch):
    import terminals

    url, store = _db(tmp_path, sim_account("M", "MASTER", 1001),
                     sim_account("F", follows=["M"], suffix=".c",
                                 sizing={"mode": "risk_percent", "percent": 1.0, "fallback_lot": 0.05}))
    store.close()
    master = _Terminal(1001, {"EURUSD": _symbol("EURUSD"), "XAUUSD": _symbol("XAUUSD")})
    follower = _Terminal(2001, {"EURUSD.c": _symbol("EURUSD.c"), "XAUUSD.c": _symbol("XAUUSD.c", 0.1, 0.1)})
    monkeypatch.setattr(terminals, "open_terminal",
                        lambda doc, **kw: master if doc["type"] == "MASTER" else follower)
    assert cli.main(["--db", url, "sizing", "F"]) == 0
    out = capsys.readouterr().out
    head, table = out.split("\n", 1)
    assert head == ("sizing risk_percent on F: each copy risks 1% of its equity at the master trade's SL distance, "
                    "whatever the master's volume; the lots depend on each trade's SL")
    assert _column(table, "LOTS", "FX") == ["by SL", "by SL"]
    assert _column(table, "NOTE", None) == [
        "risk_percent: depends on the master's SL; without an SL: fallback_lot 0.05",
        "risk_percent: depends on the master's SL; a master trade WITHOUT an SL would be skipped: fallback_lot 0.05: "
        "volume 0.05 below minimum 0.1 for XAUUSD.c (step 0.1)"]
    assert cli.main(["--db", url, "sizing", "F", "--json"]) == 0
    rows = json.loads(capsys.readouterr().out)["rows"]
    assert [(r["master_symbol"], r["volume"], r["fallback_volume"], r["sl_dependent"]) for r in rows] == [
        ("EURUSD", None, 0.05, True), ("XAUUSD", None, None, True)]


# ---------------------------------------------------------------- 4. release without a lock
def _risk_node(store, name, **risk):
    store.upsert_node(name, {"role": "slave", "state": "RUNNING", "pid": 5, "heartbeat_ms": NOW,
                             "supervisor_state": "RUNNING", "info": {"risk": risk}})


def test_release_on_an_account_with_no_lock_says_so_and_requests_nothing(tmp_path, capsys, monkeypatch):
    url, store = _db(tmp_path, sim_account("Prop_Fixed"))
    _risk_node(store, "Prop_Fixed", level="OK", locked=False, paused_by_risk=False)
    monkeypatch.setattr("sys.stdin", SimpleNamespace(isatty=lambda: False))  # no terminal, no --yes: not asked
    assert cli.main(["--db", url, "release", "Prop_Fixed"]) == 0
    assert capsys.readouterr().out == ("Prop_Fixed has no risk lock: nothing to release (it is not locked; a release "
                                       "request would be ignored)\n")
    assert cli.main(["--db", url, "release", "Prop_Fixed", "--yes", "--json"]) == 0
    assert json.loads(capsys.readouterr().out) == {"account": "Prop_Fixed", "locked": False, "release_requested": False,
                                                   "message": "Prop_Fixed has no risk lock: nothing to release"}
    assert store.get_flag("risk_release:Prop_Fixed") is None
    audits = [e["data"] for e in store.list_events(kind="operator_command") if e["data"].get("command") == "release"]
    assert [(a["locked"], a["release_requested"]) for a in audits] == [(False, False), (False, False)]
    store.close()


def test_release_of_a_lock_whose_rule_is_still_breached_warns_it_locks_again(tmp_path, capsys):
    url, store = _db(tmp_path, sim_account("Prop_Fixed"))
    _risk_node(store, "Prop_Fixed", level="FLATTEN", locked=True, daily_level="FLATTEN", daily_used_pct=97.23,
               overall_level="WARN", overall_used_pct=75.0)
    store.set_flag("risk_lock:Prop_Fixed", {"reason": "daily loss limit", "locked_at_utc_ms": NOW - 60_000,
                                            "until_utc_ms": None, "day_id": "2026-11-20", "by": "guardian"})
    assert cli.main(["--db", url, "release", "Prop_Fixed", "--yes"]) == 0
    assert capsys.readouterr().out == (
        "lock release requested for Prop_Fixed; its guardian applies it within one evaluation\n"
        "warning: Prop_Fixed is still past its flatten level (daily loss at 97.2% of its limit): if the rule is still "
        "breached, the guardian flattens and locks it again at once\n")
    assert store.get_flag("risk_release:Prop_Fixed")["by"] == "cli"
    store.close()


def test_release_of_a_lock_that_has_expired_or_of_an_unseen_account(tmp_path, capsys):
    url, store = _db(tmp_path, sim_account("Prop_Fixed"), sim_account("Fresh"))
    store.set_flag("risk_lock:Prop_Fixed", {"reason": "daily loss limit", "locked_at_utc_ms": 1,
                                            "until_utc_ms": 2, "day_id": "2020-01-01", "by": "guardian"})
    assert cli.main(["--db", url, "release", "Prop_Fixed", "--yes", "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["locked"] is False
    # no guardian has said anything about Fresh: the request is written, the guardian decides
    assert cli.main(["--db", url, "release", "Fresh", "--yes"]) == 0
    assert capsys.readouterr().out == ("no guardian has reported on Fresh yet: release requested; its guardian "
                                       "applies it if it finds a lock\n")
    assert store.get_flag("risk_release:Fresh") is not None and store.get_flag("risk_release:Prop_Fixed") is None
    store.close()


# ---------------------------------------------------------------- 5. the cause of a risk level
def test_risk_cause_names_the_margin_level_and_the_threshold():
    risk = {"level": "WARN", "locked": False, "margin_used_pct": 82.6, "margin_level": 127.1}
    assert risk_cause(risk, {"name": "FX_Ratio", "type": "SLAVE"}) == (
        "margin level 127.1% < 150% (margin_warn_level: an alert, no action)")
    assert risk_cause(risk, {"type": "SLAVE", "risk": {"margin_warn_level": 120}}) == ""
    assert risk_cause({**risk, "margin_used_pct": 118.0}, {"type": "SLAVE", "risk": {"min_margin_level": 150}}) == (
        "margin level 127.1% (min_margin_level 150%)")
    assert risk_cause({"level": "FLATTEN", "locked": True, "lock_reason": "daily loss limit", "daily_level": "FLATTEN",
                       "daily_used_pct": 96.04, "overall_level": "OK", "overall_used_pct": 20.0}, None) == (
        "locked: daily loss limit; daily loss at 96.0% of its limit (FLATTEN)")


def test_cli_status_risk_table_shows_why_an_account_warns(tmp_path, capsys):
    url, store = _db(tmp_path, sim_account("FX_Ratio"))
    store.upsert_node("FX_Ratio", _slave("FX_Ratio", {"level": "WARN", "locked": False, "paused_by_risk": False,
                                                      "margin_used_pct": 82.6, "margin_level": 127.1}))
    store.close()
    assert cli.main(["--db", url, "status"]) == 0
    risk_table = capsys.readouterr().out.split("\n\n")[1]
    assert risk_table.splitlines()[0].split()[-1] == "WHY"
    assert _column(risk_table, "WHY", None) == ["margin level 127.1% < 150% (margin_warn_level: an alert, no action)"]
    assert risk_table.splitlines()[2].split()[:2] == ["FX_Ratio", "WARN"]
    assert cli.main(["--db", url, "status", "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["risk"][0]["cause"] == (
        "margin level 127.1% < 150% (margin_warn_level: an alert, no action)")


# ---------------------------------------------------------------- 6. the last column is never cut
def test_links_reason_is_not_cut_and_json_keeps_the_stored_link(tmp_path, capsys):
    url, store = _db(tmp_path, sim_account("M", "MASTER", 1001), sim_account("S1", follows=["M"]))
    reason = ("symbol 'XAUUSD.c' not available on slave (master 'XAUUSD', suffix '.c' added; no symbol_map entry "
              "for 'XAUUSD')")
    store.record_intent({"slave_name": "S1", "master_name": "M", "master_ticket": 7, "symbol": "XAUUSD.c",
                         "status": "PENDING", "direction": "BUY"})
    store.update_trade("S1", "M", 7, {"status": "SKIPPED", "skip_reason": reason})
    stored = store.list_trades(slave_name="S1")
    store.close()
    assert cli.main(["--db", url, "links", "S1"]) == 0
    assert _column(capsys.readouterr().out, "REASON", None) == [reason]
    assert cli.main(["--db", url, "links", "S1", "--json"]) == 0
    assert json.loads(capsys.readouterr().out) == {"slave": "S1", "links": stored}


def test_status_reason_is_not_cut():
    doc = {"name": "Net_Risk", "role": "slave", "supervisor_state": "STOPPED", "supervisor_reason": UNMANAGED * 2}
    table = status_table([status_row(doc, now_ms=NOW, flags={})], now_ms=NOW)
    assert _column(table, "REASON", None) == [UNMANAGED * 2]


# ---------------------------------------------------------------- 7. reset of a running node
def test_reset_of_a_running_node_says_there_is_nothing_to_reset(tmp_path, capsys):
    url, store = _db(tmp_path, sim_account("FX_Ratio"), sim_account("Held"), sim_account("Off", enabled=False))
    store.upsert_node("FX_Ratio", {"kind": "slave", "supervisor_state": "RUNNING", "proc_pid": 9})
    store.upsert_node("Held", {"kind": "slave", "supervisor_state": "FATAL", "supervisor_reason": "flapping"})
    store.upsert_node("Off", {"kind": "slave", "supervisor_state": "STOPPED", "supervisor_reason": "disabled"})
    assert cli.main(["--db", url, "reset", "FX_Ratio"]) == 0
    assert capsys.readouterr().out == "FX_Ratio is RUNNING: nothing to reset\n"
    assert cli.main(["--db", url, "reset", "Off"]) == 0
    assert capsys.readouterr().out == ("Off is disabled: nothing to reset (the launcher does not start a disabled "
                                       "account; python cli.py accounts enable Off)\n")
    assert store.get_flag("reset:FX_Ratio") is None and store.get_flag("reset:Off") is None
    assert cli.main(["--db", url, "reset", "Held"]) == 0  # a held node: the flag the launcher applies
    assert capsys.readouterr().out.startswith("reset requested for Held (was FATAL)")
    assert store.get_flag("reset:Held") is not None
    store.close()
