"""Demo trader: random but valid trading on any MetaTrader5-like object.

It gives the demo fleet (and a person rehearsing) a master that keeps changing: it opens,
moves SL/TP, partially closes and closes positions at a configurable rate.  It only touches
positions carrying its own magic number, so manual trades on the same account are safe.
Works against the real package, ``sim.terminal()`` or ``sim.client.connect()`` alike.
"""
from __future__ import annotations

import random
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass
from typing import Any

OPEN, MODIFY, PARTIAL, CLOSE = "open", "modify", "partial_close", "close"
ACTIONS = (OPEN, MODIFY, PARTIAL, CLOSE)
TRADE_RETCODE_DONE = 10009


@dataclass(frozen=True)
class Action:
    """What one step did (``retcode`` None: order_send returned None, see ``error``)."""
    kind: str
    symbol: str
    ticket: int
    volume: float
    retcode: int | None
    comment: str
    error: tuple | None = None

    @property
    def ok(self) -> bool:
        return self.retcode == TRADE_RETCODE_DONE

    def as_dict(self) -> dict:
        return asdict(self)


def filling_for(filling_mode: int, mt5: Any) -> int:
    """FOK if bit 1, else IOC if bit 2, else RETURN (bit values are not enum values)."""
    if filling_mode & 1:
        return mt5.ORDER_FILLING_FOK
    if filling_mode & 2:
        return mt5.ORDER_FILLING_IOC
    return mt5.ORDER_FILLING_RETURN


def volume_decimals(step: float) -> int:
    text = f"{step:.8f}".rstrip("0")
    return len(text.split(".")[1]) if "." in text else 0


def round_volume(volume: float, step: float) -> float:
    return round(round(volume / step) * step, volume_decimals(step))


