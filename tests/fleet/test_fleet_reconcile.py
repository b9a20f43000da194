"""Which nodes a host runs, and what an account change means."""
from copier.accounts import validate_accounts
from fleet.demo import demo_accounts, sample_accounts
from fleet.reconcile import desired_nodes, fingerprint, plan, same_host


def acc(name, type_="SLAVE", **kw):
    return {"name": name, "type": type_, "enabled": True, "terminal": {"kind": "sim", "login": 1}, **kw}


def test_host_filter_takes_accounts_without_host_or_with_ours():
    docs = [acc("a"), acc("b", host="VPS-1"), acc("c", host="vps-2"), acc("d", host="")]
    assert sorted(desired_nodes(docs, "vps-1")) == ["a", "b", "d"]
    assert sorted(desired_nodes(docs, "VPS-2")) == ["a", "c", "d"]
    assert same_host(None, "x") and not same_host(["x"], "x")


def test_only_enabled_accounts_and_odd_values_reach_validation():
    docs = [acc("off", enabled=False), acc("weird", enabled="yes"), acc("missing")]
    docs[2].pop("enabled")
    assert sorted(desired_nodes(docs, "h")) == ["missing", "weird"]


def test_plan_starts_masters_first_and_stops_what_is_gone():
    docs = [acc("s1"), acc("m1", "MASTER"), acc("s0")]
    p = plan(desired_nodes(docs, "h"), {})
    assert [d.name for d in p.start] == ["m1", "s0", "s1"]
    current = desired_nodes(docs, "h")
    docs2 = [acc("m1", "MASTER"), acc("s0", enabled=False)]
    p2 = plan(desired_nodes(docs2, "h"), current, [d["name"] for d in docs2])
    assert p2.stop == [("s0", "account disabled or assigned to another host"), ("s1", "account removed")]
    assert p2.start == [] and p2.changed == []


def test_changed_document_is_a_change_and_a_type_change_is_a_restart():
    docs = [acc("s1"), acc("x")]
    current = desired_nodes(docs, "h")
    edited = [acc("s1", symbol_map={"XAUUSD": "GOLD"}), acc("x", "MASTER")]
    p = plan(desired_nodes(edited, "h"), current, ["s1", "x"])
    assert [d.name for d in p.changed] == ["s1"]
    assert [d.name for d in p.restart] == ["x"] and p.restart[0].role == "master"
    assert plan(current, current).empty


def test_fingerprint_ignores_key_order():
    assert fingerprint({"a": 1, "b": {"x": 1, "y": 2}}) == fingerprint({"b": {"y": 2, "x": 1}, "a": 1})
    assert fingerprint({"a": 1}) != fingerprint({"a": 2})


def test_demo_and_sample_accounts_are_valid_and_cover_the_world():
    docs = demo_accounts("tcp://127.0.0.1:5570") + sample_accounts()
    configs, errors = validate_accounts(docs)
    assert errors == []
    by = {c.name: c for c in configs}
    assert [c.name for c in configs if c.is_master] == ["Demo_Master", "FTMO_Master"]
    assert by["Demo_Prop_Hedge"].symbol_map == {"XAUUSD": "GOLD", "US30": "DJ30"}
    assert by["Demo_Prop_Netting"].sizing.mode == "multiplier" and by["Demo_Prop_Netting"].sizing.multiplier == 0.5
    assert by["Demo_FX_Ratio"].sizing.mode == "balance_ratio"
    assert {c.terminal["login"] for c in configs if c.terminal.get("kind") == "sim"} == {1001, 2001, 2002, 2003}
    assert by["Apex_Slave_01"].suffix == ".c"
