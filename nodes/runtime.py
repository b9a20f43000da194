"""What every node process shares: arguments, logging, store, bus, terminal, heartbeat.

A node is a thin loop: this module does the plumbing so ``master.py`` and ``slave.py``
only hold their own loop. Exit codes are the contract with the launcher:
0 stopped on request, 75 restart me (config change I cannot hot-reload, or the account
lease was lost: the restart comes back as a standby), 73 another live process holds this
account's lease (started without ``--standby``), 78 my account document is invalid (do not
restart until it changes), other = crash.

Before it touches its terminal a node takes its account's lease (nodes/lease.py); after
every connect it checks that the terminal is logged into the configured account
(nodes/identity.py); while it waits on a slow store a pulse thread tells the launcher it
is alive (nodes/pulse.py).
"""
from __future__ import annotations

import argparse
import os
import socket
import sys
import threading
import time
from collections import deque
from collections.abc import Callable
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:  # `python nodes/slave.py` puts nodes/ first on sys.path, not the root
    sys.path.insert(0, str(ROOT))

from config import settings  # noqa: E402
from copier.accounts import AccountConfig, AccountConfigError, validate_account  # noqa: E402
from db import StoreUnavailable, open_store  # noqa: E402
from messaging.publisher import Publisher  # noqa: E402
from messaging.schema import Control, Event, Status  # noqa: E402
from messaging.subscriber import Subscriber  # noqa: E402
from nodes.identity import WrongAccount, check_account  # noqa: E402
from nodes.lease import AccountLease, LeaseHeld, LeaseLost, LeaseTiming, describe_holder  # noqa: E402
from nodes.notes import BUS_SILENT_HEARTBEATS, BusSilence, bus_silent_note  # noqa: E402
from nodes.pulse import STORE_WAIT, StorePulse, WatchedStore  # noqa: E402
from terminals import TerminalError, open_terminal  # noqa: E402
from utils.logging import setup_logging  # noqa: E402
from utils.process import install_stop_handlers, watch_parent  # noqa: E402

EXIT_OK = 0
EXIT_LEASE_HELD = 73
EXIT_RESTART = 75
EXIT_BAD_CONFIG = 78
WRONG_ACCOUNT_RETRY_S = 5.0
# bus messages a node keeps while it connects its terminal, for its loop once connected
HELD_WHILE_CONNECTING = 10_000


def utc_ms() -> int:
    return time.time_ns() // 1_000_000


def bus_counters(subscriber: Any) -> dict[str, int]:
    """The node's bus subscriber counters for its status info (``cli.py status``):
    ``bus_wrong_version`` = messages refused for another bus schema version (a node of an
    older or newer copyhub on the bus), ``bus_dropped`` = every refused message (malformed
    ones included). Counts since the node started; 0 before it subscribed."""
    return {"bus_wrong_version": int(getattr(subscriber, "wrong_version", 0) or 0),
            "bus_dropped": int(getattr(subscriber, "dropped", 0) or 0)}


def node_arguments(kind: str) -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog=f"nodes/{kind}.py", description=f"copyhub {kind} node")
    parser.add_argument("--name", required=True, help="account name in the store")
    parser.add_argument("--config", default=None, metavar="PATH",
                        help="settings file (read before this node's defaults; default: COPYHUB_CONFIG, else "
                             "copyhub.toml beside launcher.py)")
    parser.add_argument("--path", help="terminal64.exe path (overrides the account's path)")
    parser.add_argument("--db", default=None, help="store URL (default: COPYHUB_DATABASE_URL / settings)")
    parser.add_argument("--bus-pub", default=settings.bus_pub_endpoint, help="proxy XSUB endpoint")
    parser.add_argument("--bus-sub", default=settings.bus_sub_endpoint, help="proxy XPUB endpoint")
    parser.add_argument("--sim-endpoint", default=settings.SIM_ENDPOINT, help="simulator server for kind 'sim'")
    parser.add_argument("--parent-pid", type=int, default=None, help="exit when this process is gone")
    parser.add_argument("--log-dir", default=settings.LOG_DIR)
    parser.add_argument("--log-level", default=settings.LOG_LEVEL)
    parser.add_argument("--data-dir", default=settings.DATA_DIR, help="holds the KILL_SWITCH file")
    parser.add_argument("--host", default=socket.gethostname(),
                        help="this host's name in the fleet (the launcher's --host); recorded as the lease holder's host")
    parser.add_argument("--standby", action="store_true",
                        help="if another process holds this account's lease, wait and take over when it expires "
                             "(default: exit 73 naming the holder)")
    if kind == "slave":
        parser.add_argument("--dry-run", action="store_true", help="plan and record everything, send nothing")
    return parser


