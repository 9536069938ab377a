"""Headers on every API answer: nothing an answer carries (guest tokens, receipts, guests' names)
may be kept by a browser's or a proxy's cache, and no answer may be sniffed into another type."""
from __future__ import annotations

from collections.abc import Callable
from typing import Any

from chalice import Response

API_ANSWER_HEADERS = {"Cache-Control": "no-store", "X-Content-Type-Options": "nosniff"}


def private_answers(event: Any, get_response: Callable[[Any], Response]) -> Response:
    """HTTP middleware, registered outside `contract_errors` so error answers carry them too."""
    response = get_response(event)
    for name, value in API_ANSWER_HEADERS.items():
        if not any(existing.lower() == name.lower() for existing in response.headers):
            response.headers[name] = value
    return response
