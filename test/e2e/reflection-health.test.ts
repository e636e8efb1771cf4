/**
 * Health checking and server reflection over the real server: grpc-js,
 * connect-node and grpcurl, the tools an operator reaches for first.
 */
import { execFile } from "node:child_process";
import http2 from "node:http2";
import { resolve as resolvePath } from "node:path";
import { create, fromBinary, toBinary } from "@bufbuild/protobuf";
import { FileDescriptorProtoSchema } from "@bufbuild/protobuf/wkt";
import * as grpc from "@grpc/grpc-js";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import {
  Health,
  HealthCheckRequestSchema,
  HealthCheckResponse_ServingStatus as ServingStatus,
  type HealthCheckResponse,
} from "../../gen/ts/grpc/health/v1/health_pb.js";
import { ServerReflection as ServerReflectionV1 } from "../../gen/ts/grpc/reflection/v1/reflection_pb.js";
import { ServerReflection as ServerReflectionV1alpha } from "../../gen/ts/grpc/reflection/v1alpha/reflection_pb.js";
import { LlmService } from "../../gen/ts/llm/v1/llm_service_pb.js";
import { connectClient, grpcJsClient, type ProtocolName } from "../helpers/clients.js";
import { startTestServer, type TestServer } from "../helpers/server.js";

let server: TestServer;
beforeAll(async () => {
  server = await startTestServer();
}, 60_000);
afterAll(async () => {
  await server?.close();
});

const ALL_SERVICES = [
  "grpc.health.v1.Health",
  "grpc.reflection.v1.ServerReflection",
  "grpc.reflection.v1alpha.ServerReflection",
  "llm.v1.LlmService",
];

function healthCheck(client: ReturnType<typeof grpcJsClient>, service: string): Promise<HealthCheckResponse> {
  return new Promise((resolve, reject) => {
    (client["check"] as Function).call(
      client,
      create(HealthCheckRequestSchema, { service }),
      (err: grpc.ServiceError | null, res: HealthCheckResponse) => (err ? reject(err) : resolve(res)),
    );
  });
}

describe("grpc.health.v1.Health over the server", () => {
  it("Check is SERVING for the server and for LlmService via grpc-js", async () => {
    const client = grpcJsClient(Health, server.port);
    try {
      expect((await healthCheck(client, "")).status).toBe(ServingStatus.SERVING);
      expect((await healthCheck(client, LlmService.typeName)).status).toBe(ServingStatus.SERVING);
    } finally {
      client.close();
    }
  });

  it("Check of an unknown service is NOT_FOUND via grpc-js", async () => {
    const client = grpcJsClient(Health, server.port);
    try {
      const err = await healthCheck(client, "nope.v1.Nope").then(
        () => undefined,
        (e: grpc.ServiceError) => e,
      );
      expect(err?.code).toBe(grpc.status.NOT_FOUND);
    } finally {
      client.close();
    }
  });

  it("Check answers a plain Connect JSON POST over HTTP/1.1, as a load-balancer probe would send", async () => {
    const res = await fetch(`${server.baseUrl}/grpc.health.v1.Health/Check`, {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: "{}",
    });
    expect(res.status).toBe(200);
    expect(await res.json()).toEqual({ status: "SERVING" });
  });

  it("Watch streams the current status, then each change, via grpc-js", async () => {
    const client = grpcJsClient(Health, server.port);
    const service = "watch.v1.Probe";
    server.app.health.set(service, ServingStatus.SERVING);
    const seen: ServingStatus[] = [];
    const call = (client["watch"] as Function).call(
      client,
      create(HealthCheckRequestSchema, { service }),
    ) as grpc.ClientReadableStream<HealthCheckResponse>;
    try {
      await new Promise<void>((resolve, reject) => {
        call.on("error", reject);
        call.on("data", (res: HealthCheckResponse) => {
          seen.push(res.status);
          // Each status is set only after the previous one has arrived.
          if (seen.length === 1) server.app.health.set(service, ServingStatus.NOT_SERVING);
          if (seen.length === 2) server.app.health.set(service, ServingStatus.SERVING);
          if (seen.length === 3) resolve();
        });
      });
      expect(seen).toEqual([ServingStatus.SERVING, ServingStatus.NOT_SERVING, ServingStatus.SERVING]);
    } finally {
      call.cancel();
      client.close();
    }
  });

  it("Watch ends with DEADLINE_EXCEEDED (grpc-status 4), not OK, at the deadline sent in grpc-timeout", async () => {
    const session = http2.connect(server.baseUrl);
    try {
      const stream = session.request({
        ":method": "POST",
        ":path": "/grpc.health.v1.Health/Watch",
        "content-type": "application/grpc",
        te: "trailers",
        "grpc-timeout": "300m",
      });
      const body = toBinary(HealthCheckRequestSchema, create(HealthCheckRequestSchema, { service: "" }));
      const envelope = Buffer.alloc(5 + body.length);
      envelope.writeUInt32BE(body.length, 1);
      envelope.set(body, 5);
      stream.end(envelope);
      // A raw HTTP/2 client: grpc-js or connect-node would end the call at the deadline themselves.
      const trailers = await new Promise<http2.IncomingHttpHeaders>((resolve, reject) => {
        stream.on("trailers", resolve);
        stream.on("error", reject);
        stream.resume();
      });
      expect(trailers["grpc-status"]).toBe(String(grpc.status.DEADLINE_EXCEEDED));
    } finally {
      session.close();
    }
  });

  it("Watch over connect-node (gRPC) reports SERVICE_UNKNOWN for an unknown service and ends on cancel", async () => {
    const client = connectClient(Health, server.baseUrl, "grpc");
    const controller = new AbortController();
    const seen: ServingStatus[] = [];
    const listenersBefore = server.app.health.listenerCount;
    await expect(
      (async () => {
        for await (const res of client.watch({ service: "never.v1.Registered" }, { signal: controller.signal })) {
          seen.push(res.status);
          controller.abort();
        }
      })(),
    ).rejects.toThrow();
    expect(seen).toEqual([ServingStatus.SERVICE_UNKNOWN]);
    // The server drops its subscription once the stream is reset; poll, bounded.
    const deadline = Date.now() + 2000;
    while (server.app.health.listenerCount > listenersBefore && Date.now() < deadline) {
      await new Promise((r) => setTimeout(r, 10));
    }
    expect(server.app.health.listenerCount).toBe(listenersBefore);
  });
});

