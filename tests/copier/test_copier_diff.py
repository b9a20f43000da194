from dataclasses import replace

from copier.diff import ChangeKind as K
from copier.diff import diff_state
from copier.models import PendingOrder, Position

P = Position(ticket=1, identifier=1, symbol="EURUSD", side="BUY", volume=1.0, price_open=1.1, sl=1.09, tp=1.12)
O = PendingOrder(ticket=7, symbol="EURUSD", type="BUY_LIMIT", volume=1.0, price_open=1.09)


def kinds(changes):
    return [(c.kind, c.key) for c in changes]


def test_nothing_changed():
    assert diff_state({1: P}, {1: replace(P, price_current=1.2, profit=5)}, {7: O}, {7: O}) == []


def test_open_and_close():
    assert kinds(diff_state({}, {1: P}, {}, {})) == [(K.OPENED, 1)]
    ch = diff_state({1: P}, {}, {}, {})
    assert kinds(ch) == [(K.CLOSED, 1)] and ch[0].old is P and ch[0].new is None


def test_volume_changes_with_float_tolerance():
    assert kinds(diff_state({1: P}, {1: replace(P, volume=0.5)}, {}, {})) == [(K.VOLUME_REDUCED, 1)]
    assert kinds(diff_state({1: P}, {1: replace(P, volume=1.5)}, {}, {})) == [(K.VOLUME_INCREASED, 1)]
    assert diff_state({1: replace(P, volume=0.3)}, {1: replace(P, volume=0.1 + 0.2)}, {}, {}) == []


def test_sltp_change_reported_alongside_volume_change():
    ch = diff_state({1: P}, {1: replace(P, volume=0.4, sl=1.095)}, {}, {})
    assert kinds(ch) == [(K.VOLUME_REDUCED, 1), (K.SLTP_MODIFIED, 1)]
    assert kinds(diff_state({1: P}, {1: replace(P, tp=0.0)}, {}, {})) == [(K.SLTP_MODIFIED, 1)]


def test_netting_reversal_is_one_reversed_change():
    new = replace(P, ticket=99, side="SELL", volume=0.5)
    ch = diff_state({1: P}, {1: new}, {}, {})
    assert kinds(ch) == [(K.REVERSED, 1)] and ch[0].old is P and ch[0].new is new


def test_pending_orders():
    assert kinds(diff_state({}, {}, {}, {7: O})) == [(K.PENDING_PLACED, 7)]
    assert kinds(diff_state({}, {}, {7: O}, {7: replace(O, price_open=1.08)})) == [(K.PENDING_MODIFIED, 7)]
    assert kinds(diff_state({}, {}, {7: O}, {7: replace(O, sl=1.0)})) == [(K.PENDING_MODIFIED, 7)]
    assert kinds(diff_state({}, {}, {7: O}, {})) == [(K.PENDING_REMOVED, 7)]


def test_fill_shows_as_removed_order_and_opened_position_with_same_key():
    filled = replace(P, ticket=7, identifier=7)
    assert kinds(diff_state({}, {7: filled}, {7: O}, {})) == [(K.OPENED, 7), (K.PENDING_REMOVED, 7)]


def test_order_is_stable_and_kind_prints_as_value():
    ch = diff_state({3: replace(P, identifier=3), 1: P}, {2: replace(P, identifier=2)}, {}, {})
    assert kinds(ch) == [(K.CLOSED, 1), (K.OPENED, 2), (K.CLOSED, 3)]
    assert str(K.OPENED) == "OPENED" and K.OPENED == "OPENED"
