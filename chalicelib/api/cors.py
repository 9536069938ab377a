"""Cross-origin access for the one portal served from another origin than the API (in AWS, the
CloudFront copy of portal/ or a venue's own host). Locally the portal shares the API's origin."""
from __future__ import annotations

from collections.abc import Callable
from typing import Any

from chalice import CORSConfig, Response

# What the portal sends and what it must be able to read (portal/js/api.js).
PORTAL_REQUEST_HEADERS = ("Authorization", "Content-Type", "Idempotency-Key")
PORTAL_READABLE_HEADERS = ("Retry-After",)
PREFLIGHT_MAX_AGE_SECONDS = 600


def portal_cors(origin: str) -> CORSConfig:
    return CORSConfig(allow_origin=origin, allow_headers=list(PORTAL_REQUEST_HEADERS),
                      expose_headers=list(PORTAL_READABLE_HEADERS), max_age=PREFLIGHT_MAX_AGE_SECONDS)


def cors_on_every_answer(cors: CORSConfig) -> Callable[[Any, Callable[[Any], Response]], Response]:
    """HTTP middleware. Chalice adds CORS headers only to what a view returns; without them on the
    answers `contract_errors` makes, a browser hides every error message from the portal."""
    headers = cors.get_access_control_headers()

    def middleware(event: Any, get_response: Callable[[Any], Response]) -> Response:
        response = get_response(event)
        for name, value in headers.items():
            response.headers.setdefault(name, value)
        return response

    return middleware
