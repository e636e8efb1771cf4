/** Builds the whole service from a Config: database, ledger, keys, gateway, routes, transport. */
import { randomUUID } from "node:crypto";
import { join } from "node:path";
import type { ConnectRouter } from "@connectrpc/connect";
import { file_google_rpc_error_details } from "../gen/ts/google/rpc/error_details_pb.js";
import { file_grpc_health_v1_health, Health } from "../gen/ts/grpc/health/v1/health_pb.js";
import { file_llm_v1_llm_service, LlmService } from "../gen/ts/llm/v1/llm_service_pb.js";
import type { Config } from "./config.js";
import { compactHeap } from "./compact-heap.js";
import { Gateway } from "./pipeline/gateway.js";
import { TokenCounter } from "./core/token-counter.js";
import type { UsageSource } from "./core/types.js";
import { ApiKeyStore } from "./keys/api-keys.js";
import { openDatabase, type Database } from "./ledger/database.js";
import { UsageLedger } from "./ledger/usage-ledger.js";
import { UsageRecordDeadLetteredError, UsageRecordsDroppedError } from "./ledger/usage-ledger-errors.js";
import { UsageQuery } from "./ledger/usage-query.js";
import { createHttpFetch } from "./providers/http.js";
import { createProviders } from "./providers/registry.js";
import { Catalogue } from "./router/catalogue.js";
import { Router } from "./router/router.js";
import { llmService } from "./rpc/llm-service.js";
import { applyCors } from "./server/cors.js";
import { HealthState, healthRoutes, ServingStatus } from "./server/health.js";
import { InFlight } from "./server/in-flight.js";
import { authInterceptor, clientRequestIdInterceptor, drainInterceptor, requestIdInterceptor } from "./server/interceptors.js";
import { reflectionRoutes } from "./server/reflection.js";
import { defaultPlaygroundDir, staticAssets } from "./server/static-assets.js";
import { listen, type Transport } from "./server/transport.js";
import { throttledWarn, type Logger } from "./telemetry/logger.js";
import { ledgerTracing } from "./telemetry/ledger-tracing.js";
import { OTHER } from "./telemetry/metrics.js";
import { isMetricsRequest, serveMetrics, startMetricsServer, type MetricsServer } from "./telemetry/metrics-http.js";
import { telemetryInterceptor } from "./telemetry/rpc-interceptor.js";
import { createTelemetry, type Telemetry } from "./telemetry/telemetry.js";
import { Idempotency } from "./cache/idempotency.js";
import { responseCacheOn } from "./cache/keyv-cache.js";
import { createKvStore } from "./cache/kv-store.js";
import { createLimiter } from "./limits/index.js";
import { createFastPath } from "./server/fast-path/index.js";
import { createRpcAdapter } from "./server/rpc-adapter.js";
import { guardBodyDeadline } from "./server/body-deadline.js";

/** How long start-up waits for the Redis cache and idempotency stores to connect before serving without them. */
const REDIS_READY_WAIT_MS = 3_000;

export interface App {
  readonly transport: Transport;
  readonly database: Database;
  readonly keys: ApiKeyStore;
  readonly ledger: UsageLedger;
  readonly health: HealthState;
  /** Tracing and the Prometheus registry; shut down (spans flushed) by shutdown(). */
  readonly telemetry: Telemetry;
  /** The METRICS_PORT server's bound port, when metrics have a port of their own. */
  readonly metricsPort: number | undefined;
  /** Calls the direct RPC path has served so far; undefined with RPC_FAST_PATH=false. */
  readonly fastPathServed: () => number | undefined;
  /** SIGTERM behaviour: NOT_SERVING, refuse new calls, let in-flight ones finish within the grace, flush, close. */
  shutdown(): Promise<void>;
}

export interface AppOptions {
  logger: Logger;
  /** Called with a freshly minted development key on first start with no keys. */
  onDevelopmentKey?: (secret: string) => void;
  /** Made from config.telemetry when absent. The app owns it from here: shutdown() shuts it down. */
  telemetry?: Telemetry;
  /**
   * One memory-reducing GC once everything is built, before the port opens (see compactHeap):
   * ~35 MB less idle RSS for a service process. Default false: in-process test servers skip it.
   */
  compactHeapBeforeListening?: boolean;
  /** Makes each call's request id (the ledger key). Default randomUUID; tests hand in a sequence to compare bytes. */
  newRequestId?: () => string;
}

