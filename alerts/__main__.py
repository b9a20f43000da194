"""`python -m alerts` — send one test alert through the channels the environment configures.

Use it after setting COPYHUB_TELEGRAM_* / COPYHUB_ALERT_WEBHOOK_URL to see a real message
arrive on the phone; the exit code says whether every channel took it.
"""
from __future__ import annotations

import argparse
import socket
import sys
from collections.abc import Mapping, Sequence

from .env import build_dispatcher_from_env
from .model import Alert


def main(argv: Sequence[str] | None = None, environ: Mapping[str, str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m alerts", description=__doc__.splitlines()[0])
    parser.add_argument("--account", default="copyhub-test")
    parser.add_argument("--level", default="info", choices=["info", "warn", "pause", "flatten", "critical"])
    parser.add_argument("--message", default="Test alert: if you can read this, copyhub alerts work.")
    parser.add_argument("--timeout", type=float, default=15.0, help="seconds to wait for delivery")
    args = parser.parse_args(argv)

    disp = build_dispatcher_from_env(environ=environ)
    disp.send(Alert(account=args.account, rule="alert_test", level=args.level, message=args.message,
                    node=socket.gethostname()))
    left = disp.close(timeout=args.timeout)
    ok = left == 0
    for name, st in disp.stats()["channels"].items():
        state = "delivered" if st["delivered"] else ("FAILED" if st["failed"] else "NOT DELIVERED")
        ok = ok and bool(st["delivered"])
        print(f"{name:10s} {state}  (retries={st['retries']})")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
