/**
 * The emails' templates: files under templates/, `{{name}}` for a value and
 * `{{#name}}...{{/name}}` for a section (repeated for each item of a list,
 * shown once for `true`, left out for `false` or an empty list). The first
 * line of the text template is the subject: `Subject: ...`.
 */
import { readFileSync } from "node:fs";
import { join } from "node:path";
import type { NotificationKind } from "./table.ts";

export type TemplateValue = string | number | boolean | TemplateData[];
export interface TemplateData {
  [key: string]: TemplateValue;
}

export interface EmailTemplate {
  subject: string;
  text: string;
  html: string;
}

export type Templates = Record<NotificationKind, EmailTemplate>;

export const defaultTemplatesDir = join(import.meta.dirname, "templates");

export function loadTemplates(dir = defaultTemplatesDir): Templates {
  const load = (kind: NotificationKind): EmailTemplate => {
    const text = readFileSync(join(dir, `${kind}.txt`), "utf8");
    const match = /^Subject: (.*)\r?\n\r?\n/.exec(text);
    if (!match) throw new Error(`${kind}.txt must start with "Subject: ..." and a blank line`);
    return {
      subject: match[1]!,
      text: text.slice(match[0].length),
      html: readFileSync(join(dir, `${kind}.html`), "utf8"),
    };
  };
  return { confirmed: load("confirmed"), completed: load("completed") };
}

const htmlEscapes: Record<string, string> = {
  "&": "&amp;",
  "<": "&lt;",
  ">": "&gt;",
  '"': "&quot;",
  "'": "&#39;",
};

export function escapeHtml(value: string): string {
  return value.replace(/[&<>"']/g, (c) => htmlEscapes[c]!);
}

// A section's tags take their line ending with them, so a section on lines of its own leaves no blank line.
const section = /\{\{#(\w+)\}\}\n?([\s\S]*?)\{\{\/\1\}\}\n?/g;
const placeholder = /\{\{\s*(\w+)\s*\}\}/g;

/** Renders a template; every value is HTML-escaped when `html` is set. An unknown name is an error, not a blank. */
export function render(template: string, data: TemplateData, options: { html?: boolean } = {}): string {
  const withSections = template.replace(section, (_, name: string, body: string) => {
    const value = lookup(data, name);
    if (Array.isArray(value))
      return value.map((item) => render(body, { ...data, ...item }, options)).join("");
    return value === true ? render(body, data, options) : "";
  });
  return withSections.replace(placeholder, (_, name: string) => {
    const value = lookup(data, name);
    if (typeof value === "object" || typeof value === "boolean")
      throw new Error(`template: {{${name}}} is not a value`);
    return options.html ? escapeHtml(String(value)) : String(value);
  });
}

function lookup(data: TemplateData, name: string): TemplateValue {
  const value = data[name];
  if (value === undefined) throw new Error(`template: no value for {{${name}}}`);
  return value;
}
