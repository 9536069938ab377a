// Money and time as the venue states them: amounts in the venue's currency (the API sends the
// smallest unit, as Stripe does) and times in the venue's IANA time zone, always with the zone's
// abbreviation, in the reader's language. Every page formats through here, so no two disagree.

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

// "Sat, Jun 14, 2025, 10:00 – 11:00 AM GMT+1"
export function sessionTime(start, end, timeZone) {
  const format = new Intl.DateTimeFormat(undefined, {
    timeZone, weekday: "short", day: "numeric", month: "short", year: "numeric",
    hour: "numeric", minute: "2-digit", timeZoneName: "short",
  });
  return format.formatRange(new Date(start), new Date(end));
}

// "10:00 – 11:00 AM GMT"
export function slotTime(start, end, timeZone) {
  const format = new Intl.DateTimeFormat(undefined, { timeZone, hour: "numeric", minute: "2-digit", timeZoneName: "short" });
  return format.formatRange(new Date(start), new Date(end));
}

// "Thu, Dec 3, 2026, 10:00 AM GMT": one moment, with its weekday and zone.
export function moment(instant, timeZone) {
  return new Intl.DateTimeFormat(undefined, {
    timeZone, weekday: "short", day: "numeric", month: "short", year: "numeric",
    hour: "numeric", minute: "2-digit", timeZoneName: "short",
  }).format(new Date(instant));
}

// "Thursday, December 3, 2026" for a venue-local calendar date (YYYY-MM-DD).
export function longDate(isoDate) {
  const [year, month, day] = isoDate.split("-").map(Number);
  return new Intl.DateTimeFormat(undefined, {
    timeZone: "UTC", weekday: "long", day: "numeric", month: "long", year: "numeric",
  }).format(new Date(Date.UTC(year, month - 1, day)));
}

// "December 2026" for a month (YYYY-MM).
export function monthName(isoMonth) {
  const [year, month] = isoMonth.split("-").map(Number);
  return new Intl.DateTimeFormat(undefined, { timeZone: "UTC", month: "long", year: "numeric" })
    .format(new Date(Date.UTC(year, month - 1, 1)));
}

// The zone as a guest reads it: "London time (GMT)".
export function zoneLabel(timeZone, instant = Date.now()) {
  const city = (timeZone.split("/").pop() || timeZone).replaceAll("_", " ");
  return `${city} time (${zoneName(instant, timeZone)})`;
}

export function zoneName(instant, timeZone) {
  const parts = new Intl.DateTimeFormat(undefined, { timeZone, timeZoneName: "short" }).formatToParts(new Date(instant));
  return parts.find((p) => p.type === "timeZoneName")?.value || "";
}

// The calendar date (YYYY-MM-DD) of an instant in a time zone: what the slots route takes.
export function calendarDate(instant, timeZone) {
  const parts = new Intl.DateTimeFormat("en-CA", {
    timeZone, year: "numeric", month: "2-digit", day: "2-digit",
  }).formatToParts(new Date(instant));
  const get = (type) => parts.find((p) => p.type === type).value;
  return `${get("year")}-${get("month")}-${get("day")}`;
}

// Whole hours between two instants, for "24 hours before the session".
export function hoursBetween(earlier, later) {
  return Math.round((Date.parse(later) - Date.parse(earlier)) / 3_600_000);
}

export function plural(count, one, many) {
  return `${count} ${count === 1 ? one : many}`;
}
