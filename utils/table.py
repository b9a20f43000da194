"""Aligned text tables for the operator's terminal: one formatter for ``cli.py``,
``python -m sim`` and the reports.

Plain ASCII (a cp1252 Windows console prints it), two spaces between columns, a dashed
rule under the header, no trailing spaces.
"""
from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

# Unit suffixes a number may carry and still be a number for alignment: 12%, 3s, 40MB, 5m, 2h.
NUMBER_SUFFIXES = "%sMBKmh"


def is_numeric_cell(text: str) -> bool:
    """True for a cell that reads as a number: ``1.5``, ``-3``, ``12%``, ``850ms``, ``40MB``,
    and the empty cells ``""`` and ``"-"`` (they do not stop a column being numeric)."""
    if text in ("", "-"):
        return True
    try:
        float(text.rstrip(NUMBER_SUFFIXES))
        return True
    except ValueError:
        return False


def format_table(headers: Sequence[str], rows: Iterable[Sequence[Any]], *,
                 align: Sequence[str] | None = None) -> str:
    """``headers`` and ``rows`` (one sequence of cells per row, ``None`` shown empty) as
    aligned text: a header line, a rule of dashes, one line per row.

    ``align``: one of ``"l"``/``"r"`` per column; by default a column whose every cell is
    numeric (``is_numeric_cell``) is right-aligned, any other left-aligned (a table with
    no rows: all left). Rows longer than ``headers`` are cut to its width; shorter rows
    end early. Raises ValueError when ``align`` does not give one letter per column.
    """
    body = [["" if c is None else str(c) for c in r] for r in rows]
    widths = [len(h) for h in headers]
    for r in body:
        widths = [max(w, len(c)) for w, c in zip(widths, r)]
    if align is None:
        right = [bool(body) and all(is_numeric_cell(r[i]) for r in body if i < len(r)) for i in range(len(headers))]
    else:
        if len(align) != len(headers) or any(a not in ("l", "r") for a in align):
            raise ValueError(f"align needs one of 'l'/'r' per column ({len(headers)}), got {list(align)!r}")
        right = [a == "r" for a in align]

    def line(cells: Sequence[str]) -> str:
        return "  ".join(c.rjust(w) if r else c.ljust(w) for c, w, r in zip(cells, widths, right)).rstrip()

    return "\n".join([line(list(headers)), line(["-" * w for w in widths]), *(line(r) for r in body)])
