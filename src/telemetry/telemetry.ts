/**
 * Telemetry wired once at start-up: a tracer provider (resource: service name and version), an
 * OTLP/HTTP exporter when an endpoint is configured, W3C trace-context propagation, an
 * AsyncLocalStorage context manager, and the Prometheus registry. Nothing here is global: each
 * instance has its own provider, context manager and registry, handed to the layers that use them.
 *
 * Without an exporter no span is recorded: the sampler drops everything, so a call's server span
 * is a non-recording span that only carries ids (continuing a caller's trace id), for the logs
 * and the upstream traceparent, and no child span is started at all (see tracing.ts).
 */
import { readFileSync } from "node:fs";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { AsyncLocalStorageContextManager } from "@opentelemetry/context-async-hooks";
import { ExportResultCode, W3CTraceContextPropagator, type ExportResult } from "@opentelemetry/core";
import { defaultResource, resourceFromAttributes } from "@opentelemetry/resources";
import {
  AlwaysOffSampler,
  AlwaysOnSampler,
  BatchSpanProcessor,
  ParentBasedSampler,
  TraceIdRatioBasedSampler,
  TracerProvider,
  type ReadableSpan,
  type Sampler,
  type SpanExporter,
  type SpanProcessor,
} from "@opentelemetry/sdk-trace";
import { ATTR_SERVICE_NAME, ATTR_SERVICE_VERSION } from "@opentelemetry/semantic-conventions";
import type { SamplerName, TelemetryConfig } from "../config.js";
import { GatewayMetrics } from "./metrics.js";
import { Tracing } from "./tracing.js";

export interface Telemetry {
  readonly tracing: Tracing;
  readonly metrics: GatewayMetrics;
  /** Exports the spans ended so far. */
  forceFlush(): Promise<void>;
  /** Flushes and stops the exporter; idempotent. */
  shutdown(): Promise<void>;
}

export interface TelemetryOptions {
  /** Span processors besides the OTLP one (a test's in-memory exporter). Spans are recorded when any exists. */
  spanProcessors?: SpanProcessor[];
  /** Called when a batch of spans could not be exported (for a throttled log line). */
  onExportError?: (err: Error) => void;
  /** Node process metrics on /metrics. Default true. */
  processMetrics?: boolean;
  /** Defaults to the version in package.json. */
  serviceVersion?: string;
  /** Span batching delay of the OTLP processor. Default 1 s. */
  exportDelayMs?: number;
}

export const TRACER_NAME = "llm-service";

/** This package's version, from the nearest package.json named llm-service (src/ and dist/src/ layouts alike). */
export function packageVersion(): string {
  let dir = dirname(fileURLToPath(import.meta.url));
  for (let i = 0; i < 5; i++) {
    try {
      const pkg = JSON.parse(readFileSync(join(dir, "package.json"), "utf8")) as { name?: string; version?: string };
      if (pkg.name === "llm-service" && pkg.version) return pkg.version;
    } catch {
      // not here; look further up
    }
    dir = dirname(dir);
  }
  return "unknown";
}

function samplerOf(name: SamplerName, ratio: number): Sampler {
  switch (name) {
    case "always_on":
      return new AlwaysOnSampler();
    case "always_off":
      return new AlwaysOffSampler();
    case "traceidratio":
      return new TraceIdRatioBasedSampler(ratio);
    case "parentbased_always_on":
      return new ParentBasedSampler({ root: new AlwaysOnSampler() });
    case "parentbased_always_off":
      return new ParentBasedSampler({ root: new AlwaysOffSampler() });
    case "parentbased_traceidratio":
      return new ParentBasedSampler({ root: new TraceIdRatioBasedSampler(ratio) });
  }
}

/** An exporter that reports failed exports instead of letting them vanish into the OTel diag logger. */
class ReportingExporter implements SpanExporter {
  constructor(
    private readonly inner: SpanExporter,
    private readonly onFailure: (err: Error) => void,
  ) {}

