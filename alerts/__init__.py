"""Alerts for the risk guardian and the fleet supervisor: log always, Telegram and a JSON
webhook when configured; deduplicated, queued, and never blocking the caller."""
from .channels import LogChannel, StdlibLoggerAdapter, TelegramChannel, WebhookChannel
from .dedup import DEFAULT_COOLDOWN_S, Deduplicator, Verdict
from .dispatcher import AlertDispatcher
from .env import (
    ENV_TELEGRAM_API_URL,
    ENV_TELEGRAM_CHAT_ID,
    ENV_TELEGRAM_TOKEN,
    ENV_WEBHOOK_URL,
    AlertConfigError,
    build_dispatcher_from_env,
)
from .model import LEVELS, Alert, format_text, level_rank, to_payload
from .transport import DeliveryError
from .worker import RetryPolicy

__all__ = [
    "Alert",
    "AlertConfigError",
    "AlertDispatcher",
    "DEFAULT_COOLDOWN_S",
    "Deduplicator",
    "DeliveryError",
    "ENV_TELEGRAM_API_URL",
    "ENV_TELEGRAM_CHAT_ID",
    "ENV_TELEGRAM_TOKEN",
    "ENV_WEBHOOK_URL",
    "LEVELS",
    "LogChannel",
    "RetryPolicy",
    "StdlibLoggerAdapter",
    "TelegramChannel",
    "Verdict",
    "WebhookChannel",
    "build_dispatcher_from_env",
    "format_text",
    "level_rank",
    "to_payload",
]
