/**
 * Elements built from data without ever parsing it as HTML: every string becomes a text node or
 * an attribute value, so names that arrive in spans (cohorts, routes, reasons) cannot inject
 * markup or script.
 */

export type Child = Node | string | number | null | undefined | false | readonly Child[];
export type Attributes = Record<string, string | number | boolean | null | undefined>;

function append(parent: Node, child: Child): void {
  if (child === null || child === undefined || child === false) return;
  if (Array.isArray(child)) {
    for (const item of child as readonly Child[]) append(parent, item);
    return;
  }
  parent.appendChild(
    child instanceof Node ? child : document.createTextNode(String(child as string | number)),
  );
}

/** `h('td', { class: 'num' }, '12')`: attributes set one by one (true: present, false/null: absent). */
export function h<K extends keyof HTMLElementTagNameMap>(
  tag: K,
  attributes: Attributes = {},
  ...children: Child[]
): HTMLElementTagNameMap[K] {
  const element = document.createElement(tag);
  for (const [name, value] of Object.entries(attributes)) {
    if (value === null || value === undefined || value === false) continue;
    element.setAttribute(name, value === true ? '' : String(value));
  }
  for (const child of children) append(element, child);
  return element;
}

/** Replaces what an element holds. */
export function fill(element: Element, ...children: Child[]): void {
  element.replaceChildren();
  for (const child of children) append(element, child);
}

/** A message in place of a section's content: `empty` (nothing to show) or `error`. */
export function notice(kind: 'empty' | 'error' | 'note', ...children: Child[]): HTMLElement {
  return h(
    'p',
    { class: `notice notice-${kind}`, ...(kind === 'error' ? { role: 'alert' } : {}) },
    ...children,
  );
}

export function byId<T extends HTMLElement = HTMLElement>(id: string): T {
  const element = document.getElementById(id);
  if (!element) throw new Error(`the page has no #${id}`);
  return element as T;
}
