"""The monitor's HTTP side: the page, the JSON API under /api/v1, the live push (server-sent
events), the controls and /metrics. FastAPI on uvicorn (docs/monitor.md says why).

Every request passes ``guard`` first (dashboard/security.py): Host check, token when
one is required, CSRF rule for POSTs. Handlers only read the collector, except the
controls, which call fleet.controls: the same functions as ``cli.py``.
"""
from __future__ import annotations

import asyncio
import html
from collections.abc import Callable
from pathlib import Path
from typing import Any

from fastapi import Body, FastAPI, HTTPException, Query, Request
from fastapi.responses import FileResponse, HTMLResponse, JSONResponse, RedirectResponse, Response, StreamingResponse

from dashboard import security, views
from dashboard.collector import PARTS, Collector
from dashboard.metrics import CONTENT_TYPE
from db import StoreError, now_ms
from fleet import controls
from fleet.operator import parse_since

STATIC = Path(__file__).resolve().parent / "static"
PUSH_POLL_S = 0.25
KEEPALIVE_S = 15.0
ORIGIN = "dashboard"

LOGIN_PAGE = """<!doctype html><html lang="en"><head><meta charset="utf-8"><title>copyhub - sign in</title>
<link rel="stylesheet" href="/static/style.css"></head><body class="login"><form method="post" action="/login">
<h1>copyhub</h1><p>This dashboard is bound to a network address: enter its token
(COPYHUB_DASHBOARD_TOKEN).</p>{error}<input type="password" name="token" autocomplete="current-password" autofocus
aria-label="token"><button type="submit">Sign in</button></form></body></html>"""