class DemoTrader:
    """Random trading within limits; call :meth:`step` or :meth:`run`."""

    def __init__(self, mt5: Any, symbols: Sequence[str], *, max_positions: int = 5,
                 seed: int | None = None, magic: int = 770077,
                 comment: str = "demo-trader", deviation: int = 20,
                 max_lots_in_steps: int = 20) -> None:
        if not symbols:
            raise ValueError("at least one symbol is needed")
        if max_positions < 1:
            raise ValueError("max_positions must be >= 1")
        self.mt5 = mt5
        self.symbols = list(symbols)
        self.max_positions = max_positions
        self.rng = random.Random(seed)
        self.magic = magic
        self.comment = comment
        self.deviation = deviation
        self.max_lots_in_steps = max_lots_in_steps

    # ------------------------------------------------------------------ helpers
    def my_positions(self) -> list:
        got = self.mt5.positions_get()
        return [p for p in (got or ()) if p.magic == self.magic]

    def _spec(self, symbol: str) -> tuple[Any, Any]:
        self.mt5.symbol_select(symbol, True)
        return self.mt5.symbol_info(symbol), self.mt5.symbol_info_tick(symbol)

    def _send(self, kind: str, symbol: str, ticket: int, volume: float,
              request: dict) -> Action:
        res = self.mt5.order_send(request)
        if res is None:
            return Action(kind, symbol, ticket, volume, None, "", tuple(self.mt5.last_error()))
        if kind == OPEN and res.retcode == TRADE_RETCODE_DONE:
            ticket = res.order
        return Action(kind, symbol, ticket, volume, res.retcode, res.comment)

    def _fail(self, kind: str, symbol: str, ticket: int = 0) -> Action:
        return Action(kind, symbol, ticket, 0.0, None, "", tuple(self.mt5.last_error()))

    def _levels(self, info: Any, is_buy: bool, price: float) -> tuple[float, float]:
        """SL/TP a random distance away, always beyond the broker's stops level."""
        min_pts = max(int(info.trade_stops_level) + 10, 50)
        sl_pts = self.rng.randint(min_pts, min_pts * 6)
        tp_pts = self.rng.randint(min_pts, min_pts * 8)
        d = int(info.digits)
        if is_buy:
            return round(price - sl_pts * info.point, d), round(price + tp_pts * info.point, d)
        return round(price + sl_pts * info.point, d), round(price - tp_pts * info.point, d)

    # ------------------------------------------------------------------ actions
    def open(self) -> Action:
        symbol = self.rng.choice(self.symbols)
        info, tick = self._spec(symbol)
        if info is None or tick is None:
            return self._fail(OPEN, symbol)
        is_buy = self.rng.random() < 0.5
        steps = self.rng.randint(1, self.max_lots_in_steps)
        volume = round_volume(min(info.volume_min + (steps - 1) * info.volume_step,
                                  info.volume_max), info.volume_step)
        price = tick.ask if is_buy else tick.bid
        req = {
            "action": self.mt5.TRADE_ACTION_DEAL, "symbol": symbol, "volume": volume,
            "type": self.mt5.ORDER_TYPE_BUY if is_buy else self.mt5.ORDER_TYPE_SELL,
            "price": price, "deviation": self.deviation, "magic": self.magic,
            "comment": self.comment, "type_filling": filling_for(info.filling_mode, self.mt5),
            "type_time": self.mt5.ORDER_TIME_GTC,
        }
        if self.rng.random() < 0.5:
            req["sl"], req["tp"] = self._levels(info, is_buy, price)
        return self._send(OPEN, symbol, 0, volume, req)

    def modify(self, pos: Any) -> Action:
        info, tick = self._spec(pos.symbol)
        if info is None or tick is None:
            return self._fail(MODIFY, pos.symbol, pos.ticket)
        is_buy = pos.type == self.mt5.POSITION_TYPE_BUY
        sl, tp = self._levels(info, is_buy, tick.bid if is_buy else tick.ask)
        req = {"action": self.mt5.TRADE_ACTION_SLTP, "symbol": pos.symbol,
               "position": pos.ticket, "sl": sl, "tp": tp, "magic": self.magic}
        return self._send(MODIFY, pos.symbol, pos.ticket, pos.volume, req)

    def close(self, pos: Any, volume: float | None = None) -> Action:
        kind = CLOSE if volume is None else PARTIAL
        info, tick = self._spec(pos.symbol)
        if info is None or tick is None:
            return self._fail(kind, pos.symbol, pos.ticket)
        is_buy = pos.type == self.mt5.POSITION_TYPE_BUY
        vol = pos.volume if volume is None else volume
        req = {
            "action": self.mt5.TRADE_ACTION_DEAL, "symbol": pos.symbol, "volume": vol,
            "type": self.mt5.ORDER_TYPE_SELL if is_buy else self.mt5.ORDER_TYPE_BUY,
            "position": pos.ticket, "price": tick.bid if is_buy else tick.ask,
            "deviation": self.deviation, "magic": self.magic, "comment": self.comment,
            "type_filling": filling_for(info.filling_mode, self.mt5),
            "type_time": self.mt5.ORDER_TIME_GTC,
        }
        return self._send(kind, pos.symbol, pos.ticket, vol, req)

    def partial_close(self, pos: Any) -> Action | None:
        info = self.mt5.symbol_info(pos.symbol)
        if info is None:
            return self._fail(PARTIAL, pos.symbol, pos.ticket)
        steps = round((pos.volume - info.volume_min) / info.volume_step)
        if steps < 1:
            return None  # nothing left to split off
        part = round_volume(info.volume_step * self.rng.randint(1, steps), info.volume_step)
        return self.close(pos, part)

    def _splittable(self, pos: Any) -> bool:
        info = self.mt5.symbol_info(pos.symbol)
        return info is not None and pos.volume - info.volume_min >= info.volume_step - 1e-12

    def step(self) -> Action:
        """Do one random action that is possible right now."""
        positions = self.my_positions()
        choices = []
        if len(positions) < self.max_positions:
            choices += [OPEN] * (4 if len(positions) < self.max_positions // 2 + 1 else 2)
        if positions:
            choices += [MODIFY, MODIFY, CLOSE]
            if any(self._splittable(p) for p in positions):
                choices += [PARTIAL, PARTIAL]
        kind = self.rng.choice(choices)
        if kind == OPEN:
            return self.open()
        if kind == PARTIAL:
            pos = self.rng.choice([p for p in positions if self._splittable(p)])
            act = self.partial_close(pos)
            return act if act is not None else self.modify(pos)
        pos = self.rng.choice(positions)
        return self.modify(pos) if kind == MODIFY else self.close(pos)

    def run(self, rate: float = 1.0, duration: float | None = None,
            stop: threading.Event | None = None,
            on_action: Callable[[Action], None] | None = None,
            clock: Callable[[], float] = time.monotonic) -> int:
        """Act ``rate`` times per second until ``duration`` elapses or ``stop`` is set.

        Returns the number of actions taken.
        """
        if rate <= 0:
            raise ValueError("rate must be > 0")
        stop = stop or threading.Event()
        period = 1.0 / rate
        start = next_at = clock()
        n = 0
        while not stop.is_set():
            if duration is not None and clock() - start >= duration:
                break
            act = self.step()
            n += 1
            if on_action is not None:
                on_action(act)
            next_at += period
            delay = next_at - clock()
            if delay > 0:
                stop.wait(delay if duration is None else min(delay,
                                                             max(0.0, start + duration - clock())))
            else:
                next_at = clock()  # fell behind: do not burst to catch up
        return n
