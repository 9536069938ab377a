// The venue admin page: the "Configure" settings of the help-centre article (with the cut-off,
// fees and emails when the API offers them) and the venue's refunds: whose, which sessions, why
// one failed, with Retry and a receipt for each. It holds the venue API key in this tab's
// sessionStorage only; "Forget key" drops it. Times are the venue's, with its zone's name.

import { ApiError, part, request } from "./api.js";
import { $, busy, el, say } from "./dom.js";
import { moment, money, plural, sessionTime, zoneLabel } from "./format.js";

const STORE = "rebook.admin";
const MAX_HOURS = 8760;
const POLL_MS = 2000;

let credentials = null; // {venueId, apiKey}
let venue = null; // {venue_id, name, timezone, currency}
let settings = null;
let pollTimer = null;
const purchases = new Map(); // transaction id -> {reference, guest, sessions}, from the refunds list
const zone = () => venue?.timezone;

// What the admin reads for each thing the API can say; never the server's own text.
function adminMessage(error) {
  if (!(error instanceof ApiError)) return "Something went wrong. Please try again.";
  switch (error.code) {
    case "unauthorized": return "This venue API key is not valid. Paste the key you were given for this venue.";
    case "forbidden": return "This key belongs to another venue. Check the venue ID and the key.";
    case "not_found": return "There is no venue with this ID. Check the ID you were given.";
    case "network_error": return "The rebook API could not be reached. Check your connection and try again.";
    case "invalid_request": return "Some settings are not valid: check the fields marked in red.";
    case "refund_not_retryable": return "This refund is no longer failed (it may have been retried already); the list now shows it as it is.";
    case "temporarily_unavailable": return "The rebook API is busy. Nothing has changed: wait a moment and try again.";
    default: return "The rebook API could not do this. Nothing has changed: try again in a moment.";
  }
}

// Why a refund failed, in words: Stripe's codes and our own.
const FAILURE_REASONS = {
  charge_disputed: "The guest's bank is disputing this payment, so Stripe will not refund it until the dispute is settled.",
  expired_or_canceled_card: "The card the guest paid with is expired or cancelled, so Stripe could not return the money to it.",
  lost_or_stolen_card: "The card the guest paid with was reported lost or stolen, so Stripe could not return the money to it.",
  insufficient_funds: "Your Stripe balance is too low to pay this refund. Add funds in Stripe, then retry.",
  charge_already_refunded: "This payment was already refunded in Stripe.",
  retries_exhausted: "Stripe could not be reached after several attempts.",
  refund_failed: "Stripe reported that the refund failed.",
};

function failureReason(refund) {
  if (!refund.failure_code) return "";
  return FAILURE_REASONS[refund.failure_code] || "Stripe refused this refund. Retry it, or check the payment in Stripe.";
}

function showError(message, region = $("error")) {
  say(region, message);
}

function notify(message, region = $("notice")) {
  say(region, message);
}

async function adminCall(method, path, body) {
  try {
    return await request(method, `/v1/admin/venues/${part(credentials.venueId)}${path}`, { token: credentials.apiKey, body });
  } catch (error) {
    if (error instanceof ApiError && (error.status === 401 || error.status === 403 || error.status === 404) && method === "GET" && path === "") {
      disconnect();
    }
    throw error;
  }
}

function show(connected) {
  $("view-connect").hidden = connected;
  $("view-admin").hidden = !connected;
  $("account").hidden = !connected;
  $("connected-venue").textContent = connected && venue ? venue.name : "";
}

function disconnect() {
  credentials = null;
  venue = null;
  stopPolling();
  sessionStorage.removeItem(STORE);
  show(false);
}

async function connect() {
  try {
    venue = await adminCall("GET", "");
    show(true);
    $("venue-summary").textContent = `${venue.name}: prices in ${venue.currency.toUpperCase()}, times in ${zoneLabel(venue.timezone)}.`;
    renderSettings(await adminCall("GET", "/settings"));
    await loadRefunds();
    return true;
  } catch (error) {
    if (!venue) show(false);
    showError(adminMessage(error), venue ? $("error") : $("connect-error"));
    return false;
  }
}

// --- Settings ------------------------------------------------------------------------------

const POLICY_FIELDS = ["modify_cutoff_hours", "cancellation_fee_fixed", "cancellation_fee_percent", "notify_guests"];
const hasPolicy = () => settings && POLICY_FIELDS.every((name) => name in settings);

function minorDigits() {
  return new Intl.NumberFormat("en", { style: "currency", currency: venue.currency.toUpperCase() })
    .resolvedOptions().maximumFractionDigits;
}

