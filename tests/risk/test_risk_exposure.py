"""Risk at SL, standing exposure, and the pre-trade check's refusals."""
import pytest
from risk_testkit import snap, srv

from copier.models import Position, SymbolSpec
from copier.risk import (
    AccountRiskState,
    ProposedOpen,
    TrackerState,
    evaluate,
    exposure_breaches,
    exposure_of,
    pre_trade_check,
    resolve_risk_config,
    risk_at_sl,
)

EURUSD = SymbolSpec(name="EURUSD", digits=5, point=0.00001, tick_size=0.00001, tick_value=1.0,
                    contract_size=100_000, volume_min=0.01, volume_step=0.01, volume_max=100)
NOW = srv(2026, 11, 20, 12)


def pos(ticket, side="BUY", volume=1.0, open_=1.10000, sl=1.09500, current=1.10000, symbol="EURUSD"):
    return Position(ticket=ticket, identifier=ticket, symbol=symbol, side=side, volume=volume,
                    price_open=open_, sl=sl, price_current=current)


def account(equity, positions=(), **risk):
    c = resolve_risk_config({"profile": "ftmo_2step", "initial_balance": 100_000, **risk})
    st = evaluate(c, TrackerState(), snap(100_000), srv(2026, 11, 20, 1, 0, 5)).state  # day starts at 100,000
    return AccountRiskState(config=c, tracker=st, metrics=snap(100_000, equity), now_server_ms=NOW,
                            positions=tuple(positions))


def test_risk_at_sl():
    # 1 lot EURUSD, 50 pips = 500 ticks x $1 = $500.
    assert risk_at_sl("BUY", 1.0, 1.10000, 1.09500, 0.00001, 1.0) == pytest.approx(500)
    assert risk_at_sl("SELL", 0.5, 1.10000, 1.10200, 0.00001, 1.0) == pytest.approx(100)
    assert risk_at_sl("BUY", 1.0, 1.10000, 1.10100, 0.00001, 1.0) == 0.0  # SL locks profit
    assert risk_at_sl("BUY", 1.0, 1.10000, 0.0, 0.00001, 1.0) is None  # unbounded


def test_exposure_report_flags_missing_sl_and_sums_lots():
    ps = [pos(1, current=1.09800), pos(2, volume=2.0, sl=0.0), pos(3, symbol="XAUUSD", sl=1900.0)]
    exp = exposure_of(ps, {"EURUSD": EURUSD}, equity=100_000)
    assert exp.positions[0].risk_money == pytest.approx(300)  # from the current price
    assert exp.positions[0].risk_pct == pytest.approx(0.3)
    assert exp.unbounded_tickets == (2, 3)  # no SL, and no spec for XAUUSD
    assert exp.total_risk_money is None
    assert exp.lots_by_symbol == {"EURUSD": 3.0, "XAUUSD": 1.0}
    cfg = resolve_risk_config({"profile": "custom", "max_lots_per_symbol": 2.5, "max_positions": 2, "require_sl": True})
    out = exposure_breaches(cfg, exp)
    assert any("#2" in r and "no SL" in r for r in out)
    assert any(r.startswith("EURUSD: 3.0 lots") for r in out)
    assert any("3 positions > 2" in r for r in out)


def test_open_allowed_when_worst_case_stays_below_pause():
    # Daily used 3,000 (60 % of 5,000); SL risk 1,000 -> worst case 80 % < 85 %.
    d = pre_trade_check(account(97_000), ProposedOpen("EURUSD", "BUY", 2.0, 1.10000, 1.09500, 0.00001, 1.0))
    assert d.allowed and d.reasons == () and d.risk_money == pytest.approx(1_000)


def test_open_refused_when_sl_hit_would_reach_pause():
    # Same account, 3 lots: worst case 3,000 + 1,500 = 4,500 = 90 % >= 85 %.
    d = pre_trade_check(account(97_000), ("EURUSD", "BUY", 3.0, 1.10000, 1.09500, 0.00001, 1.0))
    assert not d.allowed
    assert "daily_loss after SL hit would be 4500.00 = 90.0%" in d.reason


def test_open_refused_when_already_paused_or_locked():
    d = pre_trade_check(account(95_700), ProposedOpen("EURUSD", "BUY", 0.01, 1.1, 1.0999, 0.00001, 1.0))
    assert not d.allowed and "paused" in d.reason  # 4,300 = 86 %
    acc = account(95_000)  # 100 %: flatten + lock
    ev = evaluate(acc.config, acc.tracker, acc.metrics, NOW)
    locked = AccountRiskState(acc.config, ev.state, snap(95_000), NOW)
    d = pre_trade_check(locked, ProposedOpen("EURUSD", "BUY", 0.01, 1.1, 1.0999, 0.00001, 1.0))
    assert not d.allowed and "locked" in d.reason


def test_per_trade_risk_lots_and_positions_limits():
    acc = account(99_000, positions=[pos(1, volume=1.5), pos(2, symbol="GBPUSD")],
                  max_risk_per_trade_pct=1.0, max_lots_per_order=2.0, max_lots_per_symbol=3.0, max_positions=2)
    d = pre_trade_check(acc, ProposedOpen("EURUSD", "BUY", 2.5, 1.10000, 1.09400, 0.00001, 1.0))
    # 2.5 lots x 600 ticks = 1,500 = 1.52 % of 99,000.
    assert not d.allowed
    assert len(d.reasons) == 4
    assert "1.52% of equity > max 1.0%" in d.reason
    assert "2.5 lots > max 2.0 per order" in d.reason
    assert "EURUSD: 1.5 + 2.5 lots > max 3 per symbol" in d.reason
    assert "2 positions open, max 2" in d.reason


