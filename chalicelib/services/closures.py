"""Closing a slot (the heater broke): the slot stops taking purchases and moves at once, then a
job cancels every session booked in it, one refund per transaction, in pieces through SQS.

A piece is at most `PIECE_SESSIONS` entries of the slot-sessions index, cut at a transaction's
edge, so a transaction is cancelled in one atomic write (sessions, seats, refund, history and the
job's counters together). Pieces run one after another: the job records how many are done and
where the next starts, and a piece runs only when it is the next one. Each transaction's write is
conditional on its sessions still being booked in the slot, so a piece run again after a crash or
a duplicate delivery cancels and refunds nothing twice, and skips nothing.

The index is eventually consistent: a session booked or moved into the slot in the instant
before it closed may not be in it yet when the last piece reads. So the job is done only when
the slot's own seat counter (read strongly; it moves in the same write as each session) says no
session is left. Otherwise the sweep starts again from the top after a delay, a few times; if
seats are still counted after the last, the job stays `running` and says so in the logs (a
second closure request sweeps once more). Two deliveries of a sweep's last piece may each count
differently: whichever records first, the one that counted none ends the job, once.
"""
from __future__ import annotations

import time
from dataclasses import replace
from datetime import datetime
from itertools import groupby
from typing import Any

from chalicelib import rules
from chalicelib.errors import NotFound, ServiceUnavailable
from chalicelib.ids import new_id
from chalicelib.observability import log_error, log_event
from chalicelib.parts import QueueSender
from chalicelib.queues import ClosurePiece
from chalicelib.services import cancellations
from chalicelib.services.receipts import Receipt
from chalicelib.storage import pages
from chalicelib.storage.atomic import AtomicWrite, AtomicWriteFailed
from chalicelib.storage.models import (
    BookingItem,
    JobRecord,
    SessionRecord,
    SessionsBySlot,
    SlotRecord,
    TransactionRecord,
    VenueRecord,
)
from chalicelib.storage.reads import Key, read_many

PIECE_SESSIONS = 100  # index entries per piece: about 35 transactions' writes, well inside a Lambda's time
_INDEX_KEY = ("slot_id", "transaction_id", "item")
_ATTEMPTS = 3
_NOT_READY_WAITS = (0.1, 0.2, 0.4, 0.8, 0)  # seconds between reads of a job whose piece before is finishing
# Seconds before each sweep run again: an index catches up within a second or so on AWS.
SWEEP_AGAIN_DELAYS = (5, 30, 120)


class PieceNotReady(Exception):
    """The piece before this one has not finished: the message comes back later."""


def close_slot(actor: str, venue: VenueRecord, slot_id: str, reason: str, refund: rules.RefundMode,
               now: datetime, queues: QueueSender) -> JobRecord:
    """Close the slot and start its job; a slot closed already answers its first job (and, if
    that job is still running, nudges it on: a duplicate piece message is harmless)."""
    for _ in range(_ATTEMPTS):
        slot = _slot(venue.venue_id, slot_id)
        if slot.closure_job_id:
            job = find_job(venue.venue_id, slot.closure_job_id)
            if job.status == "running":
                _send_piece(queues, job.job_id, int(job.pieces_done))
            return job
        job = JobRecord(job_id=new_id(), venue_id=venue.venue_id, kind="slot_closure", slot_id=slot_id,
                        status="running", reason=reason, refund_mode=refund.value, actor=actor,
                        sessions_total=int(slot.booked), sessions_cancelled=0, refunds_created=0, pieces_done=0,
                        created_at=now)
        write = AtomicWrite()
        write.put("job", job, condition=JobRecord.job_id.does_not_exist())
        # The count read is the count closed: a purchase in between makes this write try again.
        write.update("slot", slot, actions=[SlotRecord.closure_job_id.set(job.job_id), SlotRecord.closed_at.set(now)],
                     condition=SlotRecord.closure_job_id.does_not_exist() & (SlotRecord.booked == int(slot.booked)))
        try:
            write.commit()
        except AtomicWriteFailed:
            continue
        log_event("slot_closed", venue_id=venue.venue_id, slot_id=slot_id, job_id=job.job_id, actor=actor,
                  refund_mode=refund.value, sessions_total=int(slot.booked))
        _send_piece(queues, job.job_id, 0)
        return job
    raise ServiceUnavailable("the slot kept changing while it was being closed; try again")


