/** Each provider's environment variables and settings, from the descriptors (providers/descriptors.ts). */
import { z } from "zod";
import type { ProviderDescriptor } from "../providers/descriptor.js";
import { PROVIDERS, type ProviderSettings } from "../providers/descriptors.js";

/** The descriptors as one shape (a method's parameter is bivariant, so each fits the general type). */
const descriptors: readonly ProviderDescriptor[] = PROVIDERS;

/** Every provider's variables, in one object schema. */
export const PROVIDER_ENV: z.ZodRawShape = Object.assign({}, ...descriptors.map((d) => d.env));

/** Each provider's settings from the environment; the issues of every bad variable otherwise. */
export function providerSettings(env: Readonly<Record<string, string>>): { ok: true; settings: ProviderSettings } | { ok: false; error: z.ZodError } {
  const issues: z.core.$ZodIssue[] = [];
  const settings: Record<string, object> = {};
  for (const d of descriptors) {
    const parsed = z.object(d.env).safeParse(env);
    if (parsed.success) settings[d.name] = d.settings(parsed.data);
    else issues.push(...parsed.error.issues);
  }
  if (issues.length > 0) return { ok: false, error: new z.ZodError(issues) };
  // Built from PROVIDERS, one entry per name with its own descriptor's settings: the mapped type holds.
  return { ok: true, settings: settings as ProviderSettings };
}
