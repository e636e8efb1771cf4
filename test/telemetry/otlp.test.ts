/**
 * A real OTLP/HTTP round trip: the service, configured only through the standard OTEL_* variables,
 * exports to a small receiver on loopback, which decodes what it gets (the installed exporter
 * sends OTLP JSON: hex trace and span ids, attributes as {key, value: {stringValue|intValue…}}).
 */
import { EventEmitter, once } from "node:events";
import http from "node:http";
import type { AddressInfo } from "node:net";
import { create } from "@bufbuild/protobuf";
import { createClient } from "@connectrpc/connect";
import { createConnectTransport } from "@connectrpc/connect-node";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { GenerateRequestSchema, LlmService, Role } from "../../gen/ts/llm/v1/llm_service_pb.js";
import { loadConfig } from "../../src/config.js";
import { createTelemetry, packageVersion } from "../../src/telemetry/telemetry.js";
import { bearer } from "../helpers/clients.js";
import { callerContext, startObservedServer, withHeaders, type ObservedServer } from "./helpers.js";

interface OtlpValue {
  stringValue?: string;
  intValue?: number | string;
  boolValue?: boolean;
  doubleValue?: number;
  arrayValue?: { values: OtlpValue[] };
}
interface OtlpSpan {
  traceId: string;
  spanId: string;
  parentSpanId?: string;
  name: string;
  kind: number;
  attributes: { key: string; value: OtlpValue }[];
  status?: { code?: number };
}
interface OtlpRequest {
  resourceSpans: {
    resource: { attributes: { key: string; value: OtlpValue }[] };
    scopeSpans: { scope: { name: string; version?: string }; spans: OtlpSpan[] }[];
  }[];
}
interface Received {
  path: string;
  headers: http.IncomingHttpHeaders;
  body: OtlpRequest;
}

/** An OTLP/HTTP receiver: answers 200 (or `status`) and emits each decoded export request. */
class Receiver extends EventEmitter {
  readonly received: Received[] = [];
  status = 200;
  private readonly server = http.createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on("data", (c: Buffer) => chunks.push(c));
    req.on("end", () => {
      const text = Buffer.concat(chunks).toString("utf8");
      const got: Received = { path: req.url ?? "", headers: req.headers, body: JSON.parse(text) as OtlpRequest };
      this.received.push(got);
      res.writeHead(this.status, { "content-type": "application/json" });
      res.end(this.status === 200 ? "{}" : '{"code":3,"message":"bad request"}');
      this.emit("export", got);
    });
  });

  async start(): Promise<string> {
    await new Promise<void>((resolve) => this.server.listen(0, "127.0.0.1", resolve));
    return `http://127.0.0.1:${(this.server.address() as AddressInfo).port}`;
  }

  spans(): OtlpSpan[] {
    return this.received.flatMap((r) => r.body.resourceSpans.flatMap((rs) => rs.scopeSpans.flatMap((ss) => ss.spans)));
  }

  /** Resolves once a span of `traceId` named `name` has arrived. */
  async waitForSpan(traceId: string, name: string): Promise<OtlpSpan> {
    for (;;) {
      const found = this.spans().find((s) => s.traceId === traceId && s.name === name);
      if (found) return found;
      await once(this, "export");
    }
  }

  close(): Promise<void> {
    this.server.closeAllConnections();
    return new Promise((resolve) => this.server.close(() => resolve()));
  }
}

const attr = (attributes: { key: string; value: OtlpValue }[], key: string) => attributes.find((a) => a.key === key)?.value;

let receiver: Receiver;
let server: ObservedServer;
let endpoint: string;

beforeAll(async () => {
  receiver = new Receiver();
  endpoint = await receiver.start();
  server = await startObservedServer({
    OTEL_EXPORTER_OTLP_ENDPOINT: endpoint,
    OTEL_SERVICE_NAME: "llm-otlp-test",
    OTEL_RESOURCE_ATTRIBUTES: "deployment.environment.name=test,team=ml%20platform",
    OTEL_EXPORTER_OTLP_HEADERS: "x-collector-token=s3cret%20token",
  });
}, 60_000);

afterAll(async () => {
  await server?.close();
  await receiver?.close();
});

