/**
 * Small hand-written checks for event payloads: each returns the value typed,
 * or throws MalformedEvent naming the field that is wrong.
 */
import { MalformedEvent } from "../relay/listener.ts";

export type Check<T> = (value: unknown, path: string) => T;

function fail(path: string, expected: string, value: unknown): never {
  throw new MalformedEvent(`${path} should be ${expected}, not ${JSON.stringify(value) ?? "undefined"}`);
}

export const string: Check<string> = (v, path) => (typeof v === "string" ? v : fail(path, "a string", v));

export const integer: Check<number> = (v, path) =>
  Number.isInteger(v) ? (v as number) : fail(path, "an integer", v);

export const boolean: Check<boolean> = (v, path) =>
  typeof v === "boolean" ? v : fail(path, "true or false", v);

export function oneOf<const T extends string>(values: readonly T[]): Check<T> {
  return (v, path) => (values.includes(v as T) ? (v as T) : fail(path, `one of ${values.join(", ")}`, v));
}

export function nullable<T>(check: Check<T>): Check<T | null> {
  return (v, path) => (v === null ? null : check(v, path));
}

export function optional<T>(check: Check<T>): Check<T | undefined> {
  return (v, path) => (v === undefined ? undefined : check(v, path));
}

export function arrayOf<T>(check: Check<T>): Check<T[]> {
  return (v, path) =>
    Array.isArray(v) ? v.map((item, i) => check(item, `${path}[${i}]`)) : fail(path, "a list", v);
}

/** An object with (at least) these fields; other fields are dropped. */
export function object<T>(fields: { [K in keyof T]-?: Check<T[K]> }): Check<T> {
  return (v, path) => {
    if (typeof v !== "object" || v === null || Array.isArray(v)) return fail(path, "an object", v);
    const record = v as Record<string, unknown>;
    const out: Partial<T> = {};
    for (const key of Object.keys(fields) as (keyof T & string)[]) {
      const value = fields[key](record[key], `${path}.${key}`);
      if (value !== undefined) out[key] = value;
    }
    return out as T;
  };
}
