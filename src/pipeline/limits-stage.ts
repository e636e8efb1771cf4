import type { LimitSubject, Limiter, Ticket } from "../limits/limiter.js";
import { costOf, type CatalogueModel } from "../router/catalogue.js";
import type { Tracing } from "../telemetry/tracing.js";
import type { GenerationRequest, Principal } from "../core/types.js";

/** The key's and the tenant's limits that apply, if any. */
export function limitSubjects(principal: Principal): LimitSubject[] {
  const subjects: LimitSubject[] = [];
  if (principal.limits && Object.keys(principal.limits).length > 0) subjects.push({ scope: "key", id: principal.keyId, limits: principal.limits });
  if (principal.tenantLimits && Object.keys(principal.tenantLimits).length > 0) {
    subjects.push({ scope: "tenant", id: principal.tenant, limits: principal.tenantLimits });
  }
  return subjects;
}

/**
 * Reserves the key's and tenant's limits for the call's worst case (the prompt plus the most
 * output it may ask for), in a "limits" span; throws RATE_LIMITED / BUDGET_EXCEEDED. The ticket
 * settles what was really spent when the call ends. No limits: no ticket.
 */
export async function reserveLimits(
  limiter: Limiter | undefined,
  tracing: Tracing,
  principal: Principal,
  model: CatalogueModel,
  req: Pick<GenerationRequest, "maxOutputTokens">,
  inputTokens: number,
): Promise<Ticket | undefined> {
  if (!limiter) return undefined;
  const subjects = limitSubjects(principal);
  if (subjects.length === 0) return undefined;
  const maxOutput = Math.min(req.maxOutputTokens ?? model.maxOutputTokens, model.maxOutputTokens);
  const result = await tracing.inSpan("limits", () => ({ "llm.limit.scopes": subjects.map((s) => s.scope) }), async (span) => {
    const admitted = await limiter.admit(subjects, {
      tokens: inputTokens + maxOutput,
      costUsdNanos: costOf(model, { inputTokens, outputTokens: maxOutput }),
    });
    if (!admitted.ok) tracing.fail(span, admitted.error);
    return admitted;
  });
  if (!result.ok) throw result.error;
  return result.ticket;
}