def find_job(venue_id: str, job_id: str) -> JobRecord:
    try:
        job = JobRecord.get(job_id, consistent_read=True)
    except JobRecord.DoesNotExist:
        raise NotFound("no such job") from None
    if job.venue_id != venue_id:
        raise NotFound("no such job")
    return job


def _slot(venue_id: str, slot_id: str) -> SlotRecord:
    try:
        return SlotRecord.get(venue_id, slot_id, consistent_read=True)
    except SlotRecord.DoesNotExist:
        raise NotFound("no such slot at this venue", {"slot_id": slot_id}) from None


def _send_piece(queues: QueueSender, job_id: str, piece: int, delay_seconds: int = 0) -> None:
    try:
        queues.send_closure_piece(job_id, piece, delay_seconds)
    except Exception as error:  # a second closure request sends it again; the job shows it is stuck
        log_error("closure_piece_send_failed", job_id=job_id, piece=piece, error=repr(error))


# --- The worker -------------------------------------------------------------------------------

def run_piece(message: ClosurePiece, now: datetime, queues: QueueSender) -> str:
    """Cancel the transactions of one piece, then hand on to the next piece or finish the job."""
    for wait in _NOT_READY_WAITS:
        try:
            job = JobRecord.get(message.job_id, consistent_read=True)
        except JobRecord.DoesNotExist:
            log_error("closure_job_unknown", job_id=message.job_id, piece=message.piece)
            return "unknown"
        if int(job.pieces_done) >= message.piece or job.status == "done":
            break
        # The piece before sends this one just before it records that it is done: usually a
        # moment's wait, not a trip back through the queue's visibility timeout.
        time.sleep(wait)
    ids: dict[str, Any] = {"job_id": job.job_id, "venue_id": job.venue_id, "slot_id": job.slot_id,
                           "piece": message.piece}
    if job.status == "done" or int(job.pieces_done) > message.piece:
        log_event("closure_piece_already_done", **ids)
        return "already_done"
    if int(job.pieces_done) < message.piece:
        raise PieceNotReady(f"job {job.job_id}: piece {message.piece} waits for piece {int(job.pieces_done)}")
    venue = VenueRecord.get(job.venue_id)
    slot = _closed_slot(job)
    entries, next_key = _piece(job)
    read = _read_piece([(entry.transaction_id, entry.item) for entry in entries])
    cancelled, refunds = 0, []
    try:
        for transaction_id, group in groupby(entries, key=lambda entry: entry.transaction_id):
            done = _close_transaction(job, venue, slot, transaction_id, [entry.item for entry in group], now,
                                      read.get(transaction_id))
            cancelled += done[0]
            refunds += done[1]
    finally:  # a piece that fails half-way still queues the refunds it made: its rerun will not see them
        _send_refunds(queues, refunds, ids)
    finished, given_up = (False, 0) if next_key is not None else _end_of_sweep(job, queues, message.piece, ids)
    if next_key is not None:
        _send_piece(queues, job.job_id, message.piece + 1)  # before the job moves on: a crash here repeats this piece
    recorded = _advance(job, message.piece, next_key, now, finished)
    if given_up and recorded:
        # Only the run that left the job running says so: a duplicate of this piece that ended
        # the job meanwhile leaves nothing for the alarm.
        log_error("closure_sessions_left", sessions_left=given_up, sweeps=int(job.sweeps_again or 0), **ids)
    log_event("closure_piece_done", sessions_cancelled=cancelled, refunds_created=len(refunds),
              last=finished and recorded, **ids)
    return "done"


