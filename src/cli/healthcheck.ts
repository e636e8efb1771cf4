/**
 * `node dist/src/cli/healthcheck.js [service]`: the Docker HEALTHCHECK. It asks this instance, on its
 * own port, grpc.health.v1.Health/Check over gRPC (HTTP/2: h2c, or TLS when TLS_CERT_FILE is set) and
 * exits 0 only when the answer is SERVING; 1 for NOT_SERVING (draining), an unknown service, an error
 * or no answer within the deadline; 2 for a bad configuration. The same protocol grpc_health_probe and
 * Kubernetes' gRPC probes speak.
 */
import { realpathSync } from "node:fs";
import { pathToFileURL } from "node:url";
import { createClient } from "@connectrpc/connect";
import { createGrpcTransport } from "@connectrpc/connect-node";
import { Health, HealthCheckResponse_ServingStatus as ServingStatus } from "../../gen/ts/grpc/health/v1/health_pb.js";
import { ConfigError, loadConfig, type Config } from "../config.js";

/** Below Docker's --timeout (3 s), so the probe reports its own reason instead of being killed. */
export const HEALTHCHECK_TIMEOUT_MS = 2_000;

/** The loopback address of this instance's port: a wildcard listen address is probed on loopback. */
export function healthcheckUrl(config: Pick<Config, "host" | "port" | "tls">): string {
  let host = config.host;
  if (host === "0.0.0.0") host = "127.0.0.1";
  else if (host === "::") host = "::1";
  if (host.includes(":")) host = `[${host}]`;
  return `${config.tls ? "https" : "http"}://${host}:${config.port}`;
}

export interface HealthResult {
  serving: boolean;
  /** SERVING, NOT_SERVING, SERVICE_UNKNOWN, … or the error. */
  detail: string;
}

/** One Health/Check call; never throws. `service` "" asks about the server as a whole. */
export async function checkHealth(url: string, service = "", timeoutMs = HEALTHCHECK_TIMEOUT_MS): Promise<HealthResult> {
  // The probe talks to its own process on loopback: with TLS it cannot expect a certificate for "127.0.0.1".
  const transport = createGrpcTransport({
    baseUrl: url,
    ...(url.startsWith("https:") ? { nodeOptions: { rejectUnauthorized: false } } : {}),
  });
  try {
    const res = await createClient(Health, transport).check({ service }, { timeoutMs });
    const status = ServingStatus[res.status] ?? String(res.status);
    return { serving: res.status === ServingStatus.SERVING, detail: status };
  } catch (err) {
    return { serving: false, detail: err instanceof Error ? err.message : String(err) };
  }
}

function isMain(): boolean {
  const entry = process.argv[1];
  if (entry === undefined) return false;
  try {
    return import.meta.url === pathToFileURL(realpathSync(entry)).href;
  } catch {
    return false;
  }
}

if (isMain()) {
  let url: string | undefined;
  try {
    url = healthcheckUrl(loadConfig(process.env));
  } catch (err) {
    if (!(err instanceof ConfigError)) throw err;
    process.stderr.write(`healthcheck: bad configuration: ${err.message}\n`);
    process.exit(2);
  }
  const result = await checkHealth(url, process.argv[2] ?? "");
  process.stdout.write(`${url} grpc.health.v1.Health/Check: ${result.detail}\n`);
  // The HTTP/2 session would keep the process alive for a while; the answer is all that matters.
  process.exit(result.serving ? 0 : 1);
}
