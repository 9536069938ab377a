"""Guests editing a booked session: moving it to another slot of its product, renaming its
participant, or both. `plan_edit` decides what changes; `edit_session` carries it out as one
atomic write (session, both slots' seats, history event) or changes nothing."""
from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from chalicelib import rules
from chalicelib.auth import GuestClaims
from chalicelib.errors import (
    FeatureDisabled,
    InvalidRequest,
    NotFound,
    SessionNotEditable,
    SlotClosed,
    SlotFull,
)
from chalicelib.ids import new_id
from chalicelib.observability import log_event
from chalicelib.services import notifications
from chalicelib.services.access import require_current_token
from chalicelib.storage import summaries
from chalicelib.storage.atomic import AtomicWrite, AtomicWriteFailed
from chalicelib.storage.models import (
    BookingItem,
    HistoryEvent,
    NotificationRecord,
    SessionRecord,
    SlotRecord,
    TransactionRecord,
    VenueRecord,
)
from chalicelib.storage.reads import Key, read_together
from chalicelib.storage.windows import projected_window, window_actions
from chalicelib.times import format_utc


@dataclass(frozen=True)
class Move:
    from_slot_id: str
    to_slot_id: str
    start: datetime
    end: datetime
    product_name: str


@dataclass(frozen=True)
class EditPlan:
    """What one edit changes. `before`/`after` hold only the changed fields, as the history shows them."""

    session_id: str
    move: Move | None
    participant_name: str | None  # the new name; None when the name stays
    before: dict[str, Any]
    after: dict[str, Any]
    # The move comes after the session's refund deadline: it stays non-refundable in its new slot.
    forfeits_refund: bool = False

    @property
    def changes_nothing(self) -> bool:
        return self.move is None and self.participant_name is None

    @property
    def action(self) -> str:
        if self.move and self.participant_name is not None:
            return "session_edited"
        return "session_moved" if self.move else "participant_renamed"


@dataclass(frozen=True)
class Edited:
    venue: VenueRecord
    session: SessionRecord
    plan: EditPlan


def plan_edit(settings: rules.VenueSettings, session: SessionRecord, target: SlotRecord | None,
              slot_id: str | None, participant_name: str | None, now: datetime, by_staff: bool = False) -> EditPlan:
    """Decide the edit, or raise the domain error that refuses it. No I/O: `target` is the slot
    named by `slot_id` as read at this venue (None if there is no such slot). Staff are not bound
    by the guests' switches and cutoffs; everything else binds them too."""
    state = _state(session)
    refusal = rules.staff_edit_refusal(state, now) if by_staff else rules.edit_refusal(settings, state, now)
    if refusal is rules.Refusal.FEATURE_DISABLED:
        raise FeatureDisabled("this venue does not let guests edit their sessions")
    if refusal is not None:
        raise _not_editable(refusal, settings, session)

    move = None
    if slot_id is not None and slot_id != session.slot_id:
        if target is None:
            raise NotFound("no such slot at this venue", {"slot_id": slot_id})
        refusal = rules.move_refusal(session.product_id, target.product_id, target.start, now)
        if refusal is rules.Refusal.OTHER_PRODUCT:
            raise InvalidRequest("the session can move only to a slot of its own product",
                                 {"fields": {"slot_id": f"must be a slot of product {session.product_id}"}})
        if refusal is not None:
            raise SessionNotEditable(_REASONS[refusal], {"reason": refusal.value, "slot_id": slot_id})
        if target.closure_job_id:
            raise SlotClosed("the slot is closed and takes no moves", {"slot_id": slot_id})
        if int(target.remaining) < 1:
            raise SlotFull("the slot has no seat left", {"slot_id": slot_id})
        move = Move(from_slot_id=session.slot_id, to_slot_id=target.slot_id, start=target.start, end=target.end,
                    product_name=target.product_name)

    rename = participant_name if participant_name not in (None, session.participant_name) else None
    before: dict[str, Any] = {}
    after: dict[str, Any] = {}
    if move:
        before.update(slot_id=session.slot_id, start=format_utc(session.start), end=format_utc(session.end))
        after.update(slot_id=move.to_slot_id, start=format_utc(move.start), end=format_utc(move.end))
        if move.product_name != session.product_name:
            before["product_name"], after["product_name"] = session.product_name, move.product_name
    if rename is not None:
        before["participant_name"], after["participant_name"] = session.participant_name, rename
    forfeits = move is not None and not session.refund_forfeited and rules.move_forfeits_refund(settings, state, now)
    if forfeits:
        before["refund_forfeited"], after["refund_forfeited"] = False, True
    return EditPlan(session_id=session.session_id, move=move, participant_name=rename, before=before, after=after,
                    forfeits_refund=forfeits)


