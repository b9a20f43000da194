"""Master node: poll one signal terminal, publish its positions over the bus.

Every ``MASTER_POLL_INTERVAL_MS`` it reads ``orders_get`` then ``positions_get`` and hands
them to the Clone-pattern publisher (a delta when something changed, a full snapshot
every heartbeat). A ``None`` from the terminal is an error, never "no positions": the
master then publishes a status error and NO state, and reconnects with backoff, so no
slave ever closes a copy because the master's terminal hiccupped (invariant 1).

Run: ``python nodes/master.py --name FTMO_Master``.
"""
from __future__ import annotations

import sys
import time
from operator import attrgetter
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from config import settings  # noqa: E402
from copier.diff import diff_state  # noqa: E402
from copier.orders import RetryPolicy  # noqa: E402
from messaging.clone import StatePublisher  # noqa: E402
from messaging.schema import Control  # noqa: E402
from nodes.execution import Executor  # noqa: E402
from nodes.identity import WrongAccount  # noqa: E402
from nodes.lease import LeaseLost  # noqa: E402
from nodes.runtime import NodeRuntime, bus_counters, run_node, utc_ms  # noqa: E402
from terminals.convert import (  # noqa: E402
    ContractSizes,
    estimate_server_offset_ms,
    metrics_from_mt5,
    orders_by_ticket,
    positions_by_identifier,
)

MAX_OFFSET_MS = 14 * 3600_000
ORDER_STATE_FILLED = 4  # MT5 ORDER_STATE_FILLED
# What a poll compares before converting anything: the raw fields a published position or
# order is made of, price_current and profit left out (they move with every tick and are not
# part of a change: messaging/clone.VOLATILE_POSITION_FIELDS).
_POSITION_KEY = attrgetter("ticket", "identifier", "symbol", "type", "volume", "price_open", "sl", "tp", "time_msc",
                           "time_update_msc", "magic", "comment")
_ORDER_KEY = attrgetter("ticket", "symbol", "type", "volume_current", "price_open", "price_stoplimit", "sl", "tp",
                        "time_setup_msc", "magic", "comment", "type_time", "time_expiration")
VANISHED_HOLD_POLLS = 50  # polls a vanished, unaccounted order stays published (~1 s at 20 ms)
# The audit record of a published change (log line and ``master_changes`` event) is written
# once no change went out for CHANGE_RECORD_QUIET_MS, or when the oldest waited
# CHANGE_RECORD_MAX_WAIT_MS: written right after the publish, its store write and log line
# took the CPU the proxy and the slaves need to copy that very change (docs/benchmarks.md).
CHANGE_RECORD_QUIET_MS = 50
CHANGE_RECORD_MAX_WAIT_MS = 1_000


