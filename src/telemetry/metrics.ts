/**
 * The Prometheus metrics of one service instance, on a registry of its own (several instances
 * can live in one process: tests). Names follow the OpenTelemetry semantic conventions where
 * one exists (rpc.server.call.duration → rpc_server_call_duration_seconds, gen_ai.* → gen_ai_*),
 * and `llm_*` for the gateway's own. Every label is bounded: methods, status codes, catalogue
 * models and deployments, providers, error reasons, tenants — never request ids, prompts or keys.
 */
import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from "prom-client";

/** Prometheus cannot hold bigint: USD as a float is fine for a rate on a dashboard (the ledger keeps the exact sum). */
const NANOS_PER_USD = 1e9;

/** Label value for a model name that is not in the catalogue (a client's typo must not mint a series). */
export const OTHER = "_OTHER";

// Bucket boundaries: the semantic conventions' advice, stretched for long LLM calls where it stops short.
const RPC_BUCKETS = [0.005, 0.01, 0.025, 0.05, 0.075, 0.1, 0.25, 0.5, 0.75, 1, 2.5, 5, 7.5, 10, 30, 60, 120, 300];
const GEN_AI_DURATION_BUCKETS = [0.01, 0.02, 0.04, 0.08, 0.16, 0.32, 0.64, 1.28, 2.56, 5.12, 10.24, 20.48, 40.96, 81.92, 163.84];
const TOKEN_BUCKETS = [1, 4, 16, 64, 256, 1024, 4096, 16384, 65536, 262144, 1048576, 4194304];
const TTFT_BUCKETS = [0.001, 0.005, 0.01, 0.02, 0.04, 0.06, 0.08, 0.1, 0.25, 0.5, 0.75, 1, 2.5, 5, 7.5, 10];
const TPOT_BUCKETS = [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.075, 0.1, 0.15, 0.2, 0.3, 0.4, 0.5, 0.75, 1, 2.5];

export type CircuitStateLabel = "closed" | "half_open" | "open";
const CIRCUIT_VALUE: Record<string, number> = { closed: 0, half_open: 1, "half-open": 1, open: 2 };

/** One finished upstream attempt (router level). */
export interface AttemptSample {
  provider: string;
  /** The model name the provider knows. */
  deployment: string;
  /** OK or the error reason. */
  reason: string;
  durationSeconds: number;
  usage?: { inputTokens: number; outputTokens: number };
}

/** One finished gateway call. */
export interface CallSample {
  /** Catalogue model id, or OTHER. */
  model: string;
  provider: string;
  tenant: string;
  status: "ok" | "failed" | "cancelled";
  reason: string | null;
  cached: boolean;
  usage: { inputTokens: number; outputTokens: number };
  costUsdNanos: bigint;
  latencySeconds: number;
  timeToFirstTokenSeconds: number | null;
  cacheLookup: "hit" | "miss" | null;
  joinedFlight: boolean;
  /** For refusals: which limit and whose ("key" or "tenant"). */
  refusal?: { limit: string; scope: string };
}

export interface LedgerGauges {
  readonly pending: number;
  readonly spooled: number;
  readonly written: number;
  readonly dropped: number;
  readonly deadLettered: number;
}

export interface MetricsOptions {
  /** Node process metrics (CPU, memory, event loop lag, GC). Default true. */
  processMetrics?: boolean;
}

/** A counter fed from a monotonic total read at scrape time. */
function totalFrom(read: () => number): (this: Counter) => void {
  let last = 0;
  return function (this: Counter) {
    const now = read();
    if (now > last) this.inc(now - last);
    last = Math.max(last, now);
  };
}

export class GatewayMetrics {
  readonly registry = new Registry();

