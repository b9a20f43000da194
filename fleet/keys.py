"""``cli.py keys``: this host's CURVE key pair and the bus allow-list in the store.

    python cli.py keys create [--name VPS-1] [--dir D:/copyhub/keys] [--allow] [--force]
    python cli.py keys show [--file PATH]
    python cli.py keys allow PUBLIC_KEY|FILE.key --name VPS-2
    python cli.py keys revoke PUBLIC_KEY|NAME
    python cli.py keys list

``create`` writes NAME.key_secret (readable by its owner only: mode 0600 on POSIX, an
ACL granting only the current user on Windows) and NAME.key (the public half), prints
the public key and the settings lines to add. Secret keys are never printed, stored or
logged. The allow-list lives in the store (``bus_keys``), so every host's operator sees
the same list and the proxy picks up changes within a few seconds (docs/bus.md).
"""
from __future__ import annotations

import argparse
import socket
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import zmq.auth

from messaging.security import BusSecurityError, check_public_key, create_key_files, load_key_file, owner_only_problem

DEFAULT_KEY_DIR = "keys"  # beside the settings file (the home folder) unless --dir


class KeysError(Exception):
    """One line for the operator; exit code 2."""


def add_parser(sub: Any, common: argparse.ArgumentParser, parser_class: type, func: Callable[..., int]) -> None:
    """The ``keys`` command and its actions on ``sub`` (cli.py's subparsers)."""
    help_ = "bus CURVE keys: create this host's key pair, allow/revoke/list public keys"
    k = sub.add_parser("keys", help=help_, description=help_, parents=[common])
    k.set_defaults(func=func)
    acts = k.add_subparsers(dest="action", required=True, parser_class=parser_class)
    c = acts.add_parser("create", parents=[common], help="make this host's key pair (NAME.key_secret, NAME.key)")
    c.add_argument("--name", default=socket.gethostname(), help="whose key: the host's name (default: this machine's)")
    c.add_argument("--dir", default=None, help=f"where to write the files (default: HOME/{DEFAULT_KEY_DIR})")
    c.add_argument("--allow", action="store_true", help="also put the public key on the bus allow-list")
    c.add_argument("--force", action="store_true", help="replace an existing key pair of that name")
    s = acts.add_parser("show", parents=[common], help="the public key of BUS_KEY_FILE (never the secret)")
    s.add_argument("--file", default=None, help="a .key_secret or .key file (default: BUS_KEY_FILE)")
    a = acts.add_parser("allow", parents=[common], help="let a public key onto the bus")
    a.add_argument("key", help="a public key (40 characters) or a NAME.key file")
    a.add_argument("--name", required=True, help="whose key it is (a host's name)")
    r = acts.add_parser("revoke", parents=[common], help="take a public key (or every key of a name) off the bus")
    r.add_argument("key", help="a public key, or the name it was allowed as")
    acts.add_parser("list", parents=[common], help="the allow-list")


def public_key_of(text: str) -> str:
    """A public key given as itself or as a path to a ``.key``/``.key_secret`` file."""
    candidate = text.strip()
    if len(candidate) == 40:
        return check_public_key(candidate)
    path = Path(candidate).expanduser()
    if path.is_file():
        try:
            pub, _secret = zmq.auth.load_certificate(str(path))
        except (OSError, ValueError) as exc:
            raise KeysError(f"{path} is not a CURVE key file: {exc}") from None
        return check_public_key(pub.decode("ascii"), f"public key in {path}")
    return check_public_key(candidate)


