"""The PynamoDB models: every table, key and index the product reads or writes.

Table names come from configuration when this module is imported. `infra/` derives the AWS
tables from these classes, so the deployed key schemas cannot drift from the code.
"""
from __future__ import annotations

from datetime import datetime
from typing import cast

from pynamodb.attributes import (
    BooleanAttribute,
    DiscriminatorAttribute,
    JSONAttribute,
    ListAttribute,
    MapAttribute,
    NumberAttribute,
    TTLAttribute,
    UnicodeAttribute,
    UTCDateTimeAttribute,
)
from pynamodb.expressions.condition import Condition, Or
from pynamodb.indexes import AllProjection, GlobalSecondaryIndex, IncludeProjection, KeysOnlyProjection
from pynamodb.models import MetaProtocol, Model

from chalicelib import aws
from chalicelib.config import config
from chalicelib.rules import VenueSettings

aws.share_with_pynamodb()  # before any model makes its connection

_BILLING = "PAY_PER_REQUEST"


def _meta(logical: str) -> MetaProtocol:
    # A class made here, not written out: PynamoDB reads only the attributes it is given.
    return cast("MetaProtocol", type("Meta", (), {"table_name": config().table_name(logical), "billing_mode": _BILLING}))


class VenueRecord(Model):
    """A venue, its money and time zone, and the settings its admin controls."""

    Meta = _meta("venues")
    venue_id = UnicodeAttribute(hash_key=True)
    name = UnicodeAttribute()
    timezone = UnicodeAttribute()
    currency = UnicodeAttribute()
    allow_guest_modify = BooleanAttribute(default=False)
    refund_on_cancel = BooleanAttribute(default=False)
    refund_cutoff_hours = NumberAttribute(default=24)
    # Added in the second round: venues saved before it read these defaults.
    modify_cutoff_hours = NumberAttribute(default=0)
    cancellation_fee_fixed = NumberAttribute(default=0)
    cancellation_fee_percent = NumberAttribute(default=0)
    notify_guests = BooleanAttribute(default=True)
    settings_version = NumberAttribute(default=1)
    settings_updated_at = UTCDateTimeAttribute()
    created_at = UTCDateTimeAttribute()
    notify_guests = BooleanAttribute(default=True)
    # guest_id -> the credential generation a token must carry; written by a password reset so
    # that older tokens are refused wherever a guest's request reads the venue (no extra read).
    token_generations = JSONAttribute(null=True)  # {guest_id: {"generation": n, "at": epoch seconds}}
    # The venue's own Stripe account (Connect), for purchases recorded from now on; None: the platform's.
    stripe_account = UnicodeAttribute(null=True)

    def settings(self) -> VenueSettings:
        return VenueSettings(allow_guest_modify=bool(self.allow_guest_modify),
                             refund_on_cancel=bool(self.refund_on_cancel),
                             refund_cutoff_hours=int(self.refund_cutoff_hours),
                             modify_cutoff_hours=int(self.modify_cutoff_hours or 0),
                             cancellation_fee_fixed=int(self.cancellation_fee_fixed or 0),
                             cancellation_fee_percent=int(self.cancellation_fee_percent or 0),
                             notify_guests=self.notify_guests is not False)


class ApiKeyRecord(Model):
    """A venue API key, stored only as its SHA-256 digest."""

    Meta = _meta("api-keys")
    key_hash = UnicodeAttribute(hash_key=True)
    key_id = UnicodeAttribute()
    venue_id = UnicodeAttribute()
    created_at = UTCDateTimeAttribute()


class GuestById(GlobalSecondaryIndex["GuestRecord"]):
    class Meta:
        index_name = "guest-id"
        projection = AllProjection()

    guest_id = UnicodeAttribute(hash_key=True)


class GuestRecord(Model):
    """A guest of one venue; the email (lowercased) is unique within the venue by being the key."""

    Meta = _meta("guests")
    venue_id = UnicodeAttribute(hash_key=True)
    email = UnicodeAttribute(range_key=True)
    guest_id = UnicodeAttribute()
    name = UnicodeAttribute()
    password_hash = UnicodeAttribute(null=True)  # None until an invited guest sets one
    created_at = UTCDateTimeAttribute()
    # Bumped by every password reset; tokens carry it, so older tokens stop working.
    credential_generation = NumberAttribute(default=0)
    # The newest reset or invitation link, only as a digest; one at a time, so a new link
    # replaces the one before it.
    reset_digest = UnicodeAttribute(null=True)
    reset_expires_at = UTCDateTimeAttribute(null=True)
    reset_notification_id = UnicodeAttribute(null=True)
    by_id = GuestById()


