// Getting back in: ask for a password reset link, and the page that link (or an invitation's)
// opens, where the guest chooses a password and is logged in. The login is kept exactly as the
// guest portal keeps it (this tab's sessionStorage), so the portal opens already logged in.

import { ApiError, part, request } from "./api.js";
import { $, busy, say } from "./dom.js";

const params = new URLSearchParams(location.search);
const venueId = (params.get("venue") || "").trim();
const token = params.get("token") || "";
const welcome = params.get("welcome") === "1";
const loginKey = (venue) => `rebook.guest.${venue}`; // the guest portal's key (js/guest.js)
const portal = (hash = "") => `index.html?venue=${part(venueId)}${hash}`;

function show(viewId) {
  for (const view of document.querySelectorAll(".view")) view.hidden = view.id !== viewId;
  const heading = document.querySelector(`#${viewId} h1`);
  heading?.focus();
}

function clearMessages() {
  say($("error"), "");
  say($("notice"), "");
}

function showError(message) {
  say($("notice"), "");
  say($("error"), message);
}

$("request-form").addEventListener("submit", async (event) => {
  event.preventDefault();
  clearMessages();
  const email = $("request-email").value.trim();
  if (!email) {
    showError("Enter the email of your guest profile.");
    return $("request-email").focus();
  }
  const button = event.submitter || $("request-form").querySelector("button");
  busy(button, "Sending…");
  try {
    await request("POST", `/v1/venues/${part(venueId)}/password-reset`, { body: { email } });
    say($("notice"), `If ${email} has a guest profile here, a link is on its way. Check your inbox (and spam folder).`);
  } catch (error) {
    showError(error instanceof ApiError ? error.message : "Something went wrong. Try again.");
  } finally {
    busy(button, "");
  }
});

$("choose-form").addEventListener("submit", async (event) => {
  event.preventDefault();
  clearMessages();
  const password = $("new-password").value;
  if (password.length < 8) {
    showError("Choose a password of at least 8 characters.");
    return $("new-password").focus();
  }
  if (password !== $("repeat-password").value) {
    showError("The two passwords are not the same.");
    return $("repeat-password").focus();
  }
  const button = event.submitter || $("choose-form").querySelector("button");
  busy(button, "Saving…");
  try {
    const login = await request("POST", `/v1/venues/${part(venueId)}/password-reset/confirm`,
      { body: { token, password } });
    sessionStorage.setItem(loginKey(venueId),
      JSON.stringify({ token: login.token, expires_at: login.expires_at, guest: login.guest }));
    location.assign(portal("#transactions"));
  } catch (error) {
    busy(button, "");
    if (error instanceof ApiError && error.code === "invalid_reset_token") {
      showError("This link has been used, has expired, or a newer one was sent. Ask for a new link below.");
      return $("ask-again").focus();
    }
    showError(error instanceof ApiError ? error.message : "Something went wrong. Try again.");
  }
});

function start() {
  if (!venueId) {
    location.replace("index.html");
    return;
  }
  $("venue-label").hidden = false;
  $("venue-label").textContent = `Venue ${venueId}`;
  $("back-to-login").href = portal();
  $("ask-again").href = `reset.html?venue=${part(venueId)}`;
  if (!token) return show("view-request");
  // Keep the token out of the history and the address bar once it has been read.
  history.replaceState(null, "", `reset.html?venue=${part(venueId)}`);
  if (welcome) {
    $("choose-title").textContent = "Welcome: choose your password";
    $("choose-intro").textContent = "Your venue made you a guest profile. Choose the password you will log in with.";
  }
  show("view-choose");
}

start();
