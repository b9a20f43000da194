"""What the guardian shows: the ``info["risk"]`` block of the node's status heartbeat
(read by ``cli.py status``, the monitor and the dashboard), and the per-day stats merged
into the daily report."""
from __future__ import annotations

from typing import TYPE_CHECKING, Any

from copier.risk import DAILY, OVERALL, Evaluation, Level

if TYPE_CHECKING:
    from .guardian import Guardian


def status_info(g: Guardian) -> dict[str, Any]:
    """The guardian's state as plain JSON values: profile, level, lock, pause, the day's
    references, and per rule (``daily_``/``overall_``/``margin_`` prefixes) the used
    percent, level, money used/left (account currency) and the floor equity.

    ``<rule>_used_money`` / ``_used_pct`` / ``_headroom`` include ``closing_cost``: the
    estimated cost to close what is open now (exit commission), the loss a flatten would
    realise on top of the floating one. ``<rule>_floor_equity`` stays the firm's line on
    equity."""
    ev, st, cfg = g.ev, g.state, g.config
    out: dict[str, Any] = {
        "profile": cfg.profile if cfg else None,
        "actions_enabled": g.actions_enabled,
        "level": ev.level.name if ev else None,
        "locked": g.locked,
        "paused_by_risk": g.paused_by_risk,
        "blocks_opens": g.blocks_opens,
        "day": st.day_id,
        "day_start_balance": st.day_start_balance,
        "day_start_equity": st.day_start_equity,
        "reference_estimated": st.reference_estimated,
        "reference_source": st.reference_source,
        "peak_source": g.peak_source,
        "equity_high": st.equity_high,
        "server_time_msc": g.server_time.latest_ms,
        "terminal_error": g.terminal_error,
        "blind": g.blind,
        "lock_closes": g.enforcer.lock_closes,
        "closing_cost": g.closing_cost.money,
        "closing_cost_incomplete": g.closing_cost.incomplete,
        "block_reason": g.block_reason,
    }
    if st.lock is not None:
        out.update(lock_reason=st.lock.reason, lock_until_utc_ms=st.lock.until_utc_ms, lock_by=st.lock.by)
    if ev is not None:
        for rv in ev.rules:
            prefix = {DAILY: "daily", OVERALL: "overall"}.get(rv.rule, "margin")
            out[f"{prefix}_used_pct"] = round(rv.used_pct, 2)
            out[f"{prefix}_level"] = rv.level.name
            if rv.rule in (DAILY, OVERALL):
                out[f"{prefix}_used_money"] = rv.used_money
                out[f"{prefix}_left_pct"] = round(max(0.0, 100.0 - rv.used_pct), 2)
                out[f"{prefix}_reference"] = rv.reference
                out[f"{prefix}_limit"] = rv.limit_money
                out[f"{prefix}_headroom"] = rv.headroom_money
                out[f"{prefix}_floor_equity"] = rv.floor_equity
            else:
                out["margin_level"] = rv.value
    if g.metrics is not None:
        out["equity"] = g.metrics.equity
        out["balance"] = g.metrics.balance
    if g.enforcer.last_flatten is not None:
        out["last_flatten"] = g.enforcer.last_flatten
    if g.exposure.breaches:
        out["exposure_breaches"] = sorted(g.exposure.breaches.values())
    return out


def note_day_stats(day_stats: dict[str, dict[str, Any]], ev: Evaluation) -> None:
    """Worst level and headroom of the day as seen at every evaluation (the stored
    snapshots are only every 10 s), into ``day_stats`` (trading day -> stats; money in
    the account currency). Keeps today and yesterday only."""
    day = ev.state.day_id
    if day is None:
        return
    st = day_stats.setdefault(day, {"worst_level": Level.OK.name})
    if ev.level > Level[st["worst_level"]]:
        st["worst_level"] = ev.level.name
    for rv in ev.rules:
        if rv.rule in (DAILY, OVERALL) and rv.headroom_money is not None:
            prefix = "daily" if rv.rule == DAILY else "overall"
            low = st.get(f"{prefix}_headroom_min")
            st[f"{prefix}_headroom_min"] = rv.headroom_money if low is None else min(low, rv.headroom_money)
            st[f"{prefix}_headroom_end"] = rv.headroom_money
            st[f"{prefix}_limit_money"] = rv.limit_money
    for old in sorted(day_stats)[:-2]:  # keep today and yesterday
        del day_stats[old]