  private readonly rpcDuration: Histogram<"rpc_system_name" | "rpc_method" | "rpc_status_code">;
  private readonly rpcActive: Gauge<"rpc_method">;
  private readonly tokenUsage: Histogram<"gen_ai_operation_name" | "gen_ai_provider_name" | "gen_ai_request_model" | "gen_ai_token_type">;
  private readonly operationDuration: Histogram<"gen_ai_operation_name" | "gen_ai_provider_name" | "gen_ai_request_model" | "error_type">;
  private readonly timeToFirstToken: Histogram<"gen_ai_operation_name" | "gen_ai_provider_name" | "gen_ai_request_model">;
  private readonly timePerOutputToken: Histogram<"gen_ai_operation_name" | "gen_ai_provider_name" | "gen_ai_request_model">;
  private readonly requests: Counter<"model" | "provider" | "status" | "reason" | "cached">;
  private readonly cost: Counter<"tenant" | "model">;
  private readonly tokens: Counter<"tenant" | "model" | "type">;
  private readonly cacheLookups: Counter<"model" | "result">;
  private readonly flightJoins: Counter<"model">;
  private readonly retries: Counter<"provider" | "deployment" | "reason">;
  private readonly fallbacks: Counter<"from" | "reason">;
  private readonly circuitTransitions: Counter<"provider" | "deployment" | "state">;
  private readonly refusals: Counter<"reason" | "limit" | "scope">;
  private readonly redisFallback: Gauge;
  private readonly storeErrors: Counter;
  private readonly traceExportFailures: Counter;

  constructor(options: MetricsOptions = {}) {
    const registers = [this.registry];
    if (options.processMetrics ?? true) collectDefaultMetrics({ register: this.registry });

    this.rpcDuration = new Histogram({
      name: "rpc_server_call_duration_seconds",
      help: "Duration of RPCs served, to the end of the response stream (rpc.server.call.duration).",
      labelNames: ["rpc_system_name", "rpc_method", "rpc_status_code"],
      buckets: RPC_BUCKETS,
      registers,
    });
    this.rpcActive = new Gauge({
      name: "rpc_server_active_calls",
      help: "RPCs in flight.",
      labelNames: ["rpc_method"],
      registers,
    });
    this.tokenUsage = new Histogram({
      name: "gen_ai_client_token_usage",
      help: "Tokens per upstream call, input and output (gen_ai.client.token.usage).",
      labelNames: ["gen_ai_operation_name", "gen_ai_provider_name", "gen_ai_request_model", "gen_ai_token_type"],
      buckets: TOKEN_BUCKETS,
      registers,
    });
    this.operationDuration = new Histogram({
      name: "gen_ai_client_operation_duration_seconds",
      help: "Duration of each upstream attempt (gen_ai.client.operation.duration); error_type is empty on success.",
      labelNames: ["gen_ai_operation_name", "gen_ai_provider_name", "gen_ai_request_model", "error_type"],
      buckets: GEN_AI_DURATION_BUCKETS,
      registers,
    });
    this.timeToFirstToken = new Histogram({
      name: "gen_ai_server_time_to_first_token_seconds",
      help: "Time from the call's start to its first token, for answers from a provider (gen_ai.server.time_to_first_token).",
      labelNames: ["gen_ai_operation_name", "gen_ai_provider_name", "gen_ai_request_model"],
      buckets: TTFT_BUCKETS,
      registers,
    });
    this.timePerOutputToken = new Histogram({
      name: "gen_ai_server_time_per_output_token_seconds",
      help: "Time per output token after the first, for successful answers from a provider (gen_ai.server.time_per_output_token).",
      labelNames: ["gen_ai_operation_name", "gen_ai_provider_name", "gen_ai_request_model"],
      buckets: TPOT_BUCKETS,
      registers,
    });
    this.requests = new Counter({
      name: "llm_gateway_requests_total",
      help: "Generations finished, by catalogue model, provider, status (ok, failed, cancelled), error reason and whether cached.",
      labelNames: ["model", "provider", "status", "reason", "cached"],
      registers,
    });
    this.cost = new Counter({
      name: "llm_gateway_cost_usd_total",
      help: "USD spent upstream, by tenant and catalogue model (cached answers cost nothing).",
      labelNames: ["tenant", "model"],
      registers,
    });
    this.tokens = new Counter({
      name: "llm_gateway_tokens_total",
      help: "Tokens billed (calls answered or attempted upstream; not cache hits), by tenant, catalogue model and type (input, output).",
      labelNames: ["tenant", "model", "type"],
      registers,
    });
    this.cacheLookups = new Counter({
      name: "llm_gateway_cache_lookups_total",
      help: "Response cache lookups by result (hit, miss); hit ratio = hit / all.",
      labelNames: ["model", "result"],
      registers,
    });
    this.flightJoins = new Counter({
      name: "llm_gateway_single_flight_joins_total",
      help: "Calls answered by joining an identical call in flight instead of reaching the upstream.",
      labelNames: ["model"],
      registers,
    });
    this.retries = new Counter({
      name: "llm_gateway_retries_total",
      help: "Upstream attempts retried on the same deployment, by the reason of the failed attempt.",
      labelNames: ["provider", "deployment", "reason"],
      registers,
    });
    this.fallbacks = new Counter({
      name: "llm_gateway_fallbacks_total",
      help: "Moves to the next deployment or fallback model, by the deployment left (provider/model) and the reason.",
      labelNames: ["from", "reason"],
      registers,
    });
    this.circuitTransitions = new Counter({
      name: "llm_gateway_circuit_transitions_total",
      help: "Circuit breaker state changes, by deployment and the state entered.",
      labelNames: ["provider", "deployment", "state"],
      registers,
    });
    this.refusals = new Counter({
      name: "llm_gateway_limit_refusals_total",
      help: "Calls refused by a rate limit or budget, by reason, the limit and whose it was (key, tenant).",
      labelNames: ["reason", "limit", "scope"],
      registers,
    });
    this.redisFallback = new Gauge({
      name: "llm_redis_fallback_active",
      help: "1 while Redis is unreachable and rate limits run in process (divided by REPLICA_COUNT).",
      registers,
    });
    this.redisFallback.set(0);
    this.storeErrors = new Counter({
      name: "llm_store_errors_total",
      help: "Errors of the cache and idempotency store (each treated as a miss).",
      registers,
    });
    this.traceExportFailures = new Counter({
      name: "llm_trace_export_failures_total",
      help: "Span batches the OTLP exporter could not deliver.",
      registers,
    });
  }

