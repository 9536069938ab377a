// The guest portal, as the venue's help article walks it: log in, the name menu's "Transactions
// and Receipts", "View Receipt", the "Edit Session" popup with "Edit" beside each session, "Save
// Changes"; "Edit Sessions", tick, "Cancel Session(s)", "Confirm Cancellations", and the status
// beside each session. Everything goes through the public rebook API (API.md).
//
// The guest token lives in this tab's sessionStorage only (never in a URL); "Log out" drops it.
// Sentences a guest reads come from messages.js (errors) and this file (reasons); the server's
// own messages are never shown.

import { ApiError, idempotencyKey, part, request } from "./api.js";
import { Calendar } from "./calendar.js";
import { $, busy, el, keepingFocus, say } from "./dom.js";
import {
  calendarDate, hoursBetween, moment, money, plural, sessionTime, slotTime, zoneLabel,
} from "./format.js";
import { guestMessage } from "./messages.js";

const POLL_PENDING_MS = 1500;
const POLL_FAILED_MS = 4000; // a failed refund may be retried by the venue at any moment
const REFUND_ARRIVES = "Refunds usually reach your card within 5 to 10 business days.";

const state = {
  venueId: "",
  venue: null, // the public venue: {venue_id, name, timezone, currency}
  venueError: null,
  login: null, // {token, expires_at, guest}
  loginNotice: "",
  nextCursor: null,
  receipt: null,
  cancelMode: false,
  selected: new Set(), // session ids ticked for cancellation
  editing: null, // the session in the edit dialog
  chosenDate: null,
  cancellation: null, // {transactionId, sessionIds, key, quote} behind the confirmation dialog
  pollTimer: null,
};

const context = (action) => ({ action, venueName: state.venue?.name, timeZone: zone() });
const zone = () => state.venue?.timezone || state.receipt?.timezone;
const venueName = () => state.venue?.name || "the venue";

// --- Login kept per tab, and where to go back to after logging in again ----------------------

const loginKey = (venueId) => `rebook.guest.${venueId}`;
const returnKey = (venueId) => `rebook.return.${venueId}`;
const EXPIRED = "Your login has expired, so you were logged out to keep your bookings safe. Log in again to go back to where you were.";

function storedLogin(venueId) {
  let login = null;
  try {
    login = JSON.parse(sessionStorage.getItem(loginKey(venueId)));
  } catch {
    login = null;
  }
  if (login?.token && Date.parse(login.expires_at) > Date.now()) return login;
  if (login?.token) expired(); // it was there and ran out
  sessionStorage.removeItem(loginKey(venueId));
  return null;
}

function expired() {
  if (location.hash && location.hash !== "#") sessionStorage.setItem(returnKey(state.venueId), location.hash);
  state.loginNotice = EXPIRED;
}

function forgetLogin() {
  if (state.venueId) sessionStorage.removeItem(loginKey(state.venueId));
  state.login = null;
  state.receipt = null;
  state.cancelMode = false;
  state.selected.clear();
  stopPolling();
}

// --- Messages ------------------------------------------------------------------------------

function clearMessages() {
  for (const id of ["error", "notice", "transactions-error", "receipt-error", "receipt-message", "login-error"]) say($(id), "");
}

// A message beside what it is about; `tone` is ok, warn or error, and the box's colour says it.
function tell(region, message, tone = "ok") {
  if (region.classList.contains("field-error")) return say(region, message);
  region.classList.remove("message-ok", "message-warn", "message-error");
  region.classList.add(`message-${tone}`);
  say(region, message);
}

// Text fields: the sentence under the field, and the field marked invalid for screen readers.
function fieldError(input, message) {
  const region = $(`${input.id}-error`);
  say(region, message);
  if (message) input.setAttribute("aria-invalid", "true");
  else input.removeAttribute("aria-invalid");
}

async function guestCall(method, path, options = {}) {
  try {
    return await request(method, path, { ...options, token: state.login?.token });
  } catch (error) {
    if (error instanceof ApiError && error.status === 401 && state.login) {
      expired();
      forgetLogin();
      closeDialogs();
      route();
      error.shown = true;
    }
    throw error;
  }
}

function report(error, region, action) {
  guestReport(error, region, context(action));
}

function guestReport(error, region, messageContext) {
  if (error?.shown) return;
  tell(region, guestMessage(error, messageContext), "error");
}

// --- Views ---------------------------------------------------------------------------------

let firstView = true;

function show(viewId) {
  for (const view of document.querySelectorAll(".view")) view.hidden = view.id !== viewId;
  const heading = $(viewId).querySelector("h1");
  if (!firstView) heading?.focus();
  firstView = false;
}

function renderChrome() {
  $("venue-label").hidden = !state.venue;
  $("venue-label").textContent = state.venue?.name || "";
  $("account").hidden = !state.login;
  $("guest-name").textContent = state.login?.guest?.name || "";
  closeMenu();
}

