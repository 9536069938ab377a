// The front desk on the admin page: find a guest by email, open a receipt, move, rename or cancel
// sessions for them with a reason and a refund choice (the amount is shown before confirming),
// and close a slot and watch its job finish. It uses the venue key admin.js keeps in this tab.

import { ApiError, idempotencyKey, part, request } from "./api.js";
import { $, busy, el, say } from "./dom.js";
import { moment, money, plural, sessionTime, slotTime } from "./format.js";

const STORE = "rebook.admin"; // where admin.js keeps {venueId, apiKey} for this tab
const JOB_POLL_MS = 1000;

let guest = null; // {guest_id, email, name}
let transactionsCursor = null;
let receipt = null;
let editing = null; // the session being moved or renamed
let pendingCancel = null; // {body, key} reviewed and waiting for confirmation
let closing = null; // the slot about to be closed

function credentials() {
  try {
    return JSON.parse(sessionStorage.getItem(STORE)) || {};
  } catch {
    return {};
  }
}

function staffCall(method, path, body, headers) {
  const { venueId, apiKey } = credentials();
  return request(method, `/v1/admin/venues/${part(venueId)}${path}`, { token: apiKey, body, headers });
}

function report(error) {
  say($("error"), error instanceof ApiError ? error.message : "Something went wrong. Please try again.");
}

function done(message) {
  say($("error"), "");
  say($("notice"), message);
}

// The trimmed text of a required field; empty, the page says `missing` and puts focus there.
function required(id, missing) {
  const value = $(id).value.trim();
  if (!value) {
    say($("error"), missing);
    $(id).focus();
  }
  return value;
}

// --- Find a guest and their transactions ------------------------------------------------------

$("guest-search").addEventListener("submit", async (event) => {
  event.preventDefault();
  const email = required("guest-email", "Enter the guest's email.");
  if (!email) return;
  say($("error"), "");
  busy($("find-guest"), "Finding…");
  try {
    const { guests } = await staffCall("GET", `/guests?email=${part(email)}`);
    guest = guests[0] || null;
    $("guest-result").hidden = false;
    $("staff-receipt").hidden = true;
    $("guest-transaction-rows").replaceChildren();
    $("guest-transactions").hidden = true;
    $("more-transactions").hidden = true;
    if (!guest) {
      $("guest-found").textContent = `No guest with the email ${email}.`;
      return;
    }
    $("guest-found").textContent = `${guest.name} (${guest.email})`;
    transactionsCursor = null;
    await loadTransactions();
  } catch (error) {
    report(error);
  } finally {
    busy($("find-guest"), null);
  }
});

async function loadTransactions() {
  const cursor = transactionsCursor ? `&cursor=${part(transactionsCursor)}` : "";
  const page = await staffCall("GET", `/guests/${part(guest.guest_id)}/transactions?limit=10${cursor}`);
  $("guest-transaction-rows").append(...page.transactions.map((t) =>
    el("tr", { "data-transaction-id": t.transaction_id },
      el("td", { "data-label": "Purchased" }, moment(t.purchased_at)),
      el("td", { "data-label": "Total" }, money(t.total, t.currency)),
      el("td", { "data-label": "Sessions" }, plural(t.session_count, "session", "sessions")),
      el("td", {}, el("button", { type: "button", class: "button-secondary",
        "aria-label": `Open receipt of ${moment(t.purchased_at)}`,
        onclick: () => openReceipt(t.transaction_id) }, "Open receipt")))));
  $("guest-transactions").hidden = $("guest-transaction-rows").children.length === 0;
  if ($("guest-transactions").hidden) $("guest-found").textContent += " has no transactions.";
  transactionsCursor = page.next_cursor;
  $("more-transactions").hidden = !transactionsCursor;
}

$("more-transactions").addEventListener("click", async () => {
  busy($("more-transactions"), "Loading…");
  try {
    await loadTransactions();
  } catch (error) {
    report(error);
  } finally {
    busy($("more-transactions"), null);
  }
});

// --- A receipt, as staff see it ---------------------------------------------------------------

async function openReceipt(transactionId) {
  try {
    receipt = await staffCall("GET", `/transactions/${part(transactionId)}`);
  } catch (error) {
    report(error);
    return;
  }
  renderReceipt();
  $("staff-receipt").hidden = false;
  $("staff-receipt-title").focus();
}

