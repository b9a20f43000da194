"""copyhub operator CLI: look at the fleet and steer it.

    python cli.py status
    python cli.py accounts list | show NAME | add JSON|@FILE|- | set NAME KEY=VALUE... |
                           enable NAME | disable NAME | remove NAME [--yes]
    python cli.py links SLAVE [--status OPEN]
    python cli.py events [--follow] [--account NAME] [--since 10m|ISO] [--kind KIND]
    python cli.py pause NAME | resume NAME | flatten NAME [--yes]
    python cli.py kill-switch on|off
    python cli.py reset NAME
    python cli.py release NAME [--yes]

Every command takes ``--json``; the store comes from ``--db``, else the settings
(``--config``/COPYHUB_CONFIG settings file, COPYHUB_DATABASE_URL, default). Without
``--db``, when the settings' store does not exist and a demo started with this home runs
(``launcher.py --demo``), every command uses the demo's store and says so on stderr. Only
``accounts add`` and ``keys create``/``keys allow`` create a store (``CREATES_STORE``):
any other command on a SQLite path that holds no store is an error naming the path; it
never creates a new, empty store.
Account edits are validated with the same rules the nodes load with, and refused with
the error. Every operator command is written to the audit trail (kind
``operator_command``). Commands that steer nodes persist a flag (seen by a node that is
not running when it starts) and publish on the ``ctl`` topics (seen at once by running
nodes). Errors: one line on stderr, exit code 2. See docs/operations.md.
"""
from __future__ import annotations

import argparse
import json
import socket
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any, NoReturn

ROOT = Path(__file__).resolve().parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from config import settings, settings_for  # noqa: E402
from copier.accounts import (  # noqa: E402
    MASTER,
    SLAVE,
    AccountConfigError,
    is_master_doc,
    normalised_account,
    terminal_conflicts,
    validate_account,
    validate_accounts,
)
from copier.held import recorded_held  # noqa: E402
from db import DuplicateAccount, StoreError, mask_url, now_ms, open_store  # noqa: E402
from db.urls import missing_store  # noqa: E402
from fleet import controls  # noqa: E402
from fleet import keys as bus_keys  # noqa: E402
from fleet.demo import last_demo  # noqa: E402
from fleet.operator import (  # noqa: E402
    KILL_SWITCH,
    RESET_PREFIX,
    apply_assignments,
    map_assignments,
    parse_assignment,
    parse_since,
    top_level_changes,
)
from fleet.report import risk_cause, sizing_presented, status_row, status_table  # noqa: E402
from fleet.stale import clear_stale_node  # noqa: E402
from messaging.security import is_curve_key  # noqa: E402
from monitoring.headroom import risk_rows, risk_table  # noqa: E402
from monitoring.reports import FORMATS, live_days, load_reports, render, request_live_reports  # noqa: E402
from nodes.identity import pin_key  # noqa: E402
from nodes.lease import describe_holder  # noqa: E402
from utils.console import safe_console  # noqa: E402
from utils.table import format_table  # noqa: E402
from utils.text import SAVE_AS_UTF8, decode_text  # noqa: E402

EXIT_OK, EXIT_ERROR = 0, 2
SENDER = "cli"
# Commands that only read (command_name): on a missing store they say there is nothing to show.
READ_ONLY = frozenset({"status", "links", "events", "report", "sizing", "symbols", "accounts list", "accounts show",
                       "keys list", "keys show"})
# The only commands that may create a store where the settings (or --db) say: they set a
# fleet up (README "Windows": accounts add before the first launcher run; keys on a new bus
# host). Every other command acts on what a store holds (accounts, flags, keys): on a
# SQLite path with no store it fails naming the path instead of creating an empty one.
CREATES_STORE = frozenset({"accounts add", "keys create", "keys allow"})
SUBSCRIPTION_WAIT_S = 0.5


class CliError(Exception):
    """Printed as one line; exit code 2."""


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> NoReturn:
        self.exit(EXIT_ERROR, f"{self.prog}: error: {message}\n")

    def _parse_optional(self, arg_string: str) -> Any:
        # a CURVE public key may begin with "-" (it is in the Z85 alphabet): it is a value
        # ("keys allow -x…"), not an option; argparse would otherwise say "KEY is required"
        if arg_string.startswith("-") and is_curve_key(arg_string):
            return None
        return super()._parse_optional(arg_string)


# =========================================================================== output
def emit(args: argparse.Namespace, obj: Any, text: str) -> None:
    if args.json:
        print(json.dumps(obj, default=str, separators=(",", ":")), flush=True)
    else:
        print(text, flush=True)


def iso(ms: Any) -> str:
    if not isinstance(ms, (int, float)):
        return "-"
    return time.strftime("%Y-%m-%d %H:%M:%S", time.gmtime(ms / 1000)) + f".{int(ms) % 1000:03d}Z"


# =========================================================================== helpers
def audit(store: Any, command: str, account: str | None = None, **data: Any) -> None:
    """Who did what, from where: every operator command lands in the events collection."""
    controls.audit(store, command, account, origin=SENDER, **data)


def store_label(store: Any) -> str:
    """The store's URL with any password masked (how the user can tell which store it was)."""
    label = getattr(store, "label", None)
    return mask_url(str(label)) if label else type(store).__name__


def require_account(store: Any, name: str) -> dict[str, Any]:
    """The account document; CliError naming the store looked in and the accounts it holds."""
    doc = store.get_account(name)
    if doc is None:
        names = [d["name"] for d in store.list_accounts()]
        hint = ("" if names else
                "; is this the fleet's store? (--db, --config or COPYHUB_CONFIG name another)")
        raise CliError(f"no account named {name!r} in the store {store_label(store)} "
                       f"(known: {', '.join(names) or 'none'}){hint}")
    return doc