function renderSettings(saved) {
  settings = saved;
  $("allow-modify").checked = saved.allow_guest_modify;
  $("refund-on-cancel").checked = saved.refund_on_cancel;
  $("cutoff").value = String(saved.refund_cutoff_hours);
  $("policy-fields").hidden = !hasPolicy();
  if (hasPolicy()) {
    const digits = minorDigits();
    $("modify-cutoff").value = String(saved.modify_cutoff_hours);
    $("fee-currency").textContent = venue.currency.toUpperCase();
    $("fee-fixed").value = (saved.cancellation_fee_fixed / 10 ** digits).toFixed(digits);
    $("fee-percent").value = String(saved.cancellation_fee_percent);
    $("notify-guests").checked = saved.notify_guests;
  }
  $("saved-version").textContent = `Version ${saved.version}, last saved ${moment(saved.updated_at, zone())}.`;
}

function fieldError(input, message) {
  say($(`${input.id}-error`), message);
  if (message) input.setAttribute("aria-invalid", "true");
  else input.removeAttribute("aria-invalid");
  return message ? input : null;
}

function wholeNumber(input, low, high, sentence) {
  const text = input.value.trim();
  const value = Number(text);
  const ok = /^\d+$/.test(text) && value >= low && value <= high;
  return { value, invalid: fieldError(input, ok ? "" : sentence) };
}

// The fixed fee is typed in the currency's units ("2.50") and sent in its smallest unit (250).
function feeAmount(input) {
  const digits = minorDigits();
  const text = input.value.trim();
  const pattern = digits ? new RegExp(`^\\d+(\\.\\d{1,${digits}})?$`) : /^\d+$/;
  if (!pattern.test(text)) {
    const example = digits ? (250 / 10 ** digits).toFixed(digits) : "250";
    return { value: 0, invalid: fieldError(input, `Enter an amount such as ${example}, or 0 for no fixed fee.`) };
  }
  return { value: Math.round(Number(text) * 10 ** digits), invalid: fieldError(input, "") };
}

$("settings-form").addEventListener("submit", async (event) => {
  event.preventDefault();
  const checks = [wholeNumber($("cutoff"), 0, MAX_HOURS, `Enter X as whole hours from 0 to ${MAX_HOURS}.`)];
  const body = {
    allow_guest_modify: $("allow-modify").checked,
    refund_on_cancel: $("refund-on-cancel").checked,
    refund_cutoff_hours: checks[0].value,
  };
  if (hasPolicy()) {
    const cutoff = wholeNumber($("modify-cutoff"), 0, MAX_HOURS, `Enter whole hours from 0 to ${MAX_HOURS}.`);
    const fixed = feeAmount($("fee-fixed"));
    const percent = wholeNumber($("fee-percent"), 0, 100, "Enter a whole percent from 0 to 100.");
    checks.push(cutoff, fixed, percent);
    Object.assign(body, { modify_cutoff_hours: cutoff.value, cancellation_fee_fixed: fixed.value,
      cancellation_fee_percent: percent.value, notify_guests: $("notify-guests").checked });
  }
  showError("", $("settings-error"));
  notify("");
  const invalid = checks.map((c) => c.invalid).filter(Boolean);
  if (invalid.length) {
    showError(`${plural(invalid.length, "setting needs", "settings need")} fixing before saving.`, $("settings-error"));
    invalid[0].focus();
    return;
  }
  busy($("save"), "Saving…");
  try {
    renderSettings(await adminCall("PUT", "/settings", body));
    $("saved-version").textContent = `Settings saved. ${$("saved-version").textContent}`;
  } catch (error) {
    const fields = error instanceof ApiError ? error.details?.fields || {} : {};
    const byName = { refund_cutoff_hours: "cutoff", modify_cutoff_hours: "modify-cutoff",
      cancellation_fee_fixed: "fee-fixed", cancellation_fee_percent: "fee-percent" };
    for (const name of Object.keys(fields)) if (byName[name]) fieldError($(byName[name]), "The API refused this value.");
    showError(adminMessage(error), $("settings-error"));
  } finally {
    busy($("save"), null);
    $("save").focus(); // disabling it while saving took the focus away; give it back
  }
});

// --- Refunds -------------------------------------------------------------------------------

const STATUS_LABEL = { pending: "Pending", refunded: "Refunded", failed: "Failed" };

function stopPolling() {
  clearTimeout(pollTimer);
  pollTimer = null;
}

const REFUNDS_PAGE = 20;
const MAX_PAGE = 100; // the API's largest page
let refundsCursor = null; // the next page of the list shown, if any

