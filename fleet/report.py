"""Text the operator reads: tables, the launcher banner, the status rows, the exit summary.

Pure formatting over plain dicts (documents from the store), so the same code serves
``cli.py`` and ``launcher.py`` and is tested without processes.
"""
from __future__ import annotations

import math
import re
import time
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from utils.table import format_table

COPIED_STATUSES = ("OPEN", "CLOSED")
SUPERVISOR_SHOWN = ("FATAL", "CONFIG_ERROR", "BACKOFF", "STOPPED", "STOPPING", "STARTING")
# A node document whose heartbeat is at most this old speaks for the running node now
# (a running node writes it every second; the launcher kills one silent for 10 s).
NODE_DOC_FRESH_MS = 10_000


def fmt_age(ms: float | None) -> str:
    """Milliseconds as a short age: 850ms, 12s, 5m, 3h, 2d."""
    if ms is None:
        return "-"
    s = ms / 1000.0
    if s < 1:
        return f"{int(ms)}ms"
    if s < 120:
        return f"{s:.0f}s"
    if s < 7200:
        return f"{s / 60:.0f}m"
    if s < 172800:
        return f"{s / 3600:.0f}h"
    return f"{s / 86400:.0f}d"


def fmt_bytes(n: float | None) -> str:
    if n is None:
        return "-"
    return f"{n / 1048576:.1f}MB"


def percentile(values: Sequence[float], q: float) -> float | None:
    """Nearest-rank percentile (q in 0..100); None for no data."""
    if not values:
        return None
    ordered = sorted(values)
    rank = max(1, math.ceil(q / 100.0 * len(ordered)))
    return float(ordered[min(rank, len(ordered)) - 1])


# ----------------------------------------------------------------------- status
def display_state(doc: Mapping[str, Any]) -> str:
    """What an operator needs to see first: the supervisor's verdict when it holds or
    restarts the node, else the node's own state (RUNNING, TERMINAL_ERROR ...)."""
    sup = doc.get("supervisor_state")
    if sup in SUPERVISOR_SHOWN or not doc.get("state"):
        return sup or doc.get("state") or "?"
    return str(doc.get("state"))


def node_reason(doc: Mapping[str, Any], *, now_ms: int) -> str | None:
    """The REASON of a node's row.

    Held or restarting (FATAL, CONFIG_ERROR, BACKOFF, STOPPED ...): the launcher's
    ``supervisor_reason``. RUNNING under the launcher: what the node says about itself
    now (its error, then its notes: the ``reason`` it writes with every heartbeat) or
    nothing, read from its own document while that is fresh, so a reason the launcher gave
    an earlier incarnation ("disabled; 10 open copies left unmanaged", "exited with code
    -9; restart in 1 s") never sticks to a node that runs again; the restart count and the
    last exit code have their own fields. A stale node document (a node blocked on the
    store) leaves the launcher's echo of the node's note."""
    if doc.get("supervisor_state") == "RUNNING":
        hb = doc.get("heartbeat_ms")
        if isinstance(hb, (int, float)) and 0 <= now_ms - hb <= NODE_DOC_FRESH_MS:
            return doc.get("reason") or doc.get("error") or None
    return doc.get("supervisor_reason") or doc.get("reason") or doc.get("error") or None


def pause_cell(row: Mapping[str, Any]) -> str:
    """PAUSED of a slave row: ``yes`` (the operator's pause or the kill switch), ``risk``
    (its guardian paused opens), ``locked`` (its guardian locked the account), both joined
    (``yes, locked``), else ``no``."""
    operator = row.get("paused_by_operator", row.get("paused"))  # a row made without the split
    parts = ["yes"] if operator else []
    if row.get("paused_by_risk"):
        parts.append(str(row["paused_by_risk"]))
    return ", ".join(parts) or "no"


