/**
 * SIGTERM drain of the real process: `node --import tsx src/main.ts` as a
 * child, driven over real sockets, its JSON log read from stdout.
 */
import { existsSync, mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { create } from "@bufbuild/protobuf";
import { Code, ConnectError } from "@connectrpc/connect";
import * as grpc from "@grpc/grpc-js";
import { afterEach, beforeAll, describe, expect, it } from "vitest";
import {
  Health,
  HealthCheckRequestSchema,
  HealthCheckResponse_ServingStatus as ServingStatus,
  type HealthCheckResponse,
} from "../../gen/ts/grpc/health/v1/health_pb.js";
import { GenerateRequestSchema, LlmService, Role, type StreamGenerateResponse } from "../../gen/ts/llm/v1/llm_service_pb.js";
import { openDatabase } from "../../src/ledger/database.js";
import { grpcJsClient, grpcMetadata, llmClient } from "../helpers/clients.js";
import { killServiceProcesses, spawnService, withTimeout } from "../helpers/service-process.js";
import { seededDataDir } from "../helpers/pglite-template.js";

const ROOT = resolve(import.meta.dirname, "../..");

afterEach(() => {
  // A failed test must not leave its child running.
  killServiceProcesses();
});

beforeAll(() => {
  expect(existsSync(join(ROOT, "node_modules/tsx")), "tsx (a devDependency) runs src/main.ts").toBe(true);
});

describe("SIGTERM drain of the real process", () => {
  it("stops taking new calls, finishes the streams in flight (HTTP/2 and HTTP/1.1), records them and exits 0", async () => {
    const dataDir = seededDataDir("llm-drain-");
    const watcher: { client?: ReturnType<typeof grpcJsClient>; call?: grpc.ClientReadableStream<HealthCheckResponse> } = {};
    try {
      const service = spawnService({
        PORT: "0",
        DATA_DIR: dataDir,
        LOG_LEVEL: "info",
        SHUTDOWN_GRACE_MS: "10000",
        SIM_INTER_TOKEN_MS: "0",
      });
      const listening = await service.waitForLog((l) => l.message === "listening", 30_000);
      const address = String(listening["address"]);
      const port = Number(address.split(":").at(-1));
      expect(port).toBeGreaterThan(0);
      const key = (await service.waitForStderr(/export LLM_API_KEY=(\S+)/, 5000))[1] ?? "";
      const baseUrl = `http://127.0.0.1:${port}`;
      const prompt = { model: "sim/lorem", messages: [{ role: Role.USER, content: "drain me gently" }] };

      // The text the stream must deliver in full: sim/lorem is deterministic per prompt.
      const expected = await llmClient(baseUrl, "grpc", key).generate(prompt);
      expect(expected.usage?.outputTokens).toBeGreaterThanOrEqual(16n);

      // A health Watch opened before the signal, on its own connection.
      const statuses: ServingStatus[] = [];
      watcher.client = grpcJsClient(Health, port);
      const watchCall = (watcher.client["watch"] as Function).call(
        watcher.client,
        create(HealthCheckRequestSchema, { service: "" }),
      ) as grpc.ClientReadableStream<HealthCheckResponse>;
      watcher.call = watchCall;
      let sawServing: () => void = () => undefined;
      const serving = new Promise<void>((resolve) => (sawServing = resolve));
      const notServing = new Promise<void>((resolve, reject) => {
        watchCall.on("data", (res: HealthCheckResponse) => {
          statuses.push(res.status);
          if (res.status === ServingStatus.SERVING) sawServing();
          if (res.status === ServingStatus.NOT_SERVING) resolve();
        });
        watchCall.on("error", (err: grpc.ServiceError) => {
          // The drain ends the watch when it closes connections; before NOT_SERVING that is a failure.
          if (!statuses.includes(ServingStatus.NOT_SERVING)) reject(err);
        });
      });
      notServing.catch(() => undefined); // awaited below; not an unhandled rejection meanwhile
      // grpc-js connects lazily: be sure the watch is established before the signal.
      await withTimeout(Promise.race([serving, notServing]), 5000, "the health watch's first status");

      // Two streams in flight when the signal comes: gRPC over HTTP/2 and Connect over HTTP/1.1.
      const inFlight = (["grpc", "connect-h1"] as const).map((protocol) => {
        const requestId = `drain-${protocol}-${Date.now()}`;
        const events: StreamGenerateResponse["event"][] = [];
        let firstDelta: () => void = () => undefined;
        const started = new Promise<void>((resolve) => (firstDelta = resolve));
        const done = (async () => {
          const stream = llmClient(baseUrl, protocol, key).streamGenerate(
            { ...prompt, metadata: { "sim-inter-token-ms": "40" } },
            { headers: { "x-request-id": requestId } },
          );
          for await (const msg of stream) {
            events.push(msg.event);
            if (msg.event.case === "delta") firstDelta();
          }
        })();
        done.catch(() => undefined); // awaited below; not an unhandled rejection meanwhile
        return { protocol, requestId, events, started, done };
      });
      await withTimeout(Promise.all(inFlight.map((s) => s.started)), 5000, "the first deltas");
      expect(service.child.kill("SIGTERM")).toBe(true);

      // Draining starts promptly: the log says so and the watch sees NOT_SERVING.
      await service.waitForLog((l) => l.message === "draining", 2000);
      await withTimeout(notServing, 1000, "NOT_SERVING on the health watch");
      expect(statuses[0]).toBe(ServingStatus.SERVING);

      // A fresh health check: NOT_SERVING if the server still answers, otherwise refused.
      const freshHealth = grpcJsClient(Health, port);
      const check = await new Promise<{ status?: ServingStatus; code?: grpc.status }>((resolve) =>
        (freshHealth["check"] as Function).call(
          freshHealth,
          create(HealthCheckRequestSchema, { service: "" }),
          { deadline: Date.now() + 2000 },
          (err: grpc.ServiceError | null, res: HealthCheckResponse) => resolve(err ? { code: err.code } : { status: res.status }),
        ),
      );
      freshHealth.close();
      if (check.status !== undefined) expect(check.status).toBe(ServingStatus.NOT_SERVING);
      else expect(check.code).toBe(grpc.status.UNAVAILABLE);

      // A new call on a fresh connection is refused, over gRPC and over HTTP/1.1.
      const freshGrpc = grpcJsClient(LlmService, port);
      const refused = await new Promise<grpc.ServiceError | null>((resolve) =>
        (freshGrpc["generate"] as Function).call(
          freshGrpc,
          create(GenerateRequestSchema, prompt),
          grpcMetadata(key),
          { deadline: Date.now() + 2000 },
          (err: grpc.ServiceError | null) => resolve(err),
        ),
      );
      freshGrpc.close();
      expect(refused?.code).toBe(grpc.status.UNAVAILABLE);
      const h1Error = await llmClient(baseUrl, "connect-h1", key)
        .generate(prompt, { timeoutMs: 2000 })
        .then(
          () => undefined,
          (err: unknown) => ConnectError.from(err),
        );
      expect(h1Error?.code).toBe(Code.Unavailable);

      // The streams in flight complete normally, with every delta.
      const outputTokens = new Map<string, bigint | undefined>();
      for (const stream of inFlight) {
        await withTimeout(stream.done, 8000, `the in-flight ${stream.protocol} stream`);
        const { events } = stream;
        expect(events[0]?.case).toBe("started");
        const last = events.at(-1);
        if (last?.case !== "completed") throw new Error(`the ${stream.protocol} stream ended with ${last?.case}, not completed`);
        const deltas = events.filter((e) => e.case === "delta").map((e) => e.value.text);
        expect(deltas.join("")).toBe(expected.text);
        expect(BigInt(deltas.length)).toBe(last.value.usage?.outputTokens);
        outputTokens.set(stream.requestId, last.value.usage?.outputTokens);
      }

      // Then the process exits 0, having logged that it stopped.
      expect(await withTimeout(service.exited, 10_000, "process exit")).toBe(0);
      expect(service.logs.some((l) => l.message === "stopped")).toBe(true);
      expect(service.logs.some((l) => l.level === "error")).toBe(false);
      // Nothing but the stream held the drain: an open health watch must not keep it waiting for the whole grace.
      expect(service.logs.find((l) => l.message?.startsWith("grace period over"))).toBeUndefined();

      // The ledger rows of the drained streams were flushed before exit.
      const database = await openDatabase({ dataDir });
      try {
        const rows = await database.db
          .selectFrom("generations")
          .selectAll()
          .where("client_request_id", "in", [...outputTokens.keys()])
          .execute();
        expect(rows).toHaveLength(2);
        for (const row of rows) {
          expect(row.status).toBe("ok");
          expect(row.model).toBe("sim/lorem");
          expect(BigInt(row.output_tokens)).toBe(outputTokens.get(row.client_request_id ?? ""));
        }
      } finally {
        await database.close();
      }
    } finally {
      watcher.call?.cancel();
      watcher.client?.close();
      rmSync(dataDir, { recursive: true, force: true });
    }
  }, 45_000);

  it("exits non-zero naming PORT when PORT is not a number", async () => {
    const dataDir = mkdtempSync(join(tmpdir(), "llm-badcfg-"));
    try {
      const service = spawnService({ PORT: "abc", DATA_DIR: dataDir });
      const code = await withTimeout(service.exited, 15_000, "process exit");
      expect(typeof code).toBe("number"); // an exit, not a signal
      expect(code).not.toBe(0);
      expect(service.stderr()).toMatch(/bad configuration: .*PORT/);
      expect(service.logs.some((l) => l.message === "listening")).toBe(false);
    } finally {
      rmSync(dataDir, { recursive: true, force: true });
    }
  });
});
