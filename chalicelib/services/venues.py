"""Venues, their API keys, their settings (the two switches, the cutoffs, the fee) and the Stripe
account their guests pay into."""
from __future__ import annotations

from collections.abc import Mapping
from dataclasses import asdict, fields
from datetime import datetime
from typing import Any

from chalicelib import auth
from chalicelib.errors import Conflict
from chalicelib.ids import new_id
from chalicelib.observability import log_error, log_event
from chalicelib.parts import QueueSender
from chalicelib.rules import VenueSettings
from chalicelib.services.access import Admin, require_platform
from chalicelib.storage import venue_cache
from chalicelib.storage.conditional import save_if
from chalicelib.storage.models import ApiKeyRecord, VenueRecord


def create_venue(admin: Admin, name: str, timezone: str, currency: str, now: datetime,
                 venue_id: str | None = None, stripe_account: str | None = None) -> VenueRecord:
    require_platform(admin)
    venue = VenueRecord(
        venue_id=venue_id or new_id(), name=name, timezone=timezone, currency=currency,
        allow_guest_modify=False, refund_on_cancel=False, refund_cutoff_hours=24,
        settings_version=1, settings_updated_at=now, created_at=now, stripe_account=stripe_account,
    )
    if not save_if(venue, VenueRecord.venue_id.does_not_exist()):
        raise Conflict("a venue with this venue_id exists", {"venue_id": venue.venue_id})
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


SETTINGS_FIELDS = frozenset(field.name for field in fields(VenueSettings))


def update_settings(admin: Admin, venue: VenueRecord, changes: Mapping[str, Any], now: datetime,
                    queues: QueueSender) -> VenueRecord:
    """Save the settings named in `changes`; the others keep their values (written field by
    field, so two admins changing different fields do not undo each other). They apply to the
    next request at once; then the background job brings the stored refund deadlines of the
    venue's future sessions up to date."""
    unknown = set(changes) - SETTINGS_FIELDS
    if unknown:
        raise ValueError(f"not venue settings: {sorted(unknown)}")
    venue.update(actions=[
        *(getattr(VenueRecord, name).set(value) for name, value in sorted(changes.items())),
        VenueRecord.settings_version.add(1),
        VenueRecord.settings_updated_at.set(now),
    ], condition=VenueRecord.venue_id.exists())
    venue_cache.forget(venue.venue_id)  # this Lambda's next request sees the new settings at once
    log_event("settings_updated", venue_id=venue.venue_id, actor=admin.actor,
              settings_version=venue.settings_version, changed=sorted(changes), **asdict(venue.settings()))
    try:
        queues.send_deadline_update(venue.venue_id, int(venue.settings_version))
    except Exception as error:  # the window closer re-checks settings, so a lost send only delays
        log_error("deadline_update_send_failed", venue_id=venue.venue_id, error=repr(error))
    return venue
