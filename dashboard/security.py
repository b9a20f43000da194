"""The dashboard's security model, as plain functions the app and the tests share.

* Bound to loopback (127.0.0.0/8, ::1, localhost) the dashboard needs no login.
* Bound to anything else it refuses to start without ``COPYHUB_DASHBOARD_TOKEN``; then
  every page, API call and control needs the token: ``Authorization: Bearer TOKEN``
  (scripts) or the session cookie the login form sets (the page). The token is compared
  in constant time, never logged, and never put in a URL.
* Controls are POST only and need the header ``X-CopyHub-Request: 1`` (a cross-site
  form or image cannot send a custom header; a cross-site script would need a CORS
  preflight, which the dashboard never grants) and, when the browser sends one, an
  ``Origin`` equal to the dashboard's own. The ``Host`` header must name the dashboard
  (no DNS rebinding: a hostile page whose name resolves to 127.0.0.1 gets 403).
"""
from __future__ import annotations

import hashlib
import hmac
import ipaddress
from collections.abc import Mapping

TOKEN_ENV = "COPYHUB_DASHBOARD_TOKEN"
MIN_TOKEN_CHARS = 16
COOKIE = "copyhub_session"
CSRF_HEADER = "x-copyhub-request"


class DashboardConfigError(ValueError):
    """The dashboard must not start with these settings: one line for the user."""


def is_loopback(host: str) -> bool:
    """True for 127.0.0.0/8, ::1 and ``localhost``; False for 0.0.0.0, :: and every other address."""
    h = host.strip().strip("[]").lower()
    if h == "localhost":
        return True
    try:
        return ipaddress.ip_address(h).is_loopback
    except ValueError:
        return False


def required_token(host: str, token: str | None) -> str | None:
    """The token every request must carry (None on loopback without one).
    DashboardConfigError when a non-loopback bind has no usable token."""
    token = (token or "").strip() or None
    if token is not None and len(token) < MIN_TOKEN_CHARS:
        raise DashboardConfigError(f"{TOKEN_ENV} must be at least {MIN_TOKEN_CHARS} characters")
    if token is None and not is_loopback(host):
        raise DashboardConfigError(
            f"the dashboard is bound to {host}, which is not loopback: set {TOKEN_ENV} (at least "
            f"{MIN_TOKEN_CHARS} random characters) so that every page, API call and control needs it, "
            "or bind it to 127.0.0.1")
    return token


def session_value(token: str) -> str:
    """What the session cookie holds: derived from the token, so the cookie never is the token."""
    return hmac.new(token.encode(), b"copyhub-dashboard-session-v1", hashlib.sha256).hexdigest()


def same(a: str | None, b: str | None) -> bool:
    """Constant-time equality of two secrets (False if either is missing)."""
    if not a or not b:
        return False
    return hmac.compare_digest(a.encode(), b.encode())


def authorized(token: str | None, headers: Mapping[str, str], cookies: Mapping[str, str]) -> bool:
    """True when no token is required, or the request carries it (Bearer header or session cookie)."""
    if token is None:
        return True
    auth = headers.get("authorization", "")
    if auth[:7].lower() == "bearer " and same(auth[7:].strip(), token):
        return True
    return same(cookies.get(COOKIE), session_value(token))


def allowed_hosts(bind_host: str, port: int, extra: tuple[str, ...] = ()) -> set[str]:
    """``Host`` header values the dashboard answers to."""
    names = {bind_host, "127.0.0.1", "localhost", "[::1]", *extra}
    if bind_host in ("0.0.0.0", "::", ""):
        return set()  # any name: a token is required there anyway
    return {n for name in names for n in (name, f"{name}:{port}")}


def host_ok(host_header: str | None, allowed: set[str]) -> bool:
    """True when the ``Host`` header names the dashboard (empty ``allowed``: any)."""
    if not allowed:
        return True
    return (host_header or "").lower() in {a.lower() for a in allowed}


def csrf_ok(method: str, headers: Mapping[str, str], host_header: str | None) -> bool:
    """A state-changing request (POST) carries the custom header and, if the browser sent
    an Origin, it is this dashboard's own."""
    if method.upper() in ("GET", "HEAD", "OPTIONS"):
        return True
    if headers.get(CSRF_HEADER) != "1":
        return False
    origin = headers.get("origin")
    if origin and origin != "null":
        return origin.split("://", 1)[-1].lower() == (host_header or "").lower()
    return origin != "null"
