"""Our Stripe key and the one Stripe gateway a container builds with it: on first use, so cold
starts never import Stripe, and again when the key changes (rotated in Secrets Manager)."""
from __future__ import annotations

import threading
from typing import TYPE_CHECKING

from chalicelib.config import config, forget_secret, secret

if TYPE_CHECKING:
    from chalicelib.payments import StripeGateway

_KEY = "STRIPE_API_KEY"
_built: dict[str, StripeGateway] = {}  # our current key -> its gateway (one entry)
_lock = threading.Lock()


def stripe_gateway() -> StripeGateway:
    key = secret(_KEY)
    with _lock:
        gateway = _built.get(key)
        if gateway is None:
            import stripe

            from chalicelib.payments import StripeGateway

            _built.clear()
            # A bounded wait of a few seconds: a hung Stripe call must end well inside the
            # worker's Lambda timeout, which takes a message only with this much time left.
            gateway = _built[key] = StripeGateway(
                api_key=key, api_base=config().stripe_api_base,
                http_client=stripe.RequestsClient(timeout=config().stripe_timeout_seconds))
        return gateway


def refresh_stripe_key() -> bool:
    """Stripe refused our key: read it again now. True when another key is now configured, so
    the refused call is worth making once more."""
    with _lock:
        current = next(iter(_built), None)
    forget_secret(_KEY)
    return secret(_KEY) != current
