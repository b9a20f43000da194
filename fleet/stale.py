"""Node documents that no longer describe their account.

A node that exits 78 writes ``state: CONFIG_ERROR`` and its ``reason`` into its node
document ("account 'X' is not in the store", "field 'risk' ..."). When the account is then
added or edited, that row would go on saying CONFIG_ERROR in ``cli.py status`` although
the reason is gone. ``clear_stale_node`` drops what the dead node wrote: the whole document
when no launcher supervises it (a node started by hand), else only the node's own fields
(the launcher rewrites its ``supervisor_*`` fields when it looks at the account again).
"""
from __future__ import annotations

from typing import Any

from db import StoreError

NODE_OWN_FIELDS = ("state", "reason", "error")


def clear_stale_node(store: Any, name: str) -> bool:
    """Forget a CONFIG_ERROR the node ``name`` wrote before its account changed. True when
    something was cleared; never raises on a store error (the row just stays)."""
    try:
        doc = store.get_node(name)
        if not doc or doc.get("state") != "CONFIG_ERROR":
            return False
        if "supervisor_state" not in doc:
            store.remove_node(name)
        else:
            store.upsert_node(name, {k: None for k in NODE_OWN_FIELDS})
        return True
    except StoreError:
        return False