  export(spans: ReadableSpan[], resultCallback: (result: ExportResult) => void): void {
    this.inner.export(spans, (result) => {
      if (result.code !== ExportResultCode.SUCCESS) {
        try {
          this.onFailure(result.error ?? new Error("span export failed"));
        } catch {
          // a failing report must not break the export pipeline
        }
      }
      resultCallback(result);
    });
  }

  shutdown(): Promise<void> {
    return this.inner.shutdown();
  }

  forceFlush(): Promise<void> {
    return this.inner.forceFlush?.() ?? Promise.resolve();
  }
}

/**
 * The OTLP/HTTP exporter, whose package is imported when this is built (at start-up), so a process
 * without an OTLP endpoint never loads it. The first batch goes out a second after the first span
 * ends, long after the import has resolved; a batch that came earlier would wait for it.
 */
class OtlpHttpExporter implements SpanExporter {
  private exporter: SpanExporter | undefined;
  private readonly loading: Promise<SpanExporter>;

  constructor(otlp: NonNullable<TelemetryConfig["otlp"]>) {
    this.loading = import("@opentelemetry/exporter-trace-otlp-http").then(
      ({ OTLPTraceExporter }) =>
        (this.exporter = new OTLPTraceExporter({ url: otlp.url, headers: otlp.headers, timeoutMillis: otlp.timeoutMs })),
    );
  }

  export(spans: ReadableSpan[], resultCallback: (result: ExportResult) => void): void {
    if (this.exporter) return this.exporter.export(spans, resultCallback);
    this.loading.then(
      (exporter) => exporter.export(spans, resultCallback),
      (err: unknown) => resultCallback({ code: ExportResultCode.FAILED, error: err instanceof Error ? err : new Error(String(err)) }),
    );
  }

  shutdown(): Promise<void> {
    return this.loading.then((exporter) => exporter.shutdown());
  }

  forceFlush(): Promise<void> {
    return this.loading.then((exporter) => exporter.forceFlush?.());
  }
}

export function createTelemetry(config: TelemetryConfig, options: TelemetryOptions = {}): Telemetry {
  const metrics = new GatewayMetrics({ processMetrics: options.processMetrics ?? true });
  const processors: SpanProcessor[] = [...(options.spanProcessors ?? [])];
  if (config.otlp) {
    const reporting = new ReportingExporter(new OtlpHttpExporter(config.otlp), (err) => {
      metrics.traceExportFailed();
      options.onExportError?.(err);
    });
    processors.push(
      new BatchSpanProcessor({
        exporter: reporting,
        scheduledDelayMillis: options.exportDelayMs ?? 1000,
        // A call makes 6–9 spans: the SDK's default queue (2,048, full = new spans dropped) is
        // ~250 calls' worth, too little to ride out one export's round trip at a few thousand calls a second.
        maxQueueSize: 16_384,
        maxExportBatchSize: 2_048,
        exportTimeoutMillis: config.otlp.timeoutMs,
      }),
    );
  }
  const exporting = processors.length > 0;
  const resource = defaultResource().merge(
    resourceFromAttributes({
      ...config.resourceAttributes,
      [ATTR_SERVICE_NAME]: config.serviceName,
      [ATTR_SERVICE_VERSION]: options.serviceVersion ?? packageVersion(),
    }),
  );
  const provider = new TracerProvider({
    resource,
    // Nothing to export to: record nothing, but still mint ids for logs and propagation.
    sampler: exporting ? samplerOf(config.sampler.name, config.sampler.ratio) : new AlwaysOffSampler(),
    spanProcessors: processors,
  });
  const contexts = new AsyncLocalStorageContextManager().enable();
  const tracing = new Tracing({
    tracer: provider.getTracer(TRACER_NAME, options.serviceVersion ?? packageVersion()),
    contexts,
    propagator: new W3CTraceContextPropagator(),
    captureContent: config.captureContent,
    exporting,
  });

  let stopped: Promise<void> | undefined;
  return {
    tracing,
    metrics,
    forceFlush: () => provider.forceFlush(),
    shutdown() {
      stopped ??= provider.shutdown();
      return stopped;
    },
  };
}
