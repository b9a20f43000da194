import pickle
import re

import pytest

from copier.accounts import AccountConfigError, validate_account, validate_accounts
from copier.sizing import SizingConfig

SEED_MASTER = {"name": "FTMO_Master", "type": "MASTER", "path": "C:/Program Files/FTMO MT5/terminal64.exe", "enabled": True}
SEED_SLAVE = {
    "_id": "65f0c0ffee",
    "name": "Apex_Slave_01", "type": "SLAVE", "path": "C:/Program Files/Apex MT5/terminal64.exe", "enabled": True,
    "suffix": ".c", "symbol_map": {"XAUUSD": "GOLD", "US30": "DJ30"}, "slippage_tolerance": 50,
}


def bad(doc, **kw) -> AccountConfigError:
    with pytest.raises(AccountConfigError) as info:
        validate_account(doc, **kw)
    return info.value


def test_seed_documents_are_accepted_as_they_are():
    m = validate_account(SEED_MASTER)
    s = validate_account(SEED_SLAVE)
    assert m.is_master and not m.is_slave
    assert s.is_slave and s.suffix == ".c" and s.symbol_map == {"XAUUSD": "GOLD", "US30": "DJ30"}
    assert s.slippage_tolerance == 50 and s.magic == 234000
    assert s.terminal == {"kind": "mt5", "path": "C:/Program Files/Apex MT5/terminal64.exe"}
    assert s.sizing == SizingConfig("same") and s.copy_sltp and s.copy_pending and not s.copy_existing
    assert s.sltp_mode == "absolute" and s.follows is None


def test_defaults_come_from_arguments():
    s = validate_account({k: v for k, v in SEED_SLAVE.items() if k != "slippage_tolerance"}, default_slippage=7, default_magic=99)
    assert s.slippage_tolerance == 7 and s.magic == 99


def test_error_message_names_account_field_and_value():
    err = bad({**SEED_SLAVE, "slippage_tolerance": "abc"})
    assert str(err) == "account 'Apex_Slave_01': field 'slippage_tolerance' must be a non-negative integer (points), got 'abc'"
    assert (err.account, err.field, err.got) == ("Apex_Slave_01", "slippage_tolerance", "abc")
    assert pickle.loads(pickle.dumps(err)).field == "slippage_tolerance"


@pytest.mark.parametrize("field,value", [
    ("slippage_tolerance", -1), ("slippage_tolerance", True), ("slippage_tolerance", 1.5), ("type", "BOSS"),
    ("enabled", "yes"), ("suffix", 3), ("symbol_map", ["XAUUSD"]), ("symbol_map", {"XAUUSD": ""}),
    ("follows", "FTMO_Master"), ("reverse", 1), ("sltp_mode", "relative"), ("max_lot", 0), ("max_lot", "1"),
    ("max_open_positions", -2), ("magic", -5), ("risk", "strict"), ("symbols_allow", "EURUSD"),
])
def test_bad_fields_are_named(field, value):
    assert bad({**SEED_SLAVE, field: value}).field == field


def test_integral_float_from_mongo_shell_is_accepted():
    assert validate_account({**SEED_SLAVE, "slippage_tolerance": 50.0}).slippage_tolerance == 50


def test_missing_name_and_type():
    assert bad({"type": "SLAVE", "path": "x"}).field == "name"
    err = bad({"name": "A", "path": "x"})
    assert err.field == "type" and "is missing" in str(err)


@pytest.mark.parametrize("doc,message", [
    ({"type": "SLAVE", "path": "x"}, "account '<unnamed>': field 'name' is missing; it must be a non-empty string"),
    ({"name": None, "type": "SLAVE", "path": "x"},
     "account '<unnamed>': field 'name' is missing; it must be a non-empty string"),
    ({"name": "A", "path": "x"}, "account 'A': field 'type' is missing; it must be 'MASTER' or 'SLAVE'"),
    ({"name": "A", "type": None, "path": "x"}, "account 'A': field 'type' is missing; it must be 'MASTER' or 'SLAVE'"),
    ({"name": "A", "type": "SLAVE"},
     "account 'A': field 'terminal' is missing; it must be a terminal spec {kind: mt5|mt5linux|sim, ...} "
     "(or the seed's flat 'path')"),
    ({"name": "A", "type": "SLAVE", "path": "x", "sizing": {"mode": "fixed"}},
     "account 'A': field 'sizing.lot' is missing; it must be a positive number (required by mode 'fixed')"),
])
def test_a_missing_field_reads_missing_whichever_it_is(doc, message):
    err = bad(doc)
    assert str(err) == message and err.missing
    assert str(pickle.loads(pickle.dumps(err))) == message


