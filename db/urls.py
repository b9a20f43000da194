"""Store URL parsing and credential masking.

Kept apart from the backends so the launcher and CLI can print a store URL safely
(``mask_url``) without importing a driver.
"""
from __future__ import annotations

import re
from dataclasses import dataclass, field
from urllib.parse import parse_qsl, unquote, urlsplit

DEFAULT_MONGO_DB = "prop_copy_trader"
_SECRET_PARAM = re.compile(r"(?i)((?:password|passwd|pwd|secret|token)[^=&]*=)([^&]*)")


@dataclass(frozen=True)
class StoreURL:
    """A parsed store URL. ``secrets`` lists the raw strings to scrub from messages."""

    scheme: str  # "sqlite" | "mongodb" | "mongomock"
    raw: str = field(repr=False)
    path: str = ""  # sqlite file path (or ":memory:")
    db_name: str = ""  # mongo database name
    options: dict[str, str] = field(default_factory=dict, repr=False)
    secrets: tuple[str, ...] = field(default=(), repr=False)

    @property
    def masked(self) -> str:
        return mask_url(self.raw)


def mask_url(url: str) -> str:
    """Replace the password in ``user:password@`` and secret-looking query params by ``***``."""
    scheme, sep, rest = url.partition("://")
    if not sep:
        return _SECRET_PARAM.sub(r"\1***", url)
    netloc_end = len(rest)
    for ch in "/?#":
        i = rest.find(ch)
        if i != -1:
            netloc_end = min(netloc_end, i)
    netloc, tail = rest[:netloc_end], rest[netloc_end:]
    if "@" in netloc:
        userinfo, _, hosts = netloc.rpartition("@")
        user = userinfo.split(":", 1)[0]
        netloc = f"{user}:***@{hosts}" if ":" in userinfo else f"{user}@{hosts}"
    return f"{scheme}://{netloc}" + _SECRET_PARAM.sub(r"\1***", tail)


def scrub(text: str, secrets: tuple[str, ...]) -> str:
    """Remove every secret (raw and URL-decoded) from a driver message."""
    for s in secrets:
        if s:
            text = text.replace(s, "***")
    return text


def _secrets_of(url: str) -> tuple[str, ...]:
    """The password (raw and decoded) and secret query values found in ``url``."""
    out: list[str] = []
    _, sep, rest = url.partition("://")
    netloc = re.split(r"[/?#]", rest, maxsplit=1)[0] if sep else ""
    if "@" in netloc:
        userinfo = netloc.rpartition("@")[0]
        if ":" in userinfo:
            pw = userinfo.split(":", 1)[1]
            out += [pw, unquote(pw)]
    for m in _SECRET_PARAM.finditer(url):
        if m.group(2):
            out += [m.group(2), unquote(m.group(2))]
    # longest first so a short secret never leaves half of a long one visible
    return tuple(sorted({s for s in out if s}, key=len, reverse=True))


def missing_store(url: str) -> str | None:
    """The file a ``sqlite:///`` URL names, when it does not exist (else None).

    Opening a SQLite store creates its file: a read-only command (``cli.py status``) run
    against a path that holds no store must say so instead of answering from a new, empty
    one. MongoDB URLs (the server is the judge) and ``:memory:`` always give None.
    """
    from pathlib import Path

    try:
        parsed = parse_store_url(url)
    except ValueError:
        return None
    if parsed.scheme != "sqlite" or parsed.path == ":memory:":
        return None
    path = Path(parsed.path)
    return None if path.exists() else str(path.resolve())


def parse_store_url(url: str) -> StoreURL:
    """Parse ``sqlite:///path``, ``mongodb[+srv]://...[/db]`` or ``mongomock://db``.

    SQLite follows the SQLAlchemy convention: everything after ``sqlite:///`` is the
    path, so ``sqlite:///data/copyhub.db`` is relative to the working directory,
    ``sqlite:////var/copyhub.db`` and ``sqlite:///C:/copyhub/copyhub.db`` are absolute.
    """
    if not isinstance(url, str) or "://" not in url:
        hint = (f"; for a SQLite file write sqlite:///{url}" if isinstance(url, str) and url.strip()
                else "; expected sqlite:///PATH.db or mongodb://HOST[:PORT]/DB")
        raise ValueError(f"not a store URL: {mask_url(str(url))!r}{hint}")
    scheme = url.split("://", 1)[0].lower()
    if scheme == "sqlite":
        rest = url[len("sqlite://"):]
        if not rest.startswith("/"):
            raise ValueError(f"sqlite URL must look like sqlite:///path.db, got {mask_url(url)!r}")
        body, _, query = rest[1:].partition("?")
        path = unquote(body)
        if not path:
            raise ValueError("sqlite URL has no path (use sqlite:///:memory: for a throwaway store)")
        return StoreURL("sqlite", url, path=path, options=dict(parse_qsl(query)))
    if scheme in ("mongodb", "mongodb+srv"):
        parts = urlsplit(url)
        db = unquote(parts.path.lstrip("/")) or DEFAULT_MONGO_DB
        return StoreURL("mongodb", url, db_name=db, options=dict(parse_qsl(parts.query)),
                        secrets=_secrets_of(url))
    if scheme == "mongomock":
        rest, _, query = url[len("mongomock://"):].partition("?")
        db = rest.strip("/") or DEFAULT_MONGO_DB
        return StoreURL("mongomock", url, db_name=db, options=dict(parse_qsl(query)))
    raise ValueError(f"unsupported store URL scheme {scheme!r} (use sqlite:///, mongodb://, mongomock://)")
