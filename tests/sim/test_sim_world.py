"""World files (TOML/JSON, validation errors), trading sessions and broker server time."""
import json
from datetime import datetime, timezone

import pytest

from sim import Simulator, WorldError
from sim.servertime import ServerClock
from sim.world import DEMO_WORLD, load_world, parse_world


def base(**sym_over):
    sym = {"digits": 5, "contract_size": 100000, "volume_min": 0.01, "volume_step": 0.01, "volume_max": 10,
           "filling_mode": 1, "spread": 10, "calc_mode": "forex", "currency_base": "EUR",
           "currency_profit": "USD"}
    sym.update(sym_over)
    return {
        "world": {"start": "2025-01-06T10:00:00Z", "history_hours": 0.1},
        "underlyings": {"EURUSD": {"price": 1.1}},
        "brokers": {"B": {"utc_offset": 2, "dst": "eu", "symbols": {"EURUSD": sym}}},
        "accounts": [{"login": 1, "broker": "B", "balance": 1000}],
    }


def test_demo_world_contents():
    w = load_world(DEMO_WORLD)
    assert set(w.accounts) == {1001, 2001, 2002, 2003, 2004}
    assert {a: w.accounts[a].broker for a in w.accounts} == {
        1001: "SimFX-Live", 2001: "SimProp-Server", 2002: "SimProp-Server", 2003: "SimFX-Live",
        2004: "SimProp-Server"}
    assert w.accounts[2002].margin_mode == 0 and w.accounts[2001].margin_mode == 2
    assert set(w.brokers["SimFX-Live"].symbols) == {"EURUSD", "GBPUSD", "USDJPY", "XAUUSD", "US30"}
    assert set(w.brokers["SimProp-Server"].symbols) == {"EURUSD.c", "GBPUSD.c", "USDJPY.c", "GOLD", "DJ30"}
    sim = Simulator.demo()
    assert sim.logins() == [1001, 2001, 2002, 2003, 2004] and sim.broker_of(2002) == "SimProp-Server"
    summary = sim.world_summary()
    json.dumps(summary)
    assert {b["name"] for b in summary["brokers"]} == {"SimFX-Live", "SimProp-Server"}


def test_same_instrument_quotes_differently_per_broker():
    sim = Simulator.demo()
    sim.set_price("EURUSD", 1.10000)  # the underlying
    fx, sp = sim.terminal(), sim.terminal()
    fx.initialize(login=1001)
    sp.initialize(login=2001)
    a, b = fx.symbol_info_tick("EURUSD"), sp.symbol_info_tick("EURUSD.c")
    assert (a.bid, a.ask) == (1.1, 1.10008) and (b.bid, b.ask) == (1.10003, 1.10006)
    sim.move_price("EURUSD.c", 10, broker="SimProp-Server")
    assert sp.symbol_info_tick("EURUSD.c").bid == 1.10013 and fx.symbol_info_tick("EURUSD").bid == 1.1001


@pytest.mark.parametrize("mutate,fragment", [
    (lambda d: d["brokers"]["B"]["symbols"]["EURUSD"].pop("digits"), "brokers.B.symbols.EURUSD.digits"),
    (lambda d: d["brokers"]["B"]["symbols"]["EURUSD"].update(volume_min="x"), "volume_min: expected a float > 0"),
    (lambda d: d["brokers"]["B"]["symbols"]["EURUSD"].update(filling_mode=9), "filling_mode"),
    (lambda d: d["brokers"]["B"]["symbols"]["EURUSD"].update(trade_exemode="fast"), "trade_exemode"),
    (lambda d: d["brokers"]["B"]["symbols"]["EURUSD"].update(underlying="X"), "underlying"),
    (lambda d: d["brokers"]["B"]["symbols"]["EURUSD"].update(sessions={"mon": ["25:00-26:00"]}), "sessions.mon[0]"),
    (lambda d: d["brokers"]["B"].update(dst="mars"), "brokers.B.dst"),
    (lambda d: d["accounts"][0].update(broker="Nope"), "accounts[0].broker"),
    (lambda d: d["accounts"][0].update(margin_mode="both"), "accounts[0].margin_mode"),
    (lambda d: d["accounts"].append({"login": 1, "broker": "B", "balance": 5}), "accounts[1].login"),
    (lambda d: d["accounts"][0].update(currency="CHF"), "accounts[0].currency"),
    (lambda d: d.update(extra=1), "extra"),
    (lambda d: d["world"].update(start="yesterday"), "world.start"),
])
def test_world_errors_name_the_key(mutate, fragment):
    d = base()
    mutate(d)
    with pytest.raises(WorldError) as e:
        parse_world(d, "w.toml")
    assert str(e.value).startswith("w.toml: ") and fragment in str(e.value)