def test_a_blank_name_is_not_missing_but_wrong():
    assert str(bad({"name": " ", "type": "SLAVE", "path": "x"})) == (
        "account '<unnamed>': field 'name' must be a non-empty string, got ' '")


KNOWN_FIELDS = ("copy_existing, copy_pending, copy_sltp, created_at, description, dry_run, enabled, follows, host, "
                "magic, master_prefix, master_suffix, max_lot, max_open_positions, name, notes, path, reverse, risk, "
                "sizing, slippage_tolerance, sltp_mode, suffix, symbol_map, symbols_allow, symbols_deny, terminal, "
                "type, updated_at")


@pytest.mark.parametrize("key,hint", [
    ("colour", ""), ("slipage_tolerance", " (did you mean 'slippage_tolerance'?)"), ("note", " (did you mean 'notes'?)"),
])
def test_an_unknown_key_is_an_unknown_field_with_the_nearest_name_and_the_known_ones(key, hint):
    err = bad({**SEED_SLAVE, key: "red"})
    assert str(err) == f"account 'Apex_Slave_01': unknown field {key!r}{hint}; known fields: {KNOWN_FIELDS}"
    assert err.field == key and "red" not in str(err)
    assert err.known == tuple(KNOWN_FIELDS.split(", "))
    assert str(pickle.loads(pickle.dumps(err))) == str(err)


@pytest.mark.parametrize("extra,message", [
    ({"terminal": {"kind": "sim", "login": 1, "logn": 2}},
     "unknown field 'terminal.logn' for a 'sim' terminal (did you mean 'terminal.login'?); known terminal fields: "
     "endpoint, kind, login, password_env, path, portable, server, timeout"),
    ({"terminal": {"kind": "sim", "login": 1, "host": "x"}},
     "unknown field 'terminal.host' for a 'sim' terminal (host is for 'mt5linux' terminals); known terminal fields: "
     "endpoint, kind, login, password_env, path, portable, server, timeout"),
    ({"sizing": {"mode": "fixed", "lots": 1}},
     "unknown field 'sizing.lots' (did you mean 'sizing.lot'?); known sizing fields: "
     "fallback_lot, lot, mode, multiplier, percent"),
    ({"risk": {"profil": "ftmo_2step"}}, "unknown field 'risk.profil' (did you mean 'risk.profile'?); known risk fields: "),
])
def test_unknown_keys_inside_terminal_sizing_and_risk_read_the_same_way(extra, message):
    doc = {k: v for k, v in SEED_SLAVE.items() if k != "path"} if "terminal" in extra else SEED_SLAVE
    err = bad({**doc, **extra})
    assert str(err).startswith(f"account 'Apex_Slave_01': {message}")
    assert err.field == message.split("'")[1]


@pytest.mark.parametrize("typ,expected", [("slave", "SLAVE"), ("Master", "MASTER"), ("SLAVE", "SLAVE")])
def test_type_is_accepted_in_any_case_and_normalised_to_upper_case(typ, expected):
    from copier.accounts import normalised_account

    doc = {**SEED_SLAVE, "type": typ}
    assert validate_account(doc).type == expected
    assert normalised_account(doc) == {**SEED_SLAVE, "type": expected}
    assert doc["type"] == typ  # the input is not changed
    assert normalised_account({"name": "A", "type": "boss"})["type"] == "boss"  # left for validation to refuse