class MasterLoop:
    """One master's poll → publish loop; separated from ``main`` so tests can drive it."""

    def __init__(self, rt: NodeRuntime, mt5, *, poll_ms: int, heartbeat_ms: int, cfg=None) -> None:
        self.rt = rt
        self.mt5 = mt5
        self.cfg = cfg  # the account document: its login is re-checked with every metrics read
        self.poll_s = poll_ms / 1000.0
        self.heartbeat_ms = heartbeat_ms
        self.publisher = StatePublisher(rt.name, rt.publisher, snapshot_interval_ms=heartbeat_ms)
        self.offset_ms = 0
        self.clock_symbol: str | None = None
        self.metrics = None
        self.positions: dict = {}
        self.orders: dict = {}
        self.failures = 0
        self._next_heartbeat = 0
        self.guardian = None
        self.contract_sizes = ContractSizes(mt5)  # bus v2: contract size with every position
        self._steady: tuple | None = None  # _steady_key of the last poll converted
        self.held_orders: dict[int, int] = {}  # vanished order ticket -> polls it was kept published
        # published changes not yet in the audit trail: (seen ms, seq, positions and orders before, after)
        self.unrecorded: list[tuple[int, int, dict, dict, dict, dict]] = []

    def poll_once(self) -> bool:
        """Read the terminal and publish. False when the terminal returned an error.

        Raises LeaseLost when this process no longer holds the account (it must not
        publish), WrongAccount when the terminal is logged into another account: a
        change is published only after ``account_info()`` confirmed the login, so
        another account's positions never reach the slaves as this master's.
        """
        fence = getattr(self.rt, "fence", None)
        if fence is not None:
            fence()
        # Orders FIRST, then positions (consistent-snapshot rule, docs/copier.md): a pending
        # order that fills between the two reads is then seen twice (as the order and as the
        # position its ticket opens), never zero times.
        orders = self.mt5.orders_get()
        positions = self.mt5.positions_get() if orders is not None else None
        now = utc_ms()
        if positions is None or orders is None:
            code, text = self.mt5.last_error()
            self.failures += 1
            if self.rt.last_error is None:
                self.rt.log.error("terminal_error", code=code, error=text)
                self.rt.event("master_terminal_error", level="error", code=code, error=text)
            self.rt.set_error(f"terminal error ({code}, {text})")
            return False
        if self.rt.last_error is not None:
            self.rt.log.info("terminal_recovered", after_failures=self.failures)
            self.rt.event("master_terminal_recovered", failures=self.failures)
        self.failures = 0
        self.rt.set_error(None)
        refreshed = now >= self._next_heartbeat
        steady = self._steady_key(positions, orders)
        if steady is not None and steady == self._steady and not refreshed and not self.held_orders \
                and not self.contract_sizes.failed and not self.publisher.snapshot_due(now):
            return True  # only prices moved: nothing to convert, nothing to publish
        self.contract_sizes.mt5 = self.mt5  # the terminal may have been reconnected
        failed_before = set(self.contract_sizes.failed)
        if refreshed:  # before converting: the first poll already needs the server offset (UTC times, expiries)
            self._refresh_metrics(now)
        new_positions = positions_by_identifier(positions, offset_ms=self.offset_ms, contract_size=self.contract_sizes)
        new_orders = orders_by_ticket(orders, offset_ms=self.offset_ms, contract_size=self.contract_sizes)
        self._account_for_vanished_orders(new_positions, new_orders)
        for symbol in sorted(self.contract_sizes.failed - failed_before):
            self.rt.log.warning("contract_size_unknown", symbol=symbol, note="published as 0: followers wait")
        # A change goes out only after account_info() confirmed the login (the publisher calls
        # back right before it publishes one); a poll where only prices moved reads nothing more,
        # and neither does one whose heartbeat refresh just confirmed it.
        confirm = self._confirm_account if not refreshed and self.cfg is not None else None
        delta = self.publisher.update(new_positions, new_orders, self.metrics, now, before_change=confirm)
        if delta is not None:
            self.unrecorded.append((now, self.publisher.seq, self.positions, self.orders, new_positions, new_orders))
        self.positions, self.orders = new_positions, new_orders
        self._steady = steady
        return True

    def _steady_key(self, positions: Any, orders: Any) -> tuple | None:
        """What the terminal's records say apart from prices, as plain tuples (C speed): a
        poll whose key equals the last converted poll's has nothing to publish, and skips
        the conversion (``bench/master_cpu.py``). A heartbeat poll, a due snapshot, an order
        held after vanishing and a contract size still unknown always take the full path.
        None (always the full path) for records without the fields."""
        try:
            return self.offset_ms, tuple(map(_POSITION_KEY, positions)), tuple(map(_ORDER_KEY, orders))
        except AttributeError:
            return None

    def _account_for_vanished_orders(self, new_positions: dict, new_orders: dict) -> None:
        """Invariant 1 within one poll: an order that vanished is accounted for before its
        absence is published.

        For every order of the last published state that is gone now, with no position of
        its ticket (MT5: the position an order opens has the order's ticket as identifier),
        the terminal's history is asked (``history_orders_get(ticket=)``):

        * CANCELED / EXPIRED / REJECTED, or FILLED into a position that is closed again or
          that is already published (a netting add): the absence is real and goes out;
        * FILLED into a position the list did not show yet: that position is read with
          ``positions_get(ticket=)`` and published with this snapshot;
        * not in the history yet, or a terminal error: the order stays published as it
          was, for at most ``VANISHED_HOLD_POLLS`` polls (then its absence goes out, with
          a warning), so a follower never removes or closes its copy on an unaccounted gap.

        Mutates ``new_positions``/``new_orders``. Costs terminal calls only when an order
        vanished without its position (cancellations, expiries).
        """
        for ticket in list(self.held_orders):
            if ticket in new_orders or ticket in new_positions or ticket not in self.orders:
                self.held_orders.pop(ticket, None)
        for ticket, order in self.orders.items():
            if ticket in new_orders or ticket in new_positions:
                continue
            hist = self.mt5.history_orders_get(ticket=ticket)
            record = hist[0] if hist else None
            if record is not None:
                self.held_orders.pop(ticket, None)
                position_id = int(getattr(record, "position_id", 0) or 0)
                if int(record.state) == ORDER_STATE_FILLED and position_id and position_id not in new_positions:
                    found = self.mt5.positions_get(ticket=position_id)
                    if found:
                        new_positions.update(positions_by_identifier(found, offset_ms=self.offset_ms, contract_size=self.contract_sizes))
                        self.rt.log.info("vanished_order_position_found", master_ticket=ticket, position=position_id)
                continue
            held = self.held_orders.get(ticket, 0) + 1
            if held > VANISHED_HOLD_POLLS:
                self.held_orders.pop(ticket, None)
                self.rt.log.warning("vanished_order_unaccounted", master_ticket=ticket, polls=held - 1,
                                    note="absence published without a history record")
                continue
            self.held_orders[ticket] = held
            new_orders[ticket] = order
            if held == 1:
                self.rt.log.info("vanished_order_held", master_ticket=ticket, note="not in history yet: still published")

    def _refresh_metrics(self, now: int) -> None:
        info = self.mt5.account_info()
        verify = getattr(self.rt, "verify_account", None)
        if info is not None and verify is not None and self.cfg is not None:  # raises WrongAccount
            verify(self.mt5, self.cfg, info)
        server_ms = self._server_time_ms()
        if server_ms:
            offset = estimate_server_offset_ms(server_ms, now)
            if abs(offset) <= MAX_OFFSET_MS:  # a stale weekend tick must not move the clock by days
                self.offset_ms = offset
        if info is not None:
            self.metrics = metrics_from_mt5(info, server_time_msc=server_ms or 0)

    def _confirm_account(self) -> None:
        """One ``account_info()`` before a change goes out (raises WrongAccount)."""
        verify = getattr(self.rt, "verify_account", None)
        if verify is None:
            return
        info = self.mt5.account_info()
        if info is not None:
            verify(self.mt5, self.cfg, info)
            self.metrics = metrics_from_mt5(info, server_time_msc=self.metrics.server_time_msc if self.metrics else 0)

    def _server_time_ms(self) -> int:
        if self.clock_symbol is None:
            symbols = self.mt5.symbols_get()
            visible = [s.name for s in symbols or () if s.visible] or [s.name for s in symbols or ()]
            self.clock_symbol = visible[0] if visible else ""
        if not self.clock_symbol:
            return 0
        tick = self.mt5.symbol_info_tick(self.clock_symbol)
        return int(tick.time_msc) if tick is not None else 0

    def record_changes(self, now: int, *, force: bool = False) -> int:
        """Write the audit record of the published changes (a ``master_change`` log line per
        position or order, one ``master_changes`` event per delta with its ``seq`` and
        ``seen_ms``, the UTC ms the poll saw it) once no change went out for
        ``CHANGE_RECORD_QUIET_MS``, when the oldest has waited ``CHANGE_RECORD_MAX_WAIT_MS``,
        or with ``force`` (the node stops). Returns how many deltas it recorded. ``now``: UTC ms."""
        if not self.unrecorded:
            return 0
        last_seen, first_seen = self.unrecorded[-1][0], self.unrecorded[0][0]
        if not force and now - last_seen < CHANGE_RECORD_QUIET_MS and now - first_seen < CHANGE_RECORD_MAX_WAIT_MS:
            return 0
        waiting, self.unrecorded = self.unrecorded, []
        for seen_ms, seq, positions, orders, new_positions, new_orders in waiting:
            changes = diff_state(positions, new_positions, orders, new_orders)
            for change in changes:
                self.rt.log.info("master_change", kind=str(change.kind), master_ticket=change.key, seq=seq, seen_ms=seen_ms)
            self.rt.event("master_changes", changes=[f"{c.kind}:{c.key}" for c in changes], seq=seq, seen_ms=seen_ms)
        return len(waiting)

    def heartbeat(self, now: int) -> None:
        if now < self._next_heartbeat:
            return
        self._next_heartbeat = now + self.heartbeat_ms
        if self.rt.last_error is None:
            self._refresh_metrics(now)
        info = {"positions": len(self.positions), "orders": len(self.orders), "seq": self.publisher.seq, "server_offset_ms": self.offset_ms,
                **bus_counters(self.rt.subscriber)}
        if self.guardian is not None:
            info["risk"] = self.guardian.status_info()
        self.rt.publish_status(self.metrics, info)

    def handle(self, msg) -> None:
        if isinstance(msg, Control):
            if msg.command == "snapshot":
                self.publisher.request_snapshot()
            elif msg.command == "stop":
                self.rt.request_stop()
            elif msg.command == "ping":
                self.heartbeat(self._next_heartbeat)


