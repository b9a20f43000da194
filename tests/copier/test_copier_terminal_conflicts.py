"""copier/accounts.py: one terminal, one enabled account (invariant 6)."""
from __future__ import annotations

import pytest

from copier.accounts import (
    TerminalConflict,
    normalise_terminal_path,
    terminal_conflicts,
    terminal_identity,
    validate_accounts,
)


def mt5(name, path, **kw):
    return {"name": name, "type": "SLAVE", "terminal": {"kind": "mt5", "path": path}, **kw}


def seed(name, path, **kw):
    return {"name": name, "type": "SLAVE", "path": path, **kw}


def bridge(name, host, port, **kw):
    return {"name": name, "type": "SLAVE", "terminal": {"kind": "mt5linux", "host": host, "port": port}, **kw}


def sim(name, login, endpoint=None, **kw):
    t = {"kind": "sim", "login": login}
    if endpoint is not None:
        t["endpoint"] = endpoint
    return {"name": name, "type": "SLAVE", "terminal": t, **kw}


# ------------------------------------------------------------------ path normalisation
@pytest.mark.parametrize("variant", [
    "C:\\MT5\\terminal64.exe",
    "C:/MT5/terminal64.exe",
    "c:\\mt5\\terminal64.exe",
    "c:\\mt5\\\\terminal64.exe",
    "C://MT5//terminal64.exe",
    "C:\\MT5\\\\\\terminal64.exe",
    "  C:/Mt5/TERMINAL64.EXE  ",
    "C:/MT5/terminal64.exe/",
    "C:\\MT5\\terminal64.exe\\\\",
])
def test_normalise_terminal_path_members(variant):
    assert normalise_terminal_path(variant) == normalise_terminal_path("C:\\MT5\\terminal64.exe") == "c:\\mt5\\terminal64.exe"


def test_normalise_keeps_different_paths_apart():
    assert normalise_terminal_path("C:/MT5a/terminal64.exe") != normalise_terminal_path("C:/MT5/terminal64.exe")
    assert normalise_terminal_path("D:/MT5/terminal64.exe") != normalise_terminal_path("C:/MT5/terminal64.exe")


def test_terminal_identity_kinds():
    assert terminal_identity(seed("A", "C:/X/t.exe"))[0] == ("path", "c:\\x\\t.exe")
    assert terminal_identity(mt5("A", "C:/X/t.exe"))[0] == ("path", "c:\\x\\t.exe")
    key, label = terminal_identity(bridge("A", "Wine1", 18812))
    assert key == ("bridge", "wine1", "18812") and "Wine1:18812" in label
    key, label = terminal_identity(sim("A", 5, "tcp://h:1"))
    assert key == ("sim", "tcp://h:1", "5") and "5" in label
    assert terminal_identity(sim("A", 5), default_sim_endpoint="tcp://d:2")[0] == ("sim", "tcp://d:2", "5")
    assert terminal_identity({"name": "A", "type": "SLAVE"}) is None


# ------------------------------------------------------------------ conflicts
def test_same_path_different_case_and_separators_conflict_and_name_both():
    out = terminal_conflicts([mt5("Alpha", "C:/MT5/terminal64.exe"), mt5("Beta", "c:\\mt5\\\\TERMINAL64.exe")])
    assert set(out) == {"Alpha", "Beta"}
    for reason in out.values():
        assert "'Alpha'" in reason and "'Beta'" in reason
        assert "one terminal is logged into one account" in reason


def test_different_paths_do_not_conflict():
    assert terminal_conflicts([mt5("A", "C:/MT5a/terminal64.exe"), mt5("B", "C:/MT5b/terminal64.exe")]) == {}


def test_disabled_account_is_excluded():
    docs = [mt5("A", "C:/MT5/t.exe"), mt5("B", "C:/MT5/t.exe", enabled=False)]
    assert terminal_conflicts(docs) == {}
    docs[1]["enabled"] = True
    assert set(terminal_conflicts(docs)) == {"A", "B"}


def test_different_explicit_hosts_may_share_a_path():
    docs = [mt5("A", "C:/MT5/t.exe", host="VPS-1"), mt5("B", "C:/MT5/t.exe", host="VPS-2")]
    assert terminal_conflicts(docs) == {}


def test_same_host_named_differently_cased_conflicts():
    docs = [mt5("A", "C:/MT5/t.exe", host="VPS-1"), mt5("B", "C:/MT5/t.exe", host="vps-1")]
    assert set(terminal_conflicts(docs)) == {"A", "B"}


def test_one_hostless_and_one_with_host_conflict():
    docs = [mt5("A", "C:/MT5/t.exe"), mt5("B", "C:/MT5/t.exe", host="VPS-2")]
    assert set(terminal_conflicts(docs)) == {"A", "B"}


