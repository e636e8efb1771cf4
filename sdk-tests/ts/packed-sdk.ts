/**
 * @llm-service/sdk as a user gets it: `npm pack` in sdk/ts, the tarball installed with npm from the
 * registry into two empty projects, and a small script in each that calls a real service.
 *
 * - A Node project installs the tarball with @bufbuild/protobuf, @connectrpc/connect and
 *   @connectrpc/connect-node; it must not get @connectrpc/connect-web. Its script calls Generate
 *   and StreamGenerate over gRPC, and its TypeScript type-checks against the packed declarations.
 * - A browser project installs connect-web instead; it must not get connect-node. Its script runs
 *   with the "browser" export condition (what bundlers use) and calls ListModels and Generate over
 *   gRPC-web with fetch.
 *
 * The peer versions are the root package-lock's, so the test does not drift with new releases.
 * The service is the real one (`node --import tsx src/main.ts`) on a free loopback port with PGlite
 * in a temporary directory. Run by `scripts/sdk-test.sh ts`, with the project's Node (and npm) on
 * PATH. The registry must be reachable; when it is not, the test says so and is skipped, except
 * under CI=true, where that fails.
 */
import { execFile, spawn, type ChildProcess } from "node:child_process";
import { existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { createInterface } from "node:readline";
import { fileURLToPath } from "node:url";
import { promisify } from "node:util";

const run = promisify(execFile);
const ROOT = fileURLToPath(new URL("../../", import.meta.url));
const SDK = join(ROOT, "sdk/ts");
const STEP_TIMEOUT_MS = 180_000;

interface Service {
  baseUrl: string;
  key: string;
  stop(): Promise<void>;
}

function fail(message: string): never {
  console.error(`packed-sdk: FAILED: ${message}`);
  process.exit(1);
}

function check(condition: boolean, message: string): void {
  if (!condition) fail(message);
}

async function npm(args: string[], cwd: string): Promise<string> {
  const { stdout } = await run("npm", [...args, "--no-audit", "--no-fund", "--no-update-notifier"], {
    cwd,
    timeout: STEP_TIMEOUT_MS,
    maxBuffer: 16 * 1024 * 1024,
  });
  return stdout;
}

/** The version of each package in the root package-lock (what `npm ci` installs here). */
function lockedVersions(names: string[]): string[] {
  const lock = JSON.parse(readFileSync(join(ROOT, "package-lock.json"), "utf8")) as { packages: Record<string, { version?: string }> };
  return names.map((name) => {
    const version = lock.packages[`node_modules/${name}`]?.version;
    if (!version) fail(`${name} is not in package-lock.json`);
    return `${name}@${version}`;
  });
}

async function registryReachable(cwd: string): Promise<boolean> {
  try {
    await run("npm", ["ping"], { cwd, timeout: 30_000 });
    return true;
  } catch {
    return false;
  }
}

/** The real service, started like a user starts it; its address and key come from its first log lines. */
async function startService(dir: string): Promise<Service> {
  const env: Record<string, string> = {
    PATH: process.env["PATH"] ?? "",
    HOME: process.env["HOME"] ?? tmpdir(),
    HOST: "127.0.0.1",
    PORT: "0",
    DATA_DIR: dir,
    LOG_LEVEL: "info",
  };
  const child: ChildProcess = spawn(join(ROOT, "node_modules/.bin/node"), ["--import", "tsx", "src/main.ts"], {
    cwd: ROOT,
    env,
    stdio: ["ignore", "pipe", "pipe"],
  });
  const output: string[] = [];
  let address: string | undefined;
  let key: string | undefined;
  const ready = new Promise<void>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`the service was not ready within 90 s:\n${output.join("\n")}`)), 90_000);
    const seen = (): void => {
      if (address && key) {
        clearTimeout(timer);
        resolve();
      }
    };
    createInterface({ input: child.stdout! }).on("line", (line) => {
      output.push(line);
      try {
        const entry = JSON.parse(line) as { message?: string; address?: string };
        if (entry.message === "listening" && typeof entry.address === "string") address ??= entry.address;
      } catch {
        // not a JSON log line
      }
      seen();
    });
    createInterface({ input: child.stderr! }).on("line", (line) => {
      output.push(line);
      key ??= /export LLM_API_KEY=(\S+)/.exec(line)?.[1];
      seen();
    });
    child.once("exit", (code) => {
      clearTimeout(timer);
      reject(new Error(`the service exited (${String(code)}) before it was ready:\n${output.join("\n")}`));
    });
  });
  try {
    await ready;
  } catch (err) {
    child.kill("SIGKILL");
    throw err;
  }
  return {
    baseUrl: `http://${address!}`,
    key: key!,
    async stop() {
      if (child.exitCode !== null) return;
      const exited = new Promise<void>((resolve) => child.once("exit", () => resolve()));
      child.kill("SIGTERM");
      const timer = setTimeout(() => child.kill("SIGKILL"), 20_000);
      await exited;
      clearTimeout(timer);
    },
  };
}