_REASONS = {
    rules.Refusal.CANCELLED: "the session is cancelled",
    rules.Refusal.STARTED: "the session has started",
    rules.Refusal.SLOT_STARTED: "the slot has already started",
    rules.Refusal.MODIFY_CUTOFF: "the session can no longer be changed this close to its start",
}


def _state(session: SessionRecord) -> rules.SessionState:
    return rules.SessionState(start=session.start, status=session.status,
                              refund_forfeited=bool(session.refund_forfeited))


def _not_editable(refusal: rules.Refusal, settings: rules.VenueSettings, session: SessionRecord) -> SessionNotEditable:
    details: dict[str, Any] = {"reason": refusal.value}
    if refusal is rules.Refusal.MODIFY_CUTOFF:  # so the guest learns from when, not only that
        details["modify_deadline"] = format_utc(rules.modify_deadline(settings, session.start))
    return SessionNotEditable(_REASONS[refusal], details)


def edit_session(claims: GuestClaims, transaction_id: str, session_id: str, now: datetime,
                 slot_id: str | None = None, participant_name: str | None = None) -> Edited:
    """Edit one of the guest's sessions. Costs one read (BatchGetItem) and one write
    (TransactWriteItems), however many sessions the transaction holds."""
    if slot_id is None and participant_name is None:
        raise InvalidRequest("say what to change: slot_id, participant_name or both", {"fields": {
            "slot_id": "required unless participant_name is given",
            "participant_name": "required unless slot_id is given"}})
    venue, _, session, target = _read(claims.venue_id, claims, transaction_id, session_id, slot_id)
    settings = venue.settings()
    plan = plan_edit(settings, session, target, slot_id, participant_name, now)
    if plan.changes_nothing:
        return Edited(venue=venue, session=session, plan=plan)
    notice = notifications.session_changed(
        venue, claims.guest_id, transaction_id, session_id, before=_view(session), after=_view(session, plan), now=now)
    _carry_out(plan, session, settings, f"guest:{claims.guest_id}", now, notice=notice)
    log_event("session_edited", venue_id=venue.venue_id, transaction_id=transaction_id, session_id=session_id,
              guest_id=claims.guest_id, action=plan.action,
              from_slot_id=plan.move.from_slot_id if plan.move else None,
              to_slot_id=plan.move.to_slot_id if plan.move else None)
    return Edited(venue=venue, session=_applied(plan, session, settings, now), plan=plan)


def staff_edit_session(actor: str, venue_id: str, transaction_id: str, session_id: str, now: datetime, reason: str,
                       slot_id: str | None = None, participant_name: str | None = None) -> Edited:
    """Staff edit a session of any guest of their venue, for the reason they give; the same
    reads and the same atomic write as a guest's edit."""
    if slot_id is None and participant_name is None:
        raise InvalidRequest("say what to change: slot_id, participant_name or both", {"fields": {
            "slot_id": "required unless participant_name is given",
            "participant_name": "required unless slot_id is given"}})
    venue, transaction, session, target = _read(venue_id, None, transaction_id, session_id, slot_id)
    settings = venue.settings()
    plan = plan_edit(settings, session, target, slot_id, participant_name, now, by_staff=True)
    if plan.changes_nothing:
        return Edited(venue=venue, session=session, plan=plan)
    notice = notifications.session_changed(venue, transaction.guest_id, transaction_id, session_id,
                                           before=_view(session), after=_view(session, plan), now=now,
                                           by_staff=True, reason=reason)
    _carry_out(plan, session, settings, actor, now, reason=reason, notice=notice)
    log_event("session_edited", venue_id=venue.venue_id, transaction_id=transaction_id, session_id=session_id,
              actor=actor, action=plan.action, from_slot_id=plan.move.from_slot_id if plan.move else None,
              to_slot_id=plan.move.to_slot_id if plan.move else None)
    return Edited(venue=venue, session=_applied(plan, session, settings, now), plan=plan)


