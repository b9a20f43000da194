"""Headroom at a glance: per account, how much of each loss limit is used and left, where
the reference came from, and the lock. Read from the nodes' store documents
(``info.risk``, the guardian's ``status_info``), so ``cli.py status`` needs no terminal."""
from __future__ import annotations

from collections.abc import Iterable, Mapping
from datetime import datetime, timezone
from typing import Any

from utils.table import format_table

SOURCES = {"snapshot": "snapshot", "rebuilt": "rebuilt", "assumed_strictest": "assumed strictest",
           "estimated": "estimated", None: "-"}


def risk_row(doc: Mapping[str, Any]) -> dict[str, Any] | None:
    """One account's headroom (JSON form), or None when its node publishes no risk info."""
    info = doc.get("info") if isinstance(doc.get("info"), Mapping) else {}
    risk = info.get("risk") if isinstance(info, Mapping) else None
    if not isinstance(risk, Mapping) or not risk:
        return None
    row: dict[str, Any] = {"account": doc.get("name"), "profile": risk.get("profile"), "level": risk.get("level"),
                           "locked": bool(risk.get("locked")), "lock_until_utc_ms": risk.get("lock_until_utc_ms"),
                           "lock_reason": risk.get("lock_reason"), "paused_by_risk": bool(risk.get("paused_by_risk")),
                           "reference_source": risk.get("reference_source"),
                           "reference_estimated": bool(risk.get("reference_estimated")),
                           "equity": risk.get("equity"), "day": risk.get("day"),
                           # part of each used_money: the estimated exit commission on what is open
                           "closing_cost": risk.get("closing_cost")}
    for prefix in ("daily", "overall"):
        if risk.get(f"{prefix}_limit") is None:
            continue
        used = risk.get(f"{prefix}_used_money")
        used_pct = risk.get(f"{prefix}_used_pct")
        row[prefix] = {
            "used_money": used, "used_pct": used_pct, "left_money": risk.get(f"{prefix}_headroom"),
            "left_pct": None if used_pct is None else round(max(0.0, 100.0 - used_pct), 2),
            "limit_money": risk.get(f"{prefix}_limit"), "reference": risk.get(f"{prefix}_reference"),
            "floor_equity": risk.get(f"{prefix}_floor_equity"),
        }
    if risk.get("peak_source"):
        row["peak_source"] = risk.get("peak_source")
    if risk.get("margin_level") is not None:
        row["margin_level"] = risk.get("margin_level")
    if risk.get("exposure_breaches"):
        row["exposure_breaches"] = list(risk["exposure_breaches"])
    return row


def risk_rows(docs: Iterable[Mapping[str, Any]]) -> list[dict[str, Any]]:
    return [r for r in (risk_row(d) for d in docs) if r is not None]


def _money(v: Any) -> str:
    return f"{v:,.2f}" if isinstance(v, (int, float)) else "-"


def _pair(rule: Mapping[str, Any] | None, money_key: str, pct_key: str, note: str = "") -> str:
    """``money (pct%)``; ``note`` goes inside the parentheses (the closing cost a used figure includes)."""
    if not rule:
        return "-"
    pct = rule.get(pct_key)
    if isinstance(pct, (int, float)):
        return f"{_money(rule.get(money_key))} ({pct:.1f}%{note})"
    return _money(rule.get(money_key)) + (f" ({note[2:]})" if note else "")


def _until(ms: Any) -> str:
    if not isinstance(ms, (int, float)):
        return "until released"
    return "until " + datetime.fromtimestamp(ms / 1000, tz=timezone.utc).strftime("%Y-%m-%d %H:%M UTC")


def risk_table(rows: list[dict[str, Any]]) -> str:
    """The table under ``cli.py status``: used and left per limit, reference, lock and why
    (a row's ``cause``, ``fleet.report.risk_cause``; ``-`` without one). A used figure that
    includes an estimated closing cost says so: ``503.86 (100.8%, 9.30 to close)``."""
    out = []
    for r in rows:
        daily, overall = r.get("daily"), r.get("overall")
        ref = "-"
        if daily:
            src = SOURCES.get(r.get("reference_source"), str(r.get("reference_source")))
            ref = f"{_money(daily.get('reference'))} ({src})"
        lock = ("LOCKED " + _until(r.get("lock_until_utc_ms"))) if r.get("locked") else (
            "paused" if r.get("paused_by_risk") else "no")
        cost = r.get("closing_cost")
        note = f", {_money(cost)} to close" if isinstance(cost, (int, float)) and cost > 0 else ""
        out.append([r["account"], r.get("level") or "-", _pair(daily, "used_money", "used_pct", note),
                    _pair(daily, "left_money", "left_pct"), _pair(overall, "used_money", "used_pct", note),
                    _pair(overall, "left_money", "left_pct"), ref, lock, r.get("cause") or "-"])
    return format_table(["ACCOUNT", "RISK", "DAILY USED", "DAILY LEFT", "MAX LOSS USED", "MAX LOSS LEFT",
                         "DAILY REFERENCE (SOURCE)", "LOCK", "WHY"], out)
