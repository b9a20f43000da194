"""Daily reports in the store: computed off the trading loop, corrected by what the
guardian saw live.

``copier.report.daily_report`` replays the day's stored snapshots through the rules;
late in the day that is tens of milliseconds, too long to block a copier loop, so a
``ReportWriter`` runs it on one worker thread. The deals are read by the guardian on
the loop's thread (the terminal belongs to it) and handed over in the ``ReportJob``.
"""
from __future__ import annotations

import queue
import threading
from dataclasses import dataclass
from datetime import date
from typing import Any

from copier.report import daily_report
from copier.risk import Deal, Level, RiskConfig, day_bounds
from copier.risk.clock import ms_from_utc
from db import StoreUnavailable

REPORT_PREFIX = "report:"
REPORT_REQUEST_PREFIX = "report_request:"
MAX_REPORT_SNAPSHOTS = 720


def report_key(name: str, day: str) -> str:
    return f"{REPORT_PREFIX}{name}:{day}"


def report_request_key(name: str) -> str:
    """``report_request:<account>``: ``cli.py report`` asks the running guardian for a
    report computed now (``{"id": ..., "requested_ms": ...}``)."""
    return f"{REPORT_REQUEST_PREFIX}{name}"


@dataclass(frozen=True)
class ReportJob:
    config: RiskConfig
    day: str
    server_ms: int
    final: bool
    deals: list[Deal]
    seen: dict[str, Any]  # the guardian's own worst level / headroom that day
    login: int | None
    request_id: str | None = None  # an operator's live request (cli.py report), echoed in the doc


def thin_snapshots(snaps: list[dict[str, Any]], max_n: int = MAX_REPORT_SNAPSHOTS) -> list[dict[str, Any]]:
    """At most ~``max_n`` snapshots, keeping first, last, and each bucket's highest and
    lowest equity in time order, so highs, lows and drawdowns survive the thinning."""
    if len(snaps) <= max_n:
        return snaps
    per = max(1, (len(snaps) * 2) // max_n + 1)
    keep = {0, len(snaps) - 1}
    for start in range(0, len(snaps), per):
        bucket = range(start, min(start + per, len(snaps)))
        eq = lambda i: snaps[i]["metrics"].get("equity", 0.0)  # noqa: E731
        keep.add(max(bucket, key=eq))
        keep.add(min(bucket, key=eq))
    return [snaps[i] for i in sorted(keep)]


def merge_seen(st: dict[str, Any], rep: dict[str, Any]) -> dict[str, Any]:
    """The report's rule figures, corrected by what the guardian saw live that day
    (every evaluation, where the report only replays the 10-s snapshots)."""
    if not st:
        return {}
    out: dict[str, Any] = {"worst_level": max(Level[rep["worst_level"]], Level[st["worst_level"]]).name}
    for prefix in ("daily", "overall"):
        low = st.get(f"{prefix}_headroom_min")
        if low is None:
            continue
        rep_low = rep.get(f"{prefix}_headroom_min")
        out[f"{prefix}_headroom_min"] = low if rep_low is None else min(low, rep_low)
        out[f"{prefix}_headroom_end"] = st[f"{prefix}_headroom_end"]
        out[f"{prefix}_limit_money"] = st[f"{prefix}_limit_money"]
    return out


class ReportWriter:
    """Computes reports and upserts ``report:<account>:<day>``; in the background by default."""

    def __init__(self, name: str, store: Any, log: Any, *, in_background: bool = True) -> None:
        self.name, self.store, self.log = name, store, log
        self.in_background = in_background
        self.jobs: queue.Queue = queue.Queue()
        self.worker: threading.Thread | None = None

    @property
    def busy(self) -> bool:
        return self.in_background and self.jobs.unfinished_tasks > 0

    def submit(self, job: ReportJob) -> None:
        if not self.in_background:
            self.compute(job)
            return
        if self.worker is None:
            self.worker = threading.Thread(target=self._loop, name=f"reports-{self.name}", daemon=True)
            self.worker.start()
        self.jobs.put(job)

    def _loop(self) -> None:
        while True:
            job = self.jobs.get()
            try:
                if job is None:
                    return
                self.compute(job)
            except Exception:
                self.log.exception("report_failed")
            finally:
                self.jobs.task_done()

    def compute(self, job: ReportJob) -> dict[str, Any] | None:
        cfg, day = job.config, job.day
        start, end = day_bounds(date.fromisoformat(day), cfg.reset_time, cfg.reset_tz, cfg.clock)
        s_ms, e_ms = ms_from_utc(start), ms_from_utc(end)
        try:
            snaps = self.store.list_snapshots(self.name, since_ms=s_ms - 86_400_000, until_ms=e_ms)
            before = [s for s in snaps if s["ts_ms"] < s_ms][-1:]
            inside = thin_snapshots([s for s in snaps if s["ts_ms"] >= s_ms])
            metrics = [s["metrics"] for s in before + inside]
            report = daily_report(job.deals, metrics, cfg, date.fromisoformat(day), login=job.login).to_dict()
            doc = {**report, **merge_seen(job.seen, report), "account": self.name, "final": job.final,
                   "profile": cfg.profile, "updated_server_ms": job.server_ms}
            if job.request_id is not None:
                doc["request_id"] = job.request_id
            self.store.set_flag(report_key(self.name, day), doc)
            return doc
        except StoreUnavailable as exc:
            self.log.warning("report_not_saved", day=day, error=str(exc))
            return None

    def close(self, timeout: float = 5.0) -> None:
        """Finish what is queued (up to ``timeout``) and stop the worker."""
        if self.worker is not None:
            self.jobs.put(None)
            self.worker.join(timeout)
            self.worker = None
