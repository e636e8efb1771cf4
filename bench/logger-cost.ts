/**
 * CPU per access line of the logger (src/telemetry/logger.ts, winston with one format and one
 * transport) beside what it replaced and what came before that, each taken from git history at bench
 * time (`git show <commit>:src/telemetry/logger.ts` into .tmp/bench/), so the old code is measured as
 * it was and kept nowhere in src/. `npm run bench` prints its table after the headline (3 rounds);
 * `npm run bench:logger` runs it alone (builds the server, then `node bench/logger-cost.ts`; env
 * LOGGER_LINES, LOGGER_ROUNDS). The rows:
 *
 * - fields only: the access line's fields built and nothing logged, the loop's own cost;
 * - this logger, as built in dist/ (the build `npm run bench` makes first);
 * - the hand-written JSON-lines writer of 9f6dcdc, which replaced winston (issue 18 brings it back);
 * - winston as a12c53d first used it: timestamp, context and redact formats, then winston's json, and
 *   the Console transport (the chain measured at ~3.5% of the gateway's CPU).
 *
 * Each round of each logger runs in a child process of its own with stdout on /dev/null, as the
 * service logs to stdout: the child builds N access lines the way app.ts does (its call fields from a
 * context function, the ids from the tracing context, bigint cost as a string), logs them PER_TICK to
 * an event-loop turn (as calls finishing one after another leave it), waits for the last write, and
 * reports its CPU time (user + system, so the write(2) counts) ÷ N. The `logger` column subtracts the
 * `fields only` row.
 */
import { execFileSync, fork } from "node:child_process";
import { mkdirSync, writeFileSync } from "node:fs";
import { join, resolve } from "node:path";
import { pathToFileURL } from "node:url";
import { fmt, table } from "./stats.ts";

/** For this file's entry point; `npm run bench` passes its own. */
const N = Number(process.env.LOGGER_LINES ?? 100_000);
const ROUNDS = Number(process.env.LOGGER_ROUNDS ?? 5);
const WARMUP = 20_000;
const PER_TICK = 8;
const ROOT = resolve(import.meta.dirname, "..");

interface Variant {
  name: string;
  /** A file exporting createLogger(level, { context }), or none for the fields-only row. */
  module?: string;
}

interface AccessLogger {
  info(message: string, fields: Record<string, unknown>): unknown;
}
type CreateLogger = (level: string, options: { context: () => Record<string, string> }) => AccessLogger;

/** One round in this process (the child's side): µs of CPU per line. */
async function child(module: string | undefined, lines: number): Promise<number> {
  const ids = () => ({ requestId: crypto.randomUUID(), traceId: "4bf92f3577b34da6a3ce929d0e0e4736", spanId: "00f067aa0ba902b7" });
  let logger: AccessLogger = { info: () => undefined };
  if (module !== undefined) {
    const { createLogger } = (await import(pathToFileURL(module).href)) as { createLogger: CreateLogger };
    logger = createLogger("info", { context: ids });
  }
  const costUsdNanos = 8_000n;
  const access = (i: number): void => {
    // As app.ts's onFinish writes it (fields of one finished call).
    const callFields = ids();
    logger.info("call", {
      ...callFields,
      requestId: callFields.requestId,
      clientRequestId: `client-${i}`,
      tenant: "acme",
      keyId: "b8aee70a-4c1f-4a63-9a55-0d8f0c1e2f3a",
      model: "sim/echo",
      provider: "sim",
      status: "ok",
      reason: null,
      cached: false,
      latencyMs: 12.5 + (i % 7),
      ttftMs: 10.25,
      attempts: 1,
      inputTokens: 7 + (i % 5),
      outputTokens: 16,
      costUsdNanos: costUsdNanos.toString(),
    });
  };
  const turn = () => new Promise<void>((done) => setImmediate(done));
  const run = async (count: number): Promise<void> => {
    for (let i = 0; i < count; i++) {
      access(i);
      if (i % PER_TICK === PER_TICK - 1) await turn();
    }
    await turn(); // the buffered loggers write their last lines at the end of a turn
  };
  await run(WARMUP);
  const before = process.cpuUsage();
  await run(lines);
  const used = process.cpuUsage(before);
  return (used.user + used.system) / lines;
}

/** The logger file at a commit, written under .tmp/bench/ (inside the repo, so `winston` resolves). */
function fromHistory(commit: string, name: string): string | undefined {
  try {
    const text = execFileSync("git", ["show", `${commit}:src/telemetry/logger.ts`], { cwd: ROOT, encoding: "utf8", stdio: ["ignore", "pipe", "ignore"] });
    const dir = join(ROOT, ".tmp/bench/logger-cost");
    mkdirSync(dir, { recursive: true });
    const file = join(dir, `${name}.ts`);
    writeFileSync(file, text);
    return file;
  } catch {
    return undefined; // not a git checkout, or history without that commit
  }
}

