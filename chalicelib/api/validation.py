"""Request validation: strict JSON bodies and query strings, field by field, with the contract's
`invalid_request` naming every bad field. Nothing here touches storage."""
from __future__ import annotations

import json
import re
import unicodedata
from collections.abc import Callable, Mapping
from datetime import date, datetime
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError, available_timezones

from chalicelib.errors import InvalidRequest, PayloadTooLarge
from chalicelib.times import EARLIEST, EARLIEST_DAY, LATEST, LATEST_DAY, parse_rfc3339

Converter = Callable[[Any], Any]

_ID = re.compile(r"[A-Za-z0-9_-]{1,64}")
_EMAIL = re.compile(r"[^@\s]{1,64}@[^@\s]+\.[^@\s]+")
_CURRENCY = re.compile(r"[a-z]{3}")
_STRIPE_ID = re.compile(r"[A-Za-z0-9_]{1,255}")
_STRIPE_ACCOUNT = re.compile(r"acct_[A-Za-z0-9]{1,250}")
_CURSOR = re.compile(r"[A-Za-z0-9_=-]{1,1024}")


class Optional_:
    """Marks a field that may be absent (but, if present, must convert). Null reads as absent
    unless `null_is_absent` is false, when it must convert like any other value."""

    def __init__(self, convert: Converter, null_is_absent: bool = True) -> None:
        self.convert = convert
        self.null_is_absent = null_is_absent


def optional(convert: Converter, null_is_absent: bool = True) -> Optional_:
    return Optional_(convert, null_is_absent)


def nullable(convert: Converter) -> Converter:
    """A required field whose value may be null (e.g. to unset something)."""
    return lambda value: None if value is None else convert(value)


def json_body(raw: bytes | None, max_bytes: int) -> dict[str, Any]:
    """The request body as a JSON object, or 400/413 in the contract's shape."""
    raw = raw or b""
    if len(raw) > max_bytes:
        raise PayloadTooLarge(f"the request body is larger than {max_bytes} bytes")
    if not raw:  # no body at all reads as {}; whitespace alone is not JSON
        return {}
    try:
        body = json.loads(raw.decode("utf-8"), object_pairs_hook=_unique_keys, parse_constant=_no_constant)
    except (UnicodeDecodeError, ValueError, RecursionError):
        raise InvalidRequest("the request body is not valid JSON") from None
    if not isinstance(body, dict):
        raise InvalidRequest("the request body must be a JSON object")
    return body