def status_row(doc: Mapping[str, Any], *, now_ms: int, flags: Mapping[str, Any],
               lease: Mapping[str, Any] | None = None, standby: list[str] | None = None) -> dict[str, Any]:
    """One node's line of ``cli.py status`` as a dict (the JSON form).

    ``lease``: the account's lease document; its holder's host is where the account runs
    (with launchers on several hosts, the lease decides). ``standby``: hosts whose
    launcher keeps a standby process for it.
    """
    name = doc.get("name")
    kind = doc.get("role") or doc.get("kind") or "?"
    info = doc.get("info") if isinstance(doc.get("info"), Mapping) else {}
    hb = doc.get("heartbeat_ms")
    row: dict[str, Any] = {
        "name": name, "kind": kind, "state": display_state(doc),
        # once the launcher supervises a node, its pid is the launcher's (None when down)
        "pid": doc.get("proc_pid") if "supervisor_state" in doc else doc.get("pid"),
        "uptime_s": doc.get("uptime_s") if doc.get("proc_pid") else None,
        "restarts": doc.get("restarts"), "cpu_percent": doc.get("cpu_percent"), "rss_bytes": doc.get("rss_bytes"),
        "heartbeat_age_ms": (now_ms - hb) if isinstance(hb, (int, float)) else None,
        "last_exit_code": doc.get("last_exit_code"),
        "last_restart_reason": doc.get("last_restart_reason"), "last_restart_ms": doc.get("last_restart_ms"),
        "reason": node_reason(doc, now_ms=now_ms),
        "host": doc.get("launcher_host"),
    }
    if lease:
        live = int(lease.get("expires_ms", 0)) > now_ms
        holder = lease.get("holder") or {}
        row["host"] = holder.get("host") if live else row["host"]
        row["lease"] = {"holder": holder, "epoch": lease.get("epoch"), "live": live,
                        "since_ms": lease.get("since_ms"), "expires_ms": lease.get("expires_ms")}
    if standby:
        row["standby_hosts"] = sorted(standby)
    if kind in ("master", "slave") and "bus_wrong_version" in info:
        # messages of another bus schema version this node refused (an old/new node on the bus)
        row["bus_wrong_version"] = info.get("bus_wrong_version")
    if kind == "slave":
        row["links_open"] = info.get("links_open")
        row["last_copy_ms"] = info.get("last_copy_ms")
        # who stops new opens: the operator (pause, flatten, the kill switch) or the guardian
        # (info.risk: paused_by_risk at its PAUSE level, locked after a flatten, blocks_opens
        # also while it cannot see the account; info.paused_by "risk" from slaves that say so)
        operator = bool(info.get("paused") or flags.get(f"paused:{name}") or flags.get("kill_switch"))
        risk = info.get("risk") if isinstance(info.get("risk"), Mapping) else {}
        guardian = risk.get("paused_by_risk") or risk.get("blocks_opens") or info.get("paused_by") == "risk"
        by_risk = "locked" if risk.get("locked") else ("risk" if guardian else None)
        row["paused"] = operator or by_risk is not None
        row["paused_by_operator"], row["paused_by_risk"] = operator, by_risk
        if info.get("bus_rejected") or info.get("bus_conflicts"):  # implausible pos messages refused (issue 15)
            row["bus_rejected"], row["bus_conflicts"] = info.get("bus_rejected"), info.get("bus_conflicts")
            row["bus_rejected_last"] = info.get("bus_rejected_last")
    return row


def _finite(v: Any) -> float | None:
    return float(v) if isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v) else None


def risk_cause(risk: Mapping[str, Any], account: Mapping[str, Any] | None) -> str:
    """Why an account's guardian is at its level, in words, from its ``info.risk`` and its
    account document (the thresholds it does not publish): the lock's reason, each loss
    limit past its warn level, the margin level against ``min_margin_level`` or the
    ``margin_warn_level`` watch (150 % unless set: ``margin level 127.1% < 150%``),
    exposure breaches. Empty when nothing is past a threshold."""
    from copier.accounts import is_master_doc
    from copier.risk.config import RiskConfigError, resolve_risk_config

    parts: list[str] = []
    if risk.get("locked"):
        parts.append(f"locked: {risk.get('lock_reason') or 'reason not said'}")
    for prefix, label in (("daily", "daily loss"), ("overall", "max loss")):
        level, used = risk.get(f"{prefix}_level"), _finite(risk.get(f"{prefix}_used_pct"))
        if level in ("WARN", "PAUSE", "FLATTEN") and used is not None:
            parts.append(f"{label} at {used:.1f}% of its limit ({level})")
    # margin_level is the measured value (equity / margin x 100); a level name there says nothing
    value = _finite(risk.get("margin_level"))
    if value is not None:
        try:
            cfg = resolve_risk_config((account or {}).get("risk"), is_master=is_master_doc(account or {}))
        except (RiskConfigError, TypeError, ValueError):
            cfg = None
        used = _finite(risk.get("margin_used_pct"))
        if cfg is not None and cfg.min_margin_level is not None:
            if used is not None and used >= cfg.warn_at * 100.0:
                parts.append(f"margin level {value:.1f}% (min_margin_level {cfg.min_margin_level:g}%)")
        elif cfg is not None and cfg.margin_warn_level is not None:
            if value < cfg.margin_warn_level:
                parts.append(f"margin level {value:.1f}% < {cfg.margin_warn_level:g}% (margin_warn_level: an alert, "
                             "no action)")
        elif cfg is None and risk.get("level") not in (None, "OK"):
            parts.append(f"margin level {value:.1f}%")
    for breach in risk.get("exposure_breaches") or ():
        parts.append(str(breach))
    return "; ".join(parts)


