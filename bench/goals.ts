/**
 * The headline of `npm run bench`: issue 14's goals with what this run measured and whether each
 * is met, the CPU per call of every target beside the floors and the peers, and the CPU per
 * streamed token. Plain functions of the run's figures; run.ts gathers them.
 */
import { fmt, fmtSigned, table } from "./stats.ts";

export interface CpuEntry {
  target: string;
  protocol: string;
  /** Median over the rounds. */
  micros: number;
  rounds: number[];
  /** Calls per round (0: a timed run, the warm-up included). */
  calls: number;
  errors: number;
}

export interface StreamEntry {
  target: string;
  streams: number;
  cpuPerToken: number | undefined;
  complete: number;
  stallFree: number;
  errors: number;
  rssOpenKiB: number | undefined;
}

export interface GoalFigures {
  /** CPU µs per call at c=32 (medians). */
  gatewayConnect?: number;
  gatewayGrpc?: number;
  portkey?: number;
  /** Everything on vs bare: from the unique-prompt runs (cache miss + write) and from h2load's one prompt. */
  onUnique?: number;
  bareUnique?: number;
  onSamePrompt?: number;
  bareSamePrompt?: number;
  cacheHit?: number;
  /** c=1 p50 ms. */
  c1ConnectP50?: number;
  c1NodeFloorP50?: number;
  c1GrpcP50?: number;
  c1GrpcFloorP50?: number;
  /** CPU µs per token at `fewStreams` concurrent streams. */
  fewStreams: number;
  tokenGrpc?: number;
  tokenConnect?: number;
  /** The largest stream run (1000 in a full run), per protocol. */
  manyStreams: number;
  manyGrpc?: StreamEntry;
  manyConnect?: StreamEntry;
}

const yes = (met: boolean | undefined): string => (met === undefined ? "n/a" : met ? "yes" : "no");
const ratio = (a: number | undefined, b: number | undefined): number | undefined => (a === undefined || b === undefined || b === 0 ? undefined : a / b);
const all = (...xs: (boolean | undefined)[]): boolean | undefined => (xs.some((x) => x === undefined) ? undefined : xs.every((x) => x));
const MB = 1e6;

function streamsMet(e: StreamEntry | undefined, n: number): boolean | undefined {
  if (!e) return undefined;
  return e.complete === n && e.stallFree >= 0.99 * n && (e.rssOpenKiB ?? Infinity) * 1024 <= 300 * MB;
}

function streamsText(label: string, e: StreamEntry | undefined, n: number): string {
  if (!e) return `${label} n/a`;
  return `${label} ${e.complete}/${n} complete, ${fmt((e.stallFree / n) * 100, 1)}% stall-free, peak RSS ${fmt(((e.rssOpenKiB ?? Number.NaN) * 1024) / MB, 0)} MB`;
}

