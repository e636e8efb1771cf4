/** A whole service for telemetry tests: spans in memory, log lines captured, metrics scraped over HTTP. */
import type { Interceptor } from "@connectrpc/connect";
import type { ReadableSpan } from "@opentelemetry/sdk-trace";
import { startHarness, type Harness } from "../helpers/harness.js";

export type ObservedServer = Harness;

export interface ObservedOptions {
  /** Record spans into `exporter` (as an OTLP exporter would). Default false: the production default without OTEL_EXPORTER_OTLP_ENDPOINT. */
  spans?: boolean;
  /** A catalogue (YAML) written to a file and passed as LLM_CONFIG. */
  catalogue?: string;
  logLevel?: string;
}

/** The service with its log lines captured and, with `spans`, its spans in memory (see harness.ts). */
export function startObservedServer(env: Record<string, string> = {}, options: ObservedOptions = {}): Promise<ObservedServer> {
  return startHarness({
    env,
    ...(options.catalogue !== undefined ? { catalogue: options.catalogue } : {}),
    observe: { spans: options.spans ?? false, logLevel: options.logLevel ?? "info" },
  });
}

/** A W3C trace context of a pretend caller: random ids, sampled. */
export function callerContext(): { traceId: string; spanId: string; traceparent: string } {
  const hex = (bytes: number) => Array.from({ length: bytes }, () => Math.floor(Math.random() * 256).toString(16).padStart(2, "0")).join("");
  const traceId = hex(16);
  const spanId = hex(8);
  return { traceId, spanId, traceparent: `00-${traceId}-${spanId}-01` };
}

/** A client interceptor that sends the given headers on every call. */
export function withHeaders(headers: Record<string, string>): Interceptor {
  return (next) => (req) => {
    for (const [name, value] of Object.entries(headers)) req.header.set(name, value);
    return next(req);
  };
}

/** Spans by name, for readable assertions. */
export function byName(spans: readonly ReadableSpan[], name: string): ReadableSpan[] {
  return spans.filter((s) => s.name === name);
}

export function parentOf(spans: readonly ReadableSpan[], span: ReadableSpan): ReadableSpan | undefined {
  const parentId = span.parentSpanContext?.spanId;
  return spans.find((s) => s.spanContext().spanId === parentId);
}
