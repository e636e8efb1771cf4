/**
 * One typed, validated configuration object, read once at start-up from the environment and the
 * optional catalogue file (LLM_CONFIG, YAML or JSON). Nothing else in the service reads
 * process.env: the variables are declared in config/service-env.ts, config/telemetry.ts and each
 * provider's descriptor (providers/<name>/<name>-descriptor.ts), and all are read here.
 */
import { accessSync, constants } from "node:fs";
import { z } from "zod";
import type { ProviderSettings } from "./providers/descriptors.js";
import { defaultCatalogue } from "./router/default-catalogue.js";
import { catalogueCredentials, checkCatalogue, parseCatalogue, readCatalogue, type CatalogueConfig } from "./config/catalogue.js";
import { ConfigError, describeIssues } from "./config/config-error.js";
import { PROVIDER_ENV, providerSettings } from "./config/provider-env.js";
import { SERVICE_ENV } from "./config/service-env.js";
import { TELEMETRY_ENV, telemetryConfig, type TelemetryConfig } from "./config/telemetry.js";

export { ConfigError } from "./config/config-error.js";
export { parseCatalogue } from "./config/catalogue.js";
export type { CatalogueConfig, DeploymentConfig, ModelConfig, RoutingConfig } from "./config/catalogue.js";
export type { SamplerName, TelemetryConfig } from "./config/telemetry.js";

const EnvSchema = z.object({ ...SERVICE_ENV, ...TELEMETRY_ENV });

/** Every environment variable the service reads (docker-compose is checked against it). */
export const ENV_KEYS: readonly string[] = [...Object.keys(EnvSchema.shape), ...Object.keys(PROVIDER_ENV)];

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
  /** Each provider's defaults from its variables (its descriptor says which); deployments may override them. */
  providers: ProviderSettings;
  /** The keys named by deployments' apiKeyEnv, read once at start-up. */
  credentials: ReadonlyMap<string, string>;
  catalogue: CatalogueConfig;
  /** Where the catalogue came from: a file path, or "built-in sim catalogue". */
  catalogueSource: string;
  telemetry: TelemetryConfig;
}

/** Reads and validates the configuration; throws ConfigError naming the bad key. */
export function loadConfig(rawEnv: Record<string, string | undefined> = process.env): Config {
  // An empty value means unset (so PORT= is the default port, not port 0).
  const env = Object.fromEntries(Object.entries(rawEnv).filter((kv): kv is [string, string] => kv[1] !== undefined && kv[1].trim() !== ""));
  const parsed = EnvSchema.safeParse(env);
  const providers = providerSettings(env);
  if (!parsed.success || !providers.ok) {
    const issues = [...(parsed.success ? [] : parsed.error.issues), ...(providers.ok ? [] : providers.error.issues)];
    throw new ConfigError(describeIssues("", new z.ZodError(issues)));
  }
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
    providers: providers.settings,
    credentials: catalogueCredentials(catalogue, catalogueSource, env),
    catalogue,
    catalogueSource,
    telemetry: telemetryConfig(e),
  };
}