class SlotsByProductStart(GlobalSecondaryIndex["SlotRecord"]):
    class Meta:
        index_name = "product-start"
        projection = AllProjection()

    product_key = UnicodeAttribute(hash_key=True)
    start = UTCDateTimeAttribute(range_key=True)


class SlotRecord(Model):
    """A bookable time slot of a product. `remaining` is what conditions check, so that taking
    n seats is one conditional update (`remaining >= n`)."""

    Meta = _meta("slots")
    venue_id = UnicodeAttribute(hash_key=True)
    slot_id = UnicodeAttribute(range_key=True)
    product_key = UnicodeAttribute()  # "<venue_id>#<product_id>"
    product_id = UnicodeAttribute()
    product_name = UnicodeAttribute()
    start = UTCDateTimeAttribute()
    end = UTCDateTimeAttribute()
    capacity = NumberAttribute()
    booked = NumberAttribute(default=0)
    remaining = NumberAttribute()
    # Set once, when staff close the slot: from then on no purchase or move takes a seat in it.
    closure_job_id = UnicodeAttribute(null=True)
    closed_at = UTCDateTimeAttribute(null=True)
    by_product_start = SlotsByProductStart()

    @property
    def status(self) -> str:
        return "closed" if self.closure_job_id else "open"


# PynamoDB filters polymorphic queries on the discriminator, so even a keys-only index must
# carry `kind`, or every query on it would come back empty.
_KEYS_AND_KIND = IncludeProjection(["kind"])


class PurchasesByGuest(GlobalSecondaryIndex["BookingItem"]):
    """Sparse: only transaction items carry `guest_id`."""

    class Meta:
        index_name = "guest-purchases"
        projection = AllProjection()

    guest_id = UnicodeAttribute(hash_key=True)
    purchased_at = UTCDateTimeAttribute(range_key=True)


class RefundsByVenueStatus(GlobalSecondaryIndex["BookingItem"]):
    """Sparse: only refund items carry `venue_status` ("<venue_id>#<status>")."""

    class Meta:
        index_name = "venue-refunds"
        projection = AllProjection()

    venue_status = UnicodeAttribute(hash_key=True)
    created_at = UTCDateTimeAttribute(range_key=True)


class RefundsByVenue(GlobalSecondaryIndex["BookingItem"]):
    """Sparse: only refund items carry `refund_venue_id`. Every refund of a venue, newest first,
    whatever its status, so the admin's list pages with one cursor and a refund changing status
    while someone pages neither shows twice nor drops out. Keys and `kind` only: the entry is
    written once, with the refund, and a status change (the refund worker's) writes nothing to
    it; the list reads the refunds by key, in the BatchGetItem that reads their purchases."""

    class Meta:
        index_name = "venue-refund-list"
        projection = _KEYS_AND_KIND

    refund_venue_id = UnicodeAttribute(hash_key=True)
    created_at = UTCDateTimeAttribute(range_key=True)


class PendingRefunds(GlobalSecondaryIndex["BookingItem"]):
    """Sparse: a refund carries `pending_shard` only while it is pending, so the reconciler
    reads pending refunds and nothing else."""

    class Meta:
        index_name = "pending-refunds"
        projection = _KEYS_AND_KIND

    pending_shard = NumberAttribute(hash_key=True)
    created_at = UTCDateTimeAttribute(range_key=True)


class RefundsById(GlobalSecondaryIndex["BookingItem"]):
    """Sparse: finds a refund's transaction from the refund id an admin gives, for the refunds
    the first round wrote (keyed on `refund_key`, which only they carry) until the upgrade gives
    each its locator. Refunds made since name their purchase in their id (chalicelib/ids.py) and
    carry no `refund_key`, so they cost this index nothing."""

    class Meta:
        index_name = "refund-id"
        projection = _KEYS_AND_KIND

    refund_key = UnicodeAttribute(hash_key=True)