def main(rt: NodeRuntime) -> None:
    cfg = rt.load_account()
    if not rt.claim_lease():
        return
    subscriber = rt.subscribe([f"ctl.{rt.name}", "ctl.all"])
    mt5, held = rt.connect_terminal_holding(cfg)  # serves the bus meanwhile: a ctl stop ends it
    if mt5 is None:
        return
    loop = MasterLoop(rt, mt5, poll_ms=settings.MASTER_POLL_INTERVAL_MS, heartbeat_ms=settings.HEARTBEAT_INTERVAL_MS, cfg=cfg)
    executor = Executor(mt5, RetryPolicy(max_attempts=settings.ORDER_MAX_ATTEMPTS), fence=rt.fence)
    guardian, alerts = rt.start_guardian(cfg, mt5, executor)
    loop.guardian = guardian
    rt.log.info("master_started", poll_ms=settings.MASTER_POLL_INTERVAL_MS)
    for msg in held:  # what came while the terminal was connecting (snapshot requests)
        loop.handle(msg)
    try:
        backoff = 0.1
        next_poll = time.monotonic()
        while not rt.stopping:
            try:
                ok = loop.poll_once()
                loop.record_changes(utc_ms())
                loop.heartbeat(utc_ms())
                if ok:
                    guardian.tick(utc_ms())
            except LeaseLost as exc:  # another process publishes for this master now
                rt.lease_lost(str(exc))
                break
            except WrongAccount:  # never publish another account's positions as this master's
                _quietly(mt5.shutdown)
                mt5 = _reconnect(rt, loop, cfg, guardian)
                if mt5 is None:
                    return
                continue
            if ok:
                backoff = 0.1
                next_poll += loop.poll_s
            else:  # reconnect with backoff; publish nothing but the error status
                if loop.failures % 5 == 0:
                    _quietly(mt5.shutdown)
                    mt5 = _reconnect(rt, loop, cfg, guardian)
                    if mt5 is None:
                        return
                next_poll = time.monotonic() + backoff
                backoff = min(backoff * 2, 5.0)
            # wait for the next poll while serving control messages
            while not rt.stopping:
                remaining_ms = int((next_poll - time.monotonic()) * 1000)
                if remaining_ms <= 0:
                    break
                msg = subscriber.recv(timeout_ms=remaining_ms)
                if msg is not None:
                    loop.handle(msg)
            if time.monotonic() - next_poll > 1.0:  # fell far behind (suspend, slow call): resync
                next_poll = time.monotonic()
    finally:  # a change already published gets its audit record, however the loop ends
        loop.record_changes(utc_ms(), force=True)
    guardian.close(utc_ms())
    alerts.close(timeout=2)


def _reconnect(rt: NodeRuntime, loop: MasterLoop, cfg, guardian) -> Any | None:
    """The terminal again (``NodeRuntime.connect_terminal_holding``: the bus is served while
    it retries, a ctl stop ends it: None); the loop and the guardian use it, and the bus
    messages kept meanwhile are handled."""
    mt5, held = rt.connect_terminal_holding(cfg)
    if mt5 is None:
        return None
    loop.mt5 = guardian.executor.mt5 = mt5
    for msg in held:
        loop.handle(msg)
    return mt5


def _quietly(call) -> None:
    try:
        call()
    except Exception:
        pass


if __name__ == "__main__":
    run_node("master", main)
