"""Minimal JSON-over-HTTP POST (stdlib urllib) and the error type channels raise.

Kept separate so channels only decide *what* a response means, and so secrets can be
masked out of every error text before it reaches a log.
"""
from __future__ import annotations

import http.client
import json
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

MASK = "***"


class DeliveryError(Exception):
    """A delivery attempt failed. `retryable` says whether trying again can help;
    `retry_after` (seconds) is the server's own hint, e.g. Telegram's 429 answer."""

    def __init__(self, message: str, retryable: bool, retry_after: float | None = None) -> None:
        super().__init__(message)
        self.retryable = retryable
        self.retry_after = retry_after


class Masker:
    """Replaces secrets (raw and URL-quoted) in any text that may end up in a log."""

    def __init__(self, secrets: Iterable[str]) -> None:
        forms: set[str] = set()
        for s in secrets:
            if s:
                forms.add(s)
                forms.add(urllib.parse.quote(s, safe=""))
                forms.add(urllib.parse.quote(s))
        # Longest first, so a secret containing another is replaced whole.
        self._forms = sorted(forms, key=len, reverse=True)

    def __call__(self, text: str) -> str:
        for form in self._forms:
            text = text.replace(form, MASK)
        return text


def redact_url(url: str) -> str:
    """scheme://host[:port]/*** — webhook paths and queries often carry a secret."""
    parts = urllib.parse.urlsplit(url)
    tail = f"/{MASK}" if (parts.path.strip("/") or parts.query) else ""
    return f"{parts.scheme}://{parts.hostname or ''}{':' + str(parts.port) if parts.port else ''}{tail}"


@dataclass(frozen=True)
class Response:
    status: int
    body: bytes
    headers: dict[str, str]

    def json(self) -> Any:
        try:
            return json.loads(self.body.decode("utf-8"))
        except (UnicodeDecodeError, ValueError):
            return None


def post_json(url: str, payload: Any, timeout: float) -> Response:
    """POST `payload` as JSON. Any HTTP status comes back as a Response; transport
    failures (refused, reset, DNS, timeout) raise a retryable DeliveryError whose text
    contains no URL."""
    data = json.dumps(payload, ensure_ascii=False, default=str).encode("utf-8")
    req = urllib.request.Request(
        url,
        data=data,
        method="POST",
        headers={"Content-Type": "application/json; charset=utf-8", "User-Agent": "copyhub-alerts"},
    )
    try:
        with urllib.request.urlopen(req, timeout=timeout) as resp:
            return Response(resp.status, resp.read(), {k.lower(): v for k, v in resp.headers.items()})
    except urllib.error.HTTPError as e:
        try:
            body = e.read()
        except OSError:
            body = b""
        headers = {k.lower(): v for k, v in e.headers.items()} if e.headers else {}
        return Response(e.code, body, headers)
    except urllib.error.URLError as e:
        raise DeliveryError(f"connection failed: {e.reason}", retryable=True) from None
    except TimeoutError:
        raise DeliveryError(f"timed out after {timeout:g}s", retryable=True) from None
    except (OSError, http.client.HTTPException) as e:
        raise DeliveryError(f"transport error: {type(e).__name__}: {e}", retryable=True) from None


def classify_status(status: int, description: str, retry_after: float | None) -> DeliveryError | None:
    """None for success; otherwise the error to raise. 408/429/5xx are worth retrying;
    other 4xx (bad token, bad chat id, bad URL) will not fix themselves."""
    if 200 <= status < 300:
        return None
    retryable = status in (408, 425, 429) or status >= 500
    text = f"HTTP {status}" + (f": {description}" if description else "")
    return DeliveryError(text, retryable=retryable, retry_after=retry_after if retryable else None)


def parse_retry_after(headers: dict[str, str]) -> float | None:
    raw = headers.get("retry-after")
    if raw is None:
        return None
    try:
        return max(0.0, float(raw))
    except ValueError:
        return None
