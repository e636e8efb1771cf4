import { LlmError, invalidRequest, type FieldViolation } from "../errors/llm-error.js";
import { isTimestampInRange, TIMESTAMP_RANGE, unstorableText } from "../core/validate.js";
import type { Principal } from "../core/types.js";

const USAGE_DEFAULT_RANGE_MS = 30 * 24 * 3600 * 1000;
const USAGE_MAX_RANGE_MS = 400 * 24 * 3600 * 1000;

/** A usage query, checked: whose usage, and the range (default the last 30 days, at most 400). */
export interface UsageRange {
  tenant: string;
  start: Date;
  end: Date;
}

/**
 * Checks a GetUsage request against the caller: only an admin key reads another tenant's usage;
 * the tenant is storable text; the times are in range and ordered.
 */
export function usageRange(principal: Principal, query: { tenant: string; start?: Date; end?: Date }, now: number): UsageRange {
  const tenant = query.tenant === "" ? principal.tenant : query.tenant;
  if (tenant !== principal.tenant && principal.role !== "admin") {
    throw new LlmError("TENANT_NOT_ALLOWED", "only an admin key may read another tenant's usage", {
      metadata: { tenant },
    });
  }
  const violations: FieldViolation[] = [];
  const tenantProblem = unstorableText(tenant);
  if (tenantProblem !== undefined) violations.push({ field: "tenant", description: tenantProblem });
  for (const [field, time] of [["start_time", query.start], ["end_time", query.end]] as const) {
    if (time !== undefined && !isTimestampInRange(time)) violations.push({ field, description: TIMESTAMP_RANGE });
  }
  if (violations.length > 0) throw invalidRequest(violations);
  const end = query.end ?? new Date(now);
  const start = query.start ?? new Date(end.getTime() - USAGE_DEFAULT_RANGE_MS);
  if (start.getTime() >= end.getTime()) violations.push({ field: "start_time", description: "must be before end_time" });
  if (end.getTime() - start.getTime() > USAGE_MAX_RANGE_MS) {
    violations.push({ field: "start_time", description: "the range must be at most 400 days" });
  }
  if (violations.length > 0) {
    throw new LlmError("INVALID_REQUEST", `invalid request: ${violations[0]?.description}`, { fieldViolations: violations });
  }
  return { tenant, start, end };
}
