"""Our Stripe key and the one Stripe gateway a container builds with it: on first use, so cold
starts never import Stripe, and again when the key changes (rotated in Secrets Manager).
app.py builds one `StripeKey` per container (the `StripeAccess` of parts.py)."""
from __future__ import annotations

import threading
from typing import TYPE_CHECKING

from chalicelib.config import config, forget_secret, secret

if TYPE_CHECKING:
    from chalicelib.payments import StripeGateway

_KEY = "STRIPE_API_KEY"


class StripeKey:
    def __init__(self) -> None:
        self._built: dict[str, StripeGateway] = {}  # our current key -> its gateway (one entry)
        self._lock = threading.Lock()

    def gateway(self) -> StripeGateway:
        key = secret(_KEY)
        with self._lock:
            gateway = self._built.get(key)
            if gateway is None:
                import stripe

                from chalicelib.payments import StripeGateway

                self._built.clear()
                # A bounded wait of a few seconds: a hung Stripe call must end well inside the
                # worker's Lambda timeout, which takes a message only with this much time left.
                gateway = self._built[key] = StripeGateway(
                    api_key=key, api_base=config().stripe_api_base,
                    http_client=stripe.RequestsClient(timeout=config().stripe_timeout_seconds))
            return gateway

    def refresh_key(self) -> bool:
        """Stripe refused our key: read it again now. True when another key is now configured, so
        the refused call is worth making once more."""
        with self._lock:
            current = next(iter(self._built), None)
        forget_secret(_KEY)
        return secret(_KEY) != current