class OpenRefundWindows(GlobalSecondaryIndex["BookingItem"]):
    """Sparse: a session carries `window_shard` only while it is booked and its refund window is
    open, so the window closer reads only what is about to cross its deadline. It projects what
    the closer needs to re-check the venue's current rule without reading the sessions; `kind`
    because PynamoDB filters every query of a polymorphic model on it."""

    class Meta:
        index_name = "open-refund-windows"
        projection = IncludeProjection(["kind", "venue_id", "start"])

    window_shard = NumberAttribute(hash_key=True)
    refund_deadline = UTCDateTimeAttribute(range_key=True)


class SessionsByVenueStart(GlobalSecondaryIndex["BookingItem"]):
    """Sparse: only sessions carry `session_venue_id`; lets a settings change re-project the
    deadlines of a venue's future sessions without a scan. It projects the stored window, so the
    job writes only the sessions whose projection actually changes."""

    class Meta:
        index_name = "venue-sessions"
        projection = IncludeProjection(["kind", "status", "refund_deadline", "refund_window", "window_shard"])

    session_venue_id = UnicodeAttribute(hash_key=True)
    start = UTCDateTimeAttribute(range_key=True)


class SessionsBySlot(GlobalSecondaryIndex["BookingItem"]):
    """Sparse: only sessions carry `slot_id`. A slot's sessions, a transaction's together (the
    sort key), so closing a slot reads exactly its sessions, a piece at a time, and cancels each
    transaction's in one write. Keys and `kind` only, so the entry is written when a session is
    bought or moved and never again: a cancellation or a window closing changes nothing it holds.
    A closure piece reads its sessions strongly anyway and skips the ones no longer booked."""

    class Meta:
        index_name = "slot-sessions"
        projection = _KEYS_AND_KIND

    slot_id = UnicodeAttribute(hash_key=True)
    transaction_id = UnicodeAttribute(range_key=True)


class BookingItem(Model):
    """One item of a purchase. A transaction, its sessions and its refunds share the partition
    key `transaction_id`, so a receipt is one Query."""

    Meta = _meta("bookings")
    transaction_id = UnicodeAttribute(hash_key=True)
    item = UnicodeAttribute(range_key=True)  # "transaction", "session#<id>", "refund#<id>"
    kind = DiscriminatorAttribute()
    venue_id = UnicodeAttribute()

    by_guest = PurchasesByGuest()
    refunds_by_venue_status = RefundsByVenueStatus()
    refunds_by_venue = RefundsByVenue()
    pending_refunds = PendingRefunds()
    refunds_by_id = RefundsById()
    open_refund_windows = OpenRefundWindows()
    sessions_by_venue_start = SessionsByVenueStart()
    sessions_by_slot = SessionsBySlot()


class TransactionRecord(BookingItem, discriminator="transaction"):
    guest_id = UnicodeAttribute()
    purchased_at = UTCDateTimeAttribute()
    currency = UnicodeAttribute()
    total = NumberAttribute()
    payment_intent_id = UnicodeAttribute()
    session_count = NumberAttribute()
    # Who bought, as the venue's admin reads it in the refunds list (null on older purchases).
    guest_name = UnicodeAttribute(null=True)
    guest_email = UnicodeAttribute(null=True)
    # {session_id: {product_name, start, participant_name, status, refund_status}}, stored under
    # one-letter names: what the guest's list of purchases shows, kept current by every write
    # that changes it (chalicelib/storage/summaries.py).
    summary = MapAttribute(null=True)  # type: ignore[var-annotated,no-untyped-call]  # PynamoDB's raw MapAttribute is untyped
    # The Stripe account the payment was made on, whatever the venue's account is later; None: the platform's.
    stripe_account = UnicodeAttribute(null=True)


class SessionRecord(BookingItem, discriminator="session"):
    session_id = UnicodeAttribute()
    slot_id = UnicodeAttribute()
    product_id = UnicodeAttribute()
    product_name = UnicodeAttribute()
    start = UTCDateTimeAttribute()
    end = UTCDateTimeAttribute()
    participant_name = UnicodeAttribute()
    amount = NumberAttribute()
    status = UnicodeAttribute(default="booked")  # booked | cancelled
    refund_status = UnicodeAttribute(default="none")  # none | pending | refunded | failed | not_refunded
    refund_id = UnicodeAttribute(null=True)
    cancelled_at = UTCDateTimeAttribute(null=True)
    # The stored projection of the refund window, kept up to date by the background jobs.
    refund_deadline = UTCDateTimeAttribute(null=True)
    refund_window = UnicodeAttribute(default="closed")  # open | closed
    window_shard = NumberAttribute(null=True)
    # Set (only ever to true) by a move after the refund deadline; absent on every other session.
    refund_forfeited = BooleanAttribute(null=True)
    session_venue_id = UnicodeAttribute(null=True)
    version = NumberAttribute(default=1)