// The first page, or with `more` the next one appended: newest first, as the API pages them.
// While a refund shown is pending the list reloads by itself, as many rows as are shown.
async function loadRefunds(more = false, polling = false) {
  stopPolling();
  const status = $("refund-status").value;
  const button = more === true ? $("more-refunds") : $("refresh-refunds");
  const query = new URLSearchParams({ limit: String(REFUNDS_PAGE) });
  if (status) query.set("status", status);
  if (more === true && refundsCursor) query.set("cursor", refundsCursor);
  busy(button, "Loading…");
  try {
    const rows = polling ? Math.min(MAX_PAGE, Math.max(REFUNDS_PAGE, $("refunds").children.length)) : REFUNDS_PAGE;
    if (polling) query.set("limit", String(rows));
    const { refunds, next_cursor: next } = await adminCall("GET", `/refunds?${query}`);
    const focusedRetry = document.activeElement?.dataset?.refundId;
    if (more === true) $("refunds").append(...refunds.map(refundRow));
    else $("refunds").replaceChildren(...refunds.map(refundRow));
    if (focusedRetry) document.querySelector(`button[data-refund-id="${focusedRetry}"]`)?.focus();
    refundsCursor = next;
    const shown = $("refunds").children.length;
    $("refunds-empty").hidden = shown > 0;
    $("refunds-table").hidden = shown === 0;
    $("more-refunds").hidden = !next;
    // A pending refund settles in the background: keep the list current until none is pending.
    if ($("refunds").querySelector('[data-refund-status="pending"]')) {
      pollTimer = setTimeout(() => loadRefunds(false, true), POLL_MS);
    }
  } catch (error) {
    showError(adminMessage(error));
  } finally {
    busy(button, null);
  }
}

function refundRow(refund) {
  const amount = money(refund.amount, refund.currency);
  const guest = refund.guest || {};
  const reference = refund.booking_reference || "Receipt";
  purchases.set(refund.transaction_id, { reference, guest, sessions: refund.sessions || [] });
  return el("tr", { "data-refund-id": refund.refund_id, "data-refund-status": refund.status },
    el("td", { "data-label": "Asked for" }, moment(refund.created_at, zone())),
    el("td", { "data-label": "Guest" }, guest.name || "Guest", guest.email ? el("div", { class: "muted" }, guest.email) : null),
    el("td", { "data-label": "Sessions" }, refund.sessions?.length
      ? el("ul", { class: "plain" }, ...refund.sessions.map((s) =>
        el("li", {}, `${s.product_name} · ${s.participant_name}`, el("div", { class: "muted" }, moment(s.start, zone())))))
      : plural(refund.session_ids.length, "session", "sessions")),
    el("td", { "data-label": "Amount" }, amount),
    el("td", { "data-label": "Status" },
      el("span", { class: `badge badge-refund-${refund.status}` }, STATUS_LABEL[refund.status] || refund.status),
      refund.status === "failed" ? el("div", { class: "reason" }, failureReason(refund)) : null),
    el("td", { "data-label": "Receipt" },
      el("a", { href: `#receipt/${part(refund.transaction_id)}`, "aria-label": `Receipt ${reference}${guest.name ? ` of ${guest.name}` : ""}`,
      }, reference)),
    el("td", {}, refund.status === "failed"
      ? el("button", { type: "button", class: "button-secondary", "data-refund-id": refund.refund_id,
        "aria-label": `Retry refund of ${amount}${guest.name ? ` to ${guest.name}` : ""}`,
        onclick: (event) => retry(refund, event.currentTarget) }, "Retry")
      : null));
}

async function retry(refund, button) {
  busy(button, "Retrying…");
  showError("");
  try {
    const answer = await adminCall("POST", `/refunds/${part(refund.refund_id)}/retry`, {});
    notify(answer.status === "refunded"
      ? `Refund of ${money(refund.amount, refund.currency)} recorded as paid: Stripe had already made it.`
      : `Refund of ${money(refund.amount, refund.currency)} sent to Stripe again; the list updates when Stripe answers.`,
    $("refunds-message"));
  } catch (error) {
    showError(adminMessage(error));
  }
  await loadRefunds();
  $("refunds-message").focus();
}

$("refund-status").addEventListener("change", () => loadRefunds());
$("refresh-refunds").addEventListener("click", () => loadRefunds());
$("more-refunds").addEventListener("click", () => loadRefunds(true));

// --- A refund's receipt: the purchase and what happened to it -------------------------------

const ACTOR = (actor) => actor?.startsWith("guest:") ? "by the guest" : actor?.startsWith("admin:") ? "by the venue" : "automatically";