def validated(doc: dict[str, Any], store: Any) -> None:
    """The loader's rules for one document, and one terminal per enabled account across the fleet."""
    try:
        validate_account(doc, default_slippage=settings.DEFAULT_SLIPPAGE_TOLERANCE,
                         default_magic=settings.DEFAULT_MAGIC_NUMBER)
    except AccountConfigError as exc:
        raise CliError(f"refused: {exc}") from None
    others = [d for d in store.list_accounts() if d.get("name") != doc.get("name")]
    conflict = terminal_conflicts([*others, doc], default_sim_endpoint=settings.SIM_ENDPOINT).get(doc["name"])
    if conflict:
        raise CliError(f"refused: {conflict}")


def bus_reachable(endpoint: str, timeout_s: float) -> bool:
    """Is something listening at the proxy's ``tcp://host:port``? (PUB never says.)"""
    if not endpoint.startswith("tcp://"):
        return True
    host, _, port = endpoint[len("tcp://"):].rpartition(":")
    try:
        with socket.create_connection((host.strip("[]"), int(port)), timeout=timeout_s):
            return True
    except (OSError, ValueError):
        return False


def publish_ctl(args: argparse.Namespace, target: str, command: str, **ctl_args: Any) -> bool:
    """Send one ``ctl`` message through the proxy; False if the bus is not reachable.

    A fresh PUB socket drops messages until the proxy has passed it the subscriptions
    (a few ms on loopback), so give it a moment before sending. Delivery is still best
    effort: the persisted flag is what makes a command stick."""
    from messaging.publisher import Publisher
    from messaging.schema import Control

    if not bus_reachable(args.bus_pub, args.bus_timeout):
        return False
    pub = Publisher(args.bus_pub)
    try:
        time.sleep(SUBSCRIPTION_WAIT_S)
        pub.publish(Control(target=target, command=command, sender=SENDER, ts_ms=now_ms(), args=ctl_args))
        return True
    finally:
        pub.close(linger_ms=1000)


def bus_note(sent: bool, topic: str) -> str:
    return (f"published {topic} on the bus" if sent
            else f"bus not reachable at the proxy ({topic} not sent); running nodes pick the flag up from the store")


# =========================================================================== commands
def cmd_status(args: argparse.Namespace, store: Any) -> int:
    now = now_ms()
    flags = store.list_flags()
    docs = store.list_nodes()
    leases = {lease["account"]: lease for lease in store.list_leases()}
    standby: dict[str, list[str]] = {}
    for d in docs:  # each launcher lists the standby processes it keeps
        if d.get("kind") == "launcher":
            for account in d.get("standby") or ():
                standby.setdefault(account, []).append(str(d.get("launcher_host")))
    rows = [status_row(d, now_ms=now, flags=flags, lease=leases.get(d.get("name")), standby=standby.get(d.get("name")))
            for d in docs]
    extra = []
    if flags.get(KILL_SWITCH):
        extra.append("KILL SWITCH ON: no new opens anywhere (python cli.py kill-switch off)")
    if not rows:
        extra.append("no nodes recorded yet (is the launcher running against this store?)")
    risk = risk_rows(docs)
    if risk:  # why each account is at its level (a WARN from the margin watch has no money column)
        accounts = {a.get("name"): a for a in store.list_accounts()}
        infos = {d.get("name"): d.get("info") for d in docs if isinstance(d.get("info"), dict)}
        for r in risk:
            info_risk = (infos.get(r["account"]) or {}).get("risk")
            r["cause"] = risk_cause(info_risk if isinstance(info_risk, dict) else {},
                                    accounts.get(r["account"])) or None
    risk_text = risk_table(risk) if risk else ""
    text = status_table(rows, now_ms=now) + ("\n\n" + risk_text if risk else "") + (
        "\n" + "\n".join(extra) if extra else "")
    emit(args, {"nodes": rows, "risk": risk, "kill_switch": bool(flags.get(KILL_SWITCH)), "ts_ms": now}, text)
    return EXIT_OK


def cmd_accounts(args: argparse.Namespace, store: Any) -> int:
    return {"list": acc_list, "show": acc_show, "add": acc_add, "set": acc_set, "enable": acc_enable,
            "disable": acc_disable, "remove": acc_remove, "pin": acc_pin}[args.action](args, store)


def fleet_problems(docs: list[dict[str, Any]]) -> dict[str, list[str]]:
    """Account name -> what the fleet's rules say against it, as setup_db.py --check and the
    launcher apply them: one document's own fields, and what only the fleet shows (follows
    naming no master, one terminal twice, tag hashes)."""
    _configs, errors = validate_accounts(docs, default_slippage=settings.DEFAULT_SLIPPAGE_TOLERANCE,
                                         default_magic=settings.DEFAULT_MAGIC_NUMBER,
                                         default_sim_endpoint=settings.SIM_ENDPOINT)
    problems: dict[str, list[str]] = {}
    for exc in errors:
        problems.setdefault(str(exc.account), []).append(str(exc))
    return problems


def warn_fleet_problems(store: Any, name: str) -> list[str]:
    """After an add or a change: say on stderr what the fleet's rules still hold against
    ``name`` (e.g. it follows a master not added yet). Not refused: the other account may
    come next; the launcher and ``setup_db.py --check`` report it until it is fixed."""
    found = fleet_problems(store.list_accounts()).get(name, [])
    for text in found:
        print(f"cli: warning: {text} (setup_db.py --check and the launcher report this until it is fixed)",
              file=sys.stderr)
    return found


def acc_list(args: argparse.Namespace, store: Any) -> int:
    docs = store.list_accounts()
    problems = fleet_problems(docs)
    rows = []
    for d in docs:
        found = list(problems.get(str(d.get("name")), []))
        typ = d.get("type")
        if isinstance(typ, str) and typ != typ.upper() and typ.upper() in (MASTER, SLAVE):
            # stored before add/set normalised it; code comparing the stored type sees no MASTER
            found.append(f"type stored as {typ!r}: python cli.py accounts set {d.get('name')} type={typ.upper()}")
        problem = "; ".join(found)
        terminal = d.get("terminal") or ({"kind": "mt5", "path": d["path"]} if d.get("path") else {})
        where = terminal.get("login") or terminal.get("path") or ""
        rows.append({"name": d.get("name"), "type": d.get("type"), "enabled": d.get("enabled", True),
                     "host": d.get("host"), "terminal": f"{terminal.get('kind', '?')}:{where}", "problem": problem})
    text = format_table(["NAME", "TYPE", "ENABLED", "HOST", "TERMINAL", "PROBLEM"],
                        [[r["name"], r["type"], "yes" if r["enabled"] is True else str(r["enabled"]).lower(),
                          r["host"] or "any", r["terminal"], r["problem"]] for r in rows])
    emit(args, {"accounts": rows}, text if rows else "no accounts (python setup_db.py --sample or cli.py accounts add)")
    return EXIT_OK


