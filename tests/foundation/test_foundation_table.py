"""utils/table.py: the one text-table formatter (cli.py, python -m sim, reports)."""
from __future__ import annotations

import pytest

from utils.table import format_table, is_numeric_cell


def test_numbers_right_text_left_rule_under_header():
    text = format_table(["a", "num"], [["x", 1.5], ["long", 10]])
    assert text.splitlines() == ["a     num", "----  ---", "x     1.5", "long   10"]


def test_units_and_blanks_keep_a_column_numeric():
    assert all(is_numeric_cell(c) for c in ("12%", "850ms", "40MB", "3s", "-", "", "-0.5", "2h"))
    assert not any(is_numeric_cell(c) for c in ("EURUSD", "BUY", "h", "1.2.3"))
    text = format_table(["NODE", "CPU"], [["S1", "12%"], ["S2", None], ["MASTER", "-"]])
    assert text.splitlines()[2:] == ["S1      12%", "S2", "MASTER    -"]


def test_no_trailing_spaces_and_empty_table_is_header_and_rule():
    text = format_table(["A", "B"], [["x", ""]])
    assert all(line == line.rstrip() for line in text.splitlines())
    assert format_table(["A", "LONG"], []) == "A  LONG\n-  ----"


def test_explicit_alignment_overrides_and_is_checked():
    text = format_table(["k", "v"], [["1", "2"], ["10", "20"]], align=["l", "l"])
    assert text.splitlines()[2:] == ["1   2", "10  20"]
    with pytest.raises(ValueError, match="one of 'l'/'r' per column"):
        format_table(["k", "v"], [], align=["l"])
    with pytest.raises(ValueError):
        format_table(["k"], [], align=["center"])
