"""Daily reports as the guardian stored them, for ``cli.py report`` (no terminal needed).

Each node's guardian upserts ``report:<account>:<YYYY-MM-DD>`` in the store's flags
(refreshed every minute, final at the day roll). This module reads them back, filters
by account and day, and renders a table, CSV or JSON. Also the operator's lock
release request, which the CLI writes and the guardian applies within one evaluation.

    python -m monitoring.reports [--db URL] [--account NAME] [--date YYYY-MM-DD] [--format table|csv|json]
"""
from __future__ import annotations

import argparse
import json
import sys
import time
import uuid
from collections.abc import Iterable, Sequence
from datetime import date
from typing import Any

from copier.report import COLUMNS, DailyReport, to_csv, to_json
from utils.table import format_table

from .daily import REPORT_PREFIX, report_request_key
from .risk_store import LOCK_PREFIX, STATE_PREFIX, release_key

FORMATS = ("table", "csv", "json")
TABLE_COLUMNS = [
    ("account", "account"), ("day", "day"), ("starting_balance", "start bal"), ("ending_balance", "end bal"),
    ("ending_equity", "end eq"), ("realised_pl", "realised"), ("balance_ops", "deposits"), ("floating_pl", "floating"),
    ("trades", "trades"),
    ("win_rate", "win %"), ("profit_factor", "PF"), ("max_drawdown_money", "max DD"),
    ("daily_headroom_min", "daily room min"), ("overall_headroom_min", "overall room min"),
    ("worst_level", "worst"), ("final", "final"),
]


def load_reports(store: Any, *, account: str | None = None, day: str | date | None = None,
                 since: str | date | None = None) -> list[dict[str, Any]]:
    """Stored reports sorted by (account, day). ``day`` exact, ``since`` inclusive."""
    day_s = day.isoformat() if isinstance(day, date) else day
    since_s = since.isoformat() if isinstance(since, date) else since
    if day_s is not None:
        _check_day(day_s)
    if since_s is not None:
        _check_day(since_s)
    prefix = REPORT_PREFIX + (f"{account}:" if account else "")
    out = []
    for key, doc in store.list_flags(prefix).items():
        if not isinstance(doc, dict):
            continue
        name, _, d = key[len(REPORT_PREFIX):].rpartition(":")
        if account is not None and name != account:
            continue  # prefix "A:" must not match account "A:B"-style names partially
        if day_s is not None and d != day_s:
            continue
        if since_s is not None and d < since_s:
            continue
        out.append({**doc, "account": name, "day": d})
    return sorted(out, key=lambda r: (r["account"], r["day"]))


def _check_day(s: str) -> None:
    try:
        date.fromisoformat(s)
    except ValueError:
        raise ValueError(f"date must be YYYY-MM-DD, got {s!r}") from None


def as_reports(docs: Iterable[dict[str, Any]]) -> list[DailyReport]:
    """Stored dicts as ``DailyReport`` values (extra keys such as ``account`` dropped)."""
    return [DailyReport(**{k: d.get(k) for k in COLUMNS}) for d in docs]


def _cell(v: Any, key: str) -> str:
    if v is None:
        return "-"
    if key == "win_rate":
        return f"{v * 100:.0f}"
    if isinstance(v, bool):
        return "yes" if v else "no"
    if isinstance(v, float):
        return f"{v:,.2f}"
    return str(v)


def render_table(docs: Sequence[dict[str, Any]]) -> str:
    if not docs:
        return "no reports"
    return format_table([h for _k, h in TABLE_COLUMNS], [[_cell(d.get(k), k) for k, _h in TABLE_COLUMNS] for d in docs],
                        align=["l", "l"] + ["r"] * (len(TABLE_COLUMNS) - 2))


