"""Fault 4 and its kind: a netting master's position that changes side under the same
identifier is a flip, not a close. Followers end on the new side; the link keeps tracking
the same master position (direction updated, "master flipped")."""
from dataclasses import replace

from copier_testkit import MASTER, SlaveModel, cfg, mpos, quote, spec, view

from copier.actions import Close, Flip
from copier.links import Link
from copier.models import Position
from copier.tags import make_tag

SPECS = {"EURUSD.c": spec("EURUSD.c")}
QUOTES = {"EURUSD.c": quote(1.1000)}
SAME = cfg()


class NettingMaster:
    """One netting master account: one position per symbol, deals reverse it (MT5 rules)."""

    def __init__(self) -> None:
        self.pos: Position | None = None
        self.ticket = 100

    def deal(self, side: str, volume: float) -> None:
        q = QUOTES["EURUSD.c"]
        price = q.ask if side == "BUY" else q.bid
        self.ticket += 1
        p = self.pos
        if p is None:
            self.pos = mpos(self.ticket, side=side, volume=volume, price=price)
        elif p.side == side:
            self.pos = replace(p, volume=round(p.volume + volume, 8))
        elif volume < p.volume - 1e-9:
            self.pos = replace(p, volume=round(p.volume - volume, 8))
        elif abs(volume - p.volume) <= 1e-9:
            self.pos = None
        else:  # INOUT: identifier stays, ticket becomes the reversing order's
            self.pos = replace(p, ticket=self.ticket, side=side, volume=round(volume - p.volume, 8), price_open=price)

    def view(self, fresh: bool = True):
        return {MASTER: view([self.pos] if self.pos else [], fresh=fresh)}


def settle(model: SlaveModel, master: NettingMaster, slave_cfg=SAME, **kw) -> list:
    done = []
    for _ in range(5):
        acts = model.plan(slave_cfg, master.view(), specs=SPECS, quotes=QUOTES, **kw)
        if not acts:
            return done
        model.apply(acts)
        done += acts
    raise AssertionError("did not settle")


def held(model: SlaveModel) -> list[tuple[str, float]]:
    return sorted((p.side, round(p.volume, 2)) for p in model.positions.values())


def only_link(model: SlaveModel) -> Link:
    (link,) = model.links.values()
    return link


def test_fault4_buy_100_then_sell_200_leaves_both_followers_sell_100_and_the_link_tracks_it():
    for netting in (False, True):
        m, s = NettingMaster(), SlaveModel(netting=netting)
        m.deal("BUY", 1.00)
        settle(s, m)
        assert held(s) == [("BUY", 1.0)]
        ident = m.pos.identifier
        m.deal("SELL", 2.00)
        assert (m.pos.identifier, m.pos.side, m.pos.volume) == (ident, "SELL", 1.0)
        acts = settle(s, m)
        assert held(s) == [("SELL", 1.0)], netting
        (flip,) = [a for a in acts if isinstance(a, Flip)]
        assert (flip.master_ticket, flip.old_direction, flip.direction, flip.reason) == (ident, "BUY", "SELL", "master flipped")
        link = only_link(s)
        assert (link.master_ticket, link.status, link.direction, link.master_direction, link.master_volume) == (ident, "OPEN", "SELL", "SELL", 1.0)
        assert link.reason == "master flipped"  # never "master closed"
        assert not [a for a in acts if isinstance(a, Close) and a.ends_link]


def test_hedging_follower_flip_is_close_old_plus_open_new_in_one_pass():
    m, s = NettingMaster(), SlaveModel()
    m.deal("BUY", 1.00)
    settle(s, m)
    m.deal("SELL", 2.00)
    acts = s.plan(SAME, m.view(), specs=SPECS, quotes=QUOTES)
    assert [type(a).__name__ for a in acts] == ["Flip", "Close", "Open"]
    f, c, o = acts
    assert f.status == "PENDING" and (c.side_to_close, c.volume, c.ends_link) == ("BUY", 1.0, False)
    assert (o.side, o.volume, o.purpose, o.comment) == ("SELL", 1.0, "retry", make_tag(MASTER, m.pos.identifier))
    s.apply(acts)
    assert s.plan(SAME, m.view(), specs=SPECS, quotes=QUOTES) == []


def test_netting_follower_flip_is_close_all_plus_open_not_one_inout_deal():
    # a reversal in one deal would tie the old side's close to the new side's checks
    # (slippage, close-only symbol, risk): closing the old exposure must not wait on them
    m, s = NettingMaster(), SlaveModel(netting=True)
    m.deal("BUY", 1.00)
    settle(s, m)
    m.deal("SELL", 2.00)
    acts = s.plan(SAME, m.view(), specs=SPECS, quotes=QUOTES)
    assert [type(a).__name__ for a in acts] == ["Flip", "Close", "Open"]
    assert (acts[1].volume, acts[1].reason, acts[1].ends_link) == (1.0, "master flipped", False)
    assert (acts[2].side, acts[2].volume) == ("SELL", 1.0)


def test_hedging_follower_of_a_netting_master_flipping_twice():
    m, s = NettingMaster(), SlaveModel()
    m.deal("BUY", 1.00)
    settle(s, m)
    m.deal("SELL", 2.00)
    settle(s, m)
    m.deal("BUY", 1.30)  # SELL 1.00 -> BUY 0.30, same identifier
    settle(s, m)
    assert held(s) == [("BUY", 0.3)]
    link = only_link(s)
    assert (link.status, link.direction, link.master_volume, link.slave_volume) == ("OPEN", "BUY", 0.3, 0.3)


