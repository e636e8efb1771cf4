/** The telemetry module on its own: what it costs and does without an exporter, and the OTEL_* configuration. */
import { SpanStatusCode, trace } from "@opentelemetry/api";
import { InMemorySpanExporter, SimpleSpanProcessor } from "@opentelemetry/sdk-trace";
import { describe, expect, it } from "vitest";
import { ConfigError, loadConfig } from "../../src/config.js";
import { LlmError } from "../../src/errors/llm-error.js";
import { createTelemetry } from "../../src/telemetry/telemetry.js";
import { NOOP_SPAN } from "../../src/telemetry/tracing.js";
import { callerContext } from "./helpers.js";

const quiet = { processMetrics: false };

describe("without an exporter (no OTEL_EXPORTER_OTLP_ENDPOINT)", () => {
  const telemetry = createTelemetry(loadConfig({}).telemetry, quiet);
  const { tracing } = telemetry;

  it("continues the caller's trace id in a non-recording server span and starts no child spans", () => {
    const caller = callerContext();
    const headers = new Headers({ traceparent: caller.traceparent });
    const server = tracing.startServerSpan("llm.v1.LlmService/Generate", {}, tracing.extract(headers));
    expect(server.isRecording()).toBe(false);
    expect(server.spanContext().traceId).toBe(caller.traceId);
    expect(server.spanContext().spanId).toMatch(/^[0-9a-f]{16}$/);
    expect(server.spanContext().spanId).not.toBe(caller.spanId);

    tracing.with(trace.setSpan(tracing.active(), server), () => {
      expect(tracing.startSpan("admission")).toBe(NOOP_SPAN);
      expect(tracing.logFields()).toEqual({ traceId: caller.traceId, spanId: server.spanContext().spanId });
      const outgoing: Record<string, string> = {};
      tracing.inject(outgoing);
      // Our span id, the caller's trace, not sampled (nothing of ours is recorded).
      expect(outgoing["traceparent"]).toBe(`00-${caller.traceId}-${server.spanContext().spanId}-00`);
    });
  });

  it("still mints ids for a call without a traceparent, so log lines can be correlated", () => {
    const server = tracing.startServerSpan("x", {}, tracing.extract(new Headers()));
    expect(server.spanContext().traceId).toMatch(/^[0-9a-f]{32}$/);
    expect(server.spanContext().traceId).not.toBe("0".repeat(32));
  });

  it("runs inSpan's function directly, returning what it returns", async () => {
    let seen: unknown;
    await expect(tracing.inSpan("cache.lookup", {}, (span) => ((seen = span), 42))).resolves.toBe(42);
    expect(seen).toBe(NOOP_SPAN);
    expect(tracing.exporting).toBe(false);
  });

  it("puts no span on a root: ledger writes make none", () => {
    expect(tracing.startRootSpan("INSERT generations", {})).toBe(NOOP_SPAN);
  });
});

describe("with a span processor", () => {
  it("parents child spans on the active span, and marks a failure with error.type and a client-safe message", async () => {
    const exporter = new InMemorySpanExporter();
    const telemetry = createTelemetry(loadConfig({}).telemetry, { ...quiet, spanProcessors: [new SimpleSpanProcessor({ exporter })] });
    const { tracing } = telemetry;
    const root = tracing.startServerSpan("rpc", {}, tracing.extract(new Headers()));
    await tracing.with(trace.setSpan(tracing.active(), root), async () => {
      await tracing.inSpan("ok", { a: 1 }, async () => undefined);
      await expect(
        tracing.inSpan("fails", {}, () => {
          throw new LlmError("INTERNAL", "secret internals: db password wrong");
        }),
      ).rejects.toThrow();
    });
    root.end();
    const spans = exporter.getFinishedSpans();
    const ok = spans.find((s) => s.name === "ok")!;
    const fails = spans.find((s) => s.name === "fails")!;
    expect(ok.parentSpanContext?.spanId).toBe(root.spanContext().spanId);
    expect(fails.parentSpanContext?.spanId).toBe(root.spanContext().spanId);
    expect(fails.status).toEqual({ code: SpanStatusCode.ERROR, message: "INTERNAL" });
    expect(fails.attributes["error.type"]).toBe("INTERNAL");
    await telemetry.shutdown();
  });
});

describe("OTEL_* configuration", () => {
  it("exports nowhere by default", () => {
    const t = loadConfig({}).telemetry;
    expect(t.otlp).toBeUndefined();
    expect(t.serviceName).toBe("llm-service");
    expect(t.captureContent).toBe(false);
    expect(t.sampler).toEqual({ name: "parentbased_always_on", ratio: 1 });
  });

  it("appends /v1/traces to OTEL_EXPORTER_OTLP_ENDPOINT and takes the traces endpoint as is", () => {
    expect(loadConfig({ OTEL_EXPORTER_OTLP_ENDPOINT: "http://collector:4318/" }).telemetry.otlp?.url).toBe("http://collector:4318/v1/traces");
    expect(
      loadConfig({ OTEL_EXPORTER_OTLP_ENDPOINT: "http://collector:4318", OTEL_EXPORTER_OTLP_TRACES_ENDPOINT: "http://other:9999/t" }).telemetry.otlp?.url,
    ).toBe("http://other:9999/t");
  });

  it("reads headers, timeout, sampler, capture and the metrics port", () => {
    const t = loadConfig({
      OTEL_EXPORTER_OTLP_ENDPOINT: "http://collector:4318",
      OTEL_EXPORTER_OTLP_HEADERS: "authorization=Bearer%20abc, x-tenant = ops",
      OTEL_EXPORTER_OTLP_TIMEOUT: "2500",
      OTEL_TRACES_SAMPLER: "parentbased_traceidratio",
      OTEL_TRACES_SAMPLER_ARG: "0.25",
      OTEL_CAPTURE_CONTENT: "TRUE",
      METRICS_PORT: "9464",
    }).telemetry;
    expect(t.otlp).toEqual({ url: "http://collector:4318/v1/traces", headers: { authorization: "Bearer abc", "x-tenant": "ops" }, timeoutMs: 2500 });
    expect(t.sampler).toEqual({ name: "parentbased_traceidratio", ratio: 0.25 });
    expect(t.captureContent).toBe(true);
    expect(t.metricsPort).toBe(9464);
  });

  it("turns export off with OTEL_SDK_DISABLED=true", () => {
    expect(loadConfig({ OTEL_EXPORTER_OTLP_ENDPOINT: "http://collector:4318", OTEL_SDK_DISABLED: "true" }).telemetry.otlp).toBeUndefined();
  });

  it.each([
    ["OTEL_EXPORTER_OTLP_PROTOCOL", "grpc"],
    ["OTEL_EXPORTER_OTLP_ENDPOINT", "not a url"],
    ["OTEL_TRACES_SAMPLER", "sometimes"],
    ["OTEL_TRACES_SAMPLER_ARG", "2"],
    ["OTEL_CAPTURE_CONTENT", "yes please"],
    ["OTEL_EXPORTER_OTLP_HEADERS", "novalue"],
    ["METRICS_PORT", "70000"],
  ])("names %s when it is %j", (key, value) => {
    expect(() => loadConfig({ [key]: value })).toThrow(ConfigError);
    expect(() => loadConfig({ [key]: value })).toThrow(key);
  });
});
