// The rebook HTTP API as the portal sees it: one `request` that speaks JSON, sends the bearer
// credential, and turns every failure into an ApiError carrying the contract's code and details.
//
// The API lives on the same origin by default. A venue hosting this portal elsewhere points it
// at the API with <meta name="rebook-api" content="https://api.example.com"> in the page head.

const configured = document.querySelector('meta[name="rebook-api"]')?.getAttribute("content") || "";
export const API_BASE = configured.trim().replace(/\/+$/, "");

// `message` is the server's text, for developers and logs; pages show messages.js's sentences.
export class ApiError extends Error {
  constructor(status, code, message, details, retryAfter = null) {
    super(message);
    this.name = "ApiError";
    this.status = status;
    this.code = code;
    this.details = details;
    this.retryAfter = retryAfter;
  }
}

export const part = encodeURIComponent;

export async function request(method, path, { token, body, headers = {} } = {}) {
  const init = { method, headers: { Accept: "application/json", ...headers }, cache: "no-store" };
  if (token) init.headers.Authorization = `Bearer ${token}`;
  if (body !== undefined) {
    init.headers["Content-Type"] = "application/json";
    init.body = JSON.stringify(body);
  }
  let response;
  try {
    response = await fetch(API_BASE + path, init);
  } catch {
    throw new ApiError(0, "network_error", "Could not reach the booking service. Check your connection and try again.");
  }
  const text = await response.text();
  let data = null;
  try {
    data = text ? JSON.parse(text) : null;
  } catch {
    data = null;
  }
  if (!response.ok) {
    const error = data && typeof data.error === "object" ? data.error : {};
    const retryAfter = Number(response.headers.get("Retry-After")) || null;
    throw new ApiError(response.status, error.code || "http_error",
      error.message || `The booking service answered ${response.status}.`, error.details, retryAfter);
  }
  return data;
}

// A fresh idempotency key; randomUUID needs a secure context, which plain-http hosting is not.
export function idempotencyKey() {
  if (globalThis.crypto?.randomUUID) return crypto.randomUUID();
  const bytes = crypto.getRandomValues(new Uint8Array(16));
  return Array.from(bytes, (b) => b.toString(16).padStart(2, "0")).join("");
}
