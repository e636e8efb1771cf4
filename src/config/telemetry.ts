/** Traces, metrics and what goes on spans, from the standard OTEL_* variables and METRICS_PORT. */
import { z } from "zod";
import { bool, int, keyValues, optionalString } from "./env-fields.js";

export const TELEMETRY_ENV = {
  /** Serve GET /metrics on this port instead of the main one. */
  METRICS_PORT: int(0, 65535).optional(),
  OTEL_SDK_DISABLED: bool.default(false),
  OTEL_SERVICE_NAME: z.string().min(1).default("llm-service"),
  OTEL_RESOURCE_ATTRIBUTES: keyValues,
  /** Base URL of an OTLP/HTTP receiver; traces go to <it>/v1/traces. Unset: no trace export. */
  OTEL_EXPORTER_OTLP_ENDPOINT: optionalString.pipe(z.url().optional()),
  /** Full URL for traces, used as is; wins over OTEL_EXPORTER_OTLP_ENDPOINT. */
  OTEL_EXPORTER_OTLP_TRACES_ENDPOINT: optionalString.pipe(z.url().optional()),
  OTEL_EXPORTER_OTLP_HEADERS: keyValues,
  /** The installed exporter speaks OTLP/HTTP with JSON bodies only. */
  OTEL_EXPORTER_OTLP_PROTOCOL: z
    .enum(["http/json"], { message: 'only "http/json" is supported (OTLP over HTTP with JSON bodies)' })
    .default("http/json"),
  OTEL_EXPORTER_OTLP_TIMEOUT: int(1, 600_000).default(10_000),
  OTEL_TRACES_SAMPLER: z
    .enum(["always_on", "always_off", "traceidratio", "parentbased_always_on", "parentbased_always_off", "parentbased_traceidratio"])
    .default("parentbased_always_on"),
  OTEL_TRACES_SAMPLER_ARG: z.coerce.number().min(0).max(1).optional(),
  /** Put prompt and completion text on spans (gen_ai.input.messages etc.). Off by default. */
  OTEL_CAPTURE_CONTENT: bool.default(false),
};

type TelemetryEnv = z.output<z.ZodObject<typeof TELEMETRY_ENV>>;

export interface TelemetryConfig {
  serviceName: string;
  /** OTEL_RESOURCE_ATTRIBUTES (service.name from OTEL_SERVICE_NAME wins over one given here). */
  resourceAttributes: Record<string, string>;
  /** Where spans go (OTLP/HTTP, JSON); absent means no export, and spans are not recorded at all. */
  otlp?: { url: string; headers: Record<string, string>; timeoutMs: number };
  sampler: { name: SamplerName; ratio: number };
  /** Prompt and completion text on spans. */
  captureContent: boolean;
  /** A separate port for GET /metrics; absent means the main port serves it. */
  metricsPort?: number;
}

export type SamplerName =
  | "always_on"
  | "always_off"
  | "traceidratio"
  | "parentbased_always_on"
  | "parentbased_always_off"
  | "parentbased_traceidratio";

/** Where traces are exported: the signal-specific URL as is, or the base endpoint + /v1/traces. */
function otlpTracesUrl(endpoint: string | undefined, tracesEndpoint: string | undefined): string | undefined {
  if (tracesEndpoint !== undefined) return tracesEndpoint;
  if (endpoint === undefined) return undefined;
  return `${endpoint.replace(/\/+$/, "")}/v1/traces`;
}

export function telemetryConfig(e: TelemetryEnv): TelemetryConfig {
  const tracesUrl = otlpTracesUrl(e.OTEL_EXPORTER_OTLP_ENDPOINT, e.OTEL_EXPORTER_OTLP_TRACES_ENDPOINT);
  return {
    serviceName: e.OTEL_SERVICE_NAME,
    resourceAttributes: e.OTEL_RESOURCE_ATTRIBUTES,
    ...(tracesUrl !== undefined && !e.OTEL_SDK_DISABLED
      ? { otlp: { url: tracesUrl, headers: e.OTEL_EXPORTER_OTLP_HEADERS, timeoutMs: e.OTEL_EXPORTER_OTLP_TIMEOUT } }
      : {}),
    sampler: { name: e.OTEL_TRACES_SAMPLER, ratio: e.OTEL_TRACES_SAMPLER_ARG ?? 1 },
    captureContent: e.OTEL_CAPTURE_CONTENT,
    ...(e.METRICS_PORT !== undefined ? { metricsPort: e.METRICS_PORT } : {}),
  };
}