def acc_show(args: argparse.Namespace, store: Any) -> int:
    doc = require_account(store, args.name)
    pin = store.get_flag(pin_key(args.name))
    lease = store.get_lease(args.name)
    extra = {"pinned_login": pin, "lease": lease}
    text = json.dumps(doc, indent=2, default=str)
    if pin:
        text += f"\npinned login: {pin.get('login')} on {pin.get('server')!r} ({pin.get('by', '')})"
    if lease:
        text += f"\nlease: {describe_holder(lease)}"
    emit(args, {**doc, "_copyhub": extra}, text)
    return EXIT_OK


def acc_pin(args: argparse.Namespace, store: Any) -> int:
    """Accept the login a path-only account's terminal now reports (or the one given), or clear the pin.

    A node that refused to trade because its terminal changed login (state WRONG_ACCOUNT)
    reports that login in its status; ``accounts pin NAME`` accepts it.
    """
    doc = require_account(store, args.name)
    if (doc.get("terminal") or {}).get("login") is not None:
        raise CliError(f"account {args.name!r} names its login in the document (terminal.login); "
                       "change that with accounts set instead of pinning")
    key = pin_key(args.name)
    if args.clear:
        store.delete_flag(key)
        audit(store, "accounts pin --clear", args.name)
        emit(args, {"account": args.name, "pin": None}, f"pin cleared: {args.name} pins the next login its terminal reports")
        return EXIT_OK
    login, server = args.login, args.server
    if login is None:
        reported = ((store.get_node(args.name) or {}).get("info") or {}).get("terminal_account") or {}
        login, server = reported.get("login"), server or reported.get("server")
        if login is None:
            raise CliError(f"no login reported by {args.name}'s node (it is not in WRONG_ACCOUNT); give --login N")
    pin = {"login": int(login), "server": server or "", "since_ms": now_ms(), "by": f"operator ({SENDER})"}
    store.set_flag(key, pin)
    audit(store, "accounts pin", args.name, login=int(login), server=server or "")
    emit(args, {"account": args.name, "pin": pin},
         f"{args.name} now trades login {login}{f' on {server!r}' if server else ''}; its node resumes within seconds")
    return EXIT_OK


def decode_document(data: bytes, where: str) -> str:
    """The text of a JSON file as Windows editors and shells write it: UTF-8 with or without
    a byte-order mark (Notepad's "UTF-8 with BOM"), or UTF-16 with its BOM (what Windows
    PowerShell 5.1's ``>`` and ``Out-File`` write). CliError for anything else."""
    try:
        return decode_text(data)
    except UnicodeDecodeError as exc:
        raise CliError(f"{where} is not UTF-8 or UTF-16 text (byte {exc.start}): {SAVE_AS_UTF8}") from None


def _read_doc(source: str) -> dict[str, Any]:
    """An account document from JSON text, a file (``@path`` or a path) or ``-`` (stdin)."""
    if source == "-":
        text = sys.stdin.read().lstrip("\ufeff")
    elif source.startswith("@") or (not source.lstrip().startswith("{") and Path(source).is_file()):
        path = Path(source[1:] if source.startswith("@") else source)
        try:
            text = decode_document(path.read_bytes(), str(path))
        except OSError as exc:
            raise CliError(f"cannot read {path}: {exc.strerror}") from None
    else:
        text = source
    try:
        doc = json.loads(text)
    except ValueError as exc:
        if text is source and not source.lstrip().startswith(("{", "[")) and source.lower().endswith(".json"):
            raise CliError(f"no such file: {source} (a file path, @path, - for standard input, or the JSON itself)") from None
        raise CliError(f"not a JSON document: {exc}") from None
    if not isinstance(doc, dict):
        raise CliError("the account document must be a JSON object")
    return doc


def acc_add(args: argparse.Namespace, store: Any) -> int:
    doc = normalised_account(_read_doc(args.doc))  # "type": "slave" is stored as "SLAVE"
    validated(doc, store)
    try:
        store.add_account(doc)
    except DuplicateAccount:
        raise CliError(f"account {doc['name']!r} already exists (use accounts set to change it)") from None
    audit(store, "accounts add", doc["name"])
    clear_stale_node(store, doc["name"])  # a node that exited 78 before the account existed
    warnings = warn_fleet_problems(store, doc["name"])
    emit(args, {"added": doc["name"], "warnings": warnings}, f"added account {doc['name']}")
    return EXIT_OK


def _update(args: argparse.Namespace, store: Any, name: str, new: dict[str, Any], command: str, **data: Any) -> int:
    old = require_account(store, name)
    new = normalised_account(new)  # one spelling of enum-like fields (an old lower-case type too)
    validated(new, store)
    sets, unsets = top_level_changes(old, new)
    changed = False
    if sets:
        changed |= store.update_account(name, sets)
    if unsets:
        changed |= store.unset_account_fields(name, unsets)
    audit(store, command, name, changed=changed, **data)
    if changed:
        clear_stale_node(store, name)  # a CONFIG_ERROR its node wrote about the old document
    what = "changed" if changed else "unchanged (same values)"
    warnings = warn_fleet_problems(store, name)
    emit(args, {"account": name, "changed": changed, "set": sets, "unset": unsets, "warnings": warnings},
         f"account {name} {what}")
    return EXIT_OK


