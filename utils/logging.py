"""structlog setup: readable lines on a console, JSON lines in ``logs/<node>.log``.

Every line carries the node and account names (bound once at start), and a redaction
step drops anything that looks like a secret, so a password can never reach a log.
"""
from __future__ import annotations

import logging
import logging.handlers
import sys
from pathlib import Path
from typing import Any

import structlog

_SECRET_KEYS = ("password", "passwd", "token", "secret", "api_key")


def redact_secrets(_logger: Any, _method: str, event_dict: dict[str, Any]) -> dict[str, Any]:
    """Replace the value of any key that names a secret (also inside nested dicts)."""

    def clean(value: Any) -> Any:
        if isinstance(value, dict):
            return {k: ("***" if _is_secret(k) else clean(v)) for k, v in value.items()}
        return value

    return {k: ("***" if _is_secret(k) else clean(v)) for k, v in event_dict.items()}


def _is_secret(key: Any) -> bool:
    lowered = str(key).lower()
    return any(s in lowered for s in _SECRET_KEYS)


_SHARED_PROCESSORS = [
    structlog.contextvars.merge_contextvars,
    structlog.stdlib.add_log_level,
    structlog.processors.TimeStamper(fmt="iso", utc=True),
    redact_secrets,
]


def setup_logging(
    node: str,
    account: str | None = None,
    *,
    log_dir: str | Path | None = "logs",
    level: str = "INFO",
    console: bool = True,
    max_bytes: int = 10_000_000,
    backup_count: int = 5,
) -> structlog.stdlib.BoundLogger:
    """Configure logging for this process and return a logger bound to node/account.

    ``log_dir=None`` disables the file (tests); the console renderer is colourful only
    on a TTY so redirected output stays plain.
    """
    root = logging.getLogger()
    for handler in list(root.handlers):
        root.removeHandler(handler)
        handler.close()
    root.setLevel(level)

    if console:
        stream = logging.StreamHandler(sys.stderr)
        stream.setFormatter(
            structlog.stdlib.ProcessorFormatter(
                foreign_pre_chain=_SHARED_PROCESSORS,
                processors=[
                    structlog.stdlib.ProcessorFormatter.remove_processors_meta,
                    structlog.dev.ConsoleRenderer(colors=sys.stderr.isatty()),
                ],
            )
        )
        root.addHandler(stream)

    if log_dir is not None:
        path = Path(log_dir)
        path.mkdir(parents=True, exist_ok=True)
        file_handler = logging.handlers.RotatingFileHandler(
            path / f"{_safe_file_name(node)}.log", maxBytes=max_bytes, backupCount=backup_count, encoding="utf-8"
        )
        file_handler.setFormatter(
            structlog.stdlib.ProcessorFormatter(
                foreign_pre_chain=_SHARED_PROCESSORS,
                processors=[
                    structlog.stdlib.ProcessorFormatter.remove_processors_meta,
                    structlog.processors.format_exc_info,
                    structlog.processors.JSONRenderer(),
                ],
            )
        )
        root.addHandler(file_handler)

    structlog.configure(
        processors=[*_SHARED_PROCESSORS, structlog.stdlib.ProcessorFormatter.wrap_for_formatter],
        logger_factory=structlog.stdlib.LoggerFactory(),
        wrapper_class=structlog.stdlib.BoundLogger,
        cache_logger_on_first_use=False,
    )
    structlog.contextvars.clear_contextvars()
    bound: dict[str, Any] = {"node": node}
    if account is not None:
        bound["account"] = account
    structlog.contextvars.bind_contextvars(**bound)
    return structlog.get_logger(node)


def _safe_file_name(name: str) -> str:
    return "".join(c if c.isalnum() or c in "-_." else "_" for c in name) or "node"
