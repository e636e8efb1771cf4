/** The service's own environment variables (each provider's are in its descriptor; telemetry's in telemetry.ts). */
import { z } from "zod";
import { bool, csv, int, optionalString } from "./env-fields.js";

export const SERVICE_ENV = {
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
  UPSTREAM_MAX_SOCKETS: int(1, 1_000_000).default(4096),
  SIM_TTFT_MS: int(0, 60_000).default(0),
  SIM_INTER_TOKEN_MS: int(0, 60_000).default(0),
};
