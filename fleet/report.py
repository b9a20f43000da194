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
        "reason": doc.get("supervisor_reason") or doc.get("reason") or doc.get("error") or None,
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
        row["paused"] = bool(info.get("paused") or flags.get(f"paused:{name}") or flags.get("kill_switch"))
        if info.get("bus_rejected") or info.get("bus_conflicts"):  # implausible pos messages refused (issue 15)
            row["bus_rejected"], row["bus_conflicts"] = info.get("bus_rejected"), info.get("bus_conflicts")
            row["bus_rejected_last"] = info.get("bus_rejected_last")
    return row


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
            ("yes" if r.get("paused") else "no") if slave else "",
            (r.get("reason") or _bus_note(r))[:120],
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
