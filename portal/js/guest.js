// The guest portal: pick a venue, log in, see "Transactions and Receipts", open a receipt, and
// edit or cancel its sessions, as the help-centre article walks it. Everything goes through the
// public rebook API (see API.md); nothing here knows more than a venue's own portal could.
//
// The guest token lives in this tab's sessionStorage only (never in a URL) and "Log out" drops it.

import { ApiError, idempotencyKey, part, request } from "./api.js";
import { $, busy, el, keepingFocus, say } from "./dom.js";
import { calendarDate, moment, money, plural, sessionTime, slotTime } from "./format.js";

const POLL_MS = 1500;

const state = {
  venueId: "",
  login: null, // {token, expires_at, guest}
  timeZone: undefined, // the venue's, learnt from its first receipt
  nextCursor: null,
  receipt: null,
  selected: new Set(), // session ids ticked for cancellation
  editing: null, // the session in the edit dialog
  cancellation: null, // {transactionId, sessionIds, key} behind the confirmation dialog
  pollTimer: null,
};

// --- Login kept per tab --------------------------------------------------------------------

const loginKey = (venueId) => `rebook.guest.${venueId}`;

function storedLogin(venueId) {
  try {
    const login = JSON.parse(sessionStorage.getItem(loginKey(venueId)));
    if (login?.token && Date.parse(login.expires_at) > Date.now()) return login;
  } catch {
    // unreadable: forget it below
  }
  sessionStorage.removeItem(loginKey(venueId));
  return null;
}

function forgetLogin() {
  if (state.venueId) sessionStorage.removeItem(loginKey(state.venueId));
  state.login = null;
  state.receipt = null;
  state.selected.clear();
  stopPolling();
}

// --- Messages ------------------------------------------------------------------------------

function showError(message, region = $("error")) {
  say(region, message);
}

function notify(message) {
  say($("notice"), message);
}

function clearMessages() {
  showError("");
  notify("");
}

// Show an API failure where the person is looking; an expired login sends them back to log in.
function report(error, region = $("error")) {
  if (error?.shown) return;
  showError(error instanceof ApiError ? error.message : "Something went wrong. Please try again.", region);
}

async function guestCall(method, path, options = {}) {
  try {
    return await request(method, path, { ...options, token: state.login?.token });
  } catch (error) {
    if (error instanceof ApiError && error.status === 401 && state.login) {
      forgetLogin();
      closeDialogs();
      route();
      showError(`${error.message}. Please log in again.`);
      error.shown = true;
    }
    throw error;
  }
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
  $("venue-label").hidden = !state.venueId;
  $("venue-label").textContent = state.venueId ? `Venue ${state.venueId}` : "";
  $("account").hidden = !state.login;
  $("guest-name").textContent = state.login?.guest?.name || "";
}

function route() {
  stopPolling();
  state.venueId = (new URLSearchParams(location.search).get("venue") || "").trim();
  if (state.venueId && !state.login) state.login = storedLogin(state.venueId);
  renderChrome();
  if (!state.venueId) return show("view-venue");
  if (!state.login) {
    $("login-venue").textContent = state.venueId;
    $("forgot-password").href = `reset.html?venue=${part(state.venueId)}`;
    return show("view-login");
  }
  const receiptMatch = location.hash.match(/^#receipt\/(.+)$/);
  if (receiptMatch) return openReceipt(decodeURIComponent(receiptMatch[1]));
  return openTransactions();
}

// --- Venue and login -----------------------------------------------------------------------

$("venue-form").addEventListener("submit", (event) => {
  event.preventDefault();
  const venueId = $("venue-id").value.trim();
  if (!venueId) {
    showError("Enter your venue ID.");
    $("venue-id").focus();
    return;
  }
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
  if (!email || !password) {
    showError("Enter your email and password.");
    (email ? $("login-password") : $("login-email")).focus();
    return;
  }
  const button = event.submitter || event.target.querySelector("button[type=submit]");
  busy(button, "Logging in…");
  clearMessages();
  try {
    const login = await request("POST", `/v1/venues/${part(state.venueId)}/login`, { body: { email, password } });
    state.login = { token: login.token, expires_at: login.expires_at, guest: login.guest };
    sessionStorage.setItem(loginKey(state.venueId), JSON.stringify(state.login));
    $("login-password").value = "";
    if (location.hash !== "#transactions") location.hash = "#transactions";
    else route();
  } catch (error) {
    report(error);
    $("login-password").focus();
  } finally {
    busy(button, null);
  }
});

$("logout").addEventListener("click", () => {
  forgetLogin();
  closeDialogs();
  history.pushState(null, "", `?venue=${part(state.venueId)}`);
  route();
  notify("You are logged out.");
});

// --- Transactions and Receipts -------------------------------------------------------------

async function openTransactions(more = false) {
  show("view-transactions");
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
    const items = page.transactions.map(transactionItem);
    list.append(...items);
    state.nextCursor = page.next_cursor || null;
    $("load-more").hidden = !state.nextCursor;
    $("transactions-empty").hidden = list.children.length > 0;
    if (more) items[0]?.querySelector("a")?.focus();
  } catch (error) {
    report(error);
  } finally {
    busy($("load-more"), null);
  }
}