class NodeRuntime:
    """Plumbing for one node process; ``role`` is "master" or "slave"."""

    def __init__(self, role: str, args: argparse.Namespace) -> None:
        self.role = role
        self.name: str = args.name
        self.args = args
        self.pid = os.getpid()
        self.log = setup_logging(f"{role}-{self.name}", self.name, log_dir=args.log_dir, level=args.log_level,
                                 console=bool(settings.LOG_CONSOLE), max_bytes=settings.LOG_MAX_BYTES,
                                 backup_count=settings.LOG_BACKUP_COUNT)
        self.stop_event = threading.Event()
        self.exit_code = EXIT_OK
        install_stop_handlers(self.request_stop)
        watch_parent(args.parent_pid, self._orphaned)
        self.store = WatchedStore(open_store(args.db or settings.database_url), on_slow=self._store_was_slow)
        self.publisher = Publisher(args.bus_pub)
        self.subscriber: Subscriber | None = None
        self.state = "STARTING"
        self.last_error: str | None = None
        self.lease: AccountLease | None = None
        self._alerts: Any = None
        self._wrong_account: str | None = None
        self._last_store_heartbeat = 0
        self._last_info: dict[str, Any] = {}  # the info of the last heartbeat (kept by record_stopped)
        # what the operator should see beside the state (nodes/notes.py): {"config": ..., "bus": ...}
        self.notes: dict[str, str] = {}
        self._bus_silence = BusSilence(BUS_SILENT_HEARTBEATS * settings.HEARTBEAT_INTERVAL_MS)
        self.pulse = self._start_pulse()

    # ------------------------------------------------------------------ lifecycle
    def request_stop(self, code: int = EXIT_OK) -> None:
        if not self.stop_event.is_set():
            self.exit_code = code
            self.stop_event.set()

    def _orphaned(self) -> None:
        self.log.error("parent_gone", parent_pid=self.args.parent_pid)
        self.request_stop(EXIT_OK)

    @property
    def stopping(self) -> bool:
        return self.stop_event.is_set()

    def subscribe(self, topics: list[str]) -> Subscriber:
        """Subscribe to ``topics`` and to this node's own ``status.<name>``: a working bus
        echoes every heartbeat back, so silence means no proxy (nodes/notes.py)."""
        self.subscriber = Subscriber(self.args.bus_sub, [*topics, f"status.{self.name}"])
        return self.subscriber

    # ------------------------------------------------------------------ notes
    def note(self, key: str, text: str | None, *, level: str = "warning", event: str | None = None,
             alert: bool = False, **data: Any) -> None:
        """Set (``text``) or clear (None) one thing the operator should see beside the
        state. Logged and written to the audit trail once when it appears or changes
        (``event``, default ``<key>_note``) and once when it clears; ``alert``: also an
        operator alert when it appears."""
        old = self.notes.get(key)
        if text == old:
            return
        kind = event or f"{key}_note"
        if text is None:
            del self.notes[key]
            self.log.info(f"{kind}_cleared", was=old)
            self.event(f"{kind}_cleared", was=old)
            return
        self.notes[key] = text
        getattr(self.log, level)(kind, note=text, **data)
        self.event(kind, level=level, note=text, **data)
        if alert:
            self.alert(kind, text, action_taken=str(data.get("action_taken", "")))

    def config_refused(self, reason: str | None) -> None:
        """A changed account document this node cannot apply (a bad value written straight
        into the store): it keeps running on its previous settings and says so, as its
        reason in ``cli.py status``, with one event and one alert per distinct reason.
        None: the document is applicable again."""
        text = None if reason is None else f"config reload refused, running on the previous settings: {reason}"
        self.note("config", text, level="error", event="config_reload_refused", alert=True, reason=reason,
                  action_taken="running on the previous settings")

    def _check_bus(self) -> None:
        sub = self.subscriber
        if sub is None:
            return
        heard = int(getattr(sub, "received", 0) or 0) + int(getattr(sub, "dropped", 0) or 0)
        silent_s = self._bus_silence.observe(heard, utc_ms())
        if silent_s is None:
            self.note("bus", None, event="bus_silent")
        elif "bus" not in self.notes:
            self.note("bus", bus_silent_note(silent_s, self.args.bus_pub, self.args.bus_sub), event="bus_silent")

    # ------------------------------------------------------------------ store wait
    def _start_pulse(self) -> StorePulse:
        local: dict[str, Publisher] = {}

        def publish(msg: Status) -> None:  # the pulse thread's own socket, made in that thread
            if "pub" not in local:
                local["pub"] = Publisher(self.args.bus_pub)
            local["pub"].publish(msg)

        def make_status(call: str, waited_s: float) -> Status:
            return Status(node=self.name, role=self.role, state=STORE_WAIT, pid=self.pid, ts_ms=utc_ms(),
                          error=f"waiting on the store for {waited_s:.1f} s ({call})",
                          info={"store_wait_s": round(waited_s, 1), "store_call": call, "was": self.state})

        def close() -> None:
            if "pub" in local:
                local["pub"].close()

        interval = settings.HEARTBEAT_INTERVAL_MS / 1000
        return StorePulse(self.store, make_status, publish, interval_s=interval, after_s=interval, close=close).start()

    def _store_was_slow(self, call: str, waited_s: float) -> None:
        self.log.warning("store_wait_over", call=call, waited_s=round(waited_s, 1))

    # ------------------------------------------------------------------ lease
    def claim_lease(self) -> bool:
        """Hold this account's lease before anything else, or say plainly why not.

        Without ``--standby`` a lease held by another live process exits 73 naming the
        holder; with it the node waits (status STANDBY) and takes over once the lease
        expires. False when stopped while waiting.
        """
        timing = LeaseTiming(ttl_ms=settings.LEASE_TTL_MS, margin_ms=settings.LEASE_MARGIN_MS,
                             renew_every_ms=settings.HEARTBEAT_INTERVAL_MS)
        self.lease = lease = AccountLease(self.store, self.name, node=self.name, role=self.role, timing=timing,
                                          host=getattr(self.args, "host", None))
        if getattr(self.args, "standby", False):
            self.state = "STANDBY"
            said: dict[str, Any] = {}

            def on_wait(current: dict[str, Any] | None) -> None:
                holder = describe_holder(current) if current else "unknown (store unavailable)"
                self.publisher.publish(Status(node=self.name, role=self.role, state="STANDBY", pid=self.pid, ts_ms=utc_ms(),
                                              error=f"standby: lease held by {holder}",
                                              info={"standby": True, "host": lease.host, "holder": (current or {}).get("holder")}))
                if current and said.get("epoch") != current.get("epoch"):
                    said["epoch"] = current.get("epoch")
                    self.log.warning("standby_waiting_for_lease", holder=holder)

            if not lease.wait(lambda: self.stopping, on_wait, poll_s=min(1.0, settings.HEARTBEAT_INTERVAL_MS / 1000)):
                return False
        else:
            try:
                lease.acquire()
            except LeaseHeld as exc:
                reason = (f"account {self.name!r} is already traded by another process ({describe_holder(exc.lease)}); "
                          "this one sends nothing. Stop the other process, or start this one with --standby to take over "
                          "when its lease expires")
                self.log.error("lease_held_elsewhere", reason=reason, holder=(exc.lease or {}).get("holder"))
                print(f"copyhub {self.role} {self.name}: {reason}", file=sys.stderr)
                self.pulse.stop()
                self.close(release=False)
                raise SystemExit(EXIT_LEASE_HELD) from None
        assert lease.lease is not None
        self.state = "STARTING"
        self.log.info("lease_acquired", epoch=lease.epoch, host=lease.host)
        self.event("lease_acquired", epoch=lease.epoch, host=lease.host, pid=self.pid)
        return True

    def fence(self) -> None:
        """Before any order or trading record: raise LeaseLost unless this process may trade.

        Two clock reads while the lease is fresh (nodes/lease.py): no store read on the copy path.
        """
        if self.lease is not None:
            self.lease.check()

    def lease_lost(self, reason: str) -> None:
        """Stop trading at once; the launcher restarts the node, which comes back as a standby."""
        if self.stopping:
            return
        self.log.critical("lease_lost", reason=reason)
        self.event("lease_lost", level="critical", reason=reason)
        self.request_stop(EXIT_RESTART)

    # ------------------------------------------------------------------ account
    def load_account(self) -> AccountConfig:
        """Load and validate this node's account document; exit 78 naming the field if bad."""
        doc = self.store.get_account(self.name)
        if doc is None:
            self.refuse_config(f"account {self.name!r} is not in the store")
        assert doc is not None
        try:
            cfg = validate_account(
                doc,
                default_slippage=settings.DEFAULT_SLIPPAGE_TOLERANCE,
                default_magic=settings.DEFAULT_MAGIC_NUMBER,
            )
        except AccountConfigError as exc:
            self.refuse_config(str(exc))
            raise  # unreachable: refuse_config exits
        if (cfg.is_master and self.role != "master") or (cfg.is_slave and self.role != "slave"):
            self.refuse_config(f"account {self.name!r}: field 'type' is {doc.get('type')!r}, this is a {self.role} node")
        return cfg

    def read_account_doc(self) -> dict[str, Any] | None:
        try:
            return self.store.get_account(self.name)
        except StoreUnavailable as exc:
            self.log.warning("store_unavailable", error=str(exc))
            return None

    def refuse_config(self, reason: str) -> None:
        """A bad account document stops this one node, loudly, with the reason stored."""
        self.log.error("config_error", reason=reason)
        try:
            self.store.upsert_node(self.name, {"role": self.role, "pid": self.pid, "state": "CONFIG_ERROR", "reason": reason, "heartbeat_ms": utc_ms()})
            self.store.add_event("config_error", node=self.name, account=self.name, level="error", reason=reason)
        except StoreUnavailable:
            pass
        print(f"copyhub {self.role} {self.name}: {reason}", file=sys.stderr)
        self.close()
        raise SystemExit(EXIT_BAD_CONFIG)

    # ------------------------------------------------------------------ terminal
    def connect_terminal(self, cfg: AccountConfig, *, on_message: Callable[[Any], Any] | None = None) -> Any | None:
        """Open the terminal and check its account, retrying until both are right or we are stopped.

        A terminal that does not answer is retried with backoff (state TERMINAL_ERROR); one
        logged into another account is retried every few seconds (state WRONG_ACCOUNT, an
        event and an alert once): nothing is sent to it meanwhile. Between attempts the node
        keeps its heartbeat and serves its bus (``wait_serving_bus``): a ``ctl stop`` stops
        it at once, and ``on_message`` gets every other message (default: dropped).
        """
        delay = 0.5
        account: Any = cfg
        if self.args.path:
            account = {"name": cfg.name, "terminal": {"kind": "mt5", "path": self.args.path}}
        said: str | None = None
        while not self.stopping:
            try:
                mt5 = open_terminal(account, default_sim_endpoint=self.args.sim_endpoint)
            except TerminalError as exc:
                self.set_error(str(exc))
                self.log.warning("terminal_unavailable", error=str(exc), retry_in_s=delay)
                if str(exc) != said:  # in the audit trail once per distinct error, not only in the log
                    said = str(exc)
                    self.event("terminal_unavailable", level="error", error=said)
                self.wait_serving_bus(delay, on_message)
                delay = min(delay * 2, 10.0)
                if self.stopping or self._account_changed(cfg):
                    return None
                continue
            try:
                self.verify_account(mt5, cfg)
            except WrongAccount:
                _quietly(mt5.shutdown)
                self.wait_serving_bus(WRONG_ACCOUNT_RETRY_S, on_message)
                if self.stopping or self._account_changed(cfg):
                    return None
                continue
            except StoreUnavailable as exc:  # cannot read the pin: do not guess
                self.set_error(f"cannot check the account's pinned login: {exc}")
                _quietly(mt5.shutdown)
                self.wait_serving_bus(delay, on_message)
                continue
            if mt5 is None:
                continue
            self.log.info("terminal_connected")
            return mt5
        return None

    def connect_terminal_holding(self, cfg: AccountConfig) -> tuple[Any | None, list[Any]]:
        """``connect_terminal``, keeping the bus messages other than a stop that arrive
        meanwhile: the node's loop applies them, in order, once the terminal is there (as if
        they had waited on the socket: a flatten needs the terminal; a slave's mirrors get
        the masters' states). Past ``HELD_WHILE_CONNECTING`` the oldest go (a mirror then
        sees a gap and asks for a snapshot; pause, flatten and reload are also store flags)."""
        held: deque[Any] = deque(maxlen=HELD_WHILE_CONNECTING)
        mt5 = self.connect_terminal(cfg, on_message=held.append)
        return mt5, list(held) if mt5 is not None else []

    def wait_serving_bus(self, seconds: float, on_message: Callable[[Any], Any] | None = None) -> None:
        """Wait ``seconds`` (less when stopped) the way a node waits outside its loop, while
        its terminal cannot be used: a heartbeat now and every heartbeat interval (status,
        node document, lease), and the subscriber read all along. So a ``ctl stop`` (the
        launcher's shutdown) stops the node at once instead of after the retry, and the
        node hears the echo of its own heartbeat: a silent-bus note then means a silent bus,
        not a node that was not listening (nodes/notes.py). Every other message but that
        echo goes to ``on_message`` (``connect_terminal_holding`` keeps them for the loop),
        else it is dropped."""
        sub = self.subscriber
        interval = settings.HEARTBEAT_INTERVAL_MS / 1000
        deadline = time.monotonic() + seconds
        self._serve_bus(sub, on_message, 0)  # what queued while the terminal call ran counts first
        next_beat = time.monotonic()
        while not self.stopping:
            now = time.monotonic()
            if now >= next_beat:
                self.publish_status()
                next_beat = now + interval
            if now >= deadline or self.stopping:
                return
            timeout = min(deadline, next_beat) - now
            if sub is None:
                self.stop_event.wait(timeout)
            else:
                self._serve_bus(sub, on_message, max(1, int(timeout * 1000)))

    def _serve_bus(self, sub: Any, on_message: Callable[[Any], Any] | None, timeout_ms: int) -> None:
        """Read what the subscriber has (the first message waited for up to ``timeout_ms``)."""
        if sub is None:
            return
        msg = sub.recv(timeout_ms=timeout_ms)
        for _ in range(10_000):  # bounded: a flood must not keep the heartbeat from going out
            if msg is None:
                return
            if isinstance(msg, Control) and msg.command == "stop":
                self.log.info("control", command=msg.command, sender=msg.sender, while_state=self.state)
                self.request_stop(EXIT_OK)
                return
            if on_message is not None and not isinstance(msg, Status):  # its own echo only counts
                on_message(msg)
            msg = sub.recv(timeout_ms=0)

    def _account_changed(self, cfg: AccountConfig) -> bool:
        """While the terminal cannot be used: has the operator changed or disabled this
        account in the store? Then the node stops (disabled: exit 0; changed: exit 75, the
        launcher starts it again on the new document) instead of retrying the old settings.
        A document that does not validate is left to the reload's refusal (no stop)."""
        doc = self.read_account_doc()
        if doc is None:
            return False
        if not doc.get("enabled", True):
            self.log.warning("account_disabled_stopping")
            self.request_stop(EXIT_OK)
            return True
        try:
            new = validate_account(doc, default_slippage=settings.DEFAULT_SLIPPAGE_TOLERANCE,
                                   default_magic=settings.DEFAULT_MAGIC_NUMBER)
        except AccountConfigError:
            return False
        changed = sorted(f for f in cfg.changed_fields(new) if f != "dry_run")
        if not changed:
            return False
        self.log.warning("config_changed_restart", fields=changed, note="the terminal was not usable with the old settings")
        self.event("config_changed_restart", fields=changed)
        self.request_stop(EXIT_RESTART)
        return True

    def verify_account(self, mt5: Any, cfg: AccountConfig, info: Any = None) -> None:
        """Raise WrongAccount unless the terminal is logged into ``cfg``'s account.

        ``info``: an ``account_info()`` record already read (the loops pass theirs, so the
        check costs no terminal call); None reads one. A terminal that cannot say
        (``None``) is a terminal error, not a match.
        """
        info = mt5.account_info() if info is None else info
        if info is None:
            code, text = mt5.last_error()
            self.set_error(f"terminal error ({code}, {text}) while checking its account")
            raise WrongAccount(f"account {self.name!r}: the terminal cannot say which account it is logged into ({code}, {text})")
        try:
            note = check_account(self.store, self.name, cfg.terminal, info)
        except WrongAccount as exc:
            self._say_wrong_account(str(exc), exc.login, exc.server)
            raise
        if note:
            self.log.warning("login_pinned", login=int(info.login), server=str(info.server))
            self.event("login_pinned", level="warning", login=int(info.login), server=str(info.server))
        if self._wrong_account:
            self.log.info("right_account_again", login=int(info.login))
            self.event("right_account_again", login=int(info.login))
            self._wrong_account = None
            self.set_error(None)

    def _say_wrong_account(self, reason: str, login: int | None, server: str | None) -> None:
        first = self._wrong_account != reason
        self._wrong_account = reason
        self.last_error = reason
        self.state = "WRONG_ACCOUNT"
        self._terminal_account = {"login": login, "server": server}
        if not first:
            return
        self.log.critical("wrong_account", reason=reason, terminal_login=login, terminal_server=server)
        self.event("wrong_account", level="critical", reason=reason, terminal_login=login, terminal_server=server)
        self.alert("wrong_account", reason, action_taken="trading stopped on this node")

    @property
    def wrong_account(self) -> str | None:
        return self._wrong_account

    @property
    def alerts(self) -> Any:
        """The node's alert dispatcher (built on first use; a bad alert setting is a config error)."""
        if self._alerts is None:
            from alerts import AlertConfigError, build_dispatcher_from_env

            try:
                self._alerts = build_dispatcher_from_env(self.log)
            except AlertConfigError as exc:
                self.refuse_config(str(exc))
        return self._alerts

    def alert(self, rule: str, message: str, *, action_taken: str = "") -> None:
        """An operator alert (phone, webhook) for this node's account; never raises."""
        from alerts import Alert

        try:
            self.alerts.send(Alert(account=self.name, rule=rule, level="critical", action_taken=action_taken,
                                   message=message, node=f"{self.role}-{self.name}"))
        except Exception as exc:
            self.log.warning("alert_not_sent", rule=rule, error=str(exc))

    # ------------------------------------------------------------------ reporting
    def set_error(self, error: str | None) -> None:
        if self._wrong_account:  # stays visible until the terminal is on the right account
            return
        self.last_error = error
        self.state = "TERMINAL_ERROR" if error else "RUNNING"

    def publish_status(self, metrics: Any = None, info: dict[str, Any] | None = None) -> None:
        """Heartbeat: status on the bus, the node document in the store, the lease renewed."""
        now = utc_ms()
        self._check_bus()
        info = dict(info or {})
        if self.lease is not None:
            info["lease"] = self.lease.info()
        if self._wrong_account:
            info["terminal_account"] = getattr(self, "_terminal_account", None)
        note = "; ".join(self.notes[k] for k in sorted(self.notes)) or None
        # the reason the operator reads: the node's own error first (a terminal that cannot be
        # opened, a wrong account), then its notes. ``info.note`` carries the same text: it is
        # what the launcher shows as the node's reason while it runs (supervisor_reason)
        reason = "; ".join(x for x in (self.last_error, note) if x) or None
        if reason:
            info["note"] = reason
        self._last_info = info
        status = Status(node=self.name, role=self.role, state=self.state, pid=self.pid, ts_ms=now, account=metrics, error=self.last_error, info=info)
        self.publisher.publish(status)
        if now - self._last_store_heartbeat >= 1000:
            self._last_store_heartbeat = now
            fields = {"role": self.role, "pid": self.pid, "state": self.state, "heartbeat_ms": now, "error": self.last_error, "info": info, "reason": reason}
            if metrics is not None:
                fields["account"] = metrics.to_dict()
            try:
                self.store.upsert_node(self.name, fields)
            except StoreUnavailable as exc:
                self.log.warning("store_unavailable", error=str(exc))
        self.renew_lease()

    def record_stopped(self) -> None:
        """A clean stop: the node document says STOPPED, with no reason. The error or note
        of the running node (a terminal that would not open, a silent bus) is not why it
        stopped, and ``cli.py status`` must not go on showing it. Written only while this
        process holds the account's lease (fresh): the document of a standby, or of a node
        that lost its lease, belongs to the holder. Never raises."""
        self.state = "STOPPED"
        if self.lease is None or not self.lease.held:
            return
        info = {k: v for k, v in self._last_info.items() if k != "note"}
        try:
            self.store.upsert_node(self.name, {"state": "STOPPED", "reason": None, "error": None, "info": info})
        except StoreUnavailable as exc:
            self.log.warning("store_unavailable", error=str(exc))

    def renew_lease(self) -> None:
        """With the heartbeat; a store that refuses means another holder: stop trading."""
        if self.lease is None or self.stopping:
            return
        try:
            if not self.lease.renew():
                self.lease_lost(self.lease.lost or "lease lost")
        except StoreUnavailable as exc:
            self.log.warning("lease_not_renewed", error=str(exc), valid_s=self.lease.info()["valid_s"])

    def event(self, kind: str, *, level: str = "info", **data: Any) -> None:
        """Audit trail: the store (durable) and the bus (live). Never raises."""
        try:
            self.store.add_event(kind, node=self.name, account=self.name, level=level, **data)
        except StoreUnavailable as exc:
            self.log.warning("event_not_stored", kind=kind, error=str(exc))
        try:
            self.publisher.publish(Event(node=self.name, ts_ms=utc_ms(), event=kind, level=level, data=_jsonable(data)))
        except Exception as exc:  # the bus must never break the trading loop
            self.log.warning("event_not_published", kind=kind, error=str(exc))

    def start_guardian(self, cfg: AccountConfig, mt5: Any, executor: Any) -> tuple[Any, Any]:
        """Alerts and the risk guardian of this node; a bad ``risk`` or alert setting is a config error."""
        from copier.risk import RiskConfigError
        from monitoring.guardian import Guardian

        alerts = self.alerts
        guardian = Guardian(self.name, self.role, cfg.risk, mt5, self.store, log=self.log, event=self.event, alerts=alerts,
                            eval_interval_ms=settings.RISK_EVAL_INTERVAL_MS, snapshot_interval_ms=settings.SNAPSHOT_INTERVAL_MS,
                            executor=executor, magic=cfg.magic, close_deviation=max(200, cfg.slippage_tolerance))
        try:
            guardian.start(utc_ms())
        except RiskConfigError as exc:
            alerts.close(timeout=1)
            self.refuse_config(f"account {self.name!r}: {exc}")
        return guardian, alerts

    def close(self, *, release: bool = True) -> None:
        if release and self.lease is not None:
            self.lease.release()
        self.pulse.stop()
        for closer in (getattr(self.subscriber, "close", None), self.publisher.close, self.store.close):
            if closer is None:
                continue
            try:
                closer()
            except Exception:
                pass