def acc_set(args: argparse.Namespace, store: Any) -> int:
    old = require_account(store, args.name)
    try:
        assignments = [parse_assignment(a) for a in args.assignments]
        new = apply_assignments(old, assignments)
    except ValueError as exc:
        raise CliError(str(exc)) from None
    return _update(args, store, args.name, new, "accounts set", assignments=args.assignments)


def acc_enable(args: argparse.Namespace, store: Any) -> int:
    return _update(args, store, args.name, {**require_account(store, args.name), "enabled": True}, "accounts enable")


def acc_disable(args: argparse.Namespace, store: Any) -> int:
    return _update(args, store, args.name, {**require_account(store, args.name), "enabled": False}, "accounts disable")


def confirm(args: argparse.Namespace, question: str) -> None:
    if args.yes:
        return
    if not sys.stdin.isatty():
        raise CliError(f"{question} -- refusing without a terminal; add --yes")
    answer = input(f"{question} [y/N] ").strip().lower()
    if answer not in ("y", "yes"):
        raise CliError("cancelled")


def acc_remove(args: argparse.Namespace, store: Any) -> int:
    require_account(store, args.name)
    confirm(args, f"remove account {args.name} (its node stops; trade history stays)?")
    removed = store.remove_account(args.name)
    audit(store, "accounts remove", args.name, removed=removed)
    emit(args, {"removed": args.name}, f"removed account {args.name}")
    return EXIT_OK


def cmd_links(args: argparse.Namespace, store: Any) -> int:
    require_account(store, args.slave)
    trades = store.list_trades(slave_name=args.slave, status=args.status or None)
    if args.limit:
        trades = trades[-args.limit:]
    rows = [[t.get("master_name"), t.get("master_ticket"), t.get("slave_ticket") or "-", t.get("symbol") or "-",
             t.get("direction") or t.get("side") or "-", _held(t), _first(t, "slave_volume"),
             t.get("status"), iso(t.get("created_ms")),
             f"{t['latency_ms']:.1f}" if isinstance(t.get("latency_ms"), (int, float)) else "-",
             # REASON is the last column: never cut (the actionable part comes last)
             (t.get("retry_reason") if t.get("status") == "PENDING" else "") or t.get("skip_reason") or t.get("reason")
             or t.get("error") or ""] for t in trades]
    text = format_table(["MASTER", "M.TICKET", "S.TICKET", "SYMBOL", "DIR", "HELD", "OPENED", "STATUS", "CREATED",
                         "LAT ms", "REASON"], rows) if rows else f"no links for {args.slave}"
    emit(args, {"slave": args.slave, "links": trades}, text)
    return EXIT_OK


MAX_STEP_DECIMALS = 4  # no broker's volume step is finer than 0.0001 lots


def _grid_decimals(value: Any) -> int | None:
    """How many decimals ``value`` (lots) needs when it lies on a volume-step grid (0..4),
    else None (an unrounded share, not a traded volume)."""
    if not isinstance(value, (int, float)) or isinstance(value, bool):
        return None
    for decimals in range(MAX_STEP_DECIMALS + 1):
        if abs(value - round(value, decimals)) < 1e-9:
            return decimals
    return None


def _held(doc: dict[str, Any]) -> Any:
    """HELD: the lots the copy holds NOW, or ``-`` when it holds nothing.

    Only an OPEN position link holds lots: its ``held_volume`` (links written before that
    field: the opening ``slave_volume``; copier/held.py). SKIPPED and FAILED links never
    held any, a PENDING one is not filled (yet, or again after a flip), an OPEN pending-order
    link is an order (no lots), a CLOSED one holds none any more (its record keeps what it
    held last: ``--json``). On a netting account ``held_volume`` is the copy's share of the
    one net position (the shares of a symbol's copies add up to it), not a traded volume:
    it is rounded for display to 2 decimals, or to as many as the link's traded volumes
    (``slave_volume``, a hedging ``held_volume``) show the symbol's volume step needs
    (0.001-lot steps: 3). ``--json`` shows the stored values unchanged."""
    if doc.get("status") != "OPEN" or doc.get("kind") == "order":
        return "-"
    held = recorded_held(doc)
    if held is None or held <= 0:
        return "-"
    decimals = max([2, *(d for d in (_grid_decimals(held), _grid_decimals(doc.get("slave_volume"))) if d is not None)])
    return round(held, decimals)


def _first(doc: dict[str, Any], *keys: str) -> Any:
    for key in keys:
        if doc.get(key) is not None:
            return doc[key]
    return "-"


EVENT_DATA_WIDTH = 140  # characters of the DATA column; --json shows every field
EVENT_DATA_FIRST = ("reason", "error", "cause")  # shown first: why a copy was skipped, failed or closed


def event_brief(data: dict[str, Any], width: int = EVENT_DATA_WIDTH) -> str:
    """An event's data as ``key=value`` pairs within ``width`` characters, the why
    (``EVENT_DATA_FIRST``) first, then the rest in their order.

    Whole pairs only: a pair that does not fit (and every one after it) is left out and
    counted (``… +N more, --json``), so no value is ever shown cut (a ticket or reason
    cut mid-value reads as a different one). A first pair longer than ``width`` is shown
    cut with ``…`` so the line is never empty.
    """
    first = [k for k in EVENT_DATA_FIRST if data.get(k) is not None]
    pairs = [f"{k}={data[k]}" for k in first] + [f"{k}={v}" for k, v in data.items() if v is not None and k not in first]
    shown: list[str] = []
    used = 0
    for i, pair in enumerate(pairs):
        left = len(pairs) - i - 1
        tail = len(f" … +{left} more, --json") if left else 0
        if used + len(pair) + (1 if shown else 0) + tail <= width:
            shown.append(pair)
            used += len(pair) + (1 if len(shown) > 1 else 0)
            continue
        if not shown:
            shown.append(pair[: max(1, width - 1 - len(f" … +{left} more, --json"))] + "…")
            left = len(pairs) - 1
        else:
            left = len(pairs) - len(shown)
        return " ".join(shown) + (f" … +{left} more, --json" if left else "")
    return " ".join(shown)