def _unique_keys(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    # Parsers disagree on which of two equal keys wins, so a body with both is refused, not guessed.
    body = dict(pairs)
    if len(body) != len(pairs):
        raise ValueError("a key appears twice in one object")
    return body


def _no_constant(name: str) -> Any:
    raise ValueError(f"{name} is not JSON")


def fields(body: Mapping[str, Any], spec: Mapping[str, Converter | Optional_]) -> dict[str, Any]:
    """Convert `body` by `spec`; unknown, missing or bad fields are one 400 naming them all."""
    problems: dict[str, str] = {}
    for name in body:
        if name not in spec:
            problems[str(name)[:64]] = "unknown field"
    values: dict[str, Any] = {}
    for name, rule in spec.items():
        convert = rule.convert if isinstance(rule, Optional_) else rule
        if name not in body or (isinstance(rule, Optional_) and rule.null_is_absent and body[name] is None):
            if not isinstance(rule, Optional_):
                problems[name] = "required"
            continue
        try:
            values[name] = convert(body[name])
        except (ValueError, TypeError) as error:
            problems[name] = str(error) or "invalid value"
    if problems:
        raise InvalidRequest("the request has invalid fields", {"fields": problems})
    return values


def query(params: Mapping[str, str] | None, spec: Mapping[str, Converter | Optional_]) -> dict[str, Any]:
    return fields(dict(params or {}), spec)


def boolean(value: Any) -> bool:
    if not isinstance(value, bool):
        raise ValueError("must be true or false")
    return value


def integer(low: int, high: int) -> Callable[[Any], int]:
    def convert(value: Any) -> int:
        if isinstance(value, bool) or not isinstance(value, int):
            raise ValueError("must be an integer")
        if not low <= value <= high:
            raise ValueError(f"must be between {low} and {high}")
        return value

    return convert


def integer_text(low: int, high: int) -> Converter:
    """An integer given as a query-string value."""

    def convert(value: Any) -> int:
        if not isinstance(value, str) or not re.fullmatch(r"[0-9]{1,9}", value):  # ASCII digits only
            raise ValueError("must be a whole number")
        return integer(low, high)(int(value))

    return convert


def text(max_length: int, min_length: int = 1) -> Converter:
    """Trimmed, printable text in NFC, with at least one visible character: no control, invisible
    or direction characters, no unpaired surrogates. Names show on receipts and to staff, so two
    names that look the same must be stored the same, and none may look empty or reorder itself."""

    def convert(value: Any) -> str:
        if not isinstance(value, str):
            raise ValueError("must be a string")
        trimmed = value.strip()
        if any(unicodedata.category(char) == "Cs" for char in trimmed):
            raise ValueError("must contain only printable characters")
        cleaned = unicodedata.normalize("NFC", trimmed)
        if not min_length <= len(cleaned) <= max_length:
            raise ValueError(f"must be {min_length} to {max_length} characters")
        for index, char in enumerate(cleaned):
            category = unicodedata.category(char)
            if category in ("Cc", "Co", "Cn") or (category.startswith("Z") and char != " "):
                raise ValueError("must contain only printable characters")
            if _invisible(char) and not _shapes_neighbours(cleaned, index):
                raise ValueError("must not contain invisible or text-direction characters")
        if cleaned and not any(_visible(char) for char in cleaned):
            raise ValueError("must contain a visible character")
        return cleaned

    return convert


# Unicode's Default_Ignorable_Code_Point (zero-width spaces and joiners, direction marks, fillers,
# variation selectors, tags) plus blanks that render as nothing (Braille blank).
_INVISIBLE_RANGES = (
    (0x00AD, 0x00AD), (0x034F, 0x034F), (0x061C, 0x061C), (0x115F, 0x1160), (0x17B4, 0x17B5),
    (0x180B, 0x180F), (0x200B, 0x200F), (0x202A, 0x202E), (0x2060, 0x206F), (0x2800, 0x2800),
    (0x3164, 0x3164), (0xFE00, 0xFE0F), (0xFEFF, 0xFEFF), (0xFFA0, 0xFFA0), (0xFFF0, 0xFFF8),
    (0x1BCA0, 0x1BCA3), (0x1D173, 0x1D17A), (0xE0000, 0xE0FFF),
)
# Zero-width non-joiner and joiner shape letters in Persian, Arabic and Indic names (and join
# emoji): allowed between two visible characters, where they do that and nothing else. Emoji
# presentation selectors are allowed right after a symbol.
_JOINERS = frozenset("\u200c\u200d")
_EMOJI_SELECTORS = frozenset("\ufe0e\ufe0f")


def _invisible(char: str) -> bool:
    point = ord(char)
    return any(low <= point <= high for low, high in _INVISIBLE_RANGES)


def _shapes_neighbours(value: str, index: int) -> bool:
    char, before = value[index], value[index - 1] if index else ""
    if char in _EMOJI_SELECTORS:
        return bool(before) and unicodedata.category(before) == "So"
    if char not in _JOINERS or not before or index == len(value) - 1:
        return False
    after = value[index + 1]
    return all(unicodedata.category(c)[0] in "LMS" and not _invisible(c) for c in (before, after))


def _visible(char: str) -> bool:
    return unicodedata.category(char)[0] in "LNPS" and not _invisible(char)


def identifier(value: Any) -> str:
    if not isinstance(value, str) or not _ID.fullmatch(value):
        raise ValueError("must be an id of 1 to 64 letters, digits, '-' or '_'")
    return value


def stripe_id(value: Any) -> str:
    if not isinstance(value, str) or not _STRIPE_ID.fullmatch(value):
        raise ValueError("must be a Stripe id such as pi_3Mtw...")
    return value


def stripe_account(value: Any) -> str:
    """A connected Stripe account's id: `acct_` and Stripe's id alphabet (ASCII letters and digits)."""
    if not isinstance(value, str) or not _STRIPE_ACCOUNT.fullmatch(value):
        raise ValueError("must be a Stripe account id (acct_ followed by letters and digits)")
    return value


def cursor(value: Any) -> str:
    if not isinstance(value, str) or not _CURSOR.fullmatch(value):
        raise ValueError("use next_cursor as given")
    return value


def email(value: Any) -> str:
    if (not isinstance(value, str) or len(value) > 254 or not _EMAIL.fullmatch(value.strip())
            or not value.strip().isprintable()):
        raise ValueError("must be an email address")
    return value.strip().lower()


def password(value: Any) -> str:
    if not isinstance(value, str) or not 8 <= len(value) <= 256:
        raise ValueError("must be 8 to 256 characters")
    return value


def login_password(value: Any) -> str:
    """Any password at login (the rules are checked when it is set), bounded in size."""
    if not isinstance(value, str) or not 1 <= len(value) <= 256:
        raise ValueError("must be 1 to 256 characters")
    return value


def currency(value: Any) -> str:
    if not isinstance(value, str) or not _CURRENCY.fullmatch(value):
        raise ValueError("must be a lowercase ISO 4217 code, e.g. usd")
    return value


def timezone_name(value: Any) -> str:
    """A canonical IANA zone: one that tzdata's zone.tab lists for a country, or UTC. Links kept
    for old names (US/Eastern, Asia/Calcutta), POSIX-style rules (EST5EDT), `Factory` and the
    host's `localtime` are refused: they may vanish or change meaning between tzdata releases."""
    if not isinstance(value, str) or value not in _timezones():
        raise ValueError("must be a canonical IANA time zone, e.g. Europe/London")
    try:
        ZoneInfo(value)
    except (ZoneInfoNotFoundError, ValueError):
        raise ValueError("must be a canonical IANA time zone, e.g. Europe/London") from None
    return value


def timestamp(value: Any) -> datetime:
    moment = parse_rfc3339(value)
    if not EARLIEST <= moment < LATEST:
        raise ValueError(f"must be a time in the years {EARLIEST.year} to {LATEST_DAY.year}")
    return moment


def calendar_date(value: Any) -> date:
    if not isinstance(value, str) or not re.fullmatch(r"[0-9]{4}-[0-9]{2}-[0-9]{2}", value):
        raise ValueError("must be a date, YYYY-MM-DD")
    try:
        day = date.fromisoformat(value)
    except ValueError:
        raise ValueError("must be a real date, YYYY-MM-DD") from None
    if not EARLIEST_DAY <= day <= LATEST_DAY:
        raise ValueError(f"must be a date in the years {EARLIEST_DAY.year} to {LATEST_DAY.year}")
    return day


def calendar_month(value: Any) -> date:
    """`YYYY-MM`, as the first day of that month; only months a venue can have slots in."""
    if not isinstance(value, str) or not re.fullmatch(r"[0-9]{4}-[0-9]{2}", value):
        raise ValueError("must be a month, YYYY-MM")
    year, month = int(value[:4]), int(value[5:])
    if not (1 <= month <= 12 and EARLIEST_DAY.year <= year <= LATEST_DAY.year):
        raise ValueError(f"must be a real month in the years {EARLIEST_DAY.year} to {LATEST_DAY.year}")
    return date(year, month, 1)


def one_of(*choices: str) -> Converter:
    def convert(value: Any) -> str:
        if value not in choices:
            raise ValueError(f"must be one of {', '.join(choices)}")
        return str(value)

    return convert


def list_of(convert: Converter, min_items: int, max_items: int, unique: bool = False) -> Converter:
    def convert_list(value: Any) -> list[Any]:
        if not isinstance(value, list):
            raise ValueError("must be a list")
        if not min_items <= len(value) <= max_items:
            raise ValueError(f"must have {min_items} to {max_items} items")
        items = []
        for index, item in enumerate(value):
            try:
                items.append(convert(item))
            except (ValueError, TypeError) as error:
                raise ValueError(f"item {index}: {error}") from None
        if unique and len(set(items)) != len(items):
            raise ValueError("must not repeat an item")
        return items

    return convert_list


def obj(spec: Mapping[str, Converter | Optional_]) -> Converter:
    def convert(value: Any) -> dict[str, Any]:
        if not isinstance(value, dict):
            raise ValueError("must be an object")
        try:
            return fields(value, spec)
        except InvalidRequest as error:
            detail = (error.details or {}).get("fields", {})
            raise ValueError("; ".join(f"{k}: {v}" for k, v in detail.items())) from None

    return convert


_TIMEZONES: set[str] | None = None


def _timezones() -> set[str]:
    global _TIMEZONES
    if _TIMEZONES is None:
        from importlib.resources import files

        table = files("tzdata").joinpath("zoneinfo", "zone.tab").read_text(encoding="utf-8")
        listed = {line.split("\t")[2] for line in table.splitlines() if line and not line.startswith("#")}
        _TIMEZONES = (listed | {"UTC"}) & available_timezones()
    return _TIMEZONES