def status_table(rows: list[dict[str, Any]], *, now_ms: int) -> str:
    headers = ["NAME", "KIND", "HOST", "STATE", "PID", "UPTIME", "RESTARTS", "CPU", "RSS", "HEARTBEAT",
               "LINKS", "LAST COPY", "PAUSED", "REASON"]
    out = []
    for r in rows:
        slave = r["kind"] == "slave"
        last_copy = r.get("last_copy_ms")
        host = r.get("host") or "-"
        if r.get("standby_hosts"):
            host += f" (standby: {', '.join(r['standby_hosts'])})"
        out.append([
            r["name"], r["kind"], host, r["state"], r["pid"] or "-",
            fmt_age(max(1000, r["uptime_s"] * 1000)) if isinstance(r.get("uptime_s"), (int, float)) else "-",
            r["restarts"] if r["restarts"] is not None else "-",
            f"{r['cpu_percent']:.1f}%" if isinstance(r.get("cpu_percent"), (int, float)) else "-",
            fmt_bytes(r.get("rss_bytes")),
            fmt_age(r["heartbeat_age_ms"]) if r.get("heartbeat_age_ms") is not None else "-",
            (r.get("links_open") if r.get("links_open") is not None else "-") if slave else "",
            ((fmt_age(now_ms - last_copy) + " ago") if isinstance(last_copy, (int, float)) else "-") if slave else "",
            pause_cell(r) if slave else "",
            r.get("reason") or _bus_note(r),  # the last column: never cut
        ])
    return format_table(headers, out)


def _bus_note(row: Mapping[str, Any]) -> str:
    n = row.get("bus_wrong_version")
    if isinstance(n, int) and n > 0:
        return f"refused {n} bus message(s) of another schema version"
    k = row.get("bus_rejected")
    if isinstance(k, int) and k > 0:
        return f"refused {k} implausible position message(s); last: {row.get('bus_rejected_last') or '?'}"
    return ""


# ----------------------------------------------------------------------- sizing
RISK_PERCENT_HEAD = "risk_percent: depends on the master's SL"


def sizing_presented(rows: Sequence[Mapping[str, Any]], sizing: Any) -> list[dict[str, Any]]:
    """``cli.py sizing`` rows (``nodes.sizing_report.sizing_rows``) as the operator must
    read them. In ``risk_percent`` the lots come from the master trade's SL distance
    (``percent`` of the follower's equity at risk), not from its volume: the lots sized
    without an SL are the ``fallback_lot``, never the sized lot. So each sized row gets
    ``volume`` None, ``sl_dependent`` True, ``fallback_volume`` (the fallback after the
    symbol's step and limits, None when it cannot be traded) and a note saying so:
    ``risk_percent: depends on the master's SL; without an SL: fallback_lot 0.05``, or
    that a master trade WITHOUT an SL would be skipped (no ``fallback_lot``, or one the
    symbol refuses: below its minimum). Rows not sized (unmapped symbol, no spec) and
    every other mode are returned unchanged."""
    if getattr(sizing, "mode", None) != "risk_percent":
        return [dict(r) for r in rows]
    fallback = getattr(sizing, "fallback_lot", None)
    out = []
    for src in rows:
        r = dict(src)
        out.append(r)
        if not r.get("follower_symbol") or r.get("follower_contract_size") is None:
            continue  # never reached sizing: its note says why
        vol, note = r.get("volume"), r.get("note") or ""
        r["volume"], r["fallback_volume"], r["sl_dependent"] = None, vol, True
        if not fallback:
            r["note"] = f"{RISK_PERCENT_HEAD}; no fallback_lot: a master trade WITHOUT an SL would be skipped"
        elif vol is None:
            r["note"] = (f"{RISK_PERCENT_HEAD}; a master trade WITHOUT an SL would be skipped: fallback_lot "
                         f"{fallback:g}: {note or 'not tradable on this symbol'}")
        else:
            shown = f"fallback_lot {fallback:g}" + (f" ({vol:g} lots after the symbol's step and limits)"
                                                    if abs(float(vol) - float(fallback)) > 1e-9 else "")
            r["note"] = f"{RISK_PERCENT_HEAD}; without an SL: {shown}"
    return out