function makeProject(scratch: string, name: string): string {
  const dir = join(scratch, name);
  mkdirSync(dir);
  writeFileSync(join(dir, "package.json"), JSON.stringify({ name, private: true, type: "module" }));
  return dir;
}

async function runScript(project: string, script: string, service: Service, nodeArgs: string[] = []): Promise<unknown> {
  writeFileSync(join(project, "main.mjs"), script);
  const { stdout } = await run(process.execPath, [...nodeArgs, "main.mjs"], {
    cwd: project,
    env: { ...process.env, LLM_BASE_URL: service.baseUrl, LLM_API_KEY: service.key },
    timeout: 30_000,
  });
  return JSON.parse(stdout) as unknown;
}

function same(got: unknown, want: unknown, what: string): void {
  const [a, b] = [JSON.stringify(got), JSON.stringify(want)];
  check(a === b, `${what}: got ${a}, want ${b}`);
}

const NODE_SCRIPT = `
import { createLlmClient, Role, errorInfoOf } from "@llm-service/sdk";
const llm = createLlmClient({ baseUrl: process.env.LLM_BASE_URL, apiKey: process.env.LLM_API_KEY, protocol: "grpc" });
const res = await llm.generate({ model: "sim/echo", messages: [{ role: Role.USER, content: "from the tarball" }] });
const events = [];
for await (const { event } of llm.streamGenerate({ model: "sim/echo", messages: [{ role: Role.USER, content: "one two" }] })) events.push(event.case);
let reason;
try { await llm.generate({ model: "no-such-model", messages: [{ role: Role.USER, content: "x" }] }); } catch (err) { reason = errorInfoOf(err)?.reason; }
console.log(JSON.stringify({ text: res.text, events, reason }));
`;

const USER_TS = `
import { createLlmClient, Role, type GenerateResponse, type LlmClient } from "@llm-service/sdk";
import type { Model } from "@llm-service/sdk/gen/llm/v1/llm_service_pb.js";
const llm: LlmClient = createLlmClient({ baseUrl: "http://127.0.0.1:8080", apiKey: "k", protocol: "grpc" });
export async function ask(): Promise<[GenerateResponse, Model[]]> {
  const res = await llm.generate({ model: "sim/echo", messages: [{ role: Role.USER, content: "hi" }] }, { timeoutMs: 5000 });
  const { models } = await llm.listModels({});
  return [res, models];
}
// @ts-expect-error: the packed declarations type the messages
void llm.generate({ model: 42 });
`;

const BROWSER_SCRIPT = `
import { createLlmClient, Role } from "@llm-service/sdk";
const llm = createLlmClient({ baseUrl: process.env.LLM_BASE_URL, apiKey: process.env.LLM_API_KEY, protocol: "grpc-web" });
const { models } = await llm.listModels({});
const res = await llm.generate({ model: "echo", messages: [{ role: Role.USER, content: "from the browser build" }] });
let grpc;
try { createLlmClient({ baseUrl: "http://x", protocol: "grpc" }); } catch (err) { grpc = err.message.includes("fetch cannot read"); }
console.log(JSON.stringify({ models: models.map((m) => m.id), text: res.text, grpcRefused: grpc }));
`;