class RefundRecord(BookingItem, discriminator="refund"):
    refund_id = UnicodeAttribute()
    refund_key = UnicodeAttribute(null=True)  # the refund id again, as the key of the refund-id index: first round only
    amount = NumberAttribute()
    currency = UnicodeAttribute()
    status = UnicodeAttribute()  # pending | refunded | failed
    session_ids = ListAttribute(of=UnicodeAttribute)
    payment_intent_id = UnicodeAttribute()
    stripe_account = UnicodeAttribute(null=True)  # the purchase's, copied so the worker reads one item
    # The purchase's guest, copied so the outcome's email needs no read (None: written before it was).
    guest_id = UnicodeAttribute(null=True)
    created_at = UTCDateTimeAttribute()
    updated_at = UTCDateTimeAttribute()
    venue_status = UnicodeAttribute()
    refund_venue_id = UnicodeAttribute(null=True)  # the venue again, as the key of venue-refund-list
    pending_shard = NumberAttribute(null=True)
    key_generation = NumberAttribute(default=1)
    stripe_refund_id = UnicodeAttribute(null=True)
    failure_code = UnicodeAttribute(null=True)
    failure_message = UnicodeAttribute(null=True)


class HistoryEvent(Model):
    """One change to a transaction, in order: who, what, before and after."""

    Meta = _meta("history")
    transaction_id = UnicodeAttribute(hash_key=True)
    event_id = UnicodeAttribute(range_key=True)  # a ULID: time-ordered
    venue_id = UnicodeAttribute()
    at = UTCDateTimeAttribute()
    actor = UnicodeAttribute()  # "guest:<id>", "admin:<key id>", "system"
    action = UnicodeAttribute()
    session_id = UnicodeAttribute(null=True)
    before = JSONAttribute(null=True)
    after = JSONAttribute(null=True)
    reason = UnicodeAttribute(null=True)  # why staff made the change, as they gave it
    # Set on an item that holds one event per session of one change (a cancellation of several):
    # {session_id: what that session's `after` adds}, in order. Read as those events, each with
    # the item's event id and "-<n>" (chalicelib/services/history.py): one item to write, not one
    # per session.
    sessions = JSONAttribute(null=True)


class JobRecord(Model):
    """A piece of staff work done in the background (a slot's closure), and how far it got."""

    Meta = _meta("jobs")
    job_id = UnicodeAttribute(hash_key=True)
    venue_id = UnicodeAttribute()
    kind = UnicodeAttribute()  # slot_closure
    slot_id = UnicodeAttribute()
    status = UnicodeAttribute()  # running | done
    reason = UnicodeAttribute()
    refund_mode = UnicodeAttribute()  # policy | full | none
    actor = UnicodeAttribute()
    sessions_total = NumberAttribute()
    sessions_cancelled = NumberAttribute(default=0)
    refunds_created = NumberAttribute(default=0)
    pieces_done = NumberAttribute(default=0)
    next_key = JSONAttribute(null=True)  # where the next piece starts in the slot-sessions index
    # Sweeps of the slot-sessions index run again because the slot still counted booked seats
    # when the last piece ended (the index lagged a session's write); None before the first.
    sweeps_again = NumberAttribute(null=True)
    created_at = UTCDateTimeAttribute()
    finished_at = UTCDateTimeAttribute(null=True)


class IdempotencyRecord(Model):
    """The first answer to a request sent with an `Idempotency-Key`, kept for a day; also the
    guard that records each Stripe payment intent at most once (kept forever)."""

    Meta = _meta("idempotency")
    key = UnicodeAttribute(hash_key=True)
    request_hash = UnicodeAttribute()
    response = JSONAttribute(null=True)
    expires_at = TTLAttribute(null=True)

    @classmethod
    def unused(cls, now: datetime) -> Condition:
        """The put condition of a record: none yet, or only one past its `expires_at` that DynamoDB's
        TTL has not deleted yet (it deletes up to days late), as Powertools' idempotency does."""
        return Or(cls.key.does_not_exist(), cls.expires_at < now)

    def expired(self, now: datetime) -> bool:
        """Past its `expires_at`: to be treated as absent, whether or not TTL has deleted it yet."""
        return self.expires_at is not None and self.expires_at <= now


