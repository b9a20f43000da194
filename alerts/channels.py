"""Delivery channels: the log (always on), Telegram Bot API and a generic JSON webhook.

A channel does one synchronous attempt in `deliver(alert)` and raises DeliveryError on
failure; queuing, retry and backoff belong to the worker that calls it.
"""
from __future__ import annotations

import logging
from typing import Any, Protocol

from .model import Alert, format_text, to_payload
from .transport import DeliveryError, Masker, classify_status, parse_retry_after, post_json, redact_url

DEFAULT_TELEGRAM_API_URL = "https://api.telegram.org"
DEFAULT_TIMEOUT_S = 3.0

_LOG_METHOD = {
    "info": "info",
    "warn": "warning",
    "pause": "warning",
    "flatten": "error",
    "critical": "critical",
}


class Channel(Protocol):
    name: str

    def deliver(self, alert: Alert) -> None: ...


class StdlibLoggerAdapter:
    """Lets a stdlib `logging.Logger` take structlog-style calls: `.warning(event, **kw)`."""

    def __init__(self, logger: logging.Logger) -> None:
        self._logger = logger

    def _log(self, lvl: int, event: str, /, **kw: Any) -> None:
        if kw:
            event = event + " " + " ".join(f"{k}={v!r}" for k, v in kw.items())
        self._logger.log(lvl, event)

    def debug(self, event: str, /, **kw: Any) -> None:
        self._log(logging.DEBUG, event, **kw)

    def info(self, event: str, /, **kw: Any) -> None:
        self._log(logging.INFO, event, **kw)

    def warning(self, event: str, /, **kw: Any) -> None:
        self._log(logging.WARNING, event, **kw)

    def error(self, event: str, /, **kw: Any) -> None:
        self._log(logging.ERROR, event, **kw)

    def critical(self, event: str, /, **kw: Any) -> None:
        self._log(logging.CRITICAL, event, **kw)


def adapt_logger(logger: Any | None) -> Any:
    """structlog logger by default; stdlib loggers are wrapped; anything else is used as-is."""
    if logger is None:
        import structlog

        return structlog.get_logger("alerts")
    if isinstance(logger, (logging.Logger, logging.LoggerAdapter)):
        return StdlibLoggerAdapter(logger)  # type: ignore[arg-type]
    return logger


def log_call(logger: Any, method: str, event: str, **kw: Any) -> None:
    """Call `logger.<method>` falling back to `.warning` for loggers lacking e.g. `.critical`
    (debug lines are simply skipped on such loggers rather than promoted)."""
    fn = getattr(logger, method, None)
    if fn is None:
        if method == "debug":
            return
        fn = logger.warning
    fn(event, **kw)


class LogChannel:
    """Console + log: one structured line per alert, at a log level matching its severity."""

    name = "log"

    def __init__(self, logger: Any) -> None:
        self._logger = logger

    def deliver(self, alert: Alert) -> None:
        fields = alert.to_dict()
        try:
            log_call(self._logger, _LOG_METHOD[alert.level], "alert", **fields)
        except Exception as e:  # a broken logger will not heal by retrying
            raise DeliveryError(f"logger failed: {type(e).__name__}: {e}", retryable=False) from None


class TelegramChannel:
    """Telegram Bot API sendMessage. The token lives only in the request path; every
    error text is masked before it leaves this object."""

    name = "telegram"

    def __init__(
        self,
        token: str,
        chat_id: str,
        base_url: str = DEFAULT_TELEGRAM_API_URL,
        timeout: float = DEFAULT_TIMEOUT_S,
    ) -> None:
        if not token:
            raise ValueError("telegram token is empty")
        if not chat_id:
            raise ValueError("telegram chat id is empty")
        self._token = token
        self.chat_id = chat_id
        self.base_url = base_url.rstrip("/")
        self.timeout = timeout
        self._mask = Masker([token])

    def __repr__(self) -> str:
        return f"TelegramChannel(base_url={self.base_url!r}, chat_id={self.chat_id!r}, token='***')"

    def deliver(self, alert: Alert) -> None:
        url = f"{self.base_url}/bot{self._token}/sendMessage"
        body = {"chat_id": self.chat_id, "text": format_text(alert), "disable_web_page_preview": True}
        try:
            resp = post_json(url, body, self.timeout)
        except DeliveryError as e:
            raise DeliveryError(self._mask(str(e)), e.retryable, e.retry_after) from None
        except Exception as e:  # e.g. a malformed base URL: never retry, never leak the token
            raise DeliveryError(self._mask(f"{type(e).__name__}: {e}"), retryable=False) from None
        data = resp.json()
        data = data if isinstance(data, dict) else {}
        description = str(data.get("description", ""))[:200]
        retry_after = parse_retry_after(resp.headers)
        params = data.get("parameters")
        if isinstance(params, dict) and isinstance(params.get("retry_after"), (int, float)):
            retry_after = float(params["retry_after"])
        err = classify_status(resp.status, self._mask(description), retry_after)
        if err is None and data.get("ok") is False:
            err = DeliveryError(f"telegram refused: {self._mask(description)}", retryable=False)
        if err is not None:
            raise err


class WebhookChannel:
    """POST the alert as JSON (all fields plus `text`). The URL's path may hold a secret
    (Slack/Discord style), so only scheme://host appears in logs."""

    name = "webhook"

    def __init__(self, url: str, timeout: float = DEFAULT_TIMEOUT_S) -> None:
        if not url:
            raise ValueError("webhook url is empty")
        self._url = url
        self.timeout = timeout
        self.display_url = redact_url(url)
        self._mask = Masker([url, url.split("://", 1)[-1]])

    def __repr__(self) -> str:
        return f"WebhookChannel(url={self.display_url!r})"

    def deliver(self, alert: Alert) -> None:
        try:
            resp = post_json(self._url, to_payload(alert), self.timeout)
        except DeliveryError as e:
            raise DeliveryError(self._mask(str(e)), e.retryable, e.retry_after) from None
        except Exception as e:
            raise DeliveryError(self._mask(f"{type(e).__name__}: {e}"), retryable=False) from None
        description = resp.body[:200].decode("utf-8", "replace").strip()
        err = classify_status(resp.status, self._mask(description), parse_retry_after(resp.headers))
        if err is not None:
            raise err
