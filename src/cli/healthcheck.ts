/**
 * `node dist/src/cli/healthcheck.js [service]`: the Docker HEALTHCHECK. It asks this instance, on its
 * own port, grpc.health.v1.Health/Check over gRPC (HTTP/2: h2c, or TLS when TLS_CERT_FILE is set) and
 * exits 0 only when the answer is SERVING; 1 for NOT_SERVING (draining), an unknown service, an error
 * or no answer within the deadline; 2 for a bad configuration or argument (`--help` prints the usage).
 * The same protocol grpc_health_probe and Kubernetes' gRPC probes speak.
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

export const HEALTHCHECK_USAGE = `usage: node dist/src/cli/healthcheck.js [service]

Asks this instance (HOST, PORT and TLS_CERT_FILE from the environment, a wildcard HOST on loopback)
grpc.health.v1.Health/Check for the service named (default "", the server as a whole), within ${HEALTHCHECK_TIMEOUT_MS} ms.
Exit status: 0 when SERVING; 1 for NOT_SERVING, an unknown service, an error or no answer; 2 for a bad
configuration or argument.
`;

/** The service to ask about, "help" for --help/-h, or a usage error: an option is never taken for a service name. */
export function parseHealthcheckArgs(argv: readonly string[]): { service: string } | { help: true } | { error: string } {
  if (argv.some((a) => a === "--help" || a === "-h")) return { help: true };
  const option = argv.find((a) => a.startsWith("-"));
  if (option !== undefined) return { error: `unknown option ${JSON.stringify(option)}` };
  if (argv.length > 1) return { error: "at most one service name" };
  return { service: argv[0] ?? "" };
}

if (isMain()) {
  const args = parseHealthcheckArgs(process.argv.slice(2));
  if ("help" in args) {
    process.stdout.write(HEALTHCHECK_USAGE);
    process.exit(0);
  }
  if ("error" in args) {
    process.stderr.write(`healthcheck: ${args.error}\n\n${HEALTHCHECK_USAGE}`);
    process.exit(2);
  }
  let url: string | undefined;
  try {
    url = healthcheckUrl(loadConfig(process.env));
  } catch (err) {
    if (!(err instanceof ConfigError)) throw err;
    process.stderr.write(`healthcheck: bad configuration: ${err.message}\n`);
    process.exit(2);
  }
  const result = await checkHealth(url, args.service);
  process.stdout.write(`${url} grpc.health.v1.Health/Check: ${result.detail}\n`);
  // The HTTP/2 session would keep the process alive for a while; the answer is all that matters.
  process.exit(result.serving ? 0 : 1);
}
