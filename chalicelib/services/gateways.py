"""The one Stripe gateway of a container, built on first use so cold starts never import Stripe."""
from __future__ import annotations

from functools import lru_cache
from typing import TYPE_CHECKING

from chalicelib.config import config, secret

if TYPE_CHECKING:
    from chalicelib.payments import StripeGateway


@lru_cache(maxsize=1)
def stripe_gateway() -> StripeGateway:
    import stripe

    from chalicelib.payments import StripeGateway

    # A bounded wait: a hung Stripe call must end well inside the worker's Lambda timeout.
    return StripeGateway(api_key=secret("STRIPE_API_KEY"), api_base=config().stripe_api_base,
                         http_client=stripe.RequestsClient(timeout=20))