export async function startApp(config: Config, options: AppOptions): Promise<App> {
  const { logger } = options;
  const database = await openDatabase(
    { dataDir: config.dataDir, pgliteWorker: config.pgliteWorker, ...(config.databaseUrl ? { databaseUrl: config.databaseUrl } : {}) },
    { onPoolError: (err) => logger.warn("database connection failed", { error: err.message }) },
  );
  logger.info("ledger database ready", { kind: database.kind });

  const warnOften = throttledWarn(logger);
  const telemetry =
    options.telemetry ??
    createTelemetry(config.telemetry, { onExportError: (err) => warnOften("trace export failed; spans dropped", { error: err.message }) });
  const { tracing, metrics } = telemetry;
  /** Request id, trace id and span id of the call being served, for log lines. */
  const callFields = () => tracing.logFields();
  const keys = new ApiKeyStore({ db: database.db });
  if (options.onDevelopmentKey && (await keys.count()) === 0) {
    // Replicas starting together on an empty database: one of them makes the key (createFirst).
    const created = await keys.createFirst({ name: "development", tenant: "default", role: "admin" });
    if (created !== null) options.onDevelopmentKey(created.secret);
  }

  // Each INSERT of the ledger is a span of its own ("INSERT generations"), seen through a Kysely plugin.
  const ledgerSpans = ledgerTracing(tracing, { dbSystem: "postgresql" });
  const ledger = new UsageLedger({
    db: database.db.withPlugin(ledgerSpans),
    flushIntervalMs: config.ledgerFlushMs,
    // Past a bounded queue, records wait in an append-only spool file that is replayed on recovery and on start.
    spoolDir: join(config.dataDir, "spool"),
    onSpill: (count) => warnOften("ledger database unreachable: usage records spooled to disk", { count }),
    // Every record is journaled to the spool directory before its call answers; the next start replays it.
    onReplay: (replayed, remaining) => logger.info("usage records replayed from the spool", { replayed, remaining }),
    onError: (err) => {
      ledgerSpans.failOpen(err);
      if (err instanceof UsageRecordsDroppedError) logger.error("usage records dropped", { dropped: err.dropped, error: err.message });
      else if (err instanceof UsageRecordDeadLetteredError) {
        logger.error("usage record refused by the database; kept in the dead-letter file", { request_id: err.requestId, sqlstate: err.sqlstate, error: err.message });
      } else warnOften("usage ledger write failed; records kept for retry", { error: err.message });
    },
  });
  const { spooled } = await ledger.start();
  if (spooled > 0) logger.info("replaying usage records left by an earlier process", { records: spooled });
  metrics.observeLedger(ledger);
  const limiter = await createLimiter({
    ...(config.redisUrl ? { redisUrl: config.redisUrl } : {}),
    replicaCount: config.replicaCount,
    onDegraded: (active, err) => {
      metrics.redisFallbackActive(active);
      return active
        ? logger.warn("Redis unreachable: rate limits fall back to in-process limits divided by REPLICA_COUNT", {
            replicaCount: config.replicaCount,
            error: err instanceof Error ? err.message : String(err),
          })
        : logger.info("Redis answers again: rate limits are shared across replicas again");
    },
    onRedisError: (err) => warnOften("Redis connection error (limits)", { error: err instanceof Error ? err.message : String(err) }),
  });
  const storeError = (err: Error) => {
    metrics.storeError();
    warnOften("cache store error; treated as a miss", { error: err.message });
  };
  // A Redis store whose operation times out is bypassed (misses at once) until Redis answers a PING again.
  const storeHealth = (store: string) => (healthy: boolean, err?: Error) =>
    healthy
      ? logger.info("Redis answers again: the store is used again", { store })
      : logger.warn("Redis did not answer in time: the store is bypassed until it answers", { store, error: err?.message });
  // A Redis cache lookup that times out is only a miss: 50 ms per operation (the default), as the README says.
  const kv = createKvStore({
    ...(config.redisUrl ? { redisUrl: config.redisUrl, onHealthChange: storeHealth("cache") } : {}),
    maxEntries: config.cache.maxEntries,
    onError: storeError,
  });
  const cache = responseCacheOn(kv, storeError);
  // Idempotency gets a store of its own: in memory so cache pressure cannot evict its records, on Redis with a
  // more patient timeout, because a lookup that times out runs the call again (a duplicate upstream call).
  const idempotencyStore = createKvStore({
    ...(config.redisUrl ? { redisUrl: config.redisUrl, opTimeoutMs: 500, onHealthChange: storeHealth("idempotency") } : {}),
    maxEntries: 100_000,
    onError: storeError,
  });
  const idempotency = new Idempotency({ store: idempotencyStore, windowMs: config.idempotencyWindowMs, onError: storeError });
  if (config.redisUrl) {
    // The Redis stores connect in the background and fail commands at once until they have (no
    // offline queue). Serving before that turned the first calls' idempotency keys into no-ops: a
    // retry ran upstream again. So wait for the connection, a bounded time; past it, start as in a
    // Redis outage (cache misses, idempotency per process) and heal when Redis answers.
    const ready = await Promise.all([kv.ready(REDIS_READY_WAIT_MS), idempotencyStore.ready(REDIS_READY_WAIT_MS)]);
    if (!ready.every(Boolean)) logger.warn("Redis is not reachable yet; serving with the cache and idempotency keys degraded until it is", { waitedMs: REDIS_READY_WAIT_MS });
  }
  const catalogue = new Catalogue(config.catalogue);
  // Upstream calls carry the active trace context (the provider attempt's span) as traceparent.
  // Each streamed call holds an upstream connection for its whole stream: the pool must hold as many
  // as there are streams (1,000 concurrent streams queued behind the old 256 for seconds).
  const http = createHttpFetch({
    injectHeaders: (headers) => tracing.inject(headers),
    maxSocketsPerOrigin: config.upstreamMaxSockets,
    maxIdlePerOrigin: Math.min(256, config.upstreamMaxSockets),
  });
  const providers = await createProviders(config, { fetch: http.fetch });
  const router = new Router(catalogue, providers, {
    tracing,
    onEvent: (e) => {
      if (e.type === "circuit") {
        metrics.circuitChanged(e.provider, e.deployment, e.to);
        logger.warn("circuit breaker changed state", { ...callFields(), ...e });
      } else if (e.type === "retry") {
        metrics.retry(e.provider, e.deployment, e.reason);
        logger.warn("retrying upstream call", { ...callFields(), ...e });
      } else {
        metrics.fallback(e.from, e.reason);
        logger.warn("falling back to the next deployment", { ...callFields(), ...e });
      }
    },
    onAttempt: (a) =>
      metrics.attempt({
        provider: a.provider,
        deployment: a.deployment,
        reason: a.reason,
        durationSeconds: a.latencyMs / 1000,
        ...(a.usage ? { usage: a.usage } : {}),
      }),
  });
  metrics.observeCircuits(function* () {
    const seen = new Set<string>();
    for (const model of catalogue.models) {
      for (const d of model.deployments) {
        const key = `${d.provider}/${d.model}`;
        if (seen.has(key)) continue;
        seen.add(key);
        yield { provider: d.provider, deployment: d.model, state: router.circuitState(d) };
      }
    }
  });
  const gateway = new Gateway({
    catalogue,
    router,
    usageSink: ledger,
    usageSource: flushedFirst(ledger, new UsageQuery(database.db)),
    tokens: new TokenCounter(catalogue.models.map((m) => m.tokenizer)),
    limiter,
    cache,
    cacheDefaults: { defaultTtlMs: config.cache.defaultTtlMs, maxTtlMs: config.cache.maxTtlMs },
    idempotency,
    tracing,
    onFinish: (s) => {
      const limit = s.error?.metadata["limit"];
      const subject = s.error?.metadata["subject"];
      metrics.call({
        model: s.catalogued ? s.model : OTHER,
        provider: s.provider,
        tenant: s.principal.tenant,
        status: s.status,
        reason: s.reason,
        cached: s.cached,
        usage: s.usage,
        costUsdNanos: s.costUsdNanos,
        latencySeconds: s.latencyMs / 1000,
        timeToFirstTokenSeconds: s.timeToFirstTokenMs === null ? null : s.timeToFirstTokenMs / 1000,
        cacheLookup: s.cacheLookup,
        joinedFlight: s.joinedFlight,
        ...(limit !== undefined ? { refusal: { limit, scope: subject?.split(":", 1)[0] ?? "" } } : {}),
      });
      // The access line: one per call (per item of a batch). Never prompt or completion text.
      logger.info("call", {
        ...callFields(),
        requestId: s.requestId,
        ...(s.clientRequestId !== undefined ? { clientRequestId: s.clientRequestId } : {}),
        tenant: s.principal.tenant,
        keyId: s.principal.keyId,
        model: s.model,
        provider: s.provider,
        status: s.status,
        reason: s.reason,
        cached: s.cached,
        latencyMs: s.latencyMs,
        ...(s.timeToFirstTokenMs !== null ? { ttftMs: s.timeToFirstTokenMs } : {}),
        attempts: s.attempts,
        inputTokens: s.usage.inputTokens,
        outputTokens: s.usage.outputTokens,
        costUsdNanos: s.costUsdNanos.toString(),
      });
    },
  });
  if (config.catalogueSource === "built-in sim catalogue") {
    const keyed = Object.entries(config.providers)
      .filter(([, settings]) => Object.keys(settings).length > 0)
      .map(([name]) => name);
    logger.info("no LLM_CONFIG given: serving the built-in sim catalogue", {
      models: catalogue.models.map((m) => m.id),
      ...(keyed.length > 0 ? { note: `credentials for ${keyed.join(", ")} are set, but only a catalogue file (LLM_CONFIG) puts their models in service` } : {}),
    });
  }

  const health = new HealthState([LlmService.typeName, Health.typeName]);
  const inFlight = new InFlight();
  const drain = { draining: false };
  const service = llmService(gateway, config);
  const routes = (router: ConnectRouter) => {
    router.service(LlmService, service);
    healthRoutes(health)(router);
    // error_details.proto too, so reflection clients (grpcurl) can decode the ErrorInfo etc. in error details.
    reflectionRoutes(
      [file_llm_v1_llm_service, file_grpc_health_v1_health, file_google_rpc_error_details],
      [LlmService.typeName, Health.typeName],
    )(router);
  };
  // The telemetry interceptor sits outside drain and auth, so refused calls are counted and traced too.
  const newRequestId = options.newRequestId ?? randomUUID;
  const interceptors = [
    requestIdInterceptor(newRequestId),
    telemetryInterceptor(tracing, metrics),
    drainInterceptor(drain),
    clientRequestIdInterceptor,
    authInterceptor(keys, logger, tracing),
  ];
  // connect-node, with ErrorInfo and x-request-id on the protocol errors it raises before any interceptor runs.
  const adapter = createRpcAdapter({
    routes,
    interceptors,
    readMaxBytes: config.maxRequestBytes,
    maxTimeoutMs: config.maxDeadlineMs,
    newRequestId,
    onHandlerError: (method, err) => logger.error("RPC handler failed", { method, error: err instanceof Error ? err.message : String(err) }),
  });
  // gRPC and Connect calls (unary and server-streaming) to LlmService skip connect-node's plumbing (same interceptors and
  // handlers, same wire output); everything else, and every call with RPC_FAST_PATH=false, goes to connect-node.
  const fastPath = config.rpcFastPath
    ? createFastPath({ service: LlmService, impl: service, interceptors, readMaxBytes: config.maxRequestBytes, maxTimeoutMs: config.maxDeadlineMs, newRequestId })
    : undefined;
  // A call's deadline runs from its headers, also while its body is still arriving (both paths read it whole first).
  const bodyDeadline = { defaultTimeoutMs: config.defaultDeadlineMs, maxTimeoutMs: config.maxDeadlineMs };
  const cors = new Set(config.corsOrigins);
  // The web playground (built by `npm run build` into dist/web): GET /playground*, same origin as the API.
  const playground = staticAssets({ prefix: "/playground", dir: defaultPlaygroundDir() });
  // GET /metrics: on its own port with METRICS_PORT, on the main port (before the Connect adapter) otherwise.
  const metricsPort = config.telemetry.metricsPort;
  if (options.compactHeapBeforeListening) {
    const ms = compactHeap();
    logger.debug("start-up garbage collected", { ms: ms === undefined ? "unavailable" : Math.round(ms) });
  }
  const transport = await listen({
    host: config.host,
    port: config.port,
    ...(config.tls ? { tls: config.tls } : {}),
    limits: config.connections,
    onConnectionRefused: () => warnOften("connection refused: MAX_CONNECTIONS are open", { maxConnections: config.connections.maxConnections }),
    handler: (req, res) => {
      if (metricsPort === undefined && isMetricsRequest(req)) return serveMetrics(metrics, req, res);
      if (playground(req, res)) return;
      if (cors.size > 0 && applyCors(cors, req, res)) return;
      // A call is in flight until its response is fully written ("close"), which comes after the
      // handler's last message: a drain that stopped waiting earlier would cut off the trailers.
      // Health and reflection (grpc.*) are not waited for: a health Watch never ends by itself.
      if (!req.url?.startsWith("/grpc.")) {
        inFlight.enter();
        res.once("close", () => inFlight.leave());
      }
      if (!req.url?.startsWith("/grpc.")) guardBodyDeadline(req, res, bodyDeadline);
      if (!fastPath?.(req, res)) adapter(req, res);
    },
  });
  let metricsServer: MetricsServer | undefined;
  if (metricsPort !== undefined) {
    try {
      metricsServer = await startMetricsServer(config.host, metricsPort, metrics);
    } catch (err) {
      await transport.destroy();
      throw err;
    }
  }
  logger.info("listening", {
    address: `${config.host}:${transport.port}`,
    protocols: ["connect", "grpc", "grpc-web"],
    tls: config.tls !== undefined,
    metrics: metricsServer ? `${config.host}:${metricsServer.port}/metrics` : "/metrics",
    traces: config.telemetry.otlp ? config.telemetry.otlp.url : "off",
  });

  let shuttingDown: Promise<void> | undefined;
  return {
    transport,
    database,
    keys,
    ledger,
    health,
    telemetry,
    metricsPort: metricsServer?.port,
    fastPathServed: () => fastPath?.served,
    shutdown() {
      shuttingDown ??= (async () => {
        logger.info("draining", { inFlight: inFlight.size, graceMs: config.shutdownGraceMs });
        const graceEnds = Date.now() + config.shutdownGraceMs;
        health.setAll(ServingStatus.NOT_SERVING);
        drain.draining = true;
        transport.stopAccepting();
        const idle = await inFlight.idle(config.shutdownGraceMs);
        if (!idle) logger.warn("grace period over; closing calls still in flight", { inFlight: inFlight.size });
        else {
          // A call's response is written, but its client may not have read the trailers yet: destroying
          // the connection now cut them off (grpc-go: "EOF ... received prior goaway"). Health watches
          // end (UNAVAILABLE), then each connection closes once its client closed it, within the grace.
          health.endWatches();
          const closed = await transport.closed(Math.max(0, graceEnds - Date.now()));
          if (!closed) logger.warn("grace period over; closing connections still open", { connections: transport.connections });
        }
        await transport.destroy();
        await ledger.close();
        await database.close();
        http.close();
        await limiter.close();
        await kv.close();
        await idempotencyStore.close();
        await metricsServer?.close();
        // Last, so the spans of the drain and the final ledger writes go out too.
        await telemetry.shutdown().catch((err: unknown) => logger.warn("trace export on shutdown failed", { error: String(err) }));
        logger.info("stopped");
      })();
      return shuttingDown;
    },
  };
}

/**
 * GetUsage writes this process's queued usage records before it reads, so a caller sees its own calls
 * that have finished (not only those of the last LEDGER_FLUSH_MS flush). A failed write leaves the
 * records queued for the ledger's own retry, and the read answers with what the database holds.
 */
function flushedFirst(ledger: UsageLedger, query: UsageSource): UsageSource {
  return {
    async usage(tenant, start, end) {
      await ledger.flush().catch(() => undefined);
      return query.usage(tenant, start, end);
    },
  };
}