def _read(venue_id: str, claims: GuestClaims | None, transaction_id: str, session_id: str,
          slot_id: str | None) -> tuple[VenueRecord, TransactionRecord, SessionRecord, SlotRecord | None]:
    """Transaction, session, venue and target slot in one BatchGetItem: every key is known from
    the path, the body and the credential. Another venue's transaction, or with `claims` another
    guest's, is not found, like a missing one."""
    keys = [Key(BookingItem, transaction_id, "transaction"), Key(BookingItem, transaction_id, f"session#{session_id}"),
            Key(VenueRecord, venue_id)]
    if slot_id is not None:
        keys.append(Key(SlotRecord, venue_id, slot_id))
    transaction, session, venue, *target = read_together(keys)
    if (not isinstance(transaction, TransactionRecord) or transaction.venue_id != venue_id
            or (claims is not None and transaction.guest_id != claims.guest_id)):
        raise NotFound("no such transaction")
    if not isinstance(session, SessionRecord):
        raise NotFound("no such session in this transaction", {"session_id": session_id})
    if not isinstance(venue, VenueRecord):
        raise NotFound("no such venue")
    if claims is not None:  # staff act with a venue key, checked already; a guest's token must be current
        require_current_token(claims, venue)
    slot = target[0] if target else None
    return venue, transaction, session, slot if isinstance(slot, SlotRecord) else None


def _view(session: SessionRecord, plan: EditPlan | None = None) -> dict[str, Any]:
    """The session as an email shows it, before the edit or (with its plan) after."""
    move = plan.move if plan else None
    name = plan.participant_name if plan and plan.participant_name is not None else session.participant_name
    if move:
        return notifications.session_view(move.product_name, name, move.start, move.end)
    return notifications.session_view(session.product_name, name, session.start, session.end)