def _end_of_sweep(job: JobRecord, queues: QueueSender, piece: int, ids: dict[str, Any]) -> tuple[bool, int]:
    """At the end of a sweep: (True, 0) when the slot counts no booked session any more;
    otherwise the next piece is sent, delayed, to sweep the index again from the top (it may have
    lagged a session's write): (False, 0); or, after the last sweep allowed, (False, sessions left)."""
    try:
        left = int(SlotRecord.get(job.venue_id, job.slot_id, consistent_read=True).booked)
    except SlotRecord.DoesNotExist:
        return True, 0
    if not left:
        return True, 0
    sweeps = int(job.sweeps_again or 0)
    if sweeps < len(SWEEP_AGAIN_DELAYS):
        log_event("closure_sweeps_again", sessions_left=left, sweep=sweeps + 1, **ids)
        # Sent before the job records it, as any next piece: a crash in between repeats this piece.
        _send_piece(queues, job.job_id, piece + 1, SWEEP_AGAIN_DELAYS[sweeps])
        return False, 0
    return False, left


def _send_refunds(queues: QueueSender, refunds: list[tuple[str, str]], ids: dict[str, Any]) -> None:
    if not refunds:
        return
    try:
        queues.send_refunds(refunds)
    except Exception as error:  # the reconciler re-sends refunds left pending
        log_error("refund_send_failed", error=repr(error), refund_ids=[r for _, r in refunds], **ids)


def _piece(job: JobRecord) -> tuple[list[Any], dict[str, Any] | None]:
    """This piece's index entries, whole transactions only, and where the next piece starts
    (None: this is the last piece)."""
    start = dict(job.next_key) if job.next_key else None
    found = list(BookingItem.sessions_by_slot.query(job.slot_id, limit=PIECE_SESSIONS + 1,
                                                    page_size=PIECE_SESSIONS + 1, last_evaluated_key=start))
    if len(found) <= PIECE_SESSIONS:
        return found, None
    entries = found[:PIECE_SESSIONS]
    last = entries[-1].transaction_id
    if found[PIECE_SESSIONS].transaction_id == last:
        # The last transaction goes on past this piece: it is the next piece's, whole. (A
        # transaction holds at most 30 sessions, so a piece of 100 keeps others.)
        kept = [entry for entry in entries if entry.transaction_id != last]
        # One transaction filling the whole piece is taken whole.
        entries = kept or list(BookingItem.sessions_by_slot.query(job.slot_id, SessionsBySlot.transaction_id == last))
    return entries, pages.item_key(entries[-1], _INDEX_KEY)


Read = tuple[TransactionRecord | None, list[SessionRecord]]


def _closed_slot(job: JobRecord) -> SlotRecord | None:
    """The slot the job closes, for its guests' emails (when, what); None if it is gone, when
    they are told of their cancelled sessions instead."""
    try:
        return SlotRecord.get(job.venue_id, job.slot_id)
    except SlotRecord.DoesNotExist:
        return None