describe.each<[string, ProtocolName, typeof ServerReflectionV1 | typeof ServerReflectionV1alpha]>([
  ["v1", "grpc", ServerReflectionV1],
  ["v1alpha", "grpc", ServerReflectionV1alpha],
  ["v1", "connect-h2", ServerReflectionV1],
])("server reflection %s over connect-node (%s)", (_version, protocol, service) => {
  async function ask(requests: { case: "listServices" | "fileContainingSymbol"; value: string }[]) {
    // The two reflection versions share their message shapes.
    const client = connectClient(service as typeof ServerReflectionV1, server.baseUrl, protocol);
    async function* stream() {
      for (const messageRequest of requests) yield { host: "", messageRequest };
    }
    const answers = [];
    for await (const res of client.serverReflectionInfo(stream())) answers.push(res.messageResponse);
    return answers;
  }

  it("list_services names LlmService, Health and both reflection services", async () => {
    const [answer] = await ask([{ case: "listServices", value: "" }]);
    if (answer?.case !== "listServicesResponse") throw new Error(`unexpected answer ${answer?.case}`);
    expect(answer.value.service.map((s) => s.name).sort()).toEqual(ALL_SERVICES);
  });

  it("file_containing_symbol returns llm_service.proto with its imports, once per stream", async () => {
    const [first, second] = await ask([
      { case: "fileContainingSymbol", value: "llm.v1.LlmService" },
      { case: "fileContainingSymbol", value: "llm.v1.GenerateRequest" },
    ]);
    if (first?.case !== "fileDescriptorResponse" || second?.case !== "fileDescriptorResponse") {
      throw new Error("expected file descriptors");
    }
    const names = first.value.fileDescriptorProto.map((b) => fromBinary(FileDescriptorProtoSchema, b).name);
    expect(names[0]).toBe("llm/v1/llm_service.proto");
    expect(names).toEqual(expect.arrayContaining(["google/protobuf/timestamp.proto", "google/rpc/status.proto"]));
    // The second answer on the same stream carries only the requested file.
    expect(second.value.fileDescriptorProto.map((b) => fromBinary(FileDescriptorProtoSchema, b).name)).toEqual([
      "llm/v1/llm_service.proto",
    ]);
  });
});

// grpcurl: what an engineer types first. Installed by scripts/grpcurl.sh (its last line is the binary's path).

function run(file: string, args: string[], timeoutMs: number): Promise<{ code: number; stdout: string; stderr: string }> {
  return new Promise((resolve, reject) => {
    execFile(file, args, { timeout: timeoutMs, encoding: "utf8" }, (err, stdout, stderr) => {
      if (err && typeof err.code !== "number") {
        reject(new Error(`${file} did not run: ${err.message}\n${stderr}`));
        return;
      }
      resolve({ code: err ? Number(err.code) : 0, stdout, stderr });
    });
  });
}

async function locateGrpcurl(): Promise<{ path?: string; problem?: string }> {
  try {
    const { code, stdout, stderr } = await run("bash", [resolvePath(import.meta.dirname, "../../scripts/grpcurl.sh")], 120_000);
    const path = stdout.trim().split("\n").at(-1)?.trim();
    if (code !== 0 || !path) return { problem: `scripts/grpcurl.sh exited ${code}: ${stderr.trim()}` };
    return { path };
  } catch (err) {
    return { problem: String(err) };
  }
}

