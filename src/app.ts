/** Builds the whole service from a Config: database, ledger, keys, gateway, routes, transport. */
import { join } from "node:path";
import { connectNodeAdapter } from "@connectrpc/connect-node";
import type { ConnectRouter } from "@connectrpc/connect";
import { file_google_rpc_error_details } from "../gen/ts/google/rpc/error_details_pb.js";
import { file_grpc_health_v1_health, Health } from "../gen/ts/grpc/health/v1/health_pb.js";
import { file_llm_v1_llm_service, LlmService } from "../gen/ts/llm/v1/llm_service_pb.js";
import type { Config } from "./config.js";
import { Gateway } from "./core/gateway.js";
import { TokenCounter } from "./core/token-counter.js";
import { ApiKeyStore } from "./ledger/api-keys.js";
import { openDatabase, type Database } from "./ledger/database.js";
import { UsageLedger, UsageRecordsDroppedError } from "./ledger/usage-ledger.js";
import { UsageQuery } from "./ledger/usage-query.js";
import { createHttpFetch } from "./providers/http.js";
import { createProviders } from "./providers/registry.js";
import { Catalogue } from "./router/catalogue.js";
import { Router } from "./router/router.js";
import { llmService } from "./rpc/llm-service.js";
import { applyCors } from "./server/cors.js";
import { HealthState, healthRoutes, ServingStatus } from "./server/health.js";
import { InFlight } from "./server/in-flight.js";
import { authInterceptor, drainInterceptor, requestIdInterceptor } from "./server/interceptors.js";
import { reflectionRoutes } from "./server/reflection.js";
import { listen, type Transport } from "./server/transport.js";
import { throttledWarn, type Logger } from "./telemetry/logger.js";
import { Idempotency } from "./cache/idempotency.js";
import { responseCacheOn } from "./cache/keyv-cache.js";
import { createKvStore } from "./cache/kv-store.js";
import { createLimiter } from "./limits/index.js";

export interface App {
  readonly transport: Transport;
  readonly database: Database;
  readonly keys: ApiKeyStore;
  readonly ledger: UsageLedger;
  readonly health: HealthState;
  /** SIGTERM behaviour: NOT_SERVING, refuse new calls, let in-flight ones finish within the grace, flush, close. */
  shutdown(): Promise<void>;
}

export interface AppOptions {
  logger: Logger;
  /** Called with a freshly minted development key on first start with no keys. */
  onDevelopmentKey?: (secret: string) => void;
}

