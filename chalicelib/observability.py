"""Structured logs: one JSON line per event, carrying the ids a person needs to follow it."""
from __future__ import annotations

import json
import logging
import sys
from typing import Any


class JsonLines(logging.Formatter):
    """Every record as one JSON object on one line, tracebacks included as a field."""

    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, Any] = getattr(record, "fields", None) or {"event": record.getMessage()}
        entry = {"level": record.levelname, "logger": record.name, **entry}
        if record.exc_info:
            entry["trace"] = self.formatException(record.exc_info)
        return json.dumps(entry, default=str)


class _CurrentStdout(logging.StreamHandler):  # type: ignore[type-arg]
    """Writes to whatever sys.stdout is at the time (Lambda's, or a test's capture)."""

    def emit(self, record: logging.LogRecord) -> None:
        self.stream = sys.stdout
        super().emit(record)


def json_logger(name: str) -> logging.Logger:
    logger = logging.getLogger(name)
    if not logger.handlers:
        handler = _CurrentStdout(sys.stdout)
        handler.setFormatter(JsonLines())
        logger.addHandler(handler)
        logger.setLevel(logging.INFO)
        logger.propagate = False
    return logger


_logger = json_logger("rebook")


def log_event(event: str, level: int = logging.INFO, **fields: Any) -> None:
    """Log `event` with `fields`; never pass secrets, tokens, passwords or card data."""
    _logger.log(level, event, extra={"fields": {"event": event, **fields}})


def log_error(event: str, **fields: Any) -> None:
    log_event(event, logging.ERROR, **fields)