/** Splits grpcurl's output, a sequence of pretty-printed JSON objects, into values. */
function jsonSequence(text: string): unknown[] {
  const values: unknown[] = [];
  let depth = 0;
  let start = -1;
  let inString = false;
  for (let i = 0; i < text.length; i++) {
    const ch = text[i];
    if (inString) {
      if (ch === "\\") i++;
      else if (ch === '"') inString = false;
    } else if (ch === '"') {
      inString = true;
    } else if (ch === "{") {
      if (depth++ === 0) start = i;
    } else if (ch === "}" && --depth === 0) {
      values.push(JSON.parse(text.slice(start, i + 1)));
    }
  }
  return values;
}

const grpcurl = await locateGrpcurl();
const mustRunGrpcurl = process.env.CI === "true";
if (grpcurl.problem && !mustRunGrpcurl) {
  console.warn(`skipping the grpcurl tests: grpcurl not found (${grpcurl.problem})`);
}

describe.skipIf(grpcurl.problem !== undefined && !mustRunGrpcurl)("grpcurl against the server", () => {
  const grpcurlAt = (args: string[]) => {
    if (!grpcurl.path) throw new Error(`grpcurl is required in CI but was not found: ${grpcurl.problem}`);
    return run(grpcurl.path, ["-plaintext", "-max-time", "10", ...args], 15_000);
  };
  const address = () => `127.0.0.1:${server.port}`;
  const auth = () => ["-H", `authorization: Bearer ${server.key}`];

  it("list shows every service", async () => {
    const { code, stdout, stderr } = await grpcurlAt([address(), "list"]);
    expect(stderr).toBe("");
    expect(code).toBe(0);
    expect(stdout.trim().split("\n").sort()).toEqual(ALL_SERVICES);
  });

  it("describe llm.v1.LlmService shows its six methods", async () => {
    const { code, stdout } = await grpcurlAt([address(), "describe", "llm.v1.LlmService"]);
    expect(code).toBe(0);
    expect(stdout).toContain("service LlmService {");
    for (const rpc of ["Generate", "StreamGenerate", "BatchGenerate", "ListModels", "GetUsage", "Embed"]) {
      expect(stdout).toMatch(new RegExp(`rpc ${rpc} \\( \\.llm\\.v1\\.${rpc}Request \\) returns \\( (stream )?\\.llm\\.v1\\.${rpc}Response \\)`));
    }
    expect(stdout).toContain("returns ( stream .llm.v1.StreamGenerateResponse )");
  });

  it("Generate with a JSON body answers the echoed text", async () => {
    const body = JSON.stringify({ model: "sim/echo", messages: [{ role: "ROLE_USER", content: "hello" }] });
    const { code, stdout, stderr } = await grpcurlAt([...auth(), "-d", body, address(), "llm.v1.LlmService/Generate"]);
    expect(stderr).toBe("");
    expect(code).toBe(0);
    const [res] = jsonSequence(stdout) as { text?: string; model?: string; usage?: { outputTokens?: string } }[];
    expect(res?.text).toBe("hello");
    expect(res?.model).toBe("sim/echo");
    // int64 fields are JSON strings.
    expect(res?.usage?.outputTokens).toBe("1");
  });

  it("StreamGenerate prints started, the deltas, then completed", async () => {
    const body = JSON.stringify({ model: "sim/echo", messages: [{ role: "ROLE_USER", content: "one two three" }] });
    const { code, stdout } = await grpcurlAt([...auth(), "-d", body, address(), "llm.v1.LlmService/StreamGenerate"]);
    expect(code).toBe(0);
    const events = jsonSequence(stdout) as Record<string, { text?: string }>[];
    const kinds = events.map((e) => Object.keys(e)[0]);
    expect(kinds).toEqual(["started", "delta", "delta", "delta", "completed"]);
    expect(events.map((e) => e["delta"]?.text ?? "").join("")).toBe("one two three");
  });

  it("grpc.health.v1.Health/Check answers SERVING", async () => {
    const { code, stdout } = await grpcurlAt([address(), "grpc.health.v1.Health/Check"]);
    expect(code).toBe(0);
    expect(jsonSequence(stdout)).toEqual([{ status: "SERVING" }]);
  });

  it("a call without a key fails with code Unauthenticated and the ErrorInfo detail", async () => {
    const body = JSON.stringify({ model: "sim/echo", messages: [{ role: "ROLE_USER", content: "hi" }] });
    const { code, stderr } = await grpcurlAt(["-d", body, address(), "llm.v1.LlmService/Generate"]);
    expect(code).not.toBe(0);
    expect(stderr).toContain("Code: Unauthenticated");
    // Reflection serves google/rpc/error_details.proto, so grpcurl decodes the detail.
    expect(stderr).toContain('"@type": "type.googleapis.com/google.rpc.ErrorInfo"');
    expect(stderr).toContain('"reason": "UNAUTHENTICATED"');
    expect(stderr).toContain('"domain": "llm-service"');
  });
});
