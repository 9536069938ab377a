"""Bookable time slots and their seats, and which days of a month still have a free one."""
from __future__ import annotations

from datetime import date, datetime, timedelta
from zoneinfo import ZoneInfo

from chalicelib.errors import InvalidRequest
from chalicelib.ids import new_id
from chalicelib.rules import local_day_bounds, local_month_bounds
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


def slots_on(venue: VenueRecord, product_id: str, day: date, not_before: datetime | None = None,
             open_only: bool = False) -> list[SlotRecord]:
    """The product's slots starting on `day` in the venue's time zone, in start order; with
    `open_only`, not those staff closed."""
    low, high = local_day_bounds(day, venue.timezone)
    if not_before is not None and not_before > low:
        low = not_before
    if low >= high:
        return []
    return [slot for slot in SlotRecord.by_product_start.query(
        f"{venue.venue_id}#{product_id}", SlotRecord.start.between(low, high), limit=MAX_SLOTS_PER_DAY)
        if slot.start < high and not (open_only and slot.closure_job_id)]


def open_days(venue: VenueRecord, product_id: str, month: date, not_before: datetime) -> list[date]:
    """The days of `month` (in the venue's time zone) with at least one slot of the product that
    has not started and has a seat left: one Query of the product's slots in that month."""
    low, high = local_month_bounds(month, venue.timezone)
    low = max(low, not_before)
    if low >= high:
        return []
    zone = ZoneInfo(venue.timezone)
    days = {slot.start.astimezone(zone).date() for slot in SlotRecord.by_product_start.query(
        f"{venue.venue_id}#{product_id}", SlotRecord.start.between(low, high - timedelta(microseconds=1)),
        filter_condition=SlotRecord.remaining > 0) if not slot.closure_job_id}
    return sorted(days)