def run(args: argparse.Namespace, store: Any, cfg: Any, emit: Callable[[Any, str], None],
        audit: Callable[..., None]) -> None:
    """Carry out ``keys <action>``; KeysError / BusSecurityError for the operator."""
    action = args.action
    if action == "create":
        key_dir = Path(args.dir).expanduser() if args.dir else Path(cfg.home) / DEFAULT_KEY_DIR
        keys, secret_path, public_path, how = create_key_files(key_dir, args.name, overwrite=args.force)
        allowed = store.allow_bus_key(keys.public, args.name) if args.allow else False
        if args.allow:
            audit(store, "keys allow", key=keys.public, name=args.name)
        text = "\n".join([
            f"public key  {keys.public}",
            f"secret key  {secret_path}  ({how}; never copy it to another machine)",
            f"public file {public_path}  (safe to share)",
            ("on the bus allow-list as " + args.name) if args.allow else
            # the file form: a Z85 key holds & ! $ ( ) that shells (bash, PowerShell, cmd) would interpret
            f'not on the allow-list yet: on the bus host, python cli.py keys allow "{public_path}" --name {args.name}'
            " (or the public key above in single quotes)",
            "",
            "settings for this host (copyhub.toml):",
            "  bus_host = '<address of the bus host>'   # e.g. '10.0.0.5'. On the bus host itself: an address of",
            "             # its own that the other hosts can reach (its proxy binds it; 127.0.0.1 would shut them out)",
            f"  bus_key_file = '{secret_path}'",
            "  bus_server_key = '<public key of the bus host>'   # on the bus host itself: "
            f"'{keys.public}'",
        ])
        emit({"public_key": keys.public, "secret_file": str(secret_path), "public_file": str(public_path),
              "restricted": how, "allowed": bool(args.allow), "changed": allowed}, text)
    elif action == "show":
        path = args.file or cfg.BUS_KEY_FILE
        if not path:
            raise KeysError("no BUS_KEY_FILE set and no --file given (python cli.py keys create makes a key pair)")
        p = Path(path).expanduser()
        if p.suffix == ".key":
            pub = public_key_of(str(p))
            problem = None
        else:
            pub = load_key_file(p, check_private=False).public
            problem = owner_only_problem(p)
        allowed = {k["public_key"]: k["name"] for k in store.list_bus_keys()}
        status = f"on the allow-list as {allowed[pub]}" if pub in allowed else "NOT on the allow-list"
        text = f"public key  {pub}\nfile        {p}\nbus         {status}" + (f"\nWARNING     {problem}" if problem else "")
        emit({"public_key": pub, "file": str(p), "allowed_as": allowed.get(pub), "problem": problem}, text)
    elif action == "allow":
        key = public_key_of(args.key)
        before = {k["public_key"]: k["name"] for k in store.list_bus_keys()}.get(key)
        changed = store.allow_bus_key(key, args.name)
        audit(store, "keys allow", key=key, name=args.name, **({"was": before} if before and before != args.name else {}))
        note = (" (already was)" if not changed else
                f" (renamed: it was on the list as {before})" if before and before != args.name else "")
        emit({"public_key": key, "name": args.name, "changed": changed, "was": before},
             f"allowed {key} as {args.name}{note}; the proxy lets it in within a few seconds")
    elif action == "revoke":
        target = args.key.strip()
        keys = store.list_bus_keys()
        hits = [k["public_key"] for k in keys if target in (k["public_key"], k["name"])]
        if not hits:
            known = ", ".join(sorted({k["name"] for k in keys})) or "none"
            raise KeysError(f"no allowed key or name {target!r} (allowed names: {known})")
        for key in hits:
            store.revoke_bus_key(key)
            audit(store, "keys revoke", key=key)
        emit({"revoked": hits}, "\n".join(f"revoked {k}" for k in hits)
             + "\nthe proxy drops every bus connection within a few seconds; the others reconnect at once")
    else:  # list
        keys = store.list_bus_keys()
        mine = _own_public_key(cfg)
        rows = [[k["name"], k["public_key"], _utc(k["added_ms"]), "this host" if k["public_key"] == mine else ""]
                for k in keys]
        from fleet.report import format_table

        text = format_table(["NAME", "PUBLIC KEY", "ALLOWED", ""], rows) if rows else \
            "the bus allow-list is empty (python cli.py keys allow PUBLIC_KEY --name HOST)"
        emit({"keys": keys, "this_host": mine}, text)


def _own_public_key(cfg: Any) -> str | None:
    if not getattr(cfg, "BUS_KEY_FILE", ""):
        return None
    try:
        return load_key_file(cfg.BUS_KEY_FILE, check_private=False).public
    except BusSecurityError:
        return None


def _utc(ms: Any) -> str:
    if not isinstance(ms, int):
        return "-"
    return time.strftime("%Y-%m-%d %H:%M:%SZ", time.gmtime(ms / 1000))