def _quietly(call: Callable[[], Any]) -> None:
    try:
        call()
    except Exception:
        pass


def _jsonable(data: dict[str, Any]) -> dict[str, Any]:
    out = {}
    for k, v in data.items():
        if isinstance(v, (str, int, float, bool)) or v is None:
            out[k] = v
        elif isinstance(v, dict):
            out[k] = _jsonable(v)
        elif isinstance(v, (list, tuple)):
            out[k] = [x if isinstance(x, (str, int, float, bool)) or x is None else str(x) for x in v]
        else:
            out[k] = str(v)
    return out


def run_node(role: str, main: Callable[[NodeRuntime], None]) -> None:
    """Entry point shared by nodes: parse args, build the runtime, run, exit with its code."""
    from utils.console import safe_console

    safe_console()  # a reason naming a non-ASCII terminal path must not crash a cp1252 stderr
    args = node_arguments(role).parse_args()
    try:
        runtime = NodeRuntime(role, args)
    except StoreUnavailable as exc:
        print(f"copyhub {role} {args.name}: store unavailable: {exc}", file=sys.stderr)
        raise SystemExit(1) from None
    try:
        main(runtime)
    except LeaseLost as exc:  # raised where a loop did not catch it: never trade on
        runtime.lease_lost(str(exc))
    except SystemExit:
        raise
    except Exception:
        runtime.log.exception("node_crashed")
        runtime.close()
        raise SystemExit(1) from None
    runtime.record_stopped()
    runtime.log.info("node_stopped", exit_code=runtime.exit_code)
    runtime.close()
    raise SystemExit(runtime.exit_code)