/** The goals table: goal, target, measured, met. */
export function goalsTable(f: GoalFigures): string {
  const unaryConnect = ratio(f.gatewayConnect, f.portkey);
  const unaryGrpc = ratio(f.gatewayGrpc, f.portkey);
  const onUnique = ratio(f.onUnique, f.bareUnique);
  const onSame = ratio(f.onSamePrompt, f.bareSamePrompt);
  const addedConnect = f.c1ConnectP50 !== undefined && f.c1NodeFloorP50 !== undefined ? f.c1ConnectP50 - f.c1NodeFloorP50 : undefined;
  const addedGrpc = f.c1GrpcP50 !== undefined && f.c1GrpcFloorP50 !== undefined ? f.c1GrpcP50 - f.c1GrpcFloorP50 : undefined;
  const le = (x: number | undefined, bound: number): boolean | undefined => (x === undefined ? undefined : x <= bound);
  const rows: string[][] = [
    [
      "unary CPU/call, embedded defaults, vs Portkey's (c=32)",
      "≤ 0.5×",
      unaryConnect === undefined
        ? `n/a (no Portkey: BENCH_PEERS=portkey); Connect ${fmt(f.gatewayConnect, 0)} µs, gRPC ${fmt(f.gatewayGrpc, 0)} µs`
        : `Connect ${fmt(unaryConnect)}× (${fmt(f.gatewayConnect, 0)} / ${fmt(f.portkey, 0)} µs), gRPC ${fmt(unaryGrpc)}× (${fmt(f.gatewayGrpc, 0)} µs)`,
      yes(all(le(unaryConnect, 0.5), le(unaryGrpc, 0.5))),
    ],
    [`streamed token CPU, gRPC (${f.fewStreams} streams, start included)`, "≤ 20 µs", `${fmt(f.tokenGrpc, 0)} µs`, yes(le(f.tokenGrpc, 20))],
    [`streamed token CPU, Connect HTTP/1.1 (${f.fewStreams} streams)`, "≤ 20 µs", `${fmt(f.tokenConnect, 0)} µs`, yes(le(f.tokenConnect, 20))],
    [
      "everything on CPU/call vs bare (c=32, gRPC)",
      "≤ 1.25×",
      `${fmt(onUnique)}× unique prompts, cache miss + write (${fmt(f.onUnique, 0)} / ${fmt(f.bareUnique, 0)} µs); ${fmt(onSame)}× one prompt, cache not used (${fmt(f.onSamePrompt, 0)} / ${fmt(f.bareSamePrompt, 0)} µs)`,
      yes(all(le(onUnique, 1.25), le(onSame, 1.25))),
    ],
    [
      "c=1 added latency p50 over the Node floor",
      "≤ 0.3 ms",
      `Connect ${fmtSigned(addedConnect)} ms over node:http + undici (HTTP/1.1); gRPC ${fmtSigned(addedGrpc)} ms over the h2 + node:http floor`,
      yes(all(le(addedConnect, 0.3), le(addedGrpc, 0.3))),
    ],
    [
      `${f.manyStreams.toLocaleString("en")} concurrent streams`,
      "all complete, ≥ 99% stall-free, RSS ≤ 300 MB",
      `${streamsText("gRPC", f.manyGrpc, f.manyStreams)}; ${streamsText("Connect", f.manyConnect, f.manyStreams)}`,
      yes(all(streamsMet(f.manyGrpc, f.manyStreams), streamsMet(f.manyConnect, f.manyStreams))),
    ],
    ["cache hit CPU/call (bare, gRPC, c=32)", "≤ 100 µs", `${fmt(f.cacheHit, 0)} µs`, yes(le(f.cacheHit, 100))],
  ];
  return table(["goal (issue 14)", "target", "measured", "met"], rows, 4);
}

/** CPU µs per call of every target, with its ratio to the floors and to Portkey. */
export function cpuTable(entries: CpuEntry[], refs: { go?: string; node?: string; portkey?: string }): string {
  const ref = (name: string | undefined): number | undefined => entries.find((e) => e.target === name)?.micros;
  const [go, node, portkey] = [ref(refs.go), ref(refs.node), ref(refs.portkey)];
  const times = (x: number, base: number | undefined): string => (base === undefined ? "–" : `${fmt(x / base)}×`);
  const rows = entries.map((e) => [
    e.target,
    e.protocol,
    fmt(e.micros, 0),
    e.rounds.map((r) => fmt(r, 0)).join(" / "),
    times(e.micros, go),
    times(e.micros, node),
    times(e.micros, portkey),
    String(e.errors),
  ]);
  return table(["CPU per call at c=32 (utime+stime of the process)", "protocol", "µs/call", "rounds", "× Go floor", "× Node floor", "× Portkey", "errors"], rows, 2);
}

/** CPU µs per streamed token, completion and RSS per target and stream count. */
export function streamTable(entries: StreamEntry[]): string {
  const rows = entries.map((e) => [
    e.target,
    String(e.streams),
    fmt(e.cpuPerToken, 0),
    `${e.complete}/${e.streams}`,
    `${e.stallFree}/${e.streams}`,
    String(e.errors),
    fmt(((e.rssOpenKiB ?? Number.NaN) * 1024) / MB, 0),
  ]);
  return table(["CPU per streamed token (start included)", "streams", "µs/token", "complete", "stall-free", "errors", "peak RSS MB"], rows);
}
