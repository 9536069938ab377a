// The venue admin page: the "Configure" switches of the help-centre article and the venue's
// refunds, with a Retry on failed ones. It holds the venue API key in this tab's sessionStorage
// only; "Forget key" drops it.

import { ApiError, part, request } from "./api.js";
import { $, busy, el, say } from "./dom.js";
import { moment, money, plural } from "./format.js";

const STORE = "rebook.admin";
const MAX_CUTOFF_HOURS = 8760;

let credentials = null; // {venueId, apiKey}

function showError(message) {
  say($("error"), message);
}

function notify(message) {
  say($("notice"), message);
}

function report(error) {
  showError(error instanceof ApiError ? error.message : "Something went wrong. Please try again.");
}

async function adminCall(method, path, body) {
  try {
    return await request(method, `/v1/admin/venues/${part(credentials.venueId)}${path}`, { token: credentials.apiKey, body });
  } catch (error) {
    if (error instanceof ApiError && (error.status === 401 || error.status === 403 || error.status === 404) && method === "GET" && path === "/settings") {
      disconnect();
    }
    throw error;
  }
}

function show(connected) {
  $("view-connect").hidden = connected;
  $("view-admin").hidden = !connected;
  $("account").hidden = !connected;
  $("connected-venue").textContent = connected ? `Venue ${credentials.venueId}` : "";
}

function disconnect() {
  credentials = null;
  sessionStorage.removeItem(STORE);
  show(false);
}

async function connect() {
  show(true);
  try {
    const settings = await adminCall("GET", "/settings");
    renderSettings(settings);
    await loadRefunds();
    return true;
  } catch (error) {
    report(error);
    return false;
  }
}

// --- Settings ------------------------------------------------------------------------------

function renderSettings(settings) {
  $("allow-modify").checked = settings.allow_guest_modify;
  $("refund-on-cancel").checked = settings.refund_on_cancel;
  $("cutoff").value = String(settings.refund_cutoff_hours);
  $("saved-version").textContent = `Version ${settings.version}, last saved ${moment(settings.updated_at)}.`;
}

$("settings-form").addEventListener("submit", async (event) => {
  event.preventDefault();
  const cutoff = $("cutoff");
  const hours = Number(cutoff.value);
  if (cutoff.value.trim() === "" || !Number.isInteger(hours) || hours < 0 || hours > MAX_CUTOFF_HOURS) {
    showError(`Enter the refund cutoff as whole hours from 0 to ${MAX_CUTOFF_HOURS}.`);
    cutoff.focus();
    return;
  }
  showError("");
  notify("");
  busy($("save"), "Saving…");
  try {
    const saved = await adminCall("PUT", "/settings", {
      allow_guest_modify: $("allow-modify").checked,
      refund_on_cancel: $("refund-on-cancel").checked,
      refund_cutoff_hours: hours,
    });
    renderSettings(saved);
    notify("Settings saved.");
  } catch (error) {
    report(error);
  } finally {
    busy($("save"), null);
  }
});

// --- Refunds -------------------------------------------------------------------------------

const STATUS_LABEL = { pending: "Pending", refunded: "Refunded", failed: "Failed", created: "Created" };

const REFUNDS_PAGE = 20;
let refundsCursor = null; // the next page of the list shown, if any

// The first page, or with `more` the next one appended: newest first, as the API pages them.
async function loadRefunds(more = false) {
  const status = $("refund-status").value;
  const button = more === true ? $("more-refunds") : $("refresh-refunds");
  const query = new URLSearchParams({ limit: String(REFUNDS_PAGE) });
  if (status) query.set("status", status);
  if (more === true && refundsCursor) query.set("cursor", refundsCursor);
  busy(button, "Loading…");
  try {
    const { refunds, next_cursor: next } = await adminCall("GET", `/refunds?${query}`);
    if (more === true) $("refunds").append(...refunds.map(refundRow));
    else $("refunds").replaceChildren(...refunds.map(refundRow));
    refundsCursor = next;
    const shown = $("refunds").children.length;
    $("refunds-empty").hidden = shown > 0;
    $("refunds-table").hidden = shown === 0;
    $("more-refunds").hidden = !next;
  } catch (error) {
    report(error);
  } finally {
    busy(button, null);
  }
}

function refundRow(refund) {
  const failure = refund.failure_message || refund.failure_code;
  return el("tr", { "data-refund-id": refund.refund_id, "data-refund-status": refund.status },
    el("td", { "data-label": "Requested" }, moment(refund.created_at)),
    el("td", { "data-label": "Amount" }, refund.currency ? money(refund.amount, refund.currency) : String(refund.amount)),
    el("td", { "data-label": "Status" },
      el("span", { class: `badge badge-refund-${refund.status}` }, STATUS_LABEL[refund.status] || refund.status),
      failure ? el("div", { class: "muted" }, failure) : null),
    el("td", { "data-label": "Transaction" }, el("code", {}, refund.transaction_id || "")),
    el("td", { "data-label": "Sessions" }, plural(refund.session_ids.length, "session", "sessions")),
    el("td", {}, refund.status === "failed"
      ? el("button", { type: "button", class: "button-secondary", "aria-label": `Retry refund of ${refund.currency ? money(refund.amount, refund.currency) : refund.amount}`,
        onclick: (event) => retry(refund, event.currentTarget) }, "Retry")
      : null));
}

async function retry(refund, button) {
  busy(button, "Retrying…");
  showError("");
  try {
    const answer = await adminCall("POST", `/refunds/${part(refund.refund_id)}/retry`, {});
    notify(`Refund retried; it is now ${STATUS_LABEL[answer.status]?.toLowerCase() || answer.status}.`);
    await loadRefunds();
    $("refresh-refunds").focus();
  } catch (error) {
    report(error);
    busy(button, null);
  }
}

$("refund-status").addEventListener("change", () => loadRefunds());
$("refresh-refunds").addEventListener("click", () => loadRefunds());
$("more-refunds").addEventListener("click", () => loadRefunds(true));

// --- Connect and forget --------------------------------------------------------------------

$("connect-form").addEventListener("submit", async (event) => {
  event.preventDefault();
  const venueId = $("venue-id").value.trim();
  const apiKey = $("api-key").value.trim();
  if (!venueId || !apiKey) {
    showError("Enter the venue ID and the venue API key.");
    (venueId ? $("api-key") : $("venue-id")).focus();
    return;
  }
  showError("");
  notify("");
  credentials = { venueId, apiKey };
  if (await connect()) {
    sessionStorage.setItem(STORE, JSON.stringify(credentials));
    $("api-key").value = "";
    $("settings-title").focus();
  }
});

$("forget").addEventListener("click", () => {
  disconnect();
  showError("");
  notify("The key is forgotten in this tab.");
  $("connect-title").focus();
});

function start() {
  const venueId = new URLSearchParams(location.search).get("venue");
  if (venueId) $("venue-id").value = venueId;
  try {
    credentials = JSON.parse(sessionStorage.getItem(STORE));
  } catch {
    credentials = null;
  }
  if (credentials?.venueId && credentials?.apiKey) connect();
  else show(false);
}

start();
