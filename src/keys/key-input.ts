/** Checks on what is given to the key store: names, dates and model lists. */
import { modelPatternsProblem, normalizeModelPatterns } from "../core/model-access.js";

/** An invalid name, tenant, role, date, model list or limit given to the store. */
export class ApiKeyInputError extends Error {
  override readonly name = "ApiKeyInputError";
}

export function checkedName(name: string, what: string): string {
  const trimmed = typeof name === "string" ? name.trim() : "";
  if (trimmed === "") throw new ApiKeyInputError(`${what} must not be empty`);
  return trimmed;
}

export function checkedDate(date: Date | null, what: string): Date | null {
  if (date !== null && (!(date instanceof Date) || Number.isNaN(date.getTime()))) {
    throw new ApiKeyInputError(`${what} is not a valid date`);
  }
  return date;
}

/** Trimmed, deduplicated, and within the limits of core/model-access.ts. */
export function checkedModels(models: readonly string[]): string[] {
  const values: readonly unknown[] = models;
  if (!Array.isArray(values) || !values.every((m) => typeof m === "string")) {
    throw new ApiKeyInputError("allowedModels must be an array of model ids or patterns");
  }
  const normalized = normalizeModelPatterns(models);
  const problem = modelPatternsProblem(normalized);
  if (problem !== undefined) throw new ApiKeyInputError(problem);
  return normalized;
}
