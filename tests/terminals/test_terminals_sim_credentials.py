"""``password_env`` on terminal kind 'sim' (terminals/factory.py): checked as on 'mt5' and
'mt5linux', so a fleet rehearsed on the simulator fails there the way it would on real
terminals; the password goes to ``initialize``, where a simulated account with a password
in its world checks it (an MT5 terminal: (-6, 'Terminal: Authorization failed'))."""
from __future__ import annotations

import pytest

import sim.client
from sim import Simulator
from sim.world import parse_world
from terminals import TerminalError, open_terminal

WORLD = {
    "underlyings": {"EURUSD": {"price": 1.1}},
    "brokers": {"B": {"symbols": {"EURUSD": {
        "digits": 5, "contract_size": 100000, "volume_min": 0.01, "volume_step": 0.01, "volume_max": 10,
        "filling_mode": 1, "spread": 10, "calc_mode": "forex", "currency_base": "EUR", "currency_profit": "USD"}}}},
    "accounts": [{"login": 1, "broker": "B", "balance": 1000, "password": "s3cret"},
                 {"login": 2004, "broker": "B", "balance": 2000}],
}


@pytest.fixture
def connects(monkeypatch):
    """``sim.client.connect`` answered by an in-process simulator of WORLD; the endpoints asked."""
    world = Simulator(parse_world(WORLD))
    asked: list[str] = []

    def connect(endpoint):
        asked.append(endpoint)
        return world.terminal()

    monkeypatch.setattr(sim.client, "connect", connect)
    return asked


def account(login: int, **terminal) -> dict:
    return {"name": "a", "terminal": {"kind": "sim", "login": login, "password_env": "NOPE_PW", **terminal}}


def test_an_unset_password_env_is_refused_before_connecting_with_the_text_of_the_other_kinds(connects):
    with pytest.raises(TerminalError) as err:
        open_terminal(account(2004), environ={})
    assert str(err.value) == "account 'a': environment variable 'NOPE_PW' (password_env) is not set"
    assert connects == []  # no socket for a node that cannot log in anyway


def test_a_set_password_env_opens_and_the_password_is_checked_where_the_world_has_one(connects):
    mt5 = open_terminal(account(2004), environ={"NOPE_PW": "anything"})  # no password in the world: not checked
    assert mt5.account_info().login == 2004
    mt5 = open_terminal(account(1), environ={"NOPE_PW": "s3cret"})
    assert mt5.account_info().login == 1
    with pytest.raises(TerminalError) as err:
        open_terminal(account(1), environ={"NOPE_PW": "wrong-pw"})
    assert str(err.value) == "account 'a': initialize failed: (-6, 'Terminal: Authorization failed')"
    assert "wrong-pw" not in str(err.value)


def test_without_password_env_nothing_changes(connects):
    mt5 = open_terminal({"name": "a", "terminal": {"kind": "sim", "login": 2004}}, environ={})
    assert mt5.account_info().login == 2004
