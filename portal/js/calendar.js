// A month calendar for choosing a new date: the days with at least one free time slot (from
// GET /v1/venues/{venue_id}/availability) are buttons to press; the others are shown but cannot
// be chosen. Dates are the venue's calendar dates (YYYY-MM-DD), whatever the browser's zone.
// Keyboard: Tab reaches the month buttons and the chosen (or first free) day; arrow keys move
// between free days, Home/End to the first/last free day of the month.

import { el } from "./dom.js";
import { longDate, monthName } from "./format.js";

const WEEKDAYS = [1, 2, 3, 4, 5, 6, 0]; // Monday first

function addMonths(isoMonth, count) {
  const [year, month] = isoMonth.split("-").map(Number);
  const date = new Date(Date.UTC(year, month - 1 + count, 1));
  return `${date.getUTCFullYear()}-${String(date.getUTCMonth() + 1).padStart(2, "0")}`;
}

function weekdayNames() {
  const long = new Intl.DateTimeFormat(undefined, { weekday: "long", timeZone: "UTC" });
  const short = new Intl.DateTimeFormat(undefined, { weekday: "short", timeZone: "UTC" });
  // 2023-01-01 was a Sunday.
  return WEEKDAYS.map((day) => {
    const date = new Date(Date.UTC(2023, 0, 1 + day));
    return { long: long.format(date), short: short.format(date) };
  });
}

export class Calendar {
  // root: an empty element; load(month) -> Promise<string[]> of free days; onPick(date).
  constructor(root, { idPrefix, load, onPick }) {
    this.root = root;
    this.load = load;
    this.onPick = onPick;
    this.idPrefix = idPrefix;
    this.month = null;
    this.selected = null;
    this.firstMonth = null; // no going back before the current month
    this.ticket = 0;
    const titleId = `${idPrefix}-month`;
    this.title = el("h3", { id: titleId, class: "calendar-title", "aria-live": "polite" });
    this.previous = el("button", { type: "button", class: "button-secondary calendar-nav", "aria-label": "Previous month",
      onclick: () => this.show(addMonths(this.month, -1)) }, "‹");
    this.next = el("button", { type: "button", class: "button-secondary calendar-nav", "aria-label": "Next month",
      onclick: () => this.show(addMonths(this.month, 1)) }, "›");
    this.body = el("tbody");
    this.table = el("table", { class: "calendar-grid", "aria-labelledby": titleId, "aria-describedby": `${idPrefix}-legend` },
      el("thead", {}, el("tr", {}, ...weekdayNames().map((name) =>
        el("th", { scope: "col", abbr: name.long }, name.short)))),
      this.body);
    this.status = el("p", { class: "muted calendar-status", role: "status" });
    root.replaceChildren(
      el("div", { class: "calendar-head" }, this.previous, this.title, this.next),
      this.table,
      el("p", { id: `${idPrefix}-legend`, class: "muted calendar-legend" },
        el("span", { class: "calendar-dot", "aria-hidden": "true" }), " Days with free times can be chosen."),
      this.status);
    this.body.addEventListener("keydown", (event) => this.onKey(event));
  }

  // Open on `month` (YYYY-MM) with `selected` (YYYY-MM-DD) chosen; `firstMonth` is the earliest.
  async start(firstMonth, selected) {
    this.firstMonth = firstMonth;
    this.selected = selected;
    await this.show(selected && selected.slice(0, 7) >= firstMonth ? selected.slice(0, 7) : firstMonth);
  }

  async show(month) {
    const ticket = ++this.ticket;
    this.month = month;
    this.title.textContent = monthName(month);
    this.previous.disabled = month <= this.firstMonth;
    this.table.setAttribute("aria-busy", "true");
    this.status.textContent = "Finding days with free times…";
    this.render(new Set(), true);
    let free;
    try {
      free = new Set(await this.load(month));
    } catch (error) {
      if (ticket !== this.ticket) return;
      this.table.setAttribute("aria-busy", "false");
      this.status.textContent = "";
      throw error;
    }
    if (ticket !== this.ticket) return;
    this.table.setAttribute("aria-busy", "false");
    this.render(free, false);
    this.status.textContent = free.size
      ? `${free.size} ${free.size === 1 ? "day has" : "days have"} free times in ${monthName(month)}.`
      : `No free times in ${monthName(month)}. Try the next month.`;
  }

  render(free, loading) {
    const [year, month] = this.month.split("-").map(Number);
    const days = new Date(Date.UTC(year, month, 0)).getUTCDate();
    const offset = (new Date(Date.UTC(year, month - 1, 1)).getUTCDay() + 6) % 7; // Monday first
    const rows = [];
    let cells = Array.from({ length: offset }, () => el("td"));
    let tabStop = [...free].includes(this.selected) ? this.selected : [...free].sort()[0];
    for (let day = 1; day <= days; day++) {
      const date = `${this.month}-${String(day).padStart(2, "0")}`;
      const open = free.has(date);
      const chosen = date === this.selected;
      const label = `${longDate(date)}${open ? "" : loading ? "" : ", no free times"}`;
      cells.push(el("td", {}, el("button", {
        type: "button", class: `calendar-day${open ? " calendar-open" : ""}`, "data-date": date,
        "aria-label": label, "aria-pressed": chosen ? "true" : "false", disabled: !open,
        tabindex: open && date === tabStop ? "0" : "-1",
        onclick: () => this.pick(date),
      }, String(day))));
      if (cells.length === 7) {
        rows.push(el("tr", {}, ...cells));
        cells = [];
      }
    }
    if (cells.length) rows.push(el("tr", {}, ...cells, ...Array.from({ length: 7 - cells.length }, () => el("td"))));
    this.body.replaceChildren(...rows);
  }

  pick(date) {
    this.selected = date;
    for (const button of this.body.querySelectorAll("button")) {
      const chosen = button.dataset.date === date;
      button.setAttribute("aria-pressed", chosen ? "true" : "false");
      button.tabIndex = chosen ? 0 : -1;
    }
    this.onPick(date);
  }

  onKey(event) {
    const open = [...this.body.querySelectorAll("button:not([disabled])")];
    const index = open.indexOf(document.activeElement);
    if (index < 0) return;
    const moves = { ArrowRight: index + 1, ArrowDown: index + 1, ArrowLeft: index - 1, ArrowUp: index - 1,
      Home: 0, End: open.length - 1 };
    if (!(event.key in moves)) return;
    event.preventDefault();
    const target = open[Math.max(0, Math.min(open.length - 1, moves[event.key]))];
    for (const button of open) button.tabIndex = button === target ? 0 : -1;
    target.focus();
  }
}
