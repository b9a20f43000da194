"""Text files as Windows editors and shells write them."""
from __future__ import annotations

import codecs

_BOMS = ((codecs.BOM_UTF8, "utf-8-sig"), (codecs.BOM_UTF16_LE, "utf-16"), (codecs.BOM_UTF16_BE, "utf-16"))
SAVE_AS_UTF8 = "save it as UTF-8"


def decode_text(data: bytes) -> str:
    """``data`` as text: UTF-8 with or without a byte-order mark (Notepad's "UTF-8" and
    "UTF-8 with BOM"), or UTF-16 with its BOM (what Windows PowerShell 5.1's ``>`` and
    ``Out-File`` write). UnicodeDecodeError for anything else (Notepad's "ANSI")."""
    codec = next((name for bom, name in _BOMS if data.startswith(bom)), "utf-8")
    return data.decode(codec)
