"""The launcher's view of the accounts in the store: the cached documents, and the
questions supervision asks of them (may this node start? why is it no longer wanted
here? which copies does stopping it leave unmanaged?)."""
from __future__ import annotations

from typing import Any

from copier.accounts import NAME_RULE as ACCOUNT_NAME_RULE
from copier.accounts import AccountConfigError, terminal_conflicts, validate_account
from db import StoreError
from fleet.options import RESERVED_NAMES, Child
from fleet.reconcile import same_host
from fleet.stale import clear_stale_node
from messaging.schema import is_valid_name


class AccountBook:
    """Account documents of the store, re-read only when ``accounts_version`` moves.

    ``accounts``: name -> document. ``host``: this launcher's host; ``sim_endpoint``: the
    default simulator endpoint (for terminal conflicts)."""

    def __init__(self, store: Any, log: Any, *, host: str, sim_endpoint: str) -> None:
        self.store = store
        self.log = log
        self.host = host
        self.sim_endpoint = sim_endpoint
        self.accounts: dict[str, dict] = {}
        self.version: str | None = None

    def load(self) -> bool:
        """Refresh the cache; True when it changed (False too when the store is down)."""
        try:
            version = self.store.accounts_version()
            if version == self.version:
                return False
            docs = self.store.list_accounts()
        except StoreError as exc:
            self.log.warning("store_unavailable", error=str(exc))
            return False
        self.version = version
        self.accounts = {d["name"]: d for d in docs if isinstance(d.get("name"), str)}
        self.clear_stale_node_docs()
        return True

    def clear_stale_node_docs(self) -> None:
        """The accounts changed: a node document that still says "not in the store" from a
        node that exited 78 before its account existed describes nothing now."""
        try:
            docs = self.store.list_nodes()
        except StoreError:
            return
        for doc in docs:
            name = doc.get("name")
            if name in self.accounts and doc.get("state") == "CONFIG_ERROR" and "not in the store" in str(doc.get("reason")):
                clear_stale_node(self.store, name)

    def stop_label(self, name: str) -> str:
        """Why an account's node is no longer wanted here, in the operator's words (cached documents)."""
        doc = self.accounts.get(name)
        if doc is None:
            return "removed"
        if doc.get("enabled", True) is False:
            return "disabled"
        return f"assigned to host {doc.get('host')!r}"

    def unwanted_now(self, child: Child) -> str | None:
        """For an account node that exited 0 unasked: "disabled"/"removed"/... when its
        account (read fresh from the store) no longer wants it on this host, else None."""
        if not child.is_account:
            return None
        try:
            doc = self.store.get_account(child.name)
        except StoreError:
            return None
        if doc is None:
            return "removed"
        if doc.get("enabled", True) is False:
            return "disabled"
        if not same_host(doc.get("host"), self.host):
            return f"assigned to host {doc.get('host')!r}"
        return None

    def refusal(self, child: Child) -> str | None:
        """Why an account node must not start (bad document), or None. The node runs
        the same validation itself and exits 78; checking first keeps a broken account
        from costing a process start every backoff."""
        if not child.is_account:
            return None
        if child.name in RESERVED_NAMES or not is_valid_name(child.name):
            return str(AccountConfigError(child.name, "name", ACCOUNT_NAME_RULE, child.name))
        doc = self.accounts.get(child.name)
        if doc is None:
            return f"account {child.name!r} is not in the store"
        try:
            validate_account(doc)
        except AccountConfigError as exc:
            return str(exc)
        return terminal_conflicts(self.accounts.values(), default_sim_endpoint=self.sim_endpoint).get(child.name)

    def unmanaged_copies(self, child: Child) -> list[str]:
        """OPEN links this node kept: a slave's own copies, or a master's copies on its followers."""
        try:
            if child.kind == "slave":
                rows = self.store.list_trades(slave_name=child.name, status="OPEN")
            elif child.kind == "master":
                rows = self.store.list_trades(master_name=child.name, status="OPEN")
            else:
                return []
        except StoreError:
            return []
        out = []
        for r in rows:
            where = f"{r.get('slave_name')} " if child.kind == "master" else ""
            out.append(f"{where}{r.get('symbol') or '?'} #{r.get('slave_ticket') or '?'} "
                       f"(master {r.get('master_name')} #{r.get('master_ticket')})")
        return out

    def node_reason(self, name: str) -> str | None:
        """The reason a node wrote in its own document (why it exited 78), if any."""
        try:
            doc = self.store.get_node(name) or {}
        except StoreError:
            return None
        reason = doc.get("reason")
        return reason if isinstance(reason, str) and reason else None