function transactionItem(transaction) {
  const titleId = `transaction-${transaction.transaction_id}`;
  return el("li", { class: "card transaction", "data-transaction-id": transaction.transaction_id },
    el("div", {},
      el("h2", { id: titleId, class: "transaction-title" },
        `Purchased ${moment(transaction.purchased_at, state.timeZone)}`),
      el("p", { class: "muted" },
        `${plural(transaction.session_count, "session", "sessions")} · Total ${money(transaction.total, transaction.currency)}`)),
    el("a", { class: "button button-secondary", href: `#receipt/${part(transaction.transaction_id)}`,
      "aria-describedby": titleId }, "View Receipt"));
}

$("load-more").addEventListener("click", () => openTransactions(true));

// --- Receipt ---------------------------------------------------------------------------------

async function openReceipt(transactionId) {
  show("view-receipt");
  if (state.receipt?.transaction_id !== transactionId) {
    state.receipt = null;
    state.selected.clear();
    $("receipt-summary").replaceChildren(el("div", { class: "muted" }, "Loading receipt…"));
    $("sessions").replaceChildren();
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
    const wasPending = state.receipt ? refundPending(state.receipt) : false;
    state.receipt = receipt;
    state.timeZone = receipt.timezone;
    keepingFocus(renderReceipt);
    if (wasPending && !refundPending(receipt)) announceRefundOutcome(receipt);
  } catch (error) {
    report(error);
  }
  schedulePoll();
}

function onReceipt(transactionId) {
  return Boolean(state.login) && location.hash === `#receipt/${part(transactionId)}`;
}

function renderReceipt() {
  const receipt = state.receipt;
  const zone = receipt.timezone;
  const booked = receipt.sessions.filter((s) => s.status === "booked").length;
  $("receipt-summary").replaceChildren(
    ...fact("Purchased", moment(receipt.purchased_at, zone)),
    ...fact("Total paid", money(receipt.total, receipt.currency)),
    ...fact("Sessions", `${receipt.sessions.length} (${booked} booked)`),
    ...fact("Times shown in", zone.replaceAll("_", " ")),
    ...fact("Receipt number", el("code", {}, receipt.transaction_id)));

  const cancellable = new Set(receipt.sessions.filter((s) => s.actions.cancel).map((s) => s.session_id));
  for (const id of state.selected) if (!cancellable.has(id)) state.selected.delete(id);
  $("sessions").replaceChildren(...receipt.sessions.map((s) => sessionItem(s, zone, receipt.currency)));
  $("cancel-bar").hidden = cancellable.size === 0;
  $("cancel-hint").hidden = cancellable.size === 0;

  $("refunds-section").hidden = receipt.refunds.length === 0;
  $("refunds").replaceChildren(...receipt.refunds.map((refund) => el("li", { class: "refund", "data-refund-status": refund.status },
    el("span", {}, `${money(refund.amount, receipt.currency)} · ${plural(refund.session_ids.length, "session", "sessions")}`),
    el("span", {}, `requested ${moment(refund.created_at, zone)}`),
    badge(REFUND_LABEL[refund.status] || refund.status, `refund-${refund.status}`))));
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
  not_refunded: "Not refunded",
  none: "Not refunded",
};

function sessionItem(session, zone, currency) {
  const id = session.session_id;
  const titleId = `session-${id}-title`;
  const cancelled = session.status === "cancelled";
  const showRefund = cancelled || session.refund_status !== "none";
  const controls = [];
  if (session.actions.cancel) {
    controls.push(el("span", { class: "select" },
      el("input", {
        type: "checkbox", id: `select-${id}`, name: "session_ids", value: id, "aria-describedby": titleId,
        checked: state.selected.has(id),
        onchange: (event) => (event.target.checked ? state.selected.add(id) : state.selected.delete(id)),
      }),
      el("label", { for: `select-${id}` }, "Select to cancel")));
  }
  if (session.actions.edit) {
    controls.push(el("button", {
      type: "button", id: `edit-${id}`, class: "button-secondary", "aria-describedby": titleId,
      onclick: () => openEdit(session),
    }, "Edit Session"));
  }
  return el("li", { class: `card session${cancelled ? " session-cancelled" : ""}`, "data-session-id": id,
    "data-status": session.status, "data-refund-status": session.refund_status },
    el("div", { class: "session-head" },
      el("h3", { id: titleId }, session.product_name),
      badge(cancelled ? "Cancelled" : "Booked", session.status)),
    el("p", { class: "when" }, sessionTime(session.start, session.end, zone)),
    el("dl", { class: "facts" },
      ...fact("Participant", session.participant_name),
      ...fact("Amount", money(session.amount, currency)),
      ...(showRefund ? fact("Refund", badge(REFUND_LABEL[session.refund_status], `refund-${session.refund_status}`)) : [])),
    refundNote(session, zone),
    controls.length ? el("div", { class: "session-actions" }, ...controls) : null);
}