@pytest.mark.parametrize("field,value", [
    ("sltp_mode", "Distance"), ("sizing", "Balance_Ratio"), ("sizing", {"mode": "FIXED", "lot": 1}),
])
def test_the_other_enum_fields_have_one_spelling(field, value):
    """Only ``type`` was ever accepted in another case; the others are refused as written."""
    from copier.accounts import normalised_account

    assert bad({**SEED_SLAVE, field: value}).got in (value, "FIXED")
    assert normalised_account({**SEED_SLAVE, field: value})[field] == value
    doc = {k: v for k, v in SEED_SLAVE.items() if k != "path"}
    assert bad({**doc, "terminal": {"kind": "SIM", "login": 1}}).field == "terminal.kind"


def test_unknown_key_is_refused_with_a_hint_but_bookkeeping_keys_pass():
    err = bad({**SEED_SLAVE, "slipage_tolerance": 5})
    assert err.field == "slipage_tolerance" and "slippage_tolerance" in str(err)
    validate_account({**SEED_SLAVE, "_id": 1, "_version": 3, "notes": "prop account", "updated_at": 5})


def test_terminal_kinds():
    sim = validate_account({**SEED_SLAVE, "terminal": {"kind": "sim", "login": 1001}})
    assert sim.terminal == {"kind": "sim", "login": 1001}
    lin = validate_account({**SEED_SLAVE, "path": None, "terminal": {"kind": "mt5linux", "host": "127.0.0.1", "port": 18812}})
    assert lin.terminal["port"] == 18812
    mt5 = validate_account({**SEED_SLAVE, "terminal": {"kind": "mt5", "login": 5, "server": "Apex-Demo", "password_env": "APEX_PW"}})
    assert mt5.terminal["path"] == SEED_SLAVE["path"] and mt5.terminal["password_env"] == "APEX_PW"


@pytest.mark.parametrize("terminal,field", [
    ({"kind": "ctrader"}, "terminal.kind"),
    ({"kind": "mt5linux", "host": "h"}, "terminal.port"),
    ({"kind": "sim"}, "terminal.login"),
    ({"kind": "sim", "login": 0}, "terminal.login"),
    ({"kind": "sim", "login": 1, "host": "x"}, "terminal.host"),
    ("C:/x.exe", "terminal"),
])
def test_bad_terminals(terminal, field):
    doc = {k: v for k, v in SEED_SLAVE.items() if k != "path"}
    assert bad({**doc, "terminal": terminal}).field == field


def test_no_terminal_and_no_path():
    doc = {k: v for k, v in SEED_SLAVE.items() if k != "path"}
    assert bad(doc).field == "terminal"


@pytest.mark.parametrize("doc", [
    {**SEED_SLAVE, "terminal": {"kind": "mt5", "path": "x", "password": "hunter2"}},
    {**SEED_SLAVE, "password": "hunter2"},
    {**SEED_SLAVE, "terminal": {"kind": "sim", "login": 1, "Password": "hunter2"}},
])
def test_literal_password_is_refused_and_never_echoed(doc):
    err = bad(doc)
    assert "password" in err.field.lower() and "password_env" in str(err)
    assert "hunter2" not in str(err) and "hunter2" not in repr(err.args)


@pytest.mark.parametrize("raw,expected", [
    ("same", SizingConfig("same")),
    ({"mode": "fixed", "lot": 0.5}, SizingConfig("fixed", lot=0.5)),
    ({"mode": "multiplier", "multiplier": 2}, SizingConfig("multiplier", multiplier=2.0)),
    ("balance_ratio", SizingConfig("balance_ratio")),
    ({"mode": "equity_ratio", "multiplier": 0.5}, SizingConfig("equity_ratio", multiplier=0.5)),
    ({"mode": "risk_percent", "percent": 1, "fallback_lot": 0.1}, SizingConfig("risk_percent", percent=1.0, fallback_lot=0.1)),
])
def test_sizing_forms(raw, expected):
    assert validate_account({**SEED_SLAVE, "sizing": raw}).sizing == expected


@pytest.mark.parametrize("raw,field", [
    ("martingale", "sizing.mode"), ({"mode": "fixed"}, "sizing.lot"), ({"mode": "multiplier", "multiplier": -1}, "sizing.multiplier"),
    ({"mode": "risk_percent"}, "sizing.percent"), ({"mode": "risk_percent", "percent": 150}, "sizing.percent"),
    ({"mode": "same", "lots": 1}, "sizing.lots"), (3, "sizing"),
])
def test_bad_sizing(raw, field):
    assert bad({**SEED_SLAVE, "sizing": raw}).field == field


