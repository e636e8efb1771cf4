/**
 * Starting what the benchmark measures: upstream simulators, the raw echo ceiling, gateways
 * (bare and everything-on), Redis and the optional Portkey peer.
 */
import { execFile } from "node:child_process";
import { existsSync, readFileSync, writeFileSync, mkdirSync } from "node:fs";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { promisify } from "node:util";
import { freePort, log, portOpen, type Child, type Procs, rssKiB, waitUntil } from "./procs.ts";

const run = promisify(execFile);

export const ROOT = fileURLToPath(new URL("..", import.meta.url));
export const NODE = process.execPath;
/** CPUs when pinning: the gateways on one, upstream, echo, load generators and this process on the other. */
export const GATEWAY_CPU = 0;
export const LOAD_CPU = 1;

/**
 * The node flags a checkout's `npm start` runs the gateway with (its package.json, `node <flags> dist/src/main.js`;
 * the Dockerfile's CMD has the same, a test keeps them equal), so the benchmark measures the gateway as it ships.
 */
export function startFlags(root: string): string[] {
  const pkg = JSON.parse(readFileSync(join(root, "package.json"), "utf8")) as { scripts?: Record<string, string> };
  const args = (pkg.scripts?.["start"] ?? "").trim().split(/\s+/);
  return args[0] === "node" ? args.slice(1, -1) : [];
}

export interface Upstream {
  child: Child;
  port: number;
}

export async function startSimulator(procs: Procs, name: string, args: string[]): Promise<Upstream> {
  const port = await freePort();
  const child = procs.start(name, NODE, [join(ROOT, "dist/src/simulator/main.js"), "--port", String(port), ...args], { cpu: LOAD_CPU });
  await waitUntil(`${name} on port ${port}`, 30_000, () => !child.exited && portOpen(port));
  return { child, port };
}

export async function startEcho(procs: Procs): Promise<Upstream> {
  const port = await freePort();
  const child = procs.start("echo", NODE, [join(ROOT, "bench/echo-server.ts"), String(port)], { cpu: LOAD_CPU });
  await waitUntil(`echo server on port ${port}`, 30_000, () => !child.exited && portOpen(port));
  return { child, port };
}

/** A floor server (bench/floor-server.ts) on the gateways' CPU: one upstream call per Generate and nothing else. */
export async function startFloor(procs: Procs, upstreamPort: number, mode: "http" | "sdk"): Promise<Upstream> {
  const port = await freePort();
  const child = procs.start(`floor ${mode}`, NODE, [join(ROOT, "bench/floor-server.ts"), String(port), String(upstreamPort), mode], { cpu: GATEWAY_CPU });
  await waitUntil(`floor (${mode}) server on port ${port}`, 30_000, () => !child.exited && portOpen(port));
  return { child, port };
}

/** A Node floor on the OpenAI-style HTTP/1.1 API (bench/floor-proxy.ts), on the gateways' CPU. */
export async function startFloorProxy(procs: Procs, upstreamPort: number, mode: "node" | "sdk"): Promise<Upstream> {
  const port = await freePort();
  const child = procs.start(`floor ${mode} (HTTP/1.1)`, NODE, [join(ROOT, "bench/floor-proxy.ts"), String(port), String(upstreamPort), mode], { cpu: GATEWAY_CPU });
  await waitUntil(`floor (${mode}, HTTP/1.1) on port ${port}`, 30_000, () => !child.exited && portOpen(port));
  return { child, port };
}

/**
 * The compiled floor: bench/go-floor (httputil.ReverseProxy) built with the Go toolchain into the
 * work dir (GOFLAGS gains -mod=mod; GOPROXY as the machine has it), on the gateways' CPU.
 * A string says why it is absent (no Go, or the build failed).
 */
