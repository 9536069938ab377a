// Small DOM builders shared by the guest portal and the admin page.

export const $ = (id) => document.getElementById(id);

// el("a", {href: "#x", class: "button"}, "text", childNode, ...)
export function el(tag, attributes = {}, ...children) {
  const node = document.createElement(tag);
  for (const [name, value] of Object.entries(attributes)) {
    if (value === false || value === null || value === undefined) continue;
    if (name === "class") node.className = value;
    else if (name.startsWith("on")) node.addEventListener(name.slice(2), value);
    else if (value === true) node.setAttribute(name, "");
    else node.setAttribute(name, value);
  }
  node.append(...children.flat().filter((c) => c !== null && c !== undefined && c !== false));
  return node;
}

// Live regions stay in the page (an empty one is styled away) so screen readers announce changes.
export function say(region, message) {
  region.textContent = message || "";
}

// Re-rendering replaces nodes; give focus back to the element with the same id, if any.
export function keepingFocus(render) {
  const focusedId = document.activeElement?.id;
  render();
  if (focusedId && document.activeElement === document.body) document.getElementById(focusedId)?.focus();
}

export function busy(button, label) {
  if (!button.dataset.label) button.dataset.label = button.textContent;
  button.disabled = Boolean(label);
  button.textContent = label || button.dataset.label;
}
