"""Console output that never crashes on its encoding.

A Windows console, or output redirected to a file there, often encodes with cp1252 (or
another legacy code page): printing an account name or a terminal path with a character
outside it raises ``UnicodeEncodeError`` and kills the command. Entry points call
``safe_console()`` first: characters the stream cannot encode are written as
``\\xe9``-style escapes instead, and the text is otherwise unchanged.
"""
from __future__ import annotations

import sys
from typing import Any


def safe_console(*streams: Any) -> None:
    """Make ``sys.stdout``/``sys.stderr`` (or the given text streams) replace what they
    cannot encode (``errors="backslashreplace"``) instead of raising. Streams that are not
    reconfigurable (test captures, pipes wrapped by others) are left alone."""
    for stream in streams or (sys.stdout, sys.stderr):
        reconfigure = getattr(stream, "reconfigure", None)
        if reconfigure is None:
            continue
        try:
            if (getattr(stream, "errors", None) or "strict") == "strict":
                reconfigure(errors="backslashreplace")
        except (ValueError, OSError, AttributeError):
            pass
