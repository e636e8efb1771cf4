/**
 * The check of a final answer against the request's response format: JSON text for json_object
 * (one object) and json_schema (matching the schema). The answer's text never goes into the
 * error: only where it is wrong (a JSON Pointer) and Ajv's words for what is wrong.
 */
import type { ResponseFormat } from "../core/types.js";
import { LlmError, type FieldViolation } from "../errors/llm-error.js";
import type { CompiledSchema } from "./output-schemas.js";

/** How a call's answer is checked, decided at admission. */
export interface OutputCheck {
  /** The answer's violations; none when it is the JSON asked for. */
  violations(text: string): FieldViolation[];
  /** Return a mismatching answer as it is rather than fail. */
  readonly passThroughMismatch: boolean;
}

const NOT_JSON: FieldViolation[] = [{ field: "", description: "must be JSON text" }];
const NOT_OBJECT: FieldViolation[] = [{ field: "", description: "must be object" }];

function parsed(text: string): { ok: true; value: unknown } | { ok: false } {
  try {
    return { ok: true, value: JSON.parse(text) as unknown };
  } catch {
    return { ok: false };
  }
}

/** The check a format asks for; undefined for text (nothing to check). */
export function outputCheck(format: ResponseFormat | undefined, compiled: CompiledSchema | undefined): OutputCheck | undefined {
  if (!format || format.type === "text") return undefined;
  const passThroughMismatch = format.passThroughMismatch;
  if (format.type === "json_object") {
    return {
      passThroughMismatch,
      violations(text) {
        const p = parsed(text);
        if (!p.ok) return NOT_JSON;
        return typeof p.value === "object" && p.value !== null && !Array.isArray(p.value) ? [] : NOT_OBJECT;
      },
    };
  }
  if (!compiled) throw new LlmError("INTERNAL", "a json_schema format without its compiled schema");
  return {
    passThroughMismatch,
    violations(text) {
      const p = parsed(text);
      return p.ok ? compiled.check(p.value) : NOT_JSON;
    },
  };
}

/** The error a mismatching answer fails the call with. */
export function outputMismatch(violations: FieldViolation[]): LlmError {
  const first = violations[0];
  const where = first ? `${first.field === "" ? "the answer" : first.field} ${first.description}` : "it does not match";
  const more = violations.length > 1 ? ` (and ${violations.length - 1} more)` : "";
  return new LlmError("OUTPUT_SCHEMA_MISMATCH", `the model's answer is not the JSON the response format asks for: ${where}${more}`, {
    fieldViolations: violations,
  });
}