def render(docs: Sequence[dict[str, Any]], fmt: str = "table") -> str:
    """``table`` for people; ``csv``/``json`` with every report column plus ``account``."""
    if fmt == "table":
        return render_table(docs)
    if fmt == "csv":
        body = to_csv(as_reports(docs)).splitlines()
        return "\n".join(["account," + body[0]] + [f"{d['account']},{line}" for d, line in zip(docs, body[1:])]) + "\n"
    if fmt == "json":
        return json.dumps([{"account": d["account"], **json.loads(to_json([r]))[0]}
                           for d, r in zip(docs, as_reports(docs))], indent=2)
    raise ValueError(f"format must be one of {', '.join(FORMATS)}, got {fmt!r}")


def request_release(store: Any, account: str, *, by: str = "operator") -> dict[str, Any]:
    """Ask the account's guardian to release its risk lock (applied at its next evaluation).

    The rules still apply after a release: an account still past its flatten level is
    flattened and locked again at once."""
    req = {"by": by, "requested_ms": time.time_ns() // 1_000_000}
    store.set_flag(release_key(account), req)
    return req


def live_days(store: Any, account: str | None = None) -> dict[str, str]:
    """{account: its trading day now} for every running node whose guardian publishes one
    (``info.risk.day`` in the nodes' documents)."""
    out = {}
    for doc in store.list_nodes():
        info = doc.get("info") if isinstance(doc.get("info"), dict) else {}
        risk = info.get("risk") if isinstance(info, dict) else None
        name = doc.get("name")
        if account is not None and name != account:
            continue
        if doc.get("state") == "RUNNING" and isinstance(risk, dict) and risk.get("day"):
            out[str(name)] = str(risk["day"])
    return out


def request_live_reports(store: Any, days: dict[str, str], *, timeout_s: float = 5.0,
                         poll_s: float = 0.1) -> dict[str, bool]:
    """Ask each running guardian for today's report computed now (``report_request:<name>``)
    and wait until each has written it (the doc echoes the request id). {account: answered}.
    A node that does not answer in time keeps its stored report (refreshed every 5 minutes)."""
    ids = {}
    for name in days:
        rid = uuid.uuid4().hex
        store.set_flag(report_request_key(name), {"id": rid, "requested_ms": time.time_ns() // 1_000_000})
        ids[name] = rid
    done = {name: False for name in days}
    deadline = time.monotonic() + timeout_s
    while True:
        for name, day in days.items():
            if not done[name]:
                doc = store.get_flag(f"{REPORT_PREFIX}{name}:{day}")
                done[name] = isinstance(doc, dict) and doc.get("request_id") == ids[name]
        if all(done.values()) or time.monotonic() >= deadline:
            break
        time.sleep(poll_s)
    for name, ok in done.items():
        if not ok:  # a late answer would only refresh the stored one; do not leave the request behind
            try:
                store.delete_flag(report_request_key(name))
            except Exception:
                pass
    return done


def risk_overview(store: Any, account: str) -> dict[str, Any]:
    """What the store knows about an account's risk: persisted tracker state and lock."""
    return {"state": store.get_flag(STATE_PREFIX + account), "lock": store.get_flag(LOCK_PREFIX + account)}


def main(argv: Sequence[str] | None = None) -> int:
    from db import open_store

    p = argparse.ArgumentParser(prog="python -m monitoring.reports", description="daily account reports")
    p.add_argument("--db", default=None, help="store URL (default: COPYHUB_DATABASE_URL / settings)")
    p.add_argument("--account")
    p.add_argument("--date", help="YYYY-MM-DD (broker trading day)")
    p.add_argument("--since", help="YYYY-MM-DD, inclusive")
    p.add_argument("--format", choices=FORMATS, default="table")
    args = p.parse_args(argv)
    if args.db is None:
        from config import settings

        args.db = settings.database_url
    from db.urls import missing_store

    missing = missing_store(args.db)
    if missing:
        print(f"error: no store at {missing}; nothing to report (give --db, or set the settings)", file=sys.stderr)
        return 2
    store = open_store(args.db)
    try:
        docs = load_reports(store, account=args.account, day=args.date, since=args.since)
    except ValueError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    finally:
        store.close()
    print(render(docs, args.format), end="" if args.format == "csv" else "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