def _event_line(e: dict[str, Any]) -> list[Any]:
    return [e.get("id"), iso(e.get("ts_ms")), e.get("level"), e.get("node") or "-", e.get("account") or "-",
            e.get("kind"), event_brief(e.get("data") or {})]


EVENT_HEADERS = ["ID", "TIME (UTC)", "LEVEL", "NODE", "ACCOUNT", "KIND", "DATA"]


def cmd_events(args: argparse.Namespace, store: Any) -> int:
    try:
        since = parse_since(args.since, now_ms()) if args.since else None
    except ValueError as exc:
        raise CliError(str(exc)) from None
    events = store.list_events(since_ms=since, account=args.account, kind=args.kind, limit=args.limit, tail=True)
    if args.json:
        for e in events:
            print(json.dumps(e, default=str, separators=(",", ":")), flush=True)
    else:
        print(format_table(EVENT_HEADERS, [_event_line(e) for e in events]) if events else "no events", flush=True)
    if not args.follow:
        return EXIT_OK
    last = events[-1]["id"] if events else None
    try:
        while True:
            time.sleep(1.0)
            new = store.list_events(since_ms=since, account=args.account, kind=args.kind, after_id=last, limit=1000)
            for e in new:
                if args.json:
                    print(json.dumps(e, default=str, separators=(",", ":")), flush=True)
                else:
                    print("  ".join(str(c) for c in _event_line(e)), flush=True)
                last = e["id"]
    except KeyboardInterrupt:
        return EXIT_OK


def _ctl_publisher(args: argparse.Namespace):
    """``publish(target, command, **args) -> bool`` for fleet.controls: one fresh socket per message."""
    return lambda target, command, **ctl_args: publish_ctl(args, target, command, **ctl_args)


def _control(fn: Any, *a: Any, **kw: Any) -> dict[str, Any]:
    try:
        return fn(*a, origin=SENDER, **kw)
    except controls.ControlError as exc:
        raise CliError(str(exc)) from None


def cmd_pause(args: argparse.Namespace, store: Any) -> int:
    require_account(store, args.name)  # the error names the store it looked in
    out = _control(controls.pause, store, args.name, publish=_ctl_publisher(args))
    emit(args, out, f"{args.name} paused: no new opens (open copies are still managed); "
                    f"{bus_note(out['published'], f'ctl.{args.name} pause')}")
    return EXIT_OK


def cmd_resume(args: argparse.Namespace, store: Any) -> int:
    require_account(store, args.name)
    out = _control(controls.resume, store, args.name, publish=_ctl_publisher(args))
    note = "; the fleet kill switch is still ON" if out.pop("kill_switch") else ""
    emit(args, out, f"{args.name} resumed{note}; {bus_note(out['published'], f'ctl.{args.name} resume')}")
    return EXIT_OK


def cmd_flatten(args: argparse.Namespace, store: Any) -> int:
    require_account(store, args.name)
    _control(lambda *a, origin: controls.check_flatten(*a), store, args.name)
    confirm(args, f"close EVERY copied position on {args.name} and pause it?")
    out = _control(controls.flatten, store, args.name, publish=_ctl_publisher(args))
    emit(args, out, f"{args.name}: paused and flatten requested ({bus_note(out['published'], f'ctl.{args.name} flatten')}); "
                    f"python cli.py resume {args.name} to copy again")
    return EXIT_OK


def cmd_kill_switch(args: argparse.Namespace, store: Any) -> int:
    on = args.state == "on"
    out = _control(controls.kill_switch, store, on, publish=_ctl_publisher(args))
    text = ("KILL SWITCH ON: no new opens on any account" if on
            else "kill switch off: accounts not paused one by one copy again")
    emit(args, out, f"{text}; {bus_note(out['published'], 'ctl.all')}")
    return EXIT_OK


# Launcher states in which a reset changes nothing: the process is up, being started or
# being stopped (fleet/supervision.py Supervised.reset starts only a held or waiting node).
NOTHING_TO_RESET = ("RUNNING", "STARTING", "STOPPING")


def cmd_reset(args: argparse.Namespace, store: Any) -> int:
    """Start now a node the launcher holds (FATAL, CONFIG_ERROR, STOPPED) or waits to
    restart (BACKOFF), forgetting its crash history. On a node that is up (or being
    started or stopped), or whose account is disabled (the launcher ignores the reset),
    it says why there is nothing to reset, writes no flag, and exits 0."""
    doc = require_account(store, args.name)
    node = store.get_node(args.name) or {}
    state = node.get("supervisor_state")
    idle = None
    if doc.get("enabled", True) is False:
        idle = (f"{args.name} is disabled: nothing to reset (the launcher does not start a disabled account; "
                f"python cli.py accounts enable {args.name})")
    elif state in NOTHING_TO_RESET:
        idle = f"{args.name} is {state}: nothing to reset"
    if idle:
        audit(store, "reset", args.name, previous_state=state, applied=False)
        emit(args, {"account": args.name, "reset": False, "previous_state": state, "message": idle}, idle)
        return EXIT_OK
    store.set_flag(RESET_PREFIX + args.name, now_ms())
    audit(store, "reset", args.name, previous_state=node.get("supervisor_state"))
    emit(args, {"account": args.name, "reset": True, "previous_state": node.get("supervisor_state")},
         f"reset requested for {args.name} (was {node.get('supervisor_state') or 'unknown'}); "
         f"the launcher applies it within a few seconds")
    return EXIT_OK