async function loadVenue() {
  if (state.venue?.venue_id === state.venueId) return true;
  state.venue = null;
  try {
    state.venue = await request("GET", `/v1/venues/${part(state.venueId)}`);
    return true;
  } catch (error) {
    state.venueError = error;
    return false;
  }
}

let routing = 0;

async function route() {
  const ticket = ++routing;
  stopPolling();
  state.venueId = (new URLSearchParams(location.search).get("venue") || "").trim();
  if (!state.venueId) {
    state.venue = null;
    renderChrome();
    return show("view-venue");
  }
  if (!(await loadVenue())) {
    if (ticket !== routing) return;
    renderChrome();
    $("venue-id").value = state.venueId;
    fieldError($("venue-id"), guestMessage(state.venueError, context("venue")));
    return show("view-venue");
  }
  if (ticket !== routing) return;
  if (!state.login) state.login = storedLogin(state.venueId);
  renderChrome();
  if (!state.login) {
    $("login-venue").textContent = state.venue.name;
    tell($("login-notice"), state.loginNotice, "warn");
    $("forgot-password").href = `reset.html?venue=${part(state.venueId)}`;
    return show("view-login");
  }
  const receiptMatch = location.hash.match(/^#receipt\/(.+)$/);
  if (receiptMatch) return openReceipt(decodeURIComponent(receiptMatch[1]));
  return openTransactions();
}

// --- The name menu -------------------------------------------------------------------------

function closeMenu() {
  $("account-button").setAttribute("aria-expanded", "false");
  $("account-menu").hidden = true;
}

$("account-button").addEventListener("click", () => {
  const open = $("account-button").getAttribute("aria-expanded") !== "true";
  $("account-button").setAttribute("aria-expanded", String(open));
  $("account-menu").hidden = !open;
  if (open) $("menu-transactions").focus();
});
$("account").addEventListener("keydown", (event) => {
  if (event.key === "Escape" && !$("account-menu").hidden) {
    closeMenu();
    $("account-button").focus();
  }
});
document.addEventListener("click", (event) => {
  if (!$("account").contains(event.target)) closeMenu();
});
$("menu-transactions").addEventListener("click", () => {
  closeMenu();
  if (location.hash === "#transactions") route();
});

// --- Venue and login -----------------------------------------------------------------------

$("venue-form").addEventListener("submit", (event) => {
  event.preventDefault();
  const venueId = $("venue-id").value.trim();
  if (!venueId) {
    fieldError($("venue-id"), "Enter the venue ID from your booking confirmation.");
    $("venue-id").focus();
    return;
  }
  fieldError($("venue-id"), "");
  clearMessages();
  history.pushState(null, "", `?venue=${part(venueId)}`);
  route();
});

$("change-venue").addEventListener("click", () => {
  clearMessages();
  history.pushState(null, "", location.pathname);
  route();
});

$("login-form").addEventListener("submit", async (event) => {
  event.preventDefault();
  const email = $("login-email").value.trim();
  const password = $("login-password").value;
  fieldError($("login-email"), email ? "" : "Enter your email address.");
  fieldError($("login-password"), password ? "" : "Enter your password.");
  if (!email || !password) {
    (email ? $("login-password") : $("login-email")).focus();
    return;
  }
  const button = event.submitter || event.target.querySelector("button[type=submit]");
  busy(button, "Logging in…");
  say($("login-error"), "");
  try {
    const login = await request("POST", `/v1/venues/${part(state.venueId)}/login`, { body: { email, password } });
    state.login = { token: login.token, expires_at: login.expires_at, guest: login.guest };
    sessionStorage.setItem(loginKey(state.venueId), JSON.stringify(state.login));
    $("login-password").value = "";
    state.loginNotice = "";
    say($("login-notice"), "");
    const back = sessionStorage.getItem(returnKey(state.venueId)) || "#transactions";
    sessionStorage.removeItem(returnKey(state.venueId));
    if (location.hash !== back) location.hash = back;
    else route();
  } catch (error) {
    report(error, $("login-error"), "login");
    $("login-password").focus();
  } finally {
    busy(button, null);
  }
});

$("logout").addEventListener("click", () => {
  forgetLogin();
  closeDialogs();
  sessionStorage.removeItem(returnKey(state.venueId));
  history.pushState(null, "", `?venue=${part(state.venueId)}`);
  route();
  tell($("notice"), "You are logged out.");
});

// --- Transactions and Receipts -------------------------------------------------------------

let listTicket = 0;

async function openTransactions(more = false) {
  const ticket = ++listTicket;
  show("view-transactions");
  $("transactions-zone").textContent = zoneLabel(zone());
  const list = $("transactions");
  if (!more) {
    list.replaceChildren();
    state.nextCursor = null;
    $("transactions-empty").hidden = true;
    $("load-more").hidden = true;
  }
  const query = more && state.nextCursor ? `?cursor=${part(state.nextCursor)}` : "";
  busy($("load-more"), "Loading…");
  try {
    const page = await guestCall("GET", `/v1/me/transactions${query}`);
    if (ticket !== listTicket) return; // a newer load replaced this one
    const items = page.transactions.map(transactionItem);
    list.append(...items);
    state.nextCursor = page.next_cursor || null;
    $("load-more").hidden = !state.nextCursor;
    $("transactions-empty").hidden = list.children.length > 0;
    if (more) items[0]?.querySelector("a")?.focus();
  } catch (error) {
    report(error, $("transactions-error"), "load");
  } finally {
    busy($("load-more"), null);
  }
}

// "All booked", "1 of 3 cancelled", "All cancelled"; and the refund's state beside it.
function purchaseState(transaction) {
  const badges = [];
  const total = transaction.booked_count + transaction.cancelled_count;
  if (transaction.cancelled_count === 0) badges.push(badge("All booked", "booked"));
  else if (transaction.booked_count === 0) badges.push(badge("All cancelled", "cancelled"));
  else badges.push(badge(`${transaction.cancelled_count} of ${total} cancelled`, "cancelled"));
  if (transaction.refund_status !== "none") {
    badges.push(badge(REFUND_LABEL[transaction.refund_status], `refund-${transaction.refund_status}`));
  }
  return badges;
}

function transactionItem(transaction) {
  const titleId = `transaction-${transaction.transaction_id}`;
  const products = transaction.products.length ? transaction.products.join(", ") : "Purchase";
  return el("li", { class: "card transaction", "data-transaction-id": transaction.transaction_id },
    el("div", { class: "transaction-body" },
      el("h2", { id: titleId, class: "transaction-title" }, products),
      transaction.first_session_start
        ? el("p", { class: "when" }, `${transaction.session_count > 1 ? "First session: " : ""}${moment(transaction.first_session_start, zone())}`)
        : null,
      el("p", { class: "transaction-state" }, ...purchaseState(transaction)),
      el("p", { class: "muted" },
        "Booking reference ", el("strong", { class: "reference" }, transaction.booking_reference),
        ` · ${plural(transaction.session_count, "session", "sessions")} · Total ${money(transaction.total, transaction.currency)}`,
        ` · Bought ${moment(transaction.purchased_at, zone())}`)),
    el("a", { class: "button button-secondary", href: `#receipt/${part(transaction.transaction_id)}`,
      "aria-describedby": titleId }, "View Receipt"));
}

$("load-more").addEventListener("click", () => openTransactions(true));

// --- Receipt ---------------------------------------------------------------------------------

async function openReceipt(transactionId) {
  show("view-receipt");
  if (state.receipt?.transaction_id !== transactionId) {
    state.receipt = null;
    state.cancelMode = false;
    state.selected.clear();
    say($("receipt-message"), "");
    $("receipt-summary").replaceChildren(el("div", { class: "muted" }, "Loading receipt…"));
    $("sessions").replaceChildren();
    $("receipt-actions").hidden = true;
    $("receipt-policy").hidden = true;
    $("cancel-bar").hidden = true;
    $("cancel-hint").hidden = true;
    $("refunds-section").hidden = true;
  }
  await reloadReceipt(transactionId);
}

async function reloadReceipt(transactionId = state.receipt?.transaction_id) {
  try {
    const receipt = await guestCall("GET", `/v1/me/transactions/${part(transactionId)}`);
    if (!onReceipt(transactionId)) return;
    const before = state.receipt;
    state.receipt = receipt;
    say($("receipt-error"), "");
    keepingFocus(renderReceipt);
    if ($("sessions-dialog").open) renderSessionsDialog();
    if (before) announceRefundOutcome(before, receipt);
  } catch (error) {
    if (onReceipt(transactionId)) report(error, $("receipt-error"), "load");
  }
  schedulePoll();
}

function onReceipt(transactionId) {
  return Boolean(state.login) && location.hash === `#receipt/${part(transactionId)}`;
}

function renderReceipt() {
  const receipt = state.receipt;
  const booked = receipt.sessions.filter((s) => s.status === "booked").length;
  const cancelled = receipt.sessions.length - booked;
  $("receipt-title").textContent = `Receipt ${receipt.booking_reference}`;
  $("receipt-summary").replaceChildren(
    ...fact("Booking reference", el("strong", { class: "reference" }, receipt.booking_reference)),
    ...fact("Bought", moment(receipt.purchased_at, zone())),
    ...fact("Total paid", money(receipt.total, receipt.currency)),
    ...fact("Sessions", cancelled ? `${receipt.sessions.length} (${booked} booked, ${cancelled} cancelled)` : String(receipt.sessions.length)),
    ...fact("Times shown in", zoneLabel(zone())));

  const cancellable = receipt.sessions.filter((s) => s.actions.cancel);
  const editable = receipt.sessions.filter((s) => s.actions.edit);
  for (const id of state.selected) if (!cancellable.some((s) => s.session_id === id)) state.selected.delete(id);
  if (cancellable.length === 0) state.cancelMode = false;

  $("edit-session-action").hidden = editable.length === 0;
  $("edit-sessions-action").hidden = cancellable.length === 0 || state.cancelMode;
  $("receipt-actions").hidden = editable.length === 0 && (cancellable.length === 0 || state.cancelMode);
  const policy = receiptPolicy(receipt, editable, cancellable);
  $("receipt-policy").hidden = !policy;
  $("receipt-policy").textContent = policy || "";

  $("sessions").replaceChildren(...receipt.sessions.map((s) => sessionItem(s, receipt)));
  $("cancel-bar").hidden = !state.cancelMode;
  $("cancel-hint").hidden = !state.cancelMode;

  $("refunds-section").hidden = receipt.refunds.length === 0;
  $("refunds").replaceChildren(...receipt.refunds.map((refund) => el("li", { class: "refund", "data-refund-status": refund.status },
    el("span", {}, `${money(refund.amount, receipt.currency)} for ${plural(refund.session_ids.length, "session", "sessions")}`),
    el("span", { class: "muted" }, `asked for ${moment(refund.created_at, zone())}`),
    badge(REFUND_LABEL[refund.status] || refund.status, `refund-${refund.status}`))));
}

// When nothing on the receipt can be done online, say why once, and whom to ask.
function receiptPolicy(receipt, editable, cancellable) {
  const ahead = receipt.sessions.filter((s) => s.status === "booked" && !started(s));
  if (ahead.length === 0) return "";
  if (editable.length === 0 && cancellable.length === 0) {
    return `${venueName()} does not let guests change or cancel sessions online. To change a booking, contact ${venueName()}.`;
  }
  if (editable.length === 0 && ahead.every((s) => editRefusal(s) === "off")) {
    return `${venueName()} does not let guests change sessions online. To move a session or change a participant, contact ${venueName()}.`;
  }
  return "";
}

function fact(term, description) {
  return [el("dt", {}, term), el("dd", {}, description)];
}

function badge(text, kind) {
  return el("span", { class: `badge badge-${kind}` }, text);
}

const REFUND_LABEL = {
  pending: "Refund pending",
  refunded: "Refunded",
  failed: "Refund failed",
  not_refunded: "No refund",
  none: "No refund",
};

const started = (session) => Date.parse(session.start) <= Date.now();

// Why a booked session cannot be edited: "started", "cutoff" (the venue's edit deadline has
// passed) or "off" (the venue does not allow editing online); null when it can be.
function editRefusal(session) {
  if (session.actions.edit || session.status !== "booked") return null;
  if (started(session)) return "started";
  if (session.modify_deadline && Date.parse(session.modify_deadline) < Date.now()) return "cutoff";
  return "off";
}

function editReason(session) {
  switch (editRefusal(session)) {
    case "started":
      return `This session has started, so it can no longer be changed online. If you need help, contact ${venueName()}.`;
    case "cutoff":
      return `Changes closed at ${moment(session.modify_deadline, zone())}, ${plural(hoursBetween(session.modify_deadline, session.start), "hour", "hours")} before the start. To change it now, contact ${venueName()}.`;
    case "off":
      return `${venueName()} does not let guests change sessions online: contact the venue to change it.`;
    default:
      return "";
  }
}

// The cutoff in hours, from any session that states its refund deadline.
function refundCutoffHours(receipt) {
  const known = receipt.sessions.find((s) => s.refund_deadline);
  return known ? hoursBetween(known.refund_deadline, known.start) : null;
}

function refundReason(session, receipt) {
  if (session.status !== "booked" || started(session)) return "";
  if (!session.actions.cancel) {
    return `${venueName()} does not let guests cancel online. To cancel, contact ${venueName()}.`;
  }
  if (session.actions.refund_on_cancel) {
    return `Cancel by ${moment(session.refund_deadline, zone())} for a refund.`;
  }
  const hours = refundCutoffHours(receipt);
  if (session.refund_deadline && Date.parse(session.refund_deadline) < Date.now()) {
    return `Cancelling now gives no refund: refunds end ${plural(hours, "hour", "hours")} before a session starts, and for this one that was ${moment(session.refund_deadline, zone())}.`;
  }
  if (session.refund_window === "closed" && hours !== null) {
    return `Cancelling gives no refund: this session was moved after its refund deadline (${plural(hours, "hour", "hours")} before the start), so it stays without a refund.`;
  }
  return `${venueName()} does not give refunds for sessions cancelled online. You can still cancel, without a refund.`;
}

function cancelledNote(session, receipt) {
  switch (session.refund_status) {
    case "pending":
      return `Your refund is on its way. ${REFUND_ARRIVES}`;
    case "refunded":
      return `Refunded to the card you paid with. ${REFUND_ARRIVES}`;
    case "failed":
      return `The refund did not go through yet. ${venueName()} can see this and will try again; this page updates by itself.`;
    default:
      return refundCutoffHours(receipt) === null && !session.refund_deadline
        ? "Cancelled without a refund." : "Cancelled without a refund: it was cancelled after the refund deadline.";
  }
}

function sessionItem(session, receipt) {
  const id = session.session_id;
  const titleId = `session-${id}-title`;
  const cancelled = session.status === "cancelled";
  const notes = cancelled
    ? [cancelledNote(session, receipt)]
    : [editReason(session), refundReason(session, receipt)].filter(Boolean);
  const select = state.cancelMode && session.actions.cancel
    ? el("div", { class: "session-actions" }, el("span", { class: "select" },
      el("input", {
        type: "checkbox", id: `select-${id}`, name: "session_ids", value: id, "aria-describedby": titleId,
        checked: state.selected.has(id),
        onchange: (event) => {
          if (event.target.checked) state.selected.add(id);
          else state.selected.delete(id);
          say($("cancel-bar-error"), "");
        },
      }),
      el("label", { for: `select-${id}` }, "Select to cancel")))
    : null;
  return el("li", { class: `card session${cancelled ? " session-cancelled" : ""}`, "data-session-id": id,
    "data-status": session.status, "data-refund-status": session.refund_status },
    el("div", { class: "session-head" },
      el("h3", { id: titleId }, `${session.product_name} · ${session.participant_name}`),
      el("span", { class: "session-status" },
        badge(cancelled ? "Cancelled" : "Booked", session.status),
        cancelled || session.refund_status !== "none"
          ? badge(REFUND_LABEL[session.refund_status], `refund-${session.refund_status}`) : null)),
    el("p", { class: "when" }, sessionTime(session.start, session.end, zone())),
    el("dl", { class: "facts" },
      ...fact("Participant", session.participant_name),
      ...fact("Amount", money(session.amount, receipt.currency))),
    ...notes.map((note) => el("p", { class: "note" }, note)),
    select);
}

// --- Refund progress: poll the receipt while a refund is on its way or waiting for a retry ---

function refundState(receipt) {
  const states = new Set([...receipt.refunds.map((r) => r.status), ...receipt.sessions.map((s) => s.refund_status)]);
  return states.has("pending") ? "pending" : states.has("failed") ? "failed" : "settled";
}

function schedulePoll() {
  stopPolling();
  const receipt = state.receipt;
  if (!receipt || !onReceipt(receipt.transaction_id)) return;
  const now = refundState(receipt);
  if (now === "settled") return;
  state.pollTimer = setTimeout(() => reloadReceipt(receipt.transaction_id),
    now === "pending" ? POLL_PENDING_MS : POLL_FAILED_MS);
}

function stopPolling() {
  clearTimeout(state.pollTimer);
  state.pollTimer = null;
}

function announceRefundOutcome(before, after) {
  const earlier = new Map(before.refunds.map((r) => [r.refund_id, r.status]));
  for (const refund of after.refunds) {
    const was = earlier.get(refund.refund_id);
    if (was === refund.status || was === undefined) continue;
    const amount = money(refund.amount, after.currency);
    if (refund.status === "refunded") {
      tell($("receipt-message"), `Your refund of ${amount} has been sent to your card. ${REFUND_ARRIVES}`, "ok");
    } else if (refund.status === "failed") {
      tell($("receipt-message"), `The refund of ${amount} did not go through yet. ${venueName()} can see this and will try again; this page updates by itself.`, "warn");
    } else if (refund.status === "pending" && was === "failed") {
      tell($("receipt-message"), `${venueName()} is trying your refund of ${amount} again.`, "ok");
    }
  }
}

// What the guest reads after confirming: the refund as the receipt shows it now, which may already
// be paid or refused when the worker was quicker than the page.
function cancelledMessage(count, refund, receipt) {
  if (!refund) return [`Cancelled ${count}. No refund is due.`, "ok"];
  const amount = money(refund.amount, receipt.currency);
  const status = receipt.refunds.find((r) => r.refund_id === refund.refund_id)?.status ?? refund.status;
  if (status === "failed") {
    return [`Cancelled ${count}. The refund of ${amount} did not go through yet. ${venueName()} can see this and will try again; this page updates by itself.`, "warn"];
  }
  if (status === "refunded") {
    return [`Cancelled ${count}. Your refund of ${amount} has been sent to your card. ${REFUND_ARRIVES}`, "ok"];
  }
  return [`Cancelled ${count}. A refund of ${amount} is on its way to your card. ${REFUND_ARRIVES}`, "ok"];
}

// --- Edit Session: the popup with "Edit" beside each session ---------------------------------

$("open-edit-session").addEventListener("click", () => {
  say($("sessions-dialog-message"), "");
  renderSessionsDialog();
  $("sessions-dialog").showModal();
});

function renderSessionsDialog() {
  const receipt = state.receipt;
  const rows = receipt.sessions.filter((s) => s.status === "booked").map((session) => {
    const lineId = `edit-line-${session.session_id}`;
    return el("li", { class: "edit-row", "data-session-id": session.session_id },
      el("div", { id: lineId },
        el("strong", {}, `${session.product_name} · ${session.participant_name}`), el("br"),
        el("span", { class: "muted" }, sessionTime(session.start, session.end, zone()))),
      session.actions.edit
        ? el("button", { type: "button", id: `edit-${session.session_id}`, class: "button-secondary",
          "aria-describedby": lineId, onclick: () => openEdit(session) }, "Edit")
        : el("p", { class: "note edit-reason" }, editReason(session)));
  });
  keepingFocus(() => $("sessions-dialog-list").replaceChildren(...rows));
}

$("sessions-dialog-close").addEventListener("click", () => $("sessions-dialog").close());

// --- The edit window: date (calendar), time slot, participant, "Save Changes" ----------------

let slotRequest = 0;

const calendar = new Calendar($("edit-calendar"), {
  idPrefix: "edit-calendar",
  load: async (month) => {
    const answer = await request("GET",
      `/v1/venues/${part(state.venueId)}/availability?product_id=${part(state.editing.product_id)}&month=${part(month)}`);
    return answer.days;
  },
  onPick: (date) => {
    state.chosenDate = date;
    loadSlots();
  },
});

function openEdit(session) {
  state.editing = session;
  state.chosenDate = calendarDate(session.start, zone());
  say($("edit-error"), "");
  say($("edit-slot-error"), "");
  say($("edit-warning"), "");
  fieldError($("edit-name"), "");
  $("edit-current").textContent = `${session.product_name} for ${session.participant_name}, now ${sessionTime(session.start, session.end, zone())}.`;
  $("edit-name").value = session.participant_name;
  $("edit-dialog").showModal();
  calendar.start(calendarDate(Date.now(), zone()).slice(0, 7), state.chosenDate)
    .catch((error) => report(error, $("edit-error"), "slots"));
  loadSlots();
}

// `keepError`: a refresh after a refusal keeps the sentence that explains it.
async function loadSlots(keepError = false) {
  const session = state.editing;
  const date = state.chosenDate;
  const box = $("edit-slots");
  const ticket = ++slotRequest;
  if (keepError !== true) say($("edit-slot-error"), "");
  box.setAttribute("aria-busy", "true");
  box.replaceChildren(el("p", { class: "muted" }, "Loading time slots…"));
  try {
    const { slots } = await request("GET",
      `/v1/venues/${part(state.venueId)}/slots?product_id=${part(session.product_id)}&date=${part(date)}`);
    if (ticket !== slotRequest) return;
    box.replaceChildren(
      el("p", { class: "slots-day" }, `Times on ${new Intl.DateTimeFormat(undefined, { timeZone: "UTC", weekday: "long", day: "numeric", month: "long" }).format(new Date(`${date}T00:00:00Z`))}`),
      ...(slots.length
        ? slots.map((slot) => slotChoice(slot, session))
        : [el("p", { class: "muted" }, "No time slots on this date. Choose another day in the calendar.")]));
    showMoveWarning();
  } catch (error) {
    if (ticket !== slotRequest) return;
    box.replaceChildren();
    report(error, $("edit-slot-error"), "slots");
  } finally {
    if (ticket === slotRequest) box.setAttribute("aria-busy", "false");
  }
}

function slotChoice(slot, session) {
  const current = slot.slot_id === session.slot_id;
  const full = slot.remaining <= 0 && !current;
  const seats = current ? "your current time" : full ? "Full" : `${plural(slot.remaining, "place", "places")} left`;
  const id = `slot-${slot.slot_id}`;
  return el("div", { class: `slot${full ? " slot-full" : ""}` },
    el("input", { type: "radio", name: "slot", id, value: slot.slot_id, checked: current, disabled: full,
      "data-start": slot.start, onchange: showMoveWarning }),
    el("label", { for: id },
      el("span", { class: "slot-time" }, slotTime(slot.start, slot.end, zone())),
      el("span", { class: "slot-seats" }, seats)));
}

// Before saving: what the move does to the refund, in the guest's words.
function showMoveWarning() {
  const session = state.editing;
  const chosen = $("edit-form").querySelector('input[name="slot"]:checked');
  const warning = $("edit-warning");
  if (!session || !chosen || chosen.value === session.slot_id) return say(warning, "");
  const hours = refundCutoffHours(state.receipt);
  if (session.actions.refund_on_cancel && hours !== null) {
    const newDeadline = Date.parse(chosen.dataset.start) - hours * 3_600_000;
    if (newDeadline < Date.now()) {
      return tell(warning, `This time is less than ${plural(hours, "hour", "hours")} away. If you move to it, you can no longer get a refund if you cancel: refunds end ${plural(hours, "hour", "hours")} before a session starts.`, "warn");
    }
    return tell(warning, `You can still cancel for a refund until ${moment(newDeadline, zone())}, ${plural(hours, "hour", "hours")} before the new time.`, "ok");
  }
  if (!session.actions.refund_on_cancel && session.refund_deadline) {
    return tell(warning, "This session can no longer be refunded, and moving it does not change that.", "warn");
  }
  return say(warning, "");
}

$("edit-close").addEventListener("click", () => $("edit-dialog").close());
$("edit-dialog").addEventListener("close", () => {
  slotRequest++;
  state.editing = null;
});

$("edit-form").addEventListener("submit", async (event) => {
  event.preventDefault();
  const session = state.editing;
  const chosen = $("edit-form").querySelector('input[name="slot"]:checked')?.value;
  const name = $("edit-name").value.trim();
  say($("edit-error"), "");
  if (!name) {
    fieldError($("edit-name"), "Enter the participant's name.");
    $("edit-name").focus();
    return;
  }
  fieldError($("edit-name"), "");
  const changes = {};
  if (chosen && chosen !== session.slot_id) changes.slot_id = chosen;
  if (name !== session.participant_name) changes.participant_name = name;
  if (Object.keys(changes).length === 0) {
    tell($("edit-error"), "Nothing has changed yet: choose another day and time slot, or change the name.", "error");
    return;
  }
  const transactionId = state.receipt.transaction_id;
  busy($("edit-save"), "Saving…");
  try {
    const saved = await guestCall("PATCH", `/v1/me/transactions/${part(transactionId)}/sessions/${part(session.session_id)}`,
      { body: changes });
    $("edit-dialog").close();
    const summary = `Your changes are saved: ${saved.participant_name}, ${sessionTime(saved.start, saved.end, zone())}.`;
    await reloadReceipt(transactionId);
    tell($("sessions-dialog-message"), summary, "ok");
    tell($("receipt-message"), summary, "ok");
    $(`edit-${session.session_id}`)?.focus();
  } catch (error) {
    if (error?.shown) return;
    // A closed slot is either the chosen one (choose another) or the session's own: its closure
    // cancels the session, so there is nothing to choose, only the receipt to show again.
    const ownSlotClosed = error.code === "slot_closed" && error.details?.slot_id === session.slot_id;
    const region = !ownSlotClosed && (error.code === "slot_full" || error.code === "slot_closed"
      || error.details?.reason === "slot_started")
      ? $("edit-slot-error") : error.code === "invalid_request" && error.details?.fields?.participant_name
        ? $("edit-name-error") : $("edit-error");
    guestReport(error, region, { ...context("edit"), sessionSlotId: session.slot_id });
    if (region === $("edit-name-error")) $("edit-name").setAttribute("aria-invalid", "true");
    if (!ownSlotClosed && (error.code === "slot_full" || error.code === "slot_closed")) loadSlots(true);
    if (ownSlotClosed || error.code === "session_not_editable" || error.code === "feature_disabled") {
      reloadReceipt(transactionId);
    }
  } finally {
    busy($("edit-save"), null);
  }
});

// --- Edit Sessions: tick, "Cancel Session(s)", "Confirm Cancellations" -----------------------

$("edit-sessions").addEventListener("click", () => {
  state.cancelMode = true;
  say($("receipt-message"), "");
  renderReceipt();
  $("sessions").querySelector('input[type="checkbox"]')?.focus();
});

$("cancel-mode-done").addEventListener("click", () => {
  state.cancelMode = false;
  state.selected.clear();
  say($("cancel-bar-error"), "");
  renderReceipt();
  $("edit-sessions").focus();
});

$("cancel-form").addEventListener("submit", async (event) => {
  event.preventDefault();
  const receipt = state.receipt;
  const sessionIds = receipt.sessions.filter((s) => state.selected.has(s.session_id)).map((s) => s.session_id);
  if (sessionIds.length === 0) {
    say($("cancel-bar-error"), "Tick at least one session to cancel first.");
    $("sessions").querySelector('input[type="checkbox"]')?.focus();
    return;
  }
  say($("cancel-bar-error"), "");
  say($("receipt-message"), "");
  // One key per confirmation: a double click, or a retry after a lost answer, cannot cancel twice.
  state.cancellation = { transactionId: receipt.transaction_id, sessionIds, key: idempotencyKey(), quote: null };
  say($("cancel-error"), "");
  $("cancel-loading").hidden = false;
  $("cancel-list").replaceChildren();
  $("cancel-total").hidden = true;
  $("cancel-final").hidden = true;
  $("cancel-confirm").disabled = true;
  $("cancel-dialog").showModal();
  try {
    const quote = await guestCall("POST", `/v1/me/transactions/${part(receipt.transaction_id)}/cancellation-quote`,
      { body: { session_ids: sessionIds } });
    if (!state.cancellation) return;
    renderQuote(quote, receipt);
    $("cancel-confirm").disabled = false;
  } catch (error) {
    $("cancel-loading").hidden = true;
    report(error, $("cancel-error"), "cancel");
  }
});

// Per session: what was paid, the fee the venue keeps, the refund; or why there is none.
function renderQuote(quote, receipt) {
  state.cancellation.quote = quote;
  const byId = new Map(receipt.sessions.map((s) => [s.session_id, s]));
  $("cancel-loading").hidden = true;
  $("cancel-list").replaceChildren(...quote.sessions.map((line) => {
    const session = byId.get(line.session_id);
    const refund = line.refund_amount ?? (line.refundable ? session.amount : 0);
    const fee = line.fee_amount ?? 0;
    const why = line.refundable ? "" : noRefundReason(session, receipt);
    return el("li", { "data-session-id": line.session_id, "data-refundable": String(line.refundable) },
      el("span", { class: "quote-what" },
        el("strong", {}, session.product_name), " · ", session.participant_name, el("br"),
        el("span", { class: "muted" }, sessionTime(session.start, session.end, zone())),
        why ? el("span", { class: "quote-why" }, why) : null),
      el("span", { class: "quote-refund" },
        line.refundable ? `Refund ${money(refund, quote.currency)}` : "No refund",
        line.refundable && fee > 0 ? el("span", { class: "quote-fee" }, `Paid ${money(session.amount, quote.currency)}, fee ${money(fee, quote.currency)}`) : null));
  }));
  const fees = quote.fee_amount ?? quote.sessions.reduce((sum, s) => sum + (s.fee_amount ?? 0), 0);
  $("cancel-total").replaceChildren(quote.refund_amount > 0
    ? el("span", {}, "Total refund: ", el("strong", { id: "cancel-refund-amount" }, money(quote.refund_amount, quote.currency)),
      fees > 0 ? ` (after ${money(fees, quote.currency)} in cancellation fees)` : "", ", to the card you paid with.")
    : el("span", {}, "No refund is due for these sessions: ", el("strong", { id: "cancel-refund-amount" }, money(0, quote.currency)), "."));
  $("cancel-total").hidden = false;
  $("cancel-final").hidden = false;
}

function noRefundReason(session, receipt) {
  const hours = refundCutoffHours(receipt);
  if (!session.refund_deadline) return `${venueName()} does not refund cancellations made online.`;
  if (Date.parse(session.refund_deadline) < Date.now()) {
    return `Refunds end ${plural(hours, "hour", "hours")} before a session starts; for this one that was ${moment(session.refund_deadline, zone())}.`;
  }
  return "It was moved after its refund deadline, so it stays without a refund.";
}

$("cancel-keep").addEventListener("click", () => $("cancel-dialog").close());
$("cancel-dialog").addEventListener("close", () => {
  state.cancellation = null;
});

$("cancel-confirm").addEventListener("click", async () => {
  const cancellation = state.cancellation;
  if (!cancellation?.quote || $("cancel-confirm").disabled) return;
  busy($("cancel-confirm"), "Cancelling…");
  say($("cancel-error"), "");
  try {
    const result = await guestCall("POST", `/v1/me/transactions/${part(cancellation.transactionId)}/cancellations`, {
      // The amount the guest saw: if it changed meanwhile, nothing is cancelled (409 quote_changed).
      // An API from before fees (its quote has no fee_amount) does not take the field.
      body: { session_ids: cancellation.sessionIds,
        ...("fee_amount" in cancellation.quote ? { expected_refund_amount: cancellation.quote.refund_amount } : {}) },
      headers: { "Idempotency-Key": cancellation.key },
    });
    $("cancel-dialog").close();
    state.selected.clear();
    state.cancelMode = false;
    const count = plural(result.cancelled_session_ids.length, "session", "sessions");
    await reloadReceipt(cancellation.transactionId);
    const [text, tone] = cancelledMessage(count, result.refund, state.receipt);
    tell($("receipt-message"), text, tone);
    $("receipt-message").focus();
  } catch (error) {
    if (error?.shown) return;
    if (error.code === "quote_changed" && error.details?.quote) {
      // Same sessions, new amounts: the guest confirms the new quote under a new key.
      cancellation.key = idempotencyKey();
      renderQuote(error.details.quote, state.receipt);
    }
    report(error, $("cancel-error"), "cancel");
    $("cancel-error").scrollIntoView({ block: "nearest" });
  } finally {
    busy($("cancel-confirm"), null);
  }
});

function closeDialogs() {
  for (const dialog of document.querySelectorAll("dialog[open]")) dialog.close();
}

// --- Start ---------------------------------------------------------------------------------

// Links and Back/Forward (hash or query changes) come here; pushState callers route themselves.
window.addEventListener("popstate", () => {
  clearMessages();
  closeDialogs();
  route();
});
route();