function renderReceipt() {
  const refunded = receipt.refunds.map((r) => `${money(r.amount, receipt.currency)} ${r.status}`).join(", ");
  $("staff-receipt-summary").textContent =
    `Paid ${money(receipt.total, receipt.currency)} on ${moment(receipt.purchased_at, receipt.timezone)}` +
    (refunded ? `. Refunds: ${refunded}.` : ".");
  $("staff-sessions").replaceChildren(...receipt.sessions.map((s) => {
    const booked = s.status === "booked";
    const label = `${s.participant_name}, ${s.product_name}, ${sessionTime(s.start, s.end, receipt.timezone)}`;
    return el("li", { class: "card staff-session", "data-session-id": s.session_id, "data-status": s.status },
      el("div", { class: "check" },
        el("input", { type: "checkbox", id: `pick-${s.session_id}`, value: s.session_id, disabled: !booked,
          onchange: () => forgetReview() }),
        el("label", { for: `pick-${s.session_id}` }, label)),
      el("p", { class: "muted" }, `${money(s.amount, receipt.currency)} · ${booked ? "Booked" : "Cancelled"}` +
        (s.refund_status !== "none" ? ` · refund ${s.refund_status.replace("_", " ")}` : "")),
      booked ? el("button", { type: "button", class: "button-secondary", "aria-label": `Move or rename ${s.participant_name}`,
        onclick: () => startEdit(s) }, "Move or rename") : null);
  }));
  forgetReview();
}

// --- Move or rename -----------------------------------------------------------------------------

function startEdit(session) {
  editing = session;
  $("edit-name").value = session.participant_name;
  $("edit-date").value = session.start.slice(0, 10);
  $("edit-slot").replaceChildren(el("option", { value: "" }, "Keep the slot"));
  $("edit-reason").value = "";
  $("staff-edit").hidden = false;
  $("edit-name").focus();
}

$("edit-close").addEventListener("click", () => {
  $("staff-edit").hidden = true;
  editing = null;
});

$("edit-find-slots").addEventListener("click", async () => {
  if (!editing || !$("edit-date").value) return;
  try {
    const { slots } = await staffCall("GET",
      `/slots?product_id=${part(editing.product_id)}&date=${part($("edit-date").value)}`);
    $("edit-slot").replaceChildren(el("option", { value: "" }, "Keep the slot"), ...slots
      .filter((slot) => slot.slot_id !== editing.slot_id)
      .map((slot) => el("option", { value: slot.slot_id, disabled: slot.status === "closed" || slot.remaining < 1 },
        `${slotTime(slot.start, slot.end, receipt.timezone)} (${slot.status === "closed" ? "closed"
          : plural(slot.remaining, "seat left", "seats left")})`)));
    done(plural(slots.length, "slot", "slots") + " on that day.");
  } catch (error) {
    report(error);
  }
});

$("staff-edit").addEventListener("submit", async (event) => {
  event.preventDefault();
  const reason = required("edit-reason", "Say why you make this change.");
  if (!reason) return;
  const body = { reason };
  const name = $("edit-name").value.trim();
  if (name && name !== editing.participant_name) body.participant_name = name;
  if ($("edit-slot").value) body.slot_id = $("edit-slot").value;
  if (!body.participant_name && !body.slot_id) {
    say($("error"), "Choose another slot or type a new name.");
    return;
  }
  busy($("edit-save"), "Saving…");
  try {
    await staffCall("PATCH", `/transactions/${part(receipt.transaction_id)}/sessions/${part(editing.session_id)}`, body);
    $("staff-edit").hidden = true;
    editing = null;
    await openReceipt(receipt.transaction_id);
    done("The session is changed.");
  } catch (error) {
    report(error);
  } finally {
    busy($("edit-save"), null);
  }
});

// --- Cancel with a refund choice ------------------------------------------------------------------

function picked() {
  return [...$("staff-sessions").querySelectorAll("input[type=checkbox]:checked")].map((box) => box.value);
}

function refundChoice(name) {
  return document.querySelector(`input[name=${name}]:checked`).value;
}

function forgetReview() {
  pendingCancel = null;
  say($("cancel-quote"), "");
  $("cancel-confirm").hidden = true;
}

for (const radio of document.querySelectorAll("input[name=refund]")) radio.addEventListener("change", forgetReview);