def cmd_report(args: argparse.Namespace, store: Any) -> int:
    """Daily reports the guardians stored: one row per account and broker day."""
    if args.account:
        require_account(store, args.account)
    live = {} if args.no_live else live_days(store, args.account)
    if args.date:
        live = {name: day for name, day in live.items() if day == args.date}
    elif args.since:
        live = {name: day for name, day in live.items() if day >= args.since}
    if live:  # today's report computed now by each running node, not the last 5-minute refresh
        answered = request_live_reports(store, live, timeout_s=args.wait)
        late = sorted(name for name, ok in answered.items() if not ok)
        if late:
            print(f"note: no live answer from {', '.join(late)} within {args.wait:g}s: showing the stored report",
                  file=sys.stderr)
    try:
        docs = load_reports(store, account=args.account, day=args.date, since=args.since)
    except ValueError as exc:
        raise CliError(str(exc)) from None
    fmt = "json" if args.json else args.format
    text = render(docs, fmt)
    if args.output:
        Path(args.output).write_text(text, encoding="utf-8")
        print(f"{len(docs)} report(s) written to {args.output}")
    else:
        print(text if docs or fmt != "table" else "no reports yet (nodes write them while they run)")
    return EXIT_OK


def cmd_release(args: argparse.Namespace, store: Any) -> int:
    """Release an account's risk lock before the firm's next reset (an operator decision).

    An account with no lock (``controls.lock_state``) is not asked about: one line says so,
    nothing is requested, exit 0. A lock whose rule the last heartbeat shows still past
    its flatten level is released with a warning: the guardian locks it again at once."""
    require_account(store, args.name)
    state = controls.lock_state(store, args.name)
    if state["locked"] is not False:
        lock = state["lock"] or {}
        why = lock.get("reason") or lock.get("lock_reason")
        confirm(args, f"release the risk lock on {args.name}{f' ({why})' if why else ''}? It will trade again")
    out = _control(controls.release, store, args.name)
    if not out["release_requested"]:
        emit(args, out, f"{out['message']} (it is not locked; a release request would be ignored)")
        return EXIT_OK
    text = (f"lock release requested for {args.name}; its guardian applies it within one evaluation"
            if out["locked"] else
            f"no guardian has reported on {args.name} yet: release requested; its guardian applies it if it finds a lock")
    if out.get("warning"):
        text += f"\nwarning: {out['warning']}"
    emit(args, out, text)
    return EXIT_OK


def _per_master_rows(args: argparse.Namespace, store: Any, rows_for: Any, *, followers_only: bool = False) -> tuple[Any, list[dict[str, Any]]]:
    """The follower's config and ``rows_for(cfg, master_name, master_mt5, follower_mt5)`` for each
    master it follows (or ``--master``), with both terminals opened and shut down again."""
    from terminals import TerminalError, open_terminal

    doc = require_account(store, args.follower)
    try:
        cfg = validate_account(doc)
    except AccountConfigError as exc:
        raise CliError(f"{args.follower}: {exc}") from None
    if followers_only and cfg.type != "SLAVE":
        raise CliError(f"{args.follower} is not a follower (type {cfg.type})")
    masters = [args.master] if args.master else sorted(
        d["name"] for d in store.list_accounts() if is_master_doc(d) and cfg.follows_master(d["name"]))
    if not masters:
        raise CliError(f"{args.follower} follows no master")
    opened: list[Any] = []
    rows: list[dict[str, Any]] = []
    try:
        follower = open_terminal(doc, default_sim_endpoint=args.sim_endpoint)
        opened.append(follower)
        for name in masters:
            master = open_terminal(require_account(store, name), default_sim_endpoint=args.sim_endpoint)
            opened.append(master)
            rows += rows_for(cfg, name, master, follower)
    except TerminalError as exc:
        raise CliError(f"cannot open a terminal: {exc}") from None
    finally:
        for t in opened:
            try:
                t.shutdown()
            except Exception:
                pass
    return cfg, rows


def cmd_sizing(args: argparse.Namespace, store: Any) -> int:
    """A 1-lot master trade on this follower, per mapped symbol (exposure sizing, invariant 7).

    Reads specs and balances from both accounts' terminals (simulator or MT5), with the
    same rules the slave node applies.
    """
    from nodes.sizing_report import sizing_rows

    cfg, rows = _per_master_rows(args, store, lambda cfg, name, master, follower: sizing_rows(
        cfg, name, master, follower, volume=args.volume))
    rows = sizing_presented(rows, cfg.sizing)  # risk_percent: the lots follow the master's SL, not its volume

    def num(v: Any) -> str:
        return "-" if v is None else f"{v:g}"

    table = [[r["master"], r["master_symbol"], r["follower_symbol"] or "-", num(r["master_contract_size"]),
              num(r["follower_contract_size"]), num(r["lot_factor"]), "by SL" if r.get("sl_dependent") else num(r["volume"]),
              f"{r['fx']} = {r['fx_rate']:.6g}" if r["fx"] else "-", r["note"]] for r in rows]  # NOTE: last, never cut
    if cfg.sizing.mode == "risk_percent":
        head = (f"sizing risk_percent on {args.follower}: each copy risks {cfg.sizing.percent or 0:g}% of its equity "
                f"at the master trade's SL distance, whatever the master's volume; the lots depend on each trade's SL\n")
    else:
        head = f"sizing {cfg.sizing.mode} on {args.follower}: a {args.volume:g}-lot master trade becomes\n"
    text = head + format_table(
        ["MASTER", "M.SYMBOL", "F.SYMBOL", "M.CONTRACT", "F.CONTRACT", "LOT FACTOR", "LOTS", "FX", "NOTE"], table)
    emit(args, {"follower": args.follower, "mode": cfg.sizing.mode, "volume": args.volume, "rows": rows}, text)
    return EXIT_OK


