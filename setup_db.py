"""Prepare a copyhub store: indexes, optional sample or demo accounts, validation.

    python setup_db.py                 # create collections/tables and indexes
    python setup_db.py --sample        # + the seed's FTMO_Master and Apex_Slave_01
    python setup_db.py --demo          # + the demo world's accounts (simulator)
    python setup_db.py --check         # validate every account, one line per problem

Idempotent: accounts are inserted only when their name is new, so a second run (or a
run after you edited an account) changes nothing. The store comes from ``--db``, else
the settings (``--config`` file, COPYHUB_DATABASE_URL, default: ``data/copyhub.db`` in the
home folder), SQLite or MongoDB. Exit codes: 0 ok, 1 ``--check`` found
problems, 2 the store could not be opened or written.
"""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from config import settings, settings_for  # noqa: E402
from copier.accounts import validate_accounts  # noqa: E402
from db import StoreError, mask_url, open_store  # noqa: E402
from fleet.demo import demo_accounts, sample_accounts  # noqa: E402
from utils.console import safe_console  # noqa: E402


def insert_missing(store: Any, docs: list[dict[str, Any]]) -> tuple[list[str], list[str]]:
    """Add each document whose name is new; never overwrite (the operator may have
    edited it). Returns (added, kept)."""
    added, kept = [], []
    for doc in docs:
        if store.get_account(doc["name"]) is None:
            store.add_account(doc)
            added.append(doc["name"])
        else:
            kept.append(doc["name"])
    return added, kept


def _problem_line(pr: dict) -> str:
    """A problem's line: its message, with the account and field in front unless it names them."""
    msg = pr["message"]
    if f"account {pr['account']!r}" in msg and f"field {pr['field']!r}" in msg:
        return msg
    return f"{pr['account']}: field {pr['field']!r}: {msg}"


def check(store: Any, cfg: Any = None) -> list[dict[str, Any]]:
    """Every problem in the stored accounts, each with its account and field."""
    cfg = cfg or settings
    _configs, errors = validate_accounts(store.list_accounts(), default_slippage=cfg.DEFAULT_SLIPPAGE_TOLERANCE,
                                         default_magic=cfg.DEFAULT_MAGIC_NUMBER,
                                         default_sim_endpoint=cfg.SIM_ENDPOINT)
    return [{"account": e.account, "field": e.field, "message": str(e)} for e in errors]


def main(argv: list[str] | None = None) -> int:
    safe_console()
    p = argparse.ArgumentParser(prog="python setup_db.py", description=__doc__.split("\n")[0])
    p.add_argument("--config", default=None, metavar="PATH",
                   help="settings file (default: COPYHUB_CONFIG, else copyhub.toml beside launcher.py)")
    p.add_argument("--db", default=None, help="store URL (default: from the settings)")
    p.add_argument("--sample", action="store_true", help="insert the seed's sample accounts")
    p.add_argument("--demo", action="store_true", help="insert the demo world's accounts")
    p.add_argument("--sim-endpoint", default=None, help="simulator endpoint for --demo accounts (default: SIM_ENDPOINT)")
    p.add_argument("--check", action="store_true", help="validate every account document")
    p.add_argument("--json", action="store_true", help="machine-readable output")
    args = p.parse_args(argv)
    cfg = settings_for(args.config)
    args.sim_endpoint = args.sim_endpoint or cfg.SIM_ENDPOINT
    url = args.db or cfg.database_url
    out: dict[str, Any] = {"store": mask_url(url), "indexes": "ok", "added": [], "kept": []}
    lines = []
    try:
        store = open_store(url)  # creates tables / collections and indexes
    except (StoreError, ValueError) as exc:
        print(f"setup_db: cannot open the store {mask_url(url)}: {exc}", file=sys.stderr)
        return 2
    try:
        lines.append(f"store {mask_url(url)}: collections and indexes ready")
        docs = (sample_accounts() if args.sample else []) + (demo_accounts(args.sim_endpoint) if args.demo else [])
        if docs:
            out["added"], out["kept"] = insert_missing(store, docs)
            for name in out["added"]:
                lines.append(f"  added account {name}")
            for name in out["kept"]:
                lines.append(f"  kept existing account {name} (not overwritten)")
        code = 0
        if args.check:
            problems = check(store, cfg)
            out["problems"] = problems
            count = len(store.list_accounts())
            lines.append(f"checked {count} account(s): " + ("all valid" if not problems else f"{len(problems)} problem(s)"))
            lines += [f"  {_problem_line(pr)}" for pr in problems]
            code = 1 if problems else 0
    except StoreError as exc:
        print(f"setup_db: store error: {exc}", file=sys.stderr)
        return 2
    finally:
        store.close()
    print(json.dumps(out) if args.json else "\n".join(lines), flush=True)
    return code


if __name__ == "__main__":
    sys.exit(main())