class Locator(Model):
    """Where the record of an id that is given on its own lives: `guest#<guest_id>` -> its venue,
    `refund#<refund_id>` -> its transaction (the first round's refunds, given one by the upgrade:
    a refund id made since names its transaction itself). Written with the record, in the same atomic write,
    and read by key (consistently), where a global index could still lag the write. It shares
    the idempotency table (no attribute of its own collides) and is not in ALL_MODELS."""

    Meta = _meta("idempotency")
    key = UnicodeAttribute(hash_key=True)
    venue_id = UnicodeAttribute()
    transaction_id = UnicodeAttribute(null=True)
    email = UnicodeAttribute(null=True)  # a guest's: with the venue, the guest record's key

    @classmethod
    def find(cls, key: str) -> Locator | None:
        try:
            return cls.get(key, consistent_read=True)
        except cls.DoesNotExist:
            return None


class LoginAttempts(Model):
    """Failed logins, expiring with the lockout window: per email at one venue, and per email and
    client address; and, for 30 days, the addresses a guest logged in from."""

    Meta = _meta("login-attempts")
    # "<venue_id>#<email>", "<venue_id>#<email>#<address digest>", "<...address digest>#known"
    key = UnicodeAttribute(hash_key=True)
    failures = NumberAttribute(default=0)
    expires_at = TTLAttribute()


class NotificationsByGuest(GlobalSecondaryIndex["NotificationRecord"]):
    """A guest's notices for the admin's list. Keys only: the entry is written with the notice
    and never again (its sending changes nothing here); the list reads the notices by key."""

    class Meta:
        index_name = "guest-notifications"
        projection = KeysOnlyProjection()

    guest_key = UnicodeAttribute(hash_key=True)  # "<venue_id>#<guest_id>"
    notification_id = UnicodeAttribute(range_key=True)


class UnsentNotifications(GlobalSecondaryIndex["NotificationRecord"]):
    """Sparse: a notification carries `unsent_shard` only while it is queued or being sent, so
    the sweeper reads what is still unsent and nothing else. Keys only: the sweeper reads each
    notice by key before it acts, so claiming one (queued -> sending) writes nothing here."""

    class Meta:
        index_name = "unsent-notifications"
        projection = KeysOnlyProjection()

    unsent_shard = NumberAttribute(hash_key=True)
    created_at = UTCDateTimeAttribute(range_key=True)


class NotificationRecord(Model):
    """The outbox: one email to a guest, written in the same atomic write as the change it tells
    of. The table's stream hands each new item to the sender; `status` moves
    queued -> sending -> sent | failed, each step conditional, so it is sent at most once."""

    Meta = cast("MetaProtocol", type("Meta", (), {"table_name": config().table_name("notifications"),
                                                  "billing_mode": _BILLING, "stream_view_type": "NEW_IMAGE"}))
    venue_id = UnicodeAttribute(hash_key=True)
    notification_id = UnicodeAttribute(range_key=True)  # a ULID: newest last
    kind = UnicodeAttribute()
    guest_id = UnicodeAttribute()
    guest_key = UnicodeAttribute()
    subject = UnicodeAttribute()
    facts = JSONAttribute()  # what the email says, as the change committed it
    status = UnicodeAttribute(default="queued")  # queued | sending | sent | failed
    to = UnicodeAttribute(null=True)  # the guest's address, once the sender has looked it up
    created_at = UTCDateTimeAttribute()
    sent_at = UTCDateTimeAttribute(null=True)
    claimed_at = UTCDateTimeAttribute(null=True)
    attempts = NumberAttribute(default=0)
    unsent_shard = NumberAttribute(null=True)
    ses_message_id = UnicodeAttribute(null=True)
    failure_code = UnicodeAttribute(null=True)
    by_guest = NotificationsByGuest()
    unsent = UnsentNotifications()


ALL_MODELS: tuple[type[Model], ...] = (
    VenueRecord,
    ApiKeyRecord,
    GuestRecord,
    SlotRecord,
    BookingItem,
    HistoryEvent,
    IdempotencyRecord,
    LoginAttempts,
    JobRecord,
    NotificationRecord,
)


def create_tables() -> None:
    """Create every table that does not exist yet (the local stack and tests; AWS uses infra/)."""
    for model in ALL_MODELS:
        model.create_table(wait=True)
