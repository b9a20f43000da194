"""nodes/bus_guard.py: the slave's plausibility hook on its own terminal (issue 15)."""
from __future__ import annotations

import structlog
from structlog.testing import capture_logs

from copier.accounts import validate_account
from copier.models import AccountMetrics, Position
from copier.plausibility import Limits
from messaging.schema import Delta, Snapshot
from nodes.bus_guard import BusGuard, limits_from_settings
from sim import Simulator
from terminals.convert import metrics_from_mt5


class Loop:
    """What the guard reads of the slave loop."""

    def __init__(self, mt5):
        self.mt5 = mt5
        self.cfg = validate_account({"name": "S", "type": "SLAVE", "suffix": ".c", "terminal": {"kind": "sim", "login": 2001}})
        self.available = {s.name for s in mt5.symbols_get()}
        self.metrics = metrics_from_mt5(mt5.account_info())
        self.specs = {}
        self.rates = None


class Counting:
    def __init__(self, mt5):
        self._mt5, self.calls = mt5, []

    def __getattr__(self, name):
        attr = getattr(self._mt5, name)
        if not callable(attr):
            return attr
        return lambda *a, **k: (self.calls.append(name), attr(*a, **k))[1]


def _slave():
    sim = Simulator.demo(seed=3)
    mt5 = sim.terminal()
    mt5.initialize(login=2001)
    return mt5


def _pos(ident, volume=0.1, price=None, mt5=None, symbol="EURUSD"):
    price = price if price is not None else mt5.symbol_info_tick(symbol + ".c").ask
    return Position(ticket=ident, identifier=ident, symbol=symbol, side="BUY", volume=volume, price_open=price,
                    price_current=price, contract_size=100_000.0)


def _delta(seq, *positions, ts_ms=1_000):
    return Delta(master="M", epoch="E", seq=seq, ts_ms=ts_ms, upsert_positions=positions)


def test_a_huge_volume_is_refused_logged_with_its_limit_and_counted():
    mt5 = _slave()
    guard = BusGuard(Loop(mt5), Limits(), structlog.get_logger("t"))
    with capture_logs() as logs:
        problems = guard.check(_delta(1, _pos(9, volume=1_000_000, mt5=mt5)), {}, None, 1_000)
    assert [(r.rule, r.value, r.limit) for r in problems] == [("volume_cap", 1_000_000.0, 1000.0)]
    [line] = [x for x in logs if x["event"] == "bus_message_refused"]
    assert (line["master"], line["field"], line["value"], line["limit"], line["unit"]) == ("M", "volume", 1_000_000.0, 1000.0, "lots")
    assert line["log_level"] == "warning" and line["seq"] == 1
    info = guard.status_info()
    assert info["bus_rejected"] == 1 and info["bus_rejected_rules"] == {"volume_cap": 1}
    assert "M delta seq 1: EURUSD #9 volume 1e+06 beyond 1000 lots" in info["bus_rejected_last"]


def test_prices_are_compared_with_the_slaves_own_market_for_the_translated_symbol():
    mt5 = _slave()
    guard = BusGuard(Loop(mt5), Limits(), structlog.get_logger("t"))
    ask = mt5.symbol_info_tick("EURUSD.c").ask
    assert guard.check(_delta(1, _pos(1, price=ask * 1.01, mt5=mt5)), {}, None, 1_000) == []
    [r] = guard.check(_delta(1, _pos(1, price=ask * 1.2, mt5=mt5)), {}, None, 1_000)
    assert r.rule == "price" and r.symbol == "EURUSD"


def test_equity_rule_uses_the_masters_snapshot_metrics():
    mt5 = _slave()
    loop = Loop(mt5)
    guard = BusGuard(loop, Limits(), structlog.get_logger("t"))
    poor = AccountMetrics(login=1, balance=100, equity=100, margin=0, margin_free=100, profit=0,
                          currency=loop.metrics.currency, leverage=100)
    snap = Snapshot(master="M", epoch="E", seq=0, ts_ms=1_000, positions=(_pos(1, volume=20, mt5=mt5),), metrics=poor)
    [r] = guard.check(snap, {}, None, 1_000)  # 2 000 000 units of EURUSD on a 100-unit account
    assert r.rule == "equity"
    assert guard.check(_delta(1, _pos(2, volume=20, mt5=mt5)), {}, None, 1_000) == []  # no metrics known: the rule waits