function refundNote(session, zone) {
  if (session.status !== "booked") return null;
  if (session.actions.cancel && session.actions.refund_on_cancel) {
    const until = session.refund_deadline ? ` until ${moment(session.refund_deadline, zone)}` : "";
    return el("p", { class: "note" }, `Cancel${until} for a full refund.`);
  }
  if (session.actions.cancel) return el("p", { class: "note" }, "Cancelling now gives no refund.");
  if (!session.actions.edit) return el("p", { class: "note muted" }, "This session cannot be changed online.");
  return null;
}

// --- Refund progress: poll the receipt while a refund is on its way --------------------------

function refundPending(receipt) {
  return receipt.sessions.some((s) => s.refund_status === "pending") || receipt.refunds.some((r) => r.status === "pending");
}

function schedulePoll() {
  stopPolling();
  const receipt = state.receipt;
  if (receipt && refundPending(receipt) && onReceipt(receipt.transaction_id)) {
    state.pollTimer = setTimeout(() => reloadReceipt(receipt.transaction_id), POLL_MS);
  }
}

function stopPolling() {
  clearTimeout(state.pollTimer);
  state.pollTimer = null;
}

function announceRefundOutcome(receipt) {
  const latest = receipt.refunds[receipt.refunds.length - 1];
  if (!latest) return;
  const amount = money(latest.amount, receipt.currency);
  if (latest.status === "refunded") notify(`Your refund of ${amount} has been sent to your card.`);
  else if (latest.status === "failed") notify(`The refund of ${amount} did not go through yet. The venue can see it and will retry.`);
}

// --- Edit Session ----------------------------------------------------------------------------

let slotRequest = 0;

function openEdit(session) {
  const zone = state.receipt.timezone;
  state.editing = session;
  say($("edit-error"), "");
  $("edit-current").textContent = `${session.product_name}, now ${sessionTime(session.start, session.end, zone)}`;
  $("edit-date").min = calendarDate(new Date(), zone);
  $("edit-date").value = calendarDate(session.start, zone);
  $("edit-name").value = session.participant_name;
  $("edit-dialog").showModal();
  loadSlots();
}

async function loadSlots() {
  const session = state.editing;
  const date = $("edit-date").value;
  const box = $("edit-slots");
  const ticket = ++slotRequest;
  if (!date) {
    box.replaceChildren(el("p", { class: "muted" }, "Choose a date to see its time slots."));
    return;
  }
  box.setAttribute("aria-busy", "true");
  box.replaceChildren(el("p", { class: "muted" }, "Loading time slots…"));
  try {
    const { slots } = await request("GET",
      `/v1/venues/${part(state.venueId)}/slots?product_id=${part(session.product_id)}&date=${part(date)}`);
    if (ticket !== slotRequest) return;
    box.replaceChildren(...(slots.length
      ? slots.map((slot) => slotChoice(slot, session))
      : [el("p", { class: "muted" }, "No time slots on this date. Try another date.")]));
  } catch (error) {
    if (ticket !== slotRequest) return;
    box.replaceChildren();
    report(error, $("edit-error"));
  } finally {
    if (ticket === slotRequest) box.setAttribute("aria-busy", "false");
  }
}

function slotChoice(slot, session) {
  const current = slot.slot_id === session.slot_id;
  const full = slot.remaining <= 0 && !current;
  const seats = current ? "your current time" : full ? "Full" : `${plural(slot.remaining, "seat", "seats")} left`;
  const id = `slot-${slot.slot_id}`;
  return el("div", { class: `slot${full ? " slot-full" : ""}` },
    el("input", { type: "radio", name: "slot", id, value: slot.slot_id, checked: current, disabled: full }),
    el("label", { for: id },
      el("span", { class: "slot-time" }, slotTime(slot.start, slot.end, state.receipt.timezone)),
      el("span", { class: "slot-seats" }, seats)));
}

