"""Bookable time slots and their seats."""
from __future__ import annotations

from datetime import date, datetime

from chalicelib.errors import InvalidRequest
from chalicelib.ids import new_id
from chalicelib.rules import local_day_bounds
from chalicelib.storage.models import SlotRecord, VenueRecord

MAX_SLOTS_PER_DAY = 500


def create_slot(venue: VenueRecord, product_id: str, product_name: str, start: datetime, end: datetime,
                capacity: int) -> SlotRecord:
    if start >= end:
        raise InvalidRequest("the slot must start before it ends", {"fields": {"end": "must be after start"}})
    slot = SlotRecord(
        venue_id=venue.venue_id, slot_id=new_id(), product_key=f"{venue.venue_id}#{product_id}",
        product_id=product_id, product_name=product_name, start=start, end=end,
        capacity=capacity, booked=0, remaining=capacity,
    )
    slot.save(condition=SlotRecord.slot_id.does_not_exist())
    return slot


def slots_on(venue: VenueRecord, product_id: str, day: date, not_before: datetime | None = None) -> list[SlotRecord]:
    """The product's slots starting on `day` in the venue's time zone, in start order."""
    low, high = local_day_bounds(day, venue.timezone)
    if not_before is not None and not_before > low:
        low = not_before
    if low >= high:
        return []
    return [slot for slot in SlotRecord.by_product_start.query(
        f"{venue.venue_id}#{product_id}", SlotRecord.start.between(low, high), limit=MAX_SLOTS_PER_DAY)
        if slot.start < high]