$("staff-cancel").addEventListener("submit", async (event) => {
  event.preventDefault();
  const sessionIds = picked();
  if (sessionIds.length === 0) {
    say($("error"), "Tick the sessions to cancel.");
    return;
  }
  const reason = required("cancel-reason", "Say why you cancel.");
  if (!reason) return;
  const refund = refundChoice("refund");
  busy($("cancel-review"), "Checking…");
  try {
    const quote = await staffCall("POST", `/transactions/${part(receipt.transaction_id)}/cancellation-quote`,
      { session_ids: sessionIds, refund });
    pendingCancel = { body: { session_ids: sessionIds, refund, reason }, key: idempotencyKey() };
    say($("error"), "");
    say($("cancel-quote"), `Cancel ${plural(sessionIds.length, "session", "sessions")}: the guest gets ` +
      `${money(quote.refund_amount, quote.currency)} back.`);
    $("cancel-confirm").hidden = false;
    $("cancel-confirm").focus();
  } catch (error) {
    report(error);
  } finally {
    busy($("cancel-review"), null);
  }
});

$("cancel-confirm").addEventListener("click", async () => {
  if (!pendingCancel) return;
  busy($("cancel-confirm"), "Cancelling…");
  try {
    const answer = await staffCall("POST", `/transactions/${part(receipt.transaction_id)}/cancellations`,
      pendingCancel.body, { "Idempotency-Key": pendingCancel.key });
    $("cancel-reason").value = "";
    await openReceipt(receipt.transaction_id);
    done(answer.refund ? `Cancelled. A refund of ${money(answer.refund.amount, answer.refund.currency)} is on its way.`
      : "Cancelled, with no refund.");
  } catch (error) {
    report(error);
  } finally {
    busy($("cancel-confirm"), null);
  }
});

// --- Close a slot and watch its job ----------------------------------------------------------------

$("slot-search").addEventListener("submit", async (event) => {
  event.preventDefault();
  const product = $("slot-product").value.trim();
  const date = $("slot-date").value;
  if (!product || !date) {
    say($("error"), "Enter the product ID and the date.");
    return;
  }
  say($("error"), "");
  try {
    const { slots } = await staffCall("GET", `/slots?product_id=${part(product)}&date=${part(date)}`);
    $("slot-rows").replaceChildren(...slots.map((slot) => el("tr", { "data-slot-id": slot.slot_id, "data-status": slot.status },
      el("td", { "data-label": "Starts" }, moment(slot.start)),
      el("td", { "data-label": "Booked" }, `${slot.booked} of ${slot.capacity}`),
      el("td", { "data-label": "Status" }, slot.status === "closed" ? "Closed" : "Open"),
      el("td", {}, slot.status === "open" ? el("button", { type: "button", class: "button-secondary",
        "aria-label": `Close the slot at ${moment(slot.start)}`, onclick: () => startClosing(slot) }, "Close") : null))));
    $("slot-table").hidden = slots.length === 0;
    if (slots.length === 0) done("No slots of that product on that date.");
  } catch (error) {
    report(error);
  }
});

function startClosing(slot) {
  closing = slot;
  $("slot-close-what").textContent = `${slot.product_name}, ${moment(slot.start)}: ` +
    `${plural(slot.booked, "booked session", "booked sessions")} will be cancelled.`;
  $("closure-reason").value = "";
  $("slot-close").hidden = false;
  $("closure-reason").focus();
}

$("slot-close").addEventListener("submit", async (event) => {
  event.preventDefault();
  const reason = required("closure-reason", "Say why the slot closes.");
  if (!reason) return;
  busy($("closure-confirm"), "Closing…");
  try {
    const job = await staffCall("POST", `/slots/${part(closing.slot_id)}/closure`,
      { reason, refund: refundChoice("closure-refund") });
    $("slot-close").hidden = true;
    const row = document.querySelector(`#slot-rows tr[data-slot-id="${closing.slot_id}"]`);
    if (row) {
      row.dataset.status = "closed";
      row.children[2].textContent = "Closed";
      row.children[3].replaceChildren();
    }
    await watch(job);
  } catch (error) {
    report(error);
  } finally {
    busy($("closure-confirm"), null);
  }
});

function showJob(job) {
  const progress = $("job-progress");
  progress.hidden = false;
  progress.dataset.status = job.status;
  progress.textContent = job.status === "done"
    ? `Slot closed: ${plural(job.sessions_cancelled, "session", "sessions")} cancelled, ` +
      `${plural(job.refunds_created, "refund", "refunds")} on their way.`
    : `Closing the slot: ${job.sessions_cancelled} of ${job.sessions_total} sessions cancelled so far…`;
}

async function watch(job) {
  showJob(job);
  while (job.status !== "done") {
    await new Promise((resolve) => setTimeout(resolve, JOB_POLL_MS));
    job = await staffCall("GET", `/jobs/${part(job.job_id)}`);
    showJob(job);
  }
}