export async function startGoFloor(procs: Procs, workDir: string, upstreamPort: number): Promise<Upstream | string> {
  const bin = join(workDir, "go-floor");
  try {
    const env = { ...process.env, GOFLAGS: `${process.env.GOFLAGS ?? ""} -mod=mod`.trim() };
    await run("go", ["build", "-o", bin, "."], { cwd: join(ROOT, "bench/go-floor"), env, timeout: 300_000 });
  } catch (err) {
    return `go build failed: ${(err as Error).message.split("\n")[0]}`;
  }
  const port = await freePort();
  const child = procs.start("go floor", bin, ["-listen", `127.0.0.1:${port}`, "-upstream", `http://127.0.0.1:${upstreamPort}`], { cpu: GATEWAY_CPU });
  try {
    await waitUntil(`go floor on port ${port}`, 30_000, () => !child.exited && portOpen(port));
  } catch (err) {
    return `did not start: ${(err as Error).message}`;
  }
  return { child, port };
}

/** The catalogue: bench/echo → the 16-token simulator, bench/paced → the paced one. */
export function writeCatalogue(dir: string, simPort: number, pacedPort: number): string {
  const model = (id: string, port: number): string => `  - id: ${id}
    contextWindow: 8192
    maxOutputTokens: 4096
    price: { inputPerMillion: 0.5, outputPerMillion: 1.5 }
    deployments:
      - provider: openai
        model: gpt-4o-mini
        baseUrl: http://127.0.0.1:${port}/v1
        apiKeyEnv: BENCH_UPSTREAM_KEY
`;
  const path = join(dir, "catalogue.yaml");
  writeFileSync(path, `models:\n${model("bench/echo", simPort)}${model("bench/paced", pacedPort)}`);
  return path;
}

/**
 * Mints a key with limits far above anything the benchmark sends (run before that gateway starts:
 * PGlite is single-process). `env` carries DATABASE_URL when the gateway's keys live in Postgres.
 */
export async function mintKey(dataDir: string, env: Record<string, string> = {}): Promise<string> {
  mkdirSync(dataDir, { recursive: true });
  const { stdout } = await run(
    NODE,
    [join(ROOT, "dist/src/cli/keys.js"), "create", "--name", "bench", "--rpm", "100000000", "--tpm", "100000000000",
      "--concurrency", "1000000", "--budget-day", "1000000", "--budget-month", "10000000"],
    { env: gatewayEnv({ DATA_DIR: dataDir, ...env }), timeout: 120_000 },
  );
  const key = /^(llm_\S+)$/m.exec(stdout)?.[1];
  if (!key) throw new Error(`keys create printed no key: ${stdout}`);
  return key;
}

/** The environment without anything of the caller's that would change a gateway's configuration. */
function gatewayEnv(extra: Record<string, string>): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = {};
  for (const [k, v] of Object.entries(process.env)) {
    if (/^(REDIS_URL|DATABASE_URL|OTEL_|LLM_|SIM_|CACHE_|METRICS_PORT|LOG_LEVEL|PORT|HOST|DATA_DIR|TLS_)/.test(k)) continue;
    env[k] = v;
  }
  return { ...env, ...extra };
}

export interface Gateway {
  name: string;
  child: Child;
  port: number;
  apiKey: string;
  idleRssKiB?: number;
}

export interface GatewayOptions {
  name: string;
  workDir: string;
  /** The catalogue file; absent: the built-in sim catalogue (no LLM_CONFIG). */
  catalogue?: string;
  /** A key minted beforehand; without one, the development key the first start prints is used. */
  apiKey?: string;
  dataDir: string;
  env?: Record<string, string>;
  /** Flags for node before the script (--cpu-prof …). */
  nodeArgs?: string[];
}

