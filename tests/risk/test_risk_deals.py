"""Deal records: int type codes, MT5 namedtuples, and what moves the balance."""
from collections import namedtuple

import pytest

from copier.risk import Deal
from copier.risk.deals import balance_delta

TradeDeal = namedtuple(
    "TradeDeal",
    "ticket order time time_msc type entry magic position_id reason volume price commission swap profit fee symbol comment external_id",
)


def test_int_codes_and_prefixes_become_names():
    assert Deal(1, 0, 2).type == "BALANCE"
    assert Deal(1, 0, "DEAL_TYPE_COMMISSION").type == "COMMISSION"
    with pytest.raises(ValueError):
        Deal(1, 0, 99)


def test_from_mt5_record():
    rec = TradeDeal(5, 6, 1_700_000_000, 1_700_000_000_123, 1, 1, 0, 77, 3, 0.5, 1.1, -3.5, -1.0, 120.0, -0.5,
                    "EURUSD", "", "")
    d = Deal.from_mt5(rec)
    assert (d.type, d.entry, d.position_id, d.time_msc) == ("SELL", 1, 77, 1_700_000_000_123)
    assert d.net == pytest.approx(115.0) and d.is_close
    assert Deal.from_dict(d.to_dict()) == d


def test_credit_does_not_move_the_balance():
    deals = [Deal(1, 0, "BALANCE", profit=1_000), Deal(2, 0, "CREDIT", profit=500), Deal(3, 0, "SELL", entry=1, profit=-20, commission=-3)]
    assert balance_delta(deals) == pytest.approx(977)
    assert deals[0].is_balance_op and not deals[2].is_balance_op