$("edit-date").addEventListener("change", loadSlots);
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
  if (!name) {
    say($("edit-error"), "Enter the participant's name.");
    $("edit-name").focus();
    return;
  }
  const changes = {};
  if (chosen && chosen !== session.slot_id) changes.slot_id = chosen;
  if (name !== session.participant_name) changes.participant_name = name;
  if (Object.keys(changes).length === 0) {
    say($("edit-error"), "Nothing has changed: choose another time slot or change the name.");
    return;
  }
  const transactionId = state.receipt.transaction_id;
  busy($("edit-save"), "Saving…");
  say($("edit-error"), "");
  try {
    await guestCall("PATCH", `/v1/me/transactions/${part(transactionId)}/sessions/${part(session.session_id)}`,
      { body: changes });
    $("edit-dialog").close();
    await reloadReceipt(transactionId);
    notify("Your changes are saved.");
    $(`edit-${session.session_id}`)?.focus();
  } catch (error) {
    report(error, $("edit-error"));
    if (error.code === "slot_full") loadSlots();
  } finally {
    busy($("edit-save"), null);
  }
});

// --- Cancel Session(s) -----------------------------------------------------------------------

$("cancel-form").addEventListener("submit", async (event) => {
  event.preventDefault();
  const receipt = state.receipt;
  const sessionIds = receipt.sessions.filter((s) => state.selected.has(s.session_id)).map((s) => s.session_id);
  if (sessionIds.length === 0) {
    showError("Tick the sessions you want to cancel first.");
    return;
  }
  clearMessages();
  // One key per confirmation: a double click, or a retry after a lost answer, cannot cancel twice.
  state.cancellation = { transactionId: receipt.transaction_id, sessionIds, key: idempotencyKey() };
  say($("cancel-error"), "");
  $("cancel-loading").hidden = false;
  $("cancel-list").replaceChildren();
  $("cancel-total").hidden = true;
  $("cancel-confirm").disabled = true;
  $("cancel-dialog").showModal();
  try {
    const quote = await guestCall("POST", `/v1/me/transactions/${part(receipt.transaction_id)}/cancellation-quote`,
      { body: { session_ids: sessionIds } });
    if (state.cancellation?.key === undefined) return;
    renderQuote(quote, receipt);
    $("cancel-confirm").disabled = false;
  } catch (error) {
    $("cancel-loading").hidden = true;
    report(error, $("cancel-error"));
  }
});

function renderQuote(quote, receipt) {
  const byId = new Map(receipt.sessions.map((s) => [s.session_id, s]));
  $("cancel-loading").hidden = true;
  $("cancel-list").replaceChildren(...quote.sessions.map(({ session_id: id, refundable }) => {
    const session = byId.get(id);
    return el("li", { "data-session-id": id, "data-refundable": String(refundable) },
      el("span", { class: "quote-what" },
        el("strong", {}, session.product_name), " · ", session.participant_name, el("br"),
        el("span", { class: "muted" }, sessionTime(session.start, session.end, receipt.timezone))),
      el("span", { class: "quote-refund" }, refundable ? `Refund ${money(session.amount, quote.currency)}` : "No refund"));
  }));
  $("cancel-total").replaceChildren(quote.refund_amount > 0
    ? el("span", {}, "Total refund: ", el("strong", { id: "cancel-refund-amount" }, money(quote.refund_amount, quote.currency)),
      ", to the card you paid with.")
    : el("span", {}, "No refund is due for these sessions. ", el("strong", { id: "cancel-refund-amount" }, money(0, quote.currency))));
  $("cancel-total").hidden = false;
}

$("cancel-keep").addEventListener("click", () => $("cancel-dialog").close());
$("cancel-dialog").addEventListener("close", () => {
  state.cancellation = null;
});

$("cancel-confirm").addEventListener("click", async () => {
  const cancellation = state.cancellation;
  if (!cancellation || $("cancel-confirm").disabled) return;
  busy($("cancel-confirm"), "Cancelling…");
  say($("cancel-error"), "");
  try {
    const result = await guestCall("POST", `/v1/me/transactions/${part(cancellation.transactionId)}/cancellations`, {
      body: { session_ids: cancellation.sessionIds },
      headers: { "Idempotency-Key": cancellation.key },
    });
    $("cancel-dialog").close();
    state.selected.clear();
    const count = plural(result.cancelled_session_ids.length, "session", "sessions");
    notify(result.refund
      ? `Cancelled ${count}. A refund of ${money(result.refund.amount, state.receipt.currency)} is on its way.`
      : `Cancelled ${count}. No refund is due.`);
    await reloadReceipt(cancellation.transactionId);
    if (document.activeElement === document.body) $("receipt-title").focus();
  } catch (error) {
    report(error, $("cancel-error"));
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
  route();
});
route();
