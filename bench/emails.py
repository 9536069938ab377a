"""What an email to a guest costs: the outbox item the change writes in its own transaction, the
sender's DynamoDB calls for one notification, and dollars per 1,000 emails with SES's price."""
from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from bench.capacity import Meter, Metered
from bench.operations import Row
from bench.world import World

SES_PER_THOUSAND = 0.10  # Amazon SES outbound email, per 1,000 messages
SES_DATA_PER_GB = 0.12  # SES outgoing data (the message's size, headers and both parts)
EMAIL_KB = 8  # a rendered email, text and HTML parts with headers, as measured locally (about 4-8 KB)
LAMBDA_REQUEST_PER_M = 0.20
LAMBDA_GB_SECOND = 0.0000166667
DYNAMODB_WRU_PER_M = 0.625
DYNAMODB_RRU_PER_M = 0.125
MEMORY_GB = 0.5
SENDER_SECONDS = 0.3  # assumed: one SES call (about 100-200 ms) and four DynamoDB calls


def measure_emails(world: World, meter: Meter, deliver_streams: Callable[[], int]) -> list[Row]:
    """A move with notify_guests on and off (the difference is the outbox item), then the sender
    handling that one notification from the stream."""
    rows: list[Row] = []
    deliver_streams()  # what earlier figures queued is sent first, outside the measurement
    for notify in (False, True):
        venue = world.venue(allow_guest_modify=True, refund_on_cancel=True)
        venue.admin.answer("PUT", f"/v1/admin/venues/{venue.venue_id}/settings", {
            "allow_guest_modify": True, "refund_on_cancel": True, "refund_cutoff_hours": 24, "notify_guests": notify})
        slot_a, slot_b = world.slot(venue, capacity=1000), world.slot(venue, capacity=1000)
        guest = world.guest(venue)
        made = world.purchase(guest, [slot_a])
        path = f"/v1/me/transactions/{made['transaction_id']}/sessions/{made['sessions'][0]['session_id']}"
        with meter.measure() as metered:
            guest.api.answer("PATCH", path, {"slot_id": slot_b["slot_id"]})
        rows.append(Row(f"move, notify_guests {'on (email queued)' if notify else 'off'}", metered))
    with meter.measure() as metered:
        deliver_streams()
    rows.append(Row("email sender, 1 notification", metered,
                    "read, claim, guest's address (GSI), mark sent; plus one SES call"))
    return rows


@dataclass
class EmailCost:
    outbox_wru: float
    sender_rru: float
    sender_wru: float
    lines: list[tuple[str, str, float]]

    @property
    def total(self) -> float:
        return sum(dollars for _, _, dollars in self.lines)


def per_thousand(move_without: Metered, move_with: Metered, sender: Metered) -> EmailCost:
    n = 1000
    outbox_wru = move_with.write_units - move_without.write_units
    wru = outbox_wru + sender.write_units
    rru = (move_with.read_units - move_without.read_units) + sender.read_units
    gb_s = MEMORY_GB * SENDER_SECONDS
    lines = [
        ("SES messages", f"{n:,} emails", n * SES_PER_THOUSAND / 1000),
        ("SES data", f"{n * EMAIL_KB / 1024 / 1024:.3f} GB", n * EMAIL_KB / 1024 / 1024 * SES_DATA_PER_GB),
        ("Lambda requests (sender)", f"{n:,} invocations", n * LAMBDA_REQUEST_PER_M / 1e6),
        ("Lambda compute (sender)", f"{n * gb_s:,.0f} GB-s", n * gb_s * LAMBDA_GB_SECOND),
        ("DynamoDB writes (outbox item + claim + sent)", f"{n * wru:,.0f} WRU", n * wru * DYNAMODB_WRU_PER_M / 1e6),
        ("DynamoDB reads (sender)", f"{n * rru:,.0f} RRU", n * rru * DYNAMODB_RRU_PER_M / 1e6),
        ("DynamoDB Streams reads by Lambda", "-", 0.0),
    ]
    return EmailCost(outbox_wru, sender.read_units, sender.write_units, lines)


def markdown(rows: list[Row]) -> list[str]:
    found = {row.name: row.metered for row in rows}
    without, with_, sender = (found.get("move, notify_guests off"), found.get("move, notify_guests on (email queued)"),
                              found.get("email sender, 1 notification"))
    if not (without and with_ and sender):
        return ["## Emails to guests", "", "n/a: not measured.", ""]
    lines = ["## Emails to guests: DynamoDB calls, request units and dollars per 1,000", "",
             "The same move with the venue's `notify_guests` off and on: the difference is the outbox item,",
             "written in the move's own TransactWriteItems (no extra call). Then the sender handling that one",
             "notification from the stream (request units computed as above).", "",
             "| operation | calls | RRU | WRU | note |", "|---|---:|---:|---:|---|"]
    for row in rows:
        m: Any = row.metered
        lines.append(f"| {row.name} | {m.calls} ({m.summary()}) | {m.read_units:g} | {m.write_units:g} | {row.note} |")
    cost = per_thousand(without, with_, sender)
    lines += ["", f"Prices (us-east-1 list, before free tiers): Amazon SES ${SES_PER_THOUSAND:.2f} per 1,000 emails and "
              f"${SES_DATA_PER_GB:.2f} per GB sent (an email of about {EMAIL_KB} KB); Lambda as above, the sender assumed",
              f"at {MEMORY_GB * 1024:.0f} MB for {SENDER_SECONDS} s and one invocation per email (an upper bound: the",
              "stream hands it up to 10 records at once); DynamoDB on-demand as above. Lambda's reads of a",
              "DynamoDB Stream are free; the sender's own status updates are filtered out of its event source.", "",
              "| per 1,000 emails | units | $ |", "|---|---:|---:|"]
    lines += [f"| {name} | {units} | ${dollars:.4f} |" for name, units, dollars in cost.lines]
    lines += [f"| **total** | | **${cost.total:.3f}** |", "",
              f"Per email: {cost.outbox_wru:g} WRU for the outbox item in the change's write, then "
              f"{cost.sender_rru:g} RRU and {cost.sender_wru:g} WRU in the sender. SES is most of the cost.", ""]
    return lines
