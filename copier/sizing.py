"""Lot sizing for the slave and the volume grid of its broker.

Modes (``SizingConfig.mode``):

* ``same``           slave = master volume (the seed's 1:1)
* ``fixed``          slave = ``lot``
* ``multiplier``     slave = master × ``multiplier``
* ``balance_ratio``  slave = master × slave.balance / master.balance × ``multiplier`` (default 1)
* ``equity_ratio``   slave = master × slave.equity / master.equity × ``multiplier`` (default 1)
* ``risk_percent``   slave = slave.equity × ``percent``/100 / (sl_distance / tick_size × tick_value);
  without an SL on the master -> ``fallback_lot`` if set, else Skip.

Then ``normalize_volume`` rounds DOWN to the broker's step (never up: a copy must not be
bigger than asked), clamps to ``volume_max``/``max_lot``, and refuses anything under
``volume_min`` with a Skip rather than silently rounding up.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

from copier.decisions import Skip
from copier.models import AccountMetrics, SymbolSpec

MODES = ("same", "fixed", "multiplier", "balance_ratio", "equity_ratio", "risk_percent")
STEP_EPS = 1e-5  # in units of volume_step: 0.29999999 -> 0.3, 0.30000000004 -> 0.3


@dataclass(frozen=True, slots=True)
class SizingConfig:
    mode: str = "same"
    lot: float | None = None
    multiplier: float = 1.0
    percent: float | None = None
    fallback_lot: float | None = None

    def to_dict(self) -> dict:
        out: dict = {"mode": self.mode}
        if self.mode == "fixed":
            out["lot"] = self.lot
        if self.mode in ("multiplier", "balance_ratio", "equity_ratio"):
            out["multiplier"] = self.multiplier
        if self.mode == "risk_percent":
            out["percent"] = self.percent
            if self.fallback_lot is not None:
                out["fallback_lot"] = self.fallback_lot
        return out


def _ratio(kind: str, master: AccountMetrics | None, slave: AccountMetrics | None) -> float | Skip:
    if master is None or slave is None:
        return Skip(f"{kind}_ratio sizing needs both master and slave account metrics (not received yet)")
    m, s = getattr(master, kind), getattr(slave, kind)
    if m <= 0:
        return Skip(f"{kind}_ratio sizing: master {kind} is {m:g}")
    return max(s, 0.0) / m


def target_volume(
    master_volume: float,
    cfg_sizing: SizingConfig,
    *,
    master_metrics: AccountMetrics | None,
    slave_metrics: AccountMetrics | None,
    sl_distance_price: float | None,
    slave_spec: SymbolSpec,
) -> float | Skip:
    """The raw (not yet normalised) slave volume for a master volume."""
    mode = cfg_sizing.mode
    if mode == "same":
        return master_volume
    if mode == "fixed":
        return float(cfg_sizing.lot or 0.0)
    if mode == "multiplier":
        return master_volume * cfg_sizing.multiplier
    if mode in ("balance_ratio", "equity_ratio"):
        ratio = _ratio(mode.split("_")[0], master_metrics, slave_metrics)
        if isinstance(ratio, Skip):
            return ratio
        return master_volume * ratio * cfg_sizing.multiplier
    if mode == "risk_percent":
        if not sl_distance_price or sl_distance_price <= 0:
            if cfg_sizing.fallback_lot:
                return float(cfg_sizing.fallback_lot)
            return Skip("risk_percent sizing needs a stop loss on the master position (none set, no fallback_lot)")
        if slave_metrics is None:
            return Skip("risk_percent sizing needs the slave's account metrics (not received yet)")
        if slave_spec.tick_size <= 0 or slave_spec.tick_value <= 0:
            return Skip(f"risk_percent sizing: {slave_spec.name} has no tick value/size")
        loss_per_lot = sl_distance_price / slave_spec.tick_size * slave_spec.tick_value
        return slave_metrics.equity * float(cfg_sizing.percent or 0.0) / 100.0 / loss_per_lot
    raise ValueError(f"unknown sizing mode {mode!r}")


def _decimals(step: float) -> int:
    text = f"{step:.10f}".rstrip("0")
    return len(text.split(".")[1]) if "." in text else 0


def floor_to_step(volume: float, step: float) -> float:
    """Round down to the step grid, tolerating float noise on both sides of a grid line."""
    if step <= 0:
        return volume
    steps = math.floor(volume / step + STEP_EPS)
    return round(steps * step, _decimals(step) + 2)


def normalize_volume(volume: float, spec: SymbolSpec, *, max_lot: float | None = None) -> float | Skip:
    """A volume the broker accepts, or Skip when it falls under the minimum."""
    if not math.isfinite(volume) or volume <= 0:
        return Skip(f"volume {volume:g} is not positive for {spec.name}")
    capped = min(volume, spec.volume_max) if spec.volume_max > 0 else volume
    if max_lot is not None:
        capped = min(capped, max_lot)
    result = floor_to_step(capped, spec.volume_step)
    if result < spec.volume_min - spec.volume_step * STEP_EPS or result <= 0:
        return Skip(f"volume {volume:g} below minimum {spec.volume_min:g} for {spec.name} (step {spec.volume_step:g})")
    return result