function historyLine(event, currency) {
  const after = event.after || {};
  const before = event.before || {};
  switch (event.action) {
    case "purchased": return `Bought ${plural((after.session_ids || []).length, "session", "sessions")} for ${money(after.total || 0, currency)}`;
    case "session_moved": return `Session moved to ${after.start ? sessionTime(after.start, after.end, zone()) : "another time"}`;
    case "participant_renamed": return `Participant changed from ${before.participant_name} to ${after.participant_name}`;
    case "session_edited": return `Session moved and participant changed to ${after.participant_name}`;
    case "session_cancelled": return after.refund_status === "pending" ? "Session cancelled, with a refund" : "Session cancelled, without a refund";
    case "refund_refunded": return `Refund of ${money(after.amount || 0, currency)} paid`;
    case "refund_failed": return `Refund of ${money(after.amount || 0, currency)} failed: ${FAILURE_REASONS[after.failure_code] || "Stripe refused it."}`;
    case "refund_pending": return `Refund of ${money(after.amount || 0, currency)} retried`;
    default: return event.action.replaceAll("_", " ");
  }
}

// Every event, oldest first: the history comes a page at a time, and the newest (a refund's
// outcome) are on the last page.
async function wholeHistory(transactionId) {
  const events = [];
  let cursor = null;
  do {
    const query = new URLSearchParams({ limit: String(MAX_PAGE) });
    if (cursor) query.set("cursor", cursor);
    const page = await adminCall("GET", `/transactions/${part(transactionId)}/history?${query}`);
    events.push(...page.events);
    cursor = page.next_cursor;
  } while (cursor);
  return events;
}

async function openReceipt(transactionId) {
  const known = purchases.get(transactionId) || { reference: "", guest: {}, sessions: [] };
  $("receipt-dialog-title").textContent = `Receipt ${known.reference}`.trim();
  $("receipt-dialog-summary").replaceChildren(
    el("dt", {}, "Guest"), el("dd", {}, [known.guest.name, known.guest.email].filter(Boolean).join(", ") || "—"),
    el("dt", {}, "Refunded sessions"), el("dd", {}, known.sessions.length
      ? known.sessions.map((s) => `${s.product_name} · ${s.participant_name}, ${moment(s.start, zone())}`).join("; ") : "—"));
  $("receipt-dialog-history").replaceChildren(el("li", { class: "muted" }, "Loading…"));
  say($("receipt-dialog-error"), "");
  if (!$("receipt-dialog").open) $("receipt-dialog").showModal();
  try {
    const events = await wholeHistory(transactionId);
    $("receipt-dialog-history").replaceChildren(...events.map((event) => el("li", {},
      el("span", {}, `${historyLine(event, venue.currency)} ${ACTOR(event.actor)}`),
      el("span", { class: "muted" }, ` · ${moment(event.at, zone())}`))));
  } catch (error) {
    $("receipt-dialog-history").replaceChildren();
    say($("receipt-dialog-error"), adminMessage(error));
  }
}

function routeHash() {
  const match = location.hash.match(/^#receipt\/(.+)$/);
  if (match && credentials && venue) openReceipt(decodeURIComponent(match[1]));
}

window.addEventListener("hashchange", routeHash);
$("receipt-dialog-close").addEventListener("click", () => $("receipt-dialog").close());
$("receipt-dialog").addEventListener("close", () => {
  const opener = document.querySelector(`#refunds a[href="${location.hash}"]`);
  history.replaceState(null, "", location.pathname + location.search);
  opener?.focus();
});

// --- Connect and forget --------------------------------------------------------------------

$("connect-form").addEventListener("submit", async (event) => {
  event.preventDefault();
  const venueId = $("venue-id").value.trim();
  const apiKey = $("api-key").value.trim();
  const invalid = [fieldError($("venue-id"), venueId ? "" : "Enter the venue ID."),
    fieldError($("api-key"), apiKey ? "" : "Enter the venue API key.")].filter(Boolean);
  say($("connect-error"), "");
  if (invalid.length) {
    invalid[0].focus();
    return;
  }
  showError("");
  notify("");
  credentials = { venueId, apiKey };
  // Stored before connecting: the front desk (staff.js) reads the key from here, and its form is
  // usable as soon as connect() shows the page.
  sessionStorage.setItem(STORE, JSON.stringify(credentials));
  if (await connect()) {
    $("api-key").value = "";
    $("settings-title").focus();
  } else {
    sessionStorage.removeItem(STORE);
    credentials = null;
  }
});

$("forget").addEventListener("click", () => {
  disconnect();
  showError("");
  notify("The key is forgotten in this tab.");
  $("connect-title").focus();
});

async function start() {
  const venueId = new URLSearchParams(location.search).get("venue");
  if (venueId) $("venue-id").value = venueId;
  try {
    credentials = JSON.parse(sessionStorage.getItem(STORE));
  } catch {
    credentials = null;
  }
  if (credentials?.venueId && credentials?.apiKey && await connect()) routeHash();
  else show(false);
}

start();