def cmd_symbols(args: argparse.Namespace, store: Any) -> int:
    """``symbols suggest FOLLOWER``: the follower symbol each master symbol seen maps to
    (symbol_map, suffix, or matched by currencies and specification), the contract sizes
    and the lot factor; the ones it cannot map are flagged."""
    from types import SimpleNamespace

    from copier.symbol_match import symbol_map_patch
    from nodes.symbols_report import suggest_rows

    cfg, rows = _per_master_rows(args, store, lambda cfg, name, master, follower: suggest_rows(
        cfg, store, name, master, follower, all_symbols=args.all), followers_only=True)

    patch = symbol_map_patch([SimpleNamespace(**r) for r in rows], cfg)
    unmapped = [r["master_symbol"] for r in rows if not r["mapped"]]

    def num(v: Any) -> str:
        return "-" if v is None else f"{v:g}"

    table = [[r["master"], r["master_symbol"], r["follower_symbol"] or "UNMAPPED", r["how"] or "-",
              num(r["master_contract_size"]), num(r["follower_contract_size"]), num(r["lot_factor"]), r["note"]]
             for r in rows]  # NOTE: the last column, never cut
    text = (format_table(["MASTER", "M.SYMBOL", "F.SYMBOL", "HOW", "M.CONTRACT", "F.CONTRACT", "LOT FACTOR", "NOTE"], table)
            if rows else f"no master symbols seen for {args.follower} (try --all)")
    if patch != dict(cfg.symbol_map or {}):
        entries = map_assignments("symbol_map", dict(cfg.symbol_map or {}), patch)
        text += (f"\nsuggested: python cli.py accounts set {args.follower} {' '.join(entries)}" if entries else
                 f"\nsuggested (bash): python cli.py accounts set {args.follower} "
                 f"symbol_map='{json.dumps(patch, sort_keys=True)}'")
    if unmapped:
        text += f"\ncannot map: {', '.join(unmapped)}"
    emit(args, {"follower": args.follower, "rows": rows, "symbol_map": patch, "unmapped": unmapped}, text)
    return EXIT_OK


def cmd_keys(args: argparse.Namespace, store: Any) -> int:
    """``keys create|show|allow|revoke|list`` (fleet/keys.py)."""
    from messaging.security import BusSecurityError

    try:
        bus_keys.run(args, store, settings_for(getattr(args, "config", None)),
                     lambda obj, text: emit(args, obj, text), audit)
    except (bus_keys.KeysError, BusSecurityError) as exc:
        raise CliError(str(exc)) from None
    return EXIT_OK


# =========================================================================== parser
def build_parser() -> argparse.ArgumentParser:
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("--json", action="store_true", default=argparse.SUPPRESS, help="machine-readable output")
    common.add_argument("--db", default=argparse.SUPPRESS, help="store URL (default: from the settings)")
    common.add_argument("--config", default=argparse.SUPPRESS, metavar="PATH",
                        help="settings file (default: COPYHUB_CONFIG, else copyhub.toml beside launcher.py)")
    common.add_argument("--bus-pub", default=argparse.SUPPRESS, help="proxy XSUB endpoint for ctl commands")
    p = _Parser(prog="python cli.py", description="copyhub operator CLI", parents=[common])
    sub = p.add_subparsers(dest="command", required=True, parser_class=_Parser)

    def add(name: str, func: Any, help_: str) -> argparse.ArgumentParser:
        sp = sub.add_parser(name, help=help_, description=help_, parents=[common])
        sp.set_defaults(func=func)
        return sp

    add("status", cmd_status, "nodes: state, pid, uptime, restarts, CPU, RSS, heartbeat, links, pause")
    acc = add("accounts", cmd_accounts, "list, show, add, set, enable, disable, remove accounts")
    acts = acc.add_subparsers(dest="action", required=True, parser_class=_Parser)
    acts.add_parser("list", parents=[common], help="all accounts, with validation problems")
    for action, help_ in (("show", "one account document"), ("enable", "start its node"),
                          ("disable", "stop its node")):
        acts.add_parser(action, parents=[common], help=help_).add_argument("name")
    a = acts.add_parser("add", parents=[common], help="add from JSON text, @FILE, a file path or - (stdin)")
    a.add_argument("doc")
    s = acts.add_parser("set", parents=[common], help="KEY=VALUE (JSON values, dotted keys, null removes)")
    s.add_argument("name")
    s.add_argument("assignments", nargs="+", metavar="KEY=VALUE")
    pn = acts.add_parser("pin", parents=[common], help="accept the login a path-only account's terminal reports")
    pn.add_argument("name")
    pn.add_argument("--login", type=int, default=None, help="pin this login (default: the one the node reports)")
    pn.add_argument("--server", default=None)
    pn.add_argument("--clear", action="store_true", help="forget the pin: the next login seen is pinned")
    r = acts.add_parser("remove", parents=[common], help="delete the account (its node stops)")
    r.add_argument("name")
    r.add_argument("--yes", action="store_true")

    sp = add("links", cmd_links, "the master<->slave ticket map of one slave")
    sp.add_argument("slave")
    sp.add_argument("--status", choices=["PENDING", "OPEN", "CLOSED", "SKIPPED", "FAILED"])
    sp.add_argument("--limit", type=int, default=None, help="only the newest N")

    sp = add("events", cmd_events, "the audit trail")
    sp.add_argument("--follow", "-f", action="store_true", help="keep printing new events")
    sp.add_argument("--account")
    sp.add_argument("--kind")
    sp.add_argument("--since", help="10m, 2h, 1d or an ISO time")
    sp.add_argument("--limit", type=int, default=100)

    add("pause", cmd_pause, "stop new opens on one account").add_argument("name")
    add("resume", cmd_resume, "allow new opens again").add_argument("name")
    sp = add("flatten", cmd_flatten, "close every copied position on a slave (and pause it)")
    sp.add_argument("name")
    sp.add_argument("--yes", action="store_true", help="do not ask for confirmation")
    add("kill-switch", cmd_kill_switch, "fleet-wide: no new opens anywhere").add_argument("state", choices=["on", "off"])
    add("reset", cmd_reset, "start a node held in FATAL / CONFIG_ERROR / STOPPED, or waiting in BACKOFF, now "
                            "(nothing to do on a running node)").add_argument("name")
    sp = add("report", cmd_report, "daily reports per account and broker day (table, CSV or JSON)")
    sp.add_argument("--account")
    sp.add_argument("--date", help="one broker day, YYYY-MM-DD")
    sp.add_argument("--since", help="from this day on, YYYY-MM-DD")
    sp.add_argument("--format", choices=FORMATS, default="table")
    sp.add_argument("--output", "-o", help="write to this file instead of stdout")
    sp.add_argument("--wait", type=float, default=5.0, help="seconds to wait for running nodes' live reports")
    sp.add_argument("--no-live", action="store_true", help="only what is stored (no request to running nodes)")
    sp = add("sizing", cmd_sizing, "what a 1-lot master trade becomes on a follower, per mapped symbol")
    sp.add_argument("follower")
    sp.add_argument("--master", help="only this master (default: every master it follows)")
    sp.add_argument("--volume", type=float, default=1.0, help="master lots (default 1)")
    sp.add_argument("--sim-endpoint", default=settings.SIM_ENDPOINT, help="simulator server for terminal kind 'sim'")
    sp = add("symbols", cmd_symbols, "symbol-mapping assistant: 'symbols suggest FOLLOWER'")
    sp.add_argument("action", choices=["suggest"])
    sp.add_argument("follower")
    sp.add_argument("--master", help="only this master (default: every master it follows)")
    sp.add_argument("--all", action="store_true", help="every symbol of the master's terminal, not only those seen")
    sp.add_argument("--sim-endpoint", default=settings.SIM_ENDPOINT, help="simulator server for terminal kind 'sim'")
    bus_keys.add_parser(sub, common, _Parser, cmd_keys)
    sp = add("release", cmd_release, "release an account's risk lock before the next reset "
                                      "(an account with no lock: says so, requests nothing)")
    sp.add_argument("name")
    sp.add_argument("--yes", action="store_true", help="do not ask for confirmation")
    return p


