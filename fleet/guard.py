"""Run a Python module under a parent watchdog: ``python -m fleet.guard --parent-pid PID -m MODULE ARGS...``.

The launcher passes ``--parent-pid`` to its own nodes, which watch it themselves. Helper
programs that have no such option (the simulator server, the demo trader) run through
this guard instead, so that a launcher killed with ``kill -9`` never leaves them behind.
When the parent is gone the guard raises SIGINT in this process (the program's own
graceful path) and exits hard if that has not worked within a few seconds.
"""
from __future__ import annotations

import os
import runpy
import signal
import sys
import threading
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from utils.process import watch_parent  # noqa: E402

HARD_EXIT_AFTER_S = 5.0


def _orphaned() -> None:
    threading.Timer(HARD_EXIT_AFTER_S, lambda: os._exit(1)).start()
    signal.raise_signal(signal.SIGINT)


def main(argv: list[str]) -> None:
    if len(argv) < 4 or argv[0] != "--parent-pid" or argv[2] != "-m":
        print("usage: python -m fleet.guard --parent-pid PID -m MODULE [ARGS...]", file=sys.stderr)
        raise SystemExit(2)
    parent_pid, module, rest = int(argv[1]), argv[3], argv[4:]
    watch_parent(parent_pid, _orphaned)
    sys.argv = [module, *rest]
    runpy.run_module(module, run_name="__main__", alter_sys=True)


if __name__ == "__main__":
    main(sys.argv[1:])