def test_mt5linux_same_host_port_conflicts_different_port_not():
    assert set(terminal_conflicts([bridge("A", "wine", 18812), bridge("B", "WINE", 18812)])) == {"A", "B"}
    assert terminal_conflicts([bridge("A", "wine", 18812), bridge("B", "wine", 18813)]) == {}
    assert terminal_conflicts([bridge("A", "wine1", 18812), bridge("B", "wine2", 18812)]) == {}


def test_sim_same_login_same_endpoint_conflicts_other_logins_not():
    assert set(terminal_conflicts([sim("A", 5, "tcp://h:1"), sim("B", 5, "tcp://h:1")])) == {"A", "B"}
    assert terminal_conflicts([sim("A", 5, "tcp://h:1"), sim("B", 6, "tcp://h:1")]) == {}
    assert terminal_conflicts([sim("A", 5, "tcp://h:1"), sim("B", 5, "tcp://h:2")]) == {}
    # no endpoint: the default one
    assert set(terminal_conflicts([sim("A", 5, "tcp://d:9"), sim("B", 5)], default_sim_endpoint="tcp://d:9")) == {"A", "B"}


def test_seed_flat_path_conflicts_with_terminal_path():
    out = terminal_conflicts([seed("Seed", "C:\\Program Files\\MT5\\terminal64.exe"),
                              mt5("New", "c:/program files/mt5/terminal64.exe")])
    assert set(out) == {"Seed", "New"}
    assert all("'Seed'" in r and "'New'" in r for r in out.values())


def test_three_accounts_every_reason_names_all_three():
    docs = [mt5("A", "C:/MT5/t.exe"), seed("B", "c:\\mt5\\t.exe"), mt5("C", "C:/MT5//t.exe/")]
    out = terminal_conflicts(docs)
    assert set(out) == {"A", "B", "C"}
    for reason in out.values():
        assert "'A', 'B' and 'C'" in reason


def test_non_mapping_and_nameless_documents_are_skipped():
    assert terminal_conflicts([None, "x", {"path": "C:/t.exe"}, seed("A", "C:/t.exe")]) == {}


def test_raw_doc_terminal_without_path_uses_the_flat_path():
    a = seed("A", "C:/MT5/t.exe")
    b = {"name": "B", "type": "SLAVE", "path": "C:/MT5/t.exe", "terminal": {"kind": "mt5", "login": 5}}
    assert len(validate_accounts([a, b])[1]) == 2  # the loader sees one terminal
    assert set(terminal_conflicts([a, b])) == {"A", "B"}  # ...the raw-document check does not


def test_raw_doc_integral_float_login_is_the_same_login():
    c, d = sim("C", 5.0, "tcp://h:1"), sim("D", 5, "tcp://h:1")
    assert len(validate_accounts([c, d])[1]) == 2
    assert set(terminal_conflicts([c, d])) == {"C", "D"}


# ------------------------------------------------------------------ validate_accounts
def test_validate_accounts_reports_terminal_conflict_for_both():
    docs = [seed("A", "C:/MT5/t.exe"), mt5("B", "c:\\MT5\\t.exe"), mt5("C", "C:/Other/t.exe")]
    configs, errors = validate_accounts(docs)
    assert [c.name for c in configs] == ["C"]
    assert sorted(e.account for e in errors) == ["A", "B"]
    for e in errors:
        assert isinstance(e, TerminalConflict)
        assert e.field == "terminal"
        assert "'A'" in str(e) and "'B'" in str(e)


def test_validate_accounts_keeps_a_disabled_duplicate():
    configs, errors = validate_accounts([seed("A", "C:/MT5/t.exe"), mt5("B", "C:/MT5/t.exe", enabled=False)])
    assert errors == [] and [c.name for c in configs] == ["A", "B"]


def test_terminal_conflict_pickles():
    import pickle
    e = TerminalConflict("A", "accounts 'A' and 'B' share")
    back = pickle.loads(pickle.dumps(e))
    assert isinstance(back, TerminalConflict) and back.account == "A" and str(back) == str(e)
    assert back.field == "terminal"


def test_validate_accounts_sees_sim_conflict_on_the_default_endpoint():
    from config import settings
    docs = [sim("A", 5, settings.SIM_ENDPOINT), sim("B", 5)]
    assert set(terminal_conflicts(docs, default_sim_endpoint=settings.SIM_ENDPOINT)) == {"A", "B"}
    # copier/ reads no settings: the caller (setup_db --check) passes the default endpoint
    errors = validate_accounts(docs, default_sim_endpoint=settings.SIM_ENDPOINT)[1]
    assert sorted(e.account for e in errors) == ["A", "B"]
