/**
 * JSON mode in the simulator (and the in-process sim provider): a deterministic answer for a
 * response format. For a JSON Schema, an instance built from the schema (types, enums, consts,
 * objects with every property, arrays at their minimum length, local `$ref`s, the first branch
 * of anyOf/oneOf); for a JSON object, a small fixed object. A knob asks for a wrong answer
 * instead, so the gateway's mismatch path can be tested over a real SDK's wire:
 * `invalid` breaks the schema at its first property (or the root), `not-json` is plain text.
 */

/** What a request asked for, whatever the vendor's field for it. */
export type JsonFormat = { kind: "json_object" } | { kind: "json_schema"; schema: unknown };

export type JsonMode = "valid" | "invalid" | "not-json";

/** Deepest schema nesting followed; past it a value is null (a recursive `$ref` ends here). */
const MAX_DEPTH = 12;
const WORDS = ["alpha", "bravo", "charlie", "delta", "echo", "foxtrot", "golf", "hotel"];

type Schema = Record<string, unknown>;

function isSchema(v: unknown): v is Schema {
  return typeof v === "object" && v !== null && !Array.isArray(v);
}

/** A local reference (`#/$defs/x`, `#/definitions/x`), resolved in the root schema. */
function resolveRef(root: Schema, ref: string): unknown {
  if (!ref.startsWith("#")) return undefined;
  let node: unknown = root;
  for (const raw of ref.slice(1).split("/").slice(1)) {
    const key = raw.replaceAll("~1", "/").replaceAll("~0", "~");
    node = isSchema(node) ? node[key] : undefined;
  }
  return node;
}

function typeOf(s: Schema): string | undefined {
  const t = s.type;
  if (typeof t === "string") return t;
  if (Array.isArray(t)) return (t.find((x) => x !== "null") ?? t[0]) as string | undefined;
  if (isSchema(s.properties)) return "object";
  if (s.items !== undefined) return "array";
  return undefined;
}

function stringFor(s: Schema, pick: () => string): string {
  switch (s.format) {
    case "date-time":
      return "2026-01-01T00:00:00Z";
    case "date":
      return "2026-01-01";
    case "email":
      return "sim@example.com";
    case "uri":
    case "url":
      return "https://example.com/sim";
    case "uuid":
      return "00000000-0000-4000-8000-000000000000";
  }
  let text = pick();
  const min = typeof s.minLength === "number" ? s.minLength : 0;
  while (text.length < min) text += ` ${pick()}`;
  if (typeof s.maxLength === "number") text = text.slice(0, s.maxLength);
  return text;
}

function numberFor(s: Schema, integer: boolean, random: () => number): number {
  const lo = typeof s.minimum === "number" ? s.minimum : typeof s.exclusiveMinimum === "number" ? s.exclusiveMinimum + 1 : 0;
  const hi = typeof s.maximum === "number" ? s.maximum : typeof s.exclusiveMaximum === "number" ? s.exclusiveMaximum - 1 : lo + 100;
  const span = Math.max(0, hi - lo);
  const n = lo + (integer ? Math.floor(random() * (span + 1)) : Math.round(random() * span * 100) / 100);
  return integer ? Math.ceil(Math.min(n, hi)) : Math.min(n, hi);
}

function instance(root: Schema, s: unknown, random: () => number, depth: number): unknown {
  if (!isSchema(s) || depth > MAX_DEPTH) return null;
  if (typeof s.$ref === "string") return instance(root, resolveRef(root, s.$ref), random, depth + 1);
  if ("const" in s) return s.const;
  if (Array.isArray(s.enum) && s.enum.length > 0) return s.enum[Math.floor(random() * s.enum.length)];
  for (const key of ["anyOf", "oneOf", "allOf"] as const) {
    const branches = s[key];
    if (Array.isArray(branches) && branches.length > 0) return instance(root, branches[0], random, depth + 1);
  }
  const pick = () => WORDS[Math.floor(random() * WORDS.length)] as string;
  switch (typeOf(s)) {
    case "object": {
      const out: Record<string, unknown> = {};
      const properties = isSchema(s.properties) ? s.properties : {};
      for (const [name, sub] of Object.entries(properties)) out[name] = instance(root, sub, random, depth + 1);
      // A required name without a property schema still gets a value.
      if (Array.isArray(s.required)) for (const name of s.required) if (typeof name === "string" && !(name in out)) out[name] = pick();
      return out;
    }
    case "array": {
      // At least one item (two when the schema leaves it open), as many as minItems asks, up to 64.
      const min = typeof s.minItems === "number" ? s.minItems : 2;
      const n = Math.min(Math.max(min, 1), typeof s.maxItems === "number" ? s.maxItems : 64, 64);
      return Array.from({ length: n }, () => instance(root, s.items, random, depth + 1));
    }
    case "string":
      return stringFor(s, pick);
    case "integer":
      return numberFor(s, true, random);
    case "number":
      return numberFor(s, false, random);
    case "boolean":
      return random() < 0.5;
    case "null":
      return null;
    default:
      return pick();
  }
}

/** A value of the wrong type for a schema: a string where it wants none, else a number. */
function wrongFor(s: unknown): unknown {
  return isSchema(s) && (s.type === "string" || s.enum !== undefined) ? 12345 : "not-the-type";
}

/** The instance with its first property (a required one first) of the wrong type, or a wrong root. */
function broken(root: Schema, value: unknown): unknown {
  if (typeof value === "object" && value !== null && !Array.isArray(value)) {
    const record = value as Record<string, unknown>;
    const required = Array.isArray(root.required) ? root.required.filter((n): n is string => typeof n === "string") : [];
    const name = required[0] ?? Object.keys(record)[0];
    if (name !== undefined) {
      const properties = isSchema(root.properties) ? root.properties : {};
      return { ...record, [name]: wrongFor(properties[name]) };
    }
  }
  return typeof value === "string" ? 12345 : "not-the-type";
}

/** JSON text with a space after each `,` and `:` outside strings, so it splits into words like prose. */
function spaced(value: unknown): string {
  const compact = JSON.stringify(value) ?? "null";
  let out = "";
  let inString = false;
  for (let i = 0; i < compact.length; i++) {
    const c = compact[i] as string;
    out += c;
    if (inString) {
      if (c === "\\") out += compact[++i] ?? "";
      else if (c === '"') inString = false;
    } else if (c === '"') inString = true;
    else if (c === "," || c === ":") out += " ";
  }
  return out;
}

/** The answer's text for a format: deterministic in `random`'s seed. */
export function jsonText(format: JsonFormat, mode: JsonMode, random: () => number): string {
  if (mode === "not-json") return "Sure! Here is what you asked for.";
  if (format.kind === "json_object") return spaced(mode === "invalid" ? ["not", "an", "object"] : { answer: "sim", ok: true });
  const root = isSchema(format.schema) ? format.schema : {};
  const value = instance(root, root, random, 0);
  return spaced(mode === "invalid" ? broken(root, value) : value);
}

/** The text as stream tokens: split at each space, the space kept with the word before it (joined, the same text). */
export function jsonTokens(text: string): string[] {
  const words = text.split(" ");
  return words.map((w, i) => (i < words.length - 1 ? `${w} ` : w));
}