export async function startGateway(procs: Procs, o: GatewayOptions): Promise<Gateway> {
  const port = await freePort();
  const stdoutFile = join(o.workDir, `${o.name}.stdout.log`);
  const stderrFile = join(o.workDir, `${o.name}.stderr.log`);
  const env = gatewayEnv({
    HOST: "127.0.0.1",
    PORT: String(port),
    DATA_DIR: o.dataDir,
    ...(o.catalogue !== undefined ? { LLM_CONFIG: o.catalogue } : {}),
    BENCH_UPSTREAM_KEY: "sk-bench",
    ...o.env,
  });
  const child = procs.start(o.name, NODE, [...startFlags(ROOT), ...(o.nodeArgs ?? []), join(ROOT, "dist/src/main.js")], {
    cpu: GATEWAY_CPU,
    // The whole environment: the caller's DATABASE_URL, REDIS_URL… must not reach a gateway that was not given them.
    env: env as Record<string, string>,
    replaceEnv: true,
    stdoutFile,
    stderrFile,
  });
  const stderr = (): string => (existsSync(stderrFile) ? readFileSync(stderrFile, "utf8") : "");
  const listening = (): boolean => existsSync(stdoutFile) && readFileSync(stdoutFile, "utf8").includes('"message":"listening"');
  try {
    await waitUntil(`${o.name} to listen on port ${port}`, 120_000, async () => {
      if (child.exited) throw new Error(`${o.name} exited during start-up: ${stderr().slice(-2000)}`);
      return listening() && (await portOpen(port));
    });
  } catch (err) {
    throw new Error(`${(err as Error).message}\n${stderr().slice(-2000)}`);
  }
  const apiKey = o.apiKey ?? /export LLM_API_KEY=(llm_\S+)/.exec(stderr())?.[1];
  if (!apiKey) throw new Error(`${o.name} printed no development key on stderr`);
  const gw: Gateway = { name: o.name, child, port, apiKey };
  const idle = rssKiB(child.pid);
  if (idle !== undefined) gw.idleRssKiB = idle;
  log(`${o.name} listening on 127.0.0.1:${port} (pid ${child.pid}, RSS ${((idle ?? 0) / 1024).toFixed(1)} MiB)`);
  return gw;
}

export interface RedisHandle {
  url: string;
  /** Stops the server when this run started it. */
  stop(): Promise<void>;
}

/** $REDIS_URL, or a throwaway server from scripts/redis.sh in our work dir; undefined when neither works. */
export async function redis(workDir: string): Promise<RedisHandle | undefined> {
  if (process.env.REDIS_URL) {
    log(`Redis: using REDIS_URL=${process.env.REDIS_URL}`);
    return { url: process.env.REDIS_URL, stop: async () => {} };
  }
  const dir = join(workDir, "redis");
  const env = { ...process.env, REDIS_DIR: dir, REDIS_PORT: String(await freePort()) };
  try {
    log("Redis: starting a throwaway server with scripts/redis.sh");
    const { stdout } = await run("bash", [join(ROOT, "scripts/redis.sh")], { env, timeout: 300_000 });
    const line = stdout.trim().split("\n").at(-1) ?? "";
    if (!line.startsWith("REDIS_URL=")) throw new Error(`scripts/redis.sh printed ${line}`);
    const url = line.slice("REDIS_URL=".length);
    log(`Redis: ${url}`);
    return {
      url,
      stop: async () => {
        await run("bash", [join(ROOT, "scripts/redis-stop.sh")], { env, timeout: 30_000 }).catch((err: Error) =>
          log(`scripts/redis-stop.sh failed: ${err.message}`),
        );
      },
    };
  } catch (err) {
    log(`Redis: not available (${(err as Error).message.split("\n")[0]}); the Redis rows will say n/a`);
    return undefined;
  }
}

export interface Peer {
  name: string;
  child: Child;
  port: number;
}

/**
 * Portkey's open-source gateway, installed under .tmp/bench/portkey (git-ignored; reused while it
 * holds a 1.15.x), on loopback. Two preloads: bench/loopback-only.ts (it binds every interface
 * otherwise) and bench/portkey-sse-fix.ts (without it every stream fails with `TypeError: immutable`).
 */
