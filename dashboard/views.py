"""What the dashboard and the API show, computed from plain store documents and bus state.

Pure functions over dicts (no I/O), so the page, the JSON API and the tests share one
definition of every figure. Units: times in UTC epoch ms, ages in seconds, volumes in
lots, notional in the symbol's quote currency (lots x contract size x price), slippage
in points, latency in ms.
"""
from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from copier.held import recorded_held
from fleet.report import NODE_DOC_FRESH_MS, node_reason

LIVE_STATUSES = ("PENDING", "OPEN")
FINAL_BAD = ("SKIPPED", "FAILED")
LINK_FILTERS = ("slave", "master", "status", "symbol")


def _num(x: Any) -> float | None:
    return float(x) if isinstance(x, (int, float)) and not isinstance(x, bool) else None


def node_rows(docs: Iterable[Mapping[str, Any]], live: Mapping[str, Mapping[str, Any]], now_ms: int) -> list[dict[str, Any]]:
    """One row per node: state, pid, uptime (s), restarts, CPU (%), RSS (bytes), heartbeat
    age (s), the last exit code and restart reason, and the reason: the launcher's for a
    node it holds or restarts, what the node says about itself now for one that runs
    (``running_reason``). ``live``: the newest bus status per node (``{state, pid, ts_ms,
    error, info}``), fresher than the store's copy."""
    rows = []
    seen = set()
    for d in docs:
        name = d.get("name")
        if not name or d.get("kind") == "launcher":
            continue
        seen.add(name)
        st = live.get(name, {})
        hb = max([v for v in (_num(d.get("heartbeat_ms")), _num(st.get("ts_ms"))) if v is not None], default=None)
        sup = d.get("supervisor_state")
        node_state = st.get("state") or d.get("state")
        state = sup if sup and sup != "RUNNING" else (node_state or sup or "UNKNOWN")
        if sup == "RUNNING" and node_state in ("STARTING", "RUNNING", None):
            state = "RUNNING"
        if sup == "RUNNING":
            reason = running_reason(d, st, now_ms)
        else:
            reason = d.get("supervisor_reason") or st.get("error") or d.get("error") or d.get("reason")
        rows.append({
            "name": name, "kind": d.get("kind") or d.get("role") or st.get("role"), "state": state,
            "pid": d.get("proc_pid") or st.get("pid") or d.get("pid"), "uptime_s": _num(d.get("uptime_s")),
            "restarts": int(d.get("restarts") or 0), "cpu_percent": _num(d.get("cpu_percent")),
            "rss_bytes": _num(d.get("rss_bytes")),
            "heartbeat_age_s": round((now_ms - hb) / 1000.0, 1) if hb is not None else None,
            "reason": reason or None,
            "last_exit_code": d.get("last_exit_code"), "last_restart_reason": d.get("last_restart_reason"),
            "host": d.get("launcher_host"),
        })
    for name, st in live.items():  # on the bus but not (yet) in the store
        if name not in seen and name != "launcher":
            ts = _num(st.get("ts_ms"))
            rows.append({"name": name, "kind": st.get("role"), "state": st.get("state") or "UNKNOWN", "pid": st.get("pid"),
                         "uptime_s": None, "restarts": 0, "cpu_percent": None, "rss_bytes": None,
                         "heartbeat_age_s": round((now_ms - ts) / 1000.0, 1) if ts is not None else None,
                         "reason": st.get("error"), "host": None})
    return sorted(rows, key=lambda r: r["name"])


def running_reason(doc: Mapping[str, Any], live: Mapping[str, Any], now_ms: int) -> str | None:
    """The reason of a node the launcher has RUNNING: what the node says about itself now
    (its bus status while fresh: ``info.note``, its error then its notes; else its own
    store document: ``fleet.report.node_reason``), or nothing: never a reason the launcher
    gave an earlier incarnation (``disabled; N open copies left unmanaged``, ``exited with
    code -9; restart in 1 s``)."""
    ts = _num(live.get("ts_ms"))
    if ts is not None and 0 <= now_ms - ts <= NODE_DOC_FRESH_MS:
        info = live.get("info") if isinstance(live.get("info"), Mapping) else {}
        note = info.get("note")
        return (note if isinstance(note, str) and note else None) or live.get("error") or None
    return node_reason(doc, now_ms=now_ms)


def risk_view(info: Mapping[str, Any] | None) -> dict[str, Any] | None:
    """The guardian's gauges (monitoring/guardian.py status_info): used fraction against
    each limit, level, lock and until when."""
    if not info:
        return None
    out: dict[str, Any] = {"level": info.get("level"), "locked": bool(info.get("locked")),
                           "paused_by_risk": bool(info.get("paused_by_risk")), "profile": info.get("profile"),
                           "lock_reason": info.get("lock_reason"), "lock_until_ms": info.get("lock_until_utc_ms"),
                           "day": info.get("day"), "limits": {}}
    for prefix in ("daily", "overall", "margin"):
        used = _num(info.get(f"{prefix}_used_pct"))
        if used is None:
            continue
        out["limits"][prefix] = {"used_ratio": round(used / 100.0, 4), "level": info.get(f"{prefix}_level"),
                                 "limit_money": _num(info.get(f"{prefix}_limit")),
                                 "headroom_money": _num(info.get(f"{prefix}_headroom"))}
    return out


