import pytest

from copier.links import Link
from copier.orders import RetryPolicy, choose_filling, classify_retcode
from copier.tags import make_tag, master_hash, parse_tag, to_base36


def test_tag_roundtrip_and_length():
    for ticket in (0, 1, 35, 36, 123456789, 2**63 - 1):
        tag = make_tag("FTMO_Master", ticket)
        assert len(tag) <= 27 and tag.isascii()
        assert parse_tag(tag) == (master_hash("FTMO_Master"), ticket)
    assert make_tag("FTMO_Master", 36) == f"cH{master_hash('FTMO_Master')}:10"
    assert to_base36(35) == "z"


def test_master_hash_is_stable_and_distinguishes():
    assert len(master_hash("A")) == 4
    assert master_hash("FTMO_Master") == master_hash("FTMO_Master")
    assert master_hash("FTMO_Master") != master_hash("FTMO_Master2")


@pytest.mark.parametrize("suffix", ["[sl]", " [tp 1.1234]", "|x", " "])
def test_parse_survives_broker_suffixes(suffix):
    tag = make_tag("M", 987654321)
    assert parse_tag(tag + suffix) == parse_tag(tag)


@pytest.mark.parametrize("comment", [None, "", "manual", "[sl 1.0712]", "ch1234:5", "cH12:5", "cHabcd:", "cHabcd5",
                                     "xcHabcd:5", "cHab!d:5"])
def test_parse_rejects_foreign_comments(comment):
    assert parse_tag(comment) is None


def test_parse_stops_at_the_first_non_base36_char():
    # documented limitation: letters glued straight onto the ticket cannot be told apart from it;
    # brokers append with a separator ("[sl]", " ", "|"), which is safe
    assert parse_tag("cHabcd:5_x") == ("abcd", 5)
    assert parse_tag("cHabcd:5x") == ("abcd", int("5x", 36))


@pytest.mark.parametrize("bits,exemode,expected", [
    (2, 2, 1), (3, 2, 1), (1, 2, 0), (0, 2, 2), (4, 2, 2), (3, 3, 1), (3, 1, 0), (2, 0, 0),
])
def test_choose_filling(bits, exemode, expected):
    assert choose_filling(bits, exemode) == expected


@pytest.mark.parametrize("code,cls", [
    (10009, "done"), (10008, "done"), (10010, "done"), (10004, "retry"), (10020, "retry"), (10021, "retry"),
    (10024, "retry"), (10028, "retry"), (10012, "unknown"), (10011, "unknown"), (10031, "unknown"), (None, "unknown"),
    (10025, "noop"), (10018, "later"), (10017, "later"), (10027, "later"), (10044, "later"), (10019, "final"),
    (10030, "final"), (10036, "final"), (10006, "final"), (10016, "final"), (10045, "final"),
])
def test_classify_retcode(code, cls):
    assert classify_retcode(code) == cls


def test_position_closed_is_noop_for_closes():
    assert classify_retcode(10036, closing=True) == "noop"


def test_retry_policy():
    assert RetryPolicy(max_attempts=5, base=0.1, cap=0.5).delays() == [0.1, 0.2, 0.4, 0.5]
    assert RetryPolicy(max_attempts=1).delays() == []
    with pytest.raises(ValueError):
        RetryPolicy(max_attempts=0)


def test_link_record_roundtrip_and_seed_rows():
    link = Link("S", "M", 5, status="OPEN", slave_ticket=9, symbol="EURUSD.c", direction="BUY", master_volume=1, slave_volume=0.5)
    assert Link.from_record({**link.to_record(), "_id": "x", "open_time": "2025"}) == link
    seed = Link.from_record({"master_ticket": 12345678, "slave_ticket": 87654321, "slave_name": "Apex_Slave_01",
                             "symbol": "EURUSD.c", "direction": "BUY", "status": "OPEN", "open_time": "2025-11-23T10:30:00Z"})
    assert seed.master_ticket == 12345678 and seed.live and seed.master_side == "BUY" and seed.master_name == ""
