// Money and time as the venue states them: amounts in the venue's currency (the API sends the
// smallest unit, as Stripe does) and times in the venue's IANA time zone, in the reader's language.

const moneyFormats = new Map();

export function money(amount, currency) {
  const code = String(currency || "").toUpperCase();
  if (!moneyFormats.has(code)) {
    moneyFormats.set(code, new Intl.NumberFormat(undefined, { style: "currency", currency: code }));
  }
  const format = moneyFormats.get(code);
  const digits = format.resolvedOptions().maximumFractionDigits;
  return format.format(amount / 10 ** digits);
}

// "Sat, Jun 14, 2025, 10:00 – 11:00 AM BST"
export function sessionTime(start, end, timeZone) {
  const format = new Intl.DateTimeFormat(undefined, {
    timeZone, weekday: "short", day: "numeric", month: "short", year: "numeric",
    hour: "numeric", minute: "2-digit", timeZoneName: "short",
  });
  return format.formatRange(new Date(start), new Date(end));
}

// "10:00 – 11:00 AM"
export function slotTime(start, end, timeZone) {
  const format = new Intl.DateTimeFormat(undefined, { timeZone, hour: "numeric", minute: "2-digit" });
  return format.formatRange(new Date(start), new Date(end));
}

// A moment with its date; in the venue's zone when known, else the reader's own, always named.
export function moment(instant, timeZone) {
  return new Intl.DateTimeFormat(undefined, {
    timeZone, dateStyle: "medium", timeStyle: "short",
  }).format(new Date(instant)) + " " + zoneName(instant, timeZone);
}

function zoneName(instant, timeZone) {
  const parts = new Intl.DateTimeFormat(undefined, { timeZone, timeZoneName: "short" }).formatToParts(new Date(instant));
  return parts.find((p) => p.type === "timeZoneName")?.value || "";
}

// The calendar date (YYYY-MM-DD) of an instant in a time zone: what <input type=date> and the
// slots route take.
export function calendarDate(instant, timeZone) {
  const parts = new Intl.DateTimeFormat("en-CA", {
    timeZone, year: "numeric", month: "2-digit", day: "2-digit",
  }).formatToParts(new Date(instant));
  const get = (type) => parts.find((p) => p.type === type).value;
  return `${get("year")}-${get("month")}-${get("day")}`;
}

export function plural(count, one, many) {
  return `${count} ${count === 1 ? one : many}`;
}
