"""The terminal reads behind exposure sizing are cached: the master's contract sizes
(one symbol_info per symbol, refreshed hourly) and the slave's conversion rates."""
from __future__ import annotations

from types import SimpleNamespace as NS

from copier.decisions import Skip
from nodes.rates import RateBook, symbol_currencies
from terminals.convert import ContractSizes, positions_by_identifier


class FakeMT5:
    def __init__(self, sizes=None, ticks=None):
        self.sizes = sizes or {}
        self.ticks = ticks or {}
        self.calls: list[tuple[str, str]] = []

    def symbol_info(self, symbol):
        self.calls.append(("symbol_info", symbol))
        size = self.sizes.get(symbol)
        return None if size is None else NS(name=symbol, trade_contract_size=size)

    def symbol_info_tick(self, symbol):
        self.calls.append(("tick", symbol))
        return self.ticks.get(symbol)

    def symbol_select(self, symbol, enable):
        self.calls.append(("select", symbol))
        return True


def _pos(ident, symbol):
    return NS(ticket=ident, identifier=ident, symbol=symbol, type=0, volume=1.0, price_open=1.0, sl=0.0, tp=0.0,
              time_msc=0, time_update_msc=0, magic=0, comment="", price_current=1.0, profit=0.0)


def test_master_contract_sizes_are_read_once_per_symbol_not_per_poll():
    mt5 = FakeMT5({"US30": 10.0, "EURUSD": 100000.0})
    clock = [0.0]
    sizes = ContractSizes(mt5, clock=lambda: clock[0])
    for _ in range(100):  # 100 polls
        got = positions_by_identifier([_pos(1, "US30"), _pos(2, "EURUSD")], contract_size=sizes)
        clock[0] += 0.05
    assert got[1].contract_size == 10.0 and got[2].contract_size == 100000.0
    assert mt5.calls == [("symbol_info", "US30"), ("symbol_info", "EURUSD")]
    clock[0] += 3600  # refreshed rarely
    sizes("US30")
    assert mt5.calls[-1] == ("symbol_info", "US30") and sizes.reads == 3


def test_an_unreadable_contract_size_is_published_as_unknown_and_retried_soon():
    mt5 = FakeMT5({})
    clock = [0.0]
    sizes = ContractSizes(mt5, clock=lambda: clock[0])
    assert sizes("DJ30") == 0.0 and sizes("DJ30") == 0.0 and sizes.reads == 1 and "DJ30" in sizes.failed
    mt5.sizes["DJ30"] = 1.0
    clock[0] += 6
    assert sizes("DJ30") == 1.0 and not sizes.failed
    mt5.sizes.clear()
    clock[0] += 3601  # a failed refresh keeps the size it knew
    assert sizes("DJ30") == 1.0


def test_rate_book_reads_a_tick_per_leg_once_per_ttl():
    symbols = [NS(name="USDJPY.c", currency_base="USD", currency_profit="JPY"), NS(name="DJ30", currency_base="USD", currency_profit="USD")]
    mt5 = FakeMT5(ticks={"USDJPY.c": NS(bid=151.1, ask=151.3)})
    book = RateBook(symbol_currencies(symbols), ttl_ms=60_000)
    jpy, usd = NS(currency="JPY"), NS(currency="USD")
    for now in range(0, 59_000, 1000):
        conv = book.for_masters(mt5, "balance_ratio", [usd, usd], jpy, now)["USD"]
    assert conv.symbol == "1/USDJPY.c" and abs(conv.rate - 1 / 151.2) < 1e-12
    assert book.reads == 1
    book.for_masters(mt5, "balance_ratio", [usd], jpy, 61_000)
    assert book.reads == 2


def test_rate_book_needs_nothing_when_not_comparing_money_or_same_currency():
    mt5 = FakeMT5()
    book = RateBook({"USDJPY.c": ("USD", "JPY")})
    assert book.for_masters(mt5, "same", [NS(currency="USD")], NS(currency="JPY"), 0) == {}
    assert book.for_masters(mt5, "balance_ratio", [NS(currency="USD")], NS(currency="USD"), 0) == {}
    assert mt5.calls == []


def test_rate_book_without_a_symbol_refuses_and_without_a_tick_waits():
    book = RateBook({"EURUSD.c": ("EUR", "USD")})
    mt5 = FakeMT5()
    out = book.for_masters(mt5, "equity_ratio", [NS(currency="USD")], NS(currency="JPY"), 0)
    assert isinstance(out["USD"], Skip) and "no conversion from JPY to USD" in out["USD"].reason
    book = RateBook({"USDJPY.c": ("USD", "JPY")})
    assert book.for_masters(mt5, "equity_ratio", [NS(currency="USD")], NS(currency="JPY"), 0) == {}  # no tick yet: wait
    assert ("select", "USDJPY.c") in mt5.calls