async function generate(traceparent: string, content: string) {
  const client = createClient(
    LlmService,
    createConnectTransport({ baseUrl: server.baseUrl, httpVersion: "1.1", interceptors: [bearer(server.key), withHeaders({ traceparent })] }),
  );
  return client.generate(create(GenerateRequestSchema, { model: "sim/echo", messages: [{ role: Role.USER, content }] }));
}

describe("OTLP/HTTP export", () => {
  it("posts the call's spans to <endpoint>/v1/traces as OTLP JSON, with the configured headers and resource", async () => {
    const caller = callerContext();
    await generate(caller.traceparent, "export me");
    await server.app.telemetry.forceFlush();
    const span = await receiver.waitForSpan(caller.traceId, "llm.v1.LlmService/Generate");

    const request = receiver.received.find((r) => r.body.resourceSpans.some((rs) => rs.scopeSpans.some((ss) => ss.spans.includes(span))));
    expect(request?.path).toBe("/v1/traces");
    expect(request?.headers["content-type"]).toMatch(/^application\/json/);
    expect(request?.headers["x-collector-token"]).toBe("s3cret token");
    const resource = request!.body.resourceSpans[0]!.resource.attributes;
    expect(attr(resource, "service.name")?.stringValue).toBe("llm-otlp-test");
    expect(attr(resource, "service.version")?.stringValue).toBe(packageVersion());
    expect(attr(resource, "deployment.environment.name")?.stringValue).toBe("test");
    expect(attr(resource, "team")?.stringValue).toBe("ml platform");
    expect(request!.body.resourceSpans[0]!.scopeSpans[0]!.scope.name).toBe("llm-service");

    expect(span.parentSpanId).toBe(caller.spanId);
    expect(span.kind).toBe(2); // SPAN_KIND_SERVER
    expect(attr(span.attributes, "rpc.method")?.stringValue).toBe("llm.v1.LlmService/Generate");
    expect(attr(span.attributes, "rpc.status_code")?.stringValue).toBe("OK");
    const attempt = await receiver.waitForSpan(caller.traceId, "chat echo");
    expect(attr(attempt.attributes, "gen_ai.provider.name")?.stringValue).toBe("sim");
    expect(Number(attr(attempt.attributes, "gen_ai.usage.output_tokens")?.intValue)).toBe(2);
  });

  it("flushes what is still batched when the service shuts down", async () => {
    const caller = callerContext();
    await generate(caller.traceparent, "flush me on shutdown");
    // No forceFlush: the batch (1 s delay) is still waiting when shutdown starts.
    const arrived = receiver.waitForSpan(caller.traceId, "llm.v1.LlmService/Generate");
    await server.close();
    await expect(arrived).resolves.toMatchObject({ name: "llm.v1.LlmService/Generate" });
    // The ledger's final INSERT is a root span of its own trace.
    const inserts = receiver.spans().filter((s) => s.name === "INSERT generations");
    expect(inserts.length).toBeGreaterThan(0);
    for (const insert of inserts) {
      expect(insert.parentSpanId ?? "").toBe("");
      // The batch's row count, read from the ledger's INSERT … SELECT FROM unnest(arrays).
      expect(Number(attr(insert.attributes, "llm.ledger.rows")?.intValue)).toBeGreaterThan(0);
    }
  });
});

describe("a receiver that refuses the export", () => {
  it("counts the failure on /metrics and reports it, without throwing into the service", async () => {
    const refusing = new Receiver();
    refusing.status = 400;
    const url = await refusing.start();
    const errors: Error[] = [];
    const config = loadConfig({ OTEL_EXPORTER_OTLP_TRACES_ENDPOINT: `${url}/custom/traces` });
    const telemetry = createTelemetry(config.telemetry, { processMetrics: false, onExportError: (err) => errors.push(err) });
    try {
      telemetry.tracing.startRootSpan("lonely", {}).end();
      await telemetry.forceFlush().catch(() => undefined);
      expect(refusing.received.map((r) => r.path)).toEqual(["/custom/traces"]);
      expect(errors).toHaveLength(1);
      const { body } = await telemetry.metrics.scrape();
      expect(body).toMatch(/^llm_trace_export_failures_total 1$/m);
    } finally {
      await telemetry.shutdown();
      await refusing.close();
    }
  });
});