def create_app(collector: Collector, store: Any, *, publish: Callable[..., bool], token: str | None,
               bind_host: str = "127.0.0.1", port: int = 8080, log: Any = None) -> FastAPI:
    """The ASGI app. ``publish(target, command, **args) -> bool`` sends a ``ctl`` message;
    ``token``: None (loopback, no login) or the secret every request must carry."""
    app = FastAPI(title="copyhub monitor", version="1", docs_url=None, redoc_url=None,
                  openapi_url="/api/v1/openapi.json",
                  description="Fleet state, links, events, exposure and risk as JSON; operator controls as POST. "
                              "See docs/monitor.md.")
    hosts = security.allowed_hosts(bind_host, port)
    secure_cookie = False  # plain HTTP; put TLS in front (docs/monitor.md) and the browser keeps it

    @app.middleware("http")
    async def guard(request: Request, call_next: Any) -> Response:
        host = request.headers.get("host")
        if not security.host_ok(host, hosts):
            return JSONResponse({"error": "unknown Host header"}, status_code=403)
        path = request.url.path
        if path == "/login" or path.startswith("/static/"):
            if request.method == "POST" and not _same_origin(request):
                return JSONResponse({"error": "cross-site request refused"}, status_code=403)
            return await call_next(request)
        if not security.authorized(token, request.headers, request.cookies):
            if request.method in ("GET", "HEAD") and path == "/":
                return HTMLResponse(LOGIN_PAGE.format(error=""), status_code=401)
            return JSONResponse({"error": "token required (Authorization: Bearer ...)"}, status_code=401,
                                headers={"WWW-Authenticate": "Bearer"})
        if not security.csrf_ok(request.method, request.headers, host):
            return JSONResponse({"error": f"controls need the header {security.CSRF_HEADER}: 1 and a same-origin request"},
                                status_code=403)
        response = await call_next(request)
        response.headers.setdefault("Cache-Control", "no-store")
        response.headers["X-Frame-Options"] = "DENY"
        response.headers["X-Content-Type-Options"] = "nosniff"
        return response

    # ------------------------------------------------------------------ page
    @app.api_route("/", methods=["GET", "HEAD"], include_in_schema=False)  # HEAD: uptime checks, curl -I
    def index() -> FileResponse:
        return FileResponse(STATIC / "index.html", media_type="text/html")

    @app.get("/static/{name}", include_in_schema=False)
    def static(name: str) -> FileResponse:
        path = (STATIC / name).resolve()
        if path.parent != STATIC or not path.is_file():
            raise HTTPException(404)
        return FileResponse(path)

    @app.post("/login", include_in_schema=False)
    async def login(request: Request) -> Response:
        form = await request.body()
        from urllib.parse import parse_qs

        given = (parse_qs(form.decode("utf-8", "replace")).get("token") or [""])[0]
        if token is None:
            return RedirectResponse("/", status_code=303)
        if not security.same(given, token):
            if log is not None:
                log.warning("dashboard_login_refused", client=request.client.host if request.client else None)
            return HTMLResponse(LOGIN_PAGE.format(error="<p class=err>Wrong token.</p>"), status_code=401)
        resp = RedirectResponse("/", status_code=303)
        resp.set_cookie(security.COOKIE, security.session_value(token), httponly=True, samesite="strict",
                        secure=secure_cookie, path="/")
        return resp

    @app.post("/logout", include_in_schema=False)
    def logout() -> Response:
        resp = RedirectResponse("/", status_code=303)
        resp.delete_cookie(security.COOKIE, path="/")
        return resp

    # ------------------------------------------------------------------ read API
    @app.get("/api/v1/nodes", tags=["fleet"], summary="every node: state, pid, uptime, restarts, CPU, RSS, heartbeat age")
    def nodes() -> dict[str, Any]:
        return {"nodes": collector.node_rows(), "ts_ms": now_ms()}

    @app.get("/api/v1/accounts", tags=["fleet"], summary="every account: money, pause, open copies, risk gauges")
    def accounts() -> dict[str, Any]:
        return {"accounts": collector.account_rows(), "kill_switch": bool(collector.flags.get("kill_switch")),
                "ts_ms": now_ms()}

    @app.get("/api/v1/links", tags=["copies"], summary="master-slave links (the store's trades), filtered")
    def links(slave: str | None = None, master: str | None = None,
              status: str | None = Query(None, description="PENDING, OPEN, CLOSED, SKIPPED, FAILED; comma-separated"),
              symbol: str | None = None, limit: int = Query(1000, ge=1, le=100_000)) -> dict[str, Any]:
        if status:
            bad = [s for s in status.upper().split(",") if s.strip() not in ("PENDING", "OPEN", "CLOSED", "SKIPPED", "FAILED")]
            if bad:
                raise HTTPException(422, f"unknown status {', '.join(bad)}: use PENDING, OPEN, CLOSED, SKIPPED, FAILED")
        try:
            docs = store.list_trades(slave_name=slave, master_name=master,
                                     status=[s.strip() for s in status.upper().split(",")] if status else None)
        except StoreError as exc:
            raise HTTPException(503, f"store unavailable: {exc}") from None
        rows = views.filter_links(docs, symbol=symbol)
        return {"links": [views.link_row(t) for t in rows[-limit:]], "count": len(rows)}

    @app.get("/api/v1/positions", tags=["copies"], summary="every master position with its copies side by side")
    def positions() -> dict[str, Any]:
        return {"positions": collector.master_positions(), "ts_ms": now_ms()}

    @app.get("/api/v1/events", tags=["audit"], summary="the audit trail, oldest first")
    def events(since: str | None = Query(None, description="10m, 2h, 1d, an ISO time, or epoch ms"),
               account: str | None = None, kind: str | None = None, after_id: int | None = None,
               limit: int = Query(200, ge=1, le=5000)) -> dict[str, Any]:
        since_ms = None
        if since:
            try:
                since_ms = int(since) if since.isdigit() else parse_since(since, now_ms())
            except ValueError as exc:
                raise HTTPException(422, str(exc).replace("--since", "since")) from None
        try:
            rows = store.list_events(since_ms=since_ms, account=account, kind=kind, after_id=after_id, limit=limit,
                                     tail=after_id is None)
        except StoreError as exc:
            raise HTTPException(503, f"store unavailable: {exc}") from None
        return {"events": rows}

    @app.get("/api/v1/exposure", tags=["risk"], summary="net lots and notional per symbol per account, and totals")
    def exposure() -> dict[str, Any]:
        return collector.exposure()

    @app.get("/api/v1/risk", tags=["risk"], summary="the guardians' gauges per account")
    def risk() -> dict[str, Any]:
        return {"risk": {a["name"]: a["risk"] for a in collector.account_rows()},
                "kill_switch": bool(collector.flags.get("kill_switch"))}

    @app.get("/api/v1/state", tags=["fleet"], summary="everything the page shows, by part")
    def state() -> Response:
        body = "{" + ",".join(f'"{p}":{collector.part_json(p)[1]}' for p in PARTS) + "}"
        return Response(body, media_type="application/json")

    @app.get("/api/v1/stream", tags=["fleet"], summary="server-sent events: a 'state' message with every changed part")
    async def stream(request: Request) -> StreamingResponse:
        async def gen() -> Any:
            seen: dict[str, int] = {}
            idle = 0.0
            yield "retry: 2000\n\n"
            while not await request.is_disconnected():
                msg = collector.push_since(seen)
                if msg is not None:
                    idle = 0.0
                    yield f"event: state\ndata: {msg}\n\n"
                else:
                    idle += PUSH_POLL_S
                    if idle >= KEEPALIVE_S:
                        idle = 0.0
                        yield ": keepalive\n\n"
                await asyncio.sleep(PUSH_POLL_S)

        return StreamingResponse(gen(), media_type="text/event-stream",
                                 headers={"Cache-Control": "no-store", "X-Accel-Buffering": "no"})

    # ------------------------------------------------------------------ controls
    def run(fn: Callable[..., dict[str, Any]], *args: Any, **kw: Any) -> dict[str, Any]:
        try:
            out = fn(*args, origin=ORIGIN, **kw)
        except controls.ControlError as exc:
            raise HTTPException(404 if "no account named" in str(exc) else 409, str(exc)) from None
        except StoreError as exc:
            raise HTTPException(503, f"store unavailable: {exc}") from None
        collector.wake.set()
        return out

    @app.post("/api/v1/accounts/{name}/pause", tags=["controls"], summary="no new opens on the account")
    def pause(name: str) -> dict[str, Any]:
        return run(controls.pause, store, name, publish=publish)

    @app.post("/api/v1/accounts/{name}/resume", tags=["controls"], summary="allow new opens again")
    def resume(name: str) -> dict[str, Any]:
        return run(controls.resume, store, name, publish=publish)

    @app.get("/api/v1/accounts/{name}/flatten", tags=["controls"],
             summary="what flatten would close: the account and its open copies (for the confirmation)")
    def flatten_preview(name: str) -> dict[str, Any]:
        try:
            controls.check_flatten(store, name)
        except controls.ControlError as exc:
            raise HTTPException(404 if "no account named" in str(exc) else 409, str(exc)) from None
        rows = [views.link_row(t) for t in views.filter_links(collector.link_docs(), slave=name, status="OPEN")]
        return {"account": name, "open_copies": rows}

    @app.post("/api/v1/accounts/{name}/flatten", tags=["controls"],
              summary="pause the slave and close every copied position; body {\"confirm\": NAME}")
    def flatten(name: str, body: dict[str, Any] = Body(default_factory=dict)) -> dict[str, Any]:
        if body.get("confirm") != name:
            raise HTTPException(422, f"flatten needs the body {{\"confirm\": \"{html.escape(name)}\"}}: the account name, confirmed")
        return run(controls.flatten, store, name, publish=publish)

    @app.post("/api/v1/accounts/{name}/release", tags=["controls"], summary="release the account's risk lock")
    def release(name: str) -> dict[str, Any]:
        return run(controls.release, store, name)

    @app.post("/api/v1/kill-switch", tags=["controls"], summary="fleet-wide: body {\"on\": true|false}")
    def kill_switch(body: dict[str, Any] = Body(...)) -> dict[str, Any]:
        on = body.get("on")
        if not isinstance(on, bool):
            raise HTTPException(422, 'kill-switch needs the body {"on": true} or {"on": false}')
        return run(controls.kill_switch, store, on, publish=publish)

    # ------------------------------------------------------------------ metrics
    @app.get("/metrics", tags=["metrics"], summary="Prometheus text exposition")
    def metrics() -> Response:
        return Response(collector.metrics.render(), media_type=CONTENT_TYPE)

    return app


def _same_origin(request: Request) -> bool:
    origin = request.headers.get("origin")
    if not origin:
        return True
    return origin != "null" and origin.split("://", 1)[-1].lower() == (request.headers.get("host") or "").lower()