def command_name(args: argparse.Namespace) -> str:
    """``status``, ``accounts list``, ``keys allow``, ... (for READ_ONLY and CREATES_STORE)."""
    return f"{args.command} {args.action}" if args.command in ("accounts", "keys") else args.command


def store_url_or_error(args: argparse.Namespace, cfg: Any) -> str:
    """The store URL for this command.

    Without ``--db``, when the settings' store does not exist and the demo last started
    with this home runs (``fleet.demo.last_demo``), the demo's store, said on stderr: for
    every command that reads or changes a store; one that would create the fleet's store
    (CREATES_STORE) is refused instead, naming both ways (``--db``). Else a missing SQLite store is created only by the
    commands in CREATES_STORE; any other command gets a CliError naming the path (and the
    store a stopped demo left, if there is one) instead of a new, empty store."""
    url = args.db or cfg.database_url
    missing = missing_store(url)
    if not missing:
        return url
    name = command_name(args)
    demo = None if args.db else last_demo(Path(cfg.DATA_DIR).resolve())
    if demo is not None and demo[1] and name in CREATES_STORE:
        # adding accounts (real terminals, maybe) to a running demo because the fleet's
        # store is not made yet would be a surprise: the demo's launcher would start them
        raise CliError(f"no store at {missing} yet, and a demo is running with its store at {mask_url(demo[0])}: "
                       f"'{name}' does not guess which one you mean. For the demo: python cli.py --db "
                       f"{mask_url(demo[0])} {name} ...; to set up the fleet's own store at {missing}: stop the "
                       "demo first, or pass --db " + mask_url(url))
    if demo is not None and demo[1]:
        verb = "showing" if name in READ_ONLY else "using"
        print(f"cli: no store at {missing}; {verb} the running demo's store {mask_url(demo[0])} "
              "(--db names another)", file=sys.stderr)
        return demo[0]
    if name in CREATES_STORE:
        return url
    if demo is not None and not missing_store(demo[0]):
        example = (f"python cli.py --db {mask_url(demo[0])} status" if name in READ_ONLY
                   else f"python cli.py --db {mask_url(demo[0])} {name} ...")
        raise CliError(f"no store at {missing}; the demo that ran here has stopped and its store stays at "
                       f"{mask_url(demo[0])}: add --db to {'read' if name in READ_ONLY else 'use'} it ({example})")
    origin = "--db" if args.db else (f"settings: {cfg.source('DATABASE_URL')}" if cfg.DATABASE_URL
                                     else f"settings: SQLITE_PATH, {cfg.source('SQLITE_PATH')}, home {cfg.home}")
    if name in READ_ONLY:
        raise CliError(f"no store at {missing} ({origin}); nothing to show. Start the launcher or run "
                       "python setup_db.py first, or point --db / --config at the fleet's store (a demo "
                       "started with --db or another home: use the command its banner prints)")
    raise CliError(f"no store at {missing} ({origin}); '{name}' acts on a fleet's store and does not create an "
                   "empty one. Point --db / --config at the fleet's store (a demo started with --db or another "
                   "home: use the store its banner prints), or set the fleet up first: python cli.py accounts add "
                   "(or python setup_db.py)")


def main(argv: Sequence[str] | None = None) -> int:
    safe_console()
    args = build_parser().parse_args(argv)
    cfg = settings_for(getattr(args, "config", None))
    # --json/--db/--bus-pub may come before or after the command (SUPPRESS defaults,
    # because parents share Action objects between parsers).
    for key, default in (("json", False), ("db", None), ("bus_pub", cfg.bus_pub_endpoint), ("bus_timeout", 1.0)):
        if not hasattr(args, key):
            setattr(args, key, default)
    try:
        url = store_url_or_error(args, cfg)
    except CliError as exc:
        print(f"cli: error: {exc}", file=sys.stderr)
        return EXIT_ERROR
    try:
        store = open_store(url)
    except (StoreError, ValueError) as exc:
        print(f"cli: error: cannot open the store {mask_url(url)}: {exc}", file=sys.stderr)
        return EXIT_ERROR
    try:
        return args.func(args, store)
    except CliError as exc:
        print(f"cli: error: {exc}", file=sys.stderr)
        return EXIT_ERROR
    except StoreError as exc:
        print(f"cli: error: store: {exc}", file=sys.stderr)
        return EXIT_ERROR
    except BrokenPipeError:
        return EXIT_OK
    finally:
        store.close()


if __name__ == "__main__":
    sys.exit(main())
