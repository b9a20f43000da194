"""``--config PATH`` before the settings load: stdlib only, imported by entry points first.

``config.settings`` is built when ``config`` is first imported, and every module that
needs a setting imports it at its top. An entry point therefore calls
``adopt_config_argument(sys.argv[1:])`` before it imports ``config``: the path given with
``--config`` goes into ``COPYHUB_CONFIG`` for this process, and so for every process the
launcher starts (children inherit the environment).
"""
from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path

CONFIG_ENV = "COPYHUB_CONFIG"


def take_config_argument(argv: Sequence[str]) -> tuple[list[str], str | None]:
    """Split ``--config PATH`` / ``--config=PATH`` out of ``argv``: (the rest, PATH or None).

    The last one given wins, as argparse would have it. A ``--config`` with no value is
    left in place for the entry point's own parser to refuse.
    """
    rest: list[str] = []
    found: str | None = None
    args = list(argv)
    i = 0
    while i < len(args):
        arg = args[i]
        if arg == "--":
            rest.extend(args[i:])
            break
        if arg == "--config" and i + 1 < len(args):
            found = args[i + 1]
            i += 2
            continue
        if arg.startswith("--config="):
            found = arg.split("=", 1)[1]
            i += 1
            continue
        rest.append(arg)
        i += 1
    return rest, found


def adopt_config_argument(argv: Sequence[str]) -> list[str]:
    """Put ``--config PATH`` (if given) into ``COPYHUB_CONFIG`` as an absolute path, and
    return ``argv`` without it (for entry points whose parser does not know the option)."""
    rest, found = take_config_argument(argv)
    if found:
        os.environ[CONFIG_ENV] = str(Path(found).expanduser().resolve())
    return rest
