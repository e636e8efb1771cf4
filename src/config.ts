/**
 * One typed, validated configuration object, read once at start-up from the
 * environment and the optional catalogue file (LLM_CONFIG, YAML or JSON).
 * Nothing else in the service reads process.env.
 */
import { accessSync, constants, readFileSync } from "node:fs";
import { parse as parseYaml } from "yaml";
import { z } from "zod";
import { defaultCatalogue } from "./router/default-catalogue.js";

const int = (min: number, max: number) => z.coerce.number().int().min(min).max(max);

const DeploymentSchema = z.strictObject({
  provider: z.enum(["sim", "openai", "anthropic", "ollama"]),
  /** The model name the provider knows. */
  model: z.string().min(1),
  weight: int(1, 1000).default(1),
  /** Overrides the provider's base URL (OPENAI_BASE_URL, ANTHROPIC_BASE_URL, OLLAMA_HOST) for this deployment. */
  baseUrl: z.url().optional(),
  /** Name of the environment variable holding this deployment's API key (a credentials reference; never the key itself). */
  apiKeyEnv: z.string().regex(/^[A-Z_][A-Z0-9_]*$/, "must be an environment variable name").optional(),
  /** Provider-specific knobs (the sim's latency, for one). */
  options: z.record(z.string(), z.union([z.string(), z.number(), z.boolean()])).default({}),
});

const ModelSchema = z.strictObject({
  id: z.string().min(1).max(128),
  aliases: z.array(z.string().min(1)).default([]),
  contextWindow: int(1, 100_000_000),
  maxOutputTokens: int(1, 10_000_000),
  /** USD per million tokens; when absent, the default price table's entry for the upstream model (or 0). */
  price: z
    .strictObject({ inputPerMillion: z.number().min(0).max(100_000), outputPerMillion: z.number().min(0).max(100_000) })
    .optional(),
  capabilities: z.array(z.string()).default(["chat", "streaming"]),
  /** Pre-flight token counting: "o200k" (default for real providers) or "approx" (default for sim). */
  tokenizer: z.enum(["o200k", "approx"]).optional(),
  deployments: z.array(DeploymentSchema).min(1),
  fallbacks: z.array(z.string()).default([]),
});

const RoutingSchema = z.strictObject({
  /** Upper bound on one upstream attempt; the time left before the deadline bounds it too. */
  attemptTimeoutMs: int(1, 3_600_000).default(30_000),
  /** Attempts per deployment (1 = no retry) for retryable reasons. */
  maxAttempts: int(1, 10).default(3),
  backoffBaseMs: int(0, 60_000).default(100),
  backoffCapMs: int(0, 300_000).default(2_000),
  /** An attempt is not started with less time than this left: it could not finish. */
  minAttemptMs: int(0, 60_000).default(5),
  breaker: z
    .strictObject({
      failureRatio: z.number().gt(0).max(1).default(0.5),
      minCalls: int(1, 100_000).default(5),
      windowMs: int(100, 3_600_000).default(30_000),
      openMs: int(1, 3_600_000).default(10_000),
    })
    .prefault({}),
  /**
   * Retry throttling per deployment (gRFC A6): a bucket of maxTokens; a failed attempt takes 1, a
   * success puts tokenRatio back; retries only while more than half is left.
   */
  retryBudget: z
    .strictObject({
      maxTokens: z.number().gt(0).max(1000).default(10),
      tokenRatio: z.number().gt(0).max(1000).default(0.1),
    })
    .prefault({}),
});

const CatalogueSchema = z.strictObject({
  routing: RoutingSchema.prefault({}),
  models: z.array(ModelSchema).min(1),
});

export type RoutingConfig = z.infer<typeof RoutingSchema>;

/** Validates a catalogue given as plain data (defaults filled in); throws a ZodError. */
export function parseCatalogue(raw: unknown): CatalogueConfig {
  return CatalogueSchema.parse(raw);
}

export type DeploymentConfig = z.infer<typeof DeploymentSchema>;
export type ModelConfig = z.infer<typeof ModelSchema>;
export type CatalogueConfig = z.infer<typeof CatalogueSchema>;

const csv = z
  .string()
  .default("")
  .transform((s) =>
    s
      .split(",")
      .map((x) => x.trim())
      .filter((x) => x.length > 0),
  );

const optionalString = z
  .string()
  .optional()
  .transform((s) => (s === undefined || s.trim() === "" ? undefined : s.trim()));

const bool = z
  .string()
  .trim()
  .toLowerCase()
  .pipe(z.enum(["true", "false", "1", "0"], { message: 'must be "true" or "false"' }))
  .transform((s) => s === "true" || s === "1");

