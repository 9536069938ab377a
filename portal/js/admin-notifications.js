// The admin page's "Emails to guests": what was emailed to the venue's guests (or one guest),
// newest first, a page at a time, with why an email failed. It uses the key admin.js keeps in
// this tab's sessionStorage; it never shows an email's body, so never a secret link.

import { ApiError, part, request } from "./api.js";
import { $, busy, el, say } from "./dom.js";
import { moment } from "./format.js";

const STORE = "rebook.admin"; // admin.js's key
const KINDS = {
  session_changed: "Session changed", sessions_cancelled: "Sessions cancelled", refund_refunded: "Refund paid",
  refund_failed: "Refund failed", slot_closed: "Slot closed", password_reset: "Password reset",
  guest_invited: "Invitation",
};
let cursor = null;

function credentials() {
  try {
    return JSON.parse(sessionStorage.getItem(STORE));
  } catch {
    return null;
  }
}

function row(notification) {
  const status = notification.status === "failed" && notification.failure_code
    ? `failed (${notification.failure_code})` : notification.status;
  return el("tr", {},
    el("td", {}, moment(notification.created_at)),
    el("td", {}, KINDS[notification.kind] || notification.kind),
    el("td", {}, notification.to || "—"),
    el("td", {}, notification.subject),
    el("td", {}, el("span", { class: `badge badge-${notification.status}` }, status)));
}

async function load(more) {
  const saved = credentials();
  if (!saved) {
    say($("error"), "Connect with the venue API key first.");
    return;
  }
  const query = new URLSearchParams({ limit: "20" });
  const guestId = $("emails-guest").value.trim();
  if (guestId) query.set("guest_id", guestId);
  if (more && cursor) query.set("cursor", cursor);
  const button = more ? $("emails-more") : $("emails-form").querySelector("button");
  busy(button, "Loading…");
  try {
    const page = await request("GET", `/v1/admin/venues/${part(saved.venueId)}/notifications?${query}`,
      { token: saved.apiKey });
    if (!more) $("emails").replaceChildren();
    $("emails").append(...page.notifications.map(row));
    cursor = page.next_cursor;
    $("emails-table").hidden = $("emails").children.length === 0;
    $("emails-empty").hidden = $("emails").children.length > 0;
    $("emails-more").hidden = !cursor;
  } catch (error) {
    say($("error"), error instanceof ApiError ? error.message : "Something went wrong. Please try again.");
  } finally {
    busy(button, "");
  }
}

$("emails-form").addEventListener("submit", (event) => {
  event.preventDefault();
  load(false);
});
$("emails-more").addEventListener("click", () => load(true));