/** One round of one logger in a child process (pinned to `cpu` with taskset when given): µs per line. */
function round(module: string | undefined, lines: number, cpu: number | undefined): Promise<number> {
  return new Promise((done, fail) => {
    const proc = fork(import.meta.filename, ["--child", module ?? "", String(lines)], { execArgv: [], stdio: ["ignore", "ignore", "inherit", "ipc"] });
    if (cpu !== undefined && proc.pid !== undefined) execFileSync("taskset", ["-p", "-c", String(cpu), String(proc.pid)], { stdio: "ignore" });
    let result: number | undefined;
    proc.on("message", (m) => (result = Number(m)));
    proc.on("error", fail);
    proc.on("exit", (code) => (code === 0 && result !== undefined ? done(result) : fail(new Error(`a logger-cost child exited with ${code}`))));
  });
}

export interface LoggerCostRow {
  name: string;
  /** Median CPU µs per line over the rounds, the loop's own cost included. */
  microsPerLine: number;
  /** The same less the `fields only` row's: the logger's own cost. */
  loggerMicrosPerLine?: number;
  rounds: number[];
}

/**
 * Every logger's rounds, interleaved; the table as text and the rows. `npm run bench` calls it with
 * its own counts (bench/run.ts), this file's entry point with LOGGER_LINES and LOGGER_ROUNDS.
 */
export async function measureLoggerCost(options: { lines: number; rounds: number; cpu?: number; progress?: (line: string) => void }): Promise<{ text: string; rows: LoggerCostRow[] }> {
  const { lines, rounds, cpu, progress = () => undefined } = options;
  const variants: Variant[] = [
    { name: "fields only (nothing logged)" },
    { name: "winston, this logger (src/telemetry/logger.ts)", module: join(ROOT, "dist/src/telemetry/logger.js") },
  ];
  const writer = fromHistory("9f6dcdc", "writer-9f6dcdc");
  const stock = fromHistory("a12c53d", "winston-a12c53d");
  if (writer) variants.push({ name: "JSON-lines writer it replaced (9f6dcdc)", module: writer });
  if (stock) variants.push({ name: "winston stock chain, Console transport (a12c53d)", module: stock });
  const results = variants.map(() => [] as number[]);
  for (let r = 0; r < rounds; r++) {
    for (const [i, v] of variants.entries()) {
      progress(`logger cost, round ${r + 1}/${rounds}: ${v.name}`);
      results[i]!.push(await round(v.module, lines, cpu));
    }
  }
  const median = (xs: number[]): number => [...xs].sort((a, b) => a - b)[Math.floor((xs.length - 1) / 2)]!;
  const base = median(results[0]!);
  const rows: LoggerCostRow[] = variants.map((v, i) => ({
    name: v.name,
    microsPerLine: median(results[i]!),
    ...(v.module === undefined ? {} : { loggerMicrosPerLine: median(results[i]!) - base }),
    rounds: results[i]!,
  }));
  const writerCost = rows.find((r) => writer !== undefined && r.name.startsWith("JSON-lines writer"))?.loggerMicrosPerLine;
  const cells = rows.map((row) => [
    row.name,
    fmt(row.microsPerLine, 2),
    fmt(row.loggerMicrosPerLine, 2),
    row.loggerMicrosPerLine === undefined || writerCost === undefined ? "" : `${fmt(row.loggerMicrosPerLine / writerCost, 2)}×`,
    row.rounds.map((x) => fmt(x, 2)).join(", "),
  ]);
  const title = `Logger CPU µs per access line (bench/logger-cost.ts): ${lines} lines per round, ${PER_TICK} per event-loop turn, stdout on /dev/null, ${rounds} interleaved round(s), median`;
  const note = writer && stock ? "" : "\n(not a git checkout with that history: the old loggers' rows are left out)";
  return { text: `${title}\n\n${table(["", "µs/line", "logger µs/line", "÷ writer", "rounds"], cells)}${note}`, rows };
}

if (import.meta.main) {
  if (process.argv[2] === "--child") {
    const perLine = await child(process.argv[3] || undefined, Number(process.argv[4]));
    process.send?.(String(perLine));
  } else {
    const { text } = await measureLoggerCost({ lines: N, rounds: ROUNDS, progress: (line) => void process.stderr.write(`${line}\n`) });
    process.stdout.write(`${text}\n`);
  }
}
