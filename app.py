"""rebook: guests edit, cancel and get refunds for the sessions they booked, under venue rules.

This file is the table of contents: every route, schedule and queue handler, each a few lines
that parse, call a service in chalicelib, and shape the answer.
"""
from __future__ import annotations

from typing import Any

from chalice import Chalice, Response

from chalicelib.api import representations as shape
from chalicelib.api import validation as v
from chalicelib.api.errors import contract_errors
from chalicelib.config import config
from chalicelib.errors import NotFound
from chalicelib.rules import MAX_CUTOFF_HOURS, VenueSettings
from chalicelib.services import access, edits, guests, purchases, slots, venues
from chalicelib.times import format_utc, utc_now

app = Chalice(app_name="rebook", configure_logs=False)
app.register_middleware(contract_errors, "http")


def _request() -> Any:
    return app.current_request


def _body(spec: dict[str, Any]) -> dict[str, Any]:
    return v.fields(v.json_body(_request().raw_body, config().max_body_bytes), spec)


def _query(spec: dict[str, Any]) -> dict[str, Any]:
    return v.query(_request().query_params, spec)


def _auth() -> str | None:
    return _request().headers.get("authorization")


def _id(value: str) -> str:
    """A path id; anything that cannot be one of ours is simply not found."""
    try:
        return v.identifier(value)
    except ValueError:
        raise NotFound("no such resource") from None


def _created(body: dict[str, Any]) -> Response:
    return Response(body=body, status_code=201)


# --- Admin: venues, keys and settings -------------------------------------------------------

@app.route("/v1/admin/venues", methods=["POST"])
def create_venue() -> Response:
    admin = access.authenticate_admin(_auth())
    body = _body({"venue_id": v.optional(v.identifier), "name": v.text(200), "timezone": v.timezone_name,
                  "currency": v.currency})
    return _created(shape.venue(venues.create_venue(admin, now=utc_now(), **body)))


@app.route("/v1/admin/venues/{venue_id}", methods=["GET"])
def get_venue(venue_id: str) -> dict[str, Any]:
    _, venue = access.admin_venue(_auth(), _id(venue_id))
    return shape.venue(venue)


@app.route("/v1/admin/venues/{venue_id}/api-keys", methods=["POST"])
def mint_api_key(venue_id: str) -> Response:
    admin, venue = access.admin_venue(_auth(), _id(venue_id))
    _body({})
    key = venues.mint_api_key(admin, venue, utc_now())
    return _created({"api_key": key.api_key, "key_id": key.key_id, "venue_id": venue.venue_id})


@app.route("/v1/admin/venues/{venue_id}/settings", methods=["GET"])
def get_settings(venue_id: str) -> dict[str, Any]:
    _, venue = access.admin_venue(_auth(), _id(venue_id))
    return shape.settings(venue)


@app.route("/v1/admin/venues/{venue_id}/settings", methods=["PUT"])
def put_settings(venue_id: str) -> dict[str, Any]:
    admin, venue = access.admin_venue(_auth(), _id(venue_id))
    body = _body({"allow_guest_modify": v.boolean, "refund_on_cancel": v.boolean,
                  "refund_cutoff_hours": v.integer(0, MAX_CUTOFF_HOURS)})
    return shape.settings(venues.update_settings(admin, venue, VenueSettings(**body), utc_now()))


# --- Admin: slots and guests ----------------------------------------------------------------

@app.route("/v1/admin/venues/{venue_id}/slots", methods=["POST"])
def create_slot(venue_id: str) -> Response:
    _, venue = access.admin_venue(_auth(), _id(venue_id))
    body = _body({"product_id": v.identifier, "product_name": v.text(200), "start": v.timestamp,
                  "end": v.timestamp, "capacity": v.integer(1, 100_000)})
    return _created(shape.slot(slots.create_slot(venue, **body)))


@app.route("/v1/admin/venues/{venue_id}/slots", methods=["GET"])
def list_slots(venue_id: str) -> dict[str, Any]:
    _, venue = access.admin_venue(_auth(), _id(venue_id))
    query = _query({"product_id": v.identifier, "date": v.calendar_date})
    return {"slots": [shape.slot(s) for s in slots.slots_on(venue, query["product_id"], query["date"])]}