def test_future_stamps_are_refused():
    mt5 = _slave()
    guard = BusGuard(Loop(mt5), Limits(max_future_ms=5_000), structlog.get_logger("t"))
    [r] = guard.check(_delta(1, _pos(1, mt5=mt5), ts_ms=10_000), {}, None, 1_000)
    assert r.rule == "future" and r.value == 9_000


def test_the_tick_read_for_a_change_is_handed_to_the_pass_once():
    mt5 = Counting(_slave())
    guard = BusGuard(Loop(mt5), Limits(), structlog.get_logger("t"))
    guard.check(_delta(1, _pos(1, mt5=mt5._mt5)), {}, None, 1_000)
    assert mt5.calls.count("symbol_info_tick") == 1
    guard.check(_delta(2, _pos(2, mt5=mt5._mt5)), {}, None, 2_000)  # within QUOTE_TTL_MS: cached
    assert mt5.calls.count("symbol_info_tick") == 1
    q = guard.take_quote("EURUSD.c")
    assert q is not None and q.ask == mt5._mt5.symbol_info_tick("EURUSD.c").ask
    assert guard.take_quote("EURUSD.c") is None  # once


def test_limits_from_settings():
    class S:
        PLAUSIBLE_MAX_LOTS = 200
        PLAUSIBLE_PRICE_DEVIATION_PCT = 3
        PLAUSIBLE_MAX_FUTURE_MS = 30_000
    lim = limits_from_settings(S)
    assert (lim.max_lots, lim.price_deviation, lim.max_future_ms) == (200.0, 0.03, 30_000)


def test_cli_status_shows_the_refusals_of_a_slave():
    from fleet.report import status_row, status_table

    doc = {"name": "S1", "role": "slave", "state": "RUNNING",
           "info": {"bus_rejected": 3, "bus_conflicts": 1, "bus_rejected_last": "M delta seq 7: EURUSD #9 volume 1e+06 beyond 1000 lots (volume_cap)"}}
    row = status_row(doc, now_ms=0, flags={})
    assert (row["bus_rejected"], row["bus_conflicts"]) == (3, 1)
    assert "refused 3 implausible position message(s); last: M delta seq 7" in status_table([row], now_ms=0)
    quiet = status_row({**doc, "info": {"bus_rejected": 0, "bus_conflicts": 0}}, now_ms=0, flags={})
    assert "bus_rejected" not in quiet


def test_a_refusal_is_an_event_and_an_alert_once_per_master_and_rule():
    class Rt:
        def __init__(self):
            self.events, self.alerts = [], []

        def event(self, kind, **data):
            self.events.append((kind, data))

        def alert(self, rule, message, *, action_taken=""):
            self.alerts.append((rule, message))

    mt5 = _slave()
    loop = Loop(mt5)
    loop.rt = Rt()
    guard = BusGuard(loop, Limits(), structlog.get_logger("t"))
    for seq in (1, 2, 3):  # a stream of forged frames: every one refused and logged, one alert
        assert guard.check(_delta(seq, _pos(9, volume=1_000_000, mt5=mt5)), {}, None, 1_000)
    far = mt5.symbol_info_tick("EURUSD.c").ask * 3
    assert guard.check(_delta(4, _pos(10, price=far, mt5=mt5)), {}, None, 1_000)  # another rule: told too
    assert guard.rejected == 4
    rules = [data["rule"] for kind, data in loop.rt.events]
    assert len(rules) == 2 and len(set(rules)) == 2 and all(k == "bus_message_refused" for k, _ in loop.rt.events)
    assert len(loop.rt.alerts) == 2 and "master 'M'" in loop.rt.alerts[0][1] and "nothing traded" in loop.rt.alerts[0][1]
