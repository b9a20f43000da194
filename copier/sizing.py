"""Lot sizing for the slave and the volume grid of its broker.

Exposure, not lots (ARCHITECTURE invariant 7): every mode that follows the master's
volume works in units of the underlying, ``lots × contract size``, and compares money in
one currency. With ``factor = master contract size / slave contract size`` (MT5
``SYMBOL_TRADE_CONTRACT_SIZE``, units per lot on each broker):

* ``same``           slave lots = master lots × factor  (same exposure: 1 lot US30 at 10/lot = 10 lots DJ30 at 1/lot)
* ``fixed``          slave lots = ``lot``  (a fixed lot of the SLAVE symbol: no factor, no currency)
* ``multiplier``     slave lots = master lots × factor × ``multiplier``
* ``balance_ratio``  slave lots = master lots × factor × slave.balance / master.balance × ``multiplier`` (default 1)
* ``equity_ratio``   slave lots = master lots × factor × slave.equity / master.equity × ``multiplier`` (default 1)
* ``risk_percent``   slave lots = slave.equity × ``percent``/100 / (sl_distance / tick_size × tick_value);
  already in money (tick_value is in the slave's deposit currency per lot of the slave symbol);
  without an SL on the master -> ``fallback_lot`` if set, else Skip.

In the ratio modes, when the deposit currencies differ, the slave's balance/equity is first
converted into the master's currency (``copier.currency``: a ``Conversion`` built from the
follower terminal's own quotes); without one the copy is refused (Skip), never guessed.

Then ``normalize_volume`` rounds DOWN to the broker's step (never up: a copy must not be
bigger than asked), clamps to ``volume_max``/``max_lot``, and refuses anything under
``volume_min`` with a Skip rather than silently rounding up.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, Protocol

from copier.currency import Conversion
from copier.decisions import Skip
from copier.models import AccountMetrics, SymbolSpec

MODES = ("same", "fixed", "multiplier", "balance_ratio", "equity_ratio", "risk_percent")
RATIO_MODES = ("balance_ratio", "equity_ratio")
EXPOSURE_MODES = ("same", "multiplier", "balance_ratio", "equity_ratio")  # scale by contract sizes
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


@dataclass(frozen=True, slots=True)
class SizedCopy:
    """A raw (not yet normalised) slave volume and how it was reached, for the link record.

    ``contract_factor`` = master contract size / slave contract size (0 when the mode does
    not use it); ``ratio`` = the balance/equity ratio (1 outside the ratio modes);
    ``conversion`` = the deposit-currency conversion applied to the slave's money, if any.
    """

    volume: float
    contract_factor: float = 0.0
    ratio: float = 1.0
    conversion: Conversion | None = None


class ContractFacts(Protocol):
    """What ``contract_factor`` reads of a symbol: a ``SymbolSpec``, or any object with these."""

    @property
    def name(self) -> str: ...

    @property
    def contract_size(self) -> float: ...


def contract_factor(master_contract_size: float | None, slave_spec: ContractFacts) -> float | Skip:
    """Slave lots per master lot at equal exposure: master units per lot / slave units per lot."""
    if not master_contract_size or master_contract_size <= 0:
        return Skip(f"master contract size unknown for the symbol copied to {slave_spec.name}")
    if slave_spec.contract_size <= 0:
        return Skip(f"{slave_spec.name} has no contract size at the slave broker")
    return master_contract_size / slave_spec.contract_size


def money_ratio(kind: str, master: AccountMetrics | None, slave: AccountMetrics | None,
                conversion: Conversion | None = None) -> float | Skip:
    """slave.<kind> / master.<kind>, both in the master's deposit currency.

    ``kind`` is "balance" or "equity". When the currencies differ, ``conversion`` must turn
    the slave's currency into the master's (source = slave currency, target = master's).
    """
    if master is None or slave is None:
        return Skip(f"{kind}_ratio sizing needs both master and slave account metrics (not received yet)")
    m, s = getattr(master, kind), getattr(slave, kind)
    if m <= 0:
        return Skip(f"{kind}_ratio sizing: master {kind} is {m:g}")
    mc, sc = (master.currency or "").upper(), (slave.currency or "").upper()
    if mc != sc:
        if conversion is None or conversion.source.upper() != sc or conversion.target.upper() != mc:
            return Skip(f"{kind}_ratio sizing: master deposits in {mc}, slave in {sc}, and no {sc}->{mc} conversion is available")
        if not conversion.rate > 0:
            return Skip(f"{kind}_ratio sizing: {sc}->{mc} rate {conversion.rate:g} is not positive")
        s = conversion.convert(s)
    return max(s, 0.0) / m


def size_copy(
    master_volume: float,
    cfg_sizing: SizingConfig,
    *,
    master_contract_size: float | None,
    master_metrics: AccountMetrics | None,
    slave_metrics: AccountMetrics | None,
    sl_distance_price: float | None,
    slave_spec: SymbolSpec,
    conversion: Conversion | None = None,
) -> SizedCopy | Skip:
    """The raw slave volume for a master volume (lots in, lots out; exposure kept in units).

    ``master_contract_size`` is the master broker's contract size of the master symbol;
    ``slave_spec.contract_size`` the slave broker's. ``conversion`` (slave currency ->
    master currency) is needed only by the ratio modes when the currencies differ.
    """
    mode = cfg_sizing.mode
    if mode == "fixed":
        return SizedCopy(float(cfg_sizing.lot or 0.0))
    if mode == "risk_percent":
        if not sl_distance_price or sl_distance_price <= 0:
            if cfg_sizing.fallback_lot:
                return SizedCopy(float(cfg_sizing.fallback_lot))
            return Skip("risk_percent sizing needs a stop loss on the master position (none set, no fallback_lot)")
        if slave_metrics is None:
            return Skip("risk_percent sizing needs the slave's account metrics (not received yet)")
        if slave_spec.tick_size <= 0 or slave_spec.tick_value <= 0:
            return Skip(f"risk_percent sizing: {slave_spec.name} has no tick value/size")
        loss_per_lot = sl_distance_price / slave_spec.tick_size * slave_spec.tick_value
        return SizedCopy(slave_metrics.equity * float(cfg_sizing.percent or 0.0) / 100.0 / loss_per_lot)
    if mode not in EXPOSURE_MODES:
        raise ValueError(f"unknown sizing mode {mode!r}")
    factor = contract_factor(master_contract_size, slave_spec)
    if isinstance(factor, Skip):
        return factor
    if mode == "same":
        return SizedCopy(master_volume * factor, factor)
    if mode == "multiplier":
        return SizedCopy(master_volume * factor * cfg_sizing.multiplier, factor)
    ratio = money_ratio(mode.split("_")[0], master_metrics, slave_metrics, conversion)
    if isinstance(ratio, Skip):
        return ratio
    used = conversion if master_metrics is not None and slave_metrics is not None and \
        (master_metrics.currency or "").upper() != (slave_metrics.currency or "").upper() else None
    return SizedCopy(master_volume * factor * ratio * cfg_sizing.multiplier, factor, ratio, used)


def target_volume(master_volume: float, cfg_sizing: SizingConfig, **kw: Any) -> float | Skip:
    """``size_copy(...).volume`` (same keywords), or the Skip."""
    sized = size_copy(master_volume, cfg_sizing, **kw)
    return sized if isinstance(sized, Skip) else sized.volume


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