def test_follows_master():
    s = validate_account({**SEED_SLAVE, "follows": ["FTMO_Master"]})
    assert s.follows_master("FTMO_Master") and not s.follows_master("Other")
    assert validate_account(SEED_SLAVE).follows_master("anyone")
    assert not validate_account(SEED_MASTER).follows_master("FTMO_Master")


def test_hot_reloadable_diff():
    base = validate_account(SEED_SLAVE)
    hot = validate_account({**SEED_SLAVE, "symbol_map": {}, "slippage_tolerance": 10, "sizing": "balance_ratio", "reverse": True,
                            "max_lot": 2, "risk": {"profile": "ftmo_2step", "initial_balance": 100000}, "dry_run": True, "follows": ["FTMO_Master"]})
    assert base.hot_reloadable_diff(hot) and base.hot_reloadable_diff(base)
    for change in ({"path": "D:/other.exe"}, {"type": "MASTER"}, {"magic": 1}, {"name": "X"},
                   {"terminal": {"kind": "sim", "login": 3}}):
        assert not base.hot_reloadable_diff(validate_account({**SEED_SLAVE, **change})), change


def test_validate_accounts_collects_every_error():
    docs = [
        SEED_MASTER,
        SEED_SLAVE,
        {**SEED_SLAVE, "name": "Bad_1", "slippage_tolerance": "x"},
        {**SEED_SLAVE, "name": "Bad_2", "follows": ["Ghost_Master"]},
        {**SEED_SLAVE},  # duplicate name
        {**SEED_SLAVE, "name": "Follower", "follows": ["FTMO_Master"], "path": "C:/MT5/Follower/terminal64.exe"},
        "not a document",
    ]
    configs, errors = validate_accounts(docs)
    assert [c.name for c in configs] == ["FTMO_Master", "Apex_Slave_01", "Follower"]
    fields = sorted((e.account, e.field) for e in errors)
    assert fields == [("<unnamed>", "document"), ("Apex_Slave_01", "name"), ("Bad_1", "slippage_tolerance"), ("Bad_2", "follows")]
    assert "Ghost_Master" in str([e for e in errors if e.field == "follows"][0])


def test_masters_with_colliding_tag_hashes_are_refused():
    from copier.tags import master_hash

    seen: dict[str, str] = {}
    i = 0
    while True:  # find two names with the same 4-char hash (birthday bound: a few thousand tries)
        name = f"M{i}"
        h = master_hash(name)
        if h in seen:
            a, b = seen[h], name
            break
        seen[h] = name
        i += 1
    configs, errors = validate_accounts([{**SEED_MASTER, "name": a, "path": f"C:/MT5/{a}/terminal64.exe"},
                                         {**SEED_MASTER, "name": b, "path": f"C:/MT5/{b}/terminal64.exe"}])
    assert [c.name for c in configs] == [a]
    assert errors[0].account == b and "hash" in str(errors[0])


@pytest.mark.parametrize("risk,field", [
    ({"profile": "ftmo"}, "risk.profile"),  # a profile name the guardian does not know
    ({"max_daily_loss": 5}, "risk.max_daily_loss"),  # a key the guardian does not know
    ({"daily_limit_pct": 140}, "risk.daily_limit_pct"),  # out of range
    ({"reset_time": "25:00"}, "risk.reset_time"),
    ({"reset_tz": "Europe/Nowhere"}, "risk.reset_tz"),
])
def test_risk_rules_are_checked_where_the_account_is(risk, field):
    """add, --check and list refuse what the node's guardian would refuse at start."""
    doc = {"name": "FTMO_100k", "type": "SLAVE", "terminal": {"kind": "sim", "login": 2001}, "risk": risk}
    with pytest.raises(AccountConfigError, match=re.escape(f"field '{field}'")):
        validate_account(doc)
    ok = validate_account({**doc, "risk": {"profile": "ftmo_2step", "initial_balance": 100000}})
    assert ok.risk == {"profile": "ftmo_2step", "initial_balance": 100000}
