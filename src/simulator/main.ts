/**
 * `npm run simulator`: the upstream simulator as a command, for benchmarks and demos.
 * Flags win over environment variables (SIM_PORT, SIM_LATENCY_MS, …); the host stays
 * loopback unless --host says otherwise. Stops on SIGINT/SIGTERM.
 */
import { parseArgs } from "node:util";
import { DIALECTS } from "./dialects.js";
import { KnobError, parseKnob } from "./knobs.js";
import { startSimulator } from "./server.js";
import type { SimulatorKnobs, SimulatorOptions } from "./types.js";

/** flag → knob; the env variable is SIM_ + the flag upper-cased with underscores. */
const KNOB_FLAGS: Record<string, keyof SimulatorKnobs> = {
  "latency-ms": "latencyMs",
  "ttft-ms": "ttftMs",
  "inter-token-ms": "interTokenMs",
  "output-tokens": "outputTokens",
  status: "status",
  "retry-after": "retryAfter",
  fault: "fault",
  text: "text",
  "cached-tokens": "cachedTokens",
  "cache-write-tokens": "cacheWriteTokens",
  "reasoning-tokens": "reasoningTokens",
  json: "json",
};

const USAGE = `usage: simulator [--port 8090] [--host 127.0.0.1] [--api-key KEY] [--models a,b]
                 [--latency-ms N] [--ttft-ms N] [--inter-token-ms N] [--output-tokens N]
                 [--status 429|500|503|…] [--retry-after SECONDS|HTTP-DATE]
                 [--fault reset|stall|malformed[:n]|cut-after:n|stall-after:n|error-after:n]
                 [--text lorem|echo] [--cached-tokens N] [--cache-write-tokens N] [--reasoning-tokens N]
                 [--json valid|invalid|not-json]
Each flag can also come from SIM_<FLAG> in the environment (SIM_PORT, SIM_LATENCY_MS, …).
Per request, the same knobs are x-sim-<flag> headers (x-sim-latency-ms, x-sim-fault, …),
plus x-sim-fail-times / x-sim-fail-key and x-sim-tag.
`;

function envName(flag: string): string {
  return `SIM_${flag.toUpperCase().replaceAll("-", "_")}`;
}

function parseCli(argv: readonly string[], env: Record<string, string | undefined>): SimulatorOptions {
  const flags = ["port", "host", "api-key", "models", ...Object.keys(KNOB_FLAGS)];
  const { values } = parseArgs({
    args: [...argv],
    options: {
      ...Object.fromEntries(flags.map((f) => [f, { type: "string" as const }])),
      help: { type: "boolean", short: "h" },
    },
    strict: true,
  });
  if (values.help === true) {
    process.stdout.write(USAGE);
    process.exit(0);
  }
  const get = (flag: string): string | undefined => {
    const v = (values as Record<string, string | boolean | undefined>)[flag];
    return typeof v === "string" ? v : env[envName(flag)];
  };
  const opts: SimulatorOptions = {};
  const port = get("port") ?? "8090";
  if (!/^\d{1,5}$/.test(port) || Number(port) > 65_535) throw new KnobError(`--port must be 0–65535, got ${port}`);
  opts.port = Number(port);
  opts.host = get("host") ?? "127.0.0.1";
  const apiKey = get("api-key");
  if (apiKey !== undefined && apiKey.length > 0) opts.apiKey = apiKey;
  const models = get("models");
  if (models !== undefined) opts.models = models.split(",").map((m) => m.trim()).filter((m) => m.length > 0);
  for (const [flag, key] of Object.entries(KNOB_FLAGS)) {
    const v = get(flag);
    if (v !== undefined && v.length > 0) parseKnob(opts, key, v, `--${flag}`);
  }
  return opts;
}

async function main(): Promise<void> {
  let opts: SimulatorOptions;
  try {
    opts = parseCli(process.argv.slice(2), process.env);
  } catch (err) {
    process.stderr.write(`simulator: ${err instanceof Error ? err.message : String(err)}\n\n${USAGE}`);
    process.exit(2);
  }
  const sim = await startSimulator(opts);
  const width = Math.max(...DIALECTS.map((d) => d.chatPath.length)) + 2;
  const routes = DIALECTS.map((d) => `  ${d.banner.label.padEnd(10)} ${sim.url}${d.chatPath.padEnd(width)} (${d.banner.env(sim.url)})\n`);
  process.stdout.write(`upstream simulator listening on ${sim.url}\n${routes.join("")}`);
  let stopping = false;
  const stop = (signal: string) => {
    if (stopping) process.exit(1);
    stopping = true;
    process.stdout.write(`simulator: ${signal}, stopping\n`);
    sim.close().then(
      () => process.exit(0),
      () => process.exit(1),
    );
  };
  process.on("SIGINT", () => stop("SIGINT"));
  process.on("SIGTERM", () => stop("SIGTERM"));
}

main().catch((err: unknown) => {
  process.stderr.write(`simulator: failed to start: ${err instanceof Error ? err.message : String(err)}\n`);
  process.exit(1);
});