def account_rows(accounts: Iterable[Mapping[str, Any]], nodes: Mapping[str, Mapping[str, Any]],
                 live: Mapping[str, Mapping[str, Any]], flags: Mapping[str, Any],
                 leases: Mapping[str, Mapping[str, Any]], open_counts: Mapping[str, int]) -> list[dict[str, Any]]:
    """One row per account: money (balance, equity, floating P/L, margin level %), pause,
    lease holder, open copies and the guardian's gauges."""
    kill = bool(flags.get("kill_switch"))
    rows = []
    for a in accounts:
        name = a.get("name")
        node = nodes.get(name, {})
        st = live.get(name, {})
        metrics = st.get("account") or node.get("account") or {}
        info = st.get("info") or node.get("info") or {}
        equity, margin = _num(metrics.get("equity")), _num(metrics.get("margin"))
        lease = leases.get(name) or {}
        rows.append({
            "name": name, "type": str(a.get("type", "")).upper(), "enabled": a.get("enabled", True) is not False,
            "balance": _num(metrics.get("balance")), "equity": equity, "profit": _num(metrics.get("profit")),
            "margin_level": round(equity / margin * 100.0, 1) if equity is not None and margin else None,
            "currency": metrics.get("currency"), "login": metrics.get("login"),
            "paused": bool(flags.get(f"paused:{name}")) or bool(info.get("paused")), "kill_switch": kill,
            "flatten_pending": f"flatten:{name}" in flags, "lease_holder": (lease.get("holder") or {}).get("host"),
            "open_copies": int(open_counts.get(name, 0)), "risk": risk_view(info.get("risk")),
        })
    return sorted(rows, key=lambda r: (r["type"] != "MASTER", r["name"]))


def link_row(t: Mapping[str, Any]) -> dict[str, Any]:
    """A copy as the page shows it: ``held_volume`` is the lots it holds now (its last
    held volume once closed), ``slave_volume`` the lots it was opened with."""
    status = t.get("status")
    reason = (t.get("retry_reason") if status == "PENDING" else None) or t.get("skip_reason") or t.get("reason") or t.get("error")
    return {
        "slave": t.get("slave_name"), "master": t.get("master_name"), "master_ticket": t.get("master_ticket"),
        "slave_ticket": t.get("slave_ticket"), "symbol": t.get("symbol"), "master_symbol": t.get("master_symbol"),
        "direction": t.get("direction"), "master_volume": _num(t.get("master_volume")),
        "slave_volume": _num(t.get("slave_volume")), "held_volume": recorded_held(t), "master_price": _num(t.get("master_price")),
        "slave_price": _num(t.get("slave_price")), "slippage_points": _num(t.get("slippage_points")),
        "latency_ms": _num(t.get("latency_ms")), "status": status, "reason": reason or None,
        "created_ms": t.get("created_ms"), "updated_ms": t.get("updated_ms"), "kind": t.get("kind"),
    }


def filter_links(links: Iterable[Mapping[str, Any]], *, slave: str | None = None, master: str | None = None,
                 status: str | None = None, symbol: str | None = None) -> list[dict[str, Any]]:
    """Links (store documents) matching every given filter; ``status`` may list several
    separated by commas; ``symbol`` matches the slave's or the master's symbol."""
    wanted = {s.strip().upper() for s in status.split(",")} if status else None
    out = []
    for t in links:
        if slave and t.get("slave_name") != slave:
            continue
        if master and t.get("master_name") != master:
            continue
        if wanted and str(t.get("status")) not in wanted:
            continue
        if symbol and symbol not in (t.get("symbol"), t.get("master_symbol")):
            continue
        out.append(dict(t))
    return out


def master_positions(links: Iterable[Mapping[str, Any]], positions: Mapping[str, Iterable[Any]]) -> list[dict[str, Any]]:
    """Every master position with its copies side by side. ``positions``: per master, its
    positions from the last bus snapshot (objects with ticket/identifier/symbol/side/volume/
    price_open); links add masters' positions the bus has not shown yet."""
    by_key: dict[tuple[str, Any], dict[str, Any]] = {}
    for master, plist in positions.items():
        for p in plist:
            key = (master, int(getattr(p, "identifier", 0) or getattr(p, "ticket", 0)))
            by_key[key] = {"master": master, "master_ticket": key[1], "symbol": p.symbol, "direction": p.side,
                           "volume": float(p.volume), "price": float(p.price_open), "time_ms": int(getattr(p, "time_msc", 0) or 0),
                           "live": True, "copies": []}
    for t in links:
        key = (t.get("master_name"), t.get("master_ticket"))
        row = by_key.get(key)
        if row is None:
            if t.get("status") not in LIVE_STATUSES + FINAL_BAD:
                continue
            row = by_key[key] = {"master": key[0], "master_ticket": key[1], "symbol": t.get("master_symbol"),
                                 "direction": t.get("master_direction") or t.get("direction"),
                                 "volume": _num(t.get("master_volume")), "price": _num(t.get("master_price")),
                                 "time_ms": t.get("created_ms") or 0, "live": False, "copies": []}
        row["copies"].append(link_row(t))
    rows = sorted(by_key.values(), key=lambda r: (-(r["time_ms"] or 0), str(r["master"]), str(r["master_ticket"])))
    for r in rows:
        r["copies"].sort(key=lambda c: str(c["slave"]))
    return rows


