/**
 * The one way tests start the service in process, over real loopback sockets:
 * - its own data directory, holding a copy of the run's migrated PGlite cluster;
 * - optionally the upstream simulator, started first so that the catalogue can point at it;
 * - optionally a catalogue (YAML) written to a file and passed as LLM_CONFIG;
 * - a user key of tenant "acme" and an admin key of tenant "ops";
 * - clients over every protocol the service speaks (connect-node, or plain grpc-js);
 * - optionally spans recorded in memory and log lines captured, for telemetry tests.
 * startTestServer, startUpstreamGateway and startObservedServer are this harness with defaults.
 */
import { rmSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { Writable } from "node:stream";
import type { Client } from "@connectrpc/connect";
import { InMemorySpanExporter, SimpleSpanProcessor } from "@opentelemetry/sdk-trace";
import { LlmService } from "../../gen/ts/llm/v1/llm_service_pb.js";
import { startApp, type App, type AppOptions } from "../../src/app.js";
import { loadConfig } from "../../src/config.js";
import { startSimulator, type Simulator } from "../../src/simulator/index.js";
import { createLogger } from "../../src/telemetry/logger.js";
import { createTelemetry } from "../../src/telemetry/telemetry.js";
import { grpcJsClient, llmClient, type ProtocolName } from "./clients.js";
import { seededDataDir } from "./pglite-template.js";

/** The simulator's start options (its API key, scripted answers...). */
export type SimulatorOptions = NonNullable<Parameters<typeof startSimulator>[0]>;

export interface HarnessOptions {
  /** The environment the config is read from, over PORT=0, DATA_DIR (the seeded copy) and LEDGER_FLUSH_MS=20. */
  env?: Record<string, string>;
  /** Start the upstream simulator first (`true` for its defaults). */
  simulator?: SimulatorOptions | true;
  /** A catalogue, passed as LLM_CONFIG; as a function it gets the simulator's base URL (requires `simulator`). */
  catalogue?: string | ((upstreamUrl: string) => string);
  /** Spans into `exporter`, log lines into `logLines` (at `logLevel`, default info); without it the log is silent. */
  observe?: { spans?: boolean; logLevel?: string };
  newRequestId?: AppOptions["newRequestId"];
}

export interface Harness {
  app: App;
  port: number;
  baseUrl: string;
  /** The service's data directory (DATA_DIR), which also holds the catalogue file; removed by close(). */
  dir: string;
  /** A user key of tenant "acme". */
  key: string;
  /** An admin key of tenant "ops". */
  adminKey: string;
  /** The upstream simulator, when one was asked for. */
  sim: Simulator | undefined;
  /** Finished spans (recorded only with `observe.spans`). */
  exporter: InMemorySpanExporter;
  /** Every log line written so far, as written (only with `observe`). */
  logLines: string[];
  /** A connect-node client of LlmService over `protocol` (default gRPC), with `key` (default the user key; null for none). */
  client(protocol?: ProtocolName, key?: string | null): Client<typeof LlmService>;
  /** A plain @grpc/grpc-js client of LlmService (close it when done). */
  grpcJs(): ReturnType<typeof grpcJsClient>;
  /** Shuts the service down, then the simulator, and removes the directory. */
  close(): Promise<void>;
}

function lineCollector(lines: string[]): Writable {
  return new Writable({
    write(chunk: Buffer | string, _encoding, callback) {
      for (const line of chunk.toString().split("\n")) if (line.trim() !== "") lines.push(line);
      callback();
    },
  });
}

export async function startHarness(options: HarnessOptions = {}): Promise<Harness> {
  const dir = seededDataDir("llm-test-");
  let sim: Simulator | undefined;
  try {
    if (options.simulator !== undefined) sim = await startSimulator(options.simulator === true ? {} : options.simulator);
    const env: Record<string, string> = { PORT: "0", DATA_DIR: dir, LEDGER_FLUSH_MS: "20" };
    if (options.catalogue !== undefined) {
      if (typeof options.catalogue === "function" && sim === undefined) throw new Error("a catalogue function needs the simulator");
      const text = typeof options.catalogue === "function" ? options.catalogue(sim!.url) : options.catalogue;
      writeFileSync(join(dir, "catalogue.yaml"), text);
      env["LLM_CONFIG"] = join(dir, "catalogue.yaml");
    }
    const config = loadConfig({ ...env, ...options.env });
    const exporter = new InMemorySpanExporter();
    const logLines: string[] = [];
    const appOptions: AppOptions = { logger: createLogger("error", { silent: true }) };
    if (options.observe !== undefined) {
      const telemetry = createTelemetry(config.telemetry, {
        processMetrics: false,
        ...(options.observe.spans ? { spanProcessors: [new SimpleSpanProcessor({ exporter })] } : {}),
      });
      appOptions.telemetry = telemetry;
      appOptions.logger = createLogger(options.observe.logLevel ?? "info", { stream: lineCollector(logLines), context: () => telemetry.tracing.logFields() });
    }
    if (options.newRequestId !== undefined) appOptions.newRequestId = options.newRequestId;
    const app = await startApp(config, appOptions);
    const key = (await app.keys.create({ name: "test", tenant: "acme" })).secret;
    const adminKey = (await app.keys.create({ name: "admin", tenant: "ops", role: "admin" })).secret;
    const baseUrl = `http://127.0.0.1:${app.transport.port}`;
    return {
      app,
      port: app.transport.port,
      baseUrl,
      dir,
      key,
      adminKey,
      sim,
      exporter,
      logLines,
      client: (protocol = "grpc", clientKey = key) => llmClient(baseUrl, protocol, clientKey ?? undefined),
      grpcJs: () => grpcJsClient(LlmService, app.transport.port),
      async close() {
        await app.shutdown();
        await sim?.close();
        rmSync(dir, { recursive: true, force: true });
      },
    };
  } catch (err) {
    await sim?.close();
    rmSync(dir, { recursive: true, force: true });
    throw err;
  }
}
