"""Venues, their API keys, their settings (the two switches and the refund cutoff) and the Stripe
account their guests pay into."""
from __future__ import annotations

from datetime import datetime

from pynamodb.exceptions import PutError

from chalicelib import auth
from chalicelib.errors import Conflict
from chalicelib.ids import new_id
from chalicelib.observability import log_error, log_event
from chalicelib.rules import VenueSettings
from chalicelib.services.access import Admin, require_platform
from chalicelib.storage.models import ApiKeyRecord, VenueRecord
from chalicelib import queues


def create_venue(admin: Admin, name: str, timezone: str, currency: str, now: datetime,
                 venue_id: str | None = None, stripe_account: str | None = None) -> VenueRecord:
    require_platform(admin)
    venue = VenueRecord(
        venue_id=venue_id or new_id(), name=name, timezone=timezone, currency=currency,
        allow_guest_modify=False, refund_on_cancel=False, refund_cutoff_hours=24,
        settings_version=1, settings_updated_at=now, created_at=now, stripe_account=stripe_account,
    )
    try:
        venue.save(condition=VenueRecord.venue_id.does_not_exist())
    except PutError as error:
        if error.cause_response_code == "ConditionalCheckFailedException":
            raise Conflict("a venue with this venue_id exists", {"venue_id": venue.venue_id}) from None
        raise
    log_event("venue_created", venue_id=venue.venue_id, actor=admin.actor, stripe_account=stripe_account)
    return venue


def connect_stripe_account(admin: Admin, venue: VenueRecord, stripe_account: str | None) -> VenueRecord:
    """Purchases recorded from now on are checked and refunded on `stripe_account` (None: the
    platform's own); those recorded before keep the account they were paid on."""
    require_platform(admin)
    action = (VenueRecord.stripe_account.set(stripe_account) if stripe_account
              else VenueRecord.stripe_account.remove())
    previous = venue.stripe_account
    venue.update(actions=[action], condition=VenueRecord.venue_id.exists())
    log_event("venue_stripe_account_changed", venue_id=venue.venue_id, actor=admin.actor,
              stripe_account=stripe_account, previous_stripe_account=previous)
    return venue


def mint_api_key(admin: Admin, venue: VenueRecord, now: datetime) -> auth.NewApiKey:
    require_platform(admin)
    key = auth.new_api_key(new_id())
    ApiKeyRecord(key_hash=key.key_hash, key_id=key.key_id, venue_id=venue.venue_id, created_at=now).save(
        condition=ApiKeyRecord.key_hash.does_not_exist())
    log_event("api_key_minted", venue_id=venue.venue_id, key_id=key.key_id, actor=admin.actor)
    return key


def update_settings(admin: Admin, venue: VenueRecord, settings: VenueSettings, now: datetime) -> VenueRecord:
    """Save the settings (they apply to the next request at once), then ask the background job
    to bring the stored refund deadlines of the venue's future sessions up to date."""
    venue.update(actions=[
        VenueRecord.allow_guest_modify.set(settings.allow_guest_modify),
        VenueRecord.refund_on_cancel.set(settings.refund_on_cancel),
        VenueRecord.refund_cutoff_hours.set(settings.refund_cutoff_hours),
        VenueRecord.settings_version.add(1),
        VenueRecord.settings_updated_at.set(now),
    ], condition=VenueRecord.venue_id.exists())
    log_event("settings_updated", venue_id=venue.venue_id, actor=admin.actor,
              settings_version=venue.settings_version, allow_guest_modify=settings.allow_guest_modify,
              refund_on_cancel=settings.refund_on_cancel, refund_cutoff_hours=settings.refund_cutoff_hours)
    try:
        queues.send_deadline_update(venue.venue_id, int(venue.settings_version))
    except Exception as error:  # the window closer re-checks settings, so a lost send only delays
        log_error("deadline_update_send_failed", venue_id=venue.venue_id, error=repr(error))
    return venue