def test_flip_with_partial_volume_buy_100_sell_150_gives_sell_050():
    for netting in (False, True):
        m, s = NettingMaster(), SlaveModel(netting=netting)
        m.deal("BUY", 1.00)
        settle(s, m)
        m.deal("SELL", 1.50)
        settle(s, m)
        assert held(s) == [("SELL", 0.5)], netting


def test_flip_is_sized_as_a_new_copy_multiplier_and_reverse():
    half_rev = cfg(sizing={"mode": "multiplier", "multiplier": 0.5}, reverse=True)
    for netting in (False, True):
        m, s = NettingMaster(), SlaveModel(netting=netting)
        m.deal("BUY", 1.00)
        settle(s, m, half_rev)
        assert held(s) == [("SELL", 0.5)]
        m.deal("SELL", 1.60)
        settle(s, m, half_rev)
        assert held(s) == [("BUY", 0.3)], netting  # reverse of SELL 0.60 × 0.5


def test_netting_master_partial_reduce_is_not_a_flip():
    for netting in (False, True):
        m, s = NettingMaster(), SlaveModel(netting=netting)
        m.deal("BUY", 1.00)
        settle(s, m)
        m.deal("SELL", 0.40)
        acts = settle(s, m)
        assert held(s) == [("BUY", 0.6)] and not [a for a in acts if isinstance(a, Flip)]
        assert only_link(s).direction == "BUY"
        m.deal("SELL", 0.60)  # exactly flat: a close, not a flip
        settle(s, m)
        assert held(s) == [] and only_link(s).status == "CLOSED" and only_link(s).reason == "master closed"


def test_flip_while_the_follower_market_is_closed_is_retried_not_lost():
    """Every send fails (10018 market closed): nothing is lost, the next pass asks again."""
    m, s = NettingMaster(), SlaveModel()
    m.deal("BUY", 1.00)
    settle(s, m)
    m.deal("SELL", 2.00)
    first = s.plan(SAME, m.view(), specs=SPECS, quotes=QUOTES)
    # the node writes the bookkeeping and the intent, the broker refuses both deals
    s.apply([a for a in first if isinstance(a, Flip)])
    link = only_link(s)
    assert (link.status, link.direction) == ("PENDING", "SELL")
    s.links[link.key] = replace(link, attempts=1)  # intent written (attempt 1), refused
    again = s.plan(SAME, m.view(), specs=SPECS, quotes=QUOTES)
    assert [(type(a).__name__, getattr(a, "reason", getattr(a, "purpose", ""))) for a in again] == [
        ("Close", "master flipped"), ("Open", "retry")]
    s.apply(again)  # the market opened
    assert held(s) == [("SELL", 1.0)] and only_link(s).status == "OPEN"


def test_flip_old_side_left_after_the_link_ended_is_closed_as_a_flip_leftover():
    m, s = NettingMaster(), SlaveModel()
    m.deal("BUY", 1.00)
    settle(s, m)
    m.deal("SELL", 2.00)
    first = s.plan(SAME, m.view(), specs=SPECS, quotes=QUOTES)
    s.apply([a for a in first if isinstance(a, Flip)])
    link = only_link(s)
    s.links[link.key] = replace(link, status="FAILED")  # e.g. the new side gave up; the old BUY is still there
    (c,) = s.plan(SAME, m.view(), specs=SPECS, quotes=QUOTES)
    assert isinstance(c, Close) and c.side_to_close == "BUY" and c.reason == "master flipped"


def test_flip_new_side_refused_by_slippage_is_skipped_with_the_reason_and_the_old_side_closed():
    m, s = NettingMaster(), SlaveModel()
    m.deal("BUY", 1.00)
    settle(s, m)
    m.deal("SELL", 2.00)
    far = {"EURUSD.c": quote(1.1100)}  # the follower's market is 1000 points away from the flip price
    acts = s.plan(SAME, m.view(), specs=SPECS, quotes=far)
    assert [type(a).__name__ for a in acts] == ["Flip", "Close", "RecordSkip"]
    assert acts[2].reason.startswith("master flipped; new side not copied: slippage")


def test_stale_master_flip_drives_nothing():
    m, s = NettingMaster(), SlaveModel()
    m.deal("BUY", 1.00)
    settle(s, m)
    m.deal("SELL", 2.00)
    assert s.plan(SAME, m.view(fresh=False), specs=SPECS, quotes=QUOTES) == []
    n = SlaveModel(netting=True)
    m2 = NettingMaster()
    m2.deal("BUY", 1.00)
    settle(n, m2)
    m2.deal("SELL", 2.00)
    assert n.plan(SAME, m2.view(fresh=False), specs=SPECS, quotes=QUOTES) == []


def test_hedging_master_never_flips_an_opposite_deal_is_a_new_position():
    # a hedging master's SELL without position= is a second position: two links, no Flip
    s = SlaveModel()
    buy, sell = mpos(1, side="BUY", volume=1.0), mpos(2, side="SELL", volume=2.0, price=1.1)
    acts = settle(s, type("M", (), {"view": lambda self, fresh=True: {MASTER: view([buy, sell])}})())
    assert not [a for a in acts if isinstance(a, Flip)] and held(s) == [("BUY", 1.0), ("SELL", 2.0)]
