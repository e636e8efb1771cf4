/**
 * sdk/ts as the package a user installs: `npm run build:sdk` compiles it (with the generated code it
 * re-exports) into sdk/ts/dist, and a project that has it in node_modules imports it by name, in
 * Node and under the "browser" condition a bundler uses, with its types, and calls a live service.
 */
import { execFile } from "node:child_process";
import { mkdirSync, mkdtempSync, rmSync, symlinkSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { promisify } from "node:util";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { startTestServer, type TestServer } from "../helpers/server.js";

const run = promisify(execFile);
const ROOT = fileURLToPath(new URL("../../", import.meta.url));
const SDK = join(ROOT, "sdk/ts");

let server: TestServer;
let project: string;

beforeAll(async () => {
  const [started] = await Promise.all([
    startTestServer(),
    (async () => {
      rmSync(join(SDK, "dist"), { recursive: true, force: true });
      await run(process.execPath, [join(ROOT, "node_modules/typescript/bin/tsc"), "-p", join(SDK, "tsconfig.json")], { cwd: ROOT });
    })(),
  ]);
  server = started;
  // A user's project with the SDK installed (as `npm install ./sdk/ts` links it).
  project = mkdtempSync(join(tmpdir(), "llm-sdk-user-"));
  mkdirSync(join(project, "node_modules/@llm-service"), { recursive: true });
  symlinkSync(SDK, join(project, "node_modules/@llm-service/sdk"), "dir");
  writeFileSync(join(project, "package.json"), JSON.stringify({ name: "user-project", private: true, type: "module" }));
}, 120_000);

afterAll(async () => {
  await server?.close();
  if (project) rmSync(project, { recursive: true, force: true });
});

async function node(script: string, args: string[] = []): Promise<string> {
  writeFileSync(join(project, "main.mjs"), script);
  const { stdout } = await run(process.execPath, [...args, "main.mjs"], {
    cwd: project,
    env: { ...process.env, LLM_BASE_URL: server.baseUrl, LLM_API_KEY: server.key },
    timeout: 20_000,
  });
  return stdout;
}

describe("@llm-service/sdk, built and installed", () => {
  it("imports by name in Node: createLlmClient, the generated types and the gen/* modules", async () => {
    const out = await node(`
      import { createLlmClient, Role, LlmService, ErrorInfoSchema, errorInfoOf } from "@llm-service/sdk";
      import { GenerateRequestSchema } from "@llm-service/sdk/gen/llm/v1/llm_service_pb.js";
      import { Health } from "@llm-service/sdk/gen/grpc/health/v1/health_pb.js";
      const llm = createLlmClient({ baseUrl: process.env.LLM_BASE_URL, apiKey: process.env.LLM_API_KEY, protocol: "grpc" });
      const res = await llm.generate({ model: "sim/echo", messages: [{ role: Role.USER, content: "from the package" }] });
      let reason;
      try { await llm.generate({ model: "nope", messages: [{ role: Role.USER, content: "x" }] }); } catch (err) { reason = errorInfoOf(err)?.reason; }
      console.log(JSON.stringify({
        text: res.text,
        reason,
        methods: LlmService.methods.map((m) => m.name),
        schemas: [GenerateRequestSchema.typeName, ErrorInfoSchema.typeName, Health.typeName],
      }));
    `);
    expect(JSON.parse(out)).toEqual({
      text: "from the package",
      reason: "MODEL_NOT_FOUND",
      methods: ["Generate", "StreamGenerate", "BatchGenerate", "ListModels", "GetUsage", "Embed"],
      schemas: ["llm.v1.GenerateRequest", "google.rpc.ErrorInfo", "grpc.health.v1.Health"],
    });
  });

  it("resolves to the fetch-based build under the browser condition (what Vite and other bundlers use)", async () => {
    const out = await node(
      `
      import { createLlmClient } from "@llm-service/sdk";
      let grpc;
      try { createLlmClient({ baseUrl: "http://x", protocol: "grpc" }); } catch (err) { grpc = err.message; }
      const llm = createLlmClient({ baseUrl: process.env.LLM_BASE_URL, apiKey: process.env.LLM_API_KEY, protocol: "grpc-web" });
      const { models } = await llm.listModels({});
      console.log(JSON.stringify({ grpc, models: models.length }));
    `,
      ["--conditions=browser"],
    );
    const result = JSON.parse(out) as { grpc: string; models: number };
    expect(result.grpc).toMatch(/fetch cannot read/);
    expect(result.models).toBeGreaterThanOrEqual(2);
  });

  it("type-checks a user's TypeScript against the package's declarations", async () => {
    writeFileSync(
      join(project, "tsconfig.json"),
      JSON.stringify({
        compilerOptions: { target: "ES2022", module: "NodeNext", moduleResolution: "NodeNext", strict: true, noEmit: true, skipLibCheck: true, types: [], lib: ["ES2023", "DOM"] },
        files: ["user.ts"],
      }),
    );
    writeFileSync(
      join(project, "user.ts"),
      `
      import { createLlmClient, Role, type GenerateResponse, type LlmClient } from "@llm-service/sdk";
      import { createLlmClient as createWebClient } from "@llm-service/sdk/web";
      import type { Model } from "@llm-service/sdk/gen/llm/v1/llm_service_pb.js";
      const llm: LlmClient = createLlmClient({ baseUrl: "http://127.0.0.1:8080", apiKey: "k", protocol: "grpc" });
      const web: LlmClient = createWebClient({ baseUrl: "/", protocol: "grpc-web" });
      export async function ask(): Promise<[GenerateResponse, Model[]]> {
        const res = await llm.generate({ model: "sim/echo", messages: [{ role: Role.USER, content: "hi" }] }, { timeoutMs: 5000 });
        const { models } = await web.listModels({});
        return [res, models];
      }
      // @ts-expect-error: the generated types are checked, not hidden behind "any"
      void llm.generate({ model: 42 });
    `,
    );
    const tsc = join(ROOT, "node_modules/typescript/bin/tsc");
    await expect(run(process.execPath, [tsc, "-p", join(project, "tsconfig.json")], { cwd: project })).resolves.toBeDefined();
  });
});
