"""One world shared by a ticker thread and several terminal threads (as the server runs it)."""
import threading

from sim import Simulator


def test_concurrent_ticker_and_terminals_stay_consistent():
    sim = Simulator.demo(seed=3)
    errors: list[BaseException] = []
    stop = threading.Event()

    def ticker():
        try:
            while not stop.is_set():
                sim.advance(0.1)
        except BaseException as e:  # pragma: no cover - reported below
            errors.append(e)

    def trader(login, symbol):
        try:
            mt5 = sim.terminal()
            assert mt5.initialize(login=login)
            filling = 0 if mt5.symbol_info(symbol).filling_mode & 1 else 1
            for _ in range(30):
                r = mt5.order_send({"action": 1, "symbol": symbol, "volume": 0.01, "type": 0,
                                    "type_filling": filling})
                assert r.retcode == 10009
                pos = mt5.positions_get(ticket=r.order)[0]
                r2 = mt5.order_send({"action": 1, "symbol": symbol, "volume": 0.01, "type": 1,
                                     "position": pos.ticket, "type_filling": filling})
                assert r2.retcode == 10009
            assert mt5.positions_get() == ()
            assert len(mt5.history_deals_get(0, 2**40)) == 61  # balance + 60 deals
        except BaseException as e:
            errors.append(e)

    t = threading.Thread(target=ticker)
    t.start()
    workers = [threading.Thread(target=trader, args=a) for a in
               ((1001, "EURUSD"), (2001, "EURUSD.c"), (2003, "GBPUSD"), (2004, "USDJPY.c"))]
    for w in workers:
        w.start()
    for w in workers:
        w.join(30)
    stop.set()
    t.join(30)
    assert not errors, errors
    tickets = [d.ticket for login in (2001, 2004) for d in sim.accounts[login].hist_deals]
    assert len(tickets) == len(set(tickets))  # one deal-ticket counter per trade server