/**
 * The OTEL_* list form: `key1=value1,key2=value2`, values percent-decoded
 * (OTEL_RESOURCE_ATTRIBUTES, OTEL_EXPORTER_OTLP_HEADERS).
 */
const keyValues = z
  .string()
  .default("")
  .transform((s, ctx) => {
    const out: Record<string, string> = {};
    for (const item of s.split(",")) {
      if (item.trim() === "") continue;
      const eq = item.indexOf("=");
      const key = eq > 0 ? item.slice(0, eq).trim() : "";
      if (key === "") {
        ctx.addIssue({ code: "custom", message: `"${item.trim().slice(0, 40)}" is not key=value` });
        return z.NEVER;
      }
      try {
        out[key] = decodeURIComponent(item.slice(eq + 1).trim());
      } catch {
        ctx.addIssue({ code: "custom", message: `the value of "${key}" is not valid percent-encoding` });
        return z.NEVER;
      }
    }
    return out;
  });

const EnvSchema = z.object({
  HOST: z.string().min(1).default("127.0.0.1"),
  PORT: int(0, 65535).default(8080),
  TLS_CERT_FILE: optionalString,
  TLS_KEY_FILE: optionalString,
  /** Exact origins allowed to call from a browser; each is normalised to scheme://host[:port]. */
  CORS_ORIGINS: csv.pipe(z.array(z.url().transform((u) => new URL(u).origin))),
  MAX_REQUEST_BYTES: int(1024, 256 * 1024 * 1024).default(4 * 1024 * 1024),
  DEFAULT_DEADLINE_MS: int(1, 3_600_000).default(60_000),
  MAX_DEADLINE_MS: int(1, 24 * 3_600_000).default(600_000),
  SHUTDOWN_GRACE_MS: int(0, 600_000).default(10_000),
  RPC_FAST_PATH: bool.default(true),
  /** A new connection's first bytes (HTTP/2 preface or HTTP/1.1 request line), or its TLS handshake, within this time of accept. */
  HTTP_PROTOCOL_TIMEOUT_MS: int(100, 600_000).default(10_000),
  /** An HTTP/1.1 request's headers within this time of its first byte; past it 408 and close. */
  HTTP1_HEADERS_TIMEOUT_MS: int(100, 300_000).default(10_000),
  /** An HTTP/2 connection with no open stream this long is closed with GOAWAY; 0 never. */
  HTTP2_IDLE_TIMEOUT_MS: int(0, 24 * 3_600_000).default(300_000),
  HTTP2_MAX_CONCURRENT_STREAMS: int(1, 1_000_000).default(256),
  MAX_CONNECTIONS: int(1, 1_000_000).default(10_000),
  DATA_DIR: z.string().min(1).default("./.data"),
  PGLITE_WORKER: bool.default(false),
  DATABASE_URL: optionalString.pipe(z.string().regex(/^postgres(ql)?:\/\//, "must be a postgres:// URL").optional()),
  REDIS_URL: optionalString.pipe(z.string().regex(/^rediss?:\/\//, "must be a redis:// URL").optional()),
  REPLICA_COUNT: int(1, 10_000).default(1),
  CACHE_DEFAULT_TTL_S: int(1, 7 * 24 * 3600).default(3600),
  CACHE_MAX_TTL_S: int(1, 7 * 24 * 3600).default(24 * 3600),
  CACHE_MAX_ENTRIES: int(0, 10_000_000).default(10_000),
  IDEMPOTENCY_WINDOW_S: int(1, 7 * 24 * 3600).default(24 * 3600),
  LLM_CONFIG: optionalString,
  LOG_LEVEL: z.enum(["error", "warn", "info", "debug"]).default("info"),
  LEDGER_FLUSH_MS: int(10, 60_000).default(200),
  BATCH_MAX_ITEMS: int(1, 1000).default(64),
  BATCH_DEFAULT_CONCURRENCY: int(1, 64).default(4),
  BATCH_MAX_CONCURRENCY: int(1, 256).default(16),
  OPENAI_API_KEY: optionalString,
  OPENAI_BASE_URL: optionalString.pipe(z.url().optional()),
  ANTHROPIC_API_KEY: optionalString,
  ANTHROPIC_BASE_URL: optionalString.pipe(z.url().optional()),
  OLLAMA_HOST: optionalString.pipe(z.url().optional()),
  UPSTREAM_MAX_SOCKETS: int(1, 1_000_000).default(4096),
  SIM_TTFT_MS: int(0, 60_000).default(0),
  SIM_INTER_TOKEN_MS: int(0, 60_000).default(0),
  /** Serve GET /metrics on this port instead of the main one. */
  METRICS_PORT: int(0, 65535).optional(),
  OTEL_SDK_DISABLED: bool.default(false),
  OTEL_SERVICE_NAME: z.string().min(1).default("llm-service"),
  OTEL_RESOURCE_ATTRIBUTES: keyValues,
  /** Base URL of an OTLP/HTTP receiver; traces go to <it>/v1/traces. Unset: no trace export. */
  OTEL_EXPORTER_OTLP_ENDPOINT: optionalString.pipe(z.url().optional()),
  /** Full URL for traces, used as is; wins over OTEL_EXPORTER_OTLP_ENDPOINT. */
  OTEL_EXPORTER_OTLP_TRACES_ENDPOINT: optionalString.pipe(z.url().optional()),
  OTEL_EXPORTER_OTLP_HEADERS: keyValues,
  /** The installed exporter speaks OTLP/HTTP with JSON bodies only. */
  OTEL_EXPORTER_OTLP_PROTOCOL: z
    .enum(["http/json"], { message: 'only "http/json" is supported (OTLP over HTTP with JSON bodies)' })
    .default("http/json"),
  OTEL_EXPORTER_OTLP_TIMEOUT: int(1, 600_000).default(10_000),
  OTEL_TRACES_SAMPLER: z
    .enum(["always_on", "always_off", "traceidratio", "parentbased_always_on", "parentbased_always_off", "parentbased_traceidratio"])
    .default("parentbased_always_on"),
  OTEL_TRACES_SAMPLER_ARG: z.coerce.number().min(0).max(1).optional(),
  /** Put prompt and completion text on spans (gen_ai.input.messages etc.). Off by default. */
  OTEL_CAPTURE_CONTENT: bool.default(false),
});

/** Every environment variable the service reads (docker-compose is checked against it). */
export const ENV_KEYS: readonly string[] = Object.keys(EnvSchema.shape);

export interface Config {
  host: string;
  port: number;
  tls?: { certFile: string; keyFile: string };
  corsOrigins: string[];
  maxRequestBytes: number;
  defaultDeadlineMs: number;
  maxDeadlineMs: number;
  /** Connections per upstream origin, in use and idle; a streamed call holds one for its whole stream. */
  upstreamMaxSockets: number;
  /** Serve gRPC and Connect (unary and server-streaming) LlmService calls on the direct path (src/server/fast-path/); false: connect-node serves everything. */
  rpcFastPath: boolean;
  shutdownGraceMs: number;
  /** What a connection may hold of the server: see ConnectionLimits in src/server/transport.ts. */
  connections: {
    protocolTimeoutMs: number;
    headersTimeoutMs: number;
    http2IdleTimeoutMs: number;
    http2MaxConcurrentStreams: number;
    maxConnections: number;
  };
  dataDir: string;
  /** The embedded database in a worker thread instead of on the event loop (ledger/database.ts). */
  pgliteWorker: boolean;
  databaseUrl?: string;
  redisUrl?: string;
  /** How many replicas share Redis: without it, each enforces this share of every limit. */
  replicaCount: number;
  cache: { defaultTtlMs: number; maxTtlMs: number; maxEntries: number };
  idempotencyWindowMs: number;
  logLevel: "error" | "warn" | "info" | "debug";
  ledgerFlushMs: number;
  batch: { maxItems: number; defaultConcurrency: number; maxConcurrency: number };
  /** Provider defaults from the standard variables; deployments may override them. */
  providers: {
    openai: { apiKey?: string; baseUrl?: string };
    anthropic: { apiKey?: string; baseUrl?: string };
    ollama: { host?: string };
  };
  /** The keys named by deployments' apiKeyEnv, read once at start-up. */
  credentials: ReadonlyMap<string, string>;
  catalogue: CatalogueConfig;
  /** Where the catalogue came from: a file path, or "built-in sim catalogue". */
  catalogueSource: string;
  telemetry: TelemetryConfig;
}

/** Traces, metrics and what goes on spans, from the standard OTEL_* variables and METRICS_PORT. */
export interface TelemetryConfig {
  serviceName: string;
  /** OTEL_RESOURCE_ATTRIBUTES (service.name from OTEL_SERVICE_NAME wins over one given here). */
  resourceAttributes: Record<string, string>;
  /** Where spans go (OTLP/HTTP, JSON); absent means no export, and spans are not recorded at all. */
  otlp?: { url: string; headers: Record<string, string>; timeoutMs: number };
  sampler: { name: SamplerName; ratio: number };
  /** Prompt and completion text on spans. */
  captureContent: boolean;
  /** A separate port for GET /metrics; absent means the main port serves it. */
  metricsPort?: number;
}

export type SamplerName =
  | "always_on"
  | "always_off"
  | "traceidratio"
  | "parentbased_always_on"
  | "parentbased_always_off"
  | "parentbased_traceidratio";

/** Where traces are exported: the signal-specific URL as is, or the base endpoint + /v1/traces. */
function otlpTracesUrl(endpoint: string | undefined, tracesEndpoint: string | undefined): string | undefined {
  if (tracesEndpoint !== undefined) return tracesEndpoint;
  if (endpoint === undefined) return undefined;
  return `${endpoint.replace(/\/+$/, "")}/v1/traces`;
}

/** A bad configuration value: the message names the key. */
export class ConfigError extends Error {
  override readonly name = "ConfigError";
}

function describeIssues(prefix: string, error: z.ZodError): string {
  return error.issues
    .map((issue) => {
      const path = issue.path.map(String).join(".");
      return `${prefix}${path}: ${issue.message}`;
    })
    .join("; ");
}

function readCatalogue(path: string): CatalogueConfig {
  let text: string;
  try {
    text = readFileSync(path, "utf8");
  } catch (err) {
    throw new ConfigError(`LLM_CONFIG: cannot read ${path}: ${(err as Error).message}`);
  }
  let raw: unknown;
  try {
    raw = path.endsWith(".json") ? JSON.parse(text) : parseYaml(text);
  } catch (err) {
    throw new ConfigError(`LLM_CONFIG: ${path} is not valid ${path.endsWith(".json") ? "JSON" : "YAML"}: ${(err as Error).message}`);
  }
  const parsed = CatalogueSchema.safeParse(raw);
  if (!parsed.success) throw new ConfigError(describeIssues(`LLM_CONFIG (${path}) `, parsed.error));
  return parsed.data;
}

/** Names must be unique across ids and aliases, and fallbacks must name known models. */
function checkCatalogue(catalogue: CatalogueConfig, source: string): void {
  const seen = new Set<string>();
  for (const [i, model] of catalogue.models.entries()) {
    for (const name of [model.id, ...model.aliases]) {
      if (seen.has(name)) throw new ConfigError(`LLM_CONFIG (${source}) models.${i}: duplicate model name or alias "${name}"`);
      seen.add(name);
    }
  }
  for (const [i, model] of catalogue.models.entries()) {
    for (const fb of model.fallbacks) {
      if (!seen.has(fb)) throw new ConfigError(`LLM_CONFIG (${source}) models.${i}.fallbacks: unknown model "${fb}"`);
    }
  }
}

/** Reads and validates the configuration; throws ConfigError naming the bad key. */
export function loadConfig(rawEnv: Record<string, string | undefined> = process.env): Config {
  // An empty value means unset (so PORT= is the default port, not port 0).
  const env = Object.fromEntries(Object.entries(rawEnv).filter(([, v]) => v !== undefined && v.trim() !== ""));
  const parsed = EnvSchema.safeParse(env);
  if (!parsed.success) throw new ConfigError(describeIssues("", parsed.error));
  const e = parsed.data;
  if ((e.TLS_CERT_FILE === undefined) !== (e.TLS_KEY_FILE === undefined)) {
    throw new ConfigError("TLS_CERT_FILE/TLS_KEY_FILE: set both or neither");
  }
  for (const key of ["TLS_CERT_FILE", "TLS_KEY_FILE"] as const) {
    const file = e[key];
    if (file === undefined) continue;
    try {
      accessSync(file, constants.R_OK);
    } catch {
      throw new ConfigError(`${key}: cannot read ${file}`);
    }
  }
  if (e.DEFAULT_DEADLINE_MS > e.MAX_DEADLINE_MS) {
    throw new ConfigError("DEFAULT_DEADLINE_MS: must not exceed MAX_DEADLINE_MS");
  }
  if (e.BATCH_DEFAULT_CONCURRENCY > e.BATCH_MAX_CONCURRENCY) {
    throw new ConfigError("BATCH_DEFAULT_CONCURRENCY: must not exceed BATCH_MAX_CONCURRENCY");
  }
  const catalogue = e.LLM_CONFIG
    ? readCatalogue(e.LLM_CONFIG)
    : parseCatalogue(defaultCatalogue({ ttftMs: e.SIM_TTFT_MS, interTokenMs: e.SIM_INTER_TOKEN_MS }));
  const catalogueSource = e.LLM_CONFIG ?? "built-in sim catalogue";
  checkCatalogue(catalogue, catalogueSource);
  const credentials = new Map<string, string>();
  for (const [i, model] of catalogue.models.entries()) {
    for (const [j, d] of model.deployments.entries()) {
      if (d.apiKeyEnv === undefined) continue;
      const value = env[d.apiKeyEnv];
      if (value === undefined || value.trim() === "") {
        throw new ConfigError(`LLM_CONFIG (${catalogueSource}) models.${i}.deployments.${j}.apiKeyEnv: ${d.apiKeyEnv} is not set`);
      }
      credentials.set(d.apiKeyEnv, value.trim());
    }
  }
  const tracesUrl = otlpTracesUrl(e.OTEL_EXPORTER_OTLP_ENDPOINT, e.OTEL_EXPORTER_OTLP_TRACES_ENDPOINT);
  const pick = <T extends object>(o: T) =>
    Object.fromEntries(Object.entries(o).filter(([, v]) => v !== undefined)) as { [K in keyof T]?: Exclude<T[K], undefined> };
  return {
    host: e.HOST,
    port: e.PORT,
    ...(e.TLS_CERT_FILE && e.TLS_KEY_FILE ? { tls: { certFile: e.TLS_CERT_FILE, keyFile: e.TLS_KEY_FILE } } : {}),
    corsOrigins: e.CORS_ORIGINS,
    maxRequestBytes: e.MAX_REQUEST_BYTES,
    defaultDeadlineMs: e.DEFAULT_DEADLINE_MS,
    maxDeadlineMs: e.MAX_DEADLINE_MS,
    rpcFastPath: e.RPC_FAST_PATH,
    upstreamMaxSockets: e.UPSTREAM_MAX_SOCKETS,
    shutdownGraceMs: e.SHUTDOWN_GRACE_MS,
    connections: {
      protocolTimeoutMs: e.HTTP_PROTOCOL_TIMEOUT_MS,
      headersTimeoutMs: e.HTTP1_HEADERS_TIMEOUT_MS,
      http2IdleTimeoutMs: e.HTTP2_IDLE_TIMEOUT_MS,
      http2MaxConcurrentStreams: e.HTTP2_MAX_CONCURRENT_STREAMS,
      maxConnections: e.MAX_CONNECTIONS,
    },
    dataDir: e.DATA_DIR,
    pgliteWorker: e.PGLITE_WORKER,
    ...(e.DATABASE_URL ? { databaseUrl: e.DATABASE_URL } : {}),
    ...(e.REDIS_URL ? { redisUrl: e.REDIS_URL } : {}),
    replicaCount: e.REPLICA_COUNT,
    cache: {
      defaultTtlMs: Math.min(e.CACHE_DEFAULT_TTL_S, e.CACHE_MAX_TTL_S) * 1000,
      maxTtlMs: e.CACHE_MAX_TTL_S * 1000,
      maxEntries: e.CACHE_MAX_ENTRIES,
    },
    idempotencyWindowMs: e.IDEMPOTENCY_WINDOW_S * 1000,
    logLevel: e.LOG_LEVEL,
    ledgerFlushMs: e.LEDGER_FLUSH_MS,
    batch: {
      maxItems: e.BATCH_MAX_ITEMS,
      defaultConcurrency: e.BATCH_DEFAULT_CONCURRENCY,
      maxConcurrency: e.BATCH_MAX_CONCURRENCY,
    },
    providers: {
      openai: pick({ apiKey: e.OPENAI_API_KEY, baseUrl: e.OPENAI_BASE_URL }),
      anthropic: pick({ apiKey: e.ANTHROPIC_API_KEY, baseUrl: e.ANTHROPIC_BASE_URL }),
      ollama: pick({ host: e.OLLAMA_HOST }),
    },
    credentials,
    catalogue,
    catalogueSource,
    telemetry: {
      serviceName: e.OTEL_SERVICE_NAME,
      resourceAttributes: e.OTEL_RESOURCE_ATTRIBUTES,
      ...(tracesUrl !== undefined && !e.OTEL_SDK_DISABLED
        ? { otlp: { url: tracesUrl, headers: e.OTEL_EXPORTER_OTLP_HEADERS, timeoutMs: e.OTEL_EXPORTER_OTLP_TIMEOUT } }
        : {}),
      sampler: { name: e.OTEL_TRACES_SAMPLER, ratio: e.OTEL_TRACES_SAMPLER_ARG ?? 1 },
      captureContent: e.OTEL_CAPTURE_CONTENT,
      ...(e.METRICS_PORT !== undefined ? { metricsPort: e.METRICS_PORT } : {}),
    },
  };
}