@app.route("/v1/admin/venues/{venue_id}/guests", methods=["POST"])
def create_guest(venue_id: str) -> Response:
    _, venue = access.admin_venue(_auth(), _id(venue_id))
    body = _body({"email": v.email, "password": v.password, "name": v.text(200)})
    return _created(shape.guest(guests.create_guest(venue, now=utc_now(), **body)))


@app.route("/v1/admin/venues/{venue_id}/transactions", methods=["POST"])
def record_purchase(venue_id: str) -> Response:
    admin, venue = access.admin_venue(_auth(), _id(venue_id))
    body = _body({
        "guest_id": v.identifier, "payment_intent_id": v.identifier, "currency": v.currency,
        "sessions": v.list_of(v.obj({"slot_id": v.identifier, "participant_name": v.text(100),
                                     "amount": v.integer(0, 100_000_000)}), 1, purchases.MAX_SESSIONS)})
    orders = [purchases.SessionOrder(**order) for order in body.pop("sessions")]
    made = purchases.record_purchase(admin, venue, orders=orders, now=utc_now(), **body)
    return _created(shape.receipt(made.venue, made.transaction, made.sessions, made.refunds, utc_now()))


@app.route("/v1/admin/venues/{venue_id}/transactions/{transaction_id}/history", methods=["GET"])
def transaction_history(venue_id: str, transaction_id: str) -> dict[str, Any]:
    _, venue = access.admin_venue(_auth(), _id(venue_id))
    return {"events": [shape.history_event(e) for e in purchases.history(venue.venue_id, _id(transaction_id))]}


# --- Guests: login and availability ---------------------------------------------------------

@app.route("/v1/venues/{venue_id}/login", methods=["POST"])
def login(venue_id: str) -> dict[str, Any]:
    body = _body({"email": v.email, "password": v.login_password})
    result = guests.login(_id(venue_id), body["email"], body["password"], utc_now())
    return {"token": result.token, "token_type": "Bearer", "expires_at": format_utc(result.expires_at),
            "guest": shape.guest(result.guest)}


@app.route("/v1/venues/{venue_id}/slots", methods=["GET"])
def available_slots(venue_id: str) -> dict[str, Any]:
    venue = access.load_venue(_id(venue_id))
    query = _query({"product_id": v.identifier, "date": v.calendar_date})
    found = slots.slots_on(venue, query["product_id"], query["date"], not_before=utc_now())
    return {"slots": [shape.slot(s) for s in found]}


# --- Guests: purchases and receipts ---------------------------------------------------------

@app.route("/v1/me/transactions", methods=["GET"])
def my_transactions() -> dict[str, Any]:
    claims = access.authenticate_guest(_auth(), utc_now())
    query = _query({"limit": v.optional(v.integer_text(1, 100)), "cursor": v.optional(v.text(2048))})
    found, cursor = purchases.list_transactions(claims, query.get("limit", 20), query.get("cursor"))
    return {"transactions": [shape.transaction_summary(t) for t in found], "next_cursor": cursor}


@app.route("/v1/me/transactions/{transaction_id}", methods=["GET"])
def my_receipt(transaction_id: str) -> dict[str, Any]:
    now = utc_now()
    found = purchases.guest_receipt(access.authenticate_guest(_auth(), now), _id(transaction_id))
    return shape.receipt(found.venue, found.transaction, found.sessions, found.refunds, now)


@app.route("/v1/me/transactions/{transaction_id}/sessions/{session_id}", methods=["PATCH"])
def edit_my_session(transaction_id: str, session_id: str) -> dict[str, Any]:
    now = utc_now()
    claims = access.authenticate_guest(_auth(), now)
    body = _body({"slot_id": v.optional(v.identifier), "participant_name": v.optional(v.text(100))})
    edited = edits.edit_session(claims, _id(transaction_id), _id(session_id), now, **body)
    return shape.session(edited.session, edited.venue.settings(), now)