def exposure(links: Iterable[Mapping[str, Any]], positions: Mapping[str, Iterable[Any]],
             prices: Mapping[str, float] | None = None) -> dict[str, Any]:
    """Net lots and notional per symbol per account, and the total per underlying (the
    master's symbol: GOLD at one broker and XAUUSD at another are one exposure; notional
    summed, lots not, since contract sizes differ across brokers).
    Masters from their bus positions, followers from their OPEN links (the lots each copy
    holds now, ``held_volume``; links written before it: ``slave_volume``); a follower's
    contract size is the master's divided by the link's ``contract_factor`` (or the
    master's when the link has none)."""
    rows: dict[tuple[str, str], dict[str, Any]] = {}
    cs_by_master: dict[tuple[str, str], float] = {}
    px_by_master: dict[tuple[str, str], float] = {}

    def add(account: str, symbol: str, side: str, lots: float, units: float | None, price: float | None,
            underlying: str) -> None:
        r = rows.setdefault((account, symbol), {"account": account, "symbol": symbol, "underlying": underlying,
                                                "net_lots": 0.0, "notional": 0.0, "notional_known": True})
        sign = 1.0 if str(side).upper().startswith("BUY") else -1.0
        r["net_lots"] = round(r["net_lots"] + sign * lots, 8)
        if units is None or not price:
            r["notional_known"] = False
        else:
            r["notional"] = round(r["notional"] + sign * units * price, 2)

    for master, plist in positions.items():
        for p in plist:
            cs = float(getattr(p, "contract_size", 0.0) or 0.0)
            price = float(getattr(p, "price_current", 0.0) or 0.0) or float(p.price_open)
            cs_by_master[(master, p.symbol)] = cs
            px_by_master[(master, p.symbol)] = price
            add(master, p.symbol, p.side, float(p.volume), float(p.volume) * cs if cs else None, price, p.symbol)
    for t in links:
        if t.get("status") != "OPEN" or t.get("kind") == "order":
            continue
        vol = recorded_held(t) or 0.0  # what the follower holds now, not what the copy opened with
        mkey = (t.get("master_name"), t.get("master_symbol"))
        mcs = _num(t.get("master_contract_size")) or cs_by_master.get(mkey)
        factor = _num(t.get("contract_factor")) or _num(t.get("lot_factor"))
        cs = (mcs / factor) if (mcs and factor) else mcs
        price = (prices or {}).get(t.get("symbol")) or px_by_master.get(mkey) or _num(t.get("slave_price"))
        add(str(t.get("slave_name")), str(t.get("symbol")), str(t.get("direction")), vol, vol * cs if cs else None, price,
            str(t.get("master_symbol") or t.get("symbol")))
    per_account = sorted(rows.values(), key=lambda r: (r["underlying"], r["account"]))
    totals: dict[str, dict[str, Any]] = {}
    for r in per_account:
        tot = totals.setdefault(r["underlying"], {"symbol": r["underlying"], "notional": 0.0, "accounts": 0,
                                                  "notional_known": True})
        tot["notional"] = round(tot["notional"] + r["notional"], 2)
        tot["accounts"] += 1
        tot["notional_known"] = tot["notional_known"] and r["notional_known"]
    return {"rows": per_account, "totals": sorted(totals.values(), key=lambda r: r["symbol"])}


def histogram(values: Iterable[float], edges: list[float]) -> list[dict[str, Any]]:
    """Counts per bucket ``[edge_i, edge_i+1)``; the last bucket holds everything above."""
    counts = [0] * len(edges)
    for v in values:
        i = 0
        while i + 1 < len(edges) and v >= edges[i + 1]:
            i += 1
        counts[i] += 1
    return [{"from": e, "to": edges[i + 1] if i + 1 < len(edges) else None, "count": c} for i, (e, c) in enumerate(zip(edges, counts))]


def downsample(points: list[tuple[int, float]], limit: int) -> list[tuple[int, float]]:
    """At most ``limit`` points, evenly picked, first and last kept."""
    if len(points) <= limit or limit < 2:
        return points
    step = (len(points) - 1) / (limit - 1)
    return [points[round(i * step)] for i in range(limit)]