export async function startApp(config: Config, options: AppOptions): Promise<App> {
  const { logger } = options;
  const database = await openDatabase(
    { dataDir: config.dataDir, ...(config.databaseUrl ? { databaseUrl: config.databaseUrl } : {}) },
    { onPoolError: (err) => logger.warn("database connection failed", { error: err.message }) },
  );
  logger.info("ledger database ready", { kind: database.kind });

  const warnOften = throttledWarn(logger);
  const keys = new ApiKeyStore({ db: database.db });
  if ((await keys.count()) === 0 && options.onDevelopmentKey) {
    const created = await keys.create({ name: "development", tenant: "default", role: "admin" });
    options.onDevelopmentKey(created.secret);
  }

  const ledger = new UsageLedger({
    db: database.db,
    flushIntervalMs: config.ledgerFlushMs,
    // Past a bounded queue, records wait in an append-only spool file that is replayed on recovery and on start.
    spoolDir: join(config.dataDir, "spool"),
    onSpill: (count) => warnOften("ledger database unreachable: usage records spooled to disk", { count }),
    onError: (err) =>
      err instanceof UsageRecordsDroppedError
        ? logger.error("usage records dropped", { dropped: err.dropped, error: err.message })
        : warnOften("usage ledger write failed; records kept for retry", { error: err.message }),
  });
  await ledger.start();
  const limiter = await createLimiter({
    ...(config.redisUrl ? { redisUrl: config.redisUrl } : {}),
    replicaCount: config.replicaCount,
    onDegraded: (active, err) =>
      active
        ? logger.warn("Redis unreachable: rate limits fall back to in-process limits divided by REPLICA_COUNT", {
            replicaCount: config.replicaCount,
            error: err instanceof Error ? err.message : String(err),
          })
        : logger.info("Redis answers again: rate limits are shared across replicas again"),
    onRedisError: (err) => warnOften("Redis connection error (limits)", { error: err instanceof Error ? err.message : String(err) }),
  });
  const storeError = (err: Error) => warnOften("cache store error; treated as a miss", { error: err.message });
  const kv = createKvStore({ ...(config.redisUrl ? { redisUrl: config.redisUrl } : {}), maxEntries: config.cache.maxEntries, onError: storeError });
  const cache = responseCacheOn(kv, storeError);
  // In memory, idempotency records get a store of their own so cache pressure cannot evict them early.
  const idempotencyStore = config.redisUrl ? kv : createKvStore({ maxEntries: 100_000, onError: storeError });
  const idempotency = new Idempotency({ store: idempotencyStore, windowMs: config.idempotencyWindowMs, onError: storeError });
  const catalogue = new Catalogue(config.catalogue);
  const http = createHttpFetch();
  const providers = createProviders(config, { fetch: http.fetch });
  const router = new Router(catalogue, providers, {
    onEvent: (e) => {
      if (e.type === "circuit") logger.warn("circuit breaker changed state", e);
      else if (e.type === "retry") logger.warn("retrying upstream call", e);
      else logger.warn("falling back to the next deployment", e);
    },
  });
  const gateway = new Gateway({
    catalogue,
    router,
    usageSink: ledger,
    usageSource: new UsageQuery(database.db),
    tokens: new TokenCounter(catalogue.models.map((m) => m.tokenizer)),
    limiter,
    cache,
    cacheDefaults: { defaultTtlMs: config.cache.defaultTtlMs, maxTtlMs: config.cache.maxTtlMs },
    idempotency,
    onFinish: (s) =>
      logger.info("call", {
        requestId: s.requestId,
        tenant: s.principal.tenant,
        keyId: s.principal.keyId,
        model: s.model,
        provider: s.provider,
        status: s.status,
        reason: s.reason,
        cached: s.cached,
        latencyMs: s.latencyMs,
        attempts: s.attempts,
      }),
  });
  if (config.catalogueSource === "built-in sim catalogue") {
    const keyed = (["openai", "anthropic", "ollama"] as const).filter((p) => Object.keys(config.providers[p]).length > 0);
    logger.info("no LLM_CONFIG given: serving the built-in sim catalogue", {
      models: catalogue.models.map((m) => m.id),
      ...(keyed.length > 0 ? { note: `credentials for ${keyed.join(", ")} are set, but only a catalogue file (LLM_CONFIG) puts their models in service` } : {}),
    });
  }

  const health = new HealthState([LlmService.typeName, Health.typeName]);
  const inFlight = new InFlight();
  const drain = { draining: false };
  const routes = (router: ConnectRouter) => {
    router.service(LlmService, llmService(gateway, config));
    healthRoutes(health)(router);
    // error_details.proto too, so reflection clients (grpcurl) can decode the ErrorInfo etc. in error details.
    reflectionRoutes(
      [file_llm_v1_llm_service, file_grpc_health_v1_health, file_google_rpc_error_details],
      [LlmService.typeName, Health.typeName],
    )(router);
  };
  const adapter = connectNodeAdapter({
    routes,
    interceptors: [requestIdInterceptor, drainInterceptor(drain), authInterceptor(keys, logger)],
    readMaxBytes: config.maxRequestBytes,
    maxTimeoutMs: config.maxDeadlineMs,
  });
  const cors = new Set(config.corsOrigins);
  const transport = await listen({
    host: config.host,
    port: config.port,
    ...(config.tls ? { tls: config.tls } : {}),
    handler: (req, res) => {
      if (cors.size > 0 && applyCors(cors, req, res)) return;
      // A call is in flight until its response is fully written ("close"), which comes after the
      // handler's last message: a drain that stopped waiting earlier would cut off the trailers.
      // Health and reflection (grpc.*) are not waited for: a health Watch never ends by itself.
      if (!req.url?.startsWith("/grpc.")) {
        inFlight.enter();
        res.once("close", () => inFlight.leave());
      }
      adapter(req, res);
    },
  });
  logger.info("listening", {
    address: `${config.host}:${transport.port}`,
    protocols: ["connect", "grpc", "grpc-web"],
    tls: config.tls !== undefined,
  });

  let shuttingDown: Promise<void> | undefined;
  return {
    transport,
    database,
    keys,
    ledger,
    health,
    shutdown() {
      shuttingDown ??= (async () => {
        logger.info("draining", { inFlight: inFlight.size, graceMs: config.shutdownGraceMs });
        health.setAll(ServingStatus.NOT_SERVING);
        drain.draining = true;
        transport.stopAccepting();
        const idle = await inFlight.idle(config.shutdownGraceMs);
        if (!idle) logger.warn("grace period over; closing calls still in flight", { inFlight: inFlight.size });
        await transport.destroy();
        await ledger.close();
        await database.close();
        http.close();
        await limiter.close();
        await kv.close();
        if (idempotencyStore !== kv) await idempotencyStore.close();
        logger.info("stopped");
      })();
      return shuttingDown;
    },
  };
}
