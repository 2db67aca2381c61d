type Child = Node | string | number | null | undefined | false;

/** An element with its attributes and children; text goes in as text, never as HTML. */
export function h<K extends keyof HTMLElementTagNameMap>(
  tag: K,
  attributes: Record<string, string | undefined> = {},
  ...children: Child[]
): HTMLElementTagNameMap[K] {
  const element = document.createElement(tag);
  for (const [name, value] of Object.entries(attributes))
    if (value !== undefined) element.setAttribute(name, value);
  for (const child of children) {
    if (child === null || child === undefined || child === false) continue;
    element.append(child instanceof Node ? child : String(child));
  }
  return element;
}

export function byId<T extends HTMLElement = HTMLElement>(id: string): T {
  const element = document.getElementById(id);
  if (!element) throw new Error(`#${id} is not on the page`);
  return element as T;
}

/** A table of rows, with a line saying so when there are none. */
export function fillTable(table: HTMLTableElement, headings: string[], rows: Child[][], empty: string): void {
  const head = h("thead", {}, h("tr", {}, ...headings.map((text) => h("th", {}, text))));
  const body = h(
    "tbody",
    {},
    ...(rows.length > 0
      ? rows.map((cells) => h("tr", {}, ...cells.map((cell) => h("td", {}, cell))))
      : [h("tr", {}, h("td", { colspan: String(headings.length), class: "empty" }, empty))]),
  );
  table.replaceChildren(head, body);
}

export function time(iso: string): string {
  return new Date(iso).toLocaleTimeString([], { hour12: false });
}

export function short(id: string): string {
  return id.slice(0, 8);
}