  /** Counts an RPC in; the returned function counts it out with its status code. */
  rpcStarted(system: string, method: string): (code: string) => void {
    const started = performance.now();
    this.rpcActive.inc({ rpc_method: method });
    return (code) => {
      this.rpcActive.dec({ rpc_method: method });
      this.rpcDuration.observe(
        { rpc_system_name: system, rpc_method: method, rpc_status_code: code },
        (performance.now() - started) / 1000,
      );
    };
  }

  attempt(a: AttemptSample): void {
    const base = { gen_ai_operation_name: "chat", gen_ai_provider_name: a.provider, gen_ai_request_model: a.deployment };
    this.operationDuration.observe({ ...base, error_type: a.reason === "OK" ? "" : a.reason }, a.durationSeconds);
    if (a.usage) {
      this.tokenUsage.observe({ ...base, gen_ai_token_type: "input" }, a.usage.inputTokens);
      this.tokenUsage.observe({ ...base, gen_ai_token_type: "output" }, a.usage.outputTokens);
    }
  }

  call(c: CallSample): void {
    this.requests.inc({ model: c.model, provider: c.provider, status: c.status, reason: c.reason ?? "", cached: String(c.cached) });
    if (c.cacheLookup) this.cacheLookups.inc({ model: c.model, result: c.cacheLookup });
    if (c.joinedFlight) this.flightJoins.inc({ model: c.model });
    if (c.refusal && (c.reason === "RATE_LIMITED" || c.reason === "BUDGET_EXCEEDED")) {
      this.refusals.inc({ reason: c.reason, limit: c.refusal.limit, scope: c.refusal.scope });
    }
    // Tokens the ledger bills: calls answered or attempted upstream (a failed attempt is charged its input), never cache hits.
    if (!c.cached && (c.provider !== "" || c.costUsdNanos > 0n)) {
      this.tokens.inc({ tenant: c.tenant, model: c.model, type: "input" }, c.usage.inputTokens);
      this.tokens.inc({ tenant: c.tenant, model: c.model, type: "output" }, c.usage.outputTokens);
    }
    if (c.costUsdNanos > 0n) this.cost.inc({ tenant: c.tenant, model: c.model }, Number(c.costUsdNanos) / NANOS_PER_USD);
    // Latency of answers a provider produced; cached and shared answers would flatter it.
    if (c.cached || c.provider === "" || c.timeToFirstTokenSeconds === null) return;
    const base = { gen_ai_operation_name: "chat", gen_ai_provider_name: c.provider, gen_ai_request_model: c.model };
    this.timeToFirstToken.observe(base, c.timeToFirstTokenSeconds);
    if (c.status === "ok" && c.usage.outputTokens > 1) {
      this.timePerOutputToken.observe(base, (c.latencySeconds - c.timeToFirstTokenSeconds) / (c.usage.outputTokens - 1));
    }
  }