def _carry_out(plan: EditPlan, session: SessionRecord, settings: rules.VenueSettings, actor: str,
               now: datetime, reason: str | None = None, notice: NotificationRecord | None = None) -> None:
    """One atomic write: the session, both slots' seats, the history event and the guest's email."""
    write = AtomicWrite()
    notifications.queue(write, notice)
    actions: list[Any] = [SessionRecord.version.add(1)]
    if plan.move:
        move = plan.move
        forfeited = bool(session.refund_forfeited) or plan.forfeits_refund
        actions += [SessionRecord.slot_id.set(move.to_slot_id), SessionRecord.start.set(move.start),
                    SessionRecord.end.set(move.end), SessionRecord.product_name.set(move.product_name),
                    *window_actions(projected_window(settings, session.session_id, move.start, now, forfeited))]
        if plan.forfeits_refund:
            actions.append(SessionRecord.refund_forfeited.set(True))
        write.update(f"slot:{move.to_slot_id}", SlotRecord(session.venue_id, move.to_slot_id),
                     actions=[SlotRecord.remaining.add(-1), SlotRecord.booked.add(1)],
                     condition=(SlotRecord.remaining >= 1) & (SlotRecord.start > now)
                     & SlotRecord.closure_job_id.does_not_exist())
        # A closing slot keeps its sessions: its job is cancelling and refunding them, and one moved
        # out meanwhile would escape the refund or be cancelled where its guest moved it.
        write.update(f"old_slot:{move.from_slot_id}", SlotRecord(session.venue_id, move.from_slot_id),
                     actions=[SlotRecord.remaining.add(1), SlotRecord.booked.add(-1)],
                     condition=SlotRecord.slot_id.exists() & SlotRecord.closure_job_id.does_not_exist())
    if plan.participant_name is not None:
        actions.append(SessionRecord.participant_name.set(plan.participant_name))
    summaries.update(write, session.transaction_id, {session.session_id: {
        **({"start": format_utc(plan.move.start) or "", "product_name": plan.move.product_name} if plan.move else {}),
        **({"participant_name": plan.participant_name} if plan.participant_name is not None else {})}})
    # Conditions on what was read: a cancellation or another move in between fails this write.
    write.update("session", session, actions=actions, condition=(
        (SessionRecord.status == "booked") & (SessionRecord.slot_id == session.slot_id)
        & (SessionRecord.start == session.start) & (SessionRecord.start > now)))
    write.put("history", HistoryEvent(
        transaction_id=session.transaction_id, event_id=new_id(), venue_id=session.venue_id, at=now, actor=actor,
        action=plan.action, session_id=session.session_id, before=plan.before, after=plan.after, reason=reason))

    try:
        write.commit()  # conflicts and throttles are retried inside; a failure here is a real refusal
    except AtomicWriteFailed as failure:
        if "session" in failure.failed:
            raise _refusal_now(session, settings, now) from None
        if plan.move and f"slot:{plan.move.to_slot_id}" in failure.failed:
            # The same clock as the write's condition, so the reason given is the one that failed it.
            if rules.has_started(plan.move.start, now):
                raise SessionNotEditable(_REASONS[rules.Refusal.SLOT_STARTED], {
                    "reason": rules.Refusal.SLOT_STARTED.value, "slot_id": plan.move.to_slot_id}) from None
            if _closed(session.venue_id, plan.move.to_slot_id):
                raise SlotClosed("the slot is closed and takes no moves", {"slot_id": plan.move.to_slot_id}) from None
            raise SlotFull("the slot has no seat left", {"slot_id": plan.move.to_slot_id}) from None
        if plan.move and f"old_slot:{plan.move.from_slot_id}" in failure.failed \
                and _closed(session.venue_id, plan.move.from_slot_id):
            raise SlotClosed("the session's slot is closed: its closure cancels and refunds the session",
                             {"slot_id": plan.move.from_slot_id}) from None
        raise  # the old slot is gone: nothing a guest can fix


def _closed(venue_id: str, slot_id: str) -> bool:
    """Whether the slot is closed (read only when a move into or out of it was refused)."""
    try:
        return bool(SlotRecord.get(venue_id, slot_id, consistent_read=True).closure_job_id)
    except SlotRecord.DoesNotExist:
        return False


def _refusal_now(session: SessionRecord, settings: rules.VenueSettings, now: datetime) -> SessionNotEditable:
    """Why the session's condition failed: read it again (only on this path) and say precisely."""
    try:
        current = SessionRecord.get(session.transaction_id, session.item, consistent_read=True)
    except SessionRecord.DoesNotExist:
        return SessionNotEditable("the session no longer exists", {"reason": "changed"})
    refusal = rules.edit_refusal(settings, _state(current), now)
    if refusal is not None and refusal in _REASONS:
        return _not_editable(refusal, settings, current)
    return SessionNotEditable("the session was changed meanwhile; read it again", {"reason": "changed"})


def _applied(plan: EditPlan, session: SessionRecord, settings: rules.VenueSettings, now: datetime) -> SessionRecord:
    """The session as the write left it, without reading it back."""
    if plan.move:
        session.slot_id, session.start, session.end = plan.move.to_slot_id, plan.move.start, plan.move.end
        session.product_name = plan.move.product_name
        if plan.forfeits_refund:
            session.refund_forfeited = True
        forfeited = bool(session.refund_forfeited)
        for name, value in projected_window(settings, session.session_id, plan.move.start, now, forfeited).items():
            setattr(session, name, value)
    if plan.participant_name is not None:
        session.participant_name = plan.participant_name
    session.version = int(session.version or 1) + 1
    return session