async function main(): Promise<void> {
  const started = Date.now();
  const scratch = mkdtempSync(join(tmpdir(), "llm-sdk-packed-"));
  let starting: Promise<Service> | undefined;
  try {
    if (!(await registryReachable(scratch))) {
      const message = "the npm registry is not reachable (npm ping failed), so the packed SDK cannot be installed";
      if (process.env["CI"] === "true") fail(`${message}; CI=true requires this test`);
      console.log(`packed-sdk: SKIPPED: ${message}`);
      return;
    }
    // The service starts (PGlite's first start takes seconds) while the package is packed and installed.
    starting = startService(join(scratch, "data"));
    starting.catch(() => undefined); // awaited below; this keeps an early failure from going unhandled

    // npm pack runs the package's prepack (a clean tsc build into sdk/ts/dist).
    const packDir = join(scratch, "pack");
    mkdirSync(packDir);
    await npm(["pack", "--silent", "--pack-destination", packDir], SDK);
    const tarballs = readdirSync(packDir).filter((f) => f.endsWith(".tgz"));
    check(tarballs.length === 1, `npm pack wrote ${tarballs.length} tarballs: ${tarballs.join(", ")}`);
    const tarball = join(packDir, tarballs[0]!);
    const { stdout: listing } = await run("tar", ["-tzf", tarball]);
    for (const file of ["package/dist/sdk/ts/src/node.js", "package/dist/sdk/ts/src/node.d.ts", "package/dist/sdk/ts/src/browser.d.ts", "package/dist/gen/ts/llm/v1/llm_service_pb.d.ts"]) {
      check(listing.split("\n").includes(file), `the tarball lacks ${file}`);
    }

    const nodeProject = makeProject(scratch, "node-app");
    const browserProject = makeProject(scratch, "browser-app");
    await Promise.all([
      npm(["install", tarball, ...lockedVersions(["@bufbuild/protobuf", "@connectrpc/connect", "@connectrpc/connect-node"])], nodeProject),
      npm(["install", tarball, ...lockedVersions(["@bufbuild/protobuf", "@connectrpc/connect", "@connectrpc/connect-web"])], browserProject),
    ]);
    // Optional peers: each app has only the transport it asked for. npm ls fails on a missing or invalid peer.
    check(!existsSync(join(nodeProject, "node_modules/@connectrpc/connect-web")), "the Node app got @connectrpc/connect-web");
    check(!existsSync(join(browserProject, "node_modules/@connectrpc/connect-node")), "the browser app got @connectrpc/connect-node");
    await npm(["ls", "--all"], nodeProject);
    await npm(["ls", "--all"], browserProject);

    // The user's TypeScript against the packed declarations (this repository's tsc; the app has none).
    writeFileSync(join(nodeProject, "user.ts"), USER_TS);
    writeFileSync(
      join(nodeProject, "tsconfig.json"),
      JSON.stringify({
        compilerOptions: { target: "ES2022", module: "NodeNext", moduleResolution: "NodeNext", strict: true, noEmit: true, skipLibCheck: true, types: [], lib: ["ES2023", "DOM"] },
        files: ["user.ts"],
      }),
    );
    await run(process.execPath, [join(ROOT, "node_modules/typescript/bin/tsc"), "-p", "tsconfig.json"], { cwd: nodeProject, timeout: STEP_TIMEOUT_MS });

    const service = await starting;
    same(
      await runScript(nodeProject, NODE_SCRIPT, service),
      { text: "from the tarball", events: ["started", "delta", "delta", "completed"], reason: "MODEL_NOT_FOUND" },
      "the Node app's calls",
    );
    same(
      await runScript(browserProject, BROWSER_SCRIPT, service, ["--conditions=browser"]),
      { models: ["sim/echo", "sim/lorem", "sim/embed"], text: "from the browser build", grpcRefused: true },
      "the browser app's calls",
    );
    console.log(`packed-sdk: ok: ${tarballs[0]!} installs and calls the service from a Node and a browser app (${((Date.now() - started) / 1000).toFixed(1)} s)`);
  } finally {
    await (await starting?.catch(() => undefined))?.stop();
    rmSync(scratch, { recursive: true, force: true });
  }
}

main().catch((err: unknown) => fail(err instanceof Error ? (err.stack ?? err.message) : String(err)));
