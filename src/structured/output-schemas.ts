/**
 * Callers' JSON Schemas, compiled once each. A schema is compiled by Ajv on first use and kept in
 * a small LRU keyed by the SHA-256 of its JSON text, so the same schema sent on every call costs
 * one hash after the first (a compile is about 2.5 ms). Each schema gets its own Ajv instance: a
 * `$id` one tenant declares can never be seen (or collide) in another's schema, and evicting an
 * entry frees all of it.
 */
import { hash } from "node:crypto";
import { Ajv, type ErrorObject, type ValidateFunction } from "ajv";
import { BoundedLruStore } from "../cache/bounded-lru-store.js";
import type { FieldViolation } from "../errors/llm-error.js";

/** Bounds on a caller's schema: Ajv compiles a schema to code, so a huge or deep one is refused up front. */
export const SCHEMA_LIMITS = {
  /** Characters of schema_json (64 KiB). */
  chars: 65_536,
  /** Nesting of objects and arrays in the schema. */
  depth: 32,
  /** Violations reported for one mismatching answer. */
  violations: 10,
} as const;

/** A schema ready to check answers: the parsed schema (what a provider is sent) and its validator. */
export interface CompiledSchema {
  readonly schema: Record<string, unknown>;
  /** The answer's violations (at most SCHEMA_LIMITS.violations), or none when it matches. */
  check(value: unknown): FieldViolation[];
}

/** Why a schema cannot be used: the description of a field violation on it. */
export class SchemaError extends Error {
  override readonly name = "SchemaError";
}

function depthOf(value: unknown, limit: number): number {
  let deepest = 0;
  const stack: { v: unknown; d: number }[] = [{ v: value, d: 0 }];
  // Bounded: the text is at most SCHEMA_LIMITS.chars long, so it holds at most that many nodes.
  while (stack.length > 0) {
    const { v, d } = stack.pop() as { v: unknown; d: number };
    if (typeof v !== "object" || v === null) continue;
    deepest = Math.max(deepest, d + 1);
    if (deepest > limit) return deepest;
    for (const child of Array.isArray(v) ? v : Object.values(v)) stack.push({ v: child, d: d + 1 });
  }
  return deepest;
}

/** Ajv's errors as field violations: the JSON Pointer into the answer, and what is wrong there. */
export function violationsOf(errors: readonly ErrorObject[] | null | undefined): FieldViolation[] {
  return (errors ?? []).slice(0, SCHEMA_LIMITS.violations).map((e) => ({ field: e.instancePath, description: e.message ?? e.keyword }));
}

/** Ajv's options for a caller's schema. */
const OPTIONS = {
  // Schemas written for a provider carry keywords Ajv does not know, and formats it does not check
  // without ajv-formats: they are ignored, not refused.
  strict: false,
  validateFormats: false,
  // An answer is at most the model's output limit, so reporting every violation (then keeping 10) is bounded.
  allErrors: true,
  logger: false,
} as const;

/**
 * Checks schemas against the JSON Schema meta-schema: one instance, whose meta-schema is compiled
 * once (about 13 ms), shared by every schema; it keeps no caller's schema (addUsedSchema off).
 */
function metaValidator(): Ajv {
  return new Ajv({ ...OPTIONS, addUsedSchema: false });
}

function compile(schemaJson: string, meta: Ajv): CompiledSchema {
  if (schemaJson.length > SCHEMA_LIMITS.chars) throw new SchemaError(`must be at most ${SCHEMA_LIMITS.chars} characters`);
  let schema: unknown;
  try {
    schema = JSON.parse(schemaJson) as unknown;
  } catch {
    throw new SchemaError("must be JSON text");
  }
  if (typeof schema !== "object" || schema === null || Array.isArray(schema)) throw new SchemaError("must be a JSON object (a JSON Schema)");
  if (depthOf(schema, SCHEMA_LIMITS.depth) > SCHEMA_LIMITS.depth) throw new SchemaError(`must nest at most ${SCHEMA_LIMITS.depth} levels`);
  const invalid = (detail: string) => new SchemaError(`is not a valid JSON Schema: ${detail.slice(0, 300)}`);
  let valid: boolean;
  try {
    valid = meta.validateSchema(schema) as boolean;
  } catch (err) {
    // An unknown `$schema` dialect, for one.
    throw invalid(err instanceof Error ? err.message : "cannot check it");
  }
  // Ajv's words name the schema's keywords at fault, and quote only the caller's own schema.
  if (!valid) throw invalid(meta.errorsText(meta.errors));
  // Its own instance, without the meta-schemas (checked above): a `$id` can never reach another
  // caller's schema, and dropping the entry frees everything. No loadSchema: a remote $ref is an
  // error, never fetched.
  let validate: ValidateFunction;
  try {
    validate = new Ajv({ ...OPTIONS, meta: false, validateSchema: false }).compile(schema);
  } catch (err) {
    throw invalid(err instanceof Error ? err.message : "cannot compile it");
  }
  return {
    schema: schema as Record<string, unknown>,
    check: (value) => (validate(value) ? [] : violationsOf(validate.errors)),
  };
}

export class OutputSchemas {
  /** A schema that cannot be used is kept too (as its error): sent again, it is refused without compiling. */
  readonly #compiled: BoundedLruStore<CompiledSchema | SchemaError>;
  readonly #meta = metaValidator();

  constructor(maxEntries = 256) {
    this.#compiled = new BoundedLruStore(maxEntries);
  }

  /** Schemas compiled since creation (cache misses), for tests and metrics. */
  compilations = 0;

  /** The compiled schema for this JSON text; throws SchemaError when it is not a usable schema. */
  get(schemaJson: string): CompiledSchema {
    const key = hash("sha256", schemaJson, "base64url");
    const found = this.#compiled.get(key);
    if (found instanceof SchemaError) throw found;
    if (found) return found;
    this.compilations++;
    let compiled: CompiledSchema;
    try {
      compiled = compile(schemaJson, this.#meta);
    } catch (err) {
      if (err instanceof SchemaError) this.#compiled.set(key, err);
      throw err;
    }
    this.#compiled.set(key, compiled);
    return compiled;
  }
}