def test_no_sl_is_flagged_and_refused_only_when_rules_need_an_sl():
    free = pre_trade_check(account(99_000), ProposedOpen("EURUSD", "SELL", 1.0, 1.1, 0.0, 0.00001, 1.0))
    assert free.allowed and free.flags == ("no_sl",) and free.risk_money is None
    strict = pre_trade_check(account(99_000, require_sl=True), ProposedOpen("EURUSD", "SELL", 1.0, 1.1, 0.0, 0.00001, 1.0))
    assert not strict.allowed and "no SL" in strict.reason


# ------------------------------------------------------------ issue 10: seed limits
def test_total_open_lots_per_account():
    c = resolve_risk_config({"profile": "ftmo_2step", "initial_balance": 100_000, "max_total_lots": 5})
    exp = exposure_of([pos(1, volume=3.0), pos(2, volume=2.5, symbol="GBPUSD")], {"EURUSD": EURUSD}, 100_000)
    assert exposure_breaches(c, exp) == ("5.5 lots open > 5 in total",)
    d = pre_trade_check(account(100_000, [pos(1, volume=4.0)], max_total_lots=5),
                        ProposedOpen("EURUSD", "BUY", 1.5, 1.1, 1.099, 0.00001, 1.0))
    assert not d.allowed and "4 + 1.5 lots > max 5 open in total" in d.reason
    assert pre_trade_check(account(100_000, [pos(1, volume=4.0)], max_total_lots=5),
                           ProposedOpen("EURUSD", "BUY", 1.0, 1.1, 1.099, 0.00001, 1.0)).allowed


def test_max_trades_per_day():
    st = account(100_000, max_trades_per_day=10)
    ok = pre_trade_check(AccountRiskState(**{**st.__dict__, "trades_today": 9}),
                         ProposedOpen("EURUSD", "BUY", 0.1, 1.1, 1.099, 0.00001, 1.0))
    assert ok.allowed
    full = pre_trade_check(AccountRiskState(**{**st.__dict__, "trades_today": 10}),
                           ProposedOpen("EURUSD", "BUY", 0.1, 1.1, 1.099, 0.00001, 1.0))
    assert not full.allowed and "10 trades opened today, max 10 per day" in full.reason
    blind = pre_trade_check(st, ProposedOpen("EURUSD", "BUY", 0.1, 1.1, 1.099, 0.00001, 1.0))
    assert not blind.allowed and "trades today unknown" in blind.reason
    c = st.config
    assert exposure_breaches(c, exposure_of([], {}, 100_000), trades_today=11) == ("11 trades today > 10",)


def test_trades_opened_since_counts_entries_only():
    from risk_testkit import deal

    from copier.risk import trades_opened_since
    c = resolve_risk_config({"profile": "ftmo_2step", "initial_balance": 100_000, "reset_tz": "server"})
    day = c.clock.to_utc_ms(srv(2026, 11, 20))
    deals = [deal(srv(2026, 11, 19, 23), type="BUY", entry=0), deal(srv(2026, 11, 20, 1), type="BUY", entry=0),
             deal(srv(2026, 11, 20, 2), type="SELL", entry=1), deal(srv(2026, 11, 20, 3), type="SELL", entry=0),
             deal(srv(2026, 11, 20, 4), 100.0, type="BALANCE", entry=0)]
    assert trades_opened_since(deals, day, c.clock) == 2


def test_hand_opened_20_lot_position_breaches_the_per_order_limit():
    c = resolve_risk_config({"profile": "ftmo_2step", "initial_balance": 100_000, "max_lots_per_order": 5,
                             "max_risk_per_trade_pct": 1.0})
    exp = exposure_of([pos(9, volume=20.0, sl=0.0)], {"EURUSD": EURUSD}, 100_000)
    assert exposure_breaches(c, exp) == ("#9 EURUSD: no SL, risk unbounded", "#9 EURUSD: 20.0 lots > 5.0")


def test_margin_warning_is_on_by_default_and_only_warns():
    from copier.models import AccountMetrics
    from copier.risk import Level
    c = resolve_risk_config({"profile": "ftmo_2step", "initial_balance": 100_000})
    assert c.margin_warn_level == 150.0
    st = evaluate(c, TrackerState(), snap(100_000), srv(2026, 11, 20, 1, 0, 5)).state

    def at(margin):
        m = AccountMetrics(login=7, balance=100_000, equity=100_000, margin=margin, margin_free=100_000 - margin,
                           profit=0.0)
        return evaluate(c, st, m, srv(2026, 11, 20, 2)).rule("margin_level")

    assert at(50_000).level == Level.OK  # 200 %
    assert at(66_667).level == Level.WARN  # 149.999 %
    low = at(500_000)  # 20 %: still a warning, never a pause or a flatten
    assert low.level == Level.WARN and low.value == pytest.approx(20.0)
    off = resolve_risk_config({"profile": "ftmo_2step", "initial_balance": 100_000, "margin_warn_level": None})
    assert off.margin_warn_level is None
    strict = resolve_risk_config({"profile": "ftmo_2step", "initial_balance": 100_000, "min_margin_level": 100})
    m = AccountMetrics(login=7, balance=100_000, equity=100_000, margin=98_000, margin_free=2_000, profit=0.0)
    assert evaluate(strict, st, m, srv(2026, 11, 20, 2)).rule("margin_level").level == Level.FLATTEN
