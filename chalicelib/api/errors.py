"""The one place where errors become HTTP answers in the contract's shape.

`contract_errors` is Chalice HTTP middleware: domain errors become their status and code;
Chalice's own answers (405, 415, 500) are rewritten into the same shape; nothing else leaks.
Every JSON answer says `Content-Type: application/json` (Chalice leaves it unset).
"""
from __future__ import annotations

import functools
import json
import traceback
from collections.abc import Callable
from typing import Any

from chalice import Response

from chalicelib import errors
from chalicelib.observability import log_error

STATUS: dict[type[errors.RebookError], int] = {
    errors.InvalidRequest: 400,
    errors.InvalidResetToken: 400,
    errors.Unauthorized: 401,
    errors.InvalidCredentials: 401,
    errors.Forbidden: 403,
    errors.FeatureDisabled: 403,
    errors.NotFound: 404,
    errors.Conflict: 409,
    errors.SlotFull: 409,
    errors.SlotClosed: 409,
    errors.SessionNotEditable: 409,
    errors.SessionNotCancellable: 409,
    errors.RefundNotRetryable: 409,
    errors.IdempotencyConflict: 409,
    errors.QuoteChanged: 409,
    errors.PayloadTooLarge: 413,
    errors.PaymentNotAccepted: 422,
    errors.TooManyAttempts: 429,
    errors.Busy: 429,
    errors.ServiceUnavailable: 503,
    errors.TemporarilyUnavailable: 503,
}

# What a status means when something other than our code produced it (Chalice, API Gateway).
GENERIC: dict[int, tuple[str, str]] = {
    400: ("invalid_request", "the request is not valid"),
    401: ("unauthorized", "authentication is required"),
    403: ("forbidden", "this request is not allowed"),
    404: ("not_found", "no such resource"),
    405: ("method_not_allowed", "this method is not allowed on this resource"),
    413: ("payload_too_large", "the request body is too large"),
    415: ("unsupported_media_type", "send JSON with Content-Type: application/json"),
    429: ("too_many_requests", "too many requests; try again later"),
    500: ("internal_error", "something went wrong on our side; nothing was changed twice"),
    502: ("internal_error", "something went wrong on our side"),
    503: ("service_unavailable", "a service we depend on is unavailable; try again later"),
    504: ("timeout", "the request took too long; it may be retried"),
}


# API Gateway answers some requests before any Lambda runs. infra/ sets these gateway responses
# so those answers have the contract's shape too, and the local stack answers the same way.
GATEWAY_RESPONSES: dict[str, tuple[int, str, str]] = {
    "MISSING_AUTHENTICATION_TOKEN": (404, "not_found", "no such route"),
    "RESOURCE_NOT_FOUND": (404, "not_found", "no such route"),
    "REQUEST_TOO_LARGE": (413, "payload_too_large", "the request body is too large"),
    "THROTTLED": (429, "too_many_requests", "too many requests; try again later"),
    "DEFAULT_4XX": (400, "invalid_request", "the request is not valid"),
    "DEFAULT_5XX": (500, "internal_error", "something went wrong on our side"),
}


def error_body(code: str, message: str, details: dict[str, Any] | None = None) -> dict[str, Any]:
    error: dict[str, Any] = {"code": code, "message": message}
    if details:
        error["details"] = details
    return {"error": error}


def error_response(error: errors.RebookError) -> Response:
    status = STATUS.get(type(error))
    if status is None:  # a new error nobody mapped: a bug (tests/unit/test_error_map.py), never a guess
        log_error("unmapped_error", error=type(error).__name__)
        return Response(body=generic_error(500), status_code=500, headers={"Content-Type": "application/json"})
    headers: dict[str, str | list[str]] = {"Content-Type": "application/json"}
    retry_after = getattr(error, "retry_after_seconds", None)
    if retry_after is not None:
        headers["Retry-After"] = str(retry_after)
    return Response(body=error_body(error.code, error.message, error.details), status_code=status, headers=headers)


def generic_error(status: int) -> dict[str, Any]:
    code, message = GENERIC.get(status, GENERIC[500] if status >= 500 else GENERIC[400])
    return error_body(code, message)


def is_contract_error(body: Any) -> bool:
    if isinstance(body, (bytes, str)):
        try:
            body = json.loads(body)
        except ValueError:
            return False
    return isinstance(body, dict) and isinstance(body.get("error"), dict) and "code" in body["error"]


def contract_errors(event: Any, get_response: Callable[[Any], Response]) -> Response:
    try:
        response = get_response(event)
    except errors.RebookError as error:
        return error_response(error)
    except Exception as error:  # a bug: log it whole, tell the client nothing of it
        log_error("unhandled_error", path=getattr(event, "path", None), error=repr(error),
                  trace=traceback.format_exc())
        return Response(body=generic_error(500), status_code=500, headers={"Content-Type": "application/json"})
    if response.status_code >= 400 and not is_contract_error(response.body):
        headers = {k: v for k, v in response.headers.items() if k.lower() in ("allow", "retry-after")}
        return Response(body=generic_error(response.status_code), status_code=response.status_code,
                        headers={**headers, "Content-Type": "application/json"})
    if not isinstance(response.body, (bytes, str)) and not any(
            name.lower() == "content-type" for name in response.headers):
        response.headers["Content-Type"] = "application/json"
    return response


def busy_reads_are_unavailable(routes: dict[str, dict[str, Any]]) -> None:
    """Wrap every view so that DynamoDB staying busy through botocore's own retries of a read is
    a 503 `temporarily_unavailable` like a write's. Chalice answers any other exception a view
    raises with its own 500 before middleware sees it, so the translation sits on the views."""
    from chalicelib.storage.atomic import RETRY_AFTER_SECONDS, THROTTLE_CODES, error_code

    def translating(view: Callable[..., Any]) -> Callable[..., Any]:
        @functools.wraps(view)
        def answer(*args: Any, **kwargs: Any) -> Any:
            try:
                return view(*args, **kwargs)
            except errors.RebookError:
                raise
            except Exception as error:
                if error_code(error) in THROTTLE_CODES:
                    raise errors.TemporarilyUnavailable(
                        "the data is busy; nothing was changed, try again shortly", RETRY_AFTER_SECONDS) from None
                raise
        return answer

    for methods in routes.values():
        for entry in methods.values():
            entry.view_function = translating(entry.view_function)
