/**
 * Zod fields for environment variables: how a string from the environment becomes a typed
 * setting. Shared by the service's own variables (env-schema.ts) and each provider's
 * (providers/<name>/<name>-descriptor.ts).
 */
import { z } from "zod";

/** An integer in [min, max], from its decimal text. */
export const int = (min: number, max: number) => z.coerce.number().int().min(min).max(max);

/** A comma-separated list; blank items dropped. */
export const csv = z
  .string()
  .default("")
  .transform((s) =>
    s
      .split(",")
      .map((x) => x.trim())
      .filter((x) => x.length > 0),
  );

/** A trimmed string; blank means unset. */
export const optionalString = z
  .string()
  .optional()
  .transform((s) => (s === undefined || s.trim() === "" ? undefined : s.trim()));

/** An absolute URL; blank means unset. */
export const optionalUrl = optionalString.pipe(z.url().optional());

export const bool = z
  .string()
  .trim()
  .toLowerCase()
  .pipe(z.enum(["true", "false", "1", "0"], { message: 'must be "true" or "false"' }))
  .transform((s) => s === "true" || s === "1");

/**
 * The OTEL_* list form: `key1=value1,key2=value2`, values percent-decoded
 * (OTEL_RESOURCE_ATTRIBUTES, OTEL_EXPORTER_OTLP_HEADERS).
 */
export const keyValues = z
  .string()
  .default("")
  .transform((s, ctx) => {
    const out: Record<string, string> = {};
    for (const item of s.split(",")) {
      if (item.trim() === "") continue;
      const eq = item.indexOf("=");
      const key = eq > 0 ? item.slice(0, eq).trim() : "";
      if (key === "") {
        ctx.addIssue({ code: "custom", message: `"${item.trim().slice(0, 40)}" is not key=value` });
        return z.NEVER;
      }
      try {
        out[key] = decodeURIComponent(item.slice(eq + 1).trim());
      } catch {
        ctx.addIssue({ code: "custom", message: `the value of "${key}" is not valid percent-encoding` });
        return z.NEVER;
      }
    }
    return out;
  });

/** The object without its undefined properties (settings a provider was given, and only those). */
export function definedOnly<T extends object>(o: T): { [K in keyof T]?: Exclude<T[K], undefined> } {
  return Object.fromEntries(Object.entries(o).filter(([, v]) => v !== undefined)) as { [K in keyof T]?: Exclude<T[K], undefined> };
}
