"""Structured logs: one JSON line per event, carrying the ids a person needs to follow it."""
from __future__ import annotations

import json
import logging
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from typing import Any

# The fields every line of one invocation carries (Powertools' Logger carries the same ones:
# function_name, function_request_id, cold_start), plus the ids read from the request's path.
_invocation: ContextVar[dict[str, Any] | None] = ContextVar("rebook_invocation", default=None)
_cold = True


class JsonLines(logging.Formatter):
    """Every record as one JSON object on one line, tracebacks included as a field."""

    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, Any] = getattr(record, "fields", None) or {"event": record.getMessage()}
        entry = {"level": record.levelname, "logger": record.name, **(_invocation.get() or {}), **entry}
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


@contextmanager
def invocation(lambda_context: Any, **ids: Any) -> Iterator[None]:
    """Bind the Lambda request id, function name, cold-start flag and `ids` (venue, transaction)
    to every log line written until the block ends."""
    global _cold
    fields: dict[str, Any] = {"cold_start": _cold}
    _cold = False
    if lambda_context is not None:
        fields["function_name"] = getattr(lambda_context, "function_name", None)
        fields["function_request_id"] = getattr(lambda_context, "aws_request_id", None)
    fields.update({name: value for name, value in ids.items() if value})
    token = _invocation.set(fields)
    try:
        yield
    finally:
        _invocation.reset(token)


_PATH_IDS = ("venue_id", "transaction_id", "session_id", "refund_id", "slot_id", "guest_id", "job_id")


def log_context(event: Any, get_response: Callable[[Any], Any]) -> Any:
    """Chalice middleware for every kind of event: each log line of the invocation carries its
    context. HTTP requests add the ids named in their path."""
    context = getattr(event, "lambda_context", None) or getattr(event, "context", None)
    params = getattr(event, "uri_params", None) or {}
    with invocation(context, **{name: params.get(name) for name in _PATH_IDS}):
        return get_response(event)
