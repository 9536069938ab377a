"""RFC 3339 in and out: inputs must carry an offset, outputs are UTC with `Z`."""
from __future__ import annotations

import re
from datetime import UTC, date, datetime

# ASCII digits only: Python's \d (and int(), fromisoformat()) also read other scripts' digits.
_RFC3339 = re.compile(
    r"[0-9]{4}-[0-9]{2}-[0-9]{2}[Tt][0-9]{2}:[0-9]{2}:[0-9]{2}(\.[0-9]{1,9})?([Zz]|[+-][0-9]{2}:[0-9]{2})"
)
# The years a venue can use. Outside them, zone arithmetic near year 1 or 9999 overflows, and no
# session is ever booked there.
EARLIEST = datetime(1970, 1, 1, tzinfo=UTC)
LATEST = datetime(2201, 1, 1, tzinfo=UTC)  # exclusive: 2200-12-31 is the last usable day
EARLIEST_DAY = EARLIEST.date()
LATEST_DAY = date(2200, 12, 31)


def utc_now() -> datetime:
    return datetime.now(UTC)


def parse_rfc3339(value: str) -> datetime:
    """A timezone-aware UTC datetime, or ValueError for anything without an explicit offset."""
    if not isinstance(value, str) or not _RFC3339.fullmatch(value):
        raise ValueError("must be an RFC 3339 time with an offset, e.g. 2026-12-01T10:00:00Z")
    text = value.upper()
    if "." in text:  # Python reads at most microseconds
        head, rest = text.split(".", 1)
        digits = re.match(r"[0-9]+", rest).group(0)  # type: ignore[union-attr]
        text = f"{head}.{digits[:6].ljust(6, '0')}{rest[len(digits):]}"
    try:
        return datetime.fromisoformat(text.replace("Z", "+00:00")).astimezone(UTC)
    except OverflowError:  # e.g. 0001-01-01T00:00:00+01:00 is before year 1 in UTC
        raise ValueError("must be a time between the years 0001 and 9999 in UTC") from None
    except ValueError:  # Python's own words (hour 25, offset +99:00) are not for the client
        raise ValueError("must be a real time, e.g. 2026-12-01T10:00:00Z") from None


def format_utc(moment: datetime | None) -> str | None:
    if moment is None:
        return None
    moment = moment.astimezone(UTC)
    # Not strftime("%Y"): glibc does not zero-pad years before 1000, which is not RFC 3339.
    text = f"{moment.year:04d}-{moment:%m-%dT%H:%M:%S}"
    return f"{text}.{moment.microsecond:06d}Z" if moment.microsecond else f"{text}Z"
