import type { z } from "zod";

/** A bad configuration value: the message names the key. */
export class ConfigError extends Error {
  override readonly name = "ConfigError";
}

/** Zod's issues as one line, each prefixed and naming its path. */
export function describeIssues(prefix: string, error: z.ZodError): string {
  return error.issues
    .map((issue) => {
      const path = issue.path.map(String).join(".");
      return `${prefix}${path}: ${issue.message}`;
    })
    .join("; ");
}
