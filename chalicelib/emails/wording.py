"""How an email states money, times and its subject: pure functions, cheap to import, used when a
notification is queued (its subject is known from the start) and by the templates."""
from __future__ import annotations

from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

from chalicelib.times import parse_rfc3339

# ISO 4217 minor units that are not 2 (Stripe's zero- and three-decimal currencies).
_DECIMALS = {**{code: 0 for code in ("bif", "clp", "djf", "gnf", "jpy", "kmf", "krw", "mga", "pyg", "rwf",
                                      "ugx", "vnd", "vuv", "xaf", "xof", "xpf")},
             **{code: 3 for code in ("bhd", "jod", "kwd", "omr", "tnd")}}
_SYMBOLS = {"usd": "$", "eur": "€", "gbp": "£", "jpy": "¥", "aud": "A$", "cad": "C$", "nzd": "NZ$", "chf": "CHF "}

KINDS = ("session_changed", "sessions_cancelled", "refund_refunded", "refund_failed", "slot_closed",
         "password_reset", "guest_invited")
# The kinds a venue switches off with `notify_guests`; account emails always go.
CHANGE_KINDS = KINDS[:5]


def money(amount: int, currency: str) -> str:
    """2500 usd -> "$25.00"; 1200 jpy -> "¥1,200"; an unknown currency keeps its code: "12.50 SEK"."""
    decimals = _DECIMALS.get(currency.lower(), 2)
    number = f"{amount / 10 ** decimals:,.{decimals}f}"
    symbol = _SYMBOLS.get(currency.lower())
    return f"{symbol}{number}" if symbol else f"{number} {currency.upper()}"


def local_time(moment: str | datetime, timezone: str) -> datetime:
    value = parse_rfc3339(moment) if isinstance(moment, str) else moment
    return value.astimezone(ZoneInfo(timezone))


def when(moment: str | datetime, timezone: str) -> str:
    """"Saturday 5 December 2026, 10:00 (GMT)": the venue's wall clock, its zone named."""
    local = local_time(moment, timezone)
    return f"{local:%A} {local.day} {local:%B %Y, %H:%M} ({local.tzname()})"


def day(moment: str | datetime, timezone: str) -> str:
    local = local_time(moment, timezone)
    return f"{local:%a} {local.day} {local:%b}"


def subject(kind: str, facts: dict[str, Any]) -> str:
    """The subject line; plain text (the email's own headers encode it)."""
    tz = facts["timezone"]
    if kind == "session_changed":
        return f"Your booking for {facts['after']['participant_name']} on {day(facts['after']['start'], tz)} has changed"
    if kind == "sessions_cancelled":
        count = len(facts["sessions"])
        return f"{count} session{'s' if count != 1 else ''} cancelled" + (
            f": {money(facts['refund_amount'], facts['currency'])} on its way back" if facts["refund_amount"] else "")
    if kind == "refund_refunded":
        return f"Your refund of {money(facts['amount'], facts['currency'])} has been paid"
    if kind == "refund_failed":
        return f"Your refund of {money(facts['amount'], facts['currency'])} could not be paid"
    if kind == "slot_closed":
        return f"{facts['product_name']} on {day(facts['start'], tz)} is cancelled by {facts['venue_name']}"
    if kind == "password_reset":
        return f"Reset your password for {facts['venue_name']}"
    if kind == "guest_invited":
        return f"{facts['venue_name']} invites you to manage your bookings"
    raise ValueError(f"unknown notification kind {kind!r}")