  retry(provider: string, deployment: string, reason: string): void {
    this.retries.inc({ provider, deployment, reason });
  }

  fallback(from: string, reason: string): void {
    this.fallbacks.inc({ from, reason });
  }

  circuitChanged(provider: string, deployment: string, to: string): void {
    this.circuitTransitions.inc({ provider, deployment, state: to.replace("-", "_") });
  }

  redisFallbackActive(active: boolean): void {
    this.redisFallback.set(active ? 1 : 0);
  }

  storeError(): void {
    this.storeErrors.inc();
  }

  traceExportFailed(): void {
    this.traceExportFailures.inc();
  }

  /** Circuit state per deployment (0 closed, 1 half-open, 2 open), read at scrape time. */
  observeCircuits(read: () => Iterable<{ provider: string; deployment: string; state: string }>): void {
    new Gauge({
      name: "llm_gateway_circuit_state",
      help: "Circuit breaker state per deployment: 0 closed, 1 half-open, 2 open.",
      labelNames: ["provider", "deployment"],
      registers: [this.registry],
      collect() {
        this.reset();
        for (const d of read()) this.set({ provider: d.provider, deployment: d.deployment }, CIRCUIT_VALUE[d.state] ?? 0);
      },
    });
  }

  /** The usage ledger's queue, spool and writes, read at scrape time. */
  observeLedger(ledger: LedgerGauges): void {
    const registers = [this.registry];
    new Gauge({
      name: "llm_ledger_queue_depth",
      help: "Usage records waiting in memory to be written.",
      registers,
      collect() {
        this.set(ledger.pending);
      },
    });
    new Gauge({
      name: "llm_ledger_spooled_records",
      help: "Usage records waiting in the disk spool (the database was unreachable).",
      registers,
      collect() {
        this.set(ledger.spooled);
      },
    });
    new Counter({
      name: "llm_ledger_rows_written_total",
      help: "Usage rows written to the database.",
      registers,
      collect: totalFrom(() => ledger.written),
    });
    new Counter({
      name: "llm_ledger_records_dropped_total",
      help: "Usage records given up on (queue or spool full, or refused by the database with no dead-letter file).",
      registers,
      collect: totalFrom(() => ledger.dropped),
    });
    new Counter({
      name: "llm_ledger_dead_letters_total",
      help: "Usage records the database refused for their content, kept in the dead-letter file beside the spool.",
      registers,
      collect: totalFrom(() => ledger.deadLettered),
    });
  }

  /** The Prometheus text exposition. */
  async scrape(): Promise<{ contentType: string; body: string }> {
    return { contentType: this.registry.contentType, body: await this.registry.metrics() };
  }
}
