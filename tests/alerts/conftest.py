"""Local stand-ins for the Telegram API and a webhook (127.0.0.1, free ports), a log
recorder, and a fake clock. Nothing here talks to the outside world."""
from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest

from testing.harness import free_port


class FakeEndpoint:
    """HTTP server recording POSTs. mode: "ok" (200), "500", "429", "401" (echoes the path), or "hold" (block on
    `gate`, then answer 503 without recording: the request was lost while hung)."""

    def __init__(self, port: int = 0) -> None:
        self.mode = "ok"
        self.gate = threading.Event()
        self.records: list[tuple[str, Any]] = []
        self.failures = 0
        self.held = 0
        self.ok_body: dict[str, Any] = {"ok": True, "result": {}}
        self.error_body: dict[str, Any] = {"ok": False, "description": "server error"}
        self._lock = threading.Lock()
        ep = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args: Any) -> None:  # keep test output quiet
                pass

            def _reply(self, code: int, body: dict[str, Any], headers: dict[str, str] | None = None) -> None:
                raw = json.dumps(body).encode()
                try:
                    self.send_response(code)
                    self.send_header("Content-Type", "application/json")
                    self.send_header("Content-Length", str(len(raw)))
                    for k, v in (headers or {}).items():
                        self.send_header(k, v)
                    self.end_headers()
                    self.wfile.write(raw)
                except OSError:
                    pass  # the client gave up (timeout) — fine

            def do_POST(self) -> None:
                length = int(self.headers.get("Content-Length", "0"))
                body = json.loads(self.rfile.read(length) or b"null")
                mode = ep.mode
                if mode == "hold":
                    with ep._lock:
                        ep.held += 1
                    ep.gate.wait(30)
                    self._reply(503, {"ok": False, "description": "was hung"})
                    return
                if mode == "401":  # a careless server echoing the request path back
                    with ep._lock:
                        ep.failures += 1
                    self._reply(401, {"ok": False, "error_code": 401, "description": f"Unauthorized {self.path}"})
                    return
                if mode in ("500", "429"):
                    with ep._lock:
                        ep.failures += 1
                    if mode == "429":
                        self._reply(429, {"ok": False, "description": "Too Many Requests: retry after 0",
                                          "parameters": {"retry_after": 0}}, {"Retry-After": "0"})
                    else:
                        self._reply(500, ep.error_body)
                    return
                with ep._lock:
                    ep.records.append((self.path, body))
                self._reply(200, ep.ok_body)

        self.server = ThreadingHTTPServer(("127.0.0.1", port), Handler)
        self.server.daemon_threads = True
        self.port = self.server.server_address[1]
        self.url = f"http://127.0.0.1:{self.port}"
        self._thread = threading.Thread(target=self.server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
        self._thread.start()

    def bodies(self) -> list[Any]:
        with self._lock:
            return [b for _, b in self.records]

    def paths(self) -> list[str]:
        with self._lock:
            return [p for p, _ in self.records]

    def stop(self) -> None:
        self.gate.set()
        self.server.shutdown()
        self.server.server_close()


class LogRecorder:
    """Any-object logger (structlog-like surface) that records every call."""

    def __init__(self) -> None:
        self.calls: list[tuple[str, str, dict[str, Any]]] = []
        self._lock = threading.Lock()

    def _rec(self, method: str, event: str, **kw: Any) -> None:
        with self._lock:
            self.calls.append((method, event, dict(kw)))

    def debug(self, event: str, **kw: Any) -> None:
        self._rec("debug", event, **kw)

    def info(self, event: str, **kw: Any) -> None:
        self._rec("info", event, **kw)

    def warning(self, event: str, **kw: Any) -> None:
        self._rec("warning", event, **kw)

    def error(self, event: str, **kw: Any) -> None:
        self._rec("error", event, **kw)

    def critical(self, event: str, **kw: Any) -> None:
        self._rec("critical", event, **kw)

    def events(self, name: str) -> list[dict[str, Any]]:
        with self._lock:
            return [kw for _, e, kw in self.calls if e == name]

    def text(self) -> str:
        with self._lock:
            return repr(self.calls)


class FakeClock:
    def __init__(self, start: float = 1000.0) -> None:
        self.now = start
        self._lock = threading.Lock()

    def __call__(self) -> float:
        with self._lock:
            return self.now

    def advance(self, seconds: float) -> None:
        with self._lock:
            self.now += seconds


def wait_until(pred: Callable[[], bool], timeout: float = 10.0) -> bool:
    """Poll for a condition; the timeout only bounds a failing test, it asserts nothing."""
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        if pred():
            return True
        time.sleep(0.005)
    return pred()


@pytest.fixture
def endpoint():
    eps: list[FakeEndpoint] = []

    def make(port: int = 0) -> FakeEndpoint:
        ep = FakeEndpoint(port)
        eps.append(ep)
        return ep

    yield make
    for ep in eps:
        ep.stop()


@pytest.fixture
def recorder() -> LogRecorder:
    return LogRecorder()


@pytest.fixture
def fake_clock() -> FakeClock:
    return FakeClock()


@pytest.fixture(autouse=True)
def _no_proxy(monkeypatch):
    """A proxy from the environment must not intercept requests to 127.0.0.1."""
    for var in ("http_proxy", "https_proxy", "HTTP_PROXY", "HTTPS_PROXY", "all_proxy", "ALL_PROXY"):
        monkeypatch.delenv(var, raising=False)


@pytest.fixture
def wait() -> Callable[..., bool]:
    return wait_until


@pytest.fixture
def unused_port() -> Callable[[], int]:
    return free_port
