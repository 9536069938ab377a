// What a guest reads when something goes wrong: every error code of the contract (API.md,
// "Errors") turned into a sentence written for guests. The server's own `message` is for
// developers and is never shown; `details` only chooses between sentences.

import { moment } from "./format.js";

const venue = (context) => context.venueName || "the venue";

const SESSION_REASONS = {
  started: () => "This session has already started, so it can no longer be changed online.",
  cancelled: () => "This session is cancelled, so it cannot be changed.",
  slot_started: () => "That time slot has already started. Choose a later one.",
  slot_closed: (context) => `${venue(context)} has closed that time slot. Choose another one.`,
  changed: () => "This session was changed in another window or by the venue. The page now shows it as it is; try again.",
  modify_cutoff: (context, details) => details?.modify_deadline && context.timeZone
    ? `Changes to this session closed at ${moment(details.modify_deadline, context.timeZone)}. To change it now, contact ${venue(context)}.`
    : `It is too close to the session to change it online. To change it now, contact ${venue(context)}.`,
};

// One sentence for an ApiError (or any error) in the given context:
// {venueName, timeZone, action: "login" | "venue" | "edit" | "cancel" | "slots" | "load"}, and
// for an edit the slot the session is in (sessionSlotId).
export function guestMessage(error, context = {}) {
  const code = error?.code;
  const details = error?.details || {};
  switch (code) {
    case "network_error":
      return "We could not reach the booking service. Check your connection and try again.";
    case "invalid_credentials":
      return `That email and password do not match a guest profile at ${venue(context)}. Check both and try again.`;
    case "too_many_attempts": {
      const wait = error.retryAfter ? ` in ${Math.ceil(error.retryAfter / 60)} minute${error.retryAfter > 60 ? "s" : ""}` : " later";
      return `Too many attempts to log in. For your security, please try again${wait}.`;
    }
    case "unauthorized":
      return "Your login has expired. Please log in again.";
    case "forbidden":
      return "This page is not available with your login.";
    case "not_found":
      if (context.action === "venue") return "We could not find a venue with that ID. Check the link or the ID in your booking confirmation.";
      if (context.action === "edit") return "That time slot is no longer offered. Choose another one.";
      return "We could not find this purchase in your profile. Go back to Transactions and Receipts and open it from there.";
    case "feature_disabled":
      return context.action === "cancel"
        ? `${venue(context)} does not let guests cancel sessions online. To cancel, contact ${venue(context)}.`
        : `${venue(context)} does not let guests change sessions online. To change a session, contact ${venue(context)}.`;
    case "slot_full":
      return "Someone has just taken the last place in that time slot. Choose another time.";
    case "slot_closed":
      if (context.action === "cancel") {
        return `${venue(context)} has closed the time slot of one of these sessions. It cancels that session and refunds it for you: there is nothing to do. Untick it to cancel the others.`;
      }
      if (context.sessionSlotId && details.slot_id === context.sessionSlotId) {
        return `${venue(context)} has closed this session's time slot, so it can no longer be moved. ${venue(context)} cancels it for you and emails you about its refund: there is nothing to do.`;
      }
      return SESSION_REASONS.slot_closed(context);
    case "session_not_editable":
      return (SESSION_REASONS[details.reason] || SESSION_REASONS.changed)(context, details);
    case "session_not_cancellable": {
      const reasons = Object.values(details.sessions || {});
      if (reasons.includes("started")) return "One of these sessions has already started, so it can no longer be cancelled online. Untick it and try again.";
      if (reasons.includes("cancelled")) return "One of these sessions is already cancelled. The page now shows it as it is.";
      return "These sessions were changed in another window or by the venue. The page now shows them as they are; try again.";
    }
    case "quote_changed":
      return "The refund has changed since this was shown, for example because a refund deadline has passed. Check the new amounts below, then confirm again.";
    case "idempotency_conflict":
      return "This cancellation was already sent for other sessions. Close this window and start again.";
    case "temporarily_unavailable":
      return "The booking service is busy right now. Nothing has changed: wait a moment and try again.";
    case "invalid_request":
      if (details.fields?.participant_name) return "Enter the participant's name, up to 100 characters.";
      if (details.fields?.email) return "Enter your email address as it is in your booking confirmation.";
      return "Something in this form cannot be used. Check what you entered and try again.";
    default:
      return "Something went wrong on our side. Nothing has changed: try again in a moment.";
  }
}