# ----------------------------------------------------------------------- summary
def _reason(trade: Mapping[str, Any]) -> str:
    text = trade.get("skip_reason") or trade.get("reason") or trade.get("error") or "unspecified"
    return str(text)[:100]


def slave_summary(trades: Iterable[Mapping[str, Any]]) -> dict[str, Any]:
    """Copies made, skips by reason, failures and p50/p99 copy latency for one slave."""
    trades = list(trades)
    copied = [t for t in trades if t.get("status") in COPIED_STATUSES]
    latencies = [float(t["latency_ms"]) for t in copied if isinstance(t.get("latency_ms"), (int, float))]
    skipped = Counter(_reason(t) for t in trades if t.get("status") == "SKIPPED")
    failed = Counter(_reason(t) for t in trades if t.get("status") == "FAILED")
    return {
        "copies": len(copied),
        "open": sum(1 for t in copied if t.get("status") == "OPEN"),
        "closed": sum(1 for t in copied if t.get("status") == "CLOSED"),
        "pending": sum(1 for t in trades if t.get("status") == "PENDING"),
        "skipped": sum(skipped.values()), "skip_reasons": dict(skipped.most_common()),
        "failed": sum(failed.values()), "fail_reasons": dict(failed.most_common()),
        "latency_p50_ms": percentile(latencies, 50), "latency_p99_ms": percentile(latencies, 99),
    }


def summary_text(summaries: Mapping[str, Mapping[str, Any]]) -> str:
    if not summaries:
        return "no slaves ran: nothing to summarise"

    def ms(v: float | None) -> str:
        return "-" if v is None else f"{v:.1f}"

    rows = [[name, s["copies"], s["open"], s["closed"], s["skipped"], s["failed"],
             ms(s["latency_p50_ms"]), ms(s["latency_p99_ms"])] for name, s in summaries.items()]
    text = [format_table(["SLAVE", "COPIES", "OPEN", "CLOSED", "SKIPPED", "FAILED", "P50 ms", "P99 ms"], rows)]
    for name, s in summaries.items():
        for label, reasons in (("skipped", s["skip_reasons"]), ("failed", s["fail_reasons"])):
            for reason, count, alike in grouped_reasons(reasons):
                more = f" (and {alike} more like it, other numbers)" if alike else ""
                text.append(f"  {name} {label} x{count}: {reason}{more}")
    return "\n".join(text)


_NUMBER = re.compile(r"\d+(?:\.\d+)?")


def grouped_reasons(reasons: Mapping[str, int]) -> list[tuple[str, int, int]]:
    """Reasons that differ only in their numbers (slippage points, prices, volumes) as one
    line: ``(first reason, total count, how many other distinct reasons it stands for)``,
    the most frequent first."""
    groups: dict[str, list[Any]] = {}
    for reason, count in reasons.items():
        group = groups.setdefault(_NUMBER.sub("#", reason), [reason, 0, -1])
        group[1] += count
        group[2] += 1
    return sorted(((r, c, a) for r, c, a in groups.values()), key=lambda g: -g[1])


# ----------------------------------------------------------------------- banner
def banner(*, host: str, db_label: str, log_dir: str, nodes: Sequence[tuple[str, str, Any]], cli_hint: str,
           demo: bool, duration_s: float | None, bus: str, dashboard: str | None = None,
           sim_line: str | None = None) -> str:
    """What is running, where the logs are, how to watch and how to stop. ``sim_line``: the
    demo's simulator and the command that trades on its master (fleet.demo.demo_sim_line)."""
    lines = ["", "copyhub fleet" + (" (demo, simulated brokers)" if demo else "") + f" on {host}",
             f"  store : {db_label}", f"  bus   : {bus}", *([sim_line] if sim_line else []), f"  logs  : {log_dir}",
             "  nodes :"]
    for name, kind, pid in nodes:
        lines.append(f"    {name:<22} {kind:<8} pid {pid}")
    if dashboard:
        lines.append(f"  page  : {dashboard}  (dashboard, JSON API under /api/v1, /metrics)")
    lines.append(f"  watch : {cli_hint}")
    lines.append(f"          logs of each node: {log_dir}/master-<NAME>.log, slave-<NAME>.log;")
    lines.append(f"          its stdout/stderr: {log_dir}/<NAME>.out; launcher: {log_dir}/launcher.log")
    stop = "Ctrl+C (Ctrl+Break on Windows)"
    if duration_s:
        stop = f"stops by itself after {duration_s:g} s, or {stop}"
    lines.append(f"  stop  : {stop}")
    lines.append(time.strftime("  started %Y-%m-%d %H:%M:%S"))
    return "\n".join(lines) + "\n"
