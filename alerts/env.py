"""Build a dispatcher from COPYHUB_* environment variables (the only place env is read)."""
from __future__ import annotations

import os
import urllib.parse
from collections.abc import Mapping
from typing import Any

from .channels import DEFAULT_TELEGRAM_API_URL, Channel, TelegramChannel, WebhookChannel, adapt_logger, log_call
from .dispatcher import AlertDispatcher

ENV_TELEGRAM_TOKEN = "COPYHUB_TELEGRAM_TOKEN"
ENV_TELEGRAM_CHAT_ID = "COPYHUB_TELEGRAM_CHAT_ID"
ENV_TELEGRAM_API_URL = "COPYHUB_TELEGRAM_API_URL"
ENV_WEBHOOK_URL = "COPYHUB_ALERT_WEBHOOK_URL"


class AlertConfigError(ValueError):
    """Alert settings are half-set or malformed; the message names the variable, never a secret."""


def _check_http_url(var: str, url: str, secret: bool) -> None:
    parts = urllib.parse.urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        shown = "(value hidden)" if secret else repr(url)
        raise AlertConfigError(f"{var} must be an http(s) URL, got {shown}")


def channels_from_env(environ: Mapping[str, str]) -> list[Channel]:
    """Telegram when token and chat id are both set; webhook when its URL is set."""
    get = lambda k: (environ.get(k) or "").strip()  # noqa: E731
    token, chat_id = get(ENV_TELEGRAM_TOKEN), get(ENV_TELEGRAM_CHAT_ID)
    api_url = get(ENV_TELEGRAM_API_URL) or DEFAULT_TELEGRAM_API_URL
    hook = get(ENV_WEBHOOK_URL)
    channels: list[Channel] = []
    if token or chat_id:
        if not token:
            raise AlertConfigError(f"{ENV_TELEGRAM_CHAT_ID} is set but {ENV_TELEGRAM_TOKEN} is not")
        if not chat_id:
            raise AlertConfigError(f"{ENV_TELEGRAM_TOKEN} is set but {ENV_TELEGRAM_CHAT_ID} is not")
        _check_http_url(ENV_TELEGRAM_API_URL, api_url, secret=False)
        channels.append(TelegramChannel(token, chat_id, base_url=api_url))
    if hook:
        _check_http_url(ENV_WEBHOOK_URL, hook, secret=True)
        channels.append(WebhookChannel(hook))
    return channels


def build_dispatcher_from_env(
    logger: Any | None = None, *, environ: Mapping[str, str] | None = None, **kwargs: Any
) -> AlertDispatcher:
    """Dispatcher with the log channel plus whatever the environment configures.

    Half-configured Telegram or a malformed URL raises AlertConfigError at startup (loud,
    before trading), rather than silently running without the alerts the user expects.
    Extra keyword arguments go to AlertDispatcher (cooldowns, queue_size, retry, clock…).
    """
    env = os.environ if environ is None else environ
    log = adapt_logger(logger)
    channels = channels_from_env(env)
    described = []
    for ch in channels:
        if isinstance(ch, TelegramChannel):
            described.append(f"telegram({ch.base_url})")
        elif isinstance(ch, WebhookChannel):
            described.append(f"webhook({ch.display_url})")
    log_call(log, "info", "alert channels", channels=["log", *described])
    return AlertDispatcher(channels, log, **kwargs)
