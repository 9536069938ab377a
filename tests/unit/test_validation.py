"""Request validation: strict types, ranges, offsets on times, and every bad field named."""
from __future__ import annotations

import re
from datetime import UTC, datetime

import hypothesis
import pytest
from hypothesis import strategies as st

from chalicelib.api import validation as v
from chalicelib.errors import InvalidRequest, PayloadTooLarge
from chalicelib.times import format_utc, parse_rfc3339

SETTINGS = {"allow_guest_modify": v.boolean, "refund_on_cancel": v.boolean, "refund_cutoff_hours": v.integer(0, 8760)}


def test_every_bad_field_is_named_at_once() -> None:
    with pytest.raises(InvalidRequest) as raised:
        v.fields({"allow_guest_modify": "true", "refund_cutoff_hours": 9000, "colour": "red"}, SETTINGS)
    assert raised.value.details == {"fields": {
        "colour": "unknown field", "allow_guest_modify": "must be true or false",
        "refund_on_cancel": "required", "refund_cutoff_hours": "must be between 0 and 8760"}}


@pytest.mark.parametrize("value", [True, 1.0, "3", None, [], 8761, -1])
def test_hours_must_be_a_whole_number_in_range(value: object) -> None:
    with pytest.raises(InvalidRequest):
        v.fields({"allow_guest_modify": True, "refund_on_cancel": True, "refund_cutoff_hours": value}, SETTINGS)


@pytest.mark.parametrize("raw", [b"{", b"\xff\xfe", b"[1]", b'"text"', b"[" * 100_000])
def test_bodies_that_are_not_a_json_object_are_400(raw: bytes) -> None:
    with pytest.raises(InvalidRequest):
        v.json_body(raw, max_bytes=1_000_000)


def test_an_empty_body_reads_as_no_fields() -> None:
    assert v.json_body(b"", 10) == {} and v.json_body(None, 10) == {}


def test_a_body_over_the_limit_is_413() -> None:
    with pytest.raises(PayloadTooLarge):
        v.json_body(b" " * 11, max_bytes=10)


@pytest.mark.parametrize("value", ["2027-01-01T10:00:00", "2027-01-01 10:00:00Z", "2027-01-01", "tomorrow",
                                   "2027-02-30T10:00:00Z", 1700000000])
def test_times_without_an_offset_or_not_rfc3339_are_refused(value: object) -> None:
    with pytest.raises(ValueError):
        v.timestamp(value)


def test_times_with_offsets_become_utc_and_print_with_z() -> None:
    parsed = parse_rfc3339("2027-01-01T10:00:00+02:00")
    assert parsed == datetime(2027, 1, 1, 8, 0, tzinfo=UTC)
    assert format_utc(parsed) == "2027-01-01T08:00:00Z"
    assert format_utc(parse_rfc3339("2027-01-01T10:00:00.123456789z")) == "2027-01-01T10:00:00.123456Z"
    assert format_utc(parse_rfc3339("0933-07-11T02:25:15+11:12")) == "0933-07-10T15:13:15Z"  # zero-padded year


@pytest.mark.parametrize("value", ["", " ", "a" * 101, "tab\there", "new\nline", "nul\u0000", "bidi\u202e"])
def test_names_must_be_printable_and_1_to_100_characters(value: str) -> None:
    with pytest.raises(ValueError):
        v.text(100)(value)


def test_names_are_trimmed() -> None:
    assert v.text(100)("  Mia Jones  ") == "Mia Jones"


def test_emails_are_lowercased_and_checked() -> None:
    assert v.email(" Sam@Example.COM ") == "sam@example.com"
    for bad in ("sam", "sam@", "@example.com", "a b@example.com", 7):
        with pytest.raises(ValueError):
            v.email(bad)


def test_time_zones_must_be_iana_names() -> None:
    assert v.timezone_name("Pacific/Auckland") == "Pacific/Auckland"
    for bad in ("Mars/Base", "+02:00", "", "../etc/passwd"):
        with pytest.raises(ValueError):
            v.timezone_name(bad)


def test_session_id_lists_are_bounded_and_unique() -> None:
    ids = v.list_of(v.identifier, 1, 30, unique=True)
    assert ids(["a", "b"]) == ["a", "b"]
    for bad in ([], ["a"] * 2, ["x"] * 31, "a", [1]):
        with pytest.raises(ValueError):
            ids(bad)


# --- Messages in our own words (issue 12, point 17) -------------------------------------------------

# Ours all say what the value must be (or how to use it), in plain ASCII; Python's own name types,
# functions and the value it choked on.
OUR_WORDS = re.compile(r"(must|use) [A-Za-z0-9 ,.'()+:_/-]+", re.ASCII)
PYTHON_WORDS = ("isoformat", "timedelta", "strictly between", "must be in 0..", "out of range", "invalid literal",
                "NoneType", "object has", "int()", "'str'", "base 10", "unconverted")
CONVERTERS = {
    "timestamp": v.timestamp, "calendar_date": v.calendar_date, "calendar_month": v.calendar_month,
    "integer_text": v.integer_text(1, 100),
    "text": v.text(100), "timezone_name": v.timezone_name, "email": v.email, "identifier": v.identifier,
    "cursor": v.cursor, "currency": v.currency, "integer": v.integer(0, 8760),
}
# Text shaped like what each converter reads, with digits, offsets and characters from anywhere.
LOOKALIKES = st.one_of(
    st.text(),
    st.from_regex(r"\A[0-9\u0660-\u0669\uff10-\uff19]{4}-[0-9\u0660-\u0669]{2}-[0-9\uff10-\uff19]{2}\Z"),
    st.from_regex(r"\A[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}(\.[0-9]{1,12})?(Z|[+-][0-9]{2}:[0-9]{2})\Z"),
    st.integers(), st.floats(), st.booleans(), st.none(), st.lists(st.integers(), max_size=3),
)


@pytest.mark.parametrize("name", sorted(CONVERTERS))
@hypothesis.settings(max_examples=300, deadline=None, database=None)
@hypothesis.given(value=LOOKALIKES)
def test_a_refusal_is_always_one_of_our_own_sentences(value: object, name: str) -> None:
    try:
        CONVERTERS[name](value)
    except ValueError as error:
        message = str(error)
        assert OUR_WORDS.fullmatch(message) and not [w for w in PYTHON_WORDS if w in message], (name, value, message)