def _close_transaction(job: JobRecord, venue: VenueRecord, slot: SlotRecord | None, transaction_id: str,
                       items: list[str], now: datetime, read: Read | None) -> tuple[int, list[tuple[str, str]]]:
    """Cancel the transaction's sessions still booked in the slot, with their one refund; what
    was cancelled and refunded. `read` is the transaction and those sessions as the piece read
    them, strongly, since the index may lag what a first attempt did."""
    refund = rules.RefundMode(job.refund_mode)
    for _ in range(_ATTEMPTS):
        transaction, sessions = read if read is not None else _read_piece(
            [(transaction_id, item) for item in items]).get(transaction_id, (None, []))
        read = None
        booked = [s for s in sessions if s.status == "booked" and s.slot_id == job.slot_id]
        if transaction is None or not booked:
            return 0, []
        receipt = Receipt(venue=venue, transaction=transaction, sessions=booked, refunds=[])
        plan = cancellations.plan_cancellation(receipt, [s.session_id for s in booked], now, refund=refund,
                                               refusal=rules.staff_cancel_refusal)
        cancellation = replace(cancellations.apply_plan(plan, receipt), actor=job.actor, reason=job.reason, by_staff=True,
                               closed_slot=slot)
        write = cancellations.cancellation_write(cancellation)
        write.update("job", JobRecord(job.job_id), actions=[
            JobRecord.sessions_cancelled.add(len(booked)),
            JobRecord.refunds_created.add(1 if cancellation.refund is not None else 0)])
        try:
            write.commit()
        except AtomicWriteFailed:
            items = [s.item for s in sessions]
            continue  # a session changed meanwhile (the guest cancelled, or an earlier attempt did): look again
        made = cancellation.refund
        log_event("sessions_cancelled", venue_id=venue.venue_id, transaction_id=transaction_id, job_id=job.job_id,
                  slot_id=job.slot_id, actor=job.actor, session_ids=[s.session_id for s in booked],
                  refund_id=made.refund_id if made else None, refund_amount=plan.refund_amount)
        return len(booked), [(transaction_id, made.refund_id)] if made else []
    raise ServiceUnavailable(f"transaction {transaction_id} kept changing while its slot was closed")


def _read_piece(items: list[tuple[str, str]]) -> dict[str, Read]:
    """Each transaction of the piece with its sessions in the slot, a hundred keys to a read."""
    transaction_ids = list(dict.fromkeys(transaction_id for transaction_id, _ in items))
    keys = [Key(BookingItem, t, "transaction") for t in transaction_ids] + [Key(BookingItem, t, i) for t, i in items]
    read: dict[str, Read] = {t: (None, []) for t in transaction_ids}
    for record in read_many(keys):
        if isinstance(record, TransactionRecord):
            read[record.transaction_id] = (record, read[record.transaction_id][1])
        elif isinstance(record, SessionRecord):
            read[record.transaction_id][1].append(record)
    return read


def _advance(job: JobRecord, piece: int, next_key: dict[str, Any] | None, now: datetime, finished: bool) -> bool:
    """The job moves past `piece`, once: a duplicate of this piece that finished too changes nothing.
    A sweep that ended with sessions left starts the next one from the top of the index. True
    when this run wrote the job's next step (with `finished`: when this run ended the job)."""
    actions: list[Any] = [JobRecord.pieces_done.set(piece + 1)]
    if finished:
        actions += [JobRecord.status.set("done"), JobRecord.finished_at.set(now), JobRecord.next_key.remove()]
    elif next_key is None:
        actions += [JobRecord.next_key.remove(), JobRecord.sweeps_again.set(int(job.sweeps_again or 0) + 1)]
    else:
        actions.append(JobRecord.next_key.set(next_key))
    write = AtomicWrite()
    write.update("job", job, actions=actions, condition=JobRecord.pieces_done == piece)
    try:
        write.commit()
        return True
    except AtomicWriteFailed:
        pass
    if finished:
        # A duplicate of this piece moved the job on first: it read the slot before this run's
        # cancellations committed and recorded sessions left (after the last sweep, nothing
        # would sweep again). The slot, read strongly after them, counts none, and a closed
        # slot takes no session back: the job is done, whichever piece it has reached.
        ending = AtomicWrite()
        ending.update("job", job, actions=[JobRecord.status.set("done"), JobRecord.finished_at.set(now),
                                           JobRecord.next_key.remove()],
                      condition=JobRecord.status == "running")
        try:
            ending.commit()
            log_event("closure_finished_after_duplicate", job_id=job.job_id, piece=piece)
            return True
        except AtomicWriteFailed:
            pass
    log_event("closure_piece_advanced_already", job_id=job.job_id, piece=piece)
    return False
