/** A whole service for telemetry tests: spans in memory, log lines captured, metrics scraped over HTTP. */
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { Writable } from "node:stream";
import type { Interceptor } from "@connectrpc/connect";
import { InMemorySpanExporter, SimpleSpanProcessor, type ReadableSpan } from "@opentelemetry/sdk-trace";
import { startApp, type App } from "../../src/app.js";
import { loadConfig } from "../../src/config.js";
import { createLogger } from "../../src/telemetry/logger.js";
import { createTelemetry } from "../../src/telemetry/telemetry.js";
import { seedPgliteCluster } from "../helpers/pglite-template.js";

export interface ObservedServer {
  app: App;
  baseUrl: string;
  port: number;
  /** A user key of tenant "acme". */
  key: string;
  /** Finished spans (only when started with `spans: true`). */
  exporter: InMemorySpanExporter;
  /** Every log line written so far, as written. */
  logLines: string[];
  dir: string;
  close(): Promise<void>;
}

export interface ObservedOptions {
  /** Record spans into `exporter` (as an OTLP exporter would). Default false: the production default without OTEL_EXPORTER_OTLP_ENDPOINT. */
  spans?: boolean;
  /** A catalogue (YAML) written to a file and passed as LLM_CONFIG. */
  catalogue?: string;
  logLevel?: string;
}

export async function startObservedServer(env: Record<string, string> = {}, options: ObservedOptions = {}): Promise<ObservedServer> {
  const dir = mkdtempSync(join(tmpdir(), "llm-telemetry-"));
  seedPgliteCluster(join(dir, "data"));
  const catalogueEnv: Record<string, string> = {};
  if (options.catalogue !== undefined) {
    writeFileSync(join(dir, "catalogue.yaml"), options.catalogue);
    catalogueEnv["LLM_CONFIG"] = join(dir, "catalogue.yaml");
  }
  const config = loadConfig({ PORT: "0", DATA_DIR: join(dir, "data"), LEDGER_FLUSH_MS: "20", ...catalogueEnv, ...env });
  const exporter = new InMemorySpanExporter();
  const telemetry = createTelemetry(config.telemetry, {
    processMetrics: false,
    ...(options.spans ? { spanProcessors: [new SimpleSpanProcessor({ exporter })] } : {}),
  });
  const logLines: string[] = [];
  const stream = new Writable({
    write(chunk: Buffer | string, _encoding, callback) {
      for (const line of chunk.toString().split("\n")) if (line.trim() !== "") logLines.push(line);
      callback();
    },
  });
  const logger = createLogger(options.logLevel ?? "info", { stream, context: () => telemetry.tracing.logFields() });
  const app = await startApp(config, { logger, telemetry });
  const key = (await app.keys.create({ name: "test", tenant: "acme" })).secret;
  return {
    app,
    port: app.transport.port,
    baseUrl: `http://127.0.0.1:${app.transport.port}`,
    key,
    exporter,
    logLines,
    dir,
    async close() {
      await app.shutdown();
      rmSync(dir, { recursive: true, force: true });
    },
  };
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