export async function startPortkey(procs: Procs, workDir: string): Promise<Peer | string> {
  const prefix = join(ROOT, ".tmp/bench/portkey");
  const pkgDir = join(prefix, "node_modules/@portkey-ai/gateway");
  const installed = (): string | undefined =>
    existsSync(join(pkgDir, "package.json")) ? (JSON.parse(readFileSync(join(pkgDir, "package.json"), "utf8")) as { version: string }).version : undefined;
  if (!installed()?.startsWith("1.15.")) {
    mkdirSync(prefix, { recursive: true });
    log(`Portkey: npm install --prefix ${prefix} @portkey-ai/gateway@1.15.x (this takes a while)`);
    try {
      await run("npm", ["install", "--prefix", prefix, "--no-audit", "--no-fund", "--no-save", "@portkey-ai/gateway@1.15.x"], {
        timeout: 300_000,
        maxBuffer: 16 * 1024 * 1024,
      });
    } catch (err) {
      return `npm install failed: ${(err as Error).message.split("\n")[0]}`;
    }
  }
  const pkg = JSON.parse(readFileSync(join(pkgDir, "package.json"), "utf8")) as { version: string; bin?: string | Record<string, string> };
  const bin = typeof pkg.bin === "string" ? pkg.bin : Object.values(pkg.bin ?? {})[0];
  if (!bin) return "the package has no bin";
  log(`Portkey: ${pkg.version} in ${prefix}; starting ${bin}`);
  const port = await freePort();
  // Its server takes --port=N but no host and binds every interface: the preload keeps it on loopback.
  const child = procs.start(
    "portkey",
    NODE,
    ["--import", join(ROOT, "bench/loopback-only.ts"), "--import", join(ROOT, "bench/portkey-sse-fix.ts"), join(pkgDir, bin), `--port=${port}`, "--headless"],
    { cpu: GATEWAY_CPU, stdoutFile: join(workDir, "portkey.stdout.log"), stderrFile: join(workDir, "portkey.stderr.log") },
  );
  try {
    await waitUntil(`portkey on port ${port}`, 60_000, () => !child.exited && portOpen(port));
  } catch (err) {
    return `did not start: ${(err as Error).message}`;
  }
  return { name: `portkey ${pkg.version}`, child, port };
}

/**
 * LiteLLM's proxy from a venv that bench/litellm-venv.sh builds from PyPI (or reuses) under
 * .tmp/bench/litellm-venv: one worker, LITELLM_LOG=ERROR, no database, no master key, spend logs
 * off, no master key (no auth, as for Portkey), the bundled model-price map
 * (LITELLM_LOCAL_MODEL_COST_MAP: nothing fetched at start), on loopback and the gateways' CPU. Model `gpt-4o-mini` goes to the simulator at `upstreamPort`.
 * A string says why it is absent.
 */
export async function startLiteLLM(procs: Procs, workDir: string, upstreamPort: number): Promise<Peer | string> {
  let venv: string;
  try {
    log("LiteLLM: bench/litellm-venv.sh (creates the venv on the first run; several minutes)");
    const { stdout } = await run("bash", [join(ROOT, "bench/litellm-venv.sh")], { timeout: 1_200_000, maxBuffer: 16 * 1024 * 1024 });
    venv = stdout.trim().split("\n").at(-1) ?? "";
  } catch (err) {
    return `venv failed: ${(err as Error).message.split("\n")[0]}`;
  }
  const version = readFileSync(join(venv, ".bench-ready"), "utf8").split("\n")[1] ?? "litellm";
  const config = join(workDir, "litellm.yaml");
  const model = (name: string, port: number): string => `  - model_name: ${name}
    litellm_params:
      model: openai/gpt-4o-mini
      api_base: http://127.0.0.1:${port}/v1
      api_key: sk-bench
`;
  writeFileSync(
    config,
    `model_list:\n${model("gpt-4o-mini", upstreamPort)}litellm_settings:\n  telemetry: false\n  turn_off_message_logging: true\ngeneral_settings:\n  disable_spend_logs: true\n`,
  );
  const port = await freePort();
  const env: Record<string, string> = {
    PATH: `${join(venv, "bin")}:${process.env.PATH ?? ""}`,
    HOME: process.env.HOME ?? workDir,
    LITELLM_LOG: "ERROR",
    LITELLM_LOCAL_MODEL_COST_MAP: "True",
    LITELLM_MODE: "PRODUCTION",
    // No master key: like Portkey here, no auth (it refuses to start keyless without this).
    LITELLM_DANGEROUSLY_PERMIT_WEAK_OR_UNSET_MASTER_KEY: "true",
  };
  const child = procs.start(
    "litellm",
    join(venv, "bin/litellm"),
    ["--config", config, "--host", "127.0.0.1", "--port", String(port), "--num_workers", "1"],
    { cpu: GATEWAY_CPU, env, replaceEnv: true, stdoutFile: join(workDir, "litellm.stdout.log"), stderrFile: join(workDir, "litellm.stderr.log") },
  );
  try {
    await waitUntil(`litellm on port ${port}`, 300_000, () => !child.exited && portOpen(port));
  } catch (err) {
    return `did not start: ${(err as Error).message}`;
  }
  return { name: version, child, port };
}