def test_world_files_toml_and_json(tmp_path):
    j = tmp_path / "w.json"
    j.write_text(json.dumps(base()))
    assert Simulator.from_file(j).logins() == [1]
    bad = tmp_path / "bad.toml"
    bad.write_text("[world\nstart=")
    with pytest.raises(WorldError, match="bad.toml: not valid TOML"):
        Simulator.from_file(bad)
    with pytest.raises(WorldError, match="cannot read"):
        load_world(tmp_path / "missing.toml")


def test_market_closed_outside_sessions():
    # Mon-Fri 08:00-17:00 server time (UTC+2 in January); start Monday 10:00 UTC = 12:00 server
    days = {d: ["08:00-17:00"] for d in ("mon", "tue", "wed", "thu", "fri")}
    sim = Simulator(parse_world(base(sessions=days)))
    mt5 = sim.terminal()
    mt5.initialize(login=1)
    req = {"action": 1, "symbol": "EURUSD", "volume": 0.01, "type": 0}
    assert mt5.order_send(req).retcode == 10009
    sim.advance(5 * 3600)  # 17:00 server -> closed
    last_tick = mt5.symbol_info_tick("EURUSD")
    r = mt5.order_send(req)
    assert r.retcode == 10018 and r.comment == "Market closed"
    sim.advance(3600)
    assert mt5.symbol_info_tick("EURUSD") == last_tick  # no ticks while closed
    sim.set_time(datetime(2025, 1, 7, 6, 0, tzinfo=timezone.utc))  # Tue 08:00 server: open again
    assert mt5.order_send(req).retcode == 10009
    sim.set_time(datetime(2025, 1, 11, 10, 0, tzinfo=timezone.utc))  # Saturday
    assert mt5.order_send(req).retcode == 10018


def test_server_clock_dst_rules():
    eet, ny, fixed = ServerClock(2, "eu"), ServerClock(2, "us"), ServerClock(3)
    ms = lambda *a: int(datetime(*a, tzinfo=timezone.utc).timestamp() * 1000)  # noqa: E731
    h = 3_600_000
    assert eet.offset_ms(ms(2025, 1, 6)) == 2 * h and eet.offset_ms(ms(2025, 7, 1)) == 3 * h
    # EU switch: last Sunday of March 2025 = 30 March, 01:00 UTC
    assert eet.offset_ms(ms(2025, 3, 30, 0, 59)) == 2 * h and eet.offset_ms(ms(2025, 3, 30, 1)) == 3 * h
    assert eet.offset_ms(ms(2025, 10, 26, 0, 59)) == 3 * h and eet.offset_ms(ms(2025, 10, 26, 1)) == 2 * h
    # US switch: 9 March 2025 07:00 UTC .. 2 November 2025 06:00 UTC
    assert ny.offset_ms(ms(2025, 3, 20)) == 3 * h and eet.offset_ms(ms(2025, 3, 20)) == 2 * h
    assert ny.offset_ms(ms(2025, 11, 2, 6)) == 2 * h
    assert fixed.offset_ms(ms(2025, 7, 1)) == 3 * h
    t = ms(2025, 7, 1, 12)
    assert eet.to_utc(eet.to_server(t)) == t


def test_tick_time_is_server_wall_clock_with_dst():
    sim = Simulator.demo()
    fx, sp = sim.terminal(), sim.terminal()
    fx.initialize(login=1001)
    sp.initialize(login=2001)
    sim.set_time(datetime(2025, 3, 20, 12, 0, tzinfo=timezone.utc))  # EU winter, US summer
    noon = int(datetime(2025, 3, 20, 12, 0, tzinfo=timezone.utc).timestamp())
    sim.advance(1)
    sim.move_price("EURUSD", 5)  # force a fresh tick at noon + 1 s on both brokers
    assert fx.symbol_info_tick("EURUSD").time == noon + 1 + 2 * 3600
    assert sp.symbol_info_tick("EURUSD.c").time == noon + 1 + 3 * 3600
    sim.set_time(datetime(2025, 7, 1, 12, 0, tzinfo=timezone.utc))
    assert sim.now_ms() == int(datetime(2025, 7, 1, 12, tzinfo=timezone.utc).timestamp() * 1000)
    r = fx.order_send({"action": 1, "symbol": "EURUSD", "volume": 0.1, "type": 0})
    summer_noon = int(datetime(2025, 7, 1, 12, tzinfo=timezone.utc).timestamp())
    assert fx.positions_get()[0].time == summer_noon + 3 * 3600 and r.retcode == 10009
    with pytest.raises(ValueError):
        sim.set_time(datetime(2025, 1, 1, tzinfo=timezone.utc))  # backwards after trading
